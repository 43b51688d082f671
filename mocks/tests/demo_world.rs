//! The hand-written demo world (`mocks/worlds/demo`), the estate `azaudit demo` serves and audits.
//!
//! These tests keep the world honest: it loads without a single problem, its answer key
//! (`expected-findings.json`) plants exactly one example of every rule of the catalogue
//! (`docs/rule-catalogue.md` in shared/) and names only objects that exist, the healthy part of
//! the estate is consistent (every live Service has its frontend, rules, ready endpoints and NSG
//! allow rule; tagged PIPs and NSG destinations point at live Services), and the mock serves it
//! over HTTPS.
//!
//! They check the data, not the audit: they must not grow into a second implementation of the
//! rules (azaudit's own tests run the real checks against this same answer key).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use azaudit_mocks::{ServeOptions, start};
use azaudit_world::{ResourceId, USAGE_TYPE, World, id_key};
use serde_json::Value;

/// Every rule id of `docs/rule-catalogue.md`, in its order.
const RULES: &[&str] = &[
    "orphaned-public-ip",
    "unattached-public-ip",
    "orphaned-lb-frontend",
    "orphaned-lb-rule",
    "orphaned-nsg-rule",
    "empty-backend-pool",
    "node-missing-from-backend-pool",
    "stale-backend-pool-member",
    "node-not-registered-with-cloud",
    "node-instance-not-found",
    "virtual-node-not-excluded",
    "service-pending-load-balancer",
    "service-pip-resource-group-mismatch",
    "service-without-ready-endpoints",
    "nsg-blocks-service-port",
    "lb-health-probe-mismatch",
    "dns-label-conflict",
    "quota-pressure",
    "basic-sku-retired",
    "cloud-config-invalid",
    "arm-read-budget-low",
    "aks-tunnel-unhealthy",
];

/// Measured during an audit from ARM's rate-limit headers; no world file can hold it.
const NOT_PLANTABLE: &str = "arm-read-budget-low";

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("worlds/demo")
}

fn load() -> World {
    World::load(&demo_dir()).expect("the demo world directory exists")
}

#[derive(Debug)]
struct Expected {
    rule: String,
    resource: String,
    cluster: Option<String>,
}

fn expected() -> Vec<Expected> {
    let text = std::fs::read_to_string(demo_dir().join("expected-findings.json")).expect("read answer key");
    let v: Value = serde_json::from_str(&text).expect("expected-findings.json is JSON");
    v.as_array()
        .expect("expected-findings.json is an array")
        .iter()
        .map(|f| {
            let o = f.as_object().expect("each finding is an object");
            for k in o.keys() {
                assert!(
                    ["rule", "resource", "cluster"].contains(&k.as_str()),
                    "unexpected key {k} in {f}"
                );
            }
            Expected {
                rule: o["rule"].as_str().expect("rule").to_string(),
                resource: o["resource"].as_str().expect("resource").to_string(),
                cluster: o.get("cluster").map(|c| c.as_str().expect("cluster").to_string()),
            }
        })
        .collect()
}

/// The answer key as a set, to ask whether an object is a planted problem.
struct Planted(BTreeSet<(String, String)>);

impl Planted {
    fn load() -> Planted {
        Planted(expected().into_iter().map(|f| (f.rule, f.resource)).collect())
    }

    fn is(&self, rule: &str, resource: &str) -> bool {
        self.0.contains(&(rule.to_string(), resource.to_string()))
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

fn array_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    let mut cur = v;
    for p in path {
        match cur.get(*p) {
            Some(x) => cur = x,
            None => return &[],
        }
    }
    cur.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Finds an object with this `id` (case-insensitive) anywhere inside `v`: sub-resources such as
/// frontend IP configurations or NSG rules live inside their parent resource.
fn find_by_id<'a>(v: &'a Value, id: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => {
            if o.get("id")
                .and_then(Value::as_str)
                .is_some_and(|x| id_key(x) == id_key(id))
            {
                return Some(v);
            }
            o.values().find_map(|x| find_by_id(x, id))
        }
        Value::Array(a) => a.iter().find_map(|x| find_by_id(x, id)),
        _ => None,
    }
}

