//! What ARM would return for the world: lists by type and scope, resources and sub-resources by
//! id, resource groups, subscriptions, network usages, and the page count a complete inventory
//! needs ([`minimal_pages`]).
//!
//! Read-only over a borrowed [`World`]; it knows nothing of HTTP, tokens or buckets.
//!
//! Resources are classified by their id's structure rather than the `type` field when the id has
//! a provider, because real data disagrees with itself: the VMSS VM spec example
//! (`VirtualMachineScaleSetVM_Get_WithVMSizeProperties`) says `Microsoft.Compute/virtualMachines`
//! for an id under `virtualMachineScaleSets/.../virtualMachines/0`, and VMSS NICs say
//! `Microsoft.Network/networkInterfaces` for ids under `microsoft.Compute/virtualMachineScaleSets`.

use std::collections::BTreeMap;

use azaudit_world::{ArmResource, ResourceId, USAGE_TYPE, World, id_key};
use serde::Serialize;
use serde_json::{Value, json};

/// The type ARM serves a resource as: derived from its id when the id names a provider,
/// otherwise the declared `type`.
pub(crate) fn effective_type(r: &ArmResource) -> String {
    match r.parsed_id() {
        Some(p) if p.provider.is_some() && !p.types.is_empty() => {
            p.full_type().unwrap_or_else(|| r.type_.clone())
        }
        _ => r.type_.clone(),
    }
}

/// Resources whose id is under `prefix` (an [`id_key`]-style, lower-case prefix): a range scan
/// of the sorted map instead of a walk over the whole world.
fn under<'a>(world: &'a World, prefix: String) -> impl Iterator<Item = &'a ArmResource> + 'a {
    world
        .resources
        .range(prefix.clone()..)
        .take_while(move |(k, _)| k.starts_with(&prefix))
        .map(|(_, r)| r)
}

/// Resources of one subscription (any casing of its id).
fn in_subscription<'a>(world: &'a World, sub: &str) -> impl Iterator<Item = &'a ArmResource> + 'a {
    under(world, format!("/subscriptions/{}/", sub.to_ascii_lowercase()))
}

/// Location names compare without case or spaces (`West US` = `westus`, the
/// `UsageListSpacedLocation` example of the spec).
pub(crate) fn norm_location(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The world's casing of a subscription id, if the world has it (`world.json` first, then ids,
/// as [`World::subscription_ids`] does, without parsing every id of the world).
pub(crate) fn find_subscription(world: &World, sub: &str) -> Option<String> {
    if let Some(s) = world
        .meta
        .subscriptions
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(sub))
    {
        return Some(s.id.clone());
    }
    in_subscription(world, sub)
        .next()
        .and_then(ArmResource::subscription)
}

/// Display name from `world.json`, else a stable made-up one.
pub(crate) fn subscription_json(world: &World, sub: &str, tenant_id: &str) -> Value {
    let display = world
        .meta
        .subscriptions
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(sub))
        .and_then(|s| s.display_name.clone())
        .unwrap_or_else(|| format!("mock subscription {}", sub.chars().take(8).collect::<String>()));
    // Shape of `GET /subscriptions` (Microsoft.Resources subscriptions 2022-12-01).
    json!({
        "id": format!("/subscriptions/{sub}"),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": sub,
        "tenantId": tenant_id,
        "displayName": display,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "EnterpriseAgreement_2014-09-01",
            "spendingLimit": "Off"
        }
    })
}

const GROUP_TYPE: &str = "Microsoft.Resources/resourceGroups";

/// A group known only from the id of a resource in it: that id's casing, the resource's location.
fn derived_group(r: &ArmResource, sub: &str, rg: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{sub}/resourceGroups/{rg}"),
        "name": rg,
        "type": GROUP_TYPE,
        "location": r.location().unwrap_or("westeurope"),
        "properties": {"provisioningState": "Succeeded"}
    })
}

