//! `service-pending-load-balancer`: a Service of type LoadBalancer (reconciled by the Azure
//! provider: no `loadBalancerClass`) with no ingress address — `EXTERNAL-IP <pending>`, the
//! guide's "LoadBalancer Service 一直处于 pending 状态". The guide sends the reader to the
//! controller manager's log; this rule first looks in the inventory for the usual causes and
//! lists each it finds (`probable_causes`: a short code and a sentence):
//!
//! | code | found when |
//! |---|---|
//! | `frontend-limit-reached` | the LB the Service goes to (`<name>` or `<name>-internal`) has as many frontends as its SKU allows (Standard 600, Basic 200; domain.md §4.1) |
//! | `public-ip-quota-reached` | the Service needs a new public IP and the region's `PublicIPAddresses`/`StandardPublicIPAddresses` usage is at its limit |
//! | `public-ip-without-frontend` | a public IP made for the Service (named `<cluster>-<base>` or tagged with it) exists but is attached to nothing: created, then the LB update failed (the guide's FrontendIPConfigurations quota story) |
//! | `requested-ip-missing` / `requested-pip-missing` | the address / PIP name it asks for exists in no listed subscription |
//! | `requested-pip-in-other-group` | it exists only outside the group the provider searches (see `service-pip-resource-group-mismatch`) |
//! | `requested-pip-in-other-subscription` | it exists only in another subscription |
//! | `no-eligible-nodes` | no node of the cluster may join a backend pool |
//! | `virtual-node-not-excluded` | a virtual node is not excluded ("failed to ensure host in pool: instance not found", the guide's Virtual Kubelet section) |
//! | `arm-read-budget-exhausted` | during this audit ARM reported the subscription's read budget low or throttled us (see `arm-read-budget-low`) |
//!
//! With none found the finding says so and points at the events and the controller's log.
//! Causes are only claimed from complete listings (a missing PIP needs the PIP listing, node
//! causes the Nodes listing); the pending state itself needs nothing but the Service.

use serde::Serialize;

use super::arm_read_budget_low::budget;
use super::context::ClusterView;
use super::service_pip_resource_group_mismatch::{group_of, lookup};
use super::{Context, Rule, RuleInfo};
use crate::conventions::{
    self, INTERNAL_LB_SUFFIX, base_name, generated_pip_name, is_eligible_node, is_excluded_by_label,
    is_internal, is_unmanaged, is_virtual_node, pip_cluster_matches, pip_services,
};
use crate::findings::{Finding, Severity};
use crate::inventory::{ArmKind, Service, Sku};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "service-pending-load-balancer",
        title: "LoadBalancer Service without an address",
        default_severity: Severity::High,
        rationale: "The Service has been given no load balancer address (EXTERNAL-IP <pending>): the cloud provider failed to create its frontend, public IP, rules or NSG rules, and keeps retrying. Nothing outside the cluster can reach it.",
        remediation: "Read the reason the provider gives: kubectl -n <ns> describe service <svc> (events: SyncLoadBalancerFailed / CreatingLoadBalancerFailed) and, on self-managed clusters, kubectl -n kube-system logs -l component=cloud-controller-manager --tail 200 (kube-controller-manager for the in-tree provider); then fix the cause listed in the finding's evidence.",
        source: "LoadBalancer Service 一直处于 pending 状态",
        cleanup: false,
    },
    check,
};

/// Frontend IP configurations per load balancer (domain.md §4.1, `load-balancer-limits.md`).
/// Kept here until the shared limits table lands; the numbers are Azure's, not ours.
const MAX_FRONTENDS_STANDARD: usize = 600;
const MAX_FRONTENDS_BASIC: usize = 200;
/// Usage rows that cap new public IPs in a region (domain.md §4.2–4.3).
const PIP_QUOTA_ROWS: [&str; 2] = ["PublicIPAddresses", "StandardPublicIPAddresses"];

/// One probable cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Cause {
    pub code: &'static str,
    pub detail: String,
}

fn cause(code: &'static str, detail: String) -> Cause {
    Cause { code, detail }
}