/// Resolves an ARM id to its object: a resource, a usage row, or a sub-resource of the nearest
/// enclosing resource in the world (a VMSS NIC's IP configuration lives in the NIC, which is
/// itself nested under the scale set's id).
fn arm_object(w: &World, id: &str) -> Option<Value> {
    ResourceId::parse(id)?;
    let mut prefix = id.trim_end_matches('/');
    loop {
        if let Some(r) = w.get(prefix) {
            return find_by_id(&r.value(), id).cloned();
        }
        // Drop the last `/<type>/<name>` pair.
        let cut = prefix.rfind('/')?;
        prefix = &prefix[..prefix[..cut].rfind('/')?];
        if !prefix.to_ascii_lowercase().contains("/providers/") {
            return None;
        }
    }
}

/// `k8s://<cluster>/<namespace>/<plural>/<name>` or `k8s://<cluster>/<plural>/<name>`.
fn k8s_object<'a>(w: &'a World, reference: &str) -> Option<&'a Value> {
    let rest = reference.strip_prefix("k8s://")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (cluster, ns, plural, name) = match parts.as_slice() {
        [c, p, n] => (*c, None, *p, *n),
        [c, ns, p, n] => (*c, Some(*ns), *p, *n),
        _ => return None,
    };
    let kind = match plural {
        "services" => "Service",
        "nodes" => "Node",
        "pods" => "Pod",
        "endpointslices" => "EndpointSlice",
        "secrets" => "Secret",
        _ => return None,
    };
    w.clusters.get(cluster)?.of_kind(kind).find(|o| {
        str_at(o, &["metadata", "name"]) == Some(name) && str_at(o, &["metadata", "namespace"]) == ns
    })
}

/// `"a"` + the UID without dashes, cut to 32 characters (domain.md §1.1).
fn base_name(uid: &str) -> String {
    let mut s = String::from("a");
    s.extend(uid.chars().filter(|c| *c != '-'));
    s.truncate(32);
    s
}

fn is_service_base_name(name: &str) -> bool {
    name.len() >= 32
        && name.starts_with('a')
        && name[1..32]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

fn lb_services<'a>(w: &'a World, cluster: &str) -> Vec<&'a Value> {
    w.clusters[cluster]
        .of_kind("Service")
        .filter(|s| str_at(s, &["spec", "type"]) == Some("LoadBalancer"))
        .collect()
}

fn is_internal(svc: &Value) -> bool {
    str_at(
        svc,
        &[
            "metadata",
            "annotations",
            "service.beta.kubernetes.io/azure-load-balancer-internal",
        ],
    ) == Some("true")
}

