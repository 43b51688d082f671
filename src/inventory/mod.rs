//! WHAT WE SAW: azaudit's own inventory types, plain data with no SDK types and no I/O.
//!
//! Both live collection (ARM pages, Kubernetes lists) and offline snapshots produce an
//! [`Inventory`] through the same conversion code ([`convert`]), so offline and live audits cannot
//! drift. What could not be collected is a [`Gap`]; checks never conclude from data they lack.

pub mod convert;
pub mod json;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Load balancer / public IP SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub enum Sku {
    Basic,
    Standard,
    Other(String),
    /// Absent from the response (old Basic resources and minimal examples omit it).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frontend {
    pub id: String,
    pub name: String,
    pub public_ip_id: Option<String>,
    pub public_ip_prefix_id: Option<String>,
    pub private_ip: Option<String>,
    pub subnet_id: Option<String>,
    /// Ids of rules / inbound NAT rules / outbound rules that reference this frontend.
    pub rule_ids: Vec<String>,
    pub outbound_rule_ids: Vec<String>,
    pub inbound_nat_rule_ids: Vec<String>,
}

/// One entry of a backend pool's `loadBalancerBackendAddresses`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolAddress {
    pub name: Option<String>,
    pub ip_address: Option<String>,
    /// `networkInterfaceIPConfiguration.id` (NIC-based pools echo members here).
    pub nic_ip_config_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendPool {
    pub id: String,
    pub name: String,
    /// `backendIPConfigurations[].id`: NIC or VMSS instance IP configurations.
    pub ip_config_ids: Vec<String>,
    pub addresses: Vec<PoolAddress>,
    pub virtual_network_id: Option<String>,
}

