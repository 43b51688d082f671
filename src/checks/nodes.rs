//! How nodes map to Azure instances and pool members; shared by the pool and node rules.

use azaudit_world::ResourceId;

use super::Context;
use super::context::key;
use crate::conventions::ProviderId;
use crate::inventory::{ArmKind, BackendPool, Node};

/// Whether a node's instance is in the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Found; the lowercased id of the VM or VMSS instance.
    Found(String),
    /// Listed completely and absent; the id it should have.
    NotFound(String),
    /// Cannot tell (another subscription, or a list with a gap).
    Unknown,
    /// No Azure providerID.
    NotAzure,
}

fn vmss_id(sub: &str, rg: &str, ss: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{ss}"
    )
}

pub fn instance(ctx: &Context, node: &Node) -> Lookup {
    let Some(pid) = node.provider_id.as_deref() else {
        return Lookup::NotAzure;
    };
    match ProviderId::parse(pid) {
        ProviderId::Vm {
            subscription,
            resource_group,
            name,
        } => {
            if !ctx.audited_subscription(&subscription)
                || !ctx.arm_complete(&subscription, ArmKind::VirtualMachines)
            {
                return Lookup::Unknown;
            }
            let id = format!(
                "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/virtualMachines/{name}"
            );
            if ctx.vms_by_id.contains_key(&key(&id)) {
                Lookup::Found(key(&id))
            } else {
                Lookup::NotFound(id)
            }
        }
        ProviderId::VmssInstance {
            subscription,
            resource_group,
            scale_set,
            instance_id,
        } => {
            if !ctx.audited_subscription(&subscription)
                || !ctx.arm_complete(&subscription, ArmKind::VirtualMachineScaleSets)
            {
                return Lookup::Unknown;
            }
            let ss = vmss_id(&subscription, &resource_group, &scale_set);
            let id = format!("{ss}/virtualMachines/{instance_id}");
            if !ctx.vmss_by_id.contains_key(&key(&ss)) {
                return Lookup::NotFound(id);
            }
            if !ctx.vmss_listed.contains(&key(&ss))
                || !ctx.arm_complete(&subscription, ArmKind::VmssVirtualMachines)
            {
                return Lookup::Unknown;
            }
            if ctx.vmss_vms_by_id.contains_key(&key(&id)) {
                Lookup::Found(key(&id))
            } else {
                Lookup::NotFound(id)
            }
        }
        ProviderId::OtherAzure(_) => Lookup::Unknown,
        ProviderId::NotAzure(_) => Lookup::NotAzure,
    }
}

/// Lowercased id prefixes under which the node's IP configurations live:
/// `<vmss instance>/networkinterfaces/` or `<nic>/ipconfigurations/` for each NIC of the VM.
pub fn ip_config_prefixes(ctx: &Context, node: &Node) -> Vec<String> {
    let Lookup::Found(id) = instance(ctx, node) else {
        return Vec::new();
    };
    if id.contains("/virtualmachinescalesets/") {
        return vec![format!("{id}/networkinterfaces/")];
    }
    let mut nics: Vec<String> = ctx
        .vms_by_id
        .get(&id)
        .map(|vm| vm.nic_ids.iter().map(|n| key(n)).collect())
        .unwrap_or_default();
    for nic in &ctx.inv.nics {
        if nic.vm_id.as_deref().is_some_and(|v| key(v) == id) && !nics.contains(&key(&nic.id)) {
            nics.push(key(&nic.id));
        }
    }
    nics.into_iter()
        .map(|n| format!("{n}/ipconfigurations/"))
        .collect()
}

/// `true` when the pool holds the node: by IP configuration (NIC pools) or InternalIP (IP pools).
pub fn pool_has_node(pool: &BackendPool, prefixes: &[String], node: &Node) -> bool {
    pool.member_ip_config_ids()
        .iter()
        .any(|m| prefixes.iter().any(|p| key(m).starts_with(p.as_str())))
        || pool
            .member_ips()
            .iter()
            .any(|ip| node.internal_ips.iter().any(|n| n == ip))
}

/// For a NIC or VMSS IP configuration id: the owning instance (VMSS instance id, or NIC id).
pub enum MemberOwner {
    VmssInstance { vmss: String, instance: String },
    Nic(String),
    Unparsable,
}

pub fn member_owner(member_id: &str) -> MemberOwner {
    let Some(p) = ResourceId::parse(member_id) else {
        return MemberOwner::Unparsable;
    };
    let (Some(sub), Some(rg)) = (p.subscription.as_deref(), p.resource_group.as_deref()) else {
        return MemberOwner::Unparsable;
    };
    if let (Some(ss), Some(i)) = (p.child("virtualMachineScaleSets"), p.child("virtualMachines")) {
        let vmss = vmss_id(sub, rg, ss);
        return MemberOwner::VmssInstance {
            instance: format!("{vmss}/virtualMachines/{i}"),
            vmss,
        };
    }
    if let Some(nic) = p.child("networkInterfaces") {
        return MemberOwner::Nic(format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkInterfaces/{nic}"
        ));
    }
    MemberOwner::Unparsable
}
