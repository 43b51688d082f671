//! `nsg-blocks-service-port`: a LoadBalancer Service whose NSGs deny one of its ports to the
//! clients it allows. Source: the guide's "负载均衡公网 IP 无法访问 — 防火墙或网络安全组阻止了要访问的端口".
//!
//! For each Service with an ingress IP, each port and each allowed source (what
//! cloud-provider-azure's `AccessControl` would open: `loadBalancerSourceRanges` /
//! `azure-allowed-ip-ranges`, `azure-allowed-service-tags`, else `Internet`; internal Services
//! without any: `VirtualNetwork`), the flow to the ingress IP (floating IP off: the node's IP and
//! the nodePort) is evaluated by [`crate::nsg`] along the path to every eligible node: the NSG of
//! the node's subnet, then of its NIC; when neither can be found, the cluster's NSG
//! (`securityGroupName`).
//!
//! It reports only what is certain: a port is blocked for a source when a known NSG denies the
//! whole flow on the path to *every* eligible node. Unknown NSGs, unresolved service tags and
//! partial matches never make a finding. Needs the cluster's node listing to be complete.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use serde::Serialize;

use super::context::{ClusterView, key};
use super::{Context, Rule, RuleInfo};
use crate::conventions::{self, ProviderId};
use crate::findings::{Finding, Severity};
use crate::inventory::{ArmKind, Nic, Node, Nsg, SecurityRule, Service, Subnet, Vnet};
use crate::nsg::{
    self, AddressPrefix, Cidr, Env, Family, Flow, Hop, HopRole, PathVerdict, Protocol, Verdict,
};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "nsg-blocks-service-port",
        title: "NSG blocks a LoadBalancer Service's port",
        default_severity: Severity::High,
        rationale: "The Service has an address and a load-balancing rule, yet the network security groups on the way to its nodes deny its port to the clients it is meant for: connections time out, and nothing in Kubernetes says why.",
        remediation: "Find the deciding rule with az network nsg rule list -g <rg> --nsg-name <nsg> -o table; narrow or delete it (az network nsg rule delete ...), or add an allow rule with a lower priority number for the Service's address and port (az network nsg rule create ... --access Allow).",
        source: "负载均衡公网 IP 无法访问 (防火墙或网络安全组阻止了要访问的端口)",
        cleanup: false,
    },
    check,
};

/// The path from the load balancer to one node.
struct NodePath<'a> {
    node: &'a Node,
    hops: Vec<Hop<'a>>,
    env: Env,
    /// The VNet whose prefixes `env` holds (memo key).
    vnet_key: Option<String>,
}

/// One blocked (port, source) with its deciding rule(s).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct Blocked {
    protocol: &'static str,
    port: u32,
    destination: String,
    source: String,
    nsg: String,
    nsg_name: String,
    nsg_resource_group: String,
    hop: &'static str,
    rule: String,
    rule_id: String,
    priority: Option<u32>,
    access: &'static str,
    default_rule: bool,
}

fn hop_name(r: HopRole) -> &'static str {
    match r {
        HopRole::Subnet => "subnet",
        HopRole::Nic => "nic",
        HopRole::Cluster => "cluster",
    }
}

/// Everything needed to find NSGs, NICs and subnets by id.
struct Index<'a> {
    nsgs: HashMap<String, &'a Nsg>,
    subnets: HashMap<String, (&'a Subnet, &'a Vnet)>,
    /// NSGs by the subnets / NICs they name (the NSG side of the association).
    nsg_by_subnet: HashMap<String, &'a Nsg>,
    nsg_by_nic: HashMap<String, &'a Nsg>,
}

impl<'a> Index<'a> {
    fn new(ctx: &Context<'a>) -> Index<'a> {
        let inv = ctx.inv;
        let mut subnets = HashMap::new();
        for v in &inv.vnets {
            for s in &v.subnets {
                subnets.insert(key(&s.id), (s, v));
            }
        }
        let mut nsg_by_subnet = HashMap::new();
        let mut nsg_by_nic = HashMap::new();
        for n in &inv.nsgs {
            for s in &n.subnet_ids {
                nsg_by_subnet.insert(key(s), n);
            }
            for i in &n.nic_ids {
                nsg_by_nic.insert(key(i), n);
            }
        }
        Index {
            nsgs: inv.nsgs.iter().map(|n| (key(&n.id), n)).collect(),
            subnets,
            nsg_by_subnet,
            nsg_by_nic,
        }
    }

    /// The hop for an NSG id: known, or unknown with a note.
    fn hop(&self, role: HopRole, nsg_id: &str) -> Hop<'a> {
        match self.nsgs.get(&key(nsg_id)) {
            Some(n) => Hop {
                role,
                nsg: Some(n),
                note: None,
            },
            None => Hop {
                role,
                nsg: None,
                note: Some(format!("{} NSG {nsg_id} is not in the inventory", hop_name(role))),
            },
        }
    }
}

fn unknown(role: HopRole, note: String) -> Hop<'static> {
    Hop {
        role,
        nsg: None,
        note: Some(note),
    }
}

