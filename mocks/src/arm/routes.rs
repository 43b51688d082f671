//! Parsing ARM request paths into routes, case-insensitively as ARM does
//! (`resourceGroups` = `resourcegroups`, `Microsoft.Compute` = `microsoft.Compute` in the VMSS NIC
//! paths of `armnetwork/v9/interfaces_client.go`).
//!
//! Pure functions only: no world, no state. Every route knows its stats label, the RBAC action
//! it needs and the scope that action is checked on.

/// Resource types the mock knows, in ARM's casing: used to give stable labels and action names
/// whatever casing a client sends, and to answer `InvalidResourceType` for typos.
const KNOWN_TYPES: &[&str] = &[
    // The types of `world-format.md`.
    "Microsoft.Network/loadBalancers",
    "Microsoft.Network/publicIPAddresses",
    "Microsoft.Network/networkSecurityGroups",
    "Microsoft.Network/networkInterfaces",
    "Microsoft.Network/virtualNetworks",
    "Microsoft.Compute/virtualMachines",
    "Microsoft.Compute/virtualMachineScaleSets",
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
    "Microsoft.Network/locations/usages",
    // Other registered types a client may list; they are served from the world (often empty).
    "Microsoft.Network/natGateways",
    "Microsoft.Network/publicIPPrefixes",
    "Microsoft.Network/applicationGateways",
    "Microsoft.Network/applicationSecurityGroups",
    "Microsoft.Network/routeTables",
    "Microsoft.Network/privateLinkServices",
    "Microsoft.Network/privateEndpoints",
    "Microsoft.Network/networkWatchers",
    "Microsoft.Compute/availabilitySets",
    "Microsoft.Compute/disks",
    "Microsoft.ContainerService/managedClusters",
    "Microsoft.ManagedIdentity/userAssignedIdentities",
    // Sub-resources real ARM serves under their parents (armnetwork/v9 *_client.go urlPaths).
    "Microsoft.Network/loadBalancers/frontendIPConfigurations",
    "Microsoft.Network/loadBalancers/backendAddressPools",
    "Microsoft.Network/loadBalancers/loadBalancingRules",
    "Microsoft.Network/loadBalancers/probes",
    "Microsoft.Network/loadBalancers/inboundNatRules",
    "Microsoft.Network/loadBalancers/outboundRules",
    "Microsoft.Network/networkSecurityGroups/securityRules",
    "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
    "Microsoft.Network/virtualNetworks/subnets",
    "Microsoft.Network/networkInterfaces/ipConfigurations",
    // The Network RP's VMSS NIC APIs (api-version 2018-10-01, domain.md §6.1).
    "Microsoft.Compute/virtualMachineScaleSets/networkInterfaces",
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces",
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces/ipConfigurations",
];

/// ARM's casing of a type, if the mock knows it.
pub(crate) fn known_type(full_type: &str) -> Option<&'static str> {
    KNOWN_TYPES
        .iter()
        .copied()
        .find(|t| t.eq_ignore_ascii_case(full_type))
}

/// `provider/type1/type2...` in ARM's casing when known, else as given.
pub(crate) fn canonical_type(provider: &str, types: &[&str]) -> String {
    let joined = std::iter::once(provider)
        .chain(types.iter().copied())
        .collect::<Vec<_>>()
        .join("/");
    known_type(&joined).map(str::to_string).unwrap_or(joined)
}

