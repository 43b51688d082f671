//! `node-not-registered-with-cloud`: a node whose `spec.providerID` is empty or not `azure://`,
//! not marked unmanaged and not a virtual node: the kubelet ran without the Azure cloud provider,
//! so the node can never join a pool. Source: "外网负载均衡 BackendPool 为空".

use super::{Context, Rule, RuleInfo};
use crate::conventions::{is_unmanaged, is_virtual_node};
use crate::findings::{Finding, Severity};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "node-not-registered-with-cloud",
        title: "Node not registered with the Azure cloud provider",
        default_severity: Severity::High,
        rationale: "Without an azure:// providerID the cloud provider cannot find the node's VM, so it never adds it to load balancer pools.",
        remediation: "Start the kubelet with --cloud-provider=external (and the cloud-node-manager running) or --cloud-provider=azure on old clusters, then re-register the node: kubectl delete node <node> and restart the kubelet.",
        source: "外网负载均衡 BackendPool 为空",
        cleanup: false,
    },
    check,
};

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        for n in &cv.cluster.nodes {
            let pid = n.provider_id.as_deref().unwrap_or_default();
            if pid.starts_with("azure://") || is_unmanaged(n) || is_virtual_node(n) {
                continue;
            }
            out.push(
                Finding::new(
                    RULE.info.id,
                    RULE.info.default_severity,
                    format!("k8s://{}/nodes/{}", cv.name(), n.meta.name),
                    format!(
                        "Node {} has no Azure providerID: it cannot join load balancer pools.",
                        n.meta.name
                    ),
                )
                .cluster(cv.name())
                .evidence("provider_id", pid),
            );
        }
    }
}
