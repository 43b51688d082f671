//! `aks-tunnel-unhealthy`: a kube-system tunnel pod (`tunnelfront`, `aks-link`,
//! `konnectivity-agent`) that is not Running and Ready. On AKS the API server reaches the
//! kubelets (`kubectl logs/exec/attach/port-forward`) only through this tunnel; the guide's
//! "AKS kubectl logs connection timed out" section is exactly this failure.
//!
//! Needs the cluster's Pods listing complete (otherwise it emits nothing for that cluster). Pods
//! being deleted (a rollout in progress) are not judged: their replacement is what counts.

use super::{Context, Rule, RuleInfo};
use crate::conventions::is_tunnel_pod;
use crate::findings::{Finding, Severity};
use crate::inventory::K8sKind;

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "aks-tunnel-unhealthy",
        title: "AKS API-server tunnel pod not running",
        default_severity: Severity::High,
        rationale: "kubectl logs, exec, attach and port-forward reach the nodes through the tunnelfront / aks-link / konnectivity-agent pods; while one is down those commands time out (\"dial tcp <node>:10250: connection timed out\") and webhooks or metrics served from nodes may fail.",
        remediation: "Look at why it fails (kubectl -n kube-system describe pod <pod>; kubectl -n kube-system logs <pod> --previous), check that the nodes may reach the API server (egress on 443 and 9000 through NSG/firewall/UDR), then delete the pod so it is recreated: kubectl -n kube-system delete pod <pod>.",
        source: "AKS kubectl logs connection timed out",
        cleanup: false,
    },
    check,
};

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        if !cv.cluster.is_complete(K8sKind::Pods) {
            continue;
        }
        for p in &cv.cluster.pods {
            if p.meta.namespace.as_deref() != Some("kube-system")
                || !is_tunnel_pod(&p.meta.name, &p.meta.labels)
                || p.meta.deletion_timestamp.is_some()
            {
                continue;
            }
            let running = p.phase.as_deref() == Some("Running");
            if running && p.ready {
                continue;
            }
            let name = &p.meta.name;
            let state = match (&p.waiting_reason, p.phase.as_deref()) {
                (Some(reason), _) => reason.clone(),
                (None, Some("Running")) => "Running but not Ready".to_string(),
                (None, Some(phase)) => phase.to_string(),
                (None, None) => "no status".to_string(),
            };
            out.push(
                Finding::new(
                    RULE.info.id,
                    RULE.info.default_severity,
                    format!("k8s://{}/kube-system/pods/{name}", cv.name()),
                    format!(
                        "Tunnel pod kube-system/{name} in {} is {state} ({} restarts): kubectl logs/exec/port-forward to its nodes time out.",
                        cv.name(),
                        p.restarts
                    ),
                )
                .cluster(cv.name())
                .evidence("phase", &p.phase)
                .evidence("ready", p.ready)
                .evidence("waiting_reason", &p.waiting_reason)
                .evidence("restarts", p.restarts)
                .evidence("labels", &p.meta.labels)
                .remediation(format!(
                    "kubectl -n kube-system describe pod {name}; kubectl -n kube-system logs {name} --previous; \
                     check node egress to the API server (443, 9000), then kubectl -n kube-system delete pod {name} to have it recreated."
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::*;
    use serde_json::json;

    fn pods(items: Vec<serde_json::Value>) -> Vec<Finding> {
        run(&WorldBuilder::new().k8s(CLUSTER, items).inventory(), check)
    }

    #[test]
    fn crashlooping_konnectivity_agent_is_reported() {
        let out = pods(vec![
            label(
                pod(
                    "kube-system",
                    "konnectivity-agent-6f7c9d8b5-wq9tz",
                    "Running",
                    false,
                ),
                "app",
                "konnectivity-agent",
            ),
            pod(
                "kube-system",
                "konnectivity-agent-6f7c9d8b5-4xk2p",
                "Running",
                true,
            ),
        ]);
        assert_eq!(
            resources(&out),
            vec!["k8s://c1/kube-system/pods/konnectivity-agent-6f7c9d8b5-wq9tz"]
        );
        assert_eq!(out[0].evidence["waiting_reason"], "CrashLoopBackOff");
        assert!(
            out[0]
                .remediation
                .contains("delete pod konnectivity-agent-6f7c9d8b5-wq9tz")
        );
    }

    #[test]
    fn tunnelfront_aks_link_and_component_label_match() {
        let out = pods(vec![
            pod("kube-system", "tunnelfront-7644cd56b7-l5jmc", "Pending", false),
            pod("kube-system", "aks-link-5d9c7b-x2", "Failed", false),
            label(
                pod("kube-system", "renamed-agent-1", "Running", false),
                "component",
                "tunnel",
            ),
        ]);
        assert_eq!(out.len(), 3, "{out:?}");
    }

    #[test]
    fn look_alikes_are_not_reported() {
        let mut terminating = pod("kube-system", "konnectivity-agent-old-1", "Running", false);
        set(
            &mut terminating,
            &["metadata", "deletionTimestamp"],
            json!("2026-11-27T02:59:00Z"),
        );
        let out = pods(vec![
            // Healthy tunnel pod.
            pod("kube-system", "tunnelfront-7644cd56b7-l5jmc", "Running", true),
            // Not a tunnel pod, not healthy: another rule's business (if any).
            pod("kube-system", "coredns-7b9f6d4c8d-hm2tq", "Running", false),
            // A name that merely starts with the same letters.
            pod("kube-system", "aks-linker-x", "Pending", false),
            // A tunnel-like name outside kube-system.
            pod("default", "konnectivity-agent-test", "Pending", false),
            terminating,
        ]);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn incomplete_pod_listing_emits_nothing() {
        let inv = WorldBuilder::new()
            .k8s(
                CLUSTER,
                vec![pod("kube-system", "tunnelfront-1", "Pending", false)],
            )
            .gap(json!({"scope": "kubernetes", "cluster": CLUSTER, "kind": "pods", "cause": "403 Forbidden"}))
            .inventory();
        assert!(run(&inv, check).is_empty());
    }
}
