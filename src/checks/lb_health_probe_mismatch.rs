//! `lb-health-probe-mismatch`: a load-balancing rule of a live Service whose health probe is
//! missing or probes the wrong port. Azure sends traffic only to backends whose probe succeeds,
//! so a probe on a port nothing listens on takes every node out (the guide's "负载均衡公网 IP
//! 无法访问", Azure 探测器).
//!
//! Judged: only rules a live Service is expected to have — on the cluster's managed LBs, named
//! `<base>[-<subnet>]-<PROTO>-<port>[-IPv6]` for one of the Service's ports. A rule of a removed
//! port, or a probe no rule of the Service uses, is `orphaned-lb-rule`'s. The probe a rule should
//! use (`buildHealthProbeRulesForPort` in `pkg/provider/azure_loadbalancer_healthprobe.go`,
//! domain.md §1.5):
//! - `port_<port>_no_probe_rule: "true"`: none expected; not judged.
//! - `Cluster` policy in shared probe mode (cloud config
//!   `clusterServiceLoadBalancerHealthProbeMode: shared`): `cluster-service-shared-health-probe` on
//!   `clusterServiceSharedLoadBalancerHealthProbePort` (default 10256), TCP ports; this wins over
//!   the per-port annotation below.
//! - `port_<port>_health-probe_port` (TCP): that port (a Service port name or number maps to its
//!   nodePort, another number is taken as is).
//! - `externalTrafficPolicy: Local`: the probe on `healthCheckNodePort` (every protocol).
//! - `Cluster` policy otherwise: TCP ports probe their own nodePort; UDP and SCTP get no probe.
//!
//! HA-ports Services (one `All` rule for every port) are not judged.

use super::context::{ClusterView, key};
use super::orphaned_lb_rule::proto_port;
use super::{Context, Rule, RuleInfo};
use crate::conventions::{
    self, CFG_HEALTH_PROBE_MODE, CFG_SHARED_PROBE_PORT, PORT_PARAM_HEALTH_PROBE_PORT,
    PORT_PARAM_NO_PROBE_RULE, SHARED_PROBE_DEFAULT_PORT, SHARED_PROBE_NAME, base_prefix,
};
use crate::findings::{Finding, Severity};
use crate::inventory::{LbRule, LoadBalancer, Probe, Service, ServicePort};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "lb-health-probe-mismatch",
        title: "Load-balancing rule of a live Service with a missing or wrong health probe",
        default_severity: Severity::Medium,
        rationale: "Azure forwards a rule's traffic only to backends whose health probe answers. A probe on a port that is neither the Service's nodePort nor its healthCheckNodePort (externalTrafficPolicy: Local) fails on every node and the address answers nothing; a TCP rule without a probe keeps sending to dead nodes.",
        remediation: "Let the provider rewrite the rule: check the Service's probe annotations (service.beta.kubernetes.io/port_<port>_health-probe_*), then trigger a reconcile (kubectl -n <ns> annotate service <svc> azaudit/reconcile=$(date +%s) --overwrite) or fix the probe by hand: az network lb probe update -g <rg> --lb-name <lb> -n <probe> --port <nodePort>.",
        source: "负载均衡公网 IP 无法访问 (Azure 探测器)",
        cleanup: false,
    },
    check,
};

/// What a rule's probe should be.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    port: u32,
    /// A fixed probe name (the shared probe), when the provider uses one.
    name: Option<&'static str>,
    why: String,
}

/// `port_<port>_health-probe_port`: a number that is a Service port maps to that port's nodePort,
/// another number is used as is, a Service port name maps to that port's nodePort
/// (`buildHealthProbeRulesForPort`). `Some(None)`: set but unresolvable (the provider errors out).
fn annotated_probe_port(svc: &Service, port: &ServicePort) -> Option<Option<u32>> {
    let v = conventions::port_annotation(svc, port.port, PORT_PARAM_HEALTH_PROBE_PORT)?;
    if let Ok(n) = v.parse::<u32>() {
        return Some(match svc.ports.iter().find(|p| p.port == n) {
            Some(p) => p.node_port,
            None => Some(n),
        });
    }
    Some(
        svc.ports
            .iter()
            .find(|p| {
                p.name
                    .as_deref()
                    .is_some_and(|name| name.eq_ignore_ascii_case(&v))
            })
            .and_then(|p| p.node_port),
    )
}

