//! Turns one planned cluster into ARM resources (streamed to the [`Sink`]) and Kubernetes lists,
//! and records in [`Truth`] every finding and look-alike that the flags of the plan imply.
//!
//! Findings are recorded here, next to the JSON that carries them, so an expected finding always
//! names an object exactly as it was written. Nothing here plants a defect or draws a decision
//! at random; randomness only fills in cosmetic values (etags, GUIDs, MACs).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use base64::Engine;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use super::arm::{self, NicSpec, PipSpec, RuleSpec, T_AVSET, T_LB, T_NATGW, T_NSG, T_PREFIX, T_VMSS, VmSpec};
use super::model::{
    Cluster, ConfigDefect, Flavor, Ghost, GhostNsg, GhostPip, LooseKind, Node, NodeKind, Pending, PipKind,
    PoolDefect, PoolKey, Port, Svc, SvcDefect,
};
use super::names::{
    etag, fip_name, legacy_nsg_rule_name, nsg_allow_rule_name, pip_name, res_id, rule_name,
    sorted_port_strings, uuid,
};
use super::output::Sink;
use super::{Env, Truth};

/// Azure's Standard LB limits (domain.md §4.1) and NSG limits (§4.2), for `quota-pressure`.
const LB_FIP_LIMIT: usize = 600;
const LB_RULE_LIMIT: usize = 1500;
const LB_POOL_LIMIT: usize = 5000;
const NSG_RULE_LIMIT: usize = 1000;
const NSG_ADDR_LIMIT: usize = 4000;

/// `quota-pressure` starts at 80 % (rule-catalogue.md).
fn pressured(count: usize, limit: usize) -> bool {
    count * 5 >= limit * 4
}

pub fn svc_ref(c: &Cluster, ns: &str, name: &str) -> String {
    format!("k8s://{}/{ns}/services/{name}", c.name)
}

struct Ids<'a>(&'a Cluster);

impl Ids<'_> {
    fn lb(&self, internal: bool) -> String {
        res_id(&self.0.sub, &self.0.rg, T_LB, &self.0.lb_name(internal))
    }
    fn pip(&self, rg: &str, name: &str) -> String {
        res_id(&self.0.sub, rg, arm::T_PIP, name)
    }
    fn nsg(&self) -> String {
        res_id(&self.0.sub, &self.0.rg, T_NSG, &self.0.nsg)
    }
    fn vnet(&self) -> String {
        res_id(&self.0.sub, &self.0.rg, arm::T_VNET, &self.0.vnet)
    }
    fn subnet(&self, name: &str) -> String {
        format!("{}/subnets/{name}", self.vnet())
    }
    fn vmss(&self, vmss: &str) -> String {
        res_id(&self.0.sub, &self.0.rg, T_VMSS, vmss)
    }
    fn vm(&self, name: &str) -> String {
        res_id(&self.0.sub, &self.0.rg, arm::T_VM, name)
    }
    fn nic(&self, name: &str) -> String {
        res_id(&self.0.sub, &self.0.rg, arm::T_NIC, name)
    }
    fn pool(&self, k: PoolKey) -> String {
        format!(
            "{}/backendAddressPools/{}",
            self.lb(k.internal),
            self.0.pool_name(k)
        )
    }
    /// The ip configuration a NIC-based pool lists for a node (domain.md §3.4).
    fn member(&self, n: &Node, ipv6: bool) -> String {
        match &n.kind {
            NodeKind::Vmss { vmss, instance, .. } => format!(
                "{}/virtualMachines/{instance}/networkInterfaces/{vmss}/ipConfigurations/{}",
                self.vmss(vmss),
                if ipv6 { "ipconfigv6" } else { "ipconfig1" }
            ),
            _ => format!(
                "{}/ipConfigurations/ipconfig1",
                self.nic(&format!("{}-nic", n.name))
            ),
        }
    }
    fn provider_id(&self, n: &Node) -> String {
        // The resource group in a providerID is lowercased (domain.md §3.3).
        let rg = self.0.rg.to_lowercase();
        match &n.kind {
            NodeKind::Vmss { vmss, instance, .. } => format!(
                "azure:///subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines/{instance}",
                self.0.sub
            ),
            _ => format!(
                "azure:///subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{}",
                self.0.sub, n.name
            ),
        }
    }
}

/// One load balancer being assembled; back-references are filled in at the end.
struct Lb {
    id: String,
    fips: Vec<Value>,
    rules: Vec<Value>,
    probes: Vec<Value>,
    pools: Vec<Value>,
    outbound: Vec<Value>,
    disable_snat: bool,
}

impl Lb {
    fn new(id: String, disable_snat: bool) -> Lb {
        Lb {
            id,
            fips: Vec::new(),
            rules: Vec::new(),
            probes: Vec::new(),
            pools: Vec::new(),
            outbound: Vec::new(),
            disable_snat,
        }
    }
    fn child(&self, kind: &str, name: &str) -> String {
        format!("{}/{kind}/{name}", self.id)
    }
    fn add_fip(&mut self, rng: &mut ChaCha8Rng, name: &str, props: Value) -> String {
        let id = self.child("frontendIPConfigurations", name);
        self.fips.push(json!({
            "name": name,
            "id": id,
            "etag": etag(rng),
            "type": "Microsoft.Network/loadBalancers/frontendIPConfigurations",
            "properties": props,
        }));
        id
    }
    fn add_probe(&mut self, rng: &mut ChaCha8Rng, name: &str, http: bool, port: u16) -> String {
        let id = self.child("probes", name);
        let mut p = json!({
            "provisioningState": "Succeeded",
            "protocol": if http { "Http" } else { "Tcp" },
            "port": port,
            "intervalInSeconds": 5,
            "numberOfProbes": 2,
            "probeThreshold": 2,
        });
        if http {
            p["requestPath"] = json!("/healthz");
        }
        self.probes.push(json!({
            "name": name,
            "id": id,
            "etag": etag(rng),
            "type": "Microsoft.Network/loadBalancers/probes",
            "properties": p,
        }));
        id
    }
    #[allow(clippy::too_many_arguments)]
    fn add_rule(
        &mut self,
        rng: &mut ChaCha8Rng,
        name: &str,
        fip: &str,
        pool: &str,
        probe: Option<&str>,
        proto: &str,
        port: u16,
    ) -> String {
        let id = self.child("loadBalancingRules", name);
        let pool_id = self.child("backendAddressPools", pool);
        let tcp = proto == "TCP";
        let mut p = json!({
            "provisioningState": "Succeeded",
            "frontendIPConfiguration": {"id": self.child("frontendIPConfigurations", fip)},
            "backendAddressPool": {"id": pool_id},
            "backendAddressPools": [{"id": pool_id}],
            "protocol": if tcp { "Tcp" } else { "Udp" },
            "loadDistribution": "Default",
            "frontendPort": port,
            "backendPort": port,
            "idleTimeoutInMinutes": 4,
            "enableFloatingIP": true,
            "enableTcpReset": tcp,
            "disableOutboundSnat": self.disable_snat,
            "enableConnectionTracking": false,
        });
        if let Some(pr) = probe {
            p["probe"] = json!({"id": self.child("probes", pr)});
        }
        self.rules.push(json!({
            "name": name,
            "id": id,
            "etag": etag(rng),
            "type": "Microsoft.Network/loadBalancers/loadBalancingRules",
            "properties": p,
        }));
        id
    }