/// A parsed ARM request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /metadata/endpoints`: cloud discovery (Azure Stack Hub style), no auth.
    Metadata,
    ListSubscriptions,
    ListTenants,
    GetSubscription {
        sub: String,
    },
    ListResourceGroups {
        sub: String,
    },
    GetResourceGroup {
        sub: String,
        rg: String,
    },
    /// `.../providers/Microsoft.Authorization/permissions` at subscription or group scope.
    Permissions {
        sub: String,
        rg: Option<String>,
    },
    Usages {
        sub: String,
        location: String,
    },
    /// `/subscriptions/{s}[/resourceGroups/{rg}]/providers/{ns}/{type}`.
    ListTop {
        sub: String,
        rg: Option<String>,
        provider: String,
        type_: String,
    },
    /// `.../providers/{ns}/{type}/{name}[/{type}/{name}]*/{child}`.
    ListChild {
        sub: String,
        rg: String,
        provider: String,
        parent: Vec<(String, String)>,
        child: String,
    },
    /// `.../providers/{ns}/{type}/{name}[/{type}/{name}]*`.
    Get {
        sub: String,
        rg: String,
        provider: String,
        types: Vec<(String, String)>,
    },
    /// `/subscriptions/{s}/providers/Microsoft.Network/locations/{loc}/operations/{id}` (the
    /// `Azure-AsyncOperation` status) or `.../operationResults/{id}` (the `Location` result) of a
    /// long-running write.
    Operation {
        sub: String,
        location: String,
        id: String,
        result: bool,
    },
    /// A path ARM would not route.
    Unknown,
}

/// Decodes `%XX` escapes (clients escape `{`/`}` of placeholder ids, spaces of spaced locations).
pub(crate) fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn pairs(rest: &[String]) -> Vec<(String, String)> {
    rest.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect()
}

/// Parses a (still percent-encoded) request path.
pub(crate) fn parse(raw_path: &str) -> Route {
    let segs: Vec<String> = raw_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        [m, e] if eq(m, "metadata") && eq(e, "endpoints") => Route::Metadata,
        [x] if eq(x, "subscriptions") => Route::ListSubscriptions,
        [x] if eq(x, "tenants") => Route::ListTenants,
        [x, sub] if eq(x, "subscriptions") => Route::GetSubscription { sub: sub.to_string() },
        [x, sub, g] if eq(x, "subscriptions") && eq(g, "resourcegroups") => {
            Route::ListResourceGroups { sub: sub.to_string() }
        }
        [x, sub, g, rg] if eq(x, "subscriptions") && eq(g, "resourcegroups") => Route::GetResourceGroup {
            sub: sub.to_string(),
            rg: rg.to_string(),
        },
        [x, sub, p, ns, perm] if eq(x, "subscriptions") && eq(p, "providers") => {
            if eq(ns, "Microsoft.Authorization") && eq(perm, "permissions") {
                Route::Permissions {
                    sub: sub.to_string(),
                    rg: None,
                }
            } else {
                Route::ListTop {
                    sub: sub.to_string(),
                    rg: None,
                    provider: ns.to_string(),
                    type_: perm.to_string(),
                }
            }
        }
        [x, sub, p, ns, l, loc, u]
            if eq(x, "subscriptions")
                && eq(p, "providers")
                && eq(ns, "Microsoft.Network")
                && eq(l, "locations")
                && eq(u, "usages") =>
        {
            Route::Usages {
                sub: sub.to_string(),
                location: loc.to_string(),
            }
        }
        [x, sub, p, ns, l, loc, kind, id]
            if eq(x, "subscriptions")
                && eq(p, "providers")
                && eq(ns, "Microsoft.Network")
                && eq(l, "locations")
                && (eq(kind, "operations") || eq(kind, "operationResults")) =>
        {
            Route::Operation {
                sub: sub.to_string(),
                location: loc.to_string(),
                id: id.to_string(),
                result: eq(kind, "operationResults"),
            }
        }
        [x, sub, g, rg, p, ns, rest @ ..]
            if eq(x, "subscriptions")
                && eq(g, "resourcegroups")
                && eq(p, "providers")
                && !rest.is_empty() =>
        {
            let (sub, rg, ns) = (sub.to_string(), rg.to_string(), ns.to_string());
            let rest: Vec<String> = rest.iter().map(|r| r.to_string()).collect();
            if rest.len() == 1 {
                if eq(&ns, "Microsoft.Authorization") && eq(&rest[0], "permissions") {
                    return Route::Permissions { sub, rg: Some(rg) };
                }
                return Route::ListTop {
                    sub,
                    rg: Some(rg),
                    provider: ns,
                    type_: rest[0].clone(),
                };
            }
            if rest.len().is_multiple_of(2) {
                Route::Get {
                    sub,
                    rg,
                    provider: ns,
                    types: pairs(&rest),
                }
            } else {
                let child = rest[rest.len() - 1].clone();
                Route::ListChild {
                    sub,
                    rg,
                    provider: ns,
                    parent: pairs(&rest[..rest.len() - 1]),
                    child,
                }
            }
        }
        _ => Route::Unknown,
    }
}