/// The load balancer a Service lands on: `<loadBalancerName or cluster name>[-internal]`.
fn target_lb_name(cv: &ClusterView, svc: &Service) -> String {
    let prefix = cv
        .config_str("loadBalancerName")
        .unwrap_or_else(|| cv.cluster.cluster_name_tag.clone());
    if is_internal(svc) {
        format!("{prefix}{INTERNAL_LB_SUFFIX}")
    } else {
        prefix
    }
}

fn frontend_limit(cv: &ClusterView, svc: &Service) -> Option<Cause> {
    let name = target_lb_name(cv, svc);
    let lb = cv
        .managed_lbs
        .iter()
        .find(|lb| lb.name.eq_ignore_ascii_case(&name))?;
    let limit = match lb.sku {
        Sku::Basic => MAX_FRONTENDS_BASIC,
        _ => MAX_FRONTENDS_STANDARD,
    };
    (lb.frontends.len() >= limit).then(|| {
        cause(
            "frontend-limit-reached",
            format!(
                "load balancer {} already has {} frontend IP configurations, the limit for its SKU is {limit}",
                lb.name,
                lb.frontends.len()
            ),
        )
    })
}

fn cluster_location(cv: &ClusterView) -> Option<String> {
    cv.config_str("location")
        .or_else(|| cv.managed_lbs.iter().find_map(|lb| lb.location.clone()))
        .map(|l| l.to_ascii_lowercase().replace(' ', ""))
}

fn pip_quota(ctx: &Context, cv: &ClusterView, svc: &Service) -> Option<Cause> {
    // Only a Service that needs a new PIP: external and not pinning an existing one.
    if is_internal(svc)
        || !conventions::requested_pip_names(svc).is_empty()
        || !conventions::requested_ips(svc).is_empty()
    {
        return None;
    }
    let sub = cv.subscription()?;
    let loc = cluster_location(cv)?;
    ctx.inv
        .usages
        .iter()
        .find(|u| {
            u.subscription.eq_ignore_ascii_case(sub)
                && u.location.to_ascii_lowercase().replace(' ', "") == loc
                && PIP_QUOTA_ROWS.iter().any(|n| u.name.eq_ignore_ascii_case(n))
                && u.limit > 0.0
                && u.current >= u.limit
        })
        .map(|u| {
            cause(
                "public-ip-quota-reached",
                format!(
                    "the {} quota in {} is used up ({} of {}): no new public IP can be created",
                    u.name, u.location, u.current, u.limit
                ),
            )
        })
}

/// A PIP made for this Service that is attached to nothing.
fn pip_without_frontend(ctx: &Context, cv: &ClusterView, svc: &Service) -> Option<Cause> {
    let sub = cv.subscription()?;
    let uid = svc.meta.uid.as_deref()?;
    let generated = generated_pip_name(&cv.cluster.cluster_name_tag, &base_name(uid));
    let key = svc.key();
    let p = ctx.inv.public_ips.iter().find(|p| {
        p.subscription.eq_ignore_ascii_case(sub)
            && p.ip_configuration_id.is_none()
            && p.nat_gateway_id.is_none()
            && cv
                .pip_resource_groups
                .contains(&p.resource_group.to_ascii_lowercase())
            && (p
                .name
                .to_ascii_lowercase()
                .starts_with(&generated.to_ascii_lowercase())
                || (pip_services(p).is_some_and(|s| s.iter().any(|x| x.eq_ignore_ascii_case(&key)))
                    && pip_cluster_matches(p, &cv.cluster.cluster_name_tag)))
    })?;
    Some(cause(
        "public-ip-without-frontend",
        format!(
            "public IP {} ({}) was created for this Service but is attached to no load balancer frontend: the load balancer update failed after it",
            p.name,
            p.ip_address.as_deref().unwrap_or("no address")
        ),
    ))
}