/// The node's primary NIC, from its providerID (VM: the VM's NICs; VMSS instance: NICs whose
/// `virtualMachine` is the instance).
fn node_nic<'a>(ctx: &Context<'a>, arm_id: &str, pid: &ProviderId) -> Option<&'a Nic> {
    let k = key(arm_id);
    let mut candidates: Vec<&Nic> = match pid {
        ProviderId::Vm { .. } => match ctx.vms_by_id.get(&k) {
            Some(vm) => vm
                .nic_ids
                .iter()
                .filter_map(|i| ctx.nics_by_id.get(&key(i)).copied())
                .collect(),
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    if candidates.is_empty() {
        candidates = ctx
            .inv
            .nics
            .iter()
            .filter(|n| n.vm_id.as_deref().is_some_and(|v| key(v) == k))
            .collect();
    }
    candidates
        .iter()
        .find(|n| n.primary)
        .or_else(|| candidates.first())
        .copied()
}

/// The subnet named by the cloud config (`vnetName`, `vnetResourceGroup`, `subnetName`).
fn config_subnet<'a>(ctx: &Context<'a>, cv: &ClusterView) -> Option<(&'a Subnet, &'a Vnet)> {
    let vnet_name = cv.config_str("vnetName")?;
    let subnet_name = cv.config_str("subnetName")?;
    let rg = cv
        .config_str("vnetResourceGroup")
        .or_else(|| cv.resource_group.clone())?;
    let sub = cv.subscription()?;
    ctx.inv
        .vnets
        .iter()
        .filter(|v| {
            v.name.eq_ignore_ascii_case(&vnet_name)
                && v.resource_group.eq_ignore_ascii_case(&rg)
                && v.subscription.eq_ignore_ascii_case(sub)
        })
        .find_map(|v| {
            v.subnets
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(&subnet_name))
                .map(|s| (s, v))
        })
}

/// The subnet (of a VNet in the cluster's subscription) that holds the node's address: the only
/// one, or the cloud config's among several (clusters often reuse address spaces); `None`
/// otherwise. A subnet that does not hold the node's address is never taken for its own.
fn subnet_by_ip<'a>(ctx: &Context<'a>, cv: &ClusterView, ips: &[IpAddr]) -> Option<(&'a Subnet, &'a Vnet)> {
    let sub = cv.subscription()?;
    let mut found = Vec::new();
    for v in ctx
        .inv
        .vnets
        .iter()
        .filter(|v| v.subscription.eq_ignore_ascii_case(sub))
    {
        for s in &v.subnets {
            let holds = s
                .prefixes
                .iter()
                .filter_map(|p| Cidr::parse(p))
                .any(|c| ips.iter().any(|ip| c.contains(ip)));
            if holds {
                found.push((s, v));
            }
        }
    }
    if found.len() == 1 {
        return Some(found[0]);
    }
    let configured = config_subnet(ctx, cv)?;
    found
        .into_iter()
        .find(|(s, _)| key(&s.id) == key(&configured.0.id))
}

fn vnet_env(v: Option<&Vnet>) -> (Env, Option<String>) {
    match v {
        Some(v) => {
            let prefixes: Vec<Cidr> = v.address_prefixes.iter().filter_map(|p| Cidr::parse(p)).collect();
            let known = !prefixes.is_empty();
            (
                Env {
                    vnet_prefixes: known.then_some(prefixes),
                },
                known.then(|| key(&v.id)),
            )
        }
        None => (Env::default(), None),
    }
}

/// The cluster's own NSG, when it is one NSG associated with something.
fn cluster_nsg<'a>(cv: &ClusterView<'a>) -> Option<&'a Nsg> {
    match cv.nsgs.as_slice() {
        [one] if !one.subnet_ids.is_empty() || !one.nic_ids.is_empty() => Some(*one),
        _ => None,
    }
}

fn node_path<'a>(ctx: &Context<'a>, idx: &Index<'a>, cv: &ClusterView<'a>, node: &'a Node) -> NodePath<'a> {
    let ips: Vec<IpAddr> = node.internal_ips.iter().filter_map(|i| i.parse().ok()).collect();
    let pid_str = node.provider_id.as_deref().unwrap_or_default();
    let pid = ProviderId::parse(pid_str);
    let arm_id = pid_str.strip_prefix("azure://").unwrap_or_default();
    let nic = if matches!(pid, ProviderId::Vm { .. } | ProviderId::VmssInstance { .. }) {
        node_nic(ctx, arm_id, &pid)
    } else {
        None
    };
    let mut hops = Vec::new();

    // Subnet: the NIC's, else the one holding the node's IP (the cloud config's among several).
    let nic_subnet_id = nic.and_then(|n| {
        n.ip_configs
            .iter()
            .find(|c| c.primary)
            .or_else(|| n.ip_configs.first())
            .and_then(|c| c.subnet_id.clone())
    });
    let subnet: Option<(&Subnet, &Vnet)> = match &nic_subnet_id {
        Some(id) => idx.subnets.get(&key(id)).copied(),
        None => subnet_by_ip(ctx, cv, &ips),
    };
    match (subnet, &nic_subnet_id) {
        (Some((s, _)), _) => {
            if let Some(id) = &s.nsg_id {
                hops.push(idx.hop(HopRole::Subnet, id));
            } else if let Some(n) = idx.nsg_by_subnet.get(&key(&s.id)) {
                hops.push(idx.hop(HopRole::Subnet, &n.id));
            }
        }
        (None, Some(id)) => match idx.nsg_by_subnet.get(&key(id)) {
            Some(n) => hops.push(idx.hop(HopRole::Subnet, &n.id)),
            None => hops.push(unknown(
                HopRole::Subnet,
                format!("subnet {id} of node {} is not in the inventory", node.meta.name),
            )),
        },
        (None, None) => hops.push(unknown(
            HopRole::Subnet,
            format!("the subnet of node {} could not be determined", node.meta.name),
        )),
    }

    // NIC: its own NSG, else an NSG that names it; an unlisted NIC is unknown unless an NSG
    // names an interface of this machine (VMSS instance NICs carry the instance id as prefix).
    match nic {
        Some(n) => {
            if let Some(id) = &n.nsg_id {
                hops.push(idx.hop(HopRole::Nic, id));
            } else if let Some(g) = idx.nsg_by_nic.get(&key(&n.id)) {
                hops.push(idx.hop(HopRole::Nic, &g.id));
            }
        }
        None => {
            let prefix = format!("{}/networkinterfaces/", key(arm_id));
            let named = (!arm_id.is_empty())
                .then(|| {
                    idx.nsg_by_nic
                        .iter()
                        .find(|(nic_key, _)| nic_key.starts_with(&prefix))
                        .map(|(_, g)| *g)
                })
                .flatten();
            let why = if matches!(pid, ProviderId::VmssInstance { .. }) {
                " (VMSS instance NICs are not in the subscription's NIC list)"
            } else {
                ""
            };
            match named {
                Some(g) => hops.push(idx.hop(HopRole::Nic, &g.id)),
                None => hops.push(unknown(
                    HopRole::Nic,
                    format!(
                        "the network interface of node {} is not in the inventory{why}: its NSG, if any, is unknown and only the subnet's NSG was evaluated",
                        node.meta.name
                    ),
                )),
            }
        }
    }

    // Neither found: the provider's NSG, which is where it expects traffic to be filtered.
    if hops.iter().all(|h| h.nsg.is_none())
        && let Some(g) = cluster_nsg(cv)
    {
        hops.push(Hop {
            role: HopRole::Cluster,
            nsg: Some(g),
            note: Some(format!(
                "node {}'s subnet and NIC NSGs are unknown: the cluster NSG {} was evaluated",
                node.meta.name, g.name
            )),
        });
    }
    let (env, vnet_key) = vnet_env(subnet.map(|(_, v)| v));
    NodePath {
        node,
        hops,
        env,
        vnet_key,
    }
}

