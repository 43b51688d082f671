//! `orphaned-public-ip`: a cluster-owned public IP none of whose tagged Services exists.
//! Source: the guide's "Service 删除后 Azure 公网 IP 未自动删除"; ownership per `serviceOwnsPublicIP`
//! (domain.md §2.3): service tag present, cluster tag equal or absent, in a resource group the
//! cluster's provider manages.

use super::context::{ClusterView, key};
use super::{Context, Rule, RuleInfo};
use crate::conventions::{self, pip_cluster_matches, pip_services};
use crate::findings::{Finding, Severity};
use crate::inventory::PublicIp;

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "orphaned-public-ip",
        title: "Public IP left behind by a deleted Service",
        default_severity: Severity::High,
        rationale: "The cloud provider tagged this public IP for Services that no longer exist. It costs money, counts against the regional public IP quota, and keeps its address reserved.",
        remediation: "Confirm no Service still needs the address, then delete it: az network public-ip delete --ids <id> (if a load balancer frontend still holds it, remove that frontend first; `azaudit cleanup plan` orders this for you).",
        source: "Service 删除后 Azure 公网 IP 未自动删除",
        cleanup: true,
    },
    check,
};

/// Clusters that would own this PIP: same subscription, a PIP resource group they manage, and a
/// matching (or absent) cluster tag.
pub(super) fn owning_clusters<'c, 'a>(ctx: &'c Context<'a>, pip: &PublicIp) -> Vec<&'c ClusterView<'a>> {
    if pip_services(pip).is_none() {
        return Vec::new();
    }
    ctx.clusters
        .iter()
        .filter(|cv| {
            cv.subscription()
                .is_some_and(|s| s.eq_ignore_ascii_case(&pip.subscription))
                && cv
                    .pip_resource_groups
                    .contains(&pip.resource_group.to_ascii_lowercase())
                && pip_cluster_matches(pip, &cv.cluster.cluster_name_tag)
        })
        .collect()
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for pip in &ctx.inv.public_ips {
        let Some(services) = pip_services(pip) else {
            continue;
        };
        let owners = owning_clusters(ctx, pip);
        if owners.is_empty() || owners.iter().any(|c| !c.services_complete()) {
            continue;
        }
        // NAT gateway and prefix-allocated addresses are never the provider's to release.
        if pip.nat_gateway_id.is_some() {
            continue;
        }
        let exists = |svc: &str| {
            owners
                .iter()
                .any(|c| c.lb_services.iter().any(|s| s.key().eq_ignore_ascii_case(svc)))
        };
        if services.iter().any(|s| exists(s)) {
            continue;
        }
        // Still pinned by a live Service (by IP or name), or held by a frontend of a live Service?
        if !ctx.services_requesting_pip(pip).is_empty() {
            continue;
        }
        if let Some(cfg) = &pip.ip_configuration_id
            && attached_to_live_frontend(ctx, cfg)
        {
            continue;
        }
        let owner = owners[0];
        let mut f = Finding::new(
            RULE.info.id,
            RULE.info.default_severity,
            &pip.id,
            format!(
                "Public IP {} ({}) is tagged for {} which no longer exist in cluster {}.",
                pip.name,
                pip.ip_address.as_deref().unwrap_or("no address"),
                if services.is_empty() {
                    "no Service".to_string()
                } else {
                    services.join(", ")
                },
                owner.name()
            ),
        )
        .cluster(owner.name())
        .subscription(&pip.subscription)
        .evidence("tags", &pip.tags)
        .evidence("ip_address", &pip.ip_address)
        .evidence("ip_configuration", &pip.ip_configuration_id)
        .evidence("dns_label", &pip.dns_label)
        .evidence("services_in_tag", &services)
        .cleanup(true);
        if let Some(cfg) = &pip.ip_configuration_id {
            f = f.remediation(format!(
                "The address is still attached to {cfg}: remove that frontend first (az network lb frontend-ip delete ...), then az network public-ip delete --ids {}",
                pip.id
            ));
        } else {
            f = f.remediation(format!("az network public-ip delete --ids {}", pip.id));
        }
        out.push(f);
    }
}

/// `true` when `ip_config_id` is a frontend of a managed LB whose name belongs to a live Service.
fn attached_to_live_frontend(ctx: &Context, ip_config_id: &str) -> bool {
    let k = key(ip_config_id);
    for cv in &ctx.clusters {
        for lb in &cv.managed_lbs {
            for fe in &lb.frontends {
                if key(&fe.id) == k {
                    return conventions::base_prefix(&fe.name)
                        .is_some_and(|b| cv.service_for_base(&b).is_some())
                        || !conventions::looks_like_base_name(&fe.name);
                }
            }
        }
    }
    false
}