    /// The rules and probes the provider makes for one Service on one frontend
    /// (`getExpectedLBRules`, domain.md §1.4–1.5). Returns `(rule ids, probe ids)`.
    fn add_service_rules(&mut self, rng: &mut ChaCha8Rng, r: RuleSet) -> (Vec<String>, Vec<String>) {
        let (mut rules, mut probes) = (Vec::new(), Vec::new());
        let local_probe = r.local_hcnp.and_then(|h| {
            let name = rule_name(r.base, r.subnet, "TCP", h, r.v6);
            if r.probe_missing {
                return None;
            }
            probes.push(self.add_probe(rng, &name, true, r.probe_wrong.unwrap_or(h)));
            Some(name)
        });
        let mut first_tcp = true;
        for p in r.ports {
            let name = rule_name(r.base, r.subnet, p.proto, p.port, r.v6);
            let probe = if r.local_hcnp.is_some() {
                local_probe.clone()
            } else if p.proto == "TCP" {
                let first = std::mem::replace(&mut first_tcp, false);
                if first && r.probe_missing {
                    None
                } else {
                    let port = if first {
                        r.probe_wrong.unwrap_or(p.node_port)
                    } else {
                        p.node_port
                    };
                    probes.push(self.add_probe(rng, &name, false, port));
                    Some(name.clone())
                }
            } else {
                // UDP (and SCTP) ports get no probe with the Cluster policy.
                None
            };
            rules.push(self.add_rule(rng, &name, r.fip, r.pool, probe.as_deref(), p.proto, p.port));
        }
        (rules, probes)
    }

    /// The LB with `loadBalancingRules` back-references on frontends, pools and probes.
    fn finish(mut self, rng: &mut ChaCha8Rng, name: &str, location: &str, tags: Option<Value>) -> Value {
        let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &self.rules {
            let rid = r["id"].as_str().unwrap_or_default().to_string();
            for ptr in [
                "/properties/frontendIPConfiguration/id",
                "/properties/probe/id",
                "/properties/backendAddressPool/id",
            ] {
                if let Some(t) = r.pointer(ptr).and_then(Value::as_str) {
                    refs.entry(t.to_string()).or_default().push(rid.clone());
                }
            }
        }
        for list in [&mut self.fips, &mut self.probes, &mut self.pools] {
            for x in list.iter_mut() {
                let id = x["id"].as_str().unwrap_or_default().to_string();
                if let Some(rs) = refs.get(&id) {
                    x["properties"]["loadBalancingRules"] = arm::id_refs(rs);
                }
            }
        }
        let mut v = json!({
            "name": name,
            "id": self.id,
            "etag": etag(rng),
            "type": T_LB,
            "location": location,
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": uuid(rng),
                "frontendIPConfigurations": self.fips,
                "backendAddressPools": self.pools,
                "loadBalancingRules": self.rules,
                "probes": self.probes,
                "inboundNatRules": [],
                "outboundRules": self.outbound,
                "inboundNatPools": [],
            },
        });
        if let Some(t) = tags {
            v["tags"] = t;
        }
        v
    }
}

struct RuleSet<'a> {
    base: &'a str,
    subnet: Option<&'a str>,
    ports: &'a [Port],
    local_hcnp: Option<u16>,
    v6: bool,
    fip: &'a str,
    pool: &'a str,
    probe_missing: bool,
    probe_wrong: Option<u16>,
}

impl<'a> RuleSet<'a> {
    fn plain(base: &'a str, subnet: Option<&'a str>, ports: &'a [Port], fip: &'a str, pool: &'a str) -> Self {
        RuleSet {
            base,
            subnet,
            ports,
            local_hcnp: None,
            v6: false,
            fip,
            pool,
            probe_missing: false,
            probe_wrong: None,
        }
    }
}

