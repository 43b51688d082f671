//! `service-pip-resource-group-mismatch`: a Service asks for an existing public IP — by name
//! (`azure-pip-name`, `azure-pip-name-ipv6`) or by address (`spec.loadBalancerIP`,
//! `azure-load-balancer-ipv4/-ipv6`) — that exists only in a resource group other than the one
//! the provider searches: the `azure-load-balancer-resource-group` annotation, else the cluster
//! resource group (`getPublicIPAddressResourceGroup`, domain.md §1.8; the guide's annotation table:
//! "当为 Service 指定公网 IP 并且该公网 IP 与 Kubernetes 集群不在同一个 Resource Group 时，需要使用该
//! Annotation"). The next reconcile fails, even if the Service still shows its old address.
//!
//! Only external Services are judged (an internal Service's requested IP is a private address).
//! Needs the PIP listing of the network subscription complete. [`lookup`] is shared with
//! `service-pending-load-balancer`, which reports missing PIPs as a probable cause.

use super::context::ClusterView;
use super::{Context, Rule, RuleInfo};
use crate::conventions::{self, is_internal, pip_resource_group, requested_ips, requested_pip_names};
use crate::findings::{Finding, Severity};
use crate::inventory::{ArmKind, PublicIp, Service};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "service-pip-resource-group-mismatch",
        title: "Service asks for a public IP in a resource group the provider does not search",
        default_severity: Severity::High,
        rationale: "The cloud provider looks for a Service's pre-created public IP only in the group named by service.beta.kubernetes.io/azure-load-balancer-resource-group (else the cluster resource group). A PIP elsewhere is never found: the Service stays <pending>, or loses its address at the next reconcile.",
        remediation: "Point the Service at the group that holds the PIP: kubectl -n <ns> annotate service <svc> service.beta.kubernetes.io/azure-load-balancer-resource-group=<group> --overwrite (and grant the cluster identity Network Contributor on that group).",
        source: "Annotation 表: service.beta.kubernetes.io/azure-load-balancer-resource-group",
        cleanup: false,
    },
    check,
};

/// One requested public IP and where it was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct Request {
    /// `name` (azure-pip-name) or `ip` (loadBalancerIP / ipv4 / ipv6 annotations).
    pub by: &'static str,
    pub value: String,
    /// Ids of matching PIPs in the searched group (empty: not there).
    pub in_searched_group: Vec<String>,
    /// Ids of matching PIPs elsewhere in the network subscription.
    pub in_other_groups: Vec<String>,
    /// Ids of matching PIPs in other subscriptions.
    pub in_other_subscriptions: Vec<String>,
}

impl Request {
    pub fn found_nowhere(&self) -> bool {
        self.in_searched_group.is_empty()
            && self.in_other_groups.is_empty()
            && self.in_other_subscriptions.is_empty()
    }
    pub fn misplaced(&self) -> bool {
        self.in_searched_group.is_empty() && !self.in_other_groups.is_empty()
    }
}

/// Where the provider searches for a Service's PIP, and what it would find.
pub(super) struct Lookup {
    pub subscription: String,
    pub searched_group: String,
    pub requests: Vec<Request>,
}

/// The subscription the provider creates network resources in: `networkResourceSubscriptionID`,
/// else the cluster's (domain.md §1.9).
fn network_subscription(cv: &ClusterView) -> Option<String> {
    cv.config_str("networkResourceSubscriptionID")
        .or_else(|| cv.subscription().map(str::to_string))
}