/// `/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{t}/{n}/...`
pub(crate) fn resource_id(sub: &str, rg: &str, provider: &str, types: &[(String, String)]) -> String {
    let mut id = format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider}");
    for (t, n) in types {
        id.push('/');
        id.push_str(t);
        id.push('/');
        id.push_str(n);
    }
    id
}

impl Route {
    /// The subscription the request is about (its throttle bucket), if any.
    pub(crate) fn subscription(&self) -> Option<&str> {
        match self {
            Route::Metadata | Route::ListSubscriptions | Route::ListTenants | Route::Unknown => None,
            Route::GetSubscription { sub }
            | Route::ListResourceGroups { sub }
            | Route::GetResourceGroup { sub, .. }
            | Route::Permissions { sub, .. }
            | Route::Usages { sub, .. }
            | Route::ListTop { sub, .. }
            | Route::ListChild { sub, .. }
            | Route::Get { sub, .. }
            | Route::Operation { sub, .. } => Some(sub),
        }
    }

    /// The full type a list or get is about, in ARM's casing when known.
    pub(crate) fn full_type(&self) -> Option<String> {
        match self {
            Route::ListTop { provider, type_, .. } => Some(canonical_type(provider, &[type_])),
            Route::ListChild {
                provider,
                parent,
                child,
                ..
            } => {
                let mut t: Vec<&str> = parent.iter().map(|(t, _)| t.as_str()).collect();
                t.push(child);
                Some(canonical_type(provider, &t))
            }
            Route::Get { provider, types, .. } => {
                let t: Vec<&str> = types.iter().map(|(t, _)| t.as_str()).collect();
                Some(canonical_type(provider, &t))
            }
            _ => None,
        }
    }

    /// A stable label for `stats.arm_by_route`, e.g. `list Microsoft.Network/loadBalancers`
    /// (subscription scope) or `list-rg Microsoft.Network/loadBalancers` (group scope).
    pub(crate) fn label(&self) -> String {
        match self {
            Route::Metadata => "metadata endpoints".into(),
            Route::ListSubscriptions => "list subscriptions".into(),
            Route::ListTenants => "list tenants".into(),
            Route::GetSubscription { .. } => "get subscription".into(),
            Route::ListResourceGroups { .. } => "list resourceGroups".into(),
            Route::GetResourceGroup { .. } => "get resourceGroup".into(),
            Route::Permissions { .. } => "list permissions".into(),
            Route::Usages { .. } => "list Microsoft.Network/locations/usages".into(),
            Route::ListTop { rg: None, .. } => format!("list {}", self.full_type().unwrap_or_default()),
            Route::ListTop { rg: Some(_), .. } => format!("list-rg {}", self.full_type().unwrap_or_default()),
            Route::ListChild { .. } => format!("list {}", self.full_type().unwrap_or_default()),
            Route::Get { .. } => format!("get {}", self.full_type().unwrap_or_default()),
            Route::Operation { result: false, .. } => "poll operation".into(),
            Route::Operation { result: true, .. } => "poll operationResult".into(),
            Route::Unknown => "unknown".into(),
        }
    }

    /// The RBAC action the request needs; `None` = only a valid token.
    pub(crate) fn action(&self) -> Option<String> {
        match self {
            Route::Metadata
            | Route::ListSubscriptions
            | Route::ListTenants
            | Route::Permissions { .. }
            | Route::Unknown => None,
            Route::GetSubscription { .. } => Some("Microsoft.Resources/subscriptions/read".into()),
            Route::ListResourceGroups { .. } | Route::GetResourceGroup { .. } => {
                Some("Microsoft.Resources/subscriptions/resourceGroups/read".into())
            }
            Route::Usages { .. } => Some("Microsoft.Network/locations/usages/read".into()),
            Route::Operation { .. } => Some("Microsoft.Network/locations/operations/read".into()),
            Route::ListTop { .. } | Route::ListChild { .. } | Route::Get { .. } => {
                self.full_type().map(|t| format!("{t}/read"))
            }
        }
    }

