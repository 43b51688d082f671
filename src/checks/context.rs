//! Indexes over the inventory, built once per audit and shared by every check, and the mapping
//! of each cluster to the Azure resources its cloud provider manages.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::conventions::{self, base_name, is_managed_lb_name};
use crate::inventory::json::str_at;
use crate::inventory::{
    ArmKind, Cluster, Inventory, K8sKind, LoadBalancer, Nic, Nsg, PublicIp, Service, Vm, Vmss, VmssVm,
};

/// One cluster and the Azure resources its provider manages.
pub struct ClusterView<'a> {
    pub cluster: &'a Cluster,
    /// Parsed cloud config, when present and valid JSON.
    pub cloud_config: Option<Value>,
    /// The cluster (node) resource group, lowercased.
    pub resource_group: Option<String>,
    /// The LB resource group (`loadBalancerResourceGroup`, else the cluster group), lowercased.
    pub lb_resource_group: Option<String>,
    /// Managed LBs (`<name>`, `<name>-internal`) in the LB resource group and subscription.
    pub managed_lbs: Vec<&'a LoadBalancer>,
    /// Resource groups whose PIPs this cluster's provider manages, lowercased: the cluster group
    /// and every `azure-load-balancer-resource-group` of its Services.
    pub pip_resource_groups: BTreeSet<String>,
    /// NSGs the provider writes for this cluster.
    pub nsgs: Vec<&'a Nsg>,
    /// Services of type LoadBalancer, by base name.
    pub lb_services_by_base: HashMap<String, &'a Service>,
    /// Services of type LoadBalancer.
    pub lb_services: Vec<&'a Service>,
}

impl<'a> ClusterView<'a> {
    pub fn name(&self) -> &str {
        &self.cluster.name
    }
    pub fn services_complete(&self) -> bool {
        self.cluster.is_complete(K8sKind::Services)
    }
    pub fn nodes_complete(&self) -> bool {
        self.cluster.is_complete(K8sKind::Nodes)
    }
    pub fn subscription(&self) -> Option<&str> {
        self.cluster.subscription_id.as_deref()
    }
    /// The live LoadBalancer Service whose base name is this prefix.
    pub fn service_for_base(&self, base: &str) -> Option<&'a Service> {
        self.lb_services_by_base.get(&base.to_ascii_lowercase()).copied()
    }
    /// A cloud config value (keys case-insensitive, as the provider decodes them).
    pub fn config_str(&self, key: &str) -> Option<String> {
        self.cloud_config.as_ref().and_then(|c| str_at(c, &[key]))
    }
}

/// Shared, read-only view of an inventory.
pub struct Context<'a> {
    pub inv: &'a Inventory,
    pub clusters: Vec<ClusterView<'a>>,
    pub pips_by_id: HashMap<String, &'a PublicIp>,
    pub nics_by_id: HashMap<String, &'a Nic>,
    pub vms_by_id: HashMap<String, &'a Vm>,
    pub vmss_by_id: HashMap<String, &'a Vmss>,
    pub vmss_vms_by_id: HashMap<String, &'a VmssVm>,
    /// VMSS ids whose instances were listed.
    pub vmss_listed: BTreeSet<String>,
    /// Call statistics of the run that collected the inventory (live runs only).
    pub stats: Option<&'a crate::report::CallStats>,
    /// Services (as (cluster index, service index)) that ask for or hold an address, and that
    /// ask for a PIP name (lowercased): built once, read once per public IP.
    requests_by_ip: HashMap<String, BTreeSet<(usize, usize)>>,
    requests_by_pip_name: HashMap<String, BTreeSet<(usize, usize)>>,
    /// Private IPs of every listed NIC (IP-based pool members are checked against them).
    pub nic_private_ips: BTreeSet<String>,
}

pub fn key(id: &str) -> String {
    azaudit_world::id_key(id)
}

