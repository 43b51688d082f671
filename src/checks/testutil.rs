//! Test builders for rule tests: small inline worlds in raw ARM / Kubernetes JSON, turned into an
//! [`Inventory`] by the same path offline audits take (`World::from_files` →
//! `snapshot::inventory_from_world`), so a rule test also exercises the conversion.
//!
//! Test-only (`#[cfg(test)]`); generic on purpose (world builder plus JSON makers for Services,
//! nodes, pods, EndpointSlices, LBs, PIPs, NSGs, usages) so every rule file can share it. It must
//! never reach a network or the file system.

// Shared by both rule sets: not every builder is used by every rule.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::{Value, json};

use super::{Context, Finding};
use crate::inventory::Inventory;

pub const SUB: &str = "00000000-0000-0000-0000-00000000000a";
pub const SUB2: &str = "00000000-0000-0000-0000-00000000000b";
/// The default cluster: name `c1`, cluster-name tag `kubernetes`, resource group `mc_rg`.
pub const CLUSTER: &str = "c1";
pub const CLUSTER_TAG: &str = "kubernetes";
pub const RG: &str = "mc_rg";
pub const LOCATION: &str = "westeurope";

/// ARM id `/subscriptions/<sub>/resourceGroups/<rg>/providers/<type>/<name>`.
pub fn arm_id(sub: &str, rg: &str, type_: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{type_}/{name}")
}

/// Sets `v[path[0]][path[1]]... = value`, creating objects on the way. Paths are key lists (not
/// JSON pointers) because annotation keys contain `/`.
pub fn set(v: &mut Value, path: &[&str], value: Value) {
    let mut cur = v;
    for (i, k) in path.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(o) = cur.as_object_mut() else { return };
        if i + 1 == path.len() {
            o.insert((*k).to_string(), value);
            return;
        }
        cur = o.entry((*k).to_string()).or_insert_with(|| json!({}));
    }
}

/// Builder of an inline world.
#[derive(Default)]
pub struct WorldBuilder {
    files: Vec<(PathBuf, Vec<u8>)>,
    clusters: Vec<Value>,
    subscriptions: Vec<String>,
    gaps: Vec<Value>,
    n: usize,
}

impl WorldBuilder {
    /// An empty world with subscription [`SUB`] and cluster [`CLUSTER`] (tag [`CLUSTER_TAG`],
    /// resource group [`RG`]).
    pub fn new() -> Self {
        WorldBuilder::default()
            .subscription(SUB)
            .cluster(CLUSTER, CLUSTER_TAG, SUB, RG)
    }

    /// An empty world without clusters or subscriptions.
    pub fn bare() -> Self {
        WorldBuilder::default()
    }

    pub fn subscription(mut self, s: &str) -> Self {
        self.subscriptions.push(s.to_string());
        self
    }

    pub fn cluster(mut self, name: &str, tag: &str, sub: &str, rg: &str) -> Self {
        self.clusters.push(json!({
            "name": name, "cluster_name_tag": tag, "subscription_id": sub, "resource_group": rg
        }));
        self
    }

    fn file(&mut self, path: String, v: &Value) {
        self.n += 1;
        self.files
            .push((PathBuf::from(path), serde_json::to_vec(v).unwrap_or_default()));
    }

    /// ARM resources, written as one list page.
    pub fn arm(mut self, items: Vec<Value>) -> Self {
        let path = format!("arm/f{}.json", self.n);
        self.file(path, &json!({ "value": items }));
        self
    }

    /// Kubernetes objects of a cluster, written as a `List`.
    pub fn k8s(mut self, cluster: &str, items: Vec<Value>) -> Self {
        let path = format!("k8s/{cluster}/f{}.json", self.n);
        self.file(
            path,
            &json!({ "kind": "List", "apiVersion": "v1", "items": items }),
        );
        self
    }

    /// The cluster's cloud config (`k8s/<cluster>/azure.json`).
    pub fn cloud_config(mut self, cluster: &str, cfg: Value) -> Self {
        self.file(format!("k8s/{cluster}/azure.json"), &cfg);
        self
    }

    /// A gap recorded in `world.json`, e.g. `json!({"scope": "kubernetes", "cluster": "c1",
    /// "kind": "pods", "cause": "403"})`.
    pub fn gap(mut self, g: Value) -> Self {
        self.gaps.push(g);
        self
    }

    pub fn inventory(mut self) -> Inventory {
        let subs: Vec<Value> = self.subscriptions.iter().map(|s| json!({ "id": s })).collect();
        let meta = json!({
            "subscriptions": subs,
            "clusters": self.clusters,
            "gaps": self.gaps,
        });
        self.file("world.json".into(), &meta);
        let world = azaudit_world::World::from_files(self.files);
        crate::snapshot::inventory_from_world(&world)
    }
}

/// Runs one check over an inventory (no call statistics: an offline audit).
pub fn run(inv: &Inventory, check: fn(&Context, &mut Vec<Finding>)) -> Vec<Finding> {
    let ctx = Context::new(inv);
    let mut out = Vec::new();
    check(&ctx, &mut out);
    out
}