fn requested(ctx: &Context, cv: &ClusterView, svc: &Service, out: &mut Vec<Cause>) {
    let Some(l) = lookup(ctx, cv, svc) else { return };
    for r in &l.requests {
        let what = if r.by == "name" {
            format!("public IP {}", r.value)
        } else {
            format!("address {}", r.value)
        };
        if r.found_nowhere() {
            let code = if r.by == "name" {
                "requested-pip-missing"
            } else {
                "requested-ip-missing"
            };
            out.push(cause(
                code,
                format!("it asks for {what}, which exists in no audited subscription"),
            ));
        } else if r.misplaced() {
            let groups: Vec<String> = r.in_other_groups.iter().map(|id| group_of(id)).collect();
            out.push(cause(
                "requested-pip-in-other-group",
                format!(
                    "it asks for {what}, which is in {} while the provider searches {}",
                    groups.join(", "),
                    l.searched_group
                ),
            ));
        } else if r.in_searched_group.is_empty() {
            out.push(cause(
                "requested-pip-in-other-subscription",
                format!(
                    "it asks for {what}, which exists only in another subscription ({}) while the provider uses {}",
                    r.in_other_subscriptions.join(", "),
                    l.subscription
                ),
            ));
        }
    }
}

fn node_causes(cv: &ClusterView, out: &mut Vec<Cause>) {
    if !cv.nodes_complete() {
        return;
    }
    let nodes = &cv.cluster.nodes;
    if !nodes.iter().any(|n| is_eligible_node(n, cv.cluster)) {
        out.push(cause(
            "no-eligible-nodes",
            format!(
                "none of the cluster's {} node(s) may join a load balancer backend pool (excluded, unmanaged, control-plane, virtual or in another resource group)",
                nodes.len()
            ),
        ));
    }
    let virtual_nodes: Vec<&str> = nodes
        .iter()
        .filter(|n| is_virtual_node(n) && !is_excluded_by_label(n) && !is_unmanaged(n))
        .map(|n| n.meta.name.as_str())
        .collect();
    if !virtual_nodes.is_empty() {
        out.push(cause(
            "virtual-node-not-excluded",
            format!(
                "virtual node(s) {} are not excluded from load balancers: the provider fails with \"instance not found\" when it adds them to the pool",
                virtual_nodes.join(", ")
            ),
        ));
    }
}

/// Every probable cause the inventory shows for a pending Service.
pub(super) fn probable_causes(ctx: &Context, cv: &ClusterView, svc: &Service) -> Vec<Cause> {
    let mut out = Vec::new();
    out.extend(frontend_limit(cv, svc));
    out.extend(pip_quota(ctx, cv, svc));
    if !is_internal(svc) {
        out.extend(pip_without_frontend(ctx, cv, svc));
    }
    requested(ctx, cv, svc, &mut out);
    node_causes(cv, &mut out);
    if let Some(sub) = cv.subscription()
        && let Some(b) = budget(ctx, sub)
        && b.is_low()
    {
        out.push(cause("arm-read-budget-exhausted", b.describe()));
    }
    out
}

