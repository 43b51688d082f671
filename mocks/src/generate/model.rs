//! The generator's plan of a world: clusters, nodes, Services, the leftovers of deleted Services
//! and every planted defect, before any JSON is written.
//!
//! Planting happens here, on this plan, so that each object carries at most one defect and the
//! renderer can derive every finding from the flags it sees. This module draws all random
//! numbers in a fixed order (same seed, same plan) and never touches the file system.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::names::{base_name, uuid};
use super::{Options, Truth};

/// How a cluster is built (domain.md §1.2, §3.3, §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// AKS: VMSS Uniform pools, node RG `MC_<rg>_<name>_<location>`, cluster name `kubernetes`.
    Aks,
    /// Self-managed on availability-set VMs with standalone NICs, NIC-based pools.
    SelfManaged,
    /// Self-managed with `loadBalancerBackendPoolConfigurationType: nodeIP` (pools by IP).
    SelfManagedIpPools,
}

/// Which managed backend pool: on the external or the `-internal` LB, IPv4 or `-IPv6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PoolKey {
    pub internal: bool,
    pub ipv6: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolDefect {
    Empty,
    /// Members of instances/NICs/IPs that no longer exist.
    Stale,
}

#[derive(Debug, Clone)]
pub struct Port {
    pub name: String,
    /// `TCP` or `UDP` (the Kubernetes spelling).
    pub proto: &'static str,
    pub port: u16,
    pub node_port: u16,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Vmss {
        vmss: String,
        pool: String,
        instance: u32,
    },
    Vm,
    /// virtual-kubelet; `proper` = excluded by label and `managed=false`.
    Virtual {
        proper: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub uid: String,
    pub kind: NodeKind,
    pub control_plane: bool,
    pub excluded: bool,
    pub ip4: String,
    pub ip6: Option<String>,
    pub zone: u8,
    /// `spec.providerID` is set.
    pub registered: bool,
    /// Its VM / VMSS instance exists in ARM.
    pub instance_exists: bool,
    pub missing_from: Vec<PoolKey>,
    /// Carries a planted defect or is a look-alike: no other plant may touch it.
    pub assigned: bool,
    pub days: u32,
}

impl Node {
    pub fn is_virtual(&self) -> bool {
        matches!(self.kind, NodeKind::Virtual { .. })
    }
    /// The catalogue's eligible node: not excluded, not control plane (Standard SKU), not virtual
    /// (virtual nodes are either excluded or planted as `virtual-node-not-excluded`).
    pub fn eligible(&self) -> bool {
        !self.excluded && !self.control_plane && !self.is_virtual()
    }
    /// Whether the provider would have put it in pool `k` (and so whether a pool lists it).
    pub fn in_pool(&self, k: PoolKey) -> bool {
        self.eligible()
            && self.registered
            && self.instance_exists
            && (!k.ipv6 || self.ip6.is_some())
            && !self.missing_from.contains(&k)
    }
}

/// Where an external Service's public IP comes from (domain.md §1.8, §2.3).
#[derive(Debug, Clone)]
pub enum PipKind {
    /// Created by the provider: `<clusterName>-<base>` in `rg`, tagged.
    Generated { rg: String },
    /// `azure-pip-name`: user-created, untagged, in the cluster RG.
    ByoName(String),
    /// `spec.loadBalancerIP`: user-created, untagged, found by its IP.
    ByoIp(String),
    /// Pins the IP of Service `primary` (same cluster): shares that frontend.
    Pinned { primary: usize },
}

#[derive(Debug, Clone)]
pub enum Pending {
    /// Requested IP (`azure-load-balancer-ipv4`) exists nowhere.
    MissingIp(String),
    /// The PIP was created (tagged) but no frontend was.
    PipNoFrontend,
    /// `azure-pip-name` names a PIP that lives in another resource group.
    MismatchName { pip: String, rg: String },
    /// `spec.loadBalancerIP` is the IP of a PIP in another resource group.
    MismatchIp { pip: String, rg: String, ip: String },
}

#[derive(Debug, Clone)]
pub enum SvcDefect {
    NoReadyEndpoints {
        empty_slice: bool,
    },
    NsgBlock {
        deny_rule: bool,
    },
    ProbeMissing,
    ProbeWrongPort(u16),
    /// A rule and probe remain for a port the Service no longer exposes.
    StalePort(Port),
    /// Owner (`true`) or loser of a DNS label wanted by two Services.
    DnsConflict {
        owner: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Svc {
    pub ns: String,
    pub name: String,
    pub uid: String,
    pub base: String,
    pub internal: bool,
    pub subnet: Option<String>,
    pub ports: Vec<Port>,
    pub local_hcnp: Option<u16>,
    pub dual: bool,
    pub ip4: String,
    pub ip6: Option<String>,
    /// External Services only.
    pub pip: Option<PipKind>,
    pub dns_label: Option<String>,
    /// An older Service: legacy tag keys on its PIP and legacy per-Service NSG rules.
    pub legacy_tags: bool,
    /// Other `ns/name`s on this Service's PIP tag (Services pinning its IP, deleted ones).
    pub tag_extra: Vec<String>,
    pub pending: Option<Pending>,
    pub defect: Option<SvcDefect>,
    /// A look-alike or special Service: never given a defect.
    pub protected: bool,
    pub assigned: bool,
    pub days: u32,
}

impl Svc {
    pub fn key(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }
    pub fn has_frontend(&self) -> bool {
        self.pending.is_none()
    }
    fn plain_external(&self) -> bool {
        !self.internal
            && !self.protected
            && !self.assigned
            && !self.dual
            && matches!(self.pip, Some(PipKind::Generated { .. }))
    }
    fn plain(&self) -> bool {
        !self.protected && !self.assigned && !self.dual && (self.internal || self.plain_external())
    }
}

#[derive(Debug, Clone)]
pub enum GhostPip {
    /// Tagged with the deleted Service; `attached` = still on the ghost's frontend.
    Tagged { attached: bool, legacy: bool },
    /// A user-created PIP still on the ghost's frontend.
    Byo(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GhostNsg {
    Consolidated,
    Legacy,
}

/// What a deleted Service left behind.
#[derive(Debug, Clone)]
pub struct Ghost {
    pub ns: String,
    pub name: String,
    pub uid: String,
    pub base: String,
    pub internal: bool,
    pub subnet: Option<String>,
    pub ports: Vec<Port>,
    pub ip4: String,
    pub pip: Option<GhostPip>,
    pub fip: bool,
    pub nsg: Option<GhostNsg>,
    /// A deleted secondary Service: its rules and probes on the frontend of this live Service.
    pub on_primary: Option<usize>,
    /// The Service still exists, but as ClusterIP.
    pub now_cluster_ip: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LooseKind {
    /// Planted `unattached-public-ip`.
    Unattached,
    NatGateway,
    Prefix,
    /// Belongs to a cluster outside the world that shares this RG (tagged with its name).
    OtherCluster {
        cluster: String,
        service: String,
    },
}

/// A public IP not made for one of this cluster's Services.
#[derive(Debug, Clone)]
pub struct LoosePip {
    pub name: String,
    pub ip: String,
    pub kind: LooseKind,
}

/// A VM with a Basic SKU public IP in the cluster's resource group (planted `basic-sku-retired`).
#[derive(Debug, Clone)]
pub struct Jumpbox {
    pub name: String,
    pub ip4: String,
    pub pip_ip: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigDefect {
    ManagedIdentityWithSecret,
    RateLimitOff,
    InstanceMetadataOff,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub idx: usize,
    pub name: String,
    pub cluster_name: String,
    pub flavor: Flavor,
    pub sub: String,
    pub location: String,
    pub rg: String,
    /// AKS: the resource group of the managed cluster resource.
    pub user_rg: Option<String>,
    /// RG named by `azure-load-balancer-resource-group` on one Service.
    pub pip_rg: String,
    /// Another RG of the same team, where mismatched PIPs live.
    pub shared_rg: String,
    pub digits: String,
    pub vnet: String,
    pub subnet: String,
    pub ilb_subnet: String,
    pub nsg: String,
    /// Second octet of the cluster's 10.x.0.0/16.
    pub net: u8,
    pub dual_stack: bool,
    /// Another AKS cluster of the same subscription also calls itself `kubernetes`.
    pub twin: bool,
    pub client_id: String,
    pub nodes: Vec<Node>,
    pub services: Vec<Svc>,
    pub ghosts: Vec<Ghost>,
    pub loose_pips: Vec<LoosePip>,
    pub jumpboxes: Vec<Jumpbox>,
    pub pool_defects: BTreeMap<PoolKey, PoolDefect>,
    pub config_defect: Option<ConfigDefect>,
    pub bad_tunnel_pods: BTreeSet<usize>,
    /// Lookalike: another cluster's LB `<other>` in this RG, with this frontend name and IP.
    pub foreign_lb: Option<(String, String, String)>,
}

impl Cluster {
    pub fn is_aks(&self) -> bool {
        self.flavor == Flavor::Aks
    }
    pub fn has_internal_lb(&self) -> bool {
        self.services.iter().any(|s| s.internal && s.has_frontend())
            || self.ghosts.iter().any(|g| g.internal && g.fip)
    }
    /// The managed pools this cluster has.
    pub fn pools(&self) -> Vec<PoolKey> {
        let mut v = vec![PoolKey {
            internal: false,
            ipv6: false,
        }];
        if self.dual_stack {
            v.push(PoolKey {
                internal: false,
                ipv6: true,
            });
        }
        if self.has_internal_lb() {
            v.push(PoolKey {
                internal: true,
                ipv6: false,
            });
        }
        v
    }
    pub fn lb_name(&self, internal: bool) -> String {
        if internal {
            format!("{}-internal", self.cluster_name)
        } else {
            self.cluster_name.clone()
        }
    }
    pub fn pool_name(&self, k: PoolKey) -> String {
        if k.ipv6 {
            format!("{}-IPv6", self.cluster_name)
        } else {
            self.cluster_name.clone()
        }
    }
}

/// Allocates addresses that never repeat within a world.
pub struct Ips {
    next_public: u32,
    used_private: BTreeSet<String>,
    next_v6: u32,
}

impl Ips {
    pub fn new() -> Ips {
        // 20.50.0.10 upwards: Microsoft-owned space, as real AKS frontends are.
        Ips {
            next_public: u32::from_be_bytes([20, 50, 0, 10]),
            used_private: BTreeSet::new(),
            next_v6: 16,
        }
    }
    pub fn public(&mut self, rng: &mut ChaCha8Rng) -> String {
        self.next_public += rng.gen_range(1..40);
        let [a, b, c, d] = self.next_public.to_be_bytes();
        if d == 0 || d == 255 {
            return self.public(rng);
        }
        format!("{a}.{b}.{c}.{d}")
    }
    pub fn public_v6(&mut self, cluster_net: u8) -> String {
        self.next_v6 += 1;
        format!("2603:1030:805:{cluster_net:x}::{:x}", self.next_v6)
    }
    /// A private address in `10.<net>.<third range>.x` not handed out before.
    pub fn private(&mut self, rng: &mut ChaCha8Rng, net: u8, third: std::ops::Range<u8>) -> String {
        loop {
            let ip = format!(
                "10.{net}.{}.{}",
                rng.gen_range(third.clone()),
                rng.gen_range(4..255)
            );
            if self.used_private.insert(ip.clone()) {
                return ip;
            }
        }
    }
}

/// Randomised rounding: `x = 2.3` plants 2 or 3 (3 with probability 0.3), so rates hold on average
/// even where a cluster has few candidates.
pub fn planned(rng: &mut ChaCha8Rng, rate: f64, candidates: usize) -> usize {
    let x = rate.clamp(0.0, 1.0) * candidates as f64;
    let n = x.floor() as usize + usize::from(rng.r#gen::<f64>() < x.fract());
    n.min(candidates)
}

fn choose(rng: &mut ChaCha8Rng, mut pool: Vec<usize>, n: usize) -> Vec<usize> {
    pool.shuffle(rng);
    pool.truncate(n);
    pool
}

const NAMESPACES: &[&str] = &[
    "default",
    "web",
    "api",
    "payments",
    "ingress-nginx",
    "monitoring",
    "shop",
    "auth",
    "data",
    "search",
];
const APPS: &[&str] = &[
    "frontend",
    "gateway",
    "checkout",
    "grafana",
    "orders",
    "catalog",
    "cart",
    "login",
    "kafka",
    "redis",
    "postgres",
    "mqtt",
    "search-api",
    "billing",
    "inventory",
    "notifications",
    "media",
    "reports",
    "admin",
    "graphql",
    "websocket",
    "ledger",
    "profile",
    "recommendations",
];
const PORT_SETS: &[&[(&str, u16)]] = &[
    &[("http", 80)],
    &[("https", 443)],
    &[("http", 80), ("https", 443)],
    &[("http", 8080)],
    &[("postgres", 5432)],
    &[("redis", 6379)],
    &[("kafka", 9093)],
    &[("mqtt", 1883), ("mqtts", 8883)],
    &[("grpc", 50051)],
];
const LOCATIONS: &[&str] = &[
    "westeurope",
    "eastus",
    "northeurope",
    "eastus2",
    "westus2",
    "uksouth",
    "centralus",
    "southeastasia",
];
const ENVS: &[&str] = &["prod", "staging", "dev", "qa", "perf", "sandbox"];
const DIRS: &[&str] = &["east", "west", "north", "south", "central"];

/// Services, nodes and per-cluster counters shared while one cluster is planned.
struct Ctx<'a> {
    rng: &'a mut ChaCha8Rng,
    ips: &'a mut Ips,
    node_ports: Vec<u16>,
    next_node_port: usize,
    names: BTreeSet<String>,
}

impl Ctx<'_> {
    fn node_port(&mut self) -> u16 {
        // 30000-32767 is the default NodePort range; once exhausted, ports repeat (only
        // lb-health-probe-mismatch looks at them, per Service).
        let p = self.node_ports[self.next_node_port % self.node_ports.len()];
        self.next_node_port += 1;
        p
    }
    fn unique_name(&mut self, ns: &str, app: &str) -> String {
        let mut name = app.to_string();
        let mut k = 2;
        while !self.names.insert(format!("{ns}/{name}")) {
            name = format!("{app}-{k}");
            k += 1;
        }
        name
    }
    fn ports(&mut self, set: &[(&str, u16)], proto: &'static str) -> Vec<Port> {
        set.iter()
            .map(|(n, p)| Port {
                name: n.to_string(),
                proto,
                port: *p,
                node_port: self.node_port(),
            })
            .collect()
    }
}

/// Plans every cluster, with its defects. `truth` receives planted counts and candidates.
pub fn plan(opts: &Options, rng: &mut ChaCha8Rng, subs: &[String], truth: &mut Truth) -> Vec<Cluster> {
    let mut ips = Ips::new();
    let mut clusters: Vec<Cluster> = Vec::new();
    let n = opts.clusters;
    let mut used_names = BTreeSet::new();
    for i in 0..n {
        let flavor = if i % 2 == 0 {
            Flavor::Aks
        } else if i % 4 == 3 {
            Flavor::SelfManagedIpPools
        } else {
            Flavor::SelfManaged
        };
        // The second AKS cluster joins the first one's subscription, so two clusters named
        // `kubernetes` share it and only the resource group tells their PIPs apart.
        let sub_idx = if i == 2 { 0 } else { i % subs.len() };
        let location = LOCATIONS[rng.gen_range(0..LOCATIONS.len())].to_string();
        let env = ENVS[(i / 2) % ENVS.len()];
        let mut name = match flavor {
            Flavor::Aks => format!("aks-{env}-{}", short_location(&location)),
            _ => format!("{env}-{}", DIRS[(i / 2) % DIRS.len()]),
        };
        if !used_names.insert(name.clone()) {
            name = format!("{name}-{i}");
            used_names.insert(name.clone());
        }
        let digits = format!("{:08}", rng.gen_range(10_000_000u32..99_999_999));
        let net = 200u8.wrapping_add(i as u8);
        let sub = subs[sub_idx].clone();
        let c = match flavor {
            Flavor::Aks => Cluster {
                cluster_name: "kubernetes".into(),
                rg: format!("MC_rg-{name}_{name}_{location}"),
                user_rg: Some(format!("rg-{name}")),
                vnet: format!("aks-vnet-{digits}"),
                subnet: "aks-subnet".into(),
                nsg: format!("aks-agentpool-{digits}-nsg"),
                dual_stack: i == 0,
                ..blank_cluster(i, &name, flavor, &sub, &location, &digits, net)
            },
            _ => Cluster {
                cluster_name: name.clone(),
                rg: format!("rg-k8s-{name}"),
                user_rg: None,
                vnet: format!("{name}-vnet"),
                subnet: format!("{name}-node-subnet"),
                nsg: format!("{name}-node-nsg"),
                dual_stack: false,
                ..blank_cluster(i, &name, flavor, &sub, &location, &digits, net)
            },
        };
        clusters.push(c);
    }
    // Twins: AKS clusters sharing a subscription (all are named `kubernetes`).
    for i in 0..clusters.len() {
        let twin = clusters
            .iter()
            .any(|o| o.idx != i && o.is_aks() && clusters[i].is_aks() && o.sub == clusters[i].sub);
        clusters[i].twin = twin;
    }
    let per_services = split(opts.services, n);
    let per_nodes = split(opts.nodes, n);
    let mut earlier_names: Vec<(String, String)> = Vec::new();
    for (i, c) in clusters.iter_mut().enumerate() {
        let mut node_ports: Vec<u16> = (30000..=32767).collect();
        node_ports.shuffle(rng);
        let mut ctx = Ctx {
            rng,
            ips: &mut ips,
            node_ports,
            next_node_port: 0,
            names: BTreeSet::new(),
        };
        c.client_id = uuid(ctx.rng);
        build_nodes(c, &mut ctx, per_nodes[i]);
        build_services(c, &mut ctx, per_services[i]);
        plant_services(c, &mut ctx, opts, truth);
        plant_ghosts(c, &mut ctx, opts, truth, &earlier_names);
        plant_nodes(c, &mut ctx, opts, truth);
        plant_misc(c, &mut ctx, opts, truth);
        if c.is_aks() {
            earlier_names.extend(c.services.iter().map(|s| (s.ns.clone(), s.name.clone())));
        }
    }
    clusters
}

fn blank_cluster(
    i: usize,
    name: &str,
    flavor: Flavor,
    sub: &str,
    loc: &str,
    digits: &str,
    net: u8,
) -> Cluster {
    Cluster {
        idx: i,
        name: name.to_string(),
        cluster_name: String::new(),
        flavor,
        sub: sub.to_string(),
        location: loc.to_string(),
        rg: String::new(),
        user_rg: None,
        pip_rg: format!("rg-{name}-ingress"),
        shared_rg: format!("rg-{name}-shared"),
        digits: digits.to_string(),
        vnet: String::new(),
        subnet: String::new(),
        ilb_subnet: "ilb-subnet".into(),
        nsg: String::new(),
        net,
        dual_stack: false,
        twin: false,
        client_id: String::new(),
        nodes: Vec::new(),
        services: Vec::new(),
        ghosts: Vec::new(),
        loose_pips: Vec::new(),
        jumpboxes: Vec::new(),
        pool_defects: BTreeMap::new(),
        config_defect: None,
        bad_tunnel_pods: BTreeSet::new(),
        foreign_lb: None,
    }
}

fn short_location(l: &str) -> String {
    match l {
        "westeurope" => "weu".into(),
        "northeurope" => "neu".into(),
        "eastus" => "eus".into(),
        "eastus2" => "eus2".into(),
        "westus2" => "wus2".into(),
        "uksouth" => "uks".into(),
        "centralus" => "cus".into(),
        _ => "sea".into(),
    }
}

fn split(total: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

fn build_nodes(c: &mut Cluster, ctx: &mut Ctx, want: usize) {
    // Every cluster keeps at least 3 agent nodes so that node plants never empty a pool.
    let workers = want.max(4);
    let net = c.net;
    let dual = c.dual_stack;
    let add = |ctx: &mut Ctx, name: String, kind: NodeKind, cp: bool, idx: usize| {
        let ip4 = ctx.ips.private(ctx.rng, net, 0..64);
        Node {
            name,
            uid: uuid(ctx.rng),
            kind,
            control_plane: cp,
            excluded: false,
            ip4,
            ip6: dual.then(|| format!("fd00:{net:x}::{:x}", idx + 4)),
            zone: (idx % 3) as u8 + 1,
            registered: true,
            instance_exists: true,
            missing_from: Vec::new(),
            assigned: false,
            days: ctx.rng.gen_range(3..400),
        }
    };
    match c.flavor {
        Flavor::Aks => {
            let system = 3.min(workers / 2).max(1);
            for (pool, count, offset) in [("nodepool1", system, 0), ("userpool", workers - system, system)] {
                let vmss = format!("aks-{pool}-{}-vmss", c.digits);
                for k in 0..count {
                    // computerName = prefix + 6 base-36 digits of the instance id; node name = lower().
                    let name = format!("{vmss}{}", base36_6(k as u32));
                    let kind = NodeKind::Vmss {
                        vmss: vmss.clone(),
                        pool: pool.into(),
                        instance: k as u32,
                    };
                    let n = add(ctx, name, kind, false, offset + k);
                    c.nodes.push(n);
                }
            }
        }
        _ => {
            let cps = if workers >= 30 { 3 } else { 1 };
            for k in 0..cps {
                let n = add(
                    ctx,
                    format!("{}-control-plane-{k}", c.name),
                    NodeKind::Vm,
                    true,
                    k,
                );
                c.nodes.push(n);
            }
            for k in 0..workers {
                let n = add(
                    ctx,
                    format!("{}-worker-{k}", c.name),
                    NodeKind::Vm,
                    false,
                    cps + k,
                );
                c.nodes.push(n);
            }
        }
    }
    // Look-alike: one agent excluded from load balancers (absent from pools, not a finding).
    if workers >= 5 {
        let n = c
            .nodes
            .iter_mut()
            .rev()
            .find(|n| !n.control_plane)
            .expect("workers exist");
        n.excluded = true;
        n.assigned = true;
    }
    // Look-alike: a properly excluded ACI virtual node on AKS.
    if c.is_aks() {
        let ip4 = ctx.ips.private(ctx.rng, net, 192..200);
        c.nodes.push(Node {
            name: "virtual-node-aci-linux".into(),
            uid: uuid(ctx.rng),
            kind: NodeKind::Virtual { proper: true },
            control_plane: false,
            excluded: true,
            ip4,
            ip6: None,
            zone: 0,
            registered: false,
            instance_exists: false,
            missing_from: Vec::new(),
            assigned: true,
            days: ctx.rng.gen_range(3..400),
        });
    }
}

pub fn base36_6(mut v: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for i in (0..6).rev() {
        out[i] = digits[(v % 36) as usize];
        v /= 36;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Special {
    ByoName,
    SharedPrimary,
    SharedSecondary,
    ByoIp,
    AnnotationRg,
    LegacyTags,
    DnsLabel,
    DualStack,
    Local,
    InternalSubnet,
    Udp,
}

fn build_services(c: &mut Cluster, ctx: &mut Ctx, want: usize) {
    let mut specials = vec![
        Special::ByoName,
        Special::SharedPrimary,
        Special::SharedSecondary,
        Special::ByoIp,
        Special::AnnotationRg,
        Special::LegacyTags,
        Special::DnsLabel,
    ];
    if c.dual_stack {
        specials.push(Special::DualStack);
    }
    specials.extend([Special::Local, Special::InternalSubnet, Special::Udp]);
    for k in 0..want {
        let special = specials.get(k).copied();
        if special == Some(Special::SharedSecondary) && c.services.last().is_none() {
            continue;
        }
        let ns = NAMESPACES[ctx.rng.gen_range(0..NAMESPACES.len())].to_string();
        let app = APPS[ctx.rng.gen_range(0..APPS.len())];
        let name = ctx.unique_name(&ns, app);
        let uid = uuid(ctx.rng);
        let base = base_name(&uid);
        let roll: f64 = ctx.rng.r#gen();
        let internal = match special {
            Some(Special::InternalSubnet) => true,
            Some(_) => false,
            None => roll < 0.23,
        };
        let set = PORT_SETS[ctx.rng.gen_range(0..PORT_SETS.len())];
        let mut ports = if special == Some(Special::Udp) {
            ctx.ports(&[("dns", 53)], "UDP")
        } else {
            ctx.ports(set, "TCP")
        };
        if special == Some(Special::SharedSecondary) {
            // A second Service on the same IP must use other ports.
            ports = ctx.ports(&[("admin", 8443)], "TCP");
        }
        let local = match special {
            Some(Special::Local) => true,
            None => !internal && roll > 0.88,
            _ => false,
        };
        let local_hcnp = local.then(|| ctx.node_port());
        let subnet = match special {
            Some(Special::InternalSubnet) => Some(c.ilb_subnet.clone()),
            None if internal && ctx.rng.gen_bool(0.3) => Some(c.ilb_subnet.clone()),
            _ => None,
        };
        let ip4 = if internal {
            let third = if subnet.is_some() { 240..248 } else { 96..120 };
            ctx.ips.private(ctx.rng, c.net, third)
        } else {
            ctx.ips.public(ctx.rng)
        };
        let dual = special == Some(Special::DualStack);
        let ip6 = dual.then(|| ctx.ips.public_v6(c.net));
        let pip = if internal {
            None
        } else {
            Some(match special {
                Some(Special::ByoName) => PipKind::ByoName(format!("{}-ingress-pip", c.name)),
                Some(Special::ByoIp) => PipKind::ByoIp(format!("pip-{}-static", name)),
                Some(Special::SharedSecondary) => PipKind::Pinned {
                    primary: c.services.len() - 1,
                },
                Some(Special::AnnotationRg) => PipKind::Generated { rg: c.pip_rg.clone() },
                _ => PipKind::Generated { rg: c.rg.clone() },
            })
        };
        // DNS labels are unique per region across Azure: ns, name and cluster keep them distinct.
        let dns_label = (special == Some(Special::DnsLabel)
            || (special.is_none() && !internal && roll < 0.3))
            .then(|| format!("{ns}-{name}-{}", c.name));
        let mut s = Svc {
            ns,
            name,
            uid,
            base,
            internal,
            subnet,
            ports,
            local_hcnp,
            dual,
            ip4,
            ip6,
            pip,
            dns_label,
            legacy_tags: special == Some(Special::LegacyTags),
            tag_extra: Vec::new(),
            pending: None,
            defect: None,
            protected: special.is_some(),
            assigned: special.is_some(),
            days: ctx.rng.gen_range(1..900),
        };
        if let Some(PipKind::Pinned { primary }) = s.pip {
            let p = &mut c.services[primary];
            s.ip4 = p.ip4.clone();
            p.tag_extra.push(s.key());
        }
        c.services.push(s);
    }
}

/// Services still free for a plant, by predicate.
fn free(c: &Cluster, f: impl Fn(&Svc) -> bool) -> Vec<usize> {
    (0..c.services.len()).filter(|&i| f(&c.services[i])).collect()
}

/// The Service rules, in planting order, with the Services each may use.
const SERVICE_RULES: &[(&str, bool)] = &[
    // (rule, external Services only)
    ("service-pending-load-balancer", true),
    ("service-pip-resource-group-mismatch", true),
    ("service-without-ready-endpoints", false),
    ("nsg-blocks-service-port", true),
    ("lb-health-probe-mismatch", false),
    ("orphaned-lb-rule", false),
    ("dns-label-conflict", true),
];

fn plant_services(c: &mut Cluster, ctx: &mut Ctx, opts: &Options, truth: &mut Truth) {
    let n_lb = c.services.len();
    let n_ext = c.services.iter().filter(|s| !s.internal).count();
    // How many of each; a Service carries one defect at most, so when plain Services run short
    // the rules take turns (one plant each per round) instead of the first ones taking all.
    let mut want: Vec<usize> = SERVICE_RULES
        .iter()
        .map(|&(rule, external)| {
            // A DNS conflict takes a pair of Services.
            let n = match (rule, external) {
                ("dns-label-conflict", _) => n_ext / 2,
                (_, true) => n_ext,
                (_, false) => n_lb,
            };
            truth.candidates(rule, n);
            planned(ctx.rng, opts.rate(rule), n)
        })
        .collect();
    let mut done = vec![0usize; SERVICE_RULES.len()];
    while want.iter().any(|&w| w > 0) {
        for (r, &(rule, external)) in SERVICE_RULES.iter().enumerate() {
            if want[r] == 0 {
                continue;
            }
            want[r] -= 1;
            let needs_tcp = rule == "lb-health-probe-mismatch";
            let cands = free(c, |s| {
                (if external { s.plain_external() } else { s.plain() })
                    && (!needs_tcp || s.ports.iter().any(|p| p.proto == "TCP"))
            });
            let take = if rule == "dns-label-conflict" { 2 } else { 1 };
            if cands.len() < take {
                continue;
            }
            let picked = choose(ctx.rng, cands, take);
            plant_service(c, ctx, rule, done[r], &picked);
            done[r] += 1;
            truth.planted(rule);
        }
    }
}

/// Plants the `j`-th defect of `rule` on Service(s) `picked` (variants alternate with `j`).
fn plant_service(c: &mut Cluster, ctx: &mut Ctx, rule: &str, j: usize, picked: &[usize]) {
    let i = picked[0];
    match rule {
        // Requested IP missing, or the PIP made without a frontend.
        "service-pending-load-balancer" => {
            let pending = if j.is_multiple_of(2) {
                Pending::MissingIp(ctx.ips.public(ctx.rng))
            } else {
                Pending::PipNoFrontend
            };
            c.services[i].pending = Some(pending);
            c.services[i].dns_label = None;
        }
        "service-pip-resource-group-mismatch" => {
            let rg = c.shared_rg.clone();
            let ip = ctx.ips.public(ctx.rng);
            let s = &mut c.services[i];
            s.pending = Some(if j.is_multiple_of(2) {
                Pending::MismatchName {
                    pip: format!("pip-{}-{}", s.name, &s.uid[..5]),
                    rg,
                }
            } else {
                Pending::MismatchIp {
                    pip: format!("pip-{}-{}-static", s.name, &s.uid[..5]),
                    rg,
                    ip,
                }
            });
            s.dns_label = None;
        }
        "service-without-ready-endpoints" => {
            c.services[i].defect = Some(SvcDefect::NoReadyEndpoints {
                empty_slice: j % 2 == 1,
            });
        }
        "nsg-blocks-service-port" => {
            c.services[i].defect = Some(SvcDefect::NsgBlock {
                deny_rule: j.is_multiple_of(2),
            });
        }
        "lb-health-probe-mismatch" => {
            let s = &mut c.services[i];
            s.defect = Some(if j.is_multiple_of(2) {
                SvcDefect::ProbeMissing
            } else {
                // A port that is none of its nodePorts nor its healthCheckNodePort.
                let mut wrong = 10256u16;
                while s.ports.iter().any(|p| p.node_port == wrong) || s.local_hcnp == Some(wrong) {
                    wrong += 1;
                }
                SvcDefect::ProbeWrongPort(wrong)
            });
        }
        // A port dropped from a live Service (its rule and probe stay), or the rules and probes
        // of a deleted Service that shared a live Service's frontend.
        "orphaned-lb-rule" => {
            if j.is_multiple_of(2) || c.services[i].internal {
                let node_port = ctx.node_port();
                let s = &mut c.services[i];
                let used: Vec<u16> = s.ports.iter().map(|p| p.port).collect();
                let port = [9090u16, 8081, 9443, 3000]
                    .into_iter()
                    .find(|p| !used.contains(p))
                    .unwrap_or(9999);
                s.defect = Some(SvcDefect::StalePort(Port {
                    name: "metrics".into(),
                    proto: "TCP",
                    port,
                    node_port,
                }));
            } else {
                let ns = c.services[i].ns.clone();
                let name = ctx.unique_name(&ns, "admin-console");
                let uid = uuid(ctx.rng);
                let ports = ctx.ports(&[("admin", 8443)], "TCP");
                let s = &mut c.services[i];
                s.tag_extra.push(format!("{ns}/{name}"));
                let ip4 = s.ip4.clone();
                c.ghosts.push(Ghost {
                    base: base_name(&uid),
                    ns,
                    name,
                    uid,
                    internal: false,
                    subnet: None,
                    ports,
                    ip4,
                    pip: None,
                    fip: false,
                    nsg: None,
                    on_primary: Some(i),
                    now_cluster_ip: false,
                });
            }
        }
        // Two Services want one label: the first owns it on its PIP, the second kept its IP but
        // the provider could not set the label on its PIP.
        "dns-label-conflict" => {
            // `dup-` never starts another label (no namespace is called `dup`).
            let label = format!("dup-{}-{}-{}", c.services[i].ns, c.services[i].name, c.name);
            for (k, &x) in picked.iter().enumerate() {
                c.services[x].dns_label = Some(label.clone());
                c.services[x].defect = Some(SvcDefect::DnsConflict { owner: k == 0 });
            }
        }
        _ => unreachable!("not a Service rule: {rule}"),
    }
    for &x in picked {
        c.services[x].assigned = true;
    }
}

fn plant_ghosts(
    c: &mut Cluster,
    ctx: &mut Ctx,
    opts: &Options,
    truth: &mut Truth,
    earlier_names: &[(String, String)],
) {
    let n_lb = c.services.len();
    let n_ext = c.services.iter().filter(|s| !s.internal).count();
    // Deleted Services of a twin cluster reuse the ns/names of live Services of the first
    // `kubernetes` cluster: only the resource group proves them orphaned.
    let mut hints: Vec<(String, String)> = if c.twin {
        earlier_names.to_vec()
    } else {
        Vec::new()
    };
    let mut new_ghost = |c: &mut Cluster, ctx: &mut Ctx, internal: bool| -> Ghost {
        let (ns, name) = loop {
            match hints.pop() {
                Some((ns, name)) if ctx.names.insert(format!("{ns}/{name}")) => break (ns, name),
                Some(_) => continue,
                None => {
                    let ns = NAMESPACES[ctx.rng.gen_range(0..NAMESPACES.len())].to_string();
                    let app = APPS[ctx.rng.gen_range(0..APPS.len())];
                    let name = ctx.unique_name(&ns, &format!("{app}-old"));
                    break (ns, name);
                }
            }
        };
        let uid = uuid(ctx.rng);
        let set = PORT_SETS[ctx.rng.gen_range(0..PORT_SETS.len())];
        let ports = ctx.ports(set, "TCP");
        let ip4 = if internal {
            ctx.ips.private(ctx.rng, c.net, 120..128)
        } else {
            ctx.ips.public(ctx.rng)
        };
        Ghost {
            base: base_name(&uid),
            ns,
            name,
            uid,
            internal,
            subnet: None,
            ports,
            ip4,
            pip: None,
            fip: false,
            nsg: None,
            on_primary: None,
            now_cluster_ip: false,
        }
    };
    let full_ok = opts.rate("orphaned-lb-frontend") > 0.0 && opts.rate("orphaned-nsg-rule") > 0.0;

    let rule = "orphaned-public-ip";
    let k = planned(ctx.rng, opts.rate(rule), n_ext);
    truth.candidates(rule, n_ext);
    for j in 0..k {
        let mut g = new_ghost(c, ctx, false);
        if full_ok && j % 3 == 2 {
            // Everything left behind: PIP on its frontend, rules, probes, NSG destination.
            g.pip = Some(GhostPip::Tagged {
                attached: true,
                legacy: false,
            });
            g.fip = true;
            g.nsg = Some(GhostNsg::Consolidated);
        } else {
            g.pip = Some(GhostPip::Tagged {
                attached: false,
                legacy: j % 3 == 1,
            });
        }
        c.ghosts.push(g);
        truth.planted(rule);
    }

    let rule = "orphaned-lb-frontend";
    let k = planned(ctx.rng, opts.rate(rule), n_lb);
    truth.candidates(rule, n_lb);
    for j in 0..k {
        let variant = j % 3;
        let mut g = new_ghost(c, ctx, variant != 1);
        g.fip = true;
        match variant {
            0 => g.subnet = ctx.rng.gen_bool(0.5).then(|| c.ilb_subnet.clone()),
            1 => g.pip = Some(GhostPip::Byo(format!("pip-{}-{}", g.name, &g.uid[..5]))),
            _ => g.now_cluster_ip = true,
        }
        if g.subnet.is_some() {
            g.ip4 = ctx.ips.private(ctx.rng, c.net, 248..255);
        }
        c.ghosts.push(g);
        truth.planted(rule);
    }

    let rule = "orphaned-nsg-rule";
    let k = planned(ctx.rng, opts.rate(rule), n_ext);
    truth.candidates(rule, n_ext);
    for j in 0..k {
        let mut g = new_ghost(c, ctx, false);
        g.nsg = Some(if j.is_multiple_of(2) {
            GhostNsg::Consolidated
        } else {
            GhostNsg::Legacy
        });
        c.ghosts.push(g);
        truth.planted(rule);
    }

    let rule = "unattached-public-ip";
    let k = planned(ctx.rng, opts.rate(rule), n_ext);
    truth.candidates(rule, n_ext);
    for j in 0..k {
        let ip = ctx.ips.public(ctx.rng);
        c.loose_pips.push(LoosePip {
            name: format!("pip-{}-spare-{j}", c.name),
            ip,
            kind: LooseKind::Unattached,
        });
        truth.planted(rule);
    }

    // Look-alikes that are never findings.
    let ip = ctx.ips.public(ctx.rng);
    c.loose_pips.push(LoosePip {
        name: format!("{}-natgw-pip", c.name),
        ip,
        kind: LooseKind::NatGateway,
    });
    let ip = ctx.ips.public(ctx.rng);
    c.loose_pips.push(LoosePip {
        name: format!("{}-reserved-pip", c.name),
        ip,
        kind: LooseKind::Prefix,
    });
    if !c.is_aks() {
        let other = format!("legacy-{}", c.name);
        let ip = ctx.ips.public(ctx.rng);
        let uid = uuid(ctx.rng);
        let fip = base_name(&uid);
        let pip_name = format!("{other}-{fip}");
        c.loose_pips.push(LoosePip {
            name: pip_name,
            ip: ip.clone(),
            kind: LooseKind::OtherCluster {
                cluster: other.clone(),
                service: "default/legacy-web".into(),
            },
        });
        c.foreign_lb = Some((other, fip, ip));
    }
}

fn plant_nodes(c: &mut Cluster, ctx: &mut Ctx, opts: &Options, truth: &mut Truth) {
    let workers: Vec<usize> = (0..c.nodes.len()).filter(|&i| c.nodes[i].eligible()).collect();
    let n_workers = workers.len();
    // Plants that take a node out of the pools keep at least two members in each pool.
    let mut removable = n_workers.saturating_sub(2);
    let free_workers = |c: &Cluster| -> Vec<usize> {
        (0..c.nodes.len())
            .filter(|&i| c.nodes[i].eligible() && !c.nodes[i].assigned)
            .collect()
    };

    for (rule, registered) in [
        ("node-not-registered-with-cloud", false),
        ("node-instance-not-found", true),
    ] {
        let k = planned(ctx.rng, opts.rate(rule), n_workers).min(removable);
        truth.candidates(rule, n_workers);
        for i in choose(ctx.rng, free_workers(c), k) {
            let n = &mut c.nodes[i];
            n.assigned = true;
            if registered {
                n.instance_exists = false;
            } else {
                n.registered = false;
            }
            removable -= 1;
            truth.planted(rule);
        }
    }

    let rule = "virtual-node-not-excluded";
    let k = planned(ctx.rng, opts.rate(rule), n_workers);
    truth.candidates(rule, n_workers);
    for j in 0..k {
        let ip4 = ctx.ips.private(ctx.rng, c.net, 192..200);
        c.nodes.push(Node {
            name: format!("virtual-kubelet-{j}"),
            uid: uuid(ctx.rng),
            kind: NodeKind::Virtual { proper: false },
            control_plane: false,
            excluded: false,
            ip4,
            ip6: None,
            zone: 0,
            registered: false,
            instance_exists: false,
            missing_from: Vec::new(),
            assigned: true,
            days: ctx.rng.gen_range(1..200),
        });
        truth.planted(rule);
    }

    // The external pool of an IP-based cluster stays clean: it is the IP-pool look-alike.
    let pools: Vec<PoolKey> = c
        .pools()
        .into_iter()
        .filter(|k| c.flavor != Flavor::SelfManagedIpPools || k.internal)
        .collect();
    let n_pools = pools.len();
    let rule = "empty-backend-pool";
    let k = planned(ctx.rng, opts.rate(rule), n_pools);
    truth.candidates(rule, n_pools);
    for p in choose(ctx.rng, (0..n_pools).collect(), k) {
        c.pool_defects.insert(pools[p], PoolDefect::Empty);
        truth.planted(rule);
    }
    let rule = "stale-backend-pool-member";
    let k = planned(ctx.rng, opts.rate(rule), n_pools);
    truth.candidates(rule, n_pools);
    let left: Vec<usize> = (0..n_pools)
        .filter(|&p| !c.pool_defects.contains_key(&pools[p]))
        .collect();
    for p in choose(ctx.rng, left, k) {
        c.pool_defects.insert(pools[p], PoolDefect::Stale);
        truth.planted(rule);
    }

    let rule = "node-missing-from-backend-pool";
    let k = planned(ctx.rng, opts.rate(rule), n_workers);
    truth.candidates(rule, n_workers);
    let live_pools: Vec<PoolKey> = c
        .pools()
        .into_iter()
        .filter(|p| c.pool_defects.get(p) != Some(&PoolDefect::Empty))
        .collect();
    if live_pools.is_empty() {
        return;
    }
    for i in choose(ctx.rng, free_workers(c), k.min(removable)) {
        // Every node of a dual-stack cluster has an IPv6 address, so any pool fits.
        let p = live_pools[ctx.rng.gen_range(0..live_pools.len())];
        let n = &mut c.nodes[i];
        n.missing_from.push(p);
        n.assigned = true;
        truth.planted(rule);
    }
}

fn plant_misc(c: &mut Cluster, ctx: &mut Ctx, opts: &Options, truth: &mut Truth) {
    let n_workers = c.nodes.iter().filter(|n| n.eligible()).count();
    let rule = "basic-sku-retired";
    let k = planned(ctx.rng, opts.rate(rule), n_workers);
    truth.candidates(rule, n_workers);
    for j in 0..k {
        let ip4 = ctx.ips.private(ctx.rng, c.net, 64..65);
        let pip_ip = ctx.ips.public(ctx.rng);
        c.jumpboxes.push(Jumpbox {
            name: format!("{}-jumpbox-{j}", c.name),
            ip4,
            pip_ip,
        });
        truth.planted(rule);
    }

    let rule = "cloud-config-invalid";
    let k = planned(ctx.rng, opts.rate(rule), 1);
    truth.candidates(rule, 1);
    if k == 1 {
        let all = [
            ConfigDefect::ManagedIdentityWithSecret,
            ConfigDefect::RateLimitOff,
            ConfigDefect::InstanceMetadataOff,
        ];
        c.config_defect = Some(all[ctx.rng.gen_range(0..all.len())]);
        truth.planted(rule);
    }

    if c.is_aks() {
        let rule = "aks-tunnel-unhealthy";
        let k = planned(ctx.rng, opts.rate(rule), 2);
        truth.candidates(rule, 2);
        for p in choose(ctx.rng, vec![0, 1], k) {
            c.bad_tunnel_pods.insert(p);
            truth.planted(rule);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn planned_counts_follow_rate_on_average() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let total: usize = (0..1000).map(|_| planned(&mut rng, 0.25, 3)).sum();
        assert!((700..800).contains(&total), "{total}");
        assert_eq!(planned(&mut rng, 0.0, 50), 0);
        assert_eq!(planned(&mut rng, 1.0, 50), 50);
    }

    #[test]
    fn vmss_computer_names() {
        assert_eq!(base36_6(0), "000000");
        assert_eq!(base36_6(37), "000011");
    }
}