impl BackendPool {
    /// Members by IP configuration id (from both lists, deduplicated case-insensitively).
    pub fn member_ip_config_ids(&self) -> Vec<&str> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for id in self
            .ip_config_ids
            .iter()
            .chain(self.addresses.iter().filter_map(|a| a.nic_ip_config_id.as_ref()))
        {
            if seen.insert(id.to_ascii_lowercase()) {
                out.push(id.as_str());
            }
        }
        out
    }
    /// Members by IP address (IP-based pools).
    pub fn member_ips(&self) -> Vec<&str> {
        self.addresses
            .iter()
            .filter_map(|a| a.ip_address.as_deref())
            .collect()
    }
    pub fn is_empty(&self) -> bool {
        self.ip_config_ids.is_empty()
            && self
                .addresses
                .iter()
                .all(|a| a.ip_address.is_none() && a.nic_ip_config_id.is_none())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LbRule {
    pub id: String,
    pub name: String,
    pub frontend_id: Option<String>,
    pub backend_pool_ids: Vec<String>,
    pub probe_id: Option<String>,
    /// `Tcp`, `Udp`, `All`.
    pub protocol: String,
    pub frontend_port: Option<u32>,
    pub backend_port: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub port: Option<u32>,
    pub request_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadBalancer {
    pub id: String,
    pub name: String,
    pub subscription: String,
    pub resource_group: String,
    pub location: Option<String>,
    pub sku: Sku,
    pub etag: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub frontends: Vec<Frontend>,
    pub pools: Vec<BackendPool>,
    pub rules: Vec<LbRule>,
    pub probes: Vec<Probe>,
    pub inbound_nat_rule_count: usize,
    pub outbound_rule_count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicIp {
    pub id: String,
    pub name: String,
    pub subscription: String,
    pub resource_group: String,
    pub location: Option<String>,
    pub sku: Sku,
    pub etag: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub ip_address: Option<String>,
    /// `properties.ipConfiguration.id`: what the PIP is attached to (LB frontend, NIC, ...).
    pub ip_configuration_id: Option<String>,
    pub nat_gateway_id: Option<String>,
    pub prefix_id: Option<String>,
    pub dns_label: Option<String>,
    pub fqdn: Option<String>,
    /// `IPv4` / `IPv6`.
    pub version: Option<String>,
    pub allocation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecurityRule {
    pub id: String,
    pub name: String,
    pub priority: Option<u32>,
    /// `Inbound` / `Outbound`.
    pub direction: String,
    /// `Allow` / `Deny`.
    pub access: String,
    /// `Tcp`, `Udp`, `Icmp`, `Esp`, `Ah`, `*`.
    pub protocol: String,
    pub source_prefixes: Vec<String>,
    pub source_ports: Vec<String>,
    pub destination_prefixes: Vec<String>,
    pub destination_ports: Vec<String>,
    /// Rule comes from `defaultSecurityRules`.
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nsg {
    pub id: String,
    pub name: String,
    pub subscription: String,
    pub resource_group: String,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub rules: Vec<SecurityRule>,
    pub default_rules: Vec<SecurityRule>,
    pub subnet_ids: Vec<String>,
    pub nic_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NicIpConfig {
    pub id: String,
    pub name: String,
    pub private_ip: Option<String>,
    pub version: Option<String>,
    pub primary: bool,
    pub subnet_id: Option<String>,
    pub public_ip_id: Option<String>,
    pub backend_pool_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nic {
    pub id: String,
    pub name: String,
    pub subscription: String,
    pub resource_group: String,
    pub location: Option<String>,
    pub vm_id: Option<String>,
    pub nsg_id: Option<String>,
    pub primary: bool,
    pub ip_configs: Vec<NicIpConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vm {
    pub id: String,
    pub name: String,
    pub subscription: String,
    pub resource_group: String,
    pub location: Option<String>,
    pub computer_name: Option<String>,
    pub nic_ids: Vec<String>,
    pub availability_set_id: Option<String>,
    /// VMSS Flex membership.
    pub vmss_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vmss {
    pub id: String,
    pub name: String,
    pub subscription: String,
    pub resource_group: String,
    pub location: Option<String>,
    /// `Uniform` / `Flexible` (absent means Uniform).
    pub orchestration_mode: Option<String>,
    pub capacity: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmssVm {
    pub id: String,
    pub vmss_id: String,
    pub instance_id: String,
    pub name: String,
    pub computer_name: Option<String>,
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subnet {
    pub id: String,
    pub name: String,
    pub prefixes: Vec<String>,
    pub nsg_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vnet {
    pub id: String,
    pub name: String,
    pub subscription: String,
    pub resource_group: String,
    pub location: Option<String>,
    pub address_prefixes: Vec<String>,
    pub subnets: Vec<Subnet>,
}

/// One row of the network usages API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    pub id: String,
    pub subscription: String,
    pub location: String,
    pub name: String,
    pub localized_name: Option<String>,
    pub current: f64,
    pub limit: f64,
}

/// `metadata` of a Kubernetes object we keep.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Meta {
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub creation_timestamp: Option<String>,
    pub deletion_timestamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicePort {
    pub name: Option<String>,
    /// `TCP`, `UDP`, `SCTP`.
    pub protocol: String,
    pub port: u32,
    pub node_port: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub meta: Meta,
    /// `spec.type`.
    pub type_: String,
    pub ports: Vec<ServicePort>,
    pub cluster_ips: Vec<String>,
    pub ip_families: Vec<String>,
    pub external_traffic_policy: Option<String>,
    pub health_check_node_port: Option<u32>,
    /// Deprecated `spec.loadBalancerIP` (still read by the provider).
    pub load_balancer_ip: Option<String>,
    pub load_balancer_source_ranges: Vec<String>,
    pub ingress_ips: Vec<String>,
    pub ingress_hostnames: Vec<String>,
    pub load_balancer_class: Option<String>,
}

impl Service {
    pub fn is_load_balancer(&self) -> bool {
        self.type_ == "LoadBalancer"
    }
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            self.meta.namespace.as_deref().unwrap_or("default"),
            self.meta.name
        )
    }
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.meta.annotations.get(key).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub meta: Meta,
    pub provider_id: Option<String>,
    pub internal_ips: Vec<String>,
    pub taints: Vec<Taint>,
    pub ready: Option<bool>,
    pub unschedulable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointSlice {
    pub meta: Meta,
    /// `kubernetes.io/service-name` label.
    pub service_name: Option<String>,
    pub ready_endpoints: usize,
    pub total_endpoints: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pod {
    pub meta: Meta,
    pub phase: Option<String>,
    pub ready: bool,
    /// A waiting reason of some container, e.g. `CrashLoopBackOff`.
    pub waiting_reason: Option<String>,
    pub restarts: u64,
}

/// Kubernetes object kinds we list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum K8sKind {
    Services,
    Nodes,
    EndpointSlices,
    Pods,
    CloudConfigSecret,
}

impl K8sKind {
    pub fn as_str(self) -> &'static str {
        match self {
            K8sKind::Services => "services",
            K8sKind::Nodes => "nodes",
            K8sKind::EndpointSlices => "endpointslices",
            K8sKind::Pods => "pods",
            K8sKind::CloudConfigSecret => "secrets",
        }
    }
}

/// The cluster's cloud-provider config as found (raw JSON text kept for the config rule).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloudConfigSource {
    /// `file://<path>` or `k8s://<cluster>/kube-system/secrets/azure-cloud-provider`.
    pub reference: String,
    pub text: String,
    /// Unix mode bits of the file, when read from a file.
    pub file_mode: Option<u32>,
}

/// One Kubernetes cluster and how it maps to Azure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// Context / folder name.
    pub name: String,
    /// The cloud provider's `--cluster-name`: value of the `k8s-azure-cluster-name` tag, LB and pool name.
    pub cluster_name_tag: String,
    pub subscription_id: Option<String>,
    /// The cloud config's `resourceGroup` (node / cluster resource group).
    pub resource_group: Option<String>,
    pub cloud_config: Option<CloudConfigSource>,
    pub services: Vec<Service>,
    pub nodes: Vec<Node>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub pods: Vec<Pod>,
    /// Kinds whose listing is incomplete (a gap exists for them).
    pub incomplete: Vec<K8sKind>,
}

impl Cluster {
    pub fn is_complete(&self, kind: K8sKind) -> bool {
        !self.incomplete.contains(&kind)
    }
}

/// ARM resource kinds we list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ArmKind {
    LoadBalancers,
    PublicIpAddresses,
    NetworkSecurityGroups,
    NetworkInterfaces,
    VirtualMachines,
    VirtualMachineScaleSets,
    VmssVirtualMachines,
    VirtualNetworks,
    Usages,
    ResourceGroups,
}

impl ArmKind {
    pub const LISTED: [ArmKind; 7] = [
        ArmKind::LoadBalancers,
        ArmKind::PublicIpAddresses,
        ArmKind::NetworkSecurityGroups,
        ArmKind::NetworkInterfaces,
        ArmKind::VirtualMachines,
        ArmKind::VirtualMachineScaleSets,
        ArmKind::VirtualNetworks,
    ];

    /// The ARM resource type.
    pub fn arm_type(self) -> &'static str {
        match self {
            ArmKind::LoadBalancers => "Microsoft.Network/loadBalancers",
            ArmKind::PublicIpAddresses => "Microsoft.Network/publicIPAddresses",
            ArmKind::NetworkSecurityGroups => "Microsoft.Network/networkSecurityGroups",
            ArmKind::NetworkInterfaces => "Microsoft.Network/networkInterfaces",
            ArmKind::VirtualMachines => "Microsoft.Compute/virtualMachines",
            ArmKind::VirtualMachineScaleSets => "Microsoft.Compute/virtualMachineScaleSets",
            ArmKind::VmssVirtualMachines => "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
            ArmKind::VirtualNetworks => "Microsoft.Network/virtualNetworks",
            ArmKind::Usages => azaudit_world::USAGE_TYPE,
            ArmKind::ResourceGroups => "Microsoft.Resources/resourceGroups",
        }
    }

    pub fn from_arm_type(t: &str) -> Option<ArmKind> {
        // VMSS instance NICs (served by the Network RP under the scale set, api-version
        // 2018-10-01) come without `type` in real lists (spec example VmssNetworkInterfaceList.json),
        // so a world loader derives it from the id: they are network interfaces all the same.
        if t.eq_ignore_ascii_case(VMSS_NIC_DERIVED_TYPE) {
            return Some(ArmKind::NetworkInterfaces);
        }
        [
            ArmKind::LoadBalancers,
            ArmKind::PublicIpAddresses,
            ArmKind::NetworkSecurityGroups,
            ArmKind::NetworkInterfaces,
            ArmKind::VirtualMachines,
            ArmKind::VirtualMachineScaleSets,
            ArmKind::VmssVirtualMachines,
            ArmKind::VirtualNetworks,
            ArmKind::Usages,
            ArmKind::ResourceGroups,
        ]
        .into_iter()
        .find(|k| k.arm_type().eq_ignore_ascii_case(t))
    }
}

/// The type derived from a VMSS instance NIC's id (`.../virtualMachineScaleSets/<s>/virtualMachines/<i>/networkInterfaces/<n>`).
pub const VMSS_NIC_DERIVED_TYPE: &str =
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces";

/// Where a gap is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum GapScope {
    /// An ARM list in a subscription (optionally narrowed to a resource group / parent / location).
    Arm {
        subscription: String,
        kind: ArmKind,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A Kubernetes list in a cluster.
    Kubernetes { cluster: String, kind: K8sKind },
    /// Something else (a snapshot file that could not be read, ...).
    Other { what: String },
}

/// Something the audit could not see, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Gap {
    #[serde(flatten)]
    pub scope: GapScope,
    pub cause: String,
}

/// Everything collected for one audit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Inventory {
    pub subscriptions: Vec<String>,
    pub load_balancers: Vec<LoadBalancer>,
    pub public_ips: Vec<PublicIp>,
    pub nsgs: Vec<Nsg>,
    pub nics: Vec<Nic>,
    pub vms: Vec<Vm>,
    pub vmss: Vec<Vmss>,
    pub vmss_vms: Vec<VmssVm>,
    pub vnets: Vec<Vnet>,
    pub usages: Vec<Usage>,
    pub clusters: Vec<Cluster>,
    pub gaps: Vec<Gap>,
    /// Per-resource conversion notes (skipped items, unknown values), for `inventory` output.
    pub notes: Vec<String>,
}

impl Inventory {
    pub fn is_complete(&self) -> bool {
        self.gaps.is_empty()
    }

    /// `true` when this ARM kind was fully listed in this subscription.
    pub fn arm_complete(&self, subscription: &str, kind: ArmKind) -> bool {
        !self.gaps.iter().any(|g| match &g.scope {
            GapScope::Arm {
                subscription: s,
                kind: k,
                ..
            } => *k == kind && s.eq_ignore_ascii_case(subscription),
            _ => false,
        })
    }

    /// Sorts every list by id so that output is deterministic whatever order pages arrived in.
    pub fn sort(&mut self) {
        fn by_id<T>(v: &mut [T], f: impl Fn(&T) -> &str) {
            v.sort_by_key(|x| f(x).to_ascii_lowercase());
        }
        by_id(&mut self.load_balancers, |x| &x.id);
        by_id(&mut self.public_ips, |x| &x.id);
        by_id(&mut self.nsgs, |x| &x.id);
        by_id(&mut self.nics, |x| &x.id);
        by_id(&mut self.vms, |x| &x.id);
        by_id(&mut self.vmss, |x| &x.id);
        by_id(&mut self.vmss_vms, |x| &x.id);
        by_id(&mut self.vnets, |x| &x.id);
        by_id(&mut self.usages, |x| &x.id);
        self.clusters.sort_by(|a, b| a.name.cmp(&b.name));
        for c in &mut self.clusters {
            c.services.sort_by_key(|s| s.key());
            c.nodes.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
            c.pods
                .sort_by(|a, b| (&a.meta.namespace, &a.meta.name).cmp(&(&b.meta.namespace, &b.meta.name)));
            c.endpoint_slices
                .sort_by(|a, b| (&a.meta.namespace, &a.meta.name).cmp(&(&b.meta.namespace, &b.meta.name)));
        }
        self.gaps.sort();
        self.subscriptions.sort_by_key(|s| s.to_ascii_lowercase());
        self.subscriptions.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    }
}
