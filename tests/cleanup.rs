//! `azaudit cleanup plan` / `apply` end to end: the real binary against the in-process mock over
//! HTTPS (ARM, Entra ID, Kubernetes), on generated worlds.
//!
//! Every invariant of issue 7 has its own test:
//! - user-created, NAT gateway, prefix and Service-requested public IPs are never touched, not
//!   even by a hand-edited plan;
//! - a plan older than the resources it names does nothing to a changed resource;
//! - a frontend that a Service created after the plan uses is never removed;
//! - applying the same plan twice changes nothing the second time;
//! - a run killed with SIGKILL is completed by the next run, nothing lost or done twice, and the
//!   log tells what happened;
//!
//! plus: the plan covers exactly the cleanup-eligible ground truth, apply removes exactly that and
//! a second audit finds no orphans; dry runs write nothing; no confirmation, no apply; locks and
//! in-use refusals are reported plainly and not retried; `--min-age`; the review formats.
//!
//! Nothing here leaves loopback: the mock binds 127.0.0.1, every endpoint is passed explicitly,
//! and every command runs with an emptied environment and `AZAUDIT_LOOPBACK_ONLY=1`. Every output
//! is searched for the client secret and for tokens (`eyJ`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use azaudit::cleanup::edit::pip_digest;
use azaudit_mocks::config::{Fault, FaultScope, LockConfig, LockLevel, MockConfig, WritesConfig};
use azaudit_mocks::generate::{Options, generate};
use azaudit_mocks::{ReadyInfo, RunningMock, ServeOptions};
use azaudit_world::{World, id_key};
use serde_json::{Value, json};

const CLEANUP_RULES: &[&str] = &[
    "orphaned-public-ip",
    "orphaned-lb-frontend",
    "orphaned-lb-rule",
    "orphaned-nsg-rule",
];

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// A generated world in a fresh directory.
fn generated(seed: u64, subscriptions: usize, clusters: usize, services: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        seed,
        subscriptions,
        clusters,
        services,
        nodes: clusters * 5,
        extra_resources: 0,
        defect_rate: 0.1,
        rates: BTreeMap::new(),
        mock: json!({}),
        chunk_size: 5000,
    };
    generate(dir.path(), &opts, true).unwrap();
    dir
}

/// The cleanup-eligible ground truth of a generated world: (rule, lower-cased resource).
fn cleanup_truth(world_dir: &Path) -> BTreeSet<(String, String)> {
    let expected: Vec<Value> =
        serde_json::from_slice(&std::fs::read(world_dir.join("expected-findings.json")).unwrap()).unwrap();
    expected
        .iter()
        .filter(|e| CLEANUP_RULES.contains(&e["rule"].as_str().unwrap()))
        .map(|e| (s(&e["rule"]), s(&e["resource"]).to_ascii_lowercase()))
        .collect()
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A mock serving one world, and everything a command needs to reach it.
struct Env {
    rt: tokio::runtime::Runtime,
    mock: Option<RunningMock>,
    ready: ReadyInfo,
    dir: tempfile::TempDir,
    world_dir: PathBuf,
}

impl Env {
    fn start(world_dir: &Path, tweak: impl FnOnce(&mut MockConfig)) -> Env {
        let world = World::load(world_dir).unwrap();
        Self::start_world(world, world_dir, tweak)
    }

    fn start_world(world: World, world_dir: &Path, tweak: impl FnOnce(&mut MockConfig)) -> Env {
        let mut config = MockConfig::from_world_meta(world.meta.mock.as_ref()).unwrap();
        // Fast long-running operations unless a test wants Retry-After.
        config.writes = WritesConfig {
            async_polls: 1,
            retry_after_seconds: 0,
        };
        tweak(&mut config);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let mut toml = String::new();
        for c in &world.meta.clusters {
            toml.push_str(&format!(
                "[[cluster]]\ncontext = {:?}\ncluster_name = {:?}\nsubscription = {:?}\nresource_group = {:?}\n\n",
                c.name,
                c.cluster_name_tag.clone().unwrap_or_default(),
                c.subscription_id.clone().unwrap_or_default(),
                c.resource_group.clone().unwrap_or_default()
            ));
        }
        std::fs::write(dir.path().join("azaudit.toml"), toml).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let files = dir.path().join("files");
        let mock = rt
            .block_on(azaudit_mocks::start(ServeOptions {
                world,
                listen: "127.0.0.1:0".parse().unwrap(),
                files_dir: files,
                config: Some(config),
            }))
            .unwrap();
        let ready = mock.ready.clone();
        assert!(
            ready.arm_endpoint.starts_with("https://127.0.0.1:"),
            "{}",
            ready.arm_endpoint
        );
        Env {
            rt,
            mock: Some(mock),
            ready,
            dir,
            world_dir: world_dir.to_path_buf(),
        }
    }

    fn state(&self) -> &azaudit_mocks::state::MockState {
        &self.mock.as_ref().unwrap().state
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The flags every live command of these tests takes: the mock as a custom cloud, its
    /// kubeconfig, the clusters' config, no cache, fast polling and writes.
    fn live_flags(&self) -> Vec<String> {
        let r = &self.ready;
        [
            "--auth",
            "service-principal",
            "--arm-endpoint",
            &r.arm_endpoint,
            "--authority-host",
            &r.authority_host,
            "--ca-file",
            &r.ca_file,
            "--kubeconfig",
            &r.kubeconfig,
            "--config",
            self.path("azaudit.toml").to_str().unwrap(),
            "--no-cache",
            "--poll-interval",
            "20ms",
            "--max-writes-per-second",
            "50",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    }

    /// `azaudit <args>` with an emptied environment and the credential in the environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_azaudit"));
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.path("home"))
            .env("AZAUDIT_LOOPBACK_ONLY", "1")
            .env("NO_COLOR", "1")
            .env("AZURE_TENANT_ID", &self.ready.tenant_id)
            .env("AZURE_CLIENT_ID", &self.ready.client_id)
            .env("AZURE_CLIENT_SECRET", &self.ready.client_secret)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs a command and checks that no secret appears in what it printed.
    fn run(&self, mut c: Command) -> Ran {
        let out = c.output().expect("azaudit runs");
        let r = Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.no_secrets(&r.all());
        r
    }

    fn no_secrets(&self, text: &str) {
        assert!(
            !text.contains(&self.ready.client_secret),
            "the client secret appears in azaudit's output:\n{text}"
        );
        assert!(
            !text.contains("eyJ"),
            "a token appears in azaudit's output:\n{text}"
        );
    }

    /// `cleanup plan` against the live mock; returns the plan.
    fn plan(&self, out: &str, extra: &[&str]) -> Value {
        let out_path = self.path(out);
        let mut args = vec![
            "cleanup",
            "plan",
            "--all-contexts",
            "--out",
            out_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let mut c = self.command(&args);
        c.args(self.live_flags());
        let r = self.run(c);
        assert_eq!(r.code, 0, "plan failed:\n{}", r.all());
        serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap()
    }

    /// `cleanup apply PLAN --yes --format json` (plus `extra`).
    fn apply(&self, plan: &str, extra: &[&str]) -> Ran {
        let p = self.path(plan);
        let mut args = vec!["cleanup", "apply", p.to_str().unwrap(), "--format", "json"];
        args.extend_from_slice(extra);
        let mut c = self.command(&args);
        c.args(self.live_flags());
        self.run(c)
    }

    /// A live audit of every cluster.
    fn audit(&self) -> Value {
        let mut c = self.command(&["audit", "--all-contexts", "--format", "json"]);
        c.args(self.live_flags());
        let r = self.run(c);
        assert!(r.code == 0 || r.code == 1, "audit failed:\n{}", r.all());
        let v = r.json();
        assert_eq!(v["complete"], true, "{}", v["gaps"]);
        v
    }

    /// Every write the mock received, in order.
    fn writes(&self) -> Vec<Value> {
        let st = self.state().stats.lock().unwrap();
        st.writes
            .iter()
            .map(|w| serde_json::to_value(w).unwrap())
            .collect()
    }

    fn get(&self, id: &str) -> Option<Value> {
        self.state().world.read().unwrap().get(id).map(|r| r.value())
    }

    fn with_world(&self, f: impl FnOnce(&mut World)) {
        f(&mut self.state().world.write().unwrap());
    }

    fn write_plan(&self, name: &str, plan: &Value) {
        std::fs::write(self.path(name), serde_json::to_vec_pretty(plan).unwrap()).unwrap();
    }

    fn log(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.path(name))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(m) = self.mock.take() {
            self.rt.block_on(m.shutdown());
        }
    }
}

fn actions(plan: &Value) -> &Vec<Value> {
    plan["actions"].as_array().expect("actions")
}

/// The id an action writes: its parent (edits) or itself (public IP deletes).
fn target(a: &Value) -> String {
    a["parent"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| s(&a["resource"]))
}

fn outcomes(report: &Value) -> BTreeMap<String, Value> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (s(&r["action"]), r.clone()))
        .collect()
}