fn expected_probe(cv: &ClusterView, svc: &Service, port: &ServicePort) -> Option<Expected> {
    if conventions::port_annotation(svc, port.port, PORT_PARAM_NO_PROBE_RULE)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return None;
    }
    let tcp = port.protocol.eq_ignore_ascii_case("TCP");
    let local = svc
        .external_traffic_policy
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("Local"));
    let shared = !local
        && cv
            .config_str(CFG_HEALTH_PROBE_MODE)
            .is_some_and(|m| m.eq_ignore_ascii_case("shared"));
    if shared {
        // The shared probe wins over per-port annotations (`useSharedProbe` is checked first).
        // UDP/SCTP rules in shared mode: not judged, the provider's choice is not documented.
        if !tcp {
            return None;
        }
        let p = cv
            .config_str(CFG_SHARED_PROBE_PORT)
            .and_then(|p| p.parse().ok())
            .unwrap_or(SHARED_PROBE_DEFAULT_PORT);
        return Some(Expected {
            port: p,
            name: Some(SHARED_PROBE_NAME),
            why: "the shared health probe (clusterServiceLoadBalancerHealthProbeMode: shared)".into(),
        });
    }
    if tcp && let Some(annotated) = annotated_probe_port(svc, port) {
        // An annotation naming nothing we can resolve: the provider errors out; not judged here.
        return annotated.map(|p| Expected {
            port: p,
            name: None,
            why: format!("its port_{}_health-probe_port annotation", port.port),
        });
    }
    if local {
        return svc.health_check_node_port.map(|p| Expected {
            port: p,
            name: None,
            why: "the Service's healthCheckNodePort (externalTrafficPolicy: Local)".into(),
        });
    }
    if !tcp {
        // UDP/SCTP under the Cluster policy: no probe.
        return None;
    }
    port.node_port.map(|p| Expected {
        port: p,
        name: None,
        why: format!("the nodePort of port {}/{}", port.protocol, port.port),
    })
}

/// One problem with one rule.
#[derive(Debug, Clone, serde::Serialize)]
struct Problem {
    rule: String,
    load_balancer: String,
    probe: Option<String>,
    probe_port: Option<u32>,
    expected_port: u32,
    /// The probe name the provider uses, when fixed (the shared probe).
    expected_probe: Option<&'static str>,
    expected: String,
    problem: String,
}