/// The first command to run for a cause.
fn fix_for(c: &Cause, cv: &ClusterView, svc: &Service) -> String {
    let ns = svc.meta.namespace.as_deref().unwrap_or("default");
    let name = &svc.meta.name;
    match c.code {
        "frontend-limit-reached" => format!(
            "delete orphaned frontends first (azaudit audit --only orphaned-lb-frontend), or spread Services over more load balancers (multipleStandardLoadBalancerConfigurations); az network lb frontend-ip list -g <rg> --lb-name {} -o table",
            target_lb_name(cv, svc)
        ),
        "public-ip-quota-reached" => {
            "free unused public IPs (azaudit audit --only orphaned-public-ip,unattached-public-ip) or request more quota (az quota / Azure portal → Usage + quotas)".to_string()
        }
        "public-ip-without-frontend" => format!(
            "kubectl -n {ns} describe service {name} shows why the load balancer update failed; fix that (usually a limit) and the provider reuses the public IP"
        ),
        // Azure assigns addresses: a missing address cannot be created, only replaced.
        "requested-ip-missing" => format!(
            "point the Service at a static public IP you own (az network public-ip list --query \"[?ipAddress=='{ip}']\" finds none today), or drop the request: kubectl -n {ns} annotate service {name} {}- {}- and kubectl -n {ns} patch service {name} --type merge -p '{{\"spec\":{{\"loadBalancerIP\":null}}}}'",
            conventions::ANN_LB_IPV4,
            conventions::ANN_LB_IPV6,
            ip = conventions::requested_ips(svc).first().copied().unwrap_or("<ip>")
        ),
        "requested-pip-missing" => format!(
            "create it: az network public-ip create -g {} -n {} --sku Standard --allocation-method Static (or remove the azure-pip-name annotation)",
            conventions::pip_resource_group(svc, cv.cluster.resource_group.as_deref()).unwrap_or("<group>"),
            conventions::requested_pip_names(svc).first().copied().unwrap_or("<name>")
        ),
        "requested-pip-in-other-group" => format!(
            "kubectl -n {ns} annotate service {name} {}=<group that holds the PIP> --overwrite",
            conventions::ANN_PIP_RG
        ),
        "requested-pip-in-other-subscription" => {
            "move the public IP into the cluster's network subscription (az resource move), or set networkResourceSubscriptionID in the cloud config".to_string()
        }
        "no-eligible-nodes" => {
            "kubectl get nodes --show-labels: remove node.kubernetes.io/exclude-from-external-load-balancers / kubernetes.azure.com/managed=false where they do not belong".to_string()
        }
        "virtual-node-not-excluded" => {
            "kubectl label node <virtual node> node.kubernetes.io/exclude-from-external-load-balancers=true".to_string()
        }
        "arm-read-budget-exhausted" => {
            "see the arm-read-budget-low finding: reduce ARM readers and enable the provider's rate limits and caches".to_string()
        }
        _ => String::new(),
    }
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        for svc in cv
            .lb_services
            .iter()
            .filter(|s| conventions::wants_cloud_load_balancer(s))
        {
            if !svc.ingress_ips.is_empty()
                || !svc.ingress_hostnames.is_empty()
                || svc.meta.deletion_timestamp.is_some()
            {
                continue;
            }
            let ns = svc.meta.namespace.as_deref().unwrap_or("default");
            let name = &svc.meta.name;
            let causes = probable_causes(ctx, cv, svc);
            let describe = format!(
                "kubectl -n {ns} describe service {name}; kubectl -n {ns} get events --field-selector involvedObject.name={name}"
            );
            let (message, remediation) = match causes.first() {
                Some(c) => (
                    format!(
                        "LoadBalancer Service {ns}/{name} in {} has no address; probable cause: {}{}.",
                        cv.name(),
                        c.detail,
                        if causes.len() > 1 {
                            format!(" (and {} more in the evidence)", causes.len() - 1)
                        } else {
                            String::new()
                        }
                    ),
                    format!("{}; to confirm: {describe}", fix_for(c, cv, svc)),
                ),
                None => (
                    format!(
                        "LoadBalancer Service {ns}/{name} in {} has no address and the inventory shows no cause: the provider's events and log say why.",
                        cv.name()
                    ),
                    format!(
                        "{describe}; on self-managed clusters: kubectl -n kube-system logs -l component=cloud-controller-manager --tail 200 | grep {ns}/{name}"
                    ),
                ),
            };
            let mut f = Finding::new(
                RULE.info.id,
                RULE.info.default_severity,
                format!("k8s://{}/{ns}/services/{name}", cv.name()),
                message,
            )
            .cluster(cv.name())
            .evidence("probable_causes", &causes)
            .evidence("internal", is_internal(svc))
            .evidence("target_load_balancer", target_lb_name(cv, svc))
            .evidence("requested_ips", conventions::requested_ips(svc))
            .evidence("requested_pip_names", conventions::requested_pip_names(svc))
            .evidence("created", &svc.meta.creation_timestamp)
            .remediation(remediation);
            if let Some(sub) = cv.subscription() {
                f = f.subscription(sub);
            }
            // Causes that need a listing we lack are not claimed; say the list may be short.
            if !cv.nodes_complete()
                || cv
                    .subscription()
                    .is_none_or(|s| !ctx.arm_complete(s, ArmKind::PublicIpAddresses))
            {
                f = f.evidence("causes_may_be_incomplete", true);
            }
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::*;
    use serde_json::json;

    fn codes(f: &Finding) -> Vec<String> {
        f.evidence["probable_causes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["code"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn pending(ns: &str, name: &str, u: char) -> serde_json::Value {
        lb_service(ns, name, &uid(u), &[("TCP", 80, 31214)], &[])
    }

    fn world() -> WorldBuilder {
        WorldBuilder::new().subscription(SUB2)
    }

    #[test]
    fn requested_address_that_exists_nowhere_is_the_cause() {
        let inv = world()
            .arm(vec![public_ip(SUB, RG, "other", "20.0.0.1", json!({}))])
            .k8s(
                CLUSTER,
                vec![
                    annotate(
                        pending("shop", "promo-landing", '1'),
                        conventions::ANN_LB_IPV4,
                        "20.103.61.240",
                    ),
                    node("n0", "10.0.0.4"),
                ],
            )
            .inventory();
        let out = run(&inv, check);
        assert_eq!(resources(&out), vec![svc_ref(CLUSTER, "shop", "promo-landing")]);
        assert_eq!(codes(&out[0]), vec!["requested-ip-missing"]);
        assert!(out[0].message.contains("20.103.61.240"), "{}", out[0].message);
        assert!(out[0].remediation.contains("describe service promo-landing"));
    }

    #[test]
    fn requested_pip_elsewhere_and_virtual_nodes_are_causes() {
        let mut vk = node("virtual-kubelet-aci", "10.0.0.99");
        set(&mut vk, &["spec", "providerID"], json!("vk://aci"));
        let vk = label(vk, "type", "virtual-kubelet");
        let inv = world()
            .arm(vec![
                public_ip(SUB, "rg-net", "pip-a", "20.0.0.1", json!({})),
                public_ip(SUB2, "rg-far", "pip-b", "20.0.0.2", json!({})),
            ])
            .k8s(
                CLUSTER,
                vec![
                    annotate(pending("ns", "a", '1'), conventions::ANN_PIP_NAME, "pip-a"),
                    annotate(pending("ns", "b", '2'), conventions::ANN_PIP_NAME, "pip-b"),
                    annotate(pending("ns", "c", '3'), conventions::ANN_PIP_NAME, "pip-c"),
                    node("n0", "10.0.0.4"),
                    vk,
                ],
            )
            .inventory();
        let out = run(&inv, check);
        assert_eq!(out.len(), 3);
        let by = |n: &str| {
            out.iter()
                .find(|f| f.resource == svc_ref(CLUSTER, "ns", n))
                .map(codes)
                .unwrap_or_default()
        };
        assert_eq!(
            by("a"),
            vec!["requested-pip-in-other-group", "virtual-node-not-excluded"]
        );
        assert_eq!(
            by("b"),
            vec!["requested-pip-in-other-subscription", "virtual-node-not-excluded"]
        );
        assert_eq!(
            by("c"),
            vec!["requested-pip-missing", "virtual-node-not-excluded"]
        );
    }

    #[test]
    fn limits_leftover_pips_and_nodes_are_causes() {
        // An LB at the Basic frontend limit, a PIP created for the Service but never attached,
        // a used-up public IP quota, and only excluded nodes.
        let mut lb = Lb::new(CLUSTER_TAG).sku("Basic");
        for i in 0..MAX_FRONTENDS_BASIC {
            lb = lb.frontend(&format!("fe{i}"), None, Some("10.0.0.1"));
        }
        let b = conventions::base_name(&uid('1'));
        let inv = world()
            .arm(vec![
                lb.json(),
                public_ip(
                    SUB,
                    RG,
                    &format!("{CLUSTER_TAG}-{b}"),
                    "20.0.0.7",
                    json!({"k8s-azure-service": "ns/web"}),
                ),
                usage(SUB, LOCATION, "PublicIPAddresses", 10.0, 10.0),
            ])
            .k8s(
                CLUSTER,
                vec![
                    pending("ns", "web", '1'),
                    label(node("n0", "10.0.0.4"), conventions::LABEL_EXCLUDE_LB, "true"),
                ],
            )
            .inventory();
        let out = run(&inv, check);
        assert_eq!(
            codes(&out[0]),
            vec![
                "frontend-limit-reached",
                "public-ip-quota-reached",
                "public-ip-without-frontend",
                "no-eligible-nodes"
            ]
        );
        assert!(
            out[0].remediation.contains("orphaned-lb-frontend"),
            "{}",
            out[0].remediation
        );
    }

    #[test]
    fn arm_budget_is_a_cause_in_live_runs() {
        let inv = world()
            .k8s(CLUSTER, vec![pending("ns", "web", '1'), node("n0", "10.0.0.4")])
            .inventory();
        let stats = crate::report::CallStats {
            throttled_429: 3,
            ..Default::default()
        };
        let ctx = Context::new(&inv).with_stats(&stats);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        assert_eq!(codes(&out[0]), vec!["arm-read-budget-exhausted"]);
    }

    #[test]
    fn without_a_visible_cause_it_says_so_and_points_at_the_events() {
        // Its PIP exists and is attached (the frontend is being updated): not a leftover.
        let b = conventions::base_name(&uid('1'));
        let pip = attach(
            public_ip(
                SUB,
                RG,
                &format!("{CLUSTER_TAG}-{b}"),
                "20.0.0.7",
                json!({"k8s-azure-service": "ns/web"}),
            ),
            &Lb::new(CLUSTER_TAG).child_id("frontendIPConfigurations", &b),
        );
        let inv = world()
            .arm(vec![pip])
            .k8s(CLUSTER, vec![pending("ns", "web", '1'), node("n0", "10.0.0.4")])
            .inventory();
        let out = run(&inv, check);
        assert_eq!(out.len(), 1);
        assert!(codes(&out[0]).is_empty());
        assert!(out[0].message.contains("shows no cause"), "{}", out[0].message);
        assert!(out[0].remediation.contains("cloud-controller-manager"));
        assert!(!out[0].evidence.contains_key("causes_may_be_incomplete"));
    }

    #[test]
    fn look_alikes_are_not_reported() {
        let mut other_class = pending("ns", "metallb", '2');
        set(
            &mut other_class,
            &["spec", "loadBalancerClass"],
            json!("metallb.io/metallb"),
        );
        let mut node_port = pending("ns", "np", '3');
        set(&mut node_port, &["spec", "type"], json!("NodePort"));
        let mut hostname = pending("ns", "host", '4');
        set(
            &mut hostname,
            &["status", "loadBalancer", "ingress"],
            json!([{"hostname": "x.example"}]),
        );
        let mut deleting = pending("ns", "bye", '5');
        set(
            &mut deleting,
            &["metadata", "deletionTimestamp"],
            json!("2026-11-27T02:00:00Z"),
        );
        let inv = world()
            .k8s(
                CLUSTER,
                vec![
                    lb_service("ns", "ok", &uid('1'), &[("TCP", 80, 30080)], &["20.0.0.1"]),
                    other_class,
                    node_port,
                    hostname,
                    deleting,
                ],
            )
            .inventory();
        assert!(run(&inv, check).is_empty());
    }

    #[test]
    fn causes_from_incomplete_listings_are_not_claimed() {
        let inv = world()
            .k8s(
                CLUSTER,
                vec![annotate(
                    pending("shop", "promo", '1'),
                    conventions::ANN_LB_IPV4,
                    "20.103.61.240",
                )],
            )
            .gap(json!({"scope": "arm", "subscription": SUB, "kind": "public-ip-addresses", "cause": "429"}))
            .gap(json!({"scope": "kubernetes", "cluster": CLUSTER, "kind": "nodes", "cause": "403"}))
            .inventory();
        let out = run(&inv, check);
        assert_eq!(out.len(), 1, "the pending state needs only the Service");
        assert!(codes(&out[0]).is_empty(), "{:?}", codes(&out[0]));
        assert_eq!(out[0].evidence["causes_may_be_incomplete"], true);
    }
}
