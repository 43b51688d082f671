//! `orphaned-lb-rule`: a load-balancing rule or health probe named for a Service
//! (`<base>[-<subnet>]-<PROTO>-<port>[-IPv6]`, domain.md §1.4–1.5) whose Service is gone, or no
//! longer exposes that protocol and port. Rules and probes of a frontend that is itself reported
//! by `orphaned-lb-frontend` are not reported again: removing the frontend removes them.

use super::context::key;
use super::orphaned_lb_frontend::orphaned_frontends;
use super::{Context, Rule, RuleInfo};
use crate::conventions::base_prefix;
use crate::findings::{Finding, Severity};
use crate::inventory::Service;

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "orphaned-lb-rule",
        title: "Load-balancing rule or probe no Service needs",
        default_severity: Severity::Medium,
        rationale: "Rules count against the load balancer's rule limit (1,500 Standard, 250 Basic) and a stale rule keeps forwarding a port nobody serves.",
        remediation: "Delete it: az network lb rule delete -g <rg> --lb-name <lb> -n <rule> (or az network lb probe delete for a probe).",
        source: "Azure 探测器 / FrontendIPConfigurations quota",
        cleanup: true,
    },
    check,
};

/// `(PROTO, port)` at the end of a rule or probe name, before an optional `-IPv6`.
pub(super) fn proto_port(name: &str) -> Option<(String, u32)> {
    let n = name
        .strip_suffix("-IPv6")
        .or_else(|| name.strip_suffix("-ipv6"))
        .unwrap_or(name);
    let (rest, port) = n.rsplit_once('-')?;
    let port: u32 = port.parse().ok()?;
    let (_, proto) = rest.rsplit_once('-')?;
    let proto = proto.to_ascii_uppercase();
    matches!(proto.as_str(), "TCP" | "UDP" | "SCTP").then_some((proto, port))
}

/// What a live Service expects: its ports, plus its `healthCheckNodePort` probe (TCP).
pub(super) fn expects(svc: &Service, proto: &str, port: u32) -> bool {
    svc.ports
        .iter()
        .any(|p| p.port == port && p.protocol.eq_ignore_ascii_case(proto))
        || (proto == "TCP" && svc.health_check_node_port == Some(port))
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        if !cv.services_complete() {
            continue;
        }
        let orphan_fes = orphaned_frontends(ctx, cv);
        for lb in &cv.managed_lbs {
            let covered = |frontend_id: Option<&str>, name: &str| {
                orphan_fes.iter().any(|(olb, fe)| {
                    key(&olb.id) == key(&lb.id)
                        && (frontend_id.is_some_and(|id| key(id) == key(&fe.id)) || name.contains(&fe.name))
                })
            };
            let items = lb
                .rules
                .iter()
                .map(|r| (&r.id, &r.name, r.frontend_id.as_deref(), "rule"))
                .chain(lb.probes.iter().map(|p| (&p.id, &p.name, None, "probe")));
            for (id, name, frontend_id, what) in items {
                let Some(base) = base_prefix(name) else { continue };
                let reason = match cv.service_for_base(&base) {
                    None => {
                        if covered(frontend_id, name) {
                            continue;
                        }
                        "its Service no longer exists".to_string()
                    }
                    Some(svc) => {
                        let Some((proto, port)) = proto_port(name) else {
                            continue;
                        };
                        if expects(svc, &proto, port) {
                            continue;
                        }
                        format!("Service {} no longer exposes {proto}/{port}", svc.key())
                    }
                };
                out.push(
                    Finding::new(
                        RULE.info.id,
                        RULE.info.default_severity,
                        id,
                        format!("Load balancer {what} {name} on {} is stale: {reason}.", lb.name),
                    )
                    .cluster(cv.name())
                    .subscription(&lb.subscription)
                    .evidence("load_balancer", &lb.id)
                    .evidence("kind", what)
                    .evidence("frontend", frontend_id)
                    .evidence("reason", &reason)
                    .remediation(format!(
                        "az network lb {what} delete -g {} --lb-name {} -n {name}",
                        lb.resource_group, lb.name
                    ))
                    .cleanup(true),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rule_names() {
        assert_eq!(
            proto_port("a3d654cb447704508bc7b1db1dacaec0-TCP-443"),
            Some(("TCP".into(), 443))
        );
        assert_eq!(
            proto_port("a3d654cb447704508bc7b1db1dacaec0-subnet-1-UDP-53-IPv6"),
            Some(("UDP".into(), 53))
        );
        assert_eq!(proto_port("a3d654cb447704508bc7b1db1dacaec0"), None);
        assert_eq!(proto_port("a3d654cb447704508bc7b1db1dacaec0-TCP-x"), None);
    }
}