fn judge(lb: &LoadBalancer, rule: &LbRule, exp: &Expected) -> Option<Problem> {
    let probe: Option<&Probe> = rule
        .probe_id
        .as_deref()
        .and_then(|id| lb.probes.iter().find(|p| key(&p.id) == key(id)));
    let problem = match (&rule.probe_id, probe) {
        (None, _) => "the rule has no health probe".to_string(),
        (Some(id), None) => format!("the rule references probe {id}, which the load balancer does not have"),
        (Some(_), Some(p)) if p.port != Some(exp.port) => format!(
            "probe {} checks port {}, not {} ({})",
            p.name,
            p.port.map_or("none".to_string(), |x| x.to_string()),
            exp.port,
            exp.why
        ),
        // The right port is what makes the probe work; its name is not judged.
        _ => return None,
    };
    Some(Problem {
        rule: rule.name.clone(),
        load_balancer: lb.name.clone(),
        probe: probe.map(|p| p.name.clone()),
        probe_port: probe.and_then(|p| p.port),
        expected_port: exp.port,
        expected_probe: exp.name,
        expected: exp.why.clone(),
        problem,
    })
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        // Problems per Service (by key), in rule order.
        let mut per_service: Vec<(&Service, Vec<Problem>, &LoadBalancer)> = Vec::new();
        for lb in &cv.managed_lbs {
            for rule in &lb.rules {
                let Some(base) = base_prefix(&rule.name) else {
                    continue;
                };
                let Some(svc) = cv.service_for_base(&base) else {
                    continue;
                };
                if !conventions::wants_cloud_load_balancer(svc)
                    || svc
                        .annotation(conventions::ANN_HA_PORTS)
                        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                {
                    continue;
                }
                let Some((proto, port)) = proto_port(&rule.name) else {
                    continue;
                };
                let Some(sp) = svc
                    .ports
                    .iter()
                    .find(|p| p.port == port && p.protocol.eq_ignore_ascii_case(&proto))
                else {
                    continue; // not expected: orphaned-lb-rule's
                };
                let Some(exp) = expected_probe(cv, svc, sp) else {
                    continue;
                };
                let Some(problem) = judge(lb, rule, &exp) else {
                    continue;
                };
                match per_service.iter_mut().find(|(s, _, _)| s.key() == svc.key()) {
                    Some((_, ps, _)) => ps.push(problem),
                    None => per_service.push((svc, vec![problem], lb)),
                }
            }
        }
        for (svc, problems, lb) in per_service {
            let ns = svc.meta.namespace.as_deref().unwrap_or("default");
            let name = &svc.meta.name;
            let first = &problems[0];
            let more = if problems.len() > 1 {
                format!(" (and {} more rule(s))", problems.len() - 1)
            } else {
                String::new()
            };
            let fix = match (&first.probe, problems.iter().all(|p| p.probe.is_some())) {
                (Some(probe), true) => format!(
                    "az network lb probe update -g {} --lb-name {} -n {probe} --port {}",
                    lb.resource_group, first.load_balancer, first.expected_port
                ),
                _ => format!(
                    "az network lb rule update -g {} --lb-name {} -n {} --probe {}",
                    lb.resource_group,
                    first.load_balancer,
                    first.rule,
                    first.expected_probe.map_or(
                        format!("<a probe on port {}>", first.expected_port),
                        str::to_string
                    )
                ),
            };
            out.push(
                Finding::new(
                    RULE.info.id,
                    RULE.info.default_severity,
                    format!("k8s://{}/{ns}/services/{name}", cv.name()),
                    format!(
                        "Service {ns}/{name} in {}: on rule {}, {}{more}; Azure takes backends out of rotation on a failing probe.",
                        cv.name(),
                        first.rule,
                        first.problem
                    ),
                )
                .cluster(cv.name())
                .subscription(&lb.subscription)
                .evidence("problems", &problems)
                .evidence("external_traffic_policy", &svc.external_traffic_policy)
                .evidence("health_check_node_port", svc.health_check_node_port)
                .evidence(
                    "node_ports",
                    svc.ports
                        .iter()
                        .map(|p| format!("{}/{}→{}", p.protocol, p.port, p.node_port.map_or("-".into(), |n| n.to_string())))
                        .collect::<Vec<_>>(),
                )
                .remediation(format!(
                    "Check the Service's probe annotations (kubectl -n {ns} get service {name} -o yaml), then let the provider reconcile it or fix it by hand: {fix}"
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

    fn base(u: char) -> String {
        conventions::base_name(&uid(u))
    }

    fn audit(lb: Lb, services: Vec<serde_json::Value>, cfg: Option<serde_json::Value>) -> Vec<Finding> {
        let mut w = WorldBuilder::new().arm(vec![lb.json()]).k8s(CLUSTER, services);
        if let Some(c) = cfg {
            w = w.cloud_config(CLUSTER, c);
        }
        run(&w.inventory(), check)
    }

    #[test]
    fn probe_on_a_port_that_is_not_the_node_port_is_reported() {
        let b = base('c');
        let r = format!("{b}-TCP-443");
        let lb = Lb::new(CLUSTER_TAG)
            .frontend(&b, Some("/x/pip"), None)
            .probe(&r, "Tcp", 31017)
            .rule(&r, &b, "Tcp", 443, Some(&r));
        let out = audit(
            lb,
            vec![lb_service(
                "erp",
                "erp-portal",
                &uid('c'),
                &[("TCP", 443, 30943)],
                &["51.137.110.4"],
            )],
            None,
        );
        assert_eq!(resources(&out), vec![svc_ref(CLUSTER, "erp", "erp-portal")]);
        assert_eq!(out[0].evidence["problems"][0]["probe_port"], 31017);
        assert_eq!(out[0].evidence["problems"][0]["expected_port"], 30943);
        assert!(
            out[0].remediation.contains("--port 30943"),
            "{}",
            out[0].remediation
        );
    }

    #[test]
    fn tcp_rule_without_probe_and_local_rule_off_the_health_check_port_are_reported() {
        let (b1, b2) = (base('1'), base('2'));
        let lb = Lb::new(CLUSTER_TAG)
            .frontend(&b1, Some("/x/p1"), None)
            .frontend(&b2, Some("/x/p2"), None)
            .rule(&format!("{b1}-TCP-80"), &b1, "Tcp", 80, None)
            .probe(&format!("{b2}-TCP-80"), "Tcp", 31080)
            .rule(
                &format!("{b2}-TCP-80"),
                &b2,
                "Tcp",
                80,
                Some(&format!("{b2}-TCP-80")),
            );
        let mut local = lb_service(
            "ingress",
            "nginx",
            &uid('2'),
            &[("TCP", 80, 31080)],
            &["20.0.0.2"],
        );
        set(&mut local, &["spec", "externalTrafficPolicy"], json!("Local"));
        set(&mut local, &["spec", "healthCheckNodePort"], json!(32156));
        let out = audit(
            lb,
            vec![
                lb_service("ns", "noprobe", &uid('1'), &[("TCP", 80, 30080)], &["20.0.0.1"]),
                local,
            ],
            None,
        );
        assert_eq!(
            resources(&out),
            vec![
                svc_ref(CLUSTER, "ns", "noprobe"),
                svc_ref(CLUSTER, "ingress", "nginx")
            ]
        );
        assert_eq!(out[1].evidence["problems"][0]["expected_port"], 32156);
    }

    #[test]
    fn shared_probe_mode_expects_the_shared_probe_port() {
        let b = base('3');
        let r = format!("{b}-TCP-80");
        let good = Lb::new(CLUSTER_TAG)
            .frontend(&b, Some("/x/p"), None)
            .probe(SHARED_PROBE_NAME, "Http", 10256)
            .rule(&r, &b, "Tcp", 80, Some(SHARED_PROBE_NAME));
        let svc = || {
            vec![lb_service(
                "ns",
                "web",
                &uid('3'),
                &[("TCP", 80, 30080)],
                &["20.0.0.3"],
            )]
        };
        let cfg = json!({"clusterServiceLoadBalancerHealthProbeMode": "shared"});
        assert!(audit(good, svc(), Some(cfg.clone())).is_empty());
        // Same LB, per-port probe on the nodePort: fine without shared mode, wrong with it.
        let per_port = || {
            Lb::new(CLUSTER_TAG)
                .frontend(&b, Some("/x/p"), None)
                .probe(&r, "Tcp", 30080)
                .rule(&r, &b, "Tcp", 80, Some(&r))
        };
        assert!(audit(per_port(), svc(), None).is_empty());
        let out = audit(per_port(), svc(), Some(cfg));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence["problems"][0]["expected_port"], 10256);
        // The shared probe wins over a per-port probe annotation.
        let annotated = || {
            vec![annotate(
                lb_service("ns", "web", &uid('3'), &[("TCP", 80, 30080)], &["20.0.0.3"]),
                "service.beta.kubernetes.io/port_80_health-probe_port",
                "31999",
            )]
        };
        let shared_cfg = json!({"clusterServiceLoadBalancerHealthProbeMode": "shared"});
        let shared_lb = || {
            Lb::new(CLUSTER_TAG)
                .frontend(&b, Some("/x/p"), None)
                .probe(SHARED_PROBE_NAME, "Http", 10256)
                .rule(&r, &b, "Tcp", 80, Some(SHARED_PROBE_NAME))
        };
        assert!(audit(shared_lb(), annotated(), Some(shared_cfg)).is_empty());
        // Without shared mode the annotation decides: 31999, not the shared 10256.
        let out = audit(shared_lb(), annotated(), None);
        assert_eq!(out[0].evidence["problems"][0]["expected_port"], 31999);
        // A configured shared port is honoured.
        let custom = Lb::new(CLUSTER_TAG)
            .frontend(&b, Some("/x/p"), None)
            .probe(SHARED_PROBE_NAME, "Http", 10257)
            .rule(&r, &b, "Tcp", 80, Some(SHARED_PROBE_NAME));
        let cfg = json!({"clusterServiceLoadBalancerHealthProbeMode": "Shared", "clusterServiceSharedLoadBalancerHealthProbePort": 10257});
        assert!(audit(custom, svc(), Some(cfg)).is_empty());
    }

    #[test]
    fn look_alikes_are_not_reported() {
        let (b1, b2, b3, b4, b5, b6) = (base('4'), base('5'), base('6'), base('7'), base('8'), base('9'));
        let lb = Lb::new(CLUSTER_TAG)
            // Healthy Cluster-policy TCP rule, and its dual-stack -IPv6 twin.
            .frontend(&b1, Some("/x/p1"), None)
            .probe(&format!("{b1}-TCP-443"), "Tcp", 30443)
            .rule(
                &format!("{b1}-TCP-443"),
                &b1,
                "Tcp",
                443,
                Some(&format!("{b1}-TCP-443")),
            )
            .probe(&format!("{b1}-TCP-443-IPv6"), "Tcp", 30443)
            .rule(
                &format!("{b1}-TCP-443-IPv6"),
                &b1,
                "Tcp",
                443,
                Some(&format!("{b1}-TCP-443-IPv6")),
            )
            // UDP rule without probe.
            .frontend(&b2, Some("/x/p2"), None)
            .rule(&format!("{b2}-UDP-7777"), &b2, "Udp", 7777, None)
            // Local policy: both rules (UDP too) on the healthCheckNodePort probe.
            .frontend(&b3, Some("/x/p3"), None)
            .probe(&format!("{b3}-TCP-32156"), "Http", 32156)
            .rule(
                &format!("{b3}-TCP-80"),
                &b3,
                "Tcp",
                80,
                Some(&format!("{b3}-TCP-32156")),
            )
            .rule(
                &format!("{b3}-UDP-53"),
                &b3,
                "Udp",
                53,
                Some(&format!("{b3}-TCP-32156")),
            )
            // A leftover rule of a removed port with a bad probe: orphaned-lb-rule's.
            .probe(&format!("{b1}-TCP-8080"), "Tcp", 1)
            .rule(
                &format!("{b1}-TCP-8080"),
                &b1,
                "Tcp",
                8080,
                Some(&format!("{b1}-TCP-8080")),
            )
            // Rules of a Service that is gone: orphaned-*'s.
            .frontend(&b4, Some("/x/p4"), None)
            .rule(&format!("{b4}-TCP-80"), &b4, "Tcp", 80, None)
            // Per-port annotations: probe on the named port's nodePort, and no probe wanted.
            .frontend(&b5, Some("/x/p5"), None)
            .probe(&format!("{b5}-TCP-443"), "Tcp", 31080)
            .rule(
                &format!("{b5}-TCP-443"),
                &b5,
                "Tcp",
                443,
                Some(&format!("{b5}-TCP-443")),
            )
            .rule(&format!("{b5}-TCP-80"), &b5, "Tcp", 80, None)
            // HA-ports Service: not judged.
            .frontend(&b6, None, Some("10.0.0.6"))
            .rule(&format!("{b6}-TCP-80"), &b6, "All", 0, None);
        let mut dual = lb_service("www", "site", &uid('4'), &[("TCP", 443, 30443)], &["20.0.0.4"]);
        set(&mut dual, &["spec", "ipFamilies"], json!(["IPv4", "IPv6"]));
        let mut local = lb_service(
            "ns",
            "dns",
            &uid('6'),
            &[("TCP", 80, 30080), ("UDP", 53, 30053)],
            &["20.0.0.6"],
        );
        set(&mut local, &["spec", "externalTrafficPolicy"], json!("Local"));
        set(&mut local, &["spec", "healthCheckNodePort"], json!(32156));
        let annotated = annotate(
            annotate(
                lb_service(
                    "ns",
                    "annotated",
                    &uid('8'),
                    &[("TCP", 80, 31080), ("TCP", 443, 31443)],
                    &["20.0.0.8"],
                ),
                "service.beta.kubernetes.io/port_443_health-probe_port",
                "p80",
            ),
            "service.beta.kubernetes.io/port_80_no_probe_rule",
            "true",
        );
        let ha = annotate(
            annotate(
                lb_service("ns", "ha", &uid('9'), &[("TCP", 80, 30090)], &["10.0.0.6"]),
                conventions::ANN_INTERNAL,
                "true",
            ),
            conventions::ANN_HA_PORTS,
            "true",
        );
        let out = audit(
            lb,
            vec![
                dual,
                lb_service(
                    "gaming",
                    "arena",
                    &uid('5'),
                    &[("UDP", 7777, 30777)],
                    &["20.0.0.5"],
                ),
                local,
                annotated,
                ha,
            ],
            None,
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn local_services_keep_their_health_check_probe_in_shared_mode() {
        let b = base('f');
        let hc = format!("{b}-TCP-32156");
        let lb = Lb::new(CLUSTER_TAG)
            .frontend(&b, Some("/x/p"), None)
            .probe(&hc, "Http", 32156)
            .rule(&format!("{b}-TCP-80"), &b, "Tcp", 80, Some(&hc));
        let mut local = lb_service("ns", "local", &uid('f'), &[("TCP", 80, 30080)], &["20.0.0.1"]);
        set(&mut local, &["spec", "externalTrafficPolicy"], json!("Local"));
        set(&mut local, &["spec", "healthCheckNodePort"], json!(32156));
        let cfg = json!({"clusterServiceLoadBalancerHealthProbeMode": "shared"});
        assert!(audit(lb, vec![local], Some(cfg)).is_empty());
    }

    #[test]
    fn a_rule_referencing_a_missing_probe_is_reported() {
        let b = base('d');
        let lb = Lb::new(CLUSTER_TAG).frontend(&b, Some("/x/p"), None).rule(
            &format!("{b}-TCP-80"),
            &b,
            "Tcp",
            80,
            Some("gone"),
        );
        let out = audit(
            lb,
            vec![lb_service(
                "ns",
                "web",
                &uid('d'),
                &[("TCP", 80, 30080)],
                &["20.0.0.1"],
            )],
            None,
        );
        assert_eq!(out.len(), 1);
        assert!(out[0].message.contains("does not have"), "{}", out[0].message);
    }

    #[test]
    fn rules_on_unmanaged_load_balancers_are_not_judged() {
        let b = base('e');
        let lb = Lb::new("someone-elses-lb").frontend(&b, Some("/x/p"), None).rule(
            &format!("{b}-TCP-80"),
            &b,
            "Tcp",
            80,
            None,
        );
        let out = audit(
            lb,
            vec![lb_service(
                "ns",
                "web",
                &uid('e'),
                &[("TCP", 80, 30080)],
                &["20.0.0.1"],
            )],
            None,
        );
        assert!(out.is_empty(), "{out:?}");
    }
}
