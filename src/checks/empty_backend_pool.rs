//! `empty-backend-pool`: a managed backend pool (`<cluster>`, `<cluster>-IPv6`) with no members
//! while the cluster has eligible nodes. Source: the guide's "内网/外网负载均衡 BackendPool 为空".
//! Per-Service pools (multi-SLB, `externalTrafficPolicy: Local`) are legitimately empty when no
//! node hosts an endpoint, so they are not judged here.

use super::context::key;
use super::{Context, Rule, RuleInfo};
use crate::conventions::{base_prefix, is_eligible_node, is_managed_pool_name};
use crate::findings::{Finding, Severity};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "empty-backend-pool",
        title: "Load balancer backend pool with no nodes",
        default_severity: Severity::Critical,
        rationale: "Every rule using an empty pool drops its traffic: the Service's address answers nothing. Usually the nodes were never registered with the cloud provider, or all of them carry an exclusion label.",
        remediation: "Check why no node joined: kubectl get nodes -o wide (providerID set? exclusion labels?), kubectl logs -n kube-system -l component=cloud-controller-manager | grep -i backend; then az network lb address-pool show -g <rg> --lb-name <lb> -n <pool>.",
        source: "内网/外网负载均衡 BackendPool 为空",
        cleanup: false,
    },
    check,
};

pub(super) fn is_ipv6_pool(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with("-ipv6")
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        if !cv.nodes_complete() {
            continue;
        }
        let eligible: Vec<_> = cv
            .cluster
            .nodes
            .iter()
            .filter(|n| is_eligible_node(n, cv.cluster))
            .collect();
        for lb in &cv.managed_lbs {
            for pool in &lb.pools {
                if !is_managed_pool_name(&pool.name, &cv.cluster.cluster_name_tag) || !pool.is_empty() {
                    continue;
                }
                let v6 = is_ipv6_pool(&pool.name);
                let candidates = eligible
                    .iter()
                    .filter(|n| !v6 || n.internal_ips.iter().any(|ip| ip.contains(':')))
                    .count();
                if candidates == 0 {
                    continue;
                }
                let live_rules: Vec<&str> = lb
                    .rules
                    .iter()
                    .filter(|r| r.backend_pool_ids.iter().any(|p| key(p) == key(&pool.id)))
                    .filter(|r| {
                        cv.services_complete()
                            && base_prefix(&r.name).is_some_and(|b| cv.service_for_base(&b).is_some())
                    })
                    .map(|r| r.name.as_str())
                    .collect();
                let severity = if live_rules.is_empty() {
                    Severity::Low
                } else {
                    Severity::Critical
                };
                out.push(
                    Finding::new(
                        RULE.info.id,
                        severity,
                        &pool.id,
                        format!(
                            "Backend pool {} of load balancer {} has no members although cluster {} has {} eligible node(s){}.",
                            pool.name,
                            lb.name,
                            cv.name(),
                            candidates,
                            if live_rules.is_empty() { String::new() } else { format!("; {} rule(s) of live Services send traffic into it", live_rules.len()) }
                        ),
                    )
                    .cluster(cv.name())
                    .subscription(&lb.subscription)
                    .evidence("load_balancer", &lb.id)
                    .evidence("eligible_nodes", candidates)
                    .evidence("live_rules", live_rules),
                );
            }
        }
    }
}