/// Resource groups of a subscription: `Microsoft.Resources/resourceGroups` resources of the
/// world, plus groups that only appear in resource ids (with the location of their first
/// resource). Sorted by name, case-insensitively.
pub(crate) fn resource_groups(world: &World, sub: &str) -> Vec<Value> {
    let mut groups: BTreeMap<String, Value> = BTreeMap::new();
    for r in in_subscription(world, sub) {
        let Some(p) = r.parsed_id() else { continue };
        let (Some(s), Some(rg)) = (p.subscription.as_deref(), p.resource_group.as_deref()) else {
            continue;
        };
        let key = rg.to_ascii_lowercase();
        if p.provider.is_none() && r.type_is(GROUP_TYPE) {
            groups.insert(key, r.value());
        } else {
            groups.entry(key).or_insert_with(|| derived_group(r, s, rg));
        }
    }
    groups.into_values().collect()
}

/// One group, as [`resource_groups`] lists it, found with two lookups instead of a walk over the
/// subscription (it is asked on every group-scoped request).
pub(crate) fn resource_group(world: &World, sub: &str, rg: &str) -> Option<Value> {
    let id = format!("/subscriptions/{sub}/resourceGroups/{rg}");
    if let Some(r) = world.get(&id).filter(|r| r.type_is(GROUP_TYPE)) {
        return Some(r.value());
    }
    let first = under(world, format!("{}/", id_key(&id))).next()?;
    let p = first.parsed_id()?;
    Some(derived_group(
        first,
        p.subscription.as_deref()?,
        p.resource_group.as_deref()?,
    ))
}

/// Top-level resources of `full_type` in a subscription (and group), sorted by id.
/// Subscription-scope `networkInterfaces` leave out VMSS Uniform NICs because their ids are
/// under `Microsoft.Compute/virtualMachineScaleSets` and so are not of that type.
///
/// Borrowed, not cloned: every page of a list walks the subscription again, and cloning every
/// match for a page of 50 made a page of a 100,000-resource world cost ~120 ms of CPU, so
/// benchmarks measured the mock instead of the client. Only the page served is cloned.
pub(crate) fn list_top<'a>(
    world: &'a World,
    sub: &str,
    rg: Option<&str>,
    full_type: &str,
) -> Vec<&'a ArmResource> {
    let prefix = match rg {
        Some(rg) => format!("/subscriptions/{sub}/resourcegroups/{rg}/").to_ascii_lowercase(),
        None => format!("/subscriptions/{sub}/").to_ascii_lowercase(),
    };
    // A top-level `provider/type` id names it right after its last `/providers/`, followed by
    // the name alone: such ids match without being parsed. Ids without the type in them can
    // only match through their declared type (ids that do not parse), so most of the world is
    // skipped by a substring search.
    let needle = (full_type.matches('/').count() == 1)
        .then(|| format!("/providers/{}/", full_type.to_ascii_lowercase()));
    let exact = |r: &ArmResource| effective_type(r).eq_ignore_ascii_case(full_type);
    world
        .resources
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(k, r)| match &needle {
            Some(n) => match k.rfind(n.as_str()).map(|i| &k[i + n.len()..]) {
                Some(name) if !name.is_empty() && !name.contains('/') => true,
                Some(_) => exact(r),
                None => r.type_.eq_ignore_ascii_case(full_type) && exact(r),
            },
            None => exact(r),
        })
        .map(|(_, r)| r)
        .collect()
}

/// Whether a type has any resource in the world (lists of types the mock does not know are still
/// served when the world has them).
pub(crate) fn world_has_type(world: &World, full_type: &str) -> bool {
    world
        .resources
        .values()
        .any(|r| effective_type(r).eq_ignore_ascii_case(full_type))
}

/// Whether a resource exists, or at least something under it does (a partial snapshot may hold
/// scale set instances or NICs without the scale set itself).
fn exists_or_has_descendants(world: &World, id: &str) -> bool {
    if world.get(id).is_some() {
        return true;
    }
    let prefix = format!("{}/", id_key(id));
    world
        .resources
        .range(prefix.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(&prefix))
}

