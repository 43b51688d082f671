//! `node-missing-from-backend-pool`: an eligible, registered node whose instance exists but is not
//! in one of the cluster's pools. Pools already reported empty are not repeated here, Basic load
//! balancers (one VM set per LB) and multi-SLB clusters (nodes spread by selector) are skipped.

use super::empty_backend_pool::is_ipv6_pool;
use super::nodes::{Lookup, instance, ip_config_prefixes, pool_has_node};
use super::{Context, Rule, RuleInfo};
use crate::conventions::{is_eligible_node, is_managed_pool_name};
use crate::findings::{Finding, Severity};
use crate::inventory::Sku;

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "node-missing-from-backend-pool",
        title: "Node missing from a backend pool",
        default_severity: Severity::High,
        rationale: "Traffic for LoadBalancer Services is spread only over pool members: a node outside the pool serves nothing through the load balancer, and if it hosts the only endpoint of an externalTrafficPolicy=Local Service, that Service is down.",
        remediation: "Look for reconcile errors: kubectl logs -n kube-system -l component=cloud-controller-manager | grep -i <node>; check the node's labels (kubectl get node <node> --show-labels) and its NIC/VMSS instance pools (az network nic show / az vmss nic list).",
        source: "外网负载均衡 BackendPool 为空",
        cleanup: false,
    },
    check,
};

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        if !cv.nodes_complete()
            || cv
                .config_str("multipleStandardLoadBalancerConfigurations")
                .is_some()
        {
            continue;
        }
        for node in &cv.cluster.nodes {
            if !is_eligible_node(node, cv.cluster) || !matches!(instance(ctx, node), Lookup::Found(_)) {
                continue;
            }
            let prefixes = ip_config_prefixes(ctx, node);
            let has_v6 = node.internal_ips.iter().any(|ip| ip.contains(':'));
            let mut missing = Vec::new();
            for lb in cv.managed_lbs.iter().filter(|lb| lb.sku != Sku::Basic) {
                for pool in &lb.pools {
                    if !is_managed_pool_name(&pool.name, &cv.cluster.cluster_name_tag) || pool.is_empty() {
                        continue;
                    }
                    if is_ipv6_pool(&pool.name) && !has_v6 {
                        continue;
                    }
                    if !pool_has_node(pool, &prefixes, node) {
                        missing.push(pool.id.clone());
                    }
                }
            }
            if missing.is_empty() {
                continue;
            }
            out.push(
                Finding::new(
                    RULE.info.id,
                    RULE.info.default_severity,
                    format!("k8s://{}/nodes/{}", cv.name(), node.meta.name),
                    format!(
                        "Node {} is eligible for load balancing but missing from {} backend pool(s).",
                        node.meta.name,
                        missing.len()
                    ),
                )
                .cluster(cv.name())
                .subscription(cv.subscription().unwrap_or_default())
                .evidence("missing_from", &missing)
                .evidence("provider_id", &node.provider_id)
                .evidence("internal_ips", &node.internal_ips),
            );
        }
    }
}
