//! `orphaned-nsg-rule`: NSG rules the cloud provider wrote for Services that are gone.
//! - Legacy per-Service rules (`<base>-<PROTO>-<port>-<source>`, before v1.29) whose Service is gone,
//!   and legacy `shared-<PROTO>-<port>-<source>` rules whose port no live Service exposes: since
//!   v1.35 the provider no longer touches them (domain.md §1.7).
//! - Current consolidated rules (`k8s-azure-lb_*`, priority 500–4096): destinations that are no
//!   longer any Service's ingress IP, additional public IP, or managed node IP
//!   (`listAvailableSecurityGroupDestinations`).

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::context::{ClusterView, key};
use super::{Context, Rule, RuleInfo};
use crate::conventions::{self, NSG_MAX_PRIORITY, NSG_MIN_PRIORITY, NSG_RULE_PREFIX, base_prefix};
use crate::findings::{Finding, Severity};
use crate::inventory::{Nsg, SecurityRule};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "orphaned-nsg-rule",
        title: "NSG rule or destination of a deleted Service",
        default_severity: Severity::Medium,
        rationale: "Stale allow rules keep ports open to addresses that may be reassigned to someone else, and count against the NSG's 1,000 rules and 4,000 destination addresses.",
        remediation: "Delete the legacy rule (az network nsg rule delete -g <rg> --nsg-name <nsg> -n <rule>) or remove the stale addresses from the shared rule (az network nsg rule update ... --destination-address-prefixes <kept addresses>).",
        source: "防火墙或网络安全组阻止了要访问的端口 (NSG rules written per Service)",
        cleanup: true,
    },
    check,
};

