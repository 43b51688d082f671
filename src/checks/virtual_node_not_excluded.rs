//! `virtual-node-not-excluded`: a virtual-kubelet node that the provider will try to put into
//! load balancer pools. Source: "使用 Virtual Kubelet 后 LoadBalancer Service 无法分配公网 IP".
//! The retired `alpha.service-controller.kubernetes.io/exclude-balancer` label is read by nothing
//! any more (domain.md §3.2), so relying on it counts as not excluded.

use super::{Context, Rule, RuleInfo};
use crate::conventions::{LABEL_LEGACY_EXCLUDE, is_excluded_by_label, is_unmanaged, is_virtual_node};
use crate::findings::{Finding, Severity};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "virtual-node-not-excluded",
        title: "Virtual node not excluded from load balancers",
        default_severity: Severity::High,
        rationale: "The cloud provider cannot find a VM for a virtual node; with it in the node set, load balancer reconciliation fails and LoadBalancer Services stay <pending>.",
        remediation: "kubectl label node <node> node.kubernetes.io/exclude-from-external-load-balancers=true (or kubernetes.azure.com/managed=false).",
        source: "使用 Virtual Kubelet 后 LoadBalancer Service 无法分配公网 IP",
        cleanup: false,
    },
    check,
};

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        for n in &cv.cluster.nodes {
            if !is_virtual_node(n) || is_excluded_by_label(n) || is_unmanaged(n) {
                continue;
            }
            let legacy = n.meta.labels.contains_key(LABEL_LEGACY_EXCLUDE);
            out.push(
                Finding::new(
                    RULE.info.id,
                    RULE.info.default_severity,
                    format!("k8s://{}/nodes/{}", cv.name(), n.meta.name),
                    if legacy {
                        format!("Virtual node {} relies on the retired exclude-balancer label, which nothing reads: it is not excluded from load balancers.", n.meta.name)
                    } else {
                        format!("Virtual node {} is not excluded from load balancers.", n.meta.name)
                    },
                )
                .cluster(cv.name())
                .evidence("labels", &n.meta.labels)
                .evidence("provider_id", &n.provider_id)
                .evidence("legacy_label_only", legacy)
                .remediation(format!(
                    "kubectl label node {} node.kubernetes.io/exclude-from-external-load-balancers=true",
                    n.meta.name
                )),
            );
        }
    }
}
