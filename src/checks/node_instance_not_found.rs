//! `node-instance-not-found`: a node whose providerID names a VM or VMSS instance that the
//! (complete) inventory does not have: a deleted VM whose Node object lingers, or a providerID
//! pointing at the wrong subscription or resource group.

use super::nodes::{Lookup, instance};
use super::{Context, Rule, RuleInfo};
use crate::findings::{Finding, Severity};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "node-instance-not-found",
        title: "Node whose VM or scale-set instance does not exist",
        default_severity: Severity::High,
        rationale: "The cloud provider cannot add a node it cannot find to pools, and keeps failing (and retrying ARM calls) for it; usually the VM was deleted and the Node object lingers.",
        remediation: "If the VM is gone: kubectl delete node <node>. Otherwise compare spec.providerID with az vm show / az vmss list-instances (subscription and resource group included).",
        source: "外网负载均衡 BackendPool 为空",
        cleanup: false,
    },
    check,
};

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        for n in &cv.cluster.nodes {
            if let Lookup::NotFound(expected) = instance(ctx, n) {
                out.push(
                    Finding::new(
                        RULE.info.id,
                        RULE.info.default_severity,
                        format!("k8s://{}/nodes/{}", cv.name(), n.meta.name),
                        format!(
                            "Node {}'s providerID names an instance that does not exist.",
                            n.meta.name
                        ),
                    )
                    .cluster(cv.name())
                    .subscription(cv.subscription().unwrap_or_default())
                    .evidence("provider_id", &n.provider_id)
                    .evidence("expected_instance", expected),
                );
            }
        }
    }
}