/// The JSON key under `properties` that holds children of this type (`backendAddressPools`...).
fn child_array<'a>(parent: &'a Value, child: &str) -> Option<(&'a String, &'a Vec<Value>)> {
    parent
        .get("properties")?
        .as_object()?
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case(child) && v.is_array())
        .and_then(|(k, v)| v.as_array().map(|a| (k, a)))
}

/// A child taken from its parent's properties, with `id` and `type` filled in when the world's
/// copy lacks them (az's output and minimal examples often do).
fn child_value(parent_id: &str, parent_type: &str, key: &str, item: &Value) -> Value {
    let mut v = item.clone();
    if let Value::Object(o) = &mut v {
        let name = o
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        o.entry("id")
            .or_insert_with(|| Value::String(format!("{parent_id}/{key}/{name}")));
        o.entry("type")
            .or_insert_with(|| Value::String(format!("{parent_type}/{key}")));
    }
    v
}

/// Children of type `child` under `parent_id`: resources of the world whose id is directly under
/// the parent, plus those in the parent's `properties.<child>` (world entries win on the same id).
/// `None` when neither the parent nor anything under it exists.
pub(crate) fn list_children(world: &World, parent_id: &str, child: &str) -> Option<Vec<Value>> {
    let parent = world.get(parent_id);
    let prefix = format!("{}/{}/", id_key(parent_id), child.to_ascii_lowercase());
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    let parent_value = parent.map(ArmResource::value);
    if let (Some(p), Some(pv)) = (parent, &parent_value)
        && let Some((key, items)) = child_array(pv, child)
    {
        let ptype = effective_type(p);
        for item in items {
            let v = child_value(&p.id, &ptype, key, item);
            let k = v
                .get("id")
                .and_then(Value::as_str)
                .map(id_key)
                .unwrap_or_default();
            out.insert(k, v);
        }
    }
    let mut direct = false;
    for (k, r) in world.resources.range(prefix.clone()..) {
        if !k.starts_with(&prefix) {
            break;
        }
        if !k[prefix.len()..].contains('/') {
            direct = true;
            out.insert(k.clone(), r.value());
        }
    }
    if parent.is_none() && !direct && !exists_or_has_descendants(world, parent_id) {
        return None;
    }
    Some(out.into_values().collect())
}

/// VMSS Uniform NICs of a scale set (all instances), from the Network RP's
/// `virtualMachineScaleSets/{vmss}/networkInterfaces`. `None` when neither the scale set nor
/// anything under it exists.
pub(crate) fn vmss_nics(world: &World, vmss_id: &str) -> Option<Vec<Value>> {
    let prefix = format!("{}/virtualmachines/", id_key(vmss_id));
    let mut out = Vec::new();
    for (k, r) in world.resources.range(prefix.clone()..) {
        if !k.starts_with(&prefix) {
            break;
        }
        // <instance>/networkinterfaces/<nic>, nothing deeper.
        let rest: Vec<&str> = k[prefix.len()..].split('/').collect();
        if rest.len() == 3 && rest[1] == "networkinterfaces" {
            out.push(r.value());
        }
    }
    if out.is_empty() && !exists_or_has_descendants(world, vmss_id) {
        return None;
    }
    Some(out)
}