/// Whether the load balancer can send traffic to the node at all: it has an Azure providerID
/// (without one it never joins a pool: `node-not-registered-with-cloud`), and its VM or VMSS
/// instance is not known to be gone (`node-instance-not-found`).
fn receives_traffic(ctx: &Context, n: &Node) -> bool {
    let pid_str = n.provider_id.as_deref().unwrap_or_default();
    let arm_id = pid_str.strip_prefix("azure://").unwrap_or_default();
    match ProviderId::parse(pid_str) {
        ProviderId::Vm { subscription, .. } => {
            ctx.vms_by_id.contains_key(&key(arm_id))
                || !(ctx.audited_subscription(&subscription)
                    && ctx.arm_complete(&subscription, ArmKind::VirtualMachines))
        }
        ProviderId::VmssInstance { .. } => {
            let vmss = arm_id
                .to_ascii_lowercase()
                .find("/virtualmachines/")
                .map(|i| &arm_id[..i])
                .unwrap_or(arm_id);
            ctx.vmss_vms_by_id.contains_key(&key(arm_id)) || !ctx.vmss_listed.contains(&key(vmss))
        }
        ProviderId::OtherAzure(_) | ProviderId::NotAzure(_) => false,
    }
}

/// The sources to test for a Service, per family of the destination.
fn sources(svc: &Service, family: Family) -> Vec<AddressPrefix> {
    let a = conventions::allowed_sources(svc);
    let mut out: Vec<AddressPrefix> = a.service_tags.iter().map(|t| AddressPrefix::parse(t)).collect();
    if a.internet {
        out.push(AddressPrefix::Internet);
    }
    for r in &a.ip_ranges {
        // Invalid ranges open nothing (the provider adds a deny-all instead): not tested.
        if let Some(c) = Cidr::parse(r)
            && c.family == family
        {
            out.push(AddressPrefix::Cidr(c));
        }
    }
    if out.is_empty() && conventions::is_internal(svc) && a.service_tags.is_empty() && a.ip_ranges.is_empty()
    {
        out.push(AddressPrefix::VirtualNetwork);
    }
    let mut seen = BTreeSet::new();
    out.retain(|p| seen.insert(p.to_string().to_ascii_lowercase()));
    out
}

type MemoKey = (String, Option<String>, Protocol, u32, IpAddr, String);

/// Memoised NSG evaluation: many Services share NSGs, sources and (with floating IP) nodes.
#[derive(Default)]
struct Evaluator {
    ordered: HashMap<String, Vec<SecurityRule>>,
    memo: HashMap<MemoKey, Verdict>,
}

impl Evaluator {
    fn path(&mut self, p: &NodePath, flow: &Flow) -> PathVerdict {
        let ordered = &mut self.ordered;
        let memo = &mut self.memo;
        nsg::evaluate_path(&p.hops, |n| {
            let k = (
                key(&n.id),
                p.vnet_key.clone(),
                flow.protocol,
                flow.port,
                flow.destination,
                flow.source.to_string(),
            );
            if let Some(v) = memo.get(&k) {
                return v.clone();
            }
            let rules = ordered.entry(key(&n.id)).or_insert_with(|| nsg::ordered_rules(n));
            let v = nsg::evaluate_ordered(rules, flow, &p.env);
            memo.insert(k, v.clone());
            v
        })
    }
}

/// Highest free priority below `below` (custom rules use 100–4096), preferring numbers outside
/// the provider's 500–4096 range so the new rule is not mistaken for a managed one.
fn free_priority(nsg: &Nsg, below: u32) -> Option<u32> {
    let used: BTreeSet<u32> = nsg.rules.iter().filter_map(|r| r.priority).collect();
    let top = below.saturating_sub(1).min(4096);
    let free = |range: std::ops::RangeInclusive<u32>| range.rev().find(|p| !used.contains(p));
    let outside = if top >= conventions::NSG_MIN_PRIORITY {
        free(100..=conventions::NSG_MIN_PRIORITY - 1)
    } else {
        free(100..=top)
    };
    outside.or_else(|| free(100..=top))
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    let idx = Index::new(ctx);
    let mut ev = Evaluator::default();
    for cv in &ctx.clusters {
        if !cv.nodes_complete() {
            continue;
        }
        // NSG, NIC and VNet gaps only make paths unknown (never blocked): no guard needed.
        let paths: Vec<NodePath> = cv
            .cluster
            .nodes
            .iter()
            .filter(|n| conventions::is_eligible_node(n, cv.cluster) && receives_traffic(ctx, n))
            .map(|n| node_path(ctx, &idx, cv, n))
            .collect();
        if paths.is_empty() {
            continue;
        }
        for svc in &cv.lb_services {
            if svc.load_balancer_class.is_some() {
                continue;
            }
            if let Some(f) = check_service(ctx, cv, svc, &paths, &mut ev) {
                out.push(f);
            }
        }
    }
}

