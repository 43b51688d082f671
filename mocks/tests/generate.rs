//! `azaudit-mock generate`: reproducible worlds whose ground truth matches what is in them.
//!
//! Besides structure and reproducibility, several rules are re-derived here from the loaded
//! world alone (an independent, minimal auditor) and compared with `expected-findings.json`
//! exactly, so a planting mistake that creates or hides a finding fails a test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use azaudit_mocks::generate::{Finding, GenerateArgs, Summary, generate};
use azaudit_world::{ResourceId, World, id_key};
use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: GenerateArgs,
}

fn gen_into(dir: &Path, flags: &[&str]) -> Summary {
    let mut argv = vec!["generate".to_string(), "--out".into(), dir.display().to_string()];
    argv.extend(flags.iter().map(|s| s.to_string()));
    let cli = Cli::try_parse_from(argv).expect("flags parse");
    let opts = cli.args.options().expect("valid flags");
    generate(dir, &opts, false).expect("generate")
}

fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn expected(dir: &Path) -> Vec<Finding> {
    let v: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("expected-findings.json")).unwrap()).unwrap();
    v.into_iter()
        .map(|f| Finding {
            rule: f["rule"].as_str().unwrap().into(),
            resource: f["resource"].as_str().unwrap().into(),
            cluster: f["cluster"].as_str().map(String::from),
        })
        .collect()
}

fn of_rule(fs: &[Finding], rule: &str) -> BTreeSet<String> {
    fs.iter()
        .filter(|f| f.rule == rule)
        .map(|f| id_key(&f.resource))
        .collect()
}

/// A world with every rule planted often enough to see each one.
const RICH: &[&str] = &[
    "--seed",
    "7",
    "--clusters",
    "4",
    "--subscriptions",
    "2",
    "--services",
    "160",
    "--nodes",
    "48",
    "--defect-rate",
    "0.2",
    "--rate",
    "cloud-config-invalid=0.75",
    "--rate",
    "aks-tunnel-unhealthy=0.5",
    "--rate",
    "stale-backend-pool-member=0.5",
    "--rate",
    "empty-backend-pool=0.3",
];

fn rich_seed() -> String {
    std::env::var("AZAUDIT_GEN_SEED").unwrap_or_else(|_| "7".into())
}

/// `AZAUDIT_GEN_SEED=N cargo test --test generate` replays the rich-world tests on another seed.
fn rich() -> (tempfile::TempDir, Summary, World) {
    let d = tempfile::tempdir().unwrap();
    let seed = rich_seed();
    let mut flags = RICH.to_vec();
    flags[1] = &seed;
    let s = gen_into(d.path(), &flags);
    let w = World::load(d.path()).unwrap();
    (d, s, w)
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn arr<'a>(v: &'a Value, p: &str) -> &'a [Value] {
    v.pointer(p)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Every sub-resource id of a load balancer or NSG, lowercased.
fn child_ids(w: &World) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in w.resources.values() {
        for p in [
            "/properties/frontendIPConfigurations",
            "/properties/loadBalancingRules",
            "/properties/probes",
            "/properties/backendAddressPools",
            "/properties/securityRules",
        ] {
            for c in arr(&r.value(), p) {
                out.insert(id_key(str_at(c, "/id")));
            }
        }
    }
    out
}

fn k8s_exists(w: &World, r: &str) -> bool {
    let parts: Vec<&str> = r.trim_start_matches("k8s://").split('/').collect();
    let (cluster, ns, plural, name) = match parts.as_slice() {
        [c, plural, name] => (*c, None, *plural, *name),
        [c, ns, plural, name] => (*c, Some(*ns), *plural, *name),
        _ => return false,
    };
    let kind = match plural {
        "services" => "Service",
        "nodes" => "Node",
        "pods" => "Pod",
        "secrets" => "Secret",
        _ => return false,
    };
    w.clusters.get(cluster).is_some_and(|c| {
        c.of_kind(kind).any(|o| {
            str_at(o, "/metadata/name") == name && ns.is_none_or(|ns| str_at(o, "/metadata/namespace") == ns)
        })
    })
}

#[test]
fn same_seed_same_bytes_other_seed_other_world() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let flags = ["--seed", "11", "--extra-resources", "30", "--page-size", "7"];
    gen_into(a.path(), &flags);
    gen_into(b.path(), &flags);
    gen_into(
        c.path(),
        &["--seed", "12", "--extra-resources", "30", "--page-size", "7"],
    );
    let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
    assert!(fa.len() > 15, "{:?}", fa.keys());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (p, bytes) in &fa {
        assert!(
            bytes == &fb[p],
            "{} differs between two runs with the same seed",
            p.display()
        );
    }
    assert_ne!(fa[Path::new("world.json")], fc[Path::new("world.json")]);
    assert_ne!(
        fa[Path::new("expected-findings.json")],
        fc[Path::new("expected-findings.json")]
    );
    // No stray temporary files.
    assert!(fa.keys().all(|p| !p.to_string_lossy().contains(".tmp")));
}

