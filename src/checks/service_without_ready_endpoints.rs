//! `service-without-ready-endpoints`: a LoadBalancer Service the Azure provider reconciles whose
//! EndpointSlices hold no ready endpoint. The Azure probe then fails on every node and the
//! address answers nothing — the guide's "负载均衡公网 IP 无法访问" ("后端容器不响应").
//!
//! Slices belong to a Service by the `kubernetes.io/service-name` label in the Service's
//! namespace. An endpoint without a `ready` condition counts as ready (EndpointSlice API: "nil
//! should be interpreted as ready"). Needs the cluster's Services and EndpointSlices listings
//! complete; Services of another `loadBalancerClass` are not judged.

use super::{Context, Rule, RuleInfo};
use crate::conventions::wants_cloud_load_balancer;
use crate::findings::{Finding, Severity};
use crate::inventory::K8sKind;

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "service-without-ready-endpoints",
        title: "LoadBalancer Service with no ready endpoints",
        default_severity: Severity::Medium,
        rationale: "Azure's health probe reaches the Service through its nodePort; with no ready endpoint every probe fails, every node is taken out of rotation and the load balancer address answers nothing.",
        remediation: "Find out why no pod is ready: kubectl -n <ns> get endpointslices -l kubernetes.io/service-name=<svc>; kubectl -n <ns> describe pods -l <selector> (readiness probe, crash loop, selector matching no pod).",
        source: "负载均衡公网 IP 无法访问",
        cleanup: false,
    },
    check,
};

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        if !cv.services_complete() || !cv.cluster.is_complete(K8sKind::EndpointSlices) {
            continue;
        }
        for svc in cv.lb_services.iter().filter(|s| wants_cloud_load_balancer(s)) {
            if svc.meta.deletion_timestamp.is_some() {
                continue;
            }
            let ns = svc.meta.namespace.as_deref().unwrap_or("default");
            let name = &svc.meta.name;
            let slices: Vec<_> = cv
                .cluster
                .endpoint_slices
                .iter()
                .filter(|e| {
                    e.meta.namespace.as_deref().unwrap_or("default") == ns
                        && e.service_name.as_deref() == Some(name.as_str())
                })
                .collect();
            let ready: usize = slices.iter().map(|e| e.ready_endpoints).sum();
            if ready > 0 {
                continue;
            }
            let total: usize = slices.iter().map(|e| e.total_endpoints).sum();
            let what = if total == 0 {
                "has no endpoints at all (no pod matches its selector, or none was ever ready)".to_string()
            } else {
                format!("has {total} endpoint(s), none of them ready")
            };
            let addr = if svc.ingress_ips.is_empty() {
                "its load balancer".to_string()
            } else {
                svc.ingress_ips.join(", ")
            };
            out.push(
                Finding::new(
                    RULE.info.id,
                    RULE.info.default_severity,
                    format!("k8s://{}/{ns}/services/{name}", cv.name()),
                    format!(
                        "Service {ns}/{name} in {} {what}: the Azure health probe fails and {addr} answers nothing.",
                        cv.name()
                    ),
                )
                .cluster(cv.name())
                .evidence(
                    "endpoint_slices",
                    slices.iter().map(|e| e.meta.name.as_str()).collect::<Vec<_>>(),
                )
                .evidence("ready_endpoints", ready)
                .evidence("total_endpoints", total)
                .evidence("ingress_ips", &svc.ingress_ips)
                .remediation(format!(
                    "kubectl -n {ns} get endpointslices -l kubernetes.io/service-name={name} -o wide; \
                     kubectl -n {ns} describe service {name} (check the selector), then kubectl -n {ns} describe pods for the selected pods (readiness probe, restarts)."
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

    fn audit(items: Vec<serde_json::Value>) -> Vec<Finding> {
        run(&WorldBuilder::new().k8s(CLUSTER, items).inventory(), check)
    }

    #[test]
    fn service_whose_endpoints_are_all_unready_is_reported() {
        let out = audit(vec![
            lb_service(
                "analytics",
                "reporting-api",
                &uid('1'),
                &[("TCP", 443, 32143)],
                &["20.73.230.19"],
            ),
            endpoint_slice(
                "analytics",
                "reporting-api-bzkqt",
                "reporting-api",
                &[Some(false), Some(false)],
            ),
        ]);
        assert_eq!(
            resources(&out),
            vec![svc_ref(CLUSTER, "analytics", "reporting-api")]
        );
        assert_eq!(out[0].evidence["total_endpoints"], 2);
        assert!(out[0].message.contains("20.73.230.19"));
    }

    #[test]
    fn service_without_any_slice_is_reported() {
        let out = audit(vec![lb_service(
            "ns",
            "lonely",
            &uid('2'),
            &[("TCP", 80, 30080)],
            &["20.0.0.2"],
        )]);
        assert_eq!(resources(&out), vec![svc_ref(CLUSTER, "ns", "lonely")]);
        assert_eq!(out[0].evidence["total_endpoints"], 0);
    }

    #[test]
    fn look_alikes_are_not_reported() {
        let mut cluster_ip = lb_service("ns", "internal-only", &uid('3'), &[("TCP", 80, 30080)], &[]);
        set(&mut cluster_ip, &["spec", "type"], json!("ClusterIP"));
        let mut other_class = lb_service("ns", "metallb", &uid('4'), &[("TCP", 80, 30081)], &[]);
        set(
            &mut other_class,
            &["spec", "loadBalancerClass"],
            json!("metallb.io/metallb"),
        );
        let out = audit(vec![
            // One ready endpoint out of three is enough for the probe.
            lb_service("ns", "web", &uid('5'), &[("TCP", 80, 30082)], &["20.0.0.5"]),
            endpoint_slice("ns", "web-a", "web", &[Some(false)]),
            endpoint_slice("ns", "web-b", "web", &[Some(false), Some(true)]),
            // No `ready` condition means ready.
            lb_service("ns", "legacy", &uid('6'), &[("TCP", 80, 30083)], &["20.0.0.6"]),
            endpoint_slice("ns", "legacy-a", "legacy", &[None]),
            // A slice of the same name in another namespace does not count, but this Service
            // has its own ready slice.
            lb_service("other", "web", &uid('7'), &[("TCP", 80, 30084)], &["20.0.0.7"]),
            endpoint_slice("other", "web-c", "web", &[Some(true)]),
            cluster_ip,
            other_class,
        ]);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn slices_of_another_namespace_do_not_count() {
        let out = audit(vec![
            lb_service("a", "web", &uid('1'), &[("TCP", 80, 30082)], &["20.0.0.5"]),
            endpoint_slice("b", "web-x", "web", &[Some(true)]),
        ]);
        assert_eq!(resources(&out), vec![svc_ref(CLUSTER, "a", "web")]);
    }

    #[test]
    fn incomplete_endpoint_slice_listing_emits_nothing() {
        let inv = WorldBuilder::new()
            .k8s(CLUSTER, vec![lb_service("ns", "lonely", &uid('2'), &[("TCP", 80, 30080)], &["20.0.0.2"])])
            .gap(json!({"scope": "kubernetes", "cluster": CLUSTER, "kind": "endpoint-slices", "cause": "timeout"}))
            .inventory();
        assert!(run(&inv, check).is_empty());
    }
}