/// `(resource)` of each finding, for compact assertions.
pub fn resources(f: &[Finding]) -> Vec<String> {
    f.iter().map(|f| f.resource.clone()).collect()
}

/// `k8s://<cluster>/<ns>/services/<name>`.
pub fn svc_ref(cluster: &str, ns: &str, name: &str) -> String {
    format!("k8s://{cluster}/{ns}/services/{name}")
}

/// A UID whose base name is `a` + `hex` repeated (e.g. `uid('1')` → base `a1111…`).
pub fn uid(hex: char) -> String {
    let h: String = std::iter::repeat_n(hex, 32).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A Service of type LoadBalancer with ports `(protocol, port, nodePort)` and ingress IPs.
pub fn lb_service(ns: &str, name: &str, uid: &str, ports: &[(&str, u32, u32)], ingress: &[&str]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(proto, port, node_port)| {
            json!({"name": format!("p{port}"), "protocol": proto, "port": port, "targetPort": port, "nodePort": node_port})
        })
        .collect();
    let ingress: Vec<Value> = ingress.iter().map(|ip| json!({ "ip": ip })).collect();
    json!({
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "uid": uid, "annotations": {}},
        "spec": {"type": "LoadBalancer", "ports": ports, "externalTrafficPolicy": "Cluster",
                 "ipFamilies": ["IPv4"], "clusterIP": "10.0.0.10"},
        "status": {"loadBalancer": {"ingress": ingress}}
    })
}

/// Sets an annotation on a Kubernetes object.
pub fn annotate(mut v: Value, key: &str, value: &str) -> Value {
    set(&mut v, &["metadata", "annotations", key], json!(value));
    v
}

/// Sets a label on a Kubernetes object.
pub fn label(mut v: Value, key: &str, value: &str) -> Value {
    set(&mut v, &["metadata", "labels", key], json!(value));
    v
}

/// A node with an Azure VM providerID in [`SUB`]/[`RG`] and an InternalIP.
pub fn node(name: &str, ip: &str) -> Value {
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"providerID": format!("azure://{}", arm_id(SUB, RG, "Microsoft.Compute/virtualMachines", name))},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

/// An EndpointSlice of a Service with one endpoint per entry of `ready` (`None`: no condition).
pub fn endpoint_slice(ns: &str, name: &str, service: &str, ready: &[Option<bool>]) -> Value {
    let eps: Vec<Value> = ready
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut e = json!({"addresses": [format!("10.244.0.{}", i + 1)]});
            if let Some(r) = r {
                set(&mut e, &["conditions", "ready"], json!(r));
            }
            e
        })
        .collect();
    json!({
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": eps
    })
}

/// A pod with a phase and a Ready condition.
pub fn pod(ns: &str, name: &str, phase: &str, ready: bool) -> Value {
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "labels": {}},
        "status": {"phase": phase,
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                   "containerStatuses": [{"name": "c", "ready": ready, "restartCount": 0,
                                          "state": if ready { json!({"running": {}}) } else { json!({"waiting": {"reason": "CrashLoopBackOff"}}) }}]}
    })
}

/// A Standard public IP in `sub`/`rg` with an address and tags.
pub fn public_ip(sub: &str, rg: &str, name: &str, ip: &str, tags: Value) -> Value {
    json!({
        "id": arm_id(sub, rg, "Microsoft.Network/publicIPAddresses", name),
        "name": name,
        "type": "Microsoft.Network/publicIPAddresses",
        "location": LOCATION,
        "sku": {"name": "Standard"},
        "tags": tags,
        "properties": {"ipAddress": ip, "publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"}
    })
}

/// Attaches a PIP to an ip configuration (`properties.ipConfiguration.id`).
pub fn attach(mut pip: Value, ip_config_id: &str) -> Value {
    set(
        &mut pip,
        &["properties", "ipConfiguration"],
        json!({ "id": ip_config_id }),
    );
    pip
}

/// A DNS label on a PIP.
pub fn with_dns_label(mut pip: Value, label: &str) -> Value {
    set(
        &mut pip,
        &["properties", "dnsSettings"],
        json!({ "domainNameLabel": label }),
    );
    pip
}

/// A load balancer under construction: add frontends, rules, probes, pools, then [`Lb::json`].
pub struct Lb {
    pub id: String,
    pub name: String,
    sku: String,
    frontends: Vec<Value>,
    rules: Vec<Value>,
    probes: Vec<Value>,
    pools: Vec<Value>,
}

impl Lb {
    /// A Standard LB in [`SUB`]/[`RG`].
    pub fn new(name: &str) -> Lb {
        Lb::in_group(SUB, RG, name)
    }

    pub fn in_group(sub: &str, rg: &str, name: &str) -> Lb {
        Lb {
            id: arm_id(sub, rg, "Microsoft.Network/loadBalancers", name),
            name: name.to_string(),
            sku: "Standard".into(),
            frontends: Vec::new(),
            rules: Vec::new(),
            probes: Vec::new(),
            pools: Vec::new(),
        }
    }