/// The PIP requests of an external Service, resolved against the inventory. `None` when the
/// Service requests nothing, is internal, or the answer cannot be known (PIP listing incomplete,
/// cluster resource group or subscription unknown).
pub(super) fn lookup(ctx: &Context, cv: &ClusterView, svc: &Service) -> Option<Lookup> {
    if is_internal(svc) {
        return None;
    }
    let names = requested_pip_names(svc);
    let ips = requested_ips(svc);
    if names.is_empty() && ips.is_empty() {
        return None;
    }
    let sub = network_subscription(cv)?;
    let rg = pip_resource_group(svc, cv.cluster.resource_group.as_deref())?.to_string();
    if !ctx.audited_subscription(&sub) || !ctx.arm_complete(&sub, ArmKind::PublicIpAddresses) {
        return None;
    }
    let resolve = |by: &'static str, value: &str, matches: &dyn Fn(&PublicIp) -> bool| {
        let mut r = Request {
            by,
            value: value.to_string(),
            in_searched_group: Vec::new(),
            in_other_groups: Vec::new(),
            in_other_subscriptions: Vec::new(),
        };
        for p in ctx.inv.public_ips.iter().filter(|p| matches(p)) {
            if !p.subscription.eq_ignore_ascii_case(&sub) {
                r.in_other_subscriptions.push(p.id.clone());
            } else if p.resource_group.eq_ignore_ascii_case(&rg) {
                r.in_searched_group.push(p.id.clone());
            } else {
                r.in_other_groups.push(p.id.clone());
            }
        }
        r
    };
    let mut requests = Vec::new();
    for n in names {
        requests.push(resolve("name", n, &|p| p.name.eq_ignore_ascii_case(n)));
    }
    for ip in ips {
        requests.push(resolve("ip", ip, &|p| p.ip_address.as_deref() == Some(ip)));
    }
    Some(Lookup {
        subscription: sub,
        searched_group: rg,
        requests,
    })
}

