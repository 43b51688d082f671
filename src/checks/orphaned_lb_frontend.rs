//! `orphaned-lb-frontend`: on a managed load balancer, a frontend IP configuration named for a
//! Service (base-name prefix, domain.md §1.3) that no existing Service owns or pins.
//! Source: the guide's FrontendIPConfigurations quota section — leaked frontends eat the 600
//! (Standard) / 200 (Basic) frontend limit.

use super::context::{ClusterView, key};
use super::{Context, Rule, RuleInfo};
use crate::conventions::{self, base_prefix};
use crate::findings::{Finding, Severity};
use crate::inventory::{Frontend, LoadBalancer};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "orphaned-lb-frontend",
        title: "Load balancer frontend of a deleted Service",
        default_severity: Severity::High,
        rationale: "The frontend was created for a Service that no longer exists. It holds an IP, counts against the load balancer's frontend limit, and keeps its rules and probes alive.",
        remediation: "Remove the frontend with its rules and probes: az network lb rule delete / az network lb probe delete for each, then az network lb frontend-ip delete -g <rg> --lb-name <lb> -n <frontend>.",
        source: "FrontendIPConfigurations quota (LoadBalancer Service 一直处于 pending 状态)",
        cleanup: true,
    },
    check,
};

/// `true` when a live Service pins this frontend: owns it by name, or asks for its address
/// (external: the PIP's address or name; internal: the private IP), or holds it as ingress.
fn pinned_by_live_service(ctx: &Context, cv: &ClusterView, fe: &Frontend) -> bool {
    if base_prefix(&fe.name).is_some_and(|b| cv.service_for_base(&b).is_some()) {
        return true;
    }
    let pip = fe
        .public_ip_id
        .as_deref()
        .and_then(|id| ctx.pips_by_id.get(&key(id)).copied());
    let fe_ip = pip
        .and_then(|p| p.ip_address.as_deref())
        .or(fe.private_ip.as_deref());
    cv.lb_services.iter().any(|s| {
        let by_ip = fe_ip.is_some_and(|ip| {
            conventions::requested_ips(s).contains(&ip) || s.ingress_ips.iter().any(|i| i == ip)
        });
        let by_name = pip.is_some_and(|p| {
            conventions::requested_pip_names(s)
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&p.name))
        });
        by_ip || by_name
    })
}

/// The orphaned frontends of a cluster's managed LBs (empty when the Service listing is incomplete).
pub(super) fn orphaned_frontends<'a>(
    ctx: &Context<'a>,
    cv: &ClusterView<'a>,
) -> Vec<(&'a LoadBalancer, &'a Frontend)> {
    if !cv.services_complete() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for lb in &cv.managed_lbs {
        for fe in &lb.frontends {
            // Only frontends named for a Service; AKS outbound (GUID) frontends are not the provider's.
            if base_prefix(&fe.name).is_none() {
                continue;
            }
            if !pinned_by_live_service(ctx, cv, fe) {
                out.push((*lb, fe));
            }
        }
    }
    out
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        for (lb, fe) in orphaned_frontends(ctx, cv) {
            let rules: Vec<&str> = lb
                .rules
                .iter()
                .filter(|r| {
                    r.frontend_id.as_deref().is_some_and(|id| key(id) == key(&fe.id))
                        || r.name.contains(&fe.name)
                })
                .map(|r| r.name.as_str())
                .collect();
            let probes: Vec<&str> = lb
                .probes
                .iter()
                .filter(|p| p.name.contains(&fe.name))
                .map(|p| p.name.as_str())
                .collect();
            out.push(
                Finding::new(
                    RULE.info.id,
                    RULE.info.default_severity,
                    &fe.id,
                    format!(
                        "Frontend {} on load balancer {} belongs to no existing Service of cluster {}.",
                        fe.name,
                        lb.name,
                        cv.name()
                    ),
                )
                .cluster(cv.name())
                .subscription(&lb.subscription)
                .evidence("load_balancer", &lb.id)
                .evidence("public_ip", &fe.public_ip_id)
                .evidence("private_ip", &fe.private_ip)
                .evidence("rules", rules)
                .evidence("probes", probes)
                .remediation(format!(
                    "Remove the frontend and the rules and probes named after it: az network lb frontend-ip delete -g {} --lb-name {} -n {} (after deleting its rules: az network lb rule delete -g {} --lb-name {} -n <rule>).",
                    lb.resource_group, lb.name, fe.name, lb.resource_group, lb.name
                ))
                .cleanup(true),
            );
        }
    }
}