    /// The scope an authorization failure names (ARM's `over scope '...'`).
    pub(crate) fn scope_id(&self) -> String {
        match self {
            Route::GetSubscription { sub }
            | Route::ListResourceGroups { sub }
            | Route::Usages { sub, .. }
            | Route::Operation { sub, .. }
            | Route::Permissions { sub, rg: None }
            | Route::ListTop { sub, rg: None, .. } => format!("/subscriptions/{sub}"),
            Route::GetResourceGroup { sub, rg }
            | Route::Permissions { sub, rg: Some(rg) }
            | Route::ListTop {
                sub, rg: Some(rg), ..
            } => format!("/subscriptions/{sub}/resourceGroups/{rg}"),
            Route::ListChild {
                sub,
                rg,
                provider,
                parent,
                ..
            } => resource_id(sub, rg, provider, parent),
            Route::Get {
                sub,
                rg,
                provider,
                types,
            } => resource_id(sub, rg, provider, types),
            Route::Metadata | Route::ListSubscriptions | Route::ListTenants | Route::Unknown => "/".into(),
        }
    }

    /// VM and VMSS lists: Compute's "HighCostGet" operations (`domain.md` §5.1).
    pub(crate) fn is_compute_high_cost(&self) -> bool {
        matches!(self, Route::ListTop { .. })
            && self.full_type().is_some_and(|t| {
                t.eq_ignore_ascii_case("Microsoft.Compute/virtualMachines")
                    || t.eq_ignore_ascii_case("Microsoft.Compute/virtualMachineScaleSets")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_gets_and_children_case_insensitively() {
        assert_eq!(parse("/subscriptions"), Route::ListSubscriptions);
        assert_eq!(
            parse("/SUBSCRIPTIONS/s1/"),
            Route::GetSubscription { sub: "s1".into() }
        );
        let lb = parse("/subscriptions/s1/providers/microsoft.network/LOADBALANCERS");
        assert_eq!(lb.label(), "list Microsoft.Network/loadBalancers");
        assert_eq!(lb.action().unwrap(), "Microsoft.Network/loadBalancers/read");
        assert!(!lb.is_compute_high_cost());
        let rg = parse("/subscriptions/s1/resourcegroups/rg/providers/Microsoft.Compute/virtualMachines");
        assert_eq!(rg.label(), "list-rg Microsoft.Compute/virtualMachines");
        assert!(rg.is_compute_high_cost());
        assert_eq!(rg.scope_id(), "/subscriptions/s1/resourceGroups/rg");
        let nics = parse(
            "/subscriptions/s1/resourceGroups/rg/providers/microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/3/networkInterfaces",
        );
        assert_eq!(
            nics.label(),
            "list Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces"
        );
        let pool = parse(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/k/backendAddressPools/k",
        );
        assert_eq!(
            pool.label(),
            "get Microsoft.Network/loadBalancers/backendAddressPools"
        );
        assert_eq!(
            pool.scope_id(),
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/k/backendAddressPools/k"
        );
        assert_eq!(
            parse("/subscriptions/s1/providers/Microsoft.Network/locations/West%20US/usages"),
            Route::Usages {
                sub: "s1".into(),
                location: "West US".into()
            }
        );
        assert_eq!(
            parse("/subscriptions/s1/providers/Microsoft.Authorization/permissions"),
            Route::Permissions {
                sub: "s1".into(),
                rg: None
            }
        );
        assert_eq!(
            parse("/subscriptions/%7BsubscriptionId%7D").subscription(),
            Some("{subscriptionId}")
        );
        let op =
            parse("/subscriptions/s1/providers/Microsoft.Network/locations/westeurope/operationResults/o1");
        assert_eq!(
            op,
            Route::Operation {
                sub: "s1".into(),
                location: "westeurope".into(),
                id: "o1".into(),
                result: true
            }
        );
        assert_eq!(op.label(), "poll operationResult");
        assert_eq!(parse("/nope"), Route::Unknown);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%7b%C3%A9%zz"), "{é%zz");
    }
}