fn ingress_ips(svc: &Value) -> Vec<String> {
    array_at(svc, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| i.get("ip").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn ns_name(svc: &Value) -> String {
    format!(
        "{}/{}",
        str_at(svc, &["metadata", "namespace"]).unwrap_or_default(),
        str_at(svc, &["metadata", "name"]).unwrap_or_default()
    )
}

fn svc_ref(cluster: &str, svc: &Value) -> String {
    format!(
        "k8s://{cluster}/{}/services/{}",
        str_at(svc, &["metadata", "namespace"]).unwrap_or_default(),
        str_at(svc, &["metadata", "name"]).unwrap_or_default()
    )
}

/// One cluster as world.json describes it, with its two managed load balancers.
struct ClusterLbs {
    name: String,
    external: Value,
    internal: Value,
}

fn cluster_lbs(w: &World) -> Vec<ClusterLbs> {
    w.meta
        .clusters
        .iter()
        .map(|c| {
            let tag = c.cluster_name_tag.clone().expect("cluster_name_tag");
            let sub = c.subscription_id.as_deref().expect("subscription_id");
            let rg = c.resource_group.as_deref().expect("resource_group");
            let lb = |name: &str| {
                let id = format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/loadBalancers/{name}");
                w.get(&id).unwrap_or_else(|| panic!("managed LB {id} of {}", c.name)).value()
            };
            ClusterLbs {
                name: c.name.clone(),
                external: lb(&tag),
                internal: lb(&format!("{tag}-internal")),
            }
        })
        .collect()
}

/// The address a frontend serves: its private IP, or the address of the public IP it points at.
fn frontend_ip(w: &World, fip: &Value) -> Option<String> {
    if let Some(ip) = str_at(fip, &["properties", "privateIPAddress"]) {
        return Some(ip.to_string());
    }
    let pip = str_at(fip, &["properties", "publicIPAddress", "id"])?;
    str_at(&w.get(pip)?.value(), &["properties", "ipAddress"]).map(str::to_string)
}

#[test]
fn demo_world_loads_without_problems() {
    let w = load();
    assert!(w.problems.is_empty(), "problems: {:#?}", w.problems);
    assert!(!w.is_incomplete());
    assert_eq!(w.meta.recorded_at.as_deref(), Some("2026-11-27T03:00:00Z"));
    assert_eq!(w.meta.mock, Some(serde_json::json!({"page_size": 20})));
    let subs: Vec<&str> = w
        .meta
        .subscriptions
        .iter()
        .filter_map(|s| s.display_name.as_deref())
        .collect();
    assert_eq!(subs, ["contoso-prod", "contoso-shared"]);
    // Every resource lies in a subscription world.json declares.
    let declared: BTreeSet<String> = w.meta.subscriptions.iter().map(|s| id_key(&s.id)).collect();
    let seen: BTreeSet<String> = w.subscription_ids().iter().map(|s| id_key(s)).collect();
    assert_eq!(seen, declared);
    // Every resource is in West Europe (usage rows carry the region in their id).
    for r in w.resources.values() {
        match r.location() {
            Some(loc) => assert_eq!(loc, "westeurope", "{}", r.id),
            None => assert!(r.type_is(USAGE_TYPE), "{} has no location", r.id),
        }
    }
    let clusters: Vec<&str> = w.meta.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(clusters, ["aks-prod", "k8s-east"]);
    for c in &w.meta.clusters {
        let objs = &w.clusters[&c.name];
        for kind in ["Service", "Node", "EndpointSlice", "Pod"] {
            assert!(objs.of_kind(kind).count() > 0, "{}: no {kind}", c.name);
        }
        // The cloud config world.json names is the one the loader found.
        let found = objs.cloud_config.as_ref().map(|(p, _)| p.clone());
        assert_eq!(found, c.cloud_config.as_ref().map(PathBuf::from), "{}", c.name);
    }
    // A few dozen Services, as a real estate has.
    let lbs: usize = clusters.iter().map(|c| lb_services(&w, c).len()).sum();
    assert!((20..=40).contains(&lbs), "{lbs} LoadBalancer Services");
    // nodePorts (and healthCheckNodePorts) are unique per cluster and in 30000-32767.
    for c in clusters {
        let mut seen = BTreeSet::new();
        for svc in lb_services(&w, c) {
            let ports = array_at(svc, &["spec", "ports"]).iter().map(|p| &p["nodePort"]);
            for np in ports.chain(svc["spec"].get("healthCheckNodePort")) {
                let np = np
                    .as_u64()
                    .unwrap_or_else(|| panic!("{c} {}: nodePort", ns_name(svc)));
                assert!((30000..=32767).contains(&np), "{c}: nodePort {np}");
                assert!(seen.insert(np), "{c}: nodePort {np} used twice");
            }
        }
    }
}

#[test]
fn expected_findings_plant_every_rule_exactly_once() {
    let found = expected();
    let keys: Vec<(String, String)> = found
        .iter()
        .map(|f| (f.rule.clone(), f.resource.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        keys, sorted,
        "expected-findings.json is sorted by rule, then resource"
    );

    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &found {
        assert!(RULES.contains(&f.rule.as_str()), "unknown rule {}", f.rule);
        *count.entry(f.rule.as_str()).or_default() += 1;
    }
    for rule in RULES {
        let n = count.get(rule).copied().unwrap_or(0);
        let want = usize::from(*rule != NOT_PLANTABLE);
        assert_eq!(n, want, "{rule} planted {n} times");
    }
}

#[test]
fn expected_findings_name_existing_objects() {
    let w = load();
    let cluster_names: BTreeSet<&str> = w.meta.clusters.iter().map(|c| c.name.as_str()).collect();
    for f in expected() {
        let r = &f.resource;
        if let Some(c) = &f.cluster {
            assert!(
                cluster_names.contains(c.as_str()),
                "{}: unknown cluster {c}",
                f.rule
            );
        }
        if r.starts_with("/subscriptions/") {
            let obj = arm_object(&w, r).unwrap_or_else(|| panic!("{}: {r} is not in the world", f.rule));
            if r.to_ascii_lowercase().contains("/usages/") {
                assert!(
                    w.get(r).is_some_and(|u| u.type_is(USAGE_TYPE)),
                    "{r} is not a usage row"
                );
                let (cur, lim) = (obj["currentValue"].as_f64(), obj["limit"].as_f64());
                assert!(cur.is_some() && lim.is_some(), "{r}: usage row without numbers");
            }
        } else if let Some(rest) = r.strip_prefix("k8s://")
            && r.ends_with("/kube-system/secrets/azure-cloud-provider")
        {
            // The cluster's azure.json stands for this Secret (azaudit reads it from there live).
            let cluster = rest.split('/').next().unwrap_or_default();
            assert!(
                w.clusters.get(cluster).is_some_and(|c| c.cloud_config.is_some()),
                "{}: {cluster} has no azure.json",
                f.rule
            );
        } else if let Some(rest) = r.strip_prefix("k8s://") {
            let obj = k8s_object(&w, r).unwrap_or_else(|| panic!("{}: {r} is not in the world", f.rule));
            let cluster = rest.split('/').next().unwrap_or_default();
            assert_eq!(f.cluster.as_deref(), Some(cluster), "{}: cluster field", f.rule);
            assert!(obj.get("kind").is_some());
        } else if let Some(path) = r.strip_prefix("file://") {
            assert!(demo_dir().join(path).is_file(), "{}: {path} missing", f.rule);
            let c = f.cluster.as_deref().expect("a cloud config belongs to a cluster");
            let meta = w
                .meta
                .clusters
                .iter()
                .find(|m| m.name == c)
                .expect("cluster in world.json");
            assert_eq!(
                meta.cloud_config.as_deref(),
                Some(path),
                "{}: not {c}'s cloud config",
                f.rule
            );
        } else {
            panic!("{}: unrecognised resource reference {r}", f.rule);
        }
    }
}

#[test]
fn live_services_have_their_frontends() {
    let w = load();
    let planted = Planted::load();
    for c in cluster_lbs(&w) {
        // address -> (frontend name, on the internal LB?)
        let mut by_ip: BTreeMap<String, (String, bool)> = BTreeMap::new();
        let mut names: Vec<(String, String)> = Vec::new();
        for (lb, internal) in [(&c.external, false), (&c.internal, true)] {
            for fip in array_at(lb, &["properties", "frontendIPConfigurations"]) {
                let name = fip["name"].as_str().expect("frontend name").to_string();
                let id = fip["id"].as_str().expect("frontend id").to_string();
                let ip = frontend_ip(&w, fip).unwrap_or_else(|| panic!("{id} serves no address"));
                assert!(
                    by_ip.insert(ip.clone(), (name.clone(), internal)).is_none(),
                    "{ip} twice"
                );
                names.push((name, id));
            }
        }
        let services = lb_services(&w, &c.name);
        let mut live_bases = BTreeSet::new();
        for svc in &services {
            let uid = str_at(svc, &["metadata", "uid"]).expect("uid");
            let base = base_name(uid);
            live_bases.insert(base.clone());
            let ips = ingress_ips(svc);
            if ips.is_empty() {
                assert!(
                    planted.is("service-pending-load-balancer", &svc_ref(&c.name, svc)),
                    "{} {} has no address and is not the planted pending Service",
                    c.name,
                    ns_name(svc)
                );
                continue;
            }
            let internal = is_internal(svc);
            let ann = |k: &str| str_at(svc, &["metadata", "annotations", k]);
            for ip in &ips {
                let (fip, on_internal) = by_ip
                    .get(ip)
                    .unwrap_or_else(|| panic!("{} {}: no frontend serves {ip}", c.name, ns_name(svc)));
                assert_eq!(*on_internal, internal, "{} {}: wrong LB", c.name, ns_name(svc));
                // The owner's frontend carries its base name; a Service sharing it pins the IP.
                let pins = ann("service.beta.kubernetes.io/azure-load-balancer-ipv4") == Some(ip.as_str())
                    || ann("service.beta.kubernetes.io/azure-load-balancer-ipv6") == Some(ip.as_str())
                    || str_at(svc, &["spec", "loadBalancerIP"]) == Some(ip.as_str());
                assert!(
                    fip.starts_with(&base) || pins,
                    "{} {}: frontend {fip} is not named for {base}",
                    c.name,
                    ns_name(svc)
                );
                if ip.contains(':') && ips.len() == 2 {
                    assert_eq!(fip, &format!("{base}-IPv6"), "dual-stack IPv6 frontend name");
                }
            }
        }
        // Every port of a live Service has its rule, named `<base>-<PROTOCOL>-<port>[-IPv6]` on the
        // frontend that serves it (domain.md §1.4), and TCP rules carry a probe.
        for svc in services.iter().filter(|s| !ingress_ips(s).is_empty()) {
            let base = base_name(str_at(svc, &["metadata", "uid"]).expect("uid"));
            let internal = is_internal(svc);
            let lb = if internal { &c.internal } else { &c.external };
            let rules = array_at(lb, &["properties", "loadBalancingRules"]);
            let dual = array_at(svc, &["spec", "ipFamilies"]).len() == 2;
            for port in array_at(svc, &["spec", "ports"]) {
                for suffix in if dual { &["", "-IPv6"][..] } else { &[""][..] } {
                    let name = format!(
                        "{base}-{}-{}{suffix}",
                        port["protocol"].as_str().expect("protocol"),
                        port["port"].as_u64().expect("port")
                    );
                    let rule = rules
                        .iter()
                        .find(|r| r["name"].as_str() == Some(name.as_str()))
                        .unwrap_or_else(|| panic!("{} {}: no rule {name}", c.name, ns_name(svc)));
                    if port["protocol"] == "TCP" {
                        assert!(
                            rule["properties"]["probe"]["id"].is_string(),
                            "{name} has no probe"
                        );
                    }
                }
            }
        }
        // Frontends named for a Service belong to a live one, except the planted orphan.
        for (name, id) in names {
            if !is_service_base_name(&name) {
                continue; // e.g. the AKS outbound frontend, named by a GUID
            }
            let live = live_bases.iter().any(|b| name.starts_with(b.as_str()));
            assert!(
                live || planted.is("orphaned-lb-frontend", &id),
                "{}: unplanned orphan {id}",
                c.name
            );
        }
    }
}

#[test]
fn load_balancer_references_resolve() {
    let w = load();
    for lb in w.of_type("Microsoft.Network/loadBalancers") {
        let p = &lb.value()["properties"];
        let own: BTreeSet<String> = [
            "frontendIPConfigurations",
            "backendAddressPools",
            "loadBalancingRules",
            "probes",
            "outboundRules",
        ]
        .iter()
        .flat_map(|k| array_at(p, &[k]))
        .filter_map(|o| o["id"].as_str().map(id_key))
        .collect();
        for rule in array_at(p, &["loadBalancingRules"]) {
            for k in ["frontendIPConfiguration", "backendAddressPool", "probe"] {
                if let Some(id) = str_at(rule, &["properties", k, "id"]) {
                    assert!(
                        own.contains(&id_key(id)),
                        "{}: {k} {id} not on {}",
                        rule["name"],
                        lb.id
                    );
                }
            }
        }
        for fip in array_at(p, &["frontendIPConfigurations"]) {
            if let Some(pip) = str_at(fip, &["properties", "publicIPAddress", "id"]) {
                let pip = w.get(pip).unwrap_or_else(|| panic!("{pip} missing"));
                let pip_value = pip.value();
                let back = str_at(&pip_value, &["properties", "ipConfiguration", "id"]);
                assert_eq!(
                    back.map(id_key),
                    fip["id"].as_str().map(id_key),
                    "{} points elsewhere",
                    pip.id
                );
            }
        }
        // Every NIC-based pool member is an IP configuration that exists and lists the pool.
        for pool in array_at(p, &["backendAddressPools"]) {
            let pool_id = pool["id"].as_str().expect("pool id");
            for member in array_at(pool, &["properties", "backendIPConfigurations"]) {
                let id = member["id"].as_str().expect("member id");
                let ipc = arm_object(&w, id).unwrap_or_else(|| panic!("{pool_id}: member {id} missing"));
                let listed = array_at(&ipc, &["properties", "loadBalancerBackendAddressPools"])
                    .iter()
                    .any(|x| x["id"].as_str().map(id_key) == Some(id_key(pool_id)));
                assert!(listed, "{id} does not list {pool_id}");
            }
        }
    }
}

#[test]
fn ownership_tags_and_nsg_destinations_point_at_live_services() {
    let w = load();
    let planted = Planted::load();
    let live: BTreeSet<String> = w
        .meta
        .clusters
        .iter()
        .flat_map(|c| lb_services(&w, &c.name).into_iter().map(ns_name))
        .collect();
    let live_ips: BTreeSet<String> = w
        .meta
        .clusters
        .iter()
        .flat_map(|c| lb_services(&w, &c.name).into_iter().flat_map(ingress_ips))
        .collect();
    // PIPs tagged with Services (current or legacy key): the Services exist, but for the plant.
    for pip in w.of_type("Microsoft.Network/publicIPAddresses") {
        let tags = &pip.value()["tags"];
        let Some(list) = tags["k8s-azure-service"].as_str().or(tags["service"].as_str()) else {
            continue;
        };
        let any_live = list.split(',').any(|s| live.contains(s.trim()));
        assert!(
            any_live || planted.is("orphaned-public-ip", &pip.id),
            "unplanned orphan {}",
            pip.id
        );
        if any_live {
            assert!(
                pip.value()["properties"]["ipConfiguration"]["id"].is_string(),
                "{} unattached",
                pip.id
            );
        }
    }
    // Provider-managed NSG rules: destinations are live ingress IPs; legacy ones are planted.
    for nsg in w.of_type("Microsoft.Network/networkSecurityGroups") {
        for rule in array_at(&nsg.value(), &["properties", "securityRules"]) {
            let name = rule["name"].as_str().unwrap_or_default();
            let id = rule["id"].as_str().unwrap_or_default();
            if is_service_base_name(name) || name.starts_with("shared-") {
                assert!(planted.is("orphaned-nsg-rule", id), "unplanned legacy rule {id}");
            } else if name.starts_with("k8s-azure-lb_") {
                let props = &rule["properties"];
                let dsts: Vec<&str> = props["destinationAddressPrefix"]
                    .as_str()
                    .into_iter()
                    .chain(
                        array_at(props, &["destinationAddressPrefixes"])
                            .iter()
                            .filter_map(Value::as_str),
                    )
                    .collect();
                assert!(!dsts.is_empty(), "{id} has no destination");
                for d in dsts {
                    assert!(live_ips.contains(d), "{id}: stale destination {d}");
                }
            }
        }
    }
}

#[test]
fn healthy_services_have_ready_endpoints_and_nsg_rules() {
    let w = load();
    let planted = Planted::load();
    for c in &w.meta.clusters {
        let objs = &w.clusters[&c.name];
        // The provider-managed destinations of the cluster's NSG.
        let mut nsg_dsts = BTreeSet::new();
        for nsg in w.of_type("Microsoft.Network/networkSecurityGroups") {
            if nsg.resource_group().as_deref() != c.resource_group.as_deref() {
                continue;
            }
            for rule in array_at(&nsg.value(), &["properties", "securityRules"]) {
                if rule["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("k8s-azure-lb_allow_"))
                {
                    let p = &rule["properties"];
                    nsg_dsts.extend(p["destinationAddressPrefix"].as_str().map(str::to_string));
                    nsg_dsts.extend(
                        array_at(p, &["destinationAddressPrefixes"])
                            .iter()
                            .filter_map(|d| d.as_str().map(str::to_string)),
                    );
                }
            }
        }
        for svc in lb_services(&w, &c.name) {
            let reference = svc_ref(&c.name, svc);
            let (ns, name) = (
                str_at(svc, &["metadata", "namespace"]),
                str_at(svc, &["metadata", "name"]),
            );
            let ready = objs
                .of_kind("EndpointSlice")
                .filter(|e| {
                    str_at(e, &["metadata", "namespace"]) == ns
                        && str_at(e, &["metadata", "labels", "kubernetes.io/service-name"]) == name
                })
                .flat_map(|e| array_at(e, &["endpoints"]))
                .any(|ep| ep["conditions"]["ready"] == Value::Bool(true));
            let planted_unready = planted.is("service-without-ready-endpoints", &reference);
            assert_eq!(ready, !planted_unready, "{reference}: ready endpoints");
            let internal = is_internal(svc);
            if !internal {
                for ip in ingress_ips(svc) {
                    assert!(
                        nsg_dsts.contains(&ip),
                        "{reference}: {ip} missing from the NSG's allow rules"
                    );
                }
            }
        }
    }
}

#[test]
fn nodes_resolve_to_their_instances() {
    let w = load();
    let planted = Planted::load();
    for c in &w.meta.clusters {
        for node in w.clusters[&c.name].of_kind("Node") {
            let name = str_at(node, &["metadata", "name"]).expect("node name");
            let reference = format!("k8s://{}/nodes/{name}", c.name);
            match str_at(node, &["spec", "providerID"]).and_then(|p| p.strip_prefix("azure://")) {
                Some(arm) => {
                    let found = w.get(arm).is_some();
                    assert_eq!(
                        !found,
                        planted.is("node-instance-not-found", &reference),
                        "{reference}"
                    );
                    // VMSS Uniform node names are lower(computerName) (domain.md §3.3).
                    if let Some(vm) = w.get(arm) {
                        let vm_value = vm.value();
                        let computer = str_at(&vm_value, &["properties", "osProfile", "computerName"]);
                        assert_eq!(
                            computer.map(str::to_ascii_lowercase).as_deref(),
                            Some(name),
                            "{reference}"
                        );
                    }
                }
                None => assert!(
                    planted.is("node-not-registered-with-cloud", &reference)
                        || planted.is("virtual-node-not-excluded", &reference),
                    "{reference}: no azure:// providerID"
                ),
            }
        }
    }
}

#[tokio::test]
async fn the_mock_serves_the_demo_world() {
    let files = tempfile::tempdir().expect("tempdir");
    let mock = start(ServeOptions {
        world: load(),
        listen: "127.0.0.1:0".parse().expect("loopback address"),
        files_dir: files.path().to_path_buf(),
        config: None,
    })
    .await
    .expect("the mock accepts the demo world and its mock section");
    let ready = mock.ready.clone();
    let mut subs = ready.subscription_ids.clone();
    subs.sort();
    let mut want: Vec<String> = load().meta.subscriptions.iter().map(|s| s.id.clone()).collect();
    want.sort();
    assert_eq!(subs, want);
    let clusters: Vec<&str> = ready.k8s_endpoints.keys().map(String::as_str).collect();
    assert_eq!(clusters, ["aks-prod", "k8s-east"]);

    // Every endpoint is HTTPS on loopback and trusted through ready.ca_file.
    let ca = std::fs::read(&ready.ca_file).expect("CA file");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
        .no_proxy()
        .build()
        .expect("client");
    let mut urls = vec![format!(
        "{}subscriptions?api-version=2022-12-01",
        ready.arm_endpoint
    )];
    urls.extend(ready.k8s_endpoints.values().map(|u| format!("{u}/version")));
    for url in urls {
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        let resp = client
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(!resp.status().is_server_error(), "{url}: {}", resp.status());
    }
    mock.shutdown().await;
}