/// Renders one cluster: ARM resources into `sink`, Kubernetes lists and the cloud config under
/// `root/k8s/<cluster>/`.
pub fn render_cluster(
    c: &Cluster,
    rng: &mut ChaCha8Rng,
    sink: &mut Sink,
    truth: &mut Truth,
    env: &Env,
    root: &Path,
) -> io::Result<()> {
    let ids = Ids(c);
    let cl = Some(c.name.as_str());
    let loc = c.location.as_str();
    let sub = c.sub.as_str();

    // ---- Public IPs -------------------------------------------------------------------------
    let mut pips: Vec<Value> = Vec::new();
    let cn = c.cluster_name.as_str();
    let ext_fip = |name: &str| format!("{}/frontendIPConfigurations/{name}", ids.lb(false));
    let tags_for = |keys: &[String], legacy: bool, dns: Option<&str>| -> Map<String, Value> {
        let mut t = Map::new();
        let (svc_key, cl_key, dns_key) = if legacy {
            (
                "service",
                "kubernetes-cluster-name",
                "kubernetes-dns-label-service",
            )
        } else {
            (
                "k8s-azure-service",
                "k8s-azure-cluster-name",
                "k8s-azure-dns-label-service",
            )
        };
        t.insert(svc_key.into(), json!(keys.join(",")));
        t.insert(cl_key.into(), json!(cn));
        if let Some(d) = dns {
            t.insert(dns_key.into(), json!(d));
        }
        t
    };
    let mut twin_lookalikes = 0;
    for s in &c.services {
        if s.internal {
            continue;
        }
        let owns_dns = !matches!(s.defect, Some(SvcDefect::DnsConflict { owner: false }));
        let dns = s.dns_label.as_deref().filter(|_| owns_dns);
        match (&s.pip, &s.pending) {
            (_, Some(Pending::MissingIp(_))) => {}
            (_, Some(Pending::MismatchName { pip, rg })) | (_, Some(Pending::MismatchIp { pip, rg, .. })) => {
                let ip = match &s.pending {
                    Some(Pending::MismatchIp { ip, .. }) => ip.clone(),
                    _ => s.ip4.clone(),
                };
                pips.push(arm::pip(
                    rng,
                    PipSpec {
                        rg,
                        ..pip_spec(c, pip, &ip, None, None)
                    },
                ));
            }
            (Some(PipKind::Generated { rg }), pending) => {
                let mut keys = vec![s.key()];
                keys.extend(s.tag_extra.iter().cloned());
                let name = pip_name(cn, &s.base, false);
                let attached = pending.is_none().then(|| ext_fip(&s.base));
                pips.push(arm::pip(
                    rng,
                    PipSpec {
                        rg,
                        dns_label: dns,
                        ..pip_spec(
                            c,
                            &name,
                            &s.ip4,
                            Some(tags_for(&keys, s.legacy_tags, dns.map(|_| s.key()).as_deref())),
                            attached,
                        )
                    },
                ));
                let id = ids.pip(rg, &name);
                if s.legacy_tags {
                    truth.lookalike("legacy-tag-keys-live-service-pip", &id);
                }
                if dns.is_some() && s.protected {
                    truth.lookalike("dns-label-live-service-pip", &id);
                }
                if rg != &c.rg {
                    truth.lookalike("pip-in-annotation-resource-group", &id);
                }
                if !s.tag_extra.is_empty() {
                    truth.lookalike("pip-tagged-with-live-and-other-services", &id);
                }
                if c.twin && pending.is_none() && s.defect.is_none() && twin_lookalikes < 3 {
                    twin_lookalikes += 1;
                    truth.lookalike("pip-of-same-named-cluster-other-rg", &id);
                }
                if let (Some(ip6), true) = (&s.ip6, pending.is_none()) {
                    let name6 = pip_name(cn, &s.base, true);
                    let mut spec = pip_spec(
                        c,
                        &name6,
                        ip6,
                        Some(tags_for(&keys, false, None)),
                        Some(ext_fip(&fip_name(&s.base, None, true))),
                    );
                    spec.ipv6 = true;
                    spec.rg = rg;
                    pips.push(arm::pip(rng, spec));
                    truth.lookalike("dual-stack-ipv6-pip", &ids.pip(rg, &name6));
                }
            }
            (Some(PipKind::ByoName(name)), _) | (Some(PipKind::ByoIp(name)), _) => {
                let mut user = Map::new();
                user.insert("owner".into(), json!("platform-team"));
                pips.push(arm::pip(
                    rng,
                    pip_spec(c, name, &s.ip4, Some(user), Some(ext_fip(&s.base))),
                ));
                let kind = if matches!(s.pip, Some(PipKind::ByoName(_))) {
                    "byo-pip-by-name-in-use"
                } else {
                    "byo-pip-by-ip-in-use"
                };
                truth.lookalike(kind, &ids.pip(&c.rg, name));
            }
            (Some(PipKind::Pinned { .. }), _) | (None, _) => {}
        }
    }
    for g in &c.ghosts {
        match &g.pip {
            Some(GhostPip::Tagged { attached, legacy }) => {
                let name = pip_name(cn, &g.base, false);
                let at = attached.then(|| ext_fip(&g.base));
                let keys = vec![format!("{}/{}", g.ns, g.name)];
                pips.push(arm::pip(
                    rng,
                    pip_spec(c, &name, &g.ip4, Some(tags_for(&keys, *legacy, None)), at),
                ));
                truth.finding("orphaned-public-ip", &ids.pip(&c.rg, &name), cl);
            }
            Some(GhostPip::Byo(name)) => {
                pips.push(arm::pip(
                    rng,
                    pip_spec(c, name, &g.ip4, None, Some(ext_fip(&g.base))),
                ));
            }
            None => {}
        }
    }
    let natgw_id = res_id(sub, &c.rg, T_NATGW, &format!("{}-natgw", c.name));
    let prefix_id = res_id(sub, &c.rg, T_PREFIX, &format!("{}-prefix", c.name));
    for lp in &c.loose_pips {
        let id = ids.pip(&c.rg, &lp.name);
        let mut spec = pip_spec(c, &lp.name, &lp.ip, None, None);
        match &lp.kind {
            LooseKind::Unattached => {
                let mut t = Map::new();
                t.insert("createdBy".into(), json!("az-cli"));
                spec.tags = Some(t);
                truth.finding("unattached-public-ip", &id, cl);
            }
            LooseKind::NatGateway => {
                spec.nat_gateway = Some(natgw_id.clone());
                truth.lookalike("nat-gateway-pip", &id);
            }
            LooseKind::Prefix => {
                spec.prefix = Some(prefix_id.clone());
                truth.lookalike("public-ip-prefix-pip", &id);
            }
            LooseKind::OtherCluster { cluster, service } => {
                let mut t = Map::new();
                t.insert("k8s-azure-service".into(), json!(service));
                t.insert("k8s-azure-cluster-name".into(), json!(cluster));
                spec.tags = Some(t);
                if let Some((other, fip, _)) = &c.foreign_lb {
                    spec.attached_to = Some(format!(
                        "{}/frontendIPConfigurations/{fip}",
                        res_id(sub, &c.rg, T_LB, other)
                    ));
                }
                truth.lookalike("pip-of-other-cluster-in-shared-resource-group", &id);
            }
        }
        pips.push(arm::pip(rng, spec));
    }

    // ---- Load balancers ---------------------------------------------------------------------
    let aks = c.is_aks();
    let mut ext = Lb::new(ids.lb(false), aks);
    let pool4 = c.pool_name(PoolKey {
        internal: false,
        ipv6: false,
    });
    let pool6 = c.pool_name(PoolKey {
        internal: false,
        ipv6: true,
    });
    let mut outbound_pip = None;
    if aks {
        // AKS outbound: GUID-named frontend and PIP, `aksOutboundBackendPool`, `aksOutboundRule`
        // (domain.md §1.2 "AKS specifics").
        let guid = uuid(rng);
        let pip_name_o = uuid(rng);
        let ip = format!(
            "20.{}.{}.{}",
            100 + c.idx % 100,
            rng.gen_range(0..255),
            rng.gen_range(1..255)
        );
        let pip_id = ids.pip(&c.rg, &pip_name_o);
        let fip_id = ext.add_fip(
            rng,
            &guid,
            json!({
                "provisioningState": "Succeeded",
                "privateIPAllocationMethod": "Dynamic",
                "publicIPAddress": {"id": pip_id},
                "outboundRules": [{"id": ext.child("outboundRules", "aksOutboundRule")}],
            }),
        );
        let mut t = Map::new();
        t.insert("aks-managed-cluster-name".into(), json!(c.name));
        t.insert(
            "aks-managed-cluster-rg".into(),
            json!(c.user_rg.clone().unwrap_or_default()),
        );
        t.insert("aks-managed-type".into(), json!("aks-slb-managed-outbound-ip"));
        let mut spec = pip_spec(c, &pip_name_o, &ip, Some(t), Some(fip_id.clone()));
        spec.rg = &c.rg;
        outbound_pip = Some(arm::pip(rng, spec));
        let ob_pool = ext.child("backendAddressPools", "aksOutboundBackendPool");
        ext.outbound.push(json!({
            "name": "aksOutboundRule",
            "id": ext.child("outboundRules", "aksOutboundRule"),
            "etag": etag(rng),
            "type": "Microsoft.Network/loadBalancers/outboundRules",
            "properties": {
                "provisioningState": "Succeeded",
                "allocatedOutboundPorts": 0,
                "protocol": "All",
                "enableTcpReset": true,
                "idleTimeoutInMinutes": 30,
                "backendAddressPool": {"id": ob_pool},
                "frontendIPConfigurations": [{"id": fip_id}],
            },
        }));
        truth.lookalike("aks-outbound-frontend", &fip_id);
        truth.lookalike("aks-outbound-pip", &pip_id);
        truth.lookalike("aks-outbound-backend-pool", &ob_pool);
    }
    let mut int = Lb::new(ids.lb(true), false);
    let by_idx = |i: usize| &c.services[i];
    for s in c.services.iter().filter(|s| s.has_frontend()) {
        let (probe_missing, probe_wrong) = match s.defect {
            Some(SvcDefect::ProbeMissing) => (true, None),
            Some(SvcDefect::ProbeWrongPort(p)) => (false, Some(p)),
            _ => (false, None),
        };
        let lb = if s.internal { &mut int } else { &mut ext };
        let fname = match s.pip {
            Some(PipKind::Pinned { primary }) => by_idx(primary).base.clone(),
            _ => fip_name(&s.base, s.subnet.as_deref(), false),
        };
        if !matches!(s.pip, Some(PipKind::Pinned { .. })) {
            let props = if s.internal {
                let sn = s.subnet.clone().unwrap_or_else(|| c.subnet.clone());
                json!({
                    "provisioningState": "Succeeded",
                    "privateIPAddress": s.ip4,
                    "privateIPAllocationMethod": "Dynamic",
                    "privateIPAddressVersion": "IPv4",
                    "subnet": {"id": ids.subnet(&sn)},
                })
            } else {
                json!({
                    "provisioningState": "Succeeded",
                    "privateIPAllocationMethod": "Dynamic",
                    "publicIPAddress": {"id": ids.pip(&pip_rg(c, s), &pip_resource_name(c, s))},
                })
            };
            let id = lb.add_fip(rng, &fname, props);
            if s.subnet.is_some() && s.protected {
                truth.lookalike("internal-subnet-frontend-live-service", &id);
            }
            if !s.tag_extra.is_empty() {
                truth.lookalike("frontend-shared-with-second-service", &id);
            }
        }
        let pool = if s.internal {
            c.pool_name(PoolKey {
                internal: true,
                ipv6: false,
            })
        } else {
            pool4.clone()
        };
        let (rules, probes) = lb.add_service_rules(
            rng,
            RuleSet {
                local_hcnp: s.local_hcnp,
                probe_missing,
                probe_wrong,
                ..RuleSet::plain(&s.base, s.subnet.as_deref(), &s.ports, &fname, &pool)
            },
        );
        if s.protected {
            if matches!(s.pip, Some(PipKind::Pinned { .. })) {
                for r in &rules {
                    truth.lookalike("rule-of-second-service-on-shared-frontend", r);
                }
            }
            if s.local_hcnp.is_some() {
                for p in &probes {
                    truth.lookalike("health-check-node-port-probe-live-service", p);
                }
            }
            for (p, r) in s.ports.iter().zip(&rules) {
                if p.proto == "UDP" {
                    truth.lookalike("udp-rule-without-probe", r);
                }
            }
        }
        if s.ip6.is_some() {
            let f6 = fip_name(&s.base, None, true);
            let id = lb.add_fip(
                rng,
                &f6,
                json!({
                    "provisioningState": "Succeeded",
                    "privateIPAllocationMethod": "Dynamic",
                    "publicIPAddress": {"id": ids.pip(&pip_rg(c, s), &pip_name(cn, &s.base, true))},
                }),
            );
            truth.lookalike("dual-stack-ipv6-frontend", &id);
            let (rules6, _) = lb.add_service_rules(
                rng,
                RuleSet {
                    v6: true,
                    ..RuleSet::plain(&s.base, None, &s.ports, &f6, &pool6)
                },
            );
            for r in rules6 {
                truth.lookalike("dual-stack-ipv6-rule", &r);
            }
        }
        if let Some(SvcDefect::StalePort(p)) = &s.defect {
            let (rules, probes) = lb.add_service_rules(
                rng,
                RuleSet::plain(
                    &s.base,
                    s.subnet.as_deref(),
                    std::slice::from_ref(p),
                    &fname,
                    &pool,
                ),
            );
            for id in rules.iter().chain(&probes) {
                truth.finding("orphaned-lb-rule", id, cl);
            }
        }
    }
    for g in &c.ghosts {
        let lb = if g.internal { &mut int } else { &mut ext };
        let pool = if g.internal {
            c.pool_name(PoolKey {
                internal: true,
                ipv6: false,
            })
        } else {
            pool4.clone()
        };
        if let Some(primary) = g.on_primary {
            let fname = by_idx(primary).base.clone();
            let (rules, probes) =
                lb.add_service_rules(rng, RuleSet::plain(&g.base, None, &g.ports, &fname, &pool));
            for id in rules.iter().chain(&probes) {
                truth.finding("orphaned-lb-rule", id, cl);
            }
            continue;
        }
        if !g.fip {
            continue;
        }
        let fname = fip_name(&g.base, g.subnet.as_deref(), false);
        let props = if g.internal {
            let sn = g.subnet.clone().unwrap_or_else(|| c.subnet.clone());
            json!({
                "provisioningState": "Succeeded",
                "privateIPAddress": g.ip4,
                "privateIPAllocationMethod": "Dynamic",
                "privateIPAddressVersion": "IPv4",
                "subnet": {"id": ids.subnet(&sn)},
            })
        } else {
            let pip = match &g.pip {
                Some(GhostPip::Byo(n)) => n.clone(),
                _ => pip_name(cn, &g.base, false),
            };
            json!({
                "provisioningState": "Succeeded",
                "privateIPAllocationMethod": "Dynamic",
                "publicIPAddress": {"id": ids.pip(&c.rg, &pip)},
            })
        };
        let id = lb.add_fip(rng, &fname, props);
        truth.finding("orphaned-lb-frontend", &id, cl);
        // Its rules and probes go with it: not reported on their own (rule-catalogue.md).
        lb.add_service_rules(
            rng,
            RuleSet::plain(&g.base, g.subnet.as_deref(), &g.ports, &fname, &pool),
        );
    }

    // Pools.
    for k in c.pools() {
        let pool = pool_json(c, &ids, k, rng, truth);
        if k.internal { &mut int } else { &mut ext }.pools.push(pool);
    }
    if aks {
        let members: Vec<String> = c
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Vmss { .. }) && n.instance_exists)
            .map(|n| ids.member(n, false))
            .collect();
        let id = ext.child("backendAddressPools", "aksOutboundBackendPool");
        ext.pools
            .push(nic_pool_json(rng, &id, "aksOutboundBackendPool", &members));
    }
    let lb_tags = aks.then(|| {
        json!({"aks-managed-cluster-name": c.name, "aks-managed-cluster-rg": c.user_rg.clone().unwrap_or_default()})
    });
    let mut lbs = vec![(ext, false)];
    if c.has_internal_lb() {
        lbs.push((int, true));
    }
    for (lb, internal) in lbs {
        let max_pool = lb
            .pools
            .iter()
            .map(|p| {
                let n1 = p
                    .pointer("/properties/backendIPConfigurations")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let n2 = p
                    .pointer("/properties/loadBalancerBackendAddresses")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                n1.max(n2)
            })
            .max()
            .unwrap_or(0);
        let (nf, nr) = (lb.fips.len(), lb.rules.len());
        let id = lb.id.clone();
        if pressured(nf, LB_FIP_LIMIT) || pressured(nr, LB_RULE_LIMIT) || pressured(max_pool, LB_POOL_LIMIT) {
            truth.finding("quota-pressure", &id, cl);
        }
        let v = lb.finish(rng, &c.lb_name(internal), loc, lb_tags.clone());
        sink.push(sub, "loadBalancers", loc, &v)?;
    }
    if let Some((other, fip, _)) = &c.foreign_lb {
        let mut lb = Lb::new(res_id(sub, &c.rg, T_LB, other), false);
        let pip = c
            .loose_pips
            .iter()
            .find(|p| matches!(p.kind, LooseKind::OtherCluster { .. }))
            .map(|p| ids.pip(&c.rg, &p.name))
            .unwrap_or_default();
        let id = lb.add_fip(
            rng,
            fip,
            json!({
                "provisioningState": "Succeeded",
                "privateIPAllocationMethod": "Dynamic",
                "publicIPAddress": {"id": pip},
            }),
        );
        truth.lookalike("frontend-on-lb-of-other-cluster", &id);
        let v = lb.finish(rng, other, loc, None);
        sink.push(sub, "loadBalancers", loc, &v)?;
    }
    if let Some(p) = outbound_pip {
        pips.push(p);
    }

    // ---- Jumpboxes (Basic SKU PIPs), NAT gateway, prefix --------------------------------------
    let created = |days: u32| env.timestamp(days);
    for j in &c.jumpboxes {
        let pip_n = format!("{}-pip", j.name);
        let nic_n = format!("{}-nic", j.name);
        let nic_id = ids.nic(&nic_n);
        let mut spec = pip_spec(
            c,
            &pip_n,
            &j.pip_ip,
            None,
            Some(format!("{nic_id}/ipConfigurations/ipconfig1")),
        );
        spec.basic = true;
        pips.push(arm::pip(rng, spec));
        truth.finding("basic-sku-retired", &ids.pip(&c.rg, &pip_n), cl);
        let nic = arm::nic(
            rng,
            NicSpec {
                sub,
                rg: &c.rg,
                name: &nic_n,
                location: loc,
                ip: &j.ip4,
                subnet_id: &ids.subnet(&c.subnet),
                vm_id: Some(ids.vm(&j.name)),
                pools: Vec::new(),
                pip_id: Some(ids.pip(&c.rg, &pip_n)),
            },
        );
        sink.push(sub, "networkInterfaces", loc, &nic)?;
        let vm = arm::vm(
            rng,
            VmSpec {
                sub,
                rg: &c.rg,
                name: &j.name,
                location: loc,
                size: "Standard_B2s",
                nic_id: &nic_id,
                avset_id: None,
                created: &created(700),
                tags: Some(json!({"role": "jumpbox"})),
            },
        );
        sink.push(sub, "virtualMachines", loc, &vm)?;
    }
    for p in &pips {
        sink.push(sub, "publicIPAddresses", loc, p)?;
    }
    for lp in &c.loose_pips {
        match lp.kind {
            LooseKind::NatGateway => {
                let v = json!({
                    "name": format!("{}-natgw", c.name), "id": natgw_id, "etag": etag(rng), "type": T_NATGW,
                    "location": loc, "sku": {"name": "Standard"},
                    "properties": {"provisioningState": "Succeeded", "resourceGuid": uuid(rng), "idleTimeoutInMinutes": 4,
                                   "publicIpAddresses": [{"id": ids.pip(&c.rg, &lp.name)}]},
                });
                sink.push(sub, "natGateways", loc, &v)?;
            }
            LooseKind::Prefix => {
                let v = json!({
                    "name": format!("{}-prefix", c.name), "id": prefix_id, "etag": etag(rng), "type": T_PREFIX,
                    "location": loc, "sku": {"name": "Standard", "tier": "Regional"},
                    "properties": {"provisioningState": "Succeeded", "resourceGuid": uuid(rng), "prefixLength": 31,
                                   "publicIPAddressVersion": "IPv4", "ipPrefix": format!("{}/31", lp.ip),
                                   "publicIPAddresses": [{"id": ids.pip(&c.rg, &lp.name)}]},
                });
                sink.push(sub, "publicIPPrefixes", loc, &v)?;
            }
            _ => {}
        }
    }

    // ---- NSG --------------------------------------------------------------------------------
    render_nsg(c, &ids, rng, sink, truth)?;

    // ---- Compute, network, groups -----------------------------------------------------------
    render_compute(c, &ids, rng, sink, env)?;
    let nsg_on_subnet = (!aks).then(|| ids.nsg());
    let net = c.net;
    let mut subnets = vec![
        (
            c.subnet.as_str(),
            format!("10.{net}.0.0/17"),
            nsg_on_subnet.clone(),
        ),
        (c.ilb_subnet.as_str(), format!("10.{net}.240.0/20"), nsg_on_subnet),
    ];
    if aks {
        subnets.push(("virtual-node-aci", format!("10.{net}.192.0/20"), None));
    }
    let vnet = arm::vnet(
        rng,
        sub,
        &c.rg,
        &c.vnet,
        loc,
        &format!("10.{net}.0.0/16"),
        &subnets,
    );
    sink.push(sub, "virtualNetworks", loc, &vnet)?;
    let mut groups = vec![(c.rg.clone(), None, None)];
    if let Some(u) = &c.user_rg {
        let mc_id = res_id(sub, u, "Microsoft.ContainerService/managedClusters", &c.name);
        groups[0].1 = Some(mc_id.clone());
        groups[0].2 = Some(json!({"aks-managed-cluster-name": c.name, "aks-managed-cluster-rg": u}));
        groups.push((u.clone(), None, Some(json!({"env": c.name}))));
        let mc = json!({
            "id": mc_id, "name": c.name, "type": "Microsoft.ContainerService/managedClusters", "location": loc,
            "sku": {"name": "Base", "tier": "Standard"},
            "properties": {
                "provisioningState": "Succeeded", "kubernetesVersion": env.k8s_version, "nodeResourceGroup": c.rg,
                "networkProfile": {"networkPlugin": "azure", "networkPluginMode": "overlay", "loadBalancerSku": "standard",
                                   "outboundType": "loadBalancer",
                                   "loadBalancerProfile": {"backendPoolType": "NodeIPConfiguration", "managedOutboundIPs": {"count": 1}},
                                   "ipFamilies": if c.dual_stack { json!(["IPv4", "IPv6"]) } else { json!(["IPv4"]) }},
                "identityProfile": {"kubeletidentity": {"clientId": c.client_id}},
            },
        });
        sink.push(sub, "managedClusters", loc, &mc)?;
    }
    groups.push((c.pip_rg.clone(), None, None));
    groups.push((c.shared_rg.clone(), None, Some(json!({"owner": "network-team"}))));
    for (rg, managed_by, tags) in groups {
        let v = arm::resource_group(sub, &rg, loc, managed_by.as_deref(), tags);
        sink.push(sub, "resourceGroups", loc, &v)?;
    }

    super::kube::render_k8s(c, rng, truth, env, root)
}