impl<'a> Context<'a> {
    pub fn new(inv: &'a Inventory) -> Context<'a> {
        let pips_by_id = inv.public_ips.iter().map(|p| (key(&p.id), p)).collect();
        let nics_by_id = inv.nics.iter().map(|n| (key(&n.id), n)).collect();
        let vms_by_id = inv.vms.iter().map(|v| (key(&v.id), v)).collect();
        let vmss_by_id = inv.vmss.iter().map(|v| (key(&v.id), v)).collect();
        let vmss_vms_by_id = inv.vmss_vms.iter().map(|v| (key(&v.id), v)).collect();
        let vmss_listed = inv.vmss_vms.iter().map(|v| key(&v.vmss_id)).collect();
        let clusters: Vec<ClusterView> = inv.clusters.iter().map(|c| cluster_view(inv, c)).collect();
        let mut requests_by_ip: HashMap<String, BTreeSet<(usize, usize)>> = HashMap::new();
        let mut requests_by_pip_name: HashMap<String, BTreeSet<(usize, usize)>> = HashMap::new();
        for (ci, cv) in clusters.iter().enumerate() {
            for (si, s) in cv.cluster.services.iter().enumerate() {
                let held = s
                    .is_load_balancer()
                    .then_some(&s.ingress_ips)
                    .into_iter()
                    .flatten();
                for ip in conventions::requested_ips(s)
                    .into_iter()
                    .chain(held.map(String::as_str))
                {
                    requests_by_ip.entry(ip.to_string()).or_default().insert((ci, si));
                }
                for n in conventions::requested_pip_names(s) {
                    requests_by_pip_name
                        .entry(n.to_ascii_lowercase())
                        .or_default()
                        .insert((ci, si));
                }
            }
        }
        let nic_private_ips = inv
            .nics
            .iter()
            .flat_map(|n| n.ip_configs.iter().filter_map(|c| c.private_ip.clone()))
            .collect();
        Context {
            inv,
            clusters,
            pips_by_id,
            nics_by_id,
            vms_by_id,
            vmss_by_id,
            vmss_vms_by_id,
            vmss_listed,
            stats: None,
            requests_by_ip,
            requests_by_pip_name,
            nic_private_ips,
        }
    }

    /// Adds the run's call statistics (for `arm-read-budget-low`).
    pub fn with_stats(mut self, stats: &'a crate::report::CallStats) -> Self {
        self.stats = Some(stats);
        self
    }

    /// `true` when every cluster's Service listing is complete (needed before concluding that
    /// no Service anywhere asks for something).
    pub fn all_services_complete(&self) -> bool {
        self.clusters.iter().all(|c| c.services_complete())
    }

    pub fn arm_complete(&self, subscription: &str, kind: ArmKind) -> bool {
        self.inv.arm_complete(subscription, kind)
    }

    /// Every Service (of any cluster) that asks for this PIP: by IP (`loadBalancerIP`, the
    /// ipv4/ipv6 annotations) or by name (`azure-pip-name(-ipv6)`), or that holds its IP as ingress.
    pub fn services_requesting_pip(&self, pip: &PublicIp) -> Vec<String> {
        let by_ip = pip
            .ip_address
            .as_deref()
            .and_then(|ip| self.requests_by_ip.get(ip));
        let by_name = self.requests_by_pip_name.get(&pip.name.to_ascii_lowercase());
        let hits: BTreeSet<(usize, usize)> = by_ip.into_iter().chain(by_name).flatten().copied().collect();
        hits.into_iter()
            .map(|(ci, si)| {
                let c = self.clusters[ci].cluster;
                format!("{}/{}", c.name, c.services[si].key())
            })
            .collect()
    }

    /// The subscription is one the audit listed (so absence from the inventory means absence).
    pub fn audited_subscription(&self, s: &str) -> bool {
        self.inv.subscriptions.iter().any(|x| x.eq_ignore_ascii_case(s))
    }
}

fn cluster_view<'a>(inv: &'a Inventory, c: &'a Cluster) -> ClusterView<'a> {
    let cloud_config: Option<Value> = c
        .cloud_config
        .as_ref()
        .and_then(|cc| serde_json::from_str(&cc.text).ok());
    let cfg = |k: &str| cloud_config.as_ref().and_then(|v| str_at(v, &[k]));
    let resource_group = c.resource_group.clone().map(|s| s.to_ascii_lowercase());
    let lb_resource_group = cfg("loadBalancerResourceGroup")
        .map(|s| s.to_ascii_lowercase())
        .or_else(|| resource_group.clone());
    let sub = c.subscription_id.as_deref();
    let same_sub = |s: &str| sub.is_none_or(|x| x.eq_ignore_ascii_case(s));
    // `loadBalancerName` replaces the cluster name as the LB name prefix.
    let lb_prefix = cfg("loadBalancerName").unwrap_or_else(|| c.cluster_name_tag.clone());
    let managed_lbs = match &lb_resource_group {
        Some(rg) => inv
            .load_balancers
            .iter()
            .filter(|lb| {
                same_sub(&lb.subscription)
                    && lb.resource_group.eq_ignore_ascii_case(rg)
                    && is_managed_lb_name(&lb.name, &lb_prefix)
            })
            .collect(),
        None => Vec::new(),
    };
    let lb_services: Vec<&Service> = c.services.iter().filter(|s| s.is_load_balancer()).collect();
    let lb_services_by_base = lb_services
        .iter()
        .filter_map(|s| s.meta.uid.as_deref().map(|u| (base_name(u), *s)))
        .collect();
    let mut pip_resource_groups: BTreeSet<String> = resource_group.iter().cloned().collect();
    for s in &c.services {
        if let Some(rg) = s.annotation(conventions::ANN_PIP_RG).filter(|r| !r.is_empty()) {
            pip_resource_groups.insert(rg.to_ascii_lowercase());
        }
    }
    let nsg_rg = cfg("securityGroupResourceGroup")
        .map(|s| s.to_ascii_lowercase())
        .or_else(|| resource_group.clone());
    let nsg_name = cfg("securityGroupName");
    let nsgs = match (&nsg_rg, &nsg_name) {
        (Some(rg), Some(name)) => inv
            .nsgs
            .iter()
            .filter(|n| {
                same_sub(&n.subscription)
                    && n.resource_group.eq_ignore_ascii_case(rg)
                    && n.name.eq_ignore_ascii_case(name)
            })
            .collect(),
        // Without a cloud config: the NSGs of the cluster group (AKS keeps its one NSG there).
        (Some(rg), None) => inv
            .nsgs
            .iter()
            .filter(|n| same_sub(&n.subscription) && n.resource_group.eq_ignore_ascii_case(rg))
            .collect(),
        _ => Vec::new(),
    };
    ClusterView {
        cluster: c,
        cloud_config,
        resource_group,
        lb_resource_group,
        managed_lbs,
        pip_resource_groups,
        nsgs,
        lb_services_by_base,
        lb_services,
    }
}