    pub fn sku(mut self, sku: &str) -> Lb {
        self.sku = sku.to_string();
        self
    }

    pub fn child_id(&self, kind: &str, name: &str) -> String {
        format!("{}/{kind}/{name}", self.id)
    }

    /// A frontend with a public IP (by id) or a private IP.
    pub fn frontend(mut self, name: &str, public_ip_id: Option<&str>, private_ip: Option<&str>) -> Lb {
        let mut props = json!({});
        if let Some(p) = public_ip_id {
            set(&mut props, &["publicIPAddress"], json!({ "id": p }));
        }
        if let Some(ip) = private_ip {
            set(&mut props, &["privateIPAddress"], json!(ip));
        }
        self.frontends.push(
            json!({"id": self.child_id("frontendIPConfigurations", name), "name": name, "properties": props}),
        );
        self
    }

    /// A load-balancing rule on a frontend, optionally referencing a probe by name.
    pub fn rule(mut self, name: &str, frontend: &str, proto: &str, port: u32, probe: Option<&str>) -> Lb {
        let mut props = json!({
            "frontendIPConfiguration": {"id": self.child_id("frontendIPConfigurations", frontend)},
            "protocol": proto, "frontendPort": port, "backendPort": port, "enableFloatingIP": true
        });
        if let Some(p) = probe {
            set(
                &mut props,
                &["probe"],
                json!({ "id": self.child_id("probes", p) }),
            );
        }
        self.rules.push(
            json!({"id": self.child_id("loadBalancingRules", name), "name": name, "properties": props}),
        );
        self
    }

    /// A health probe.
    pub fn probe(mut self, name: &str, proto: &str, port: u32) -> Lb {
        let mut props = json!({"protocol": proto, "port": port, "intervalInSeconds": 5, "numberOfProbes": 2});
        if proto.eq_ignore_ascii_case("Http") {
            set(&mut props, &["requestPath"], json!("/healthz"));
        }
        self.probes
            .push(json!({"id": self.child_id("probes", name), "name": name, "properties": props}));
        self
    }

    /// An empty backend pool.
    pub fn pool(mut self, name: &str) -> Lb {
        self.pools
            .push(json!({"id": self.child_id("backendAddressPools", name), "name": name, "properties": {}}));
        self
    }

    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Network/loadBalancers",
            "location": LOCATION,
            "sku": {"name": self.sku},
            "properties": {
                "frontendIPConfigurations": self.frontends,
                "loadBalancingRules": self.rules,
                "probes": self.probes,
                "backendAddressPools": self.pools,
            }
        })
    }
}

/// A network usages row.
pub fn usage(sub: &str, location: &str, name: &str, current: f64, limit: f64) -> Value {
    json!({
        "id": format!("/subscriptions/{sub}/providers/Microsoft.Network/locations/{location}/usages/{name}"),
        "name": {"value": name, "localizedValue": name},
        "currentValue": current,
        "limit": limit,
        "unit": "Count"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_round_trips_through_the_snapshot_converter() {
        let lb = Lb::new(CLUSTER_TAG)
            .frontend(
                "fe",
                Some(&arm_id(SUB, RG, "Microsoft.Network/publicIPAddresses", "p")),
                None,
            )
            .probe("pr", "Tcp", 30000)
            .rule("r", "fe", "Tcp", 80, Some("pr"));
        let inv = WorldBuilder::new()
            .arm(vec![lb.json(), public_ip(SUB, RG, "p", "20.0.0.1", json!({}))])
            .k8s(
                CLUSTER,
                vec![
                    lb_service("ns", "s", &uid('1'), &[("TCP", 80, 30000)], &["20.0.0.1"]),
                    node("n0", "10.0.0.4"),
                    endpoint_slice("ns", "s-x", "s", &[Some(true), None]),
                    pod("kube-system", "p", "Running", true),
                ],
            )
            .inventory();
        assert_eq!(inv.load_balancers.len(), 1);
        assert_eq!(
            inv.load_balancers[0].rules[0].probe_id.as_deref(),
            Some(lb.child_id("probes", "pr").as_str())
        );
        assert_eq!(inv.public_ips.len(), 1);
        let c = &inv.clusters[0];
        assert_eq!(
            (c.name.as_str(), c.resource_group.as_deref()),
            (CLUSTER, Some(RG))
        );
        assert_eq!(c.services[0].ports[0].node_port, Some(30000));
        assert_eq!(c.endpoint_slices[0].ready_endpoints, 2);
        assert_eq!(c.pods.len(), 1);
        assert_eq!(c.nodes.len(), 1);
        assert!(inv.gaps.is_empty(), "{:?}", inv.gaps);
    }

    #[test]
    fn uid_gives_a_predictable_base_name() {
        assert_eq!(
            crate::conventions::base_name(&uid('b')),
            format!("a{}", "b".repeat(31))
        );
    }
}