fn pip_rg(c: &Cluster, s: &Svc) -> String {
    match &s.pip {
        Some(PipKind::Generated { rg }) => rg.clone(),
        _ => c.rg.clone(),
    }
}

fn pip_resource_name(c: &Cluster, s: &Svc) -> String {
    match &s.pip {
        Some(PipKind::ByoName(n)) | Some(PipKind::ByoIp(n)) => n.clone(),
        _ => pip_name(&c.cluster_name, &s.base, false),
    }
}

fn pip_spec<'a>(
    c: &'a Cluster,
    name: &'a str,
    ip: &'a str,
    tags: Option<Map<String, Value>>,
    attached_to: Option<String>,
) -> PipSpec<'a> {
    PipSpec {
        sub: &c.sub,
        rg: &c.rg,
        name,
        location: &c.location,
        ip,
        ipv6: false,
        basic: false,
        tags,
        attached_to,
        nat_gateway: None,
        prefix: None,
        dns_label: None,
    }
}

fn nic_pool_json(rng: &mut ChaCha8Rng, id: &str, name: &str, members: &[String]) -> Value {
    let mut p = json!({"provisioningState": "Succeeded"});
    if !members.is_empty() {
        p["backendIPConfigurations"] = arm::id_refs(members);
        // ARM echoes NIC members as addresses with a GUID name and no IP (domain.md §3.4).
        p["loadBalancerBackendAddresses"] = Value::Array(
            members
                .iter()
                .map(|m| json!({"name": uuid(rng), "properties": {"networkInterfaceIPConfiguration": {"id": m}}}))
                .collect(),
        );
    }
    json!({
        "name": name,
        "id": id,
        "etag": etag(rng),
        "type": "Microsoft.Network/loadBalancers/backendAddressPools",
        "properties": p,
    })
}