#[test]
fn binary_writes_a_world_and_refuses_to_overwrite_without_force() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("w");
    let bin = env!("CARGO_BIN_EXE_azaudit-mock");
    let run = |extra: &[&str]| {
        std::process::Command::new(bin)
            .args([
                "generate",
                "--out",
                out.to_str().unwrap(),
                "--seed",
                "3",
                "--services",
                "12",
                "--nodes",
                "8",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    assert!(run(&[]).status.success());
    let first = files(&out);
    let again = run(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(run(&["--force"]).status.success());
    assert_eq!(first, files(&out), "--force regenerates the same bytes");
    let bad = run(&["--force", "--rate", "arm-read-budget-low=0.5", "--rate", "nope=2"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("arm-read-budget-low") && err.contains("unknown rule"),
        "{err}"
    );
}

#[test]
fn world_loads_cleanly_with_metadata_and_mock_section() {
    let (d, _, w) = rich();
    assert!(w.problems.is_empty(), "{:?}", w.problems);
    assert_eq!(w.meta.subscriptions.len(), 2);
    assert_eq!(w.meta.clusters.len(), 4);
    assert_eq!(w.clusters.len(), 4);
    assert_eq!(w.subscription_ids().len(), 2);
    for c in &w.meta.clusters {
        let objs = &w.clusters[&c.name];
        assert!(objs.cloud_config.is_some(), "{} has azure.json", c.name);
        assert!(objs.of_kind("Service").count() > 10);
        assert!(objs.of_kind("Node").count() >= 4);
        assert!(objs.of_kind("EndpointSlice").count() > 10);
        assert!(objs.of_kind("Secret").count() == 1);
        let cfg: Value = serde_json::from_str(&objs.cloud_config.as_ref().unwrap().1).unwrap();
        assert_eq!(
            cfg["aadClientSecret"].as_str().unwrap_or("<redacted>"),
            "<redacted>"
        );
        assert_eq!(cfg["resourceGroup"].as_str(), c.resource_group.as_deref());
    }
    // Two AKS clusters named `kubernetes` in one subscription, told apart by resource group.
    let aks: Vec<_> = w
        .meta
        .clusters
        .iter()
        .filter(|c| c.cluster_name_tag.as_deref() == Some("kubernetes"))
        .collect();
    assert_eq!(aks.len(), 2);
    assert_eq!(aks[0].subscription_id, aks[1].subscription_id);
    assert_ne!(aks[0].resource_group, aks[1].resource_group);
    let mock = azaudit_mocks::config::MockConfig::from_world_meta(w.meta.mock.as_ref()).unwrap();
    assert_eq!(mock.seed.to_string(), rich_seed());
    assert!(d.path().join("README.md").exists());
    // The kinds of things a real estate has.
    for t in [
        "Microsoft.Network/loadBalancers",
        "Microsoft.Network/publicIPAddresses",
        "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Network/networkInterfaces",
        "Microsoft.Compute/virtualMachines",
        "Microsoft.Compute/virtualMachineScaleSets",
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "Microsoft.Network/virtualNetworks",
        "Microsoft.Resources/resourceGroups",
        azaudit_world::USAGE_TYPE,
    ] {
        assert!(w.of_type(t).count() > 0, "no {t}");
    }
}

#[test]
fn every_expected_resource_exists_and_rules_are_all_planted() {
    let (d, s, w) = rich();
    let fs = expected(d.path());
    assert_eq!(fs.len(), s.findings.len());
    let children = child_ids(&w);
    for f in &fs {
        let ok = if f.resource.starts_with("k8s://") {
            k8s_exists(&w, &f.resource)
        } else {
            w.get(&f.resource).is_some() || children.contains(&id_key(&f.resource))
        };
        assert!(ok, "{} names {} which is not in the world", f.rule, f.resource);
        let regional = f.resource.contains("/usages/");
        assert_eq!(f.cluster.is_none(), regional, "{f:?}");
        if let Some(c) = &f.cluster {
            assert!(w.clusters.contains_key(c));
        }
    }
    for rule in azaudit_mocks::generate::RULES {
        assert!(
            s.rules[*rule].findings > 0,
            "{rule} never planted in the rich world: {:?}",
            s.rules[*rule]
        );
    }
    assert!(fs.iter().all(|f| f.rule != "arm-read-budget-low"));
    let mut sorted = fs.clone();
    sorted.sort();
    sorted.dedup_by(|a, b| a.rule == b.rule && a.resource == b.resource);
    assert_eq!(sorted, fs, "sorted, one entry per (rule, resource)");
}

#[test]
fn counts_follow_rates_and_zero_rates_plant_nothing() {
    let d = tempfile::tempdir().unwrap();
    let s = gen_into(
        d.path(),
        &[
            "--seed",
            "5",
            "--clusters",
            "6",
            "--services",
            "600",
            "--nodes",
            "180",
            "--defect-rate",
            "0.1",
            "--rate",
            "orphaned-public-ip=0.3",
            "--rate",
            "orphaned-lb-frontend=0",
            "--rate",
            "dns-label-conflict=0",
        ],
    );
    for (rule, c) in &s.rules {
        let want = c.rate * c.candidates as f64;
        let slack = 3.0 + want * 0.35;
        assert!(
            (c.planted as f64 - want).abs() <= slack,
            "{rule}: planted {} for rate {} of {} candidates",
            c.planted,
            c.rate,
            c.candidates
        );
        if c.rate == 0.0 {
            assert_eq!(c.findings, 0, "{rule} has rate 0");
        }
    }
    assert!(s.rules["orphaned-public-ip"].planted > 2 * s.rules["unattached-public-ip"].planted);
    // Deleted Services left PIPs only: with the frontend rule off, no cascade to frontends.
    assert_eq!(
        s.rules["orphaned-public-ip"].findings,
        s.rules["orphaned-public-ip"].planted
    );
}

#[test]
fn lookalikes_are_never_expected() {
    let (d, s, _) = rich();
    let look: Vec<Value> =
        serde_json::from_slice(&std::fs::read(d.path().join("lookalikes.json")).unwrap()).unwrap();
    assert_eq!(look.len(), s.lookalikes.len());
    let kinds: BTreeSet<&str> = look.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    for k in [
        "byo-pip-by-name-in-use",
        "byo-pip-by-ip-in-use",
        "pip-of-other-cluster-in-shared-resource-group",
        "pip-of-same-named-cluster-other-rg",
        "nat-gateway-pip",
        "public-ip-prefix-pip",
        "aks-outbound-frontend",
        "aks-outbound-pip",
        "aks-outbound-backend-pool",
        "frontend-shared-with-second-service",
        "excluded-node-not-in-pool",
        "control-plane-node-not-in-pool",
        "ip-based-backend-pool",
        "dual-stack-ipv6-frontend",
        "dual-stack-ipv6-rule",
        "legacy-tag-keys-live-service-pip",
        "legacy-nsg-rule-live-service",
        "properly-excluded-virtual-node",
    ] {
        assert!(kinds.contains(k), "look-alike {k} missing");
    }
    let expected: BTreeSet<String> = expected(d.path()).iter().map(|f| id_key(&f.resource)).collect();
    for l in &look {
        let r = id_key(l["resource"].as_str().unwrap());
        assert!(
            !expected.contains(&r),
            "look-alike {} is expected as a finding: {r}",
            l["kind"]
        );
    }
}

#[test]
fn vmss_members_exist_unless_planted_stale_and_services_have_their_frontends() {
    let (d, _, w) = rich();
    let fs = expected(d.path());
    let stale = of_rule(&fs, "stale-backend-pool-member");
    let mut checked = 0;
    for lb in w.of_type("Microsoft.Network/loadBalancers") {
        for pool in arr(&lb.value(), "/properties/backendAddressPools") {
            let pool_id = id_key(str_at(pool, "/id"));
            for m in arr(pool, "/properties/backendIPConfigurations") {
                let id = ResourceId::parse(str_at(m, "/id")).unwrap();
                if id.child("virtualMachineScaleSets").is_none() {
                    continue;
                }
                let vm = format!(
                    "{}/virtualMachines/{}",
                    id.top_level().unwrap(),
                    id.child("virtualMachines").unwrap()
                );
                checked += 1;
                assert!(
                    w.get(&vm).is_some() || stale.contains(&pool_id),
                    "pool {pool_id} lists {vm}, which does not exist and is not planted stale"
                );
            }
        }
    }
    assert!(checked > 20);
    // Every Service with an ingress IP has a frontend with that IP (public via its PIP).
    let pip_ip: BTreeMap<String, String> = w
        .of_type("Microsoft.Network/publicIPAddresses")
        .map(|p| {
            (
                id_key(&p.id),
                str_at(&p.value(), "/properties/ipAddress").to_string(),
            )
        })
        .collect();
    let mut fip_ips = BTreeSet::new();
    for lb in w.of_type("Microsoft.Network/loadBalancers") {
        for f in arr(&lb.value(), "/properties/frontendIPConfigurations") {
            let private = str_at(f, "/properties/privateIPAddress");
            if !private.is_empty() {
                fip_ips.insert(private.to_string());
            }
            if let Some(ip) = pip_ip.get(&id_key(str_at(f, "/properties/publicIPAddress/id"))) {
                fip_ips.insert(ip.clone());
            }
        }
    }
    let mut services = 0;
    for c in w.clusters.values() {
        for s in c.of_kind("Service") {
            for ing in arr(s, "/status/loadBalancer/ingress") {
                services += 1;
                let ip = str_at(ing, "/ip");
                assert!(
                    fip_ips.contains(ip),
                    "{} has ingress {ip} but no frontend",
                    str_at(s, "/metadata/name")
                );
            }
        }
    }
    assert!(services > 100);
}

/// Cluster-owned PIPs re-derived from the world (rule-catalogue.md conventions + generate/mod.rs).
#[test]
fn orphaned_and_unattached_public_ips_match_an_independent_derivation() {
    let (d, _, w) = rich();
    let fs = expected(d.path());
    let mut orphaned = BTreeSet::new();
    let mut unattached = BTreeSet::new();
    let mut requested_names = BTreeSet::new();
    let mut requested_ips = BTreeSet::new();
    for c in w.clusters.values() {
        for s in c.of_kind("Service") {
            if let Some(n) = s.pointer("/metadata/annotations/service.beta.kubernetes.io~1azure-pip-name") {
                requested_names.insert(n.as_str().unwrap().to_lowercase());
            }
            for p in [
                "/spec/loadBalancerIP",
                "/metadata/annotations/service.beta.kubernetes.io~1azure-load-balancer-ipv4",
            ] {
                if let Some(ip) = s.pointer(p) {
                    requested_ips.insert(ip.as_str().unwrap().to_string());
                }
            }
        }
    }
    for meta in &w.meta.clusters {
        let objs = &w.clusters[&meta.name];
        let lb_services: BTreeSet<String> = objs
            .of_kind("Service")
            .filter(|s| str_at(s, "/spec/type") == "LoadBalancer")
            .map(|s| {
                format!(
                    "{}/{}",
                    str_at(s, "/metadata/namespace"),
                    str_at(s, "/metadata/name")
                )
            })
            .collect();
        let mut groups: BTreeSet<String> = [meta.resource_group.clone().unwrap().to_lowercase()].into();
        for s in objs.of_kind("Service") {
            if let Some(rg) = s.pointer(
                "/metadata/annotations/service.beta.kubernetes.io~1azure-load-balancer-resource-group",
            ) {
                groups.insert(rg.as_str().unwrap().to_lowercase());
            }
        }
        let tag = meta.cluster_name_tag.clone().unwrap();
        for p in w.of_type("Microsoft.Network/publicIPAddresses") {
            let same_sub = p
                .subscription()
                .unwrap()
                .eq_ignore_ascii_case(meta.subscription_id.as_deref().unwrap());
            if !same_sub || !groups.contains(&p.resource_group().unwrap().to_lowercase()) {
                continue;
            }
            let tags = &p.value()["tags"];
            let svc = tags
                .get("k8s-azure-service")
                .or_else(|| tags.get("service"))
                .and_then(Value::as_str);
            let owner = tags
                .get("k8s-azure-cluster-name")
                .or_else(|| tags.get("kubernetes-cluster-name"))
                .and_then(Value::as_str);
            if let Some(svc) = svc
                && owner.is_none_or(|o| o.eq_ignore_ascii_case(&tag))
                && !svc.split(',').any(|k| lb_services.contains(k.trim()))
            {
                orphaned.insert(id_key(&p.id));
            }
        }
    }
    for p in w.of_type("Microsoft.Network/publicIPAddresses") {
        let props = &p.value()["properties"];
        let tags = &p.value()["tags"];
        if props.get("ipConfiguration").is_none()
            && props.get("natGateway").is_none()
            && props.get("publicIPPrefix").is_none()
            && tags.get("k8s-azure-service").is_none()
            && tags.get("service").is_none()
            && !requested_names.contains(&str_at(&p.value(), "/name").to_lowercase())
            && !requested_ips.contains(str_at(props, "/ipAddress"))
        {
            unattached.insert(id_key(&p.id));
        }
    }
    assert!(!orphaned.is_empty() && !unattached.is_empty());
    assert_eq!(orphaned, of_rule(&fs, "orphaned-public-ip"));
    assert_eq!(unattached, of_rule(&fs, "unattached-public-ip"));
}

/// Frontends, pools and nodes re-derived from the world.
#[test]
fn frontends_pools_and_nodes_match_an_independent_derivation() {
    let (d, _, w) = rich();
    let fs = expected(d.path());
    let (mut fips, mut empty, mut unregistered, mut not_found, mut virt, mut pending) = (
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
    );
    let is_base =
        |n: &str| n.len() >= 32 && n.starts_with('a') && n[1..32].chars().all(|c| c.is_ascii_hexdigit());
    for meta in &w.meta.clusters {
        let objs = &w.clusters[&meta.name];
        let cn = meta.cluster_name_tag.clone().unwrap();
        let rg = meta.resource_group.clone().unwrap();
        let bases: BTreeSet<String> = objs
            .of_kind("Service")
            .filter(|s| str_at(s, "/spec/type") == "LoadBalancer")
            .map(|s| azaudit_mocks::generate::base_name(str_at(s, "/metadata/uid")))
            .collect();
        for internal in [false, true] {
            let name = if internal {
                format!("{cn}-internal")
            } else {
                cn.clone()
            };
            let id = format!(
                "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Network/loadBalancers/{name}",
                meta.subscription_id.as_deref().unwrap()
            );
            let Some(lb) = w.get(&id) else { continue };
            for f in arr(&lb.value(), "/properties/frontendIPConfigurations") {
                let n = str_at(f, "/name");
                if is_base(n) && !bases.contains(&n[..32]) {
                    fips.insert(id_key(str_at(f, "/id")));
                }
            }
            for p in arr(&lb.value(), "/properties/backendAddressPools") {
                let n = str_at(p, "/name");
                let managed = n.eq_ignore_ascii_case(&cn) || n.eq_ignore_ascii_case(&format!("{cn}-IPv6"));
                if managed
                    && arr(p, "/properties/backendIPConfigurations").is_empty()
                    && arr(p, "/properties/loadBalancerBackendAddresses").is_empty()
                {
                    empty.insert(id_key(str_at(p, "/id")));
                }
            }
        }
        for n in objs.of_kind("Node") {
            let r = format!("k8s://{}/nodes/{}", meta.name, str_at(n, "/metadata/name"));
            let labels = &n["metadata"]["labels"];
            let virtual_node = labels.get("type").and_then(Value::as_str) == Some("virtual-kubelet");
            let unmanaged =
                labels.get("kubernetes.azure.com/managed").and_then(Value::as_str) == Some("false");
            let excluded = labels
                .get("node.kubernetes.io/exclude-from-external-load-balancers")
                .is_some();
            let pid = str_at(n, "/spec/providerID");
            if virtual_node {
                if !excluded && !unmanaged {
                    virt.insert(r);
                }
                continue;
            }
            if !pid.starts_with("azure://") {
                if !unmanaged {
                    unregistered.insert(r);
                }
                continue;
            }
            let arm_id = pid.trim_start_matches("azure://");
            if w.get(arm_id).is_none() {
                not_found.insert(r);
            }
        }
        for s in objs.of_kind("Service") {
            if str_at(s, "/spec/type") == "LoadBalancer" && arr(s, "/status/loadBalancer/ingress").is_empty()
            {
                pending.insert(format!(
                    "k8s://{}/{}/services/{}",
                    meta.name,
                    str_at(s, "/metadata/namespace"),
                    str_at(s, "/metadata/name")
                ));
            }
        }
    }
    assert_eq!(fips, of_rule(&fs, "orphaned-lb-frontend"));
    assert_eq!(empty, of_rule(&fs, "empty-backend-pool"));
    assert_eq!(unregistered, of_rule(&fs, "node-not-registered-with-cloud"));
    assert_eq!(not_found, of_rule(&fs, "node-instance-not-found"));
    assert_eq!(virt, of_rule(&fs, "virtual-node-not-excluded"));
    assert_eq!(pending, of_rule(&fs, "service-pending-load-balancer"));
}

#[test]
fn extra_resources_are_chunked_and_add_no_findings() {
    let d = tempfile::tempdir().unwrap();
    let base = tempfile::tempdir().unwrap();
    let s = gen_into(
        d.path(),
        &[
            "--seed",
            "9",
            "--extra-resources",
            "3000",
            "--services",
            "20",
            "--nodes",
            "8",
            "--chunk-size",
            "400",
        ],
    );
    let s0 = gen_into(
        base.path(),
        &[
            "--seed",
            "9",
            "--services",
            "20",
            "--nodes",
            "8",
            "--rate",
            "quota-pressure=0",
        ],
    );
    // Loading is tested on other worlds; here only the files are read, to stay fast.
    let meta: Value = serde_json::from_slice(&std::fs::read(d.path().join("world.json")).unwrap()).unwrap();
    let sub = meta["subscriptions"][0]["id"].as_str().unwrap().to_string();
    let dir = d.path().join("arm").join(&sub);
    let mut vms = 0;
    let mut nic_usage = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let p = f.unwrap().path();
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let items = v["value"].as_array().unwrap();
        assert!(items.len() <= 400, "{} too big", p.display());
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("virtualMachines") && !name.starts_with("virtualMachineScaleSet") {
            vms += items.len();
        }
        if name == "usages.json" {
            nic_usage += items
                .iter()
                .filter(|u| str_at(u, "/name/value") == "NetworkInterfaces")
                .map(|u| u["currentValue"].as_u64().unwrap())
                .sum::<u64>();
        }
    }
    assert!(dir.join("networkInterfaces-3.json").exists());
    assert!(vms >= 1000, "{vms}");
    assert!(nic_usage >= 1000, "usages count the bulk NICs: {nic_usage}");
    // The bulk carries no finding of its own (only usage rows may change).
    let non_quota = |s: &Summary| {
        s.findings
            .iter()
            .filter(|f| f.rule != "quota-pressure")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(s.findings.iter().all(|f| !f.resource.contains("/rg-app-")));
    assert!(!non_quota(&s0).is_empty());
    assert_eq!(non_quota(&s).len(), non_quota(&s0).len());
}

#[test]
fn scale_smoke_three_hundred_services() {
    let d = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let s = gen_into(
        d.path(),
        &[
            "--seed",
            "21",
            "--clusters",
            "3",
            "--services",
            "300",
            "--nodes",
            "60",
        ],
    );
    let elapsed = t.elapsed();
    let w = World::load(d.path()).unwrap();
    assert!(w.problems.is_empty());
    let lb_services: usize = w
        .clusters
        .values()
        .map(|c| {
            c.of_kind("Service")
                .filter(|s| str_at(s, "/spec/type") == "LoadBalancer")
                .count()
        })
        .sum();
    assert!(lb_services >= 300);
    assert!(!s.findings.is_empty());
    // Not a timing assertion: a hint in the output if it ever becomes slow.
    eprintln!("generated 300 services in {elapsed:?}");
}

#[tokio::test]
async fn the_mock_serves_a_generated_world() {
    let d = tempfile::tempdir().unwrap();
    gen_into(d.path(), &["--seed", "4", "--services", "12", "--nodes", "8"]);
    let world = World::load(d.path()).unwrap();
    let subs = world.subscription_ids();
    let clusters: Vec<String> = world.clusters.keys().cloned().collect();
    let mock = azaudit_mocks::start(azaudit_mocks::ServeOptions {
        world,
        listen: "127.0.0.1:0".parse().unwrap(),
        files_dir: d.path().join("files"),
        config: None,
    })
    .await
    .unwrap();
    assert_eq!(mock.ready.subscription_ids, subs);
    assert_eq!(
        mock.ready.k8s_endpoints.keys().cloned().collect::<Vec<_>>(),
        clusters
    );
    assert!(
        mock.ready
            .k8s_endpoints
            .values()
            .all(|u| u.starts_with("https://127.0.0.1:"))
    );
    mock.shutdown().await;
}

fn labels_has(o: &Value, key: &str) -> Option<String> {
    o.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        .map(String::from)
}

fn is_base_prefixed(n: &str) -> bool {
    n.len() >= 32 && n.starts_with('a') && n[1..32].chars().all(|c| c.is_ascii_hexdigit())
}

/// Pools, NSG rules, probes, DNS labels, endpoints, pods and SKUs re-derived from the world.
#[test]
fn remaining_rules_match_an_independent_derivation() {
    use azaudit_mocks::generate::{base_name, rule_name};
    let (d, _, w) = rich();
    let fs = expected(d.path());
    let mut got: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut add = |rule: &'static str, r: &str| {
        got.entry(rule).or_default().insert(id_key(r));
    };
    let orphan_fips = of_rule(&fs, "orphaned-lb-frontend");
    let empty_pools = of_rule(&fs, "empty-backend-pool");
    for meta in &w.meta.clusters {
        let objs = &w.clusters[&meta.name];
        let (cn, rg, sub) = (
            meta.cluster_name_tag.clone().unwrap(),
            meta.resource_group.clone().unwrap(),
            meta.subscription_id.clone().unwrap(),
        );
        let svc_ref = |s: &Value| {
            format!(
                "k8s://{}/{}/services/{}",
                meta.name,
                str_at(s, "/metadata/namespace"),
                str_at(s, "/metadata/name")
            )
        };
        let lb_svcs: Vec<&Value> = objs
            .of_kind("Service")
            .filter(|s| str_at(s, "/spec/type") == "LoadBalancer")
            .collect();
        let by_base: BTreeMap<String, &Value> = lb_svcs
            .iter()
            .map(|s| (base_name(str_at(s, "/metadata/uid")), *s))
            .collect();
        let nodes: Vec<&Value> = objs.of_kind("Node").collect();
        let node_ips: BTreeSet<String> = nodes
            .iter()
            .flat_map(|n| arr(n, "/status/addresses").iter())
            .filter(|a| str_at(a, "/type") == "InternalIP")
            .map(|a| str_at(a, "/address").to_string())
            .collect();

        // Pools: membership of eligible, registered nodes; members of nothing.
        let lbs: Vec<&azaudit_world::ArmResource> = [cn.clone(), format!("{cn}-internal")]
            .iter()
            .filter_map(|n| {
                w.get(&format!(
                    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/loadBalancers/{n}"
                ))
            })
            .collect();
        for lb in &lbs {
            for p in arr(&lb.value(), "/properties/backendAddressPools") {
                let name = str_at(p, "/name");
                let ipv6 = name.to_lowercase().ends_with("-ipv6");
                if !(name.eq_ignore_ascii_case(&cn) || name.eq_ignore_ascii_case(&format!("{cn}-IPv6"))) {
                    continue;
                }
                let mut members: Vec<String> = arr(p, "/properties/backendIPConfigurations")
                    .iter()
                    .map(|m| id_key(str_at(m, "/id")))
                    .collect();
                let ips: BTreeSet<&str> = arr(p, "/properties/loadBalancerBackendAddresses")
                    .iter()
                    .map(|a| str_at(a, "/properties/ipAddress"))
                    .filter(|s| !s.is_empty())
                    .collect();
                members.extend(
                    arr(p, "/properties/loadBalancerBackendAddresses")
                        .iter()
                        .map(|a| id_key(str_at(a, "/properties/networkInterfaceIPConfiguration/id")))
                        .filter(|s| !s.is_empty()),
                );
                let pool_id = str_at(p, "/id");
                // A member's owner: the VMSS instance, or the NIC.
                let owner = |m: &str| -> String {
                    match m.find("/networkinterfaces/") {
                        Some(i) if m.contains("/virtualmachinescalesets/") => m[..i].to_string(),
                        _ => m[..m.find("/ipconfigurations/").unwrap_or(m.len())].to_string(),
                    }
                };
                for m in &members {
                    if w.get(&owner(m)).is_none() {
                        add("stale-backend-pool-member", pool_id);
                    }
                }
                for ip in &ips {
                    if !node_ips.contains(*ip) {
                        add("stale-backend-pool-member", pool_id);
                    }
                }
                if empty_pools.contains(&id_key(pool_id)) {
                    continue;
                }
                for n in &nodes {
                    let virtual_node = labels_has(n, "type").as_deref() == Some("virtual-kubelet");
                    let eligible = labels_has(n, "node.kubernetes.io/exclude-from-external-load-balancers")
                        .is_none()
                        && labels_has(n, "kubernetes.azure.com/managed").as_deref() != Some("false")
                        && labels_has(n, "node-role.kubernetes.io/control-plane").is_none()
                        && !virtual_node;
                    let pid = str_at(n, "/spec/providerID");
                    let Some(vm) = pid.strip_prefix("azure://").and_then(|id| w.get(id)) else {
                        continue;
                    };
                    let addrs: Vec<&str> = arr(n, "/status/addresses")
                        .iter()
                        .filter(|a| str_at(a, "/type") == "InternalIP")
                        .map(|a| str_at(a, "/address"))
                        .collect();
                    if !eligible || (ipv6 && !addrs.iter().any(|a| a.contains(':'))) {
                        continue;
                    }
                    let nic = id_key(str_at(
                        &vm.value(),
                        "/properties/networkProfile/networkInterfaces/0/id",
                    ));
                    let vm_key = id_key(&vm.id);
                    let present = members.iter().any(|m| owner(m) == vm_key || owner(m) == nic)
                        || addrs.iter().any(|a| ips.contains(a));
                    if !present {
                        add(
                            "node-missing-from-backend-pool",
                            &format!("k8s://{}/nodes/{}", meta.name, str_at(n, "/metadata/name")),
                        );
                    }
                }
            }
            // Rules and probes named for Services: orphaned, or mismatched probes.
            let lb_value = lb.value();
            let rules = arr(&lb_value, "/properties/loadBalancingRules");
            let probes = arr(&lb_value, "/properties/probes");
            let probe_of = |id: &str| probes.iter().find(|p| id_key(str_at(p, "/id")) == id_key(id));
            let mut expected_names: BTreeSet<String> = BTreeSet::new();
            for (base, s) in &by_base {
                let subnet = s
                    .pointer("/metadata/annotations/service.beta.kubernetes.io~1azure-load-balancer-internal-subnet")
                    .and_then(Value::as_str);
                let dual = arr(s, "/spec/ipFamilies").len() == 2;
                for v6 in [false, true].into_iter().filter(|v6| !v6 || dual) {
                    for p in arr(s, "/spec/ports") {
                        let port = p["port"].as_u64().unwrap() as u16;
                        expected_names
                            .insert(rule_name(base, subnet, str_at(p, "/protocol"), port, v6).to_lowercase());
                    }
                    if let Some(h) = s.pointer("/spec/healthCheckNodePort").and_then(Value::as_u64) {
                        expected_names.insert(rule_name(base, subnet, "TCP", h as u16, v6).to_lowercase());
                    }
                }
            }
            let mut frontends_of_probe: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for r in rules {
                let fip = id_key(str_at(r, "/properties/frontendIPConfiguration/id"));
                if let Some(p) = r.pointer("/properties/probe/id").and_then(Value::as_str) {
                    frontends_of_probe.entry(id_key(p)).or_default().push(fip.clone());
                }
                let n = str_at(r, "/name");
                if is_base_prefixed(n)
                    && !expected_names.contains(&n.to_lowercase())
                    && !orphan_fips.contains(&fip)
                {
                    add("orphaned-lb-rule", str_at(r, "/id"));
                }
            }
            for p in probes {
                let n = str_at(p, "/name");
                let fips = frontends_of_probe
                    .get(&id_key(str_at(p, "/id")))
                    .cloned()
                    .unwrap_or_default();
                if is_base_prefixed(n)
                    && !expected_names.contains(&n.to_lowercase())
                    && !fips.iter().any(|f| orphan_fips.contains(f))
                {
                    add("orphaned-lb-rule", str_at(p, "/id"));
                }
            }
            for (base, s) in &by_base {
                let subnet = s
                    .pointer("/metadata/annotations/service.beta.kubernetes.io~1azure-load-balancer-internal-subnet")
                    .and_then(Value::as_str);
                let hcnp = s.pointer("/spec/healthCheckNodePort").and_then(Value::as_u64);
                let mut bad = false;
                for p in arr(s, "/spec/ports") {
                    let name = rule_name(
                        base,
                        subnet,
                        str_at(p, "/protocol"),
                        p["port"].as_u64().unwrap() as u16,
                        false,
                    );
                    let Some(r) = rules
                        .iter()
                        .find(|r| str_at(r, "/name").eq_ignore_ascii_case(&name))
                    else {
                        continue;
                    };
                    let want = match hcnp {
                        Some(h) => Some(h),
                        None if str_at(p, "/protocol") == "TCP" => p["nodePort"].as_u64(),
                        None => None,
                    };
                    let Some(want) = want else { continue };
                    let probe = r
                        .pointer("/properties/probe/id")
                        .and_then(Value::as_str)
                        .and_then(probe_of);
                    bad |= probe.is_none_or(|pr| pr["properties"]["port"].as_u64() != Some(want));
                }
                if bad {
                    add("lb-health-probe-mismatch", &svc_ref(s));
                }
            }
        }

        // NSG: stale destinations, legacy rules of gone Services, and what it blocks.
        let cfg: Value = serde_json::from_str(&objs.cloud_config.as_ref().unwrap().1).unwrap();
        let nsg_id = format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkSecurityGroups/{}",
            cfg["securityGroupName"].as_str().unwrap()
        );
        let nsg = w.get(&nsg_id).expect("cluster NSG");
        let ingress: BTreeSet<String> = lb_svcs
            .iter()
            .flat_map(|s| {
                arr(s, "/status/loadBalancer/ingress")
                    .iter()
                    .map(|i| str_at(i, "/ip").to_string())
            })
            .collect();
        let dests = |r: &Value| -> Vec<String> {
            let mut v: Vec<String> = arr(r, "/properties/destinationAddressPrefixes")
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            if let Some(one) = r
                .pointer("/properties/destinationAddressPrefix")
                .and_then(Value::as_str)
            {
                v.push(one.to_string());
            }
            v
        };
        let nsg_value = nsg.value();
        let rules = arr(&nsg_value, "/properties/securityRules");
        for r in rules {
            let n = str_at(r, "/name");
            let prio = r["properties"]["priority"].as_u64().unwrap();
            if !(500..=4096).contains(&prio) {
                continue;
            }
            let stale_dest = dests(r)
                .iter()
                .any(|d| !ingress.contains(d) && !node_ips.contains(d));
            let gone = is_base_prefixed(n) && !by_base.contains_key(&n[..32]);
            if (n.starts_with("k8s-azure-lb_allow_") && stale_dest) || gone {
                add("orphaned-nsg-rule", str_at(r, "/id"));
            }
        }
        let mut ordered: Vec<&Value> = rules
            .iter()
            .chain(arr(&nsg_value, "/properties/defaultSecurityRules"))
            .collect();
        ordered.retain(|r| str_at(r, "/properties/direction") == "Inbound");
        ordered.sort_by_key(|r| r["properties"]["priority"].as_u64());
        for s in &lb_svcs {
            if s.pointer("/metadata/annotations/service.beta.kubernetes.io~1azure-load-balancer-internal")
                .is_some()
            {
                continue;
            }
            for ing in arr(s, "/status/loadBalancer/ingress") {
                let ip = str_at(ing, "/ip");
                for p in arr(s, "/spec/ports") {
                    let (port, proto) = (p["port"].as_u64().unwrap().to_string(), str_at(p, "/protocol"));
                    let first = ordered.iter().find(|r| {
                        let src = str_at(r, "/properties/sourceAddressPrefix");
                        let rp = str_at(r, "/properties/protocol");
                        let ports: Vec<String> = arr(r, "/properties/destinationPortRanges")
                            .iter()
                            .map(|x| x.as_str().unwrap().to_string())
                            .chain(
                                r.pointer("/properties/destinationPortRange")
                                    .and_then(Value::as_str)
                                    .map(String::from),
                            )
                            .collect();
                        (src == "*" || src == "Internet")
                            && (rp == "*" || rp.eq_ignore_ascii_case(proto))
                            && dests(r).iter().any(|d| d == "*" || d == ip)
                            && ports.iter().any(|x| x == "*" || *x == port)
                    });
                    if first.is_some_and(|r| str_at(r, "/properties/access") == "Deny") {
                        add("nsg-blocks-service-port", &svc_ref(s));
                    }
                }
            }
        }

        // DNS labels, endpoints, tunnel pods.
        let mut labels: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for s in &lb_svcs {
            if let Some(l) = s
                .pointer("/metadata/annotations/service.beta.kubernetes.io~1azure-dns-label-name")
                .and_then(Value::as_str)
            {
                labels.entry(l.to_lowercase()).or_default().push(s);
            }
        }
        // The Service whose PIP holds the label is fine; the others are reported (all of them
        // when none holds it).
        let holds = |s: &Value, label: &str| {
            let ips: Vec<&str> = arr(s, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| i["ip"].as_str())
                .collect();
            w.of_type("Microsoft.Network/publicIPAddresses").any(|p| {
                ips.contains(&str_at(&p.value(), "/properties/ipAddress"))
                    && str_at(&p.value(), "/properties/dnsSettings/domainNameLabel")
                        .eq_ignore_ascii_case(label)
            })
        };
        for (label, group) in labels.iter().filter(|(_, g)| g.len() > 1) {
            let any_holder = group.iter().any(|s| holds(s, label));
            for s in group {
                if !any_holder || !holds(s, label) {
                    add("dns-label-conflict", &svc_ref(s));
                }
            }
        }
        for s in &lb_svcs {
            let ready = objs.of_kind("EndpointSlice").any(|e| {
                str_at(e, "/metadata/namespace") == str_at(s, "/metadata/namespace")
                    && labels_has(e, "kubernetes.io/service-name").as_deref()
                        == Some(str_at(s, "/metadata/name"))
                    && arr(e, "/endpoints")
                        .iter()
                        .any(|x| x.pointer("/conditions/ready") != Some(&Value::Bool(false)))
            });
            if !ready {
                add("service-without-ready-endpoints", &svc_ref(s));
            }
        }
        for p in objs.of_kind("Pod") {
            let n = str_at(p, "/metadata/name");
            let tunnel = ["konnectivity-agent-", "tunnelfront-", "aks-link-"]
                .iter()
                .any(|x| n.starts_with(x));
            let ready = arr(p, "/status/conditions")
                .iter()
                .any(|c| str_at(c, "/type") == "Ready" && str_at(c, "/status") == "True");
            if tunnel && !(str_at(p, "/status/phase") == "Running" && ready) {
                add(
                    "aks-tunnel-unhealthy",
                    &format!("k8s://{}/kube-system/pods/{n}", meta.name),
                );
            }
        }
    }
    for r in w.resources.values() {
        if str_at(&r.value(), "/sku/name") == "Basic"
            && (r.type_is("Microsoft.Network/publicIPAddresses")
                || r.type_is("Microsoft.Network/loadBalancers"))
        {
            add("basic-sku-retired", &r.id);
        }
    }
    for rule in [
        "stale-backend-pool-member",
        "node-missing-from-backend-pool",
        "orphaned-lb-rule",
        "lb-health-probe-mismatch",
        "orphaned-nsg-rule",
        "nsg-blocks-service-port",
        "dns-label-conflict",
        "service-without-ready-endpoints",
        "aks-tunnel-unhealthy",
        "basic-sku-retired",
    ] {
        let want = of_rule(&fs, rule);
        assert!(!want.is_empty(), "{rule} is planted in the rich world");
        assert_eq!(got.remove(rule).unwrap_or_default(), want, "{rule}");
    }
}

/// Usage rows, cloud configs and resource-group mismatches re-derived from the world.
#[test]
fn quota_config_and_mismatch_match_an_independent_derivation() {
    let (d, _, w) = rich();
    let fs = expected(d.path());
    let mut quota = BTreeSet::new();
    for u in w.of_type(azaudit_world::USAGE_TYPE) {
        let (cur, limit) = (
            u.value()["currentValue"].as_u64().unwrap(),
            u.value()["limit"].as_u64().unwrap(),
        );
        if limit > 0 && cur * 5 >= limit * 4 {
            quota.insert(id_key(&u.id));
        }
    }
    for lb in w.of_type("Microsoft.Network/loadBalancers") {
        assert!(arr(&lb.value(), "/properties/frontendIPConfigurations").len() < 480);
        assert!(arr(&lb.value(), "/properties/loadBalancingRules").len() < 1200);
    }
    for nsg in w.of_type("Microsoft.Network/networkSecurityGroups") {
        assert!(arr(&nsg.value(), "/properties/securityRules").len() < 800);
    }
    assert!(!quota.is_empty());
    assert_eq!(quota, of_rule(&fs, "quota-pressure"));

    let mut configs = BTreeSet::new();
    let mut mismatch = BTreeSet::new();
    for meta in &w.meta.clusters {
        let objs = &w.clusters[&meta.name];
        let cfg: Value = serde_json::from_str(&objs.cloud_config.as_ref().unwrap().1).unwrap();
        // The Secret carries the same config as the file.
        let secret = objs.of_kind("Secret").next().unwrap();
        let data = str_at(secret, "/data/cloud-config");
        use base64::Engine;
        let from_secret: Value =
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(data).unwrap()).unwrap();
        assert_eq!(from_secret, cfg);
        let on = |k: &str| cfg[k].as_bool().unwrap_or(false);
        let secret_set = cfg
            .get("aadClientSecret")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if (on("useManagedIdentityExtension") && secret_set)
            || !on("cloudProviderRateLimit")
            || !on("useInstanceMetadata")
            || cfg["loadBalancerSku"].as_str() != Some("standard")
        {
            configs.insert(id_key(&format!(
                "k8s://{}/kube-system/secrets/azure-cloud-provider",
                meta.name
            )));
        }
        let rg = meta.resource_group.clone().unwrap().to_lowercase();
        for s in objs.of_kind("Service") {
            let ann = |k: &str| {
                s.pointer(&format!("/metadata/annotations/service.beta.kubernetes.io~1{k}"))
                    .and_then(Value::as_str)
            };
            let search_rg = ann("azure-load-balancer-resource-group").map_or(rg.clone(), str::to_lowercase);
            let by_name = ann("azure-pip-name");
            let by_ip = s.pointer("/spec/loadBalancerIP").and_then(Value::as_str);
            if by_name.is_none() && by_ip.is_none() {
                continue;
            }
            let matching: Vec<String> = w
                .of_type("Microsoft.Network/publicIPAddresses")
                .filter(|p| {
                    by_name.is_some_and(|n| str_at(&p.value(), "/name").eq_ignore_ascii_case(n))
                        || by_ip.is_some_and(|ip| str_at(&p.value(), "/properties/ipAddress") == ip)
                })
                .map(|p| p.resource_group().unwrap().to_lowercase())
                .collect();
            if !matching.is_empty() && !matching.contains(&search_rg) {
                mismatch.insert(id_key(&format!(
                    "k8s://{}/{}/services/{}",
                    meta.name,
                    str_at(s, "/metadata/namespace"),
                    str_at(s, "/metadata/name")
                )));
            }
        }
    }
    assert_eq!(configs, of_rule(&fs, "cloud-config-invalid"));
    assert!(!mismatch.is_empty());
    assert_eq!(mismatch, of_rule(&fs, "service-pip-resource-group-mismatch"));
}