fn check_service<'a>(
    ctx: &Context<'a>,
    cv: &ClusterView<'a>,
    svc: &Service,
    paths: &[NodePath<'a>],
    ev: &mut Evaluator,
) -> Option<Finding> {
    let internal = conventions::is_internal(svc);
    let mut blocked: BTreeSet<Blocked> = BTreeSet::new();
    let mut tested: BTreeSet<String> = BTreeSet::new();
    let mut notes: BTreeSet<String> = BTreeSet::new();
    let mut nsgs_by_id: BTreeMap<String, &Nsg> = BTreeMap::new();
    for ingress in svc.ingress_ips.iter().filter_map(|i| i.parse::<IpAddr>().ok()) {
        let family = Family::of(&ingress);
        // Floating IP off (annotation; internal IPv6 pools always): node IP and nodePort.
        let floating_off = conventions::floating_ip_disabled(svc) || (internal && family == Family::V6);
        for port in &svc.ports {
            let Some(protocol) = Protocol::from_kubernetes(&port.protocol) else {
                continue;
            };
            let dport = if floating_off {
                port.node_port
            } else {
                Some(port.port)
            };
            let Some(dport) = dport else { continue };
            for source in sources(svc, family) {
                tested.insert(source.to_string());
                let mut deciders: Vec<(PathVerdict, IpAddr)> = Vec::new();
                let mut all_blocked = true;
                for p in paths {
                    let dest = if floating_off {
                        match p
                            .node
                            .internal_ips
                            .iter()
                            .filter_map(|i| i.parse::<IpAddr>().ok())
                            .find(|ip| Family::of(ip) == family)
                        {
                            Some(ip) => ip,
                            None => {
                                all_blocked = false;
                                continue;
                            }
                        }
                    } else {
                        ingress
                    };
                    let flow = Flow {
                        protocol,
                        port: dport,
                        destination: dest,
                        source: source.clone(),
                    };
                    let v = ev.path(p, &flow);
                    if !matches!(v, PathVerdict::Blocked { .. }) {
                        all_blocked = false;
                        break;
                    }
                    deciders.push((v, dest));
                }
                if !all_blocked || deciders.is_empty() {
                    continue;
                }
                for p in paths {
                    notes.extend(p.hops.iter().filter_map(|h| h.note.clone()));
                }
                for (v, dest) in deciders {
                    if let PathVerdict::Blocked {
                        role,
                        nsg_id,
                        nsg_name,
                        rule,
                    } = v
                    {
                        if let Some(n) = ctx.inv.nsgs.iter().find(|n| key(&n.id) == key(&nsg_id)) {
                            nsgs_by_id.insert(key(&nsg_id), n);
                        }
                        blocked.insert(Blocked {
                            protocol: protocol.as_str(),
                            port: dport,
                            destination: dest.to_string(),
                            source: source.to_string(),
                            nsg_resource_group: nsgs_by_id
                                .get(&key(&nsg_id))
                                .map(|n| n.resource_group.clone())
                                .unwrap_or_default(),
                            nsg: nsg_id,
                            nsg_name,
                            hop: hop_name(role),
                            rule: rule.name,
                            rule_id: rule.id,
                            priority: rule.priority,
                            access: match rule.access {
                                Some(nsg::Access::Allow) => "Allow",
                                Some(nsg::Access::Deny) => "Deny",
                                None => "?",
                            },
                            default_rule: rule.default,
                        });
                    }
                }
            }
        }
    }
    if blocked.is_empty() {
        return None;
    }
    let svc_key = svc.key();
    let resource = format!(
        "k8s://{}/{}/services/{}",
        cv.name(),
        svc.meta.namespace.as_deref().unwrap_or("default"),
        svc.meta.name
    );
    // One clause per distinct (protocol, port, source, rule) for the sentence.
    let mut clauses: Vec<String> = Vec::new();
    for b in &blocked {
        let c = format!(
            "{} {} from {} (denied by {}{}, priority {}, of NSG {})",
            b.protocol,
            b.port,
            b.source,
            if b.default_rule { "default rule " } else { "rule " },
            b.rule,
            b.priority.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            b.nsg_name,
        );
        if !clauses.contains(&c) {
            clauses.push(c);
        }
    }
    let ips = svc.ingress_ips.join(", ");
    let message = format!(
        "Service {svc_key} ({ips}) is unreachable on {}.",
        clauses.join("; ")
    );
    let remediation = remediation(svc, &blocked, &nsgs_by_id);
    let nodes: Vec<&str> = paths.iter().map(|p| p.node.meta.name.as_str()).collect();
    let mut f = Finding::new(RULE.info.id, RULE.info.default_severity, resource, message)
        .cluster(cv.name())
        .evidence("blocked", &blocked)
        .evidence("sources_tested", &tested)
        .evidence("ingress_ips", &svc.ingress_ips)
        .evidence("floating_ip", !conventions::floating_ip_disabled(svc))
        .evidence("nodes_evaluated", &nodes)
        .remediation(remediation);
    if !notes.is_empty() {
        f = f.evidence("path_notes", &notes);
    }
    if let Some(s) = cv.subscription() {
        f = f.subscription(s);
    }
    Some(f)
}

