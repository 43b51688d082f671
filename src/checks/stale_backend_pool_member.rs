//! `stale-backend-pool-member`: a member of a managed pool that is no node of the cluster and no
//! existing VM or VMSS instance (left behind by a deleted node or scale-in).

use std::net::IpAddr;

use super::context::key;
use super::nodes::{MemberOwner, member_owner};
use super::{Context, Rule, RuleInfo};
use crate::conventions::{ProviderId, is_managed_pool_name};
use crate::findings::{Finding, Severity};
use crate::inventory::ArmKind;

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "stale-backend-pool-member",
        title: "Backend pool member that no longer exists",
        default_severity: Severity::Medium,
        rationale: "The load balancer probes a member that is gone; with a reused IP it may even send traffic to the wrong machine.",
        remediation: "Remove the member: az network lb address-pool address remove (IP-based pools) or az network nic ip-config address-pool remove (NIC-based pools); then check the cloud-controller-manager logs for why it was not pruned.",
        source: "内网/外网负载均衡 BackendPool 为空 (pool drift)",
        cleanup: false,
    },
    check,
};

/// Is this NIC/VMSS member alive? `None` when the inventory cannot tell.
fn member_alive(ctx: &Context, member: &str, node_instances: &[String]) -> Option<bool> {
    match member_owner(member) {
        MemberOwner::VmssInstance { vmss, instance } => {
            if node_instances.contains(&key(&instance)) {
                return Some(true);
            }
            let sub = azaudit_world::ResourceId::parse(&vmss)?.subscription?;
            if !ctx.audited_subscription(&sub) || !ctx.arm_complete(&sub, ArmKind::VirtualMachineScaleSets) {
                return None;
            }
            if !ctx.vmss_by_id.contains_key(&key(&vmss)) {
                return Some(false);
            }
            if !ctx.vmss_listed.contains(&key(&vmss)) || !ctx.arm_complete(&sub, ArmKind::VmssVirtualMachines)
            {
                return None;
            }
            Some(ctx.vmss_vms_by_id.contains_key(&key(&instance)))
        }
        MemberOwner::Nic(nic) => {
            let sub = azaudit_world::ResourceId::parse(&nic)?.subscription?;
            if !ctx.audited_subscription(&sub)
                || !ctx.arm_complete(&sub, ArmKind::NetworkInterfaces)
                || !ctx.arm_complete(&sub, ArmKind::VirtualMachines)
            {
                return None;
            }
            // A NIC that no longer exists is stale; so is one whose VM is gone (or that has none).
            let Some(n) = ctx.nics_by_id.get(&key(&nic)) else {
                return Some(false);
            };
            Some(
                n.vm_id
                    .as_deref()
                    .is_some_and(|vm| ctx.vms_by_id.contains_key(&key(vm))),
            )
        }
        MemberOwner::Unparsable => None,
    }
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        if !cv.nodes_complete() {
            continue;
        }
        let node_instances: Vec<String> = cv
            .cluster
            .nodes
            .iter()
            .filter_map(|n| match ProviderId::parse(n.provider_id.as_deref().unwrap_or_default()) {
                ProviderId::VmssInstance { subscription, resource_group, scale_set, instance_id } => Some(key(&format!(
                    "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/virtualMachineScaleSets/{scale_set}/virtualMachines/{instance_id}"
                ))),
                _ => None,
            })
            .collect();
        let node_ips: Vec<IpAddr> = cv
            .cluster
            .nodes
            .iter()
            .flat_map(|n| n.internal_ips.iter().filter_map(|i| i.parse().ok()))
            .collect();
        for lb in &cv.managed_lbs {
            let nic_list_complete = ctx.arm_complete(&lb.subscription, ArmKind::NetworkInterfaces);
            for pool in &lb.pools {
                if !is_managed_pool_name(&pool.name, &cv.cluster.cluster_name_tag) {
                    continue;
                }
                let mut stale: Vec<String> = pool
                    .member_ip_config_ids()
                    .into_iter()
                    .filter(|m| member_alive(ctx, m, &node_instances) == Some(false))
                    .map(str::to_string)
                    .collect();
                // IP-based members: neither a node's InternalIP nor any NIC's private IP.
                if nic_list_complete {
                    for a in pool.addresses.iter().filter(|a| a.nic_ip_config_id.is_none()) {
                        let Some(ip) = a.ip_address.as_deref() else {
                            continue;
                        };
                        let Ok(addr) = ip.parse::<IpAddr>() else { continue };
                        let on_nic = ctx.nic_private_ips.contains(ip);
                        if !node_ips.contains(&addr) && !on_nic {
                            stale.push(format!("{} ({ip})", a.name.as_deref().unwrap_or("address")));
                        }
                    }
                }
                if stale.is_empty() {
                    continue;
                }
                out.push(
                    Finding::new(
                        RULE.info.id,
                        RULE.info.default_severity,
                        &pool.id,
                        format!(
                            "Backend pool {} of {} has {} member(s) that are no node and no existing VM or instance.",
                            pool.name,
                            lb.name,
                            stale.len()
                        ),
                    )
                    .cluster(cv.name())
                    .subscription(&lb.subscription)
                    .evidence("load_balancer", &lb.id)
                    .evidence("stale_members", &stale),
                );
            }
        }
    }
}