fn successful_writes_per_target(writes: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for w in writes {
        let st = w["status"].as_u64().unwrap();
        if (200..300).contains(&st) {
            *m.entry(id_key(&s(&w["id"]))).or_insert(0) += 1;
        }
    }
    m
}

fn actions_per_target(plan: &Value) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for a in actions(plan) {
        *m.entry(id_key(&target(a))).or_insert(0) += 1;
    }
    m
}

/// Findings of the cleanup rules in a report.
fn orphans(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| CLEANUP_RULES.contains(&f["rule"].as_str().unwrap()))
        .map(|f| format!("{} {}", s(&f["rule"]), s(&f["resource"])))
        .collect()
}

fn finding_keys(report: &Value, keep: impl Fn(&str) -> bool) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| keep(f["rule"].as_str().unwrap()))
        .map(|f| (s(&f["rule"]), s(&f["resource"]).to_ascii_lowercase()))
        .collect()
}

fn plan_then_apply_matches_ground_truth(seed: u64, subscriptions: usize, clusters: usize, services: usize) {
    let w = generated(seed, subscriptions, clusters, services);
    let env = Env::start(w.path(), |_| {});
    let before = env.audit();

    // The plan covers exactly the cleanup-eligible ground truth.
    let plan = env.plan("plan.json", &[]);
    let planned: BTreeSet<(String, String)> = actions(&plan)
        .iter()
        .map(|a| (s(&a["finding"]["rule"]), s(&a["resource"]).to_ascii_lowercase()))
        .collect();
    let truth = cleanup_truth(w.path());
    assert!(!truth.is_empty(), "seed {seed}: nothing planted");
    assert_eq!(
        planned, truth,
        "seed {seed}: plan != ground truth; not planned: {}",
        plan["not_planned"]
    );
    assert_eq!(plan["plan_version"], 1);
    // The same world offline gives the same actions.
    let offline = env.run({
        let mut c = env.command(&[
            "cleanup",
            "plan",
            "--snapshot",
            env.world_dir.to_str().unwrap(),
            "--config",
            env.path("azaudit.toml").to_str().unwrap(),
        ]);
        c.env_remove("AZURE_CLIENT_SECRET");
        c
    });
    assert_eq!(offline.code, 0, "{}", offline.all());
    let ids = |p: &Value| -> Vec<String> { actions(p).iter().map(|a| s(&a["id"])).collect() };
    assert_eq!(ids(&offline.json()), ids(&plan));

    // Apply removes exactly that: one successful write per action, to the planned targets only.
    let r = env.apply("plan.json", &["--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let report = r.json();
    for (id, o) in outcomes(&report) {
        assert_eq!(o["outcome"], "done", "seed {seed}: action {id}: {o}");
    }
    assert_eq!(
        successful_writes_per_target(&env.writes()),
        actions_per_target(&plan),
        "seed {seed}"
    );

    // A second audit reports no orphans, and nothing else got worse: the only new findings are
    // the user-created addresses the removed frontends held (released, never deleted).
    let after = env.audit();
    assert!(orphans(&after).is_empty(), "seed {seed}: {:#?}", orphans(&after));
    // (The read-budget rule depends on the run, not the estate.)
    let other = |r: &str| !CLEANUP_RULES.contains(&r) && r != "arm-read-budget-low";
    let (b, a) = (finding_keys(&before, other), finding_keys(&after, other));
    assert!(
        b.is_subset(&a),
        "seed {seed}: findings vanished: {:?}",
        b.difference(&a).collect::<Vec<_>>()
    );
    let released: BTreeSet<String> = actions(&plan)
        .iter()
        .filter(|x| x["kind"] == "remove-frontend")
        .filter_map(|x| {
            x["finding"]["evidence"]["public_ip"]
                .as_str()
                .map(|p| p.to_ascii_lowercase())
        })
        .collect();
    for (rule, res) in a.difference(&b) {
        assert!(
            rule == "unattached-public-ip" && released.contains(res),
            "seed {seed}: new finding {rule} {res}"
        );
    }
    // And there is nothing left to plan.
    assert!(actions(&env.plan("plan2.json", &[])).is_empty(), "seed {seed}");
}

#[test]
fn plan_and_apply_on_generated_worlds_remove_exactly_the_cleanup_eligible_ground_truth() {
    plan_then_apply_matches_ground_truth(1, 1, 2, 40);
    plan_then_apply_matches_ground_truth(42, 2, 3, 90);
}

#[test]
fn invariant_user_created_nat_prefix_and_requested_public_ips_are_never_touched() {
    let w = generated(3, 1, 2, 40);
    let mut world = World::load(w.path()).unwrap();
    // A tagged orphan that was allocated from a prefix: the orphan rule reports it, the plan's
    // rail must not delete it.
    let (rg, sub) = {
        let c = &world.meta.clusters[0];
        (
            c.resource_group.clone().unwrap(),
            c.subscription_id.clone().unwrap(),
        )
    };
    let tag = world.meta.clusters[0].cluster_name_tag.clone().unwrap();
    let prefixed = format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/publicIPAddresses/{tag}-prefixed-orphan"
    );
    world.resources.insert(
        id_key(&prefixed),
        azaudit_world::ArmResource::new(
            prefixed.clone(),
            "Microsoft.Network/publicIPAddresses".into(),
            &json!({"id": prefixed, "name": format!("{tag}-prefixed-orphan"), "type": "Microsoft.Network/publicIPAddresses",
                "location": "northeurope", "etag": "W/\"prefixed-1\"", "sku": {"name": "Standard"},
                "tags": {"k8s-azure-service": "default/gone-long-ago", "k8s-azure-cluster-name": tag},
                "properties": {"ipAddress": "20.50.99.1", "publicIPAllocationMethod": "Static",
                               "publicIPPrefix": {"id": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/publicIPPrefixes/{tag}-prefix")}}}),
            "arm/extra.json".into(),
        ),
    );
    let lookalikes: Vec<Value> =
        serde_json::from_slice(&std::fs::read(w.path().join("lookalikes.json")).unwrap()).unwrap();
    let protected_kinds = [
        "nat-gateway-pip",
        "public-ip-prefix-pip",
        "byo-pip-by-ip-in-use",
        "byo-pip-by-name-in-use",
        "aks-outbound-pip",
    ];
    let mut protected: Vec<String> = lookalikes
        .iter()
        .filter(|l| protected_kinds.contains(&l["kind"].as_str().unwrap()))
        .map(|l| s(&l["resource"]))
        .collect();
    let kinds: BTreeSet<&str> = lookalikes
        .iter()
        .filter(|l| protected_kinds.contains(&l["kind"].as_str().unwrap()))
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.len(),
        protected_kinds.len(),
        "the generator plants every kind"
    );
    protected.push(prefixed.clone());
    // Untagged, unattached addresses nobody asks for: user-created, reported as such.
    let expected: Vec<Value> =
        serde_json::from_slice(&std::fs::read(w.path().join("expected-findings.json")).unwrap()).unwrap();
    let user_created: Vec<String> = expected
        .iter()
        .filter(|e| e["rule"] == "unattached-public-ip")
        .map(|e| s(&e["resource"]))
        .collect();
    assert!(
        user_created.len() >= 2,
        "need two user-created addresses: {user_created:?}"
    );
    let (opted_in, untouched_user) = (user_created[0].clone(), user_created[1..].to_vec());
    protected.extend(untouched_user.iter().cloned());
    let nat = lookalikes
        .iter()
        .find(|l| l["kind"] == "nat-gateway-pip")
        .map(|l| s(&l["resource"]))
        .unwrap();
    let requested = lookalikes
        .iter()
        .find(|l| l["kind"] == "byo-pip-by-name-in-use")
        .map(|l| s(&l["resource"]))
        .unwrap();
    let env = Env::start_world(world, w.path(), |_| {});

    // The plan: even when --include-user-created names a NAT or Service-requested address, only
    // the unattached user-created one it names is planned.
    let plan = env.plan(
        "plan.json",
        &[
            "--include-user-created",
            &opted_in,
            "--include-user-created",
            &nat,
            "--include-user-created",
            &requested,
        ],
    );
    let planned: BTreeSet<String> = actions(&plan)
        .iter()
        .map(|a| id_key(&s(&a["resource"])))
        .collect();
    for p in &protected {
        assert!(!planned.contains(&id_key(p)), "{p} was planned");
    }
    let opt = actions(&plan)
        .iter()
        .find(|a| id_key(&s(&a["resource"])) == id_key(&opted_in))
        .expect("the opted-in user-created address is planned");
    assert_eq!(opt["user_created"], true);
    assert_eq!(opt["finding"]["rule"], "unattached-public-ip");
    let reason = |id: &str| -> String {
        plan["not_planned"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| id_key(&s(&n["resource"])) == id_key(id))
            .map(|n| s(&n["reason"]))
            .unwrap_or_else(|| panic!("{id} is not under not_planned: {}", plan["not_planned"]))
    };
    assert!(
        reason(&prefixed).contains("public IP prefix"),
        "{}",
        reason(&prefixed)
    );
    assert!(
        reason(&nat).contains("--include-user-created"),
        "{}",
        reason(&nat)
    );
    assert!(reason(&requested).contains("--include-user-created"));

    // A hand-edited plan that names them anyway: apply re-checks and touches none of them.
    let mut forged = plan.clone();
    let template = actions(&plan)
        .iter()
        .find(|a| a["kind"] == "delete-public-ip")
        .unwrap()
        .clone();
    for (i, p) in protected.iter().enumerate() {
        let v = env.get(p).unwrap_or_else(|| panic!("{p} is in the mock"));
        let mut a = template.clone();
        a["id"] = json!(format!("forged{i:02}"));
        a["order"] = json!(1000 + i);
        a["resource"] = json!(p);
        a["etag"] = v["etag"].clone();
        a["digest"] = json!(pip_digest(&v));
        a["depends_on"] = json!([]);
        let tagged = v["tags"]["k8s-azure-service"].is_string() || v["tags"]["service"].is_string();
        a["user_created"] = json!(!tagged);
        a["finding"]["rule"] = json!(if tagged {
            "orphaned-public-ip"
        } else {
            "unattached-public-ip"
        });
        forged["actions"].as_array_mut().unwrap().push(a);
    }
    env.write_plan("forged.json", &forged);
    let r = env.apply("forged.json", &["--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let results = outcomes(&r.json());
    for i in 0..protected.len() {
        let o = &results[&format!("forged{i:02}")];
        assert_eq!(o["outcome"], "skipped", "{}: {o}", protected[i]);
    }
    assert_eq!(results[&s(&opt["id"])]["outcome"], "done");
    let written: BTreeSet<String> = env.writes().iter().map(|w| id_key(&s(&w["id"]))).collect();
    for p in &protected {
        assert!(!written.contains(&id_key(p)), "{p} was written to");
        assert!(env.get(p).is_some(), "{p} is gone");
    }
    assert!(env.get(&opted_in).is_none(), "the opted-in address was deleted");
}

#[test]
fn invariant_a_plan_older_than_its_resources_does_nothing_to_what_changed() {
    let w = generated(5, 1, 2, 40);
    let env = Env::start(w.path(), |_| {});
    let plan = env.plan("plan.json", &[]);
    let pick = |kind: &str| -> Value {
        actions(&plan)
            .iter()
            .find(|a| a["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {plan}"))
            .clone()
    };
    let pip = pick("delete-public-ip");
    let frontend = pick("remove-frontend");
    let nsg_action = actions(&plan)
        .iter()
        .find(|a| {
            a["kind"].as_str().unwrap().contains("nsg") && id_key(&target(a)) != id_key(&target(&frontend))
        })
        .expect("an NSG action")
        .clone();
    let changed: BTreeSet<String> = [target(&pip), target(&frontend), target(&nsg_action)]
        .iter()
        .map(|t| id_key(t))
        .collect();
    // Someone else changes them after the plan: a tag on the public IP and on the load balancer,
    // a rule of their own in the NSG. Each change gets a new ETag, as in ARM.
    env.with_world(|world| {
        let pip_r = world.resources.get_mut(&id_key(&target(&pip))).unwrap();
        pip_r.edit(|v| {
            v["tags"]["owner"] = json!("team-a");
            v["etag"] = json!("W/\"changed-by-someone\"");
        });
        let lb = world.resources.get_mut(&id_key(&target(&frontend))).unwrap();
        lb.edit(|v| {
            v["tags"]["cost-center"] = json!("42");
            v["etag"] = json!("W/\"changed-by-someone-else\"");
        });
        let nsg = world.resources.get_mut(&id_key(&target(&nsg_action))).unwrap();
        nsg.edit(|v| v["properties"]["securityRules"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "allow-office", "properties": {"priority": 3000, "direction": "Inbound", "access": "Allow",
                "protocol": "Tcp", "sourceAddressPrefix": "203.0.113.0/24", "sourcePortRange": "*",
                "destinationAddressPrefix": "*", "destinationPortRange": "22"}})));
        nsg.edit(|v| v["etag"] = json!("W/\"changed-too\""));
    });
    // And someone decides, after the plan, to keep another address: a suppression in the config.
    let kept = actions(&plan)
        .iter()
        .find(|a| a["kind"] == "delete-public-ip" && !changed.contains(&id_key(&target(a))))
        .expect("a second public IP")
        .clone();
    let mut toml = std::fs::read_to_string(env.path("azaudit.toml")).unwrap();
    toml.push_str(&format!(
        "[[suppress]]\nrule = \"orphaned-public-ip\"\nresource = {:?}\nreason = \"kept for the DR drill (CHG-42)\"\n",
        s(&kept["resource"])
    ));
    std::fs::write(env.path("azaudit.toml"), toml).unwrap();
    let before: BTreeMap<String, Value> = changed.iter().map(|t| (t.clone(), env.get(t).unwrap())).collect();
    let r = env.apply("plan.json", &["--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let results = outcomes(&r.json());
    let k = &results[&s(&kept["id"])];
    assert_eq!(k["outcome"], "skipped", "{k}");
    assert!(s(&k["reason"]).contains("CHG-42"), "{k}");
    assert!(env.get(&s(&kept["resource"])).is_some());
    for a in actions(&plan) {
        let o = &results[&s(&a["id"])];
        if a["id"] == kept["id"] {
            continue;
        }
        if changed.contains(&id_key(&target(a))) {
            assert_eq!(o["outcome"], "skipped", "{}: {o}", s(&a["resource"]));
            let reason = s(&o["reason"]);
            assert!(
                reason.contains("changed since the plan") || reason.contains("depends on"),
                "{reason}"
            );
        } else if a["depends_on"].as_array().is_none_or(|d| d.is_empty()) {
            assert_eq!(o["outcome"], "done", "{}: {o}", s(&a["resource"]));
        }
    }
    // Not one write reached a changed resource, and each is exactly as the other party left it.
    for w in env.writes() {
        assert!(!changed.contains(&id_key(&s(&w["id"]))), "written: {w}");
    }
    for (t, v) in before {
        assert_eq!(env.get(&t).unwrap(), v, "{t}");
    }
}

#[test]
fn invariant_a_frontend_used_by_a_service_created_after_the_plan_is_never_removed() {
    let w = generated(7, 1, 2, 40);
    let env = Env::start(w.path(), |_| {});
    let plan = env.plan("plan.json", &[]);
    // An orphaned frontend with a public IP (and the plan's delete of that IP, if it has one).
    let fe = actions(&plan)
        .iter()
        .find(|a| a["kind"] == "remove-frontend" && a["finding"]["evidence"]["public_ip"].is_string())
        .expect("an orphaned frontend with a public IP")
        .clone();
    let pip_id = s(&fe["finding"]["evidence"]["public_ip"]);
    let pip_action = actions(&plan)
        .iter()
        .find(|x| x["kind"] == "delete-public-ip" && id_key(&s(&x["resource"])) == id_key(&pip_id))
        .cloned();
    let ip = s(&env.get(&pip_id).unwrap()["properties"]["ipAddress"]);
    let cluster = s(&fe["cluster"]);
    // After the plan, someone deploys a Service that wants that very address back.
    env.with_world(|world| {
        world.clusters.get_mut(&cluster).unwrap().objects.push(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "checkout-v2", "namespace": "default", "uid": "6b1f3c2e-9d8a-4f7b-8e21-0c4d5a6b7c8d",
                         "creationTimestamp": "2026-11-27T03:00:00Z", "annotations": {}},
            "spec": {"type": "LoadBalancer", "loadBalancerIP": ip, "clusterIP": "10.0.250.250", "clusterIPs": ["10.0.250.250"],
                     "ipFamilies": ["IPv4"], "externalTrafficPolicy": "Cluster",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443, "nodePort": 31443}]},
            "status": {"loadBalancer": {}}
        }));
    });
    let r = env.apply("plan.json", &["--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let results = outcomes(&r.json());
    let fe_out = &results[&s(&fe["id"])];
    assert_eq!(fe_out["outcome"], "skipped", "{fe_out}");
    let reason = s(&fe_out["reason"]);
    assert!(
        reason.contains("no longer holds") && reason.contains("default/checkout-v2"),
        "{reason}"
    );
    if let Some(p) = &pip_action {
        assert_eq!(results[&s(&p["id"])]["outcome"], "skipped");
    }
    // The frontend is still on its load balancer and the address still exists.
    let lb = env.get(&s(&fe["parent"])).unwrap();
    let names: Vec<String> = lb["properties"]["frontendIPConfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| s(&f["name"]))
        .collect();
    assert!(
        names
            .iter()
            .any(|n| fe["resource"].as_str().unwrap().ends_with(n.as_str())),
        "{names:?}"
    );
    assert!(env.get(&pip_id).is_some());
    assert!(
        !env.writes()
            .iter()
            .any(|w| id_key(&s(&w["id"])) == id_key(&pip_id))
    );
}

#[test]
fn invariant_applying_the_same_plan_twice_changes_nothing_the_second_time() {
    let w = generated(11, 1, 2, 40);
    let env = Env::start(w.path(), |_| {});
    let plan = env.plan("plan.json", &[]);
    let first = env.apply("plan.json", &["--yes"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let writes = env.writes().len();
    assert_eq!(writes, actions(&plan).len());
    let world_after_first = env.state().world.read().unwrap().resources.clone();

    let second = env.apply("plan.json", &["--yes"]);
    assert_eq!(second.code, 0, "{}", second.all());
    for (id, o) in outcomes(&second.json()) {
        assert_eq!(o["outcome"], "already-done", "{id}: {o}");
    }
    assert_eq!(env.writes().len(), writes, "the second run wrote");
    let world_after_second = env.state().world.read().unwrap().resources.clone();
    assert!(
        world_after_first == world_after_second,
        "the second run changed the estate"
    );
    // The log tells both runs apart, and holds no secret.
    env.no_secrets(&std::fs::read_to_string(env.path("plan.json.log.jsonl")).unwrap());
    let log = env.log("plan.json.log.jsonl");
    let runs: BTreeSet<String> = log.iter().map(|e| s(&e["run"])).collect();
    assert_eq!(runs.len(), 2);
    let done = log.iter().filter(|e| e["event"] == "done").count();
    assert_eq!(done, actions(&plan).len());
}

#[test]
fn invariant_a_killed_apply_is_completed_by_the_next_run_nothing_lost_nothing_twice() {
    let w = generated(13, 1, 2, 40);
    // Slow enough that the kill lands mid-run: latency on every request, and ARM's Retry-After
    // (1 s, honoured) on every long-running operation.
    let env = Env::start(w.path(), |c| {
        c.latency_ms = 30;
        c.writes = WritesConfig {
            async_polls: 1,
            retry_after_seconds: 1,
        };
    });
    let plan = env.plan("plan.json", &[]);
    let total = actions(&plan).len();
    assert!(total >= 4, "{total}");
    let log_path = env.path("plan.json.log.jsonl");
    let mut c = env.command(&[
        "cleanup",
        "apply",
        env.path("plan.json").to_str().unwrap(),
        "--yes",
    ]);
    c.args(env.live_flags())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let started = Instant::now();
    loop {
        let done = env
            .log("plan.json.log.jsonl")
            .iter()
            .any(|e| e["event"] == "done");
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no action was done in time"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    env.no_secrets(&format!("{out}\n{err}"));
    let first_log = env.log("plan.json.log.jsonl");
    let first_done = first_log.iter().filter(|e| e["event"] == "done").count();
    assert!(first_done < total, "the run finished before it was killed");
    assert!(!first_log.iter().any(|e| e["event"] == "run-finished"));

    let second = env.apply("plan.json", &["--yes"]);
    assert_eq!(second.code, 0, "{}", second.all());
    let log = env.log("plan.json.log.jsonl");
    assert!(std::fs::metadata(&log_path).is_ok());
    let runs: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for e in &log {
            let r = s(&e["run"]);
            if !v.contains(&r) {
                v.push(r);
            }
        }
        v
    };
    assert_eq!(runs.len(), 2);
    // Every action: done exactly once; or started by the killed run (its write landed, its `done`
    // line did not) and found already done by the second run.
    for a in actions(&plan) {
        let id = s(&a["id"]);
        let ev = |run: &str, event: &str| {
            log.iter()
                .filter(|e| e["action"] == id.as_str() && e["run"] == run && e["event"] == event)
                .count()
        };
        let done = ev(&runs[0], "done") + ev(&runs[1], "done");
        let cut = ev(&runs[0], "started") == 1
            && ev(&runs[0], "done") == 0
            && log.iter().any(|e| {
                e["action"] == id.as_str()
                    && e["run"] == runs[1].as_str()
                    && e["event"] == "skipped"
                    && s(&e["reason"]).starts_with("already done")
            });
        assert!(
            done == 1 || (done == 0 && cut),
            "action {} ({}): {:#?}",
            a["order"],
            a["kind"],
            log
        );
        assert!(done <= 1);
    }
    // The mock saw exactly one successful write per action.
    assert_eq!(
        successful_writes_per_target(&env.writes()),
        actions_per_target(&plan)
    );
    assert!(actions(&env.plan("plan2.json", &[])).is_empty());
}

#[test]
fn dry_run_writes_nothing_and_keeps_no_log() {
    let w = generated(1, 1, 2, 40);
    let env = Env::start(w.path(), |_| {});
    let plan = env.plan("plan.json", &[]);
    let r = env.apply("plan.json", &["--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let report = r.json();
    assert_eq!(report["dry_run"], true);
    for (id, o) in outcomes(&report) {
        assert_eq!(o["outcome"], "would-apply", "{id}: {o}");
    }
    assert_eq!(outcomes(&report).len(), actions(&plan).len());
    assert!(env.writes().is_empty());
    assert!(!env.path("plan.json.log.jsonl").exists());
}

#[test]
fn apply_without_a_terminal_needs_yes() {
    let w = generated(1, 1, 2, 40);
    let env = Env::start(w.path(), |_| {});
    env.plan("plan.json", &[]);
    let mut c = env.command(&["cleanup", "apply", env.path("plan.json").to_str().unwrap()]);
    c.args(env.live_flags());
    let r = env.run(c);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr.contains("--yes") && r.stderr.contains("not a terminal"),
        "{}",
        r.stderr
    );
    assert!(env.writes().is_empty());
}

#[test]
fn locks_and_in_use_refusals_are_reported_plainly_and_never_retried() {
    let w = generated(17, 1, 2, 40);
    let truth: Vec<String> = cleanup_truth(w.path())
        .into_iter()
        .filter(|(r, _)| r == "orphaned-public-ip")
        .map(|(_, id)| id)
        .collect();
    assert!(truth.len() >= 2, "{truth:?}");
    let world = World::load(w.path()).unwrap();
    let locked = world.get(&truth[0]).unwrap().id.clone();
    let in_use = world.get(&truth[1]).unwrap().id.clone();
    let env = Env::start_world(world, w.path(), |c| {
        c.locks = vec![LockConfig::Level {
            scope: locked.clone(),
            level: LockLevel::CanNotDelete,
        }];
    });
    let plan = env.plan("plan.json", &[]);
    // After the plan, a VM's NIC takes the second address; ARM's back-reference on the address
    // has not caught up yet, so only the delete itself finds out.
    env.with_world(|world| {
        let nic = in_use.replace("publicIPAddresses", "networkInterfaces").replace(
            in_use.rsplit('/').next().unwrap(),
            "jumpbox-nic",
        );
        world.resources.insert(
            id_key(&nic),
            azaudit_world::ArmResource::new(
                nic.clone(),
                "Microsoft.Network/networkInterfaces".into(),
                &json!({"id": nic, "name": "jumpbox-nic", "type": "Microsoft.Network/networkInterfaces", "location": "northeurope",
                    "properties": {"ipConfigurations": [{"name": "ipconfig1", "id": format!("{nic}/ipConfigurations/ipconfig1"),
                        "properties": {"privateIPAddress": "10.99.0.4", "publicIPAddress": {"id": in_use}}}]}}),
                "arm/extra.json".into(),
            ),
        );
    });
    let r = env.apply("plan.json", &["--yes"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let results = outcomes(&r.json());
    let by_resource = |id: &str| -> Value {
        let a = actions(&plan)
            .iter()
            .find(|a| id_key(&s(&a["resource"])) == id_key(id))
            .unwrap();
        results[&s(&a["id"])].clone()
    };
    let l = by_resource(&locked);
    assert_eq!(
        (l["outcome"].as_str(), l["error_kind"].as_str()),
        (Some("failed"), Some("locked")),
        "{l}"
    );
    assert!(s(&l["error"]).contains("ScopeLocked") && s(&l["error"]).contains("never removes locks"));
    assert_eq!(l["expected"], true);
    let u = by_resource(&in_use);
    assert_eq!(
        (u["outcome"].as_str(), u["error_kind"].as_str()),
        (Some("failed"), Some("in-use")),
        "{u}"
    );
    assert!(s(&u["error"]).contains("PublicIPAddressCannotBeDeleted"));
    // The run went on: everything else is done.
    let done = results.values().filter(|o| o["outcome"] == "done").count();
    assert_eq!(done, actions(&plan).len() - 2);
    // Each refused delete was sent once, not retried.
    for id in [&locked, &in_use] {
        let n = env
            .writes()
            .iter()
            .filter(|w| id_key(&s(&w["id"])) == id_key(id))
            .count();
        assert_eq!(n, 1, "{id}");
    }
    // The log says so plainly.
    let log = env.log("plan.json.log.jsonl");
    let kinds: BTreeSet<String> = log
        .iter()
        .filter(|e| e["event"] == "failed")
        .map(|e| s(&e["error_kind"]))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["in-use".to_string(), "locked".to_string()])
    );
    // And the text output names the lock.
    let mut c = env.command(&[
        "cleanup",
        "apply",
        env.path("plan.json").to_str().unwrap(),
        "--yes",
    ]);
    c.args(env.live_flags());
    let again = env.run(c);
    assert_eq!(again.code, 1);
    assert!(
        again.stdout.contains("FAILED") && again.stdout.contains("lock"),
        "{}",
        again.stdout
    );
}

#[test]
fn min_age_keeps_young_findings_out_of_the_plan_and_never_writes_the_state() {
    let w = generated(1, 1, 2, 40);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let cfg = {
        let world = World::load(w.path()).unwrap();
        let mut toml = String::new();
        for c in &world.meta.clusters {
            toml.push_str(&format!(
                "[[cluster]]\ncontext = {:?}\ncluster_name = {:?}\n\n",
                c.name,
                c.cluster_name_tag.clone().unwrap_or_default()
            ));
        }
        let p = tmp.path().join("azaudit.toml");
        std::fs::write(&p, toml).unwrap();
        p
    };
    let run = |args: &[&str]| -> Ran {
        let out = Command::new(env!("CARGO_BIN_EXE_azaudit"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", tmp.path())
            .args(args)
            .output()
            .unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    // The nightly audit saw today's orphans ten days ago.
    let a = run(&[
        "audit",
        "--snapshot",
        w.path().to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--now",
        "2026-11-01T03:00:00Z",
        "--format",
        "json",
    ]);
    assert!(a.code == 0 || a.code == 1, "{}", a.all());
    // Since then a Service was deleted: its leftovers are new.
    let mut world = World::load(w.path()).unwrap();
    let truth = cleanup_truth(w.path());
    let (cluster, gone) = world
        .clusters
        .iter()
        .find_map(|(name, c)| {
            c.objects
                .iter()
                .find(|o| {
                    o["kind"] == "Service"
                        && o["spec"]["type"] == "LoadBalancer"
                        && o["status"]["loadBalancer"]["ingress"].is_array()
                })
                .map(|o| (name.clone(), s(&o["metadata"]["uid"])))
        })
        .unwrap();
    world
        .clusters
        .get_mut(&cluster)
        .unwrap()
        .objects
        .retain(|o| o["metadata"]["uid"].as_str() != Some(gone.as_str()));
    let w2 = tmp.path().join("world2");
    world.write(&w2).unwrap();
    let state_before = std::fs::read(&state).unwrap();
    let p = run(&[
        "cleanup",
        "plan",
        "--snapshot",
        w2.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--min-age",
        "7d",
        "--now",
        "2026-11-11T03:00:00Z",
    ]);
    assert_eq!(p.code, 0, "{}", p.all());
    let plan = p.json();
    let planned: BTreeSet<(String, String)> = actions(&plan)
        .iter()
        .map(|a| (s(&a["finding"]["rule"]), s(&a["resource"]).to_ascii_lowercase()))
        .collect();
    assert_eq!(planned, truth, "the old orphans are planned, and only they");
    let young: Vec<&Value> = plan["not_planned"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| s(&n["reason"]).contains("younger than --min-age 7d"))
        .collect();
    assert!(!young.is_empty(), "{}", plan["not_planned"]);
    assert_eq!(plan["min_age"], "7d");
    assert_eq!(
        std::fs::read(&state).unwrap(),
        state_before,
        "plan wrote the state file"
    );
}

#[test]
fn plans_render_for_review_as_markdown_and_an_az_script() {
    let w = generated(1, 1, 2, 40);
    let tmp = tempfile::tempdir().unwrap();
    let world = World::load(w.path()).unwrap();
    let mut toml = String::new();
    for c in &world.meta.clusters {
        toml.push_str(&format!(
            "[[cluster]]\ncontext = {:?}\ncluster_name = {:?}\n\n",
            c.name,
            c.cluster_name_tag.clone().unwrap_or_default()
        ));
    }
    let cfg = tmp.path().join("azaudit.toml");
    std::fs::write(&cfg, toml).unwrap();
    let (json_p, md, sh) = (
        tmp.path().join("plan.json"),
        tmp.path().join("plan.md"),
        tmp.path().join("plan.sh"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_azaudit"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", tmp.path())
        .args([
            "cleanup",
            "plan",
            "--snapshot",
            w.path().to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            json_p.to_str().unwrap(),
            "--also-write",
            &format!("markdown={}", md.display()),
            "--also-write",
            &format!("az-script={}", sh.display()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&std::fs::read(&json_p).unwrap()).unwrap();
    let md = std::fs::read_to_string(&md).unwrap();
    let sh = std::fs::read_to_string(&sh).unwrap();
    let id = s(&plan["plan_id"]);
    assert!(
        md.contains(&id) && sh.contains(&id),
        "the same plan in every format"
    );
    for a in actions(&plan) {
        let name = s(&a["resource"]).rsplit('/').next().unwrap().to_string();
        assert!(
            md.contains(&format!("{}. {} `{name}", a["order"], s(&a["kind"]))),
            "{name}"
        );
        assert!(sh.contains(&s(&a["resource"])) || a["kind"] == "remove-frontend");
    }
    assert!(sh.starts_with("#!/usr/bin/env bash\n"));
    assert!(sh.contains("set -euo pipefail"));
    // Every command comes after its preconditions.
    let mut seen_pre = false;
    for line in sh.lines() {
        if line.starts_with("# preconditions:") {
            seen_pre = true;
        }
        if line.starts_with("az ") {
            assert!(seen_pre, "a command without preconditions: {line}");
        }
        if line.starts_with("# --- ") {
            seen_pre = false;
        }
    }
    let pips = actions(&plan)
        .iter()
        .filter(|a| a["kind"] == "delete-public-ip")
        .count();
    assert_eq!(sh.matches("az network public-ip delete --ids").count(), pips);
    assert!(sh.contains("az network lb frontend-ip delete --ids"));
    assert!(sh.contains("az network nsg rule update --ids"));
    let bash = Command::new("bash")
        .arg("-n")
        .arg(tmp.path().join("plan.sh"))
        .output();
    if let Ok(b) = bash {
        assert!(
            b.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&b.stderr)
        );
    }
}

#[test]
fn plans_equal_the_cleanup_eligible_ground_truth_offline_across_seeds() {
    for (seed, subscriptions, clusters, services) in
        [(2, 1, 1, 30), (4, 1, 3, 60), (6, 2, 4, 120), (8, 1, 2, 80)]
    {
        let w = generated(seed, subscriptions, clusters, services);
        let world = World::load(w.path()).unwrap();
        let mut toml = String::new();
        for c in &world.meta.clusters {
            toml.push_str(&format!(
                "[[cluster]]\ncontext = {:?}\ncluster_name = {:?}\n\n",
                c.name,
                c.cluster_name_tag.clone().unwrap_or_default()
            ));
        }
        let cfg = w.path().join("azaudit-test.toml");
        std::fs::write(&cfg, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_azaudit"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", w.path())
            .args([
                "cleanup",
                "plan",
                "--snapshot",
                w.path().to_str().unwrap(),
                "--config",
                cfg.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "seed {seed}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
        let planned: BTreeSet<(String, String)> = actions(&plan)
            .iter()
            .map(|a| (s(&a["finding"]["rule"]), s(&a["resource"]).to_ascii_lowercase()))
            .collect();
        assert_eq!(
            planned,
            cleanup_truth(w.path()),
            "seed {seed}: {}",
            plan["not_planned"]
        );
        // Orders are 1..n, and every dependency comes first.
        let order: BTreeMap<String, u64> = actions(&plan)
            .iter()
            .map(|a| (s(&a["id"]), a["order"].as_u64().unwrap()))
            .collect();
        let mut seen: Vec<u64> = order.values().copied().collect();
        seen.sort();
        assert_eq!(seen, (1..=order.len() as u64).collect::<Vec<_>>());
        for a in actions(&plan) {
            for d in a["depends_on"].as_array().into_iter().flatten() {
                assert!(order[&s(d)] < a["order"].as_u64().unwrap(), "seed {seed}: {a}");
            }
        }
    }
}

#[test]
fn an_unexpected_failure_stops_the_apply_unless_keep_going() {
    let w = generated(19, 1, 2, 40);
    // Plan first, against a mock without faults.
    let plan_env = Env::start(w.path(), |_| {});
    let plan = plan_env.plan("plan.json", &[]);
    let pips: Vec<Value> = actions(&plan)
        .iter()
        .filter(|a| a["kind"] == "delete-public-ip")
        .cloned()
        .collect();
    assert!(pips.len() >= 2, "{}", pips.len());
    let broken = pips[0].clone();
    let name = s(&broken["resource"]).rsplit('/').next().unwrap().to_string();
    drop(plan_env);
    // ARM refuses every request about that one address (403, not retried).
    let env = Env::start(w.path(), |c| {
        c.faults = vec![Fault::Status {
            status: 403,
            rate: 0.0,
            nth: None,
            first: Some(1_000_000),
            scope: FaultScope {
                path_contains: name.clone(),
            },
        }];
    });
    env.write_plan("plan.json", &plan);
    let r = env.apply("plan.json", &["--yes"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let results = outcomes(&r.json());
    let b = &results[&s(&broken["id"])];
    assert_eq!(
        (b["outcome"].as_str(), b["expected"].as_bool()),
        (Some("failed"), Some(false)),
        "{b}"
    );
    let stop = broken["order"].as_u64().unwrap();
    for a in actions(&plan) {
        let o = &results[&s(&a["id"])];
        let order = a["order"].as_u64().unwrap();
        if order < stop {
            assert_eq!(o["outcome"], "done", "{o}");
        } else if order > stop {
            assert_eq!(o["outcome"], "skipped", "{o}");
            assert!(s(&o["reason"]).contains("not attempted"), "{o}");
        }
    }
    assert_eq!(r.json()["stopped_at"], json!(stop));
    // With --keep-going the rest is done; the broken one still fails, and the exit says so.
    let r = env.apply("plan.json", &["--yes", "--keep-going"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let results = outcomes(&r.json());
    for a in actions(&plan) {
        let o = &results[&s(&a["id"])];
        if a["id"] == broken["id"] {
            assert_eq!(o["outcome"], "failed");
        } else {
            assert!(o["outcome"] == "done" || o["outcome"] == "already-done", "{o}");
        }
    }
    assert!(env.get(&s(&broken["resource"])).is_some());
}