fn pool_json(c: &Cluster, ids: &Ids, k: PoolKey, rng: &mut ChaCha8Rng, truth: &mut Truth) -> Value {
    let id = ids.pool(k);
    let name = c.pool_name(k);
    let cl = Some(c.name.as_str());
    let defect = c.pool_defects.get(&k);
    let nodes: Vec<&Node> = if defect == Some(&PoolDefect::Empty) {
        Vec::new()
    } else {
        c.nodes.iter().filter(|n| n.in_pool(k)).collect()
    };
    match defect {
        Some(PoolDefect::Empty) => truth.finding("empty-backend-pool", &id, cl),
        Some(PoolDefect::Stale) => truth.finding("stale-backend-pool-member", &id, cl),
        None => {}
    }
    if c.flavor == Flavor::SelfManagedIpPools {
        let vnet = json!({"id": ids.vnet()});
        let mut addrs: Vec<Value> = nodes
            .iter()
            .map(|n| json!({"name": n.name, "properties": {"ipAddress": n.ip4, "virtualNetwork": vnet}}))
            .collect();
        if defect == Some(&PoolDefect::Stale) {
            // An address of a node deleted long ago: no node has it.
            addrs.push(json!({"name": format!("{}-worker-99", c.name), "properties": {"ipAddress": stale_ip(c), "virtualNetwork": vnet}}));
        }
        if defect.is_none() {
            truth.lookalike("ip-based-backend-pool", &id);
        }
        let mut p = json!({"provisioningState": "Succeeded", "virtualNetwork": vnet});
        if !addrs.is_empty() {
            p["loadBalancerBackendAddresses"] = Value::Array(addrs);
        }
        return json!({
            "name": name, "id": id, "etag": etag(rng),
            "type": "Microsoft.Network/loadBalancers/backendAddressPools", "properties": p,
        });
    }
    let mut members: Vec<String> = nodes.iter().map(|n| ids.member(n, k.ipv6)).collect();
    if defect == Some(&PoolDefect::Stale) {
        members.push(stale_member(c, ids, k.ipv6));
    }
    nic_pool_json(rng, &id, &name, &members)
}