/// The resource group of an ARM id (as written).
pub(super) fn group_of(id: &str) -> String {
    azaudit_world::ResourceId::parse(id)
        .and_then(|r| r.resource_group)
        .unwrap_or_default()
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        for svc in cv
            .lb_services
            .iter()
            .filter(|s| conventions::wants_cloud_load_balancer(s))
        {
            let Some(l) = lookup(ctx, cv, svc) else { continue };
            let misplaced: Vec<&Request> = l.requests.iter().filter(|r| r.misplaced()).collect();
            if misplaced.is_empty() {
                continue;
            }
            let ns = svc.meta.namespace.as_deref().unwrap_or("default");
            let name = &svc.meta.name;
            let mut groups: Vec<String> = misplaced
                .iter()
                .flat_map(|r| r.in_other_groups.iter().map(|id| group_of(id)))
                .collect();
            groups.sort_by_key(|g| g.to_ascii_lowercase());
            groups.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
            let what: Vec<String> = misplaced
                .iter()
                .map(|r| {
                    let by = if r.by == "name" { "public IP" } else { "address" };
                    let there: Vec<String> = r.in_other_groups.iter().map(|id| group_of(id)).collect();
                    format!("{by} {} (in {})", r.value, there.join(", "))
                })
                .collect();
            let annotated = svc
                .annotation(conventions::ANN_PIP_RG)
                .is_some_and(|v| !v.trim().is_empty());
            let why = if annotated {
                "named by its azure-load-balancer-resource-group annotation"
            } else {
                "the cluster group: it has no azure-load-balancer-resource-group annotation"
            };
            let remediation = match groups.as_slice() {
                [one] => format!(
                    "kubectl -n {ns} annotate service {name} {}={one} --overwrite",
                    conventions::ANN_PIP_RG
                ),
                _ => format!(
                    "The requested PIPs are in several groups ({}): move them into one (az resource move) or request PIPs from one group, then kubectl -n {ns} annotate service {name} {}=<group> --overwrite",
                    groups.join(", "),
                    conventions::ANN_PIP_RG
                ),
            };
            out.push(
                Finding::new(
                    RULE.info.id,
                    RULE.info.default_severity,
                    format!("k8s://{}/{ns}/services/{name}", cv.name()),
                    format!(
                        "Service {ns}/{name} in {} asks for {}, but the provider looks only in {} ({why}) and will not find it.",
                        cv.name(),
                        what.join(" and "),
                        l.searched_group
                    ),
                )
                .cluster(cv.name())
                .subscription(&l.subscription)
                .evidence("searched_resource_group", &l.searched_group)
                .evidence("requests", &misplaced)
                .evidence("ingress_ips", &svc.ingress_ips)
                .remediation(remediation),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::*;
    use serde_json::json;

    const NET_RG: &str = "rg-network";

    fn audit(pips: Vec<serde_json::Value>, services: Vec<serde_json::Value>) -> Vec<Finding> {
        let inv = WorldBuilder::new()
            .subscription(SUB2)
            .arm(pips)
            .k8s(CLUSTER, services)
            .inventory();
        run(&inv, check)
    }

    #[test]
    fn pip_name_in_another_group_without_annotation_is_reported() {
        let out = audit(
            vec![public_ip(
                SUB,
                NET_RG,
                "pip-partner-gateway",
                "20.103.61.227",
                json!({}),
            )],
            vec![annotate(
                lb_service(
                    "partners",
                    "partner-gateway",
                    &uid('7'),
                    &[("TCP", 443, 32018)],
                    &["20.103.61.227"],
                ),
                conventions::ANN_PIP_NAME,
                "pip-partner-gateway",
            )],
        );
        assert_eq!(
            resources(&out),
            vec![svc_ref(CLUSTER, "partners", "partner-gateway")]
        );
        assert_eq!(out[0].evidence["searched_resource_group"], RG);
        assert!(
            out[0]
                .remediation
                .contains(&format!("azure-load-balancer-resource-group={NET_RG}")),
            "{}",
            out[0].remediation
        );
    }

    #[test]
    fn requested_address_in_a_group_other_than_the_annotated_one_is_reported() {
        let svc = annotate(
            annotate(
                lb_service("ns", "web", &uid('1'), &[("TCP", 80, 30080)], &[]),
                conventions::ANN_LB_IPV4,
                "20.0.0.9",
            ),
            conventions::ANN_PIP_RG,
            "rg-wrong",
        );
        let out = audit(
            vec![public_ip(SUB, NET_RG, "byo", "20.0.0.9", json!({}))],
            vec![svc],
        );
        assert_eq!(resources(&out), vec![svc_ref(CLUSTER, "ns", "web")]);
        assert!(
            out[0].message.contains("looks only in rg-wrong (named by its"),
            "{}",
            out[0].message
        );
    }

    #[test]
    fn look_alikes_are_not_reported() {
        let mut internal = annotate(
            lb_service("ns", "ilb", &uid('2'), &[("TCP", 80, 30081)], &["10.0.0.50"]),
            conventions::ANN_INTERNAL,
            "true",
        );
        set(&mut internal, &["spec", "loadBalancerIP"], json!("10.0.0.50"));
        let out = audit(
            vec![
                public_ip(SUB, NET_RG, "pip-ingress", "20.0.0.1", json!({})),
                public_ip(SUB, RG, "pip-local", "20.0.0.2", json!({})),
                // Same name in another group too: the searched group wins.
                public_ip(SUB, "rg-old", "pip-local", "20.0.0.3", json!({})),
                // A PIP with that private-looking address elsewhere does not matter for an ILB.
                public_ip(SUB, NET_RG, "odd", "10.0.0.50", json!({})),
                // Only in another subscription: not fixable by the annotation (pending's cause).
                public_ip(SUB2, "rg-x", "pip-far", "20.0.0.4", json!({})),
            ],
            vec![
                // BYO PIP in another group, annotated correctly.
                annotate(
                    annotate(
                        lb_service(
                            "ingress",
                            "nginx",
                            &uid('3'),
                            &[("TCP", 443, 31443)],
                            &["20.0.0.1"],
                        ),
                        conventions::ANN_PIP_NAME,
                        "pip-ingress",
                    ),
                    conventions::ANN_PIP_RG,
                    NET_RG,
                ),
                // BYO PIP in the cluster group.
                annotate(
                    lb_service("ns", "local", &uid('4'), &[("TCP", 80, 30082)], &["20.0.0.2"]),
                    conventions::ANN_PIP_NAME,
                    "pip-local",
                ),
                annotate(
                    lb_service("ns", "far", &uid('5'), &[("TCP", 80, 30083)], &[]),
                    conventions::ANN_PIP_NAME,
                    "pip-far",
                ),
                // Requests an address nobody has: pending's business, not this rule's.
                annotate(
                    lb_service("shop", "promo", &uid('6'), &[("TCP", 80, 30084)], &[]),
                    conventions::ANN_LB_IPV4,
                    "20.103.61.240",
                ),
                internal,
                // Requests nothing.
                lb_service("ns", "plain", &uid('8'), &[("TCP", 80, 30085)], &["20.0.0.8"]),
            ],
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn incomplete_pip_listing_emits_nothing() {
        let inv = WorldBuilder::new()
            .arm(vec![public_ip(SUB, NET_RG, "pip-x", "20.0.0.1", json!({}))])
            .k8s(
                CLUSTER,
                vec![annotate(
                    lb_service("ns", "web", &uid('1'), &[("TCP", 80, 30080)], &[]),
                    conventions::ANN_PIP_NAME,
                    "pip-x",
                )],
            )
            .gap(json!({"scope": "arm", "subscription": SUB, "kind": "public-ip-addresses", "cause": "429"}))
            .inventory();
        assert!(run(&inv, check).is_empty());
    }
}