fn remediation(svc: &Service, blocked: &BTreeSet<Blocked>, nsgs: &BTreeMap<String, &Nsg>) -> String {
    let ns = svc.meta.namespace.as_deref().unwrap_or("default");
    let mut steps: Vec<String> = Vec::new();
    for b in blocked {
        let nsg = nsgs.get(&key(&b.nsg));
        let rg = &b.nsg_resource_group;
        let below = b.priority.unwrap_or(65500);
        let prio = nsg
            .and_then(|n| free_priority(n, below))
            .map(|p| p.to_string())
            .unwrap_or_else(|| format!("<free number below {below}>"));
        let src = match b.source.as_str() {
            s if s.contains(' ') => format!("'{s}'"),
            s => s.to_string(),
        };
        let proto = Protocol::from_kubernetes(b.protocol)
            .map(Protocol::az_value)
            .unwrap_or("*");
        let create = format!(
            "az network nsg rule create -g {rg} --nsg-name {} -n allow-{ns}-{}-{}-{} --priority {prio} --direction Inbound --access Allow --protocol {proto} --source-address-prefixes {src} --source-port-ranges '*' --destination-address-prefixes {} --destination-port-ranges {}",
            b.nsg_name,
            svc.meta.name,
            b.protocol.to_ascii_lowercase(),
            b.port,
            b.destination,
            b.port
        );
        let step = if b.default_rule {
            format!(
                "No rule of {} allows {} {} from {} to {} (the provider's allow rule is missing or names other addresses): check `kubectl describe service -n {ns} {}` and the cloud-controller-manager log, or add {create}",
                b.nsg_name, b.protocol, b.port, b.source, b.destination, svc.meta.name
            )
        } else {
            format!(
                "Rule {} (priority {}) of {} denies {} {} from {}: narrow it (az network nsg rule update -g {rg} --nsg-name {} -n {} ...), delete it (az network nsg rule delete -g {rg} --nsg-name {} -n {}), or allow the Service above it: {create}",
                b.rule,
                b.priority.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                b.nsg_name,
                b.protocol,
                b.port,
                b.source,
                b.nsg_name,
                b.rule,
                b.nsg_name,
                b.rule
            )
        };
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
    steps.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::super::net_testutil::*;
    use super::*;
    use serde_json::{Value, json};

    const C: &str = "c1";

    /// Two VM nodes in `nodes-subnet` (10.0.0.0/16 VNet), subnet NSG `subnet-nsg` with `rules`.
    fn world(rules: Vec<Value>, services: Vec<Value>, extra: Vec<(&'static str, Value)>) -> Vec<Finding> {
        let sid = nsg_id("subnet-nsg");
        let rules: Vec<Value> = rules
            .into_iter()
            .map(|mut r| {
                r["id"] = json!(format!(
                    "{sid}/securityRules/{}",
                    r["name"].as_str().unwrap_or("r")
                ));
                r
            })
            .collect();
        let subnet = subnet_id("vnet", "nodes-subnet");
        let mut files = vec![
            ("world.json", world_json(C)),
            (
                "arm/nsg.json",
                page(vec![nsg("subnet-nsg", rules, &[&subnet], &[])]),
            ),
            (
                "arm/vnet.json",
                page(vec![vnet(
                    "vnet",
                    &["10.0.0.0/16"],
                    "nodes-subnet",
                    "10.0.0.0/24",
                    Some("subnet-nsg"),
                )]),
            ),
            ("arm/vms.json", page(vec![vm("node-0"), vm("node-1")])),
            (
                "arm/nics.json",
                page(vec![
                    nic("node-0", "10.0.0.4", &subnet, None),
                    nic("node-1", "10.0.0.5", &subnet, None),
                ]),
            ),
            (
                "k8s/c1/nodes.json",
                k8s_list(vec![
                    node("node-0", &vm_id("node-0"), "10.0.0.4"),
                    node("node-1", &vm_id("node-1"), "10.0.0.5"),
                ]),
            ),
            ("k8s/c1/services.json", k8s_list(services)),
        ];
        files.extend(extra);
        let inv = inventory(files);
        let ctx = Context::new(&inv);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        out
    }

    fn r(name: &str, prio: u32, access: &str, proto: &str, src: &str, dst: &str, ports: &str) -> Value {
        nsg_rule("x", name, prio, access, proto, src, dst, ports)
    }

    fn web() -> Value {
        lb_service("web", "shop", &[("TCP", 443, 30443)], &["20.1.2.3"], &[], &[])
    }

    fn resources(out: &[Finding]) -> Vec<String> {
        out.iter().map(|f| f.resource.clone()).collect()
    }

    #[test]
    fn deny_above_the_providers_allow_is_reported_with_the_deciding_rule() {
        let out = world(
            vec![
                r("deny-internet-443", 400, "Deny", "Tcp", "Internet", "*", "443"),
                r(
                    "k8s-azure-lb_allow_IPv4_x",
                    500,
                    "Allow",
                    "Tcp",
                    "Internet",
                    "20.1.2.3",
                    "443",
                ),
            ],
            vec![web()],
            vec![],
        );
        assert_eq!(resources(&out), ["k8s://c1/web/services/shop"]);
        let f = &out[0];
        assert_eq!(f.severity, Severity::High);
        let b = &f.evidence["blocked"][0];
        assert_eq!(b["rule"], "deny-internet-443");
        assert_eq!(b["priority"], 400);
        assert_eq!(b["access"], "Deny");
        assert_eq!(b["source"], "Internet");
        assert_eq!(b["port"], 443);
        assert_eq!(b["hop"], "subnet");
        assert_eq!(f.evidence["sources_tested"], json!(["Internet"]));
        assert!(f.message.contains("deny-internet-443"), "{}", f.message);
        assert!(
            f.remediation
                .contains("az network nsg rule delete -g rg-c1 --nsg-name subnet-nsg -n deny-internet-443")
        );
        assert!(f.remediation.contains("--priority 399"), "{}", f.remediation);
    }

    #[test]
    fn allowed_services_and_lookalikes_are_not_reported() {
        let services = vec![
            web(),
            // Source-restricted, allowed by a rule with the same range.
            lb_service(
                "ops",
                "grafana",
                &[("TCP", 443, 30444)],
                &["20.1.2.4"],
                &[],
                &["198.51.100.0/24"],
            ),
            // Service tag, allowed by a rule with the same tag.
            lb_service(
                "web",
                "api",
                &[("TCP", 443, 30445)],
                &["20.1.2.5"],
                &[(conventions::ANN_ALLOWED_SERVICE_TAGS, "AzureFrontDoor.Backend")],
                &[],
            ),
            // Internal: the VNet reaches it by the default rule.
            lb_service(
                "db",
                "proxy",
                &[("TCP", 5432, 30432)],
                &["10.0.0.100"],
                &[(conventions::ANN_INTERNAL, "true")],
                &[],
            ),
            // No ingress yet: nothing to evaluate.
            lb_service("web", "pending", &[("TCP", 80, 30080)], &[], &[], &[]),
        ];
        let out = world(
            vec![
                r("allow-web", 500, "Allow", "Tcp", "Internet", "20.1.2.3", "443,80"),
                r(
                    "allow-grafana",
                    501,
                    "Allow",
                    "Tcp",
                    "198.51.100.0/24",
                    "20.1.2.4",
                    "443",
                ),
                r(
                    "allow-afd",
                    502,
                    "Allow",
                    "Tcp",
                    "AzureFrontDoor.Backend",
                    "20.1.2.5",
                    "443",
                ),
                // A deny on another port and a deny of another office must not matter.
                r("deny-8443", 400, "Deny", "Tcp", "Internet", "*", "8443"),
                r("deny-office", 401, "Deny", "*", "203.0.113.0/24", "*", "*"),
            ],
            services,
            vec![],
        );
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn an_allow_for_the_wrong_address_leaves_the_default_deny_deciding() {
        let out = world(
            vec![r(
                "k8s-azure-lb_allow_IPv4_x",
                500,
                "Allow",
                "Tcp",
                "Internet",
                "20.9.9.9",
                "443",
            )],
            vec![web()],
            vec![],
        );
        assert_eq!(resources(&out), ["k8s://c1/web/services/shop"]);
        let b = &out[0].evidence["blocked"][0];
        assert_eq!(b["rule"], "DenyAllInBound");
        assert_eq!(b["default_rule"], true);
        assert!(
            out[0].remediation.contains("--priority 499"),
            "{}",
            out[0].remediation
        );
    }

    #[test]
    fn unresolvable_tags_and_partial_rules_are_not_blocked() {
        let out = world(
            vec![
                // Might allow part of Internet (AzureCloud ranges unknown) before the default deny.
                r("allow-azurecloud", 300, "Allow", "Tcp", "AzureCloud", "*", "443"),
            ],
            vec![web()],
            vec![],
        );
        assert!(out.is_empty(), "{out:#?}");
        // A narrower office range than the Service's: partial, not blocked.
        let out = world(
            vec![r(
                "allow-half",
                500,
                "Allow",
                "Tcp",
                "198.51.100.0/25",
                "20.1.2.4",
                "443",
            )],
            vec![lb_service(
                "ops",
                "grafana",
                &[("TCP", 443, 30444)],
                &["20.1.2.4"],
                &[],
                &["198.51.100.0/24"],
            )],
            vec![],
        );
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn a_nic_nsg_blocks_even_when_the_subnet_allows() {
        let subnet = subnet_id("vnet", "nodes-subnet");
        let nic_nsg = nsg(
            "nic-nsg",
            vec![nsg_rule(
                &nsg_id("nic-nsg"),
                "only-ssh",
                100,
                "Deny",
                "Tcp",
                "*",
                "*",
                "443",
            )],
            &[],
            &[],
        );
        let out = world(
            vec![r("allow-web", 500, "Allow", "Tcp", "Internet", "20.1.2.3", "443")],
            vec![web()],
            vec![
                ("arm/nic-nsg.json", page(vec![nic_nsg])),
                (
                    "arm/nics.json",
                    page(vec![
                        nic("node-0", "10.0.0.4", &subnet, Some("nic-nsg")),
                        nic("node-1", "10.0.0.5", &subnet, Some("nic-nsg")),
                    ]),
                ),
            ],
        );
        assert_eq!(resources(&out), ["k8s://c1/web/services/shop"]);
        assert_eq!(out[0].evidence["blocked"][0]["hop"], "nic");
        assert_eq!(out[0].evidence["blocked"][0]["rule"], "only-ssh");
    }

    #[test]
    fn blocked_on_some_nodes_only_is_not_reported() {
        let subnet = subnet_id("vnet", "nodes-subnet");
        let nic_nsg = nsg(
            "nic-nsg",
            vec![nsg_rule(
                &nsg_id("nic-nsg"),
                "deny-443",
                100,
                "Deny",
                "Tcp",
                "*",
                "*",
                "443",
            )],
            &[],
            &[],
        );
        let out = world(
            vec![r("allow-web", 500, "Allow", "Tcp", "Internet", "20.1.2.3", "443")],
            vec![web()],
            vec![
                ("arm/nic-nsg.json", page(vec![nic_nsg])),
                (
                    "arm/nics.json",
                    page(vec![
                        nic("node-0", "10.0.0.4", &subnet, Some("nic-nsg")),
                        nic("node-1", "10.0.0.5", &subnet, None),
                    ]),
                ),
            ],
        );
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn unknown_vmss_nic_keeps_a_subnet_block_and_says_so() {
        // VMSS instance nodes whose NICs were not listed: the subnet NSG still decides a deny.
        let vmss = arm_id("Microsoft.Compute/virtualMachineScaleSets/pool");
        let subnet = subnet_id("vnet", "nodes-subnet");
        let sid = nsg_id("subnet-nsg");
        let files = vec![
            ("world.json", world_json(C)),
            (
                "arm/nsg.json",
                page(vec![nsg(
                    "subnet-nsg",
                    vec![nsg_rule(
                        &sid, "deny-443", 100, "Deny", "Tcp", "Internet", "*", "443",
                    )],
                    &[&subnet],
                    &[],
                )]),
            ),
            (
                "arm/vnet.json",
                page(vec![vnet(
                    "vnet",
                    &["10.0.0.0/16"],
                    "nodes-subnet",
                    "10.0.0.0/24",
                    Some("subnet-nsg"),
                )]),
            ),
            (
                "k8s/c1/nodes.json",
                k8s_list(vec![node(
                    "pool000000",
                    &format!("{vmss}/virtualMachines/0"),
                    "10.0.0.4",
                )]),
            ),
            ("k8s/c1/services.json", k8s_list(vec![web()])),
        ];
        let inv = inventory(files);
        let ctx = Context::new(&inv);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        assert_eq!(resources(&out), ["k8s://c1/web/services/shop"]);
        let notes = out[0].evidence["path_notes"].to_string();
        assert!(notes.contains("only the subnet's NSG was evaluated"), "{notes}");

        // The same world with an allowing subnet NSG: undetermined (NIC NSG unknown), no finding.
        let files = vec![
            ("world.json", world_json(C)),
            (
                "arm/nsg.json",
                page(vec![nsg("subnet-nsg", vec![], &[&subnet], &[])]),
            ),
            (
                "arm/vnet.json",
                page(vec![vnet(
                    "vnet",
                    &["10.0.0.0/16"],
                    "nodes-subnet",
                    "10.0.0.0/24",
                    Some("subnet-nsg"),
                )]),
            ),
            (
                "k8s/c1/nodes.json",
                k8s_list(vec![node(
                    "pool000000",
                    &format!("{vmss}/virtualMachines/0"),
                    "10.0.0.4",
                )]),
            ),
            (
                "k8s/c1/services.json",
                k8s_list(vec![lb_service(
                    "db",
                    "proxy",
                    &[("TCP", 5432, 30432)],
                    &["10.0.0.100"],
                    &[(conventions::ANN_INTERNAL, "true")],
                    &[],
                )]),
            ),
        ];
        let inv = inventory(files);
        let ctx = Context::new(&inv);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn overlapping_address_spaces_are_not_guessed() {
        // Two VNets with the same prefixes (another cluster's is blocking); the node's NIC is
        // unknown, so its subnet cannot be told apart: nothing is concluded.
        let vmss = arm_id("Microsoft.Compute/virtualMachineScaleSets/pool");
        let other = nsg(
            "other-nsg",
            vec![nsg_rule(
                &nsg_id("other-nsg"),
                "deny-443",
                100,
                "Deny",
                "Tcp",
                "Internet",
                "*",
                "443",
            )],
            &[&subnet_id("vnet-b", "nodes-subnet")],
            &[],
        );
        let mine = nsg("mine-nsg", vec![], &[&subnet_id("vnet-a", "nodes-subnet")], &[]);
        let files = vec![
            ("world.json", world_json(C)),
            ("arm/nsg.json", page(vec![other, mine])),
            (
                "arm/vnet.json",
                page(vec![
                    vnet(
                        "vnet-a",
                        &["10.0.0.0/16"],
                        "nodes-subnet",
                        "10.0.0.0/24",
                        Some("mine-nsg"),
                    ),
                    vnet(
                        "vnet-b",
                        &["10.0.0.0/16"],
                        "nodes-subnet",
                        "10.0.0.0/24",
                        Some("other-nsg"),
                    ),
                ]),
            ),
            (
                "k8s/c1/nodes.json",
                k8s_list(vec![node(
                    "pool000000",
                    &format!("{vmss}/virtualMachines/0"),
                    "10.0.0.4",
                )]),
            ),
            ("k8s/c1/services.json", k8s_list(vec![web()])),
        ];
        let inv = inventory(files);
        let ctx = Context::new(&inv);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn a_vmss_nic_listed_without_type_brings_its_nsg() {
        // Real VMSS NIC lists carry no `type`; the NIC (and its NSG) must still be found.
        let vmss = arm_id("Microsoft.Compute/virtualMachineScaleSets/pool");
        let inst = format!("{vmss}/virtualMachines/0");
        let nic_id = format!("{inst}/networkInterfaces/pool");
        let subnet = subnet_id("vnet", "nodes-subnet");
        let files = vec![
            ("world.json", world_json(C)),
            (
                "arm/nsg.json",
                page(vec![nsg(
                    "agentpool-nsg",
                    vec![nsg_rule(
                        &nsg_id("agentpool-nsg"),
                        "deny-443",
                        300,
                        "Deny",
                        "Tcp",
                        "Internet",
                        "20.1.2.3",
                        "443",
                    )],
                    &[],
                    &[],
                )]),
            ),
            (
                "arm/vnet.json",
                page(vec![vnet(
                    "vnet",
                    &["10.0.0.0/16"],
                    "nodes-subnet",
                    "10.0.0.0/24",
                    None,
                )]),
            ),
            (
                "arm/vmss-vms.json",
                page(vec![
                    json!({"id": inst, "name": "pool_0", "instanceId": "0", "location": "westeurope",
                    "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
                    "properties": {"osProfile": {"computerName": "pool000000"}}}),
                ]),
            ),
            (
                "arm/vmss-nics.json",
                page(vec![json!({
                    "id": nic_id, "name": "pool", "location": "westeurope",
                    "properties": {
                        "primary": true,
                        "virtualMachine": {"id": inst},
                        "networkSecurityGroup": {"id": nsg_id("agentpool-nsg")},
                        "ipConfigurations": [{"name": "ipconfig1", "id": format!("{nic_id}/ipConfigurations/ipconfig1"),
                            "properties": {"primary": true, "privateIPAddress": "10.0.0.4", "subnet": {"id": subnet}}}]
                    }
                })]),
            ),
            (
                "k8s/c1/nodes.json",
                k8s_list(vec![node("pool000000", &inst, "10.0.0.4")]),
            ),
            ("k8s/c1/services.json", k8s_list(vec![web()])),
        ];
        let inv = inventory(files);
        assert_eq!(inv.nics.len(), 1, "the untyped VMSS NIC is an inventory NIC");
        let ctx = Context::new(&inv);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        assert_eq!(resources(&out), ["k8s://c1/web/services/shop"]);
        assert_eq!(out[0].evidence["blocked"][0]["hop"], "nic");
        assert!(
            !out[0].evidence.contains_key("path_notes"),
            "the path is fully known"
        );
    }

    #[test]
    fn floating_ip_off_tests_node_addresses_and_node_ports() {
        let svc = lb_service(
            "web",
            "shop",
            &[("TCP", 443, 30443)],
            &["20.1.2.3"],
            &[(conventions::ANN_DISABLE_FLOATING_IP, "true")],
            &[],
        );
        // Allowed to the frontend IP on 443 — but with floating IP off packets arrive at the
        // node IPs on the nodePort, which nothing allows.
        let out = world(
            vec![r("allow-web", 500, "Allow", "Tcp", "Internet", "20.1.2.3", "443")],
            vec![svc.clone()],
            vec![],
        );
        assert_eq!(resources(&out), ["k8s://c1/web/services/shop"]);
        let blocked = out[0].evidence["blocked"].as_array().cloned().unwrap_or_default();
        assert!(blocked.iter().all(|b| b["port"] == 30443), "{blocked:?}");
        let dests: BTreeSet<String> = blocked
            .iter()
            .map(|b| b["destination"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            dests,
            BTreeSet::from(["10.0.0.4".to_string(), "10.0.0.5".to_string()])
        );
        // What the provider writes with floating IP off: node IPs and nodePorts.
        let out = world(
            vec![r(
                "allow-web",
                500,
                "Allow",
                "Tcp",
                "Internet",
                "10.0.0.4,10.0.0.5",
                "30443",
            )],
            vec![svc],
            vec![],
        );
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn incomplete_node_listing_reports_nothing() {
        let files = vec![
            (
                "world.json",
                json!({
                    "subscriptions": [{"id": SUB}],
                    "clusters": [{"name": "c1", "cluster_name_tag": "c1", "subscription_id": SUB, "resource_group": RG}],
                    "gaps": [{"scope": "kubernetes", "cluster": "c1", "kind": "nodes", "cause": "403"}]
                }),
            ),
            (
                "arm/nsg.json",
                page(vec![nsg(
                    "subnet-nsg",
                    vec![],
                    &[&subnet_id("vnet", "nodes-subnet")],
                    &[],
                )]),
            ),
            (
                "arm/vnet.json",
                page(vec![vnet(
                    "vnet",
                    &["10.0.0.0/16"],
                    "nodes-subnet",
                    "10.0.0.0/24",
                    Some("subnet-nsg"),
                )]),
            ),
            ("arm/vms.json", page(vec![vm("node-0")])),
            (
                "arm/nics.json",
                page(vec![nic(
                    "node-0",
                    "10.0.0.4",
                    &subnet_id("vnet", "nodes-subnet"),
                    None,
                )]),
            ),
            (
                "k8s/c1/nodes.json",
                k8s_list(vec![node("node-0", &vm_id("node-0"), "10.0.0.4")]),
            ),
            ("k8s/c1/services.json", k8s_list(vec![web()])),
        ];
        let inv = inventory(files);
        assert!(!inv.clusters[0].is_complete(crate::inventory::K8sKind::Nodes));
        let ctx = Context::new(&inv);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn sources_follow_the_providers_access_control() {
        let s = |ann: &[(&str, &str)], ranges: &[&str]| -> Vec<String> {
            let v = lb_service("a", "b", &[("TCP", 1, 30001)], &["20.1.2.3"], ann, ranges);
            let svc = crate::inventory::convert::service(&v).expect("service");
            sources(&svc, Family::V4).iter().map(|p| p.to_string()).collect()
        };
        assert_eq!(s(&[], &[]), ["Internet"]);
        assert_eq!(s(&[], &["198.51.100.0/24", "2001:db8::/32"]), ["198.51.100.0/24"]);
        assert_eq!(s(&[], &["0.0.0.0/0"]), ["Internet", "0.0.0.0/0"]);
        assert_eq!(
            s(
                &[(
                    conventions::ANN_ALLOWED_SERVICE_TAGS,
                    "AzureFrontDoor.Backend, Sql"
                )],
                &[]
            ),
            ["AzureFrontDoor.Backend", "Sql"]
        );
        assert_eq!(s(&[(conventions::ANN_INTERNAL, "true")], &[]), ["VirtualNetwork"]);
        assert_eq!(
            s(&[(conventions::ANN_INTERNAL, "true")], &["10.5.0.0/16"]),
            ["10.5.0.0/16"]
        );
        assert_eq!(
            s(&[(conventions::ANN_ALLOWED_IP_RANGES, "203.0.113.0/24")], &[]),
            ["203.0.113.0/24"]
        );
        assert_eq!(
            s(
                &[(conventions::ANN_LB_SOURCE_RANGES, "203.0.113.0/24,192.0.2.0/24")],
                &[]
            ),
            ["203.0.113.0/24", "192.0.2.0/24"]
        );
    }
}