/// A private address in a range the planner never hands out (10.<net>.65.0/24).
fn stale_ip(c: &Cluster) -> String {
    format!("10.{}.65.{}", c.net, 10 + c.idx % 200)
}

/// The ip configuration of a VMSS instance or NIC that no longer exists.
fn stale_member(c: &Cluster, ids: &Ids, ipv6: bool) -> String {
    match c.nodes.iter().find_map(|n| match &n.kind {
        NodeKind::Vmss { vmss, .. } => Some(vmss.clone()),
        _ => None,
    }) {
        Some(vmss) => format!(
            "{}/virtualMachines/{}/networkInterfaces/{vmss}/ipConfigurations/{}",
            ids.vmss(&vmss),
            c.nodes.len() + 90,
            if ipv6 { "ipconfigv6" } else { "ipconfig1" }
        ),
        None => format!(
            "{}/ipConfigurations/ipconfig1",
            ids.nic(&format!("{}-worker-99-nic", c.name))
        ),
    }
}

fn render_nsg(
    c: &Cluster,
    ids: &Ids,
    rng: &mut ChaCha8Rng,
    sink: &mut Sink,
    truth: &mut Truth,
) -> io::Result<()> {
    let nsg_id = ids.nsg();
    let cl = Some(c.name.as_str());
    let mut rules: Vec<Value> = Vec::new();
    if !c.is_aks() {
        let r = arm::security_rule(
            rng,
            RuleSpec {
                nsg_id: &nsg_id,
                name: "AllowSSHFromCorp",
                priority: 100,
                access: "Allow",
                protocol: "Tcp",
                source: "203.0.113.0/24",
                destinations: vec!["*".into()],
                ports: vec!["22".into()],
            },
        );
        truth.lookalike("user-nsg-rule", r["id"].as_str().unwrap_or_default());
        rules.push(r);
    }
    // User deny rules (priority below the provider's 500) that block a Service.
    let mut deny_prio = 300;
    for s in &c.services {
        if let (Some(SvcDefect::NsgBlock { deny_rule: true }), true) = (&s.defect, s.has_frontend()) {
            let p = &s.ports[0];
            rules.push(arm::security_rule(
                rng,
                RuleSpec {
                    nsg_id: &nsg_id,
                    name: &format!("DenyInbound-{}-{}", s.ns, s.name),
                    priority: deny_prio,
                    access: "Deny",
                    protocol: if p.proto == "UDP" { "Udp" } else { "Tcp" },
                    source: "Internet",
                    destinations: vec![s.ip4.clone()],
                    ports: vec![p.port.to_string()],
                },
            ));
            deny_prio += 1;
        }
    }
    let mut prio = 500;
    // Legacy per-Service rules (before v1.29) of live Services and of deleted ones.
    let legacy: Vec<(&str, &Port, &str, bool)> = c
        .services
        .iter()
        .filter(|s| s.legacy_tags && s.has_frontend())
        .flat_map(|s| {
            s.ports
                .iter()
                .map(move |p| (s.base.as_str(), p, s.ip4.as_str(), false))
        })
        .chain(
            c.ghosts
                .iter()
                .filter(|g| g.nsg == Some(GhostNsg::Legacy))
                .map(|g| (g.base.as_str(), &g.ports[0], g.ip4.as_str(), true)),
        )
        .collect();
    for (base, p, ip, stale) in legacy {
        let name = legacy_nsg_rule_name(base, p.proto, p.port, "Internet");
        let r = arm::security_rule(
            rng,
            RuleSpec {
                nsg_id: &nsg_id,
                name: &name,
                priority: prio,
                access: "Allow",
                protocol: if p.proto == "UDP" { "Udp" } else { "Tcp" },
                source: "Internet",
                destinations: vec![ip.to_string()],
                ports: vec![p.port.to_string()],
            },
        );
        let id = r["id"].as_str().unwrap_or_default().to_string();
        if stale {
            truth.finding("orphaned-nsg-rule", &id, cl);
        } else {
            truth.lookalike("legacy-nsg-rule-live-service", &id);
        }
        rules.push(r);
        prio += 1;
    }
    // Consolidated rules (v1.29+): one per (family, protocol, source, ports), destinations grow.
    struct Group {
        ipv6: bool,
        proto: &'static str,
        ports: Vec<u16>,
        ips: Vec<String>,
        stale: bool,
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut add = |ipv6: bool, ports: &[Port], ip: &str, stale: bool| {
        for proto in ["TCP", "UDP"] {
            let ps: Vec<u16> = ports
                .iter()
                .filter(|p| p.proto == proto)
                .map(|p| p.port)
                .collect();
            if ps.is_empty() {
                continue;
            }
            let sorted = sorted_port_strings(&ps);
            let pos = groups
                .iter()
                .position(|g| g.ipv6 == ipv6 && g.proto == proto && sorted_port_strings(&g.ports) == sorted);
            let g = match pos {
                Some(i) => &mut groups[i],
                None => {
                    groups.push(Group {
                        ipv6,
                        proto,
                        ports: ps.clone(),
                        ips: Vec::new(),
                        stale: false,
                    });
                    groups.last_mut().expect("pushed")
                }
            };
            g.ips.push(ip.to_string());
            g.stale |= stale;
        }
    };
    for s in &c.services {
        let blocked = matches!(s.defect, Some(SvcDefect::NsgBlock { deny_rule: false }));
        if s.internal || !s.has_frontend() || blocked {
            continue;
        }
        add(false, &s.ports, &s.ip4, false);
        if let Some(ip6) = &s.ip6 {
            add(true, &s.ports, ip6, false);
        }
    }
    for g in &c.ghosts {
        if g.nsg == Some(GhostNsg::Consolidated) {
            add(false, &g.ports, &g.ip4, true);
        }
    }
    for g in groups {
        let proto = if g.proto == "UDP" { "Udp" } else { "Tcp" };
        let name = nsg_allow_rule_name(proto, g.ipv6, &["Internet"], &g.ports);
        let mut ips = g.ips.clone();
        ips.sort();
        ips.dedup();
        let r = arm::security_rule(
            rng,
            RuleSpec {
                nsg_id: &nsg_id,
                name: &name,
                priority: prio,
                access: "Allow",
                protocol: proto,
                source: "Internet",
                destinations: ips,
                ports: sorted_port_strings(&g.ports),
            },
        );
        if g.stale {
            truth.finding("orphaned-nsg-rule", r["id"].as_str().unwrap_or_default(), cl);
        }
        rules.push(r);
        prio += 1;
    }
    let dests: usize = rules
        .iter()
        .map(|r| {
            let many = r
                .pointer("/properties/destinationAddressPrefixes")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let one = usize::from(r.pointer("/properties/destinationAddressPrefix").is_some());
            many + one
        })
        .sum();
    // Every rule here has one source prefix, so sources = rules.
    let sources = rules.len();
    if pressured(rules.len(), NSG_RULE_LIMIT)
        || pressured(dests, NSG_ADDR_LIMIT)
        || pressured(sources, NSG_ADDR_LIMIT)
    {
        truth.finding("quota-pressure", &nsg_id, cl);
    }
    let mut props = json!({
        "provisioningState": "Succeeded",
        "resourceGuid": uuid(rng),
        "securityRules": rules,
        "defaultSecurityRules": arm::default_security_rules(rng, &nsg_id),
    });
    if !c.is_aks() {
        props["subnets"] = json!([{"id": ids.subnet(&c.subnet)}, {"id": ids.subnet(&c.ilb_subnet)}]);
    }
    let v = json!({
        "name": c.nsg, "id": nsg_id, "etag": etag(rng), "type": T_NSG, "location": c.location,
        "properties": props,
    });
    sink.push(&c.sub, "networkSecurityGroups", &c.location, &v)
}

/// Pool ids a node's primary ip configuration references (only pools that list it back).
fn node_pools(c: &Cluster, ids: &Ids, n: &Node, ipv6: bool) -> Vec<String> {
    if c.flavor == Flavor::SelfManagedIpPools {
        return Vec::new();
    }
    let mut v: Vec<String> = c
        .pools()
        .into_iter()
        .filter(|k| k.ipv6 == ipv6 && n.in_pool(*k) && c.pool_defects.get(k) != Some(&PoolDefect::Empty))
        .map(|k| ids.pool(k))
        .collect();
    if c.is_aks() && !ipv6 && n.instance_exists {
        v.push(format!(
            "{}/backendAddressPools/aksOutboundBackendPool",
            ids.lb(false)
        ));
    }
    v
}

fn render_compute(
    c: &Cluster,
    ids: &Ids,
    rng: &mut ChaCha8Rng,
    sink: &mut Sink,
    env: &Env,
) -> io::Result<()> {
    let (sub, loc) = (c.sub.as_str(), c.location.as_str());
    if c.is_aks() {
        let mut scale_sets: BTreeMap<String, (String, Vec<&Node>)> = BTreeMap::new();
        for n in &c.nodes {
            if let NodeKind::Vmss { vmss, pool, .. } = &n.kind {
                let e = scale_sets
                    .entry(vmss.clone())
                    .or_insert_with(|| (pool.clone(), Vec::new()));
                if n.instance_exists {
                    e.1.push(n);
                }
            }
        }
        let model_pools = |ipv6: bool| -> Vec<String> {
            let mut v: Vec<String> = c
                .pools()
                .into_iter()
                .filter(|k| k.ipv6 == ipv6 && c.pool_defects.get(k) != Some(&PoolDefect::Empty))
                .map(|k| ids.pool(k))
                .collect();
            if !ipv6 {
                v.push(format!(
                    "{}/backendAddressPools/aksOutboundBackendPool",
                    ids.lb(false)
                ));
            }
            v
        };
        let nsg = json!({"id": ids.nsg()});
        let ipconfigs = |pools4: Vec<String>, pools6: Vec<String>| -> Value {
            let mut v = vec![json!({"name": "ipconfig1", "properties": {
                "subnet": {"id": ids.subnet(&c.subnet)}, "primary": true, "privateIPAddressVersion": "IPv4",
                "loadBalancerBackendAddressPools": arm::id_refs(&pools4)}})];
            if c.dual_stack {
                v.push(json!({"name": "ipconfigv6", "properties": {
                    "subnet": {"id": ids.subnet(&c.subnet)}, "primary": false, "privateIPAddressVersion": "IPv6",
                    "loadBalancerBackendAddressPools": arm::id_refs(&pools6)}}));
            }
            Value::Array(v)
        };
        for (vmss, (pool, nodes)) in &scale_sets {
            let vmss_id = ids.vmss(vmss);
            let nic_cfg = |ipc: Value| {
                json!([{"name": vmss, "properties": {
                "primary": true, "enableAcceleratedNetworking": true, "enableIPForwarding": true,
                "networkSecurityGroup": nsg, "dnsSettings": {"dnsServers": []}, "ipConfigurations": ipc}}])
            };
            let v = json!({
                "name": vmss, "id": vmss_id, "type": T_VMSS, "location": loc, "etag": "\"1\"",
                "sku": {"name": "Standard_D4s_v3", "tier": "Standard", "capacity": nodes.len()},
                "tags": {"aks-managed-poolName": pool, "aks-managed-orchestrator": format!("Kubernetes:{}", env.k8s_version)},
                "zones": ["1", "2", "3"],
                "properties": {
                    "singlePlacementGroup": false, "orchestrationMode": "Uniform",
                    "upgradePolicy": {"mode": "Manual"},
                    "virtualMachineProfile": {
                        "osProfile": {"computerNamePrefix": vmss, "adminUsername": "azureuser",
                                      "linuxConfiguration": {"disablePasswordAuthentication": true, "provisionVMAgent": true}},
                        "storageProfile": {"osDisk": {"osType": "Linux", "createOption": "FromImage", "caching": "ReadOnly",
                                                       "managedDisk": {"storageAccountType": "Premium_LRS"}, "diskSizeGB": 128}},
                        "networkProfile": {"networkInterfaceConfigurations": nic_cfg(ipconfigs(model_pools(false), model_pools(true)))},
                    },
                    "provisioningState": "Succeeded", "overprovision": false, "uniqueId": uuid(rng),
                    "platformFaultDomainCount": 1, "timeCreated": env.timestamp(400),
                },
            });
            sink.push(sub, "virtualMachineScaleSets", loc, &v)?;
            for n in nodes {
                let NodeKind::Vmss { instance, .. } = &n.kind else {
                    continue;
                };
                let vm_id = format!("{vmss_id}/virtualMachines/{instance}");
                let nic_id = format!("{vm_id}/networkInterfaces/{vmss}");
                let (p4, p6) = (node_pools(c, ids, n, false), node_pools(c, ids, n, true));
                let latest = p4 == model_pools(false) && (!c.dual_stack || p6 == model_pools(true));
                let computer = format!("{vmss}{}", super::model::base36_6(*instance));
                let v = json!({
                    "name": format!("{vmss}_{instance}"), "id": vm_id,
                    "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines", "location": loc,
                    "instanceId": instance.to_string(), "zones": [n.zone.to_string()],
                    "sku": {"name": "Standard_D4s_v3", "tier": "Standard"}, "etag": "\"1\"",
                    "properties": {
                        "latestModelApplied": latest, "vmId": uuid(rng), "hardwareProfile": {"vmSize": "Standard_D4s_v3"},
                        "osProfile": {"computerName": computer, "adminUsername": "azureuser",
                                      "linuxConfiguration": {"disablePasswordAuthentication": true, "provisionVMAgent": true},
                                      "secrets": [], "allowExtensionOperations": true, "requireGuestProvisionSignal": true},
                        "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
                        "networkProfileConfiguration": {"networkInterfaceConfigurations": nic_cfg(ipconfigs(p4.clone(), p6.clone()))},
                        "provisioningState": "Succeeded", "timeCreated": env.timestamp(n.days),
                    },
                });
                sink.push(sub, "virtualMachineScaleSetVMs", loc, &v)?;
                // The VMSS NIC, as the Network RP's VMSS NIC API returns it (no `type`, as in the
                // spec example VmssNetworkInterfaceList).
                let mut ipcs = vec![
                    json!({"name": "ipconfig1", "id": format!("{nic_id}/ipConfigurations/ipconfig1"),
                    "properties": {"provisioningState": "Succeeded", "privateIPAddress": n.ip4, "privateIPAllocationMethod": "Dynamic",
                                   "subnet": {"id": ids.subnet(&c.subnet)}, "primary": true, "privateIPAddressVersion": "IPv4",
                                   "loadBalancerBackendAddressPools": arm::id_refs(&p4)}}),
                ];
                if let Some(ip6) = &n.ip6 {
                    ipcs.push(json!({"name": "ipconfigv6", "id": format!("{nic_id}/ipConfigurations/ipconfigv6"),
                        "properties": {"provisioningState": "Succeeded", "privateIPAddress": ip6, "privateIPAllocationMethod": "Dynamic",
                                       "subnet": {"id": ids.subnet(&c.subnet)}, "primary": false, "privateIPAddressVersion": "IPv6",
                                       "loadBalancerBackendAddressPools": arm::id_refs(&p6)}}));
                }
                let nic = json!({"name": vmss, "id": nic_id, "properties": {
                    "provisioningState": "Succeeded", "ipConfigurations": ipcs,
                    "dnsSettings": {"dnsServers": [], "appliedDnsServers": []}, "macAddress": format!("00-22-48-{:02X}-{:02X}-{:02X}", c.net, instance / 256 % 256, instance % 256),
                    "enableAcceleratedNetworking": true, "enableIPForwarding": true, "networkSecurityGroup": nsg,
                    "primary": true, "virtualMachine": {"id": vm_id}}});
                sink.push(sub, "virtualMachineScaleSetNetworkInterfaces", loc, &nic)?;
            }
        }
        return Ok(());
    }
    let mut avsets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in c.nodes.iter().filter(|n| n.instance_exists && !n.is_virtual()) {
        let as_name = if n.control_plane {
            format!("{}-control-plane-as", c.name)
        } else {
            format!("{}-agents-as", c.name)
        };
        let as_id = res_id(&c.sub, &c.rg, T_AVSET, &as_name);
        let nic_name = format!("{}-nic", n.name);
        let nic = arm::nic(
            rng,
            NicSpec {
                sub,
                rg: &c.rg,
                name: &nic_name,
                location: loc,
                ip: &n.ip4,
                subnet_id: &ids.subnet(&c.subnet),
                vm_id: Some(ids.vm(&n.name)),
                pools: node_pools(c, ids, n, false),
                pip_id: None,
            },
        );
        sink.push(sub, "networkInterfaces", loc, &nic)?;
        let vm = arm::vm(
            rng,
            VmSpec {
                sub,
                rg: &c.rg,
                name: &n.name,
                location: loc,
                size: "Standard_D4s_v5",
                nic_id: &ids.nic(&nic_name),
                avset_id: Some(as_id),
                created: &env.timestamp(n.days),
                tags: Some(json!({"kubernetes.io-cluster": c.name})),
            },
        );
        sink.push(sub, "virtualMachines", loc, &vm)?;
        avsets
            .entry(as_name)
            .or_default()
            .push(ids.vm(&n.name).to_uppercase());
    }
    for (name, vms) in avsets {
        let v = json!({
            "name": name, "id": res_id(&c.sub, &c.rg, T_AVSET, &name), "type": T_AVSET, "location": loc,
            "sku": {"name": "Aligned"},
            "properties": {"platformUpdateDomainCount": 5, "platformFaultDomainCount": 2, "virtualMachines": arm::id_refs(&vms)},
        });
        sink.push(sub, "availabilitySets", loc, &v)?;
    }
    Ok(())
}

/// Helpers the Kubernetes renderer shares.
pub fn provider_id(c: &Cluster, n: &Node) -> String {
    Ids(c).provider_id(n)
}

pub fn ghost_key(g: &Ghost) -> String {
    format!("{}/{}", g.ns, g.name)
}

pub fn config_json(c: &Cluster, tenant: &str) -> Value {
    let mut v = json!({
        "cloud": "AzurePublicCloud",
        "tenantId": tenant,
        "subscriptionId": c.sub,
        "resourceGroup": c.rg,
        "location": c.location,
        "vnetName": c.vnet,
        "vnetResourceGroup": c.rg,
        "subnetName": c.subnet,
        "securityGroupName": c.nsg,
        "securityGroupResourceGroup": c.rg,
        "routeTableName": format!("{}-routetable", c.nsg.trim_end_matches("-nsg")),
        "loadBalancerSku": "standard",
        "excludeMasterFromStandardLB": true,
        "cloudProviderBackoff": true,
        "cloudProviderBackoffRetries": 6,
        "cloudProviderBackoffExponent": 1.5,
        "cloudProviderBackoffDuration": 5,
        "cloudProviderBackoffJitter": 1,
        "cloudProviderRateLimit": true,
        "cloudProviderRateLimitQPS": 10,
        "cloudProviderRateLimitBucket": 100,
        "cloudProviderRateLimitQPSWrite": 10,
        "cloudProviderRateLimitBucketWrite": 100,
        "useInstanceMetadata": true,
    });
    match c.flavor {
        Flavor::Aks => {
            v["vmType"] = json!("vmss");
            v["primaryScaleSetName"] = json!(format!("aks-nodepool1-{}-vmss", c.digits));
            v["useManagedIdentityExtension"] = json!(true);
            v["userAssignedIdentityID"] = json!(c.client_id);
        }
        _ => {
            v["vmType"] = json!("standard");
            v["primaryAvailabilitySetName"] = json!(format!("{}-agents-as", c.name));
            v["aadClientId"] = json!(c.client_id);
            v["aadClientSecret"] = json!("<redacted>");
            v["useManagedIdentityExtension"] = json!(false);
            v["loadBalancerBackendPoolConfigurationType"] =
                json!(if c.flavor == Flavor::SelfManagedIpPools {
                    "nodeIP"
                } else {
                    "nodeIPConfiguration"
                });
        }
    }
    match c.config_defect {
        Some(ConfigDefect::ManagedIdentityWithSecret) => {
            v["useManagedIdentityExtension"] = json!(true);
            v["aadClientId"] = json!(c.client_id);
            v["aadClientSecret"] = json!("<redacted>");
        }
        Some(ConfigDefect::RateLimitOff) => v["cloudProviderRateLimit"] = json!(false),
        Some(ConfigDefect::InstanceMetadataOff) => v["useInstanceMetadata"] = json!(false),
        None => {}
    }
    v
}

/// The `kube-system/azure-cloud-provider` Secret holding the (redacted) cloud config.
pub fn config_secret(config: &Value, env: &Env, rng: &mut ChaCha8Rng) -> Value {
    let text = serde_json::to_string_pretty(config).unwrap_or_default();
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "azure-cloud-provider", "namespace": "kube-system", "uid": uuid(rng),
                     "creationTimestamp": env.timestamp(400), "resourceVersion": rng.gen_range(1000..99999).to_string()},
        "data": {"cloud-config": base64::engine::general_purpose::STANDARD.encode(text)},
    })
}