/// Host address of a destination prefix (`1.2.3.4`, `1.2.3.4/32`, `fd00::1/128`), if it is one.
pub(super) fn host_ip(prefix: &str) -> Option<IpAddr> {
    let (addr, len) = match prefix.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (prefix, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    match (ip, len) {
        (_, None) | (IpAddr::V4(_), Some("32")) | (IpAddr::V6(_), Some("128")) => Some(ip),
        _ => None,
    }
}

fn is_managed_current(r: &SecurityRule) -> bool {
    r.name.starts_with(NSG_RULE_PREFIX)
        && r.priority
            .is_some_and(|p| (NSG_MIN_PRIORITY..=NSG_MAX_PRIORITY).contains(&p))
}

/// Destinations the provider keeps, over every cluster that writes this NSG.
fn kept_destinations(clusters: &[&ClusterView]) -> BTreeSet<IpAddr> {
    let mut kept = BTreeSet::new();
    for cv in clusters {
        for s in &cv.cluster.services {
            kept.extend(s.ingress_ips.iter().filter_map(|i| i.parse::<IpAddr>().ok()));
            if let Some(extra) = s.annotation(conventions::ANN_ADDITIONAL_PIPS) {
                kept.extend(extra.split(',').filter_map(|i| i.trim().parse::<IpAddr>().ok()));
            }
        }
        for n in &cv.cluster.nodes {
            if !conventions::is_unmanaged(n) {
                kept.extend(n.internal_ips.iter().filter_map(|i| i.parse::<IpAddr>().ok()));
            }
        }
    }
    kept
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    // Each NSG once, with every cluster that writes it.
    let mut nsgs: Vec<(&Nsg, Vec<&ClusterView>)> = Vec::new();
    for cv in &ctx.clusters {
        for nsg in &cv.nsgs {
            match nsgs.iter_mut().find(|(n, _)| key(&n.id) == key(&nsg.id)) {
                Some((_, cs)) => cs.push(cv),
                None => nsgs.push((nsg, vec![cv])),
            }
        }
    }
    for (nsg, clusters) in nsgs {
        if clusters
            .iter()
            .any(|c| !c.services_complete() || !c.nodes_complete())
        {
            continue;
        }
        let kept = kept_destinations(&clusters);
        let cluster = clusters[0].name();
        for r in &nsg.rules {
            if !r.direction.eq_ignore_ascii_case("Inbound") {
                continue;
            }
            let finding = |msg: String| {
                Finding::new(RULE.info.id, RULE.info.default_severity, &r.id, msg)
                    .cluster(cluster)
                    .subscription(&nsg.subscription)
                    .evidence("nsg", &nsg.id)
                    .evidence("priority", r.priority)
                    .evidence("destinations", &r.destination_prefixes)
                    .evidence("ports", &r.destination_ports)
                    .cleanup(true)
            };
            if let Some(base) = base_prefix(&r.name) {
                if clusters.iter().any(|c| c.service_for_base(&base).is_some()) {
                    continue;
                }
                out.push(
                    finding(format!(
                        "Legacy NSG rule {} in {} belongs to a Service that no longer exists.",
                        r.name, nsg.name
                    ))
                    .evidence("action", "delete-rule")
                    .remediation(format!(
                        "az network nsg rule delete -g {} --nsg-name {} -n {}",
                        nsg.resource_group, nsg.name, r.name
                    )),
                );
            } else if let Some(rest) = r.name.strip_prefix("shared-") {
                // shared-<PROTO>-<port>-<source>: proto/port are the first two fields.
                let mut parts = rest.splitn(3, '-');
                let (Some(proto), Some(port)) =
                    (parts.next(), parts.next().and_then(|p| p.parse::<u32>().ok()))
                else {
                    continue;
                };
                let proto = proto.to_ascii_uppercase();
                let used = clusters.iter().any(|c| {
                    c.lb_services.iter().any(|s| {
                        s.ports
                            .iter()
                            .any(|p| p.port == port && p.protocol.eq_ignore_ascii_case(&proto))
                    })
                });
                if used {
                    continue;
                }
                out.push(
                    finding(format!(
                        "Legacy shared NSG rule {} in {} opens {proto}/{port}, which no LoadBalancer Service exposes any more.",
                        r.name, nsg.name
                    ))
                    .evidence("action", "delete-rule")
                    .remediation(format!("az network nsg rule delete -g {} --nsg-name {} -n {}", nsg.resource_group, nsg.name, r.name)),
                );
            } else if is_managed_current(r) {
                let stale: Vec<&String> = r
                    .destination_prefixes
                    .iter()
                    .filter(|d| host_ip(d).is_some_and(|ip| !kept.contains(&ip)))
                    .collect();
                if stale.is_empty() {
                    continue;
                }
                let remaining: Vec<&String> = r
                    .destination_prefixes
                    .iter()
                    .filter(|d| !stale.contains(d))
                    .collect();
                let all_gone = remaining.is_empty();
                let msg = format!(
                    "NSG rule {} in {} still allows traffic to {} address(es) no Service or node uses: {}.",
                    r.name,
                    nsg.name,
                    stale.len(),
                    stale.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                );
                let remediation = if all_gone {
                    format!(
                        "az network nsg rule delete -g {} --nsg-name {} -n {}",
                        nsg.resource_group, nsg.name, r.name
                    )
                } else {
                    format!(
                        "az network nsg rule update -g {} --nsg-name {} -n {} --destination-address-prefixes {}",
                        nsg.resource_group,
                        nsg.name,
                        r.name,
                        remaining.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
                    )
                };
                out.push(
                    finding(msg)
                        .evidence("stale_destinations", &stale)
                        .evidence(
                            "action",
                            if all_gone {
                                "delete-rule"
                            } else {
                                "remove-destinations"
                            },
                        )
                        .remediation(remediation),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ips() {
        assert!(host_ip("20.1.2.3").is_some());
        assert!(host_ip("20.1.2.3/32").is_some());
        assert!(host_ip("fd00::1/128").is_some());
        assert!(host_ip("10.0.0.0/8").is_none());
        assert!(host_ip("Internet").is_none());
    }
}