/// A resource or a sub-resource by id: the world's own entry, else the item of that name in the
/// parent's `properties.<type>` array.
pub(crate) fn get(world: &World, id: &str) -> Option<Value> {
    if let Some(r) = world.get(id) {
        return Some(r.value());
    }
    let p = ResourceId::parse(id)?;
    if p.types.len() < 2 {
        return None;
    }
    let (child, name) = p.types.last()?;
    let parent_id = id.trim_end_matches('/').rsplitn(3, '/').nth(2)?;
    let parent = world.get(parent_id)?;
    let parent_value = parent.value();
    let (key, items) = child_array(&parent_value, child)?;
    let ptype = effective_type(parent);
    items
        .iter()
        .find(|i| {
            i.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .map(|i| child_value(&parent.id, &ptype, key, i))
}

/// Usage rows the mock synthesises when the world has none for a location: the rows an audit
/// reads, with current values counted from the world. Limits are the documented defaults
/// (`domain.md` §4.1/§4.2): public IPs 1,000 (the Enterprise Agreement default of the
/// virtual-network limits footnote, since the 10-per-SKU trial default would flag every test
/// world), NSGs 5,000, NICs 65,536, load balancers 1,000; virtual networks 1,000 (Azure's
/// per-region default, not in domain.md).
const SYNTHETIC_USAGES: &[(&str, &str, u64)] = &[
    ("VirtualNetworks", "Virtual Networks", 1000),
    ("StaticPublicIPAddresses", "Static Public IP Addresses", 1000),
    ("NetworkSecurityGroups", "Network Security Groups", 5000),
    ("PublicIPAddresses", "Public IP Addresses", 1000),
    ("StandardPublicIPAddresses", "Standard Public IP Addresses", 1000),
    ("NetworkInterfaces", "Network Interfaces", 65536),
    ("LoadBalancers", "Load Balancers", 1000),
];

fn str_prop<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

/// The usage rows of (subscription, location): the world's rows as stored (floats and all), else
/// synthesised ones.
pub(crate) fn usage_rows(world: &World, sub: &str, location: &str) -> Vec<Value> {
    let loc = norm_location(location);
    let stored: Vec<Value> = in_subscription(world, sub)
        .filter(|r| {
            let Some(p) = r.parsed_id() else { return false };
            effective_type(r).eq_ignore_ascii_case(USAGE_TYPE)
                && p.child("locations").is_some_and(|l| norm_location(l) == loc)
        })
        .map(ArmResource::value)
        .collect();
    if !stored.is_empty() {
        return stored;
    }
    let here: Vec<&ArmResource> = in_subscription(world, sub)
        .filter(|r| r.location().is_some_and(|l| norm_location(l) == loc))
        .collect();
    let count = |t: &str, extra: &dyn Fn(&Value) -> bool| {
        here.iter()
            .filter(|r| effective_type(r).eq_ignore_ascii_case(t) && extra(&r.value()))
            .count() as u64
    };
    let any = |_: &Value| true;
    let pip = "Microsoft.Network/publicIPAddresses";
    SYNTHETIC_USAGES
        .iter()
        .map(|(name, localized, limit)| {
            let current = match *name {
                "VirtualNetworks" => count("Microsoft.Network/virtualNetworks", &any),
                "StaticPublicIPAddresses" => count(pip, &|v| {
                    str_prop(v, &["properties", "publicIPAllocationMethod"])
                        .is_some_and(|m| m.eq_ignore_ascii_case("Static"))
                }),
                "NetworkSecurityGroups" => count("Microsoft.Network/networkSecurityGroups", &any),
                "PublicIPAddresses" => count(pip, &any),
                "StandardPublicIPAddresses" => count(pip, &|v| {
                    str_prop(v, &["sku", "name"]).is_some_and(|s| s.eq_ignore_ascii_case("Standard"))
                }),
                // Every NIC in the region counts against the quota, VMSS ones included.
                "NetworkInterfaces" => {
                    count("Microsoft.Network/networkInterfaces", &any)
                        + count(
                            "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces",
                            &any,
                        )
                }
                "LoadBalancers" => count("Microsoft.Network/loadBalancers", &any),
                _ => 0,
            };
            json!({
                "currentValue": current,
                "id": format!("/subscriptions/{sub}/providers/Microsoft.Network/locations/{location}/usages/{name}"),
                "limit": limit,
                "name": {"localizedValue": localized, "value": name},
                "unit": "Count"
            })
        })
        .collect()
}

/// The subscription-scope lists a complete inventory makes, per subscription (`domain.md` §6.2).
pub const INVENTORY_TYPES: &[&str] = &[
    "Microsoft.Network/loadBalancers",
    "Microsoft.Network/publicIPAddresses",
    "Microsoft.Network/networkSecurityGroups",
    "Microsoft.Network/networkInterfaces",
    "Microsoft.Compute/virtualMachines",
    "Microsoft.Compute/virtualMachineScaleSets",
    "Microsoft.Network/virtualNetworks",
];

const VMSS_VM_TYPE: &str = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines";

/// The fewest list pages a complete azaudit inventory of a world needs, and where they go.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MinimalPages {
    /// Sum over every subscription.
    pub total: u64,
    /// Per subscription: list → pages. Lists are `list <type>`, `vmss <rg>/<name> virtualMachines`
    /// and `usages <location>`.
    pub detail: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per subscription: its pages (what its read bucket must absorb).
    pub per_subscription: BTreeMap<String, u64>,
    /// The most pages of any single list: a list's pages must be fetched one after the other.
    pub longest_chain: u64,
}

fn pages(n: usize, page_size: usize) -> u64 {
    (n.div_ceil(page_size.max(1))).max(1) as u64
}

/// `(subscription, resource group, scale set)` named by a node's `spec.providerID`
/// (`azure:///subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachineScaleSets/<vmss>/virtualMachines/<i>`, `domain.md` §3.3).
fn vmss_of_provider_id(provider_id: &str) -> Option<(String, String, String)> {
    let rest = provider_id.strip_prefix("azure://")?;
    let p = ResourceId::parse(rest)?;
    let (t0, vmss) = p.types.first()?;
    let (t1, _) = p.types.get(1)?;
    if !t0.eq_ignore_ascii_case("virtualMachineScaleSets") || !t1.eq_ignore_ascii_case("virtualMachines") {
        return None;
    }
    Some((p.subscription?, p.resource_group?, vmss.clone()))
}

/// Pages a complete azaudit inventory needs with subscription-scope lists at `page_size`:
/// per subscription, each of [`INVENTORY_TYPES`] (NICs without VMSS ones), at least one page
/// each; per scale set named by some node's providerID, its instances; per (subscription,
/// location) holding inventory resources, its usage rows.
pub fn minimal_pages(world: &World, page_size: usize) -> MinimalPages {
    let mut out = MinimalPages::default();
    let add = |out: &mut MinimalPages, sub: &str, what: String, n: u64| {
        out.detail.entry(sub.to_string()).or_default().insert(what, n);
        *out.per_subscription.entry(sub.to_string()).or_default() += n;
        out.total += n;
        out.longest_chain = out.longest_chain.max(n);
    };
    let subs = world.subscription_ids();
    for sub in &subs {
        for t in INVENTORY_TYPES {
            let n = list_top(world, sub, None, t).len();
            add(&mut out, sub, format!("list {t}"), pages(n, page_size));
        }
        // Locations holding inventory resources (VMSS instances included), by normalised name.
        let mut locations: BTreeMap<String, String> = BTreeMap::new();
        for r in in_subscription(world, sub) {
            let t = effective_type(r);
            let counted = INVENTORY_TYPES.iter().any(|i| i.eq_ignore_ascii_case(&t))
                || t.eq_ignore_ascii_case(VMSS_VM_TYPE);
            if counted && let Some(l) = r.location() {
                locations.entry(norm_location(l)).or_insert_with(|| l.to_string());
            }
        }
        for (norm, loc) in locations {
            let rows = usage_rows(world, sub, &loc).len();
            add(&mut out, sub, format!("usages {norm}"), pages(rows, page_size));
        }
    }
    // Scale sets that hold nodes, deduplicated case-insensitively (providerIDs lower-case the group).
    let mut scale_sets: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for cluster in world.clusters.values() {
        for node in cluster.of_kind("Node") {
            if let Some(pid) = node.pointer("/spec/providerID").and_then(Value::as_str)
                && let Some((s, rg, vmss)) = vmss_of_provider_id(pid)
            {
                let key = format!("{s}/{rg}/{vmss}").to_ascii_lowercase();
                scale_sets.entry(key).or_insert((s, rg, vmss));
            }
        }
    }
    for (s, rg, vmss) in scale_sets.into_values() {
        let vmss_id = format!(
            "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmss}"
        );
        let instances = list_children(world, &vmss_id, "virtualMachines")
            .unwrap_or_default()
            .len();
        let sub = subs
            .iter()
            .find(|x| x.eq_ignore_ascii_case(&s))
            .cloned()
            .unwrap_or(s);
        add(
            &mut out,
            &sub,
            format!(
                "vmss {}/{} virtualMachines",
                rg.to_ascii_lowercase(),
                vmss.to_ascii_lowercase()
            ),
            pages(instances, page_size),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn world(items: Value, nodes: Value) -> World {
        World::from_files(vec![
            (PathBuf::from("arm/a.json"), serde_json::to_vec(&items).unwrap()),
            (
                PathBuf::from("k8s/c1/nodes.json"),
                serde_json::to_vec(&nodes).unwrap(),
            ),
        ])
    }

    const RG: &str = "/subscriptions/s1/resourceGroups/rg";

    fn sample() -> World {
        world(
            json!([
                {"id": format!("{RG}/providers/Microsoft.Network/loadBalancers/k"), "type": "Microsoft.Network/loadBalancers", "location": "westus",
                 "properties": {"backendAddressPools": [{"name": "k", "properties": {}}]}},
                {"id": format!("{RG}/providers/Microsoft.Network/networkInterfaces/n1"), "type": "Microsoft.Network/networkInterfaces", "location": "westus"},
                {"id": format!("{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/0/networkInterfaces/n"), "type": "Microsoft.Network/networkInterfaces", "location": "westus"},
                {"id": format!("{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/1/networkInterfaces/n"), "type": "Microsoft.Network/networkInterfaces"},
                {"id": format!("{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/v"), "type": "Microsoft.Compute/virtualMachineScaleSets", "location": "westus"},
                {"id": format!("{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/0"), "type": "Microsoft.Compute/virtualMachines", "location": "westus"},
                {"id": format!("{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/1"), "location": "westus"},
                {"id": format!("{RG}/providers/Microsoft.Network/publicIPAddresses/p"), "type": "Microsoft.Network/publicIPAddresses", "location": "East US",
                 "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}},
                {"id": "/subscriptions/s1/resourceGroups/other", "type": "Microsoft.Resources/resourceGroups", "location": "northeurope"}
            ]),
            json!({"kind": "NodeList", "items": [
                {"metadata": {"name": "a"}, "spec": {"providerID": "azure:///subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/0"}},
                {"metadata": {"name": "b"}, "spec": {"providerID": "azure:///subscriptions/s1/resourcegroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/V/virtualMachines/1"}}
            ]}),
        )
    }

    #[test]
    fn list_top_agrees_with_parsing_every_id() {
        let mut w = sample();
        // Ids the substring shortcut must not be fooled by: a child of another provider under a
        // public IP, odd casing, and an id that names no provider.
        for (id, t) in [
            (
                format!(
                    "{RG}/providers/Microsoft.Network/publicIPAddresses/p/providers/Microsoft.Insights/diagnosticSettings/d"
                ),
                "Microsoft.Insights/diagnosticSettings",
            ),
            (
                format!("{RG}/PROVIDERS/microsoft.network/PUBLICIPADDRESSES/Loud"),
                "Microsoft.Network/publicIPAddresses",
            ),
            (
                "/subscriptions/s1/odd/thing".to_string(),
                "Microsoft.Network/publicIPAddresses",
            ),
        ] {
            w.resources.insert(
                azaudit_world::id_key(&id),
                ArmResource::new(
                    id.clone(),
                    t.into(),
                    &json!({"id": id, "type": t}),
                    PathBuf::from("arm/x.json"),
                ),
            );
        }
        for t in INVENTORY_TYPES
            .iter()
            .chain(&["Microsoft.Compute/virtualMachineScaleSets/virtualMachines"])
        {
            let slow: Vec<&ArmResource> = in_subscription(&w, "s1")
                .filter(|r| effective_type(r).eq_ignore_ascii_case(t))
                .collect();
            assert_eq!(list_top(&w, "S1", None, t), slow, "{t}");
        }
        assert_eq!(
            list_top(&w, "s1", None, "Microsoft.Network/publicIPAddresses").len(),
            3
        );
    }

    #[test]
    fn lists_classify_by_id() {
        let w = sample();
        assert_eq!(
            list_top(&w, "S1", None, "Microsoft.Network/networkInterfaces").len(),
            1
        );
        assert_eq!(
            list_top(&w, "s1", Some("RG"), "microsoft.compute/virtualmachines").len(),
            0
        );
        let vmss = format!("{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/v");
        assert_eq!(list_children(&w, &vmss, "virtualMachines").unwrap().len(), 2);
        assert_eq!(vmss_nics(&w, &vmss).unwrap().len(), 2);
        assert_eq!(
            list_children(&w, &format!("{vmss}/virtualMachines/1"), "networkInterfaces")
                .unwrap()
                .len(),
            1
        );
        assert!(
            list_children(
                &w,
                &format!("{RG}/providers/Microsoft.Network/loadBalancers/x"),
                "probes"
            )
            .is_none()
        );
        let pool = get(
            &w,
            &format!("{RG}/providers/Microsoft.Network/loadBalancers/k/backendAddressPools/K"),
        )
        .unwrap();
        assert_eq!(
            pool["type"],
            "Microsoft.Network/loadBalancers/backendAddressPools"
        );
        assert_eq!(
            pool["id"],
            format!("{RG}/providers/Microsoft.Network/loadBalancers/k/backendAddressPools/k")
        );
        let groups = resource_groups(&w, "s1");
        assert_eq!(groups.len(), 2);
        assert!(resource_group(&w, "s1", "OTHER").is_some());
    }

    #[test]
    fn usages_are_synthesised_from_counts() {
        let w = sample();
        let rows = usage_rows(&w, "s1", "eastus");
        let by: BTreeMap<&str, u64> = rows
            .iter()
            .map(|r| {
                (
                    r["name"]["value"].as_str().unwrap(),
                    r["currentValue"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(by["PublicIPAddresses"], 1);
        assert_eq!(by["StandardPublicIPAddresses"], 1);
        assert_eq!(by["StaticPublicIPAddresses"], 1);
        assert_eq!(by["LoadBalancers"], 0);
        let west = usage_rows(&w, "s1", "West US");
        let nics = west
            .iter()
            .find(|r| r["name"]["value"] == "NetworkInterfaces")
            .unwrap();
        assert_eq!(nics["currentValue"], 2);
    }

    #[test]
    fn minimal_pages_counts_lists_scale_sets_and_locations() {
        let w = sample();
        let m = minimal_pages(&w, 1);
        let d = &m.detail["s1"];
        // 7 lists of one page, the scale set's 2 instances, usages of westus and eastus (7 rows each).
        assert_eq!(d.len(), 7 + 1 + 2);
        assert_eq!(d["vmss rg/v virtualMachines"], 2);
        assert_eq!(d["usages westus"], 7);
        assert_eq!(m.total, 7 + 2 + 14);
        assert_eq!(m.longest_chain, 7);
        assert_eq!(minimal_pages(&w, 50).total, 7 + 1 + 2);
    }
}
