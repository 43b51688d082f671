//! `azaudit-mock generate`: writes a realistic world directory (`docs/world-format.md`) with
//! planted defects and its ground truth, `expected-findings.json`, plus `lookalikes.json` (objects
//! that resemble defects and must never be reported) and a `README.md` summary.
//!
//! It only writes files under `--out`: no network, no wall clock (timestamps derive from the
//! seed), no hash-map iteration order. The same seed and flags give byte-identical output.
//! Resources follow cloud-provider-azure's naming and shapes (`shared/docs/domain.md` §1–4) and
//! the recorded ARM bodies in `shared/fixtures/`.
//!
//! # The rule conditions the ground truth follows
//!
//! This is the spec the audit is checked against. Terms are those of `rule-catalogue.md`:
//! *managed LB* of cluster C = `<clusterName>` or `<clusterName>-internal` in C's resource group;
//! *base name* = `"a"` + UID without dashes, cut to 32; *LB Service* = Service of type
//! LoadBalancer in C's listing; a Service *exists* when an LB Service with that ns/name (and, for
//! names derived from a UID, that base name) is listed; *eligible node* = no
//! `node.kubernetes.io/exclude-from-external-load-balancers` label, not
//! `kubernetes.azure.com/managed=false`, not control plane, not virtual; *virtual node* = label
//! `type=virtual-kubelet` or a taint with key `virtual-kubelet.io/provider`. Names and ids compare
//! case-insensitively. `cluster` in a finding is the world's cluster name (`world.json`), `null`
//! only for regional usage rows. One finding per (rule, resource).
//!
//! - `orphaned-public-ip` — PIP with tag `k8s-azure-service` (else legacy `service`); cluster tag
//!   (`k8s-azure-cluster-name`, else `kubernetes-cluster-name`) absent or equal to C's cluster
//!   name; in C's resource group or one named by a C Service's
//!   `azure-load-balancer-resource-group`; and none of the comma-separated ns/names exists.
//! - `unattached-public-ip` — no `ipConfiguration`, no `natGateway`, no `publicIPPrefix`, no
//!   `k8s-azure-service`/`service` tag, name not any Service's `azure-pip-name(-ipv6)`, address
//!   not any Service's `spec.loadBalancerIP`/`azure-load-balancer-ipv4/-ipv6`. Cluster = the
//!   cluster whose resource group holds it.
//! - `orphaned-lb-frontend` — frontend on a managed LB whose name starts with `a` + 31 hex digits
//!   and whose first 32 characters are no existing Service's base name. (GUID-named AKS outbound
//!   frontends never match.)
//! - `orphaned-lb-rule` — load-balancing rule or probe on a managed LB whose name starts with a
//!   base name, whose frontend is not reported by `orphaned-lb-frontend`, and which is not in the
//!   expected set of an existing Service with that base name. Expected set: per port
//!   `<base>[-<subnet>]-<PROTO>-<port>[-IPv6]` (`-IPv6` only for dual-stack Services; subnet
//!   segment only with the internal-subnet annotation), plus for `externalTrafficPolicy: Local`
//!   `<base>[-<subnet>]-TCP-<healthCheckNodePort>[-IPv6]`, plus HA-ports rules and
//!   `cluster-service-shared-health-probe`. Rules of a deleted Service on a live Service's shared
//!   frontend are reported here.
//! - `orphaned-nsg-rule` — in C's NSG (`securityGroupName`): a rule named `k8s-azure-lb_allow_*`
//!   with priority 500–4096 having a destination that is not an ingress IP of any C Service, not
//!   an `azure-additional-public-ips` entry and not a node InternalIP; or a legacy rule
//!   (`<base>-<PROTO>-<port>-<source>` or `shared-…`, priority 500–4096) whose base name is no
//!   existing Service's (for `shared-…`: whose destination is no live ingress IP).
//! - `empty-backend-pool` — pool `<clusterName>` / `<clusterName>-IPv6` on a managed LB with no
//!   `backendIPConfigurations` and no `loadBalancerBackendAddresses`, while C has an eligible node.
//! - `node-missing-from-backend-pool` — eligible node with an `azure://` providerID whose
//!   VM/VMSS instance exists, absent from a managed pool of C that is not reported empty (NIC
//!   pools: its NIC's / VMSS instance's ip configuration; IP pools: its InternalIP; `-IPv6` pools
//!   only for nodes with an IPv6 InternalIP). Unmanaged pools (`aksOutboundBackendPool`) never.
//! - `stale-backend-pool-member` — managed pool of C with a member whose VMSS instance or NIC does
//!   not exist in the inventory and that is no node of C (IP pools: no C node has the address).
//! - `node-not-registered-with-cloud` — node, not virtual, not `managed=false`, whose
//!   `spec.providerID` is missing, empty or not `azure://`.
//! - `node-instance-not-found` — providerID names a VM or VMSS instance absent from the inventory.
//! - `virtual-node-not-excluded` — virtual node without the exclude label and without
//!   `kubernetes.azure.com/managed=false` (the retired `alpha.service-controller…` label alone
//!   does not count).
//! - `service-pending-load-balancer` — LB Service with no `status.loadBalancer.ingress`.
//! - `service-pip-resource-group-mismatch` — LB Service requesting a PIP by `azure-pip-name` or by
//!   `spec.loadBalancerIP`/`azure-load-balancer-ipv4`, none in the resource group the provider
//!   searches (the annotation's, else C's), one in another group. (Also pending.)
//! - `service-without-ready-endpoints` — LB Service whose EndpointSlices (label
//!   `kubernetes.io/service-name`) have no endpoint with `conditions.ready` true.
//! - `nsg-blocks-service-port` — LB Service (external) with an ingress IP for which, evaluating
//!   C's NSG `securityRules` and `defaultSecurityRules` inbound by priority, the first rule matching
//!   source `Internet`, destination that IP, and a port/protocol of the Service is Deny.
//! - `lb-health-probe-mismatch` — LB Service with a frontend: an expected rule (above) of a TCP
//!   port exists without `probe` (Cluster policy) or any rule lacks the healthCheckNodePort probe
//!   (Local), or the probe a rule references has a port other than that port's `nodePort`
//!   (Cluster) / the `healthCheckNodePort` (Local). UDP ports expect no probe. Probes outside the
//!   expected set are `orphaned-lb-rule`'s, never this rule's.
//! - `dns-label-conflict` — an LB Service of C whose non-empty `azure-dns-label-name` another
//!   LB Service of C also wants, and whose PIP does not carry it (the one holding the label is
//!   fine; when none holds it, each is reported).
//! - `quota-pressure` — usage row with `currentValue/limit ≥ 0.8`; any LB with frontends ≥ 480,
//!   rules + inbound NAT ≥ 1,200 or a pool ≥ 4,000 members; any NSG with ≥ 800 rules or ≥ 3,200
//!   source or destination prefixes (Standard limits, domain.md §4).
//! - `basic-sku-retired` — LB or PIP with `sku.name` Basic.
//! - `cloud-config-invalid` — resource `k8s://<C>/kube-system/secrets/azure-cloud-provider` (the
//!   Secret in `k8s/<C>/secrets.json`; `k8s/<C>/azure.json` is its content): here planted as
//!   `useManagedIdentityExtension` with `aadClientSecret` set, `cloudProviderRateLimit: false`,
//!   or `useInstanceMetadata: false`. Clean configs have none of the catalogue's problems.
//! - `aks-tunnel-unhealthy` — kube-system pod `konnectivity-agent-*`, `tunnelfront-*` or
//!   `aks-link-*` not Running with condition Ready True.
//! - `arm-read-budget-low` depends on the run, never on the world: never in the ground truth.
//!
//! Every rule above is planted. Rates apply per rule and per cluster to a candidate count
//! (LB Services, external Services, eligible nodes, managed pools, clusters, tunnel pods or usage
//! rows; see `README.md`), rounded at random so small clusters still meet the rate on average.
//! A plant may imply findings of other rules, all recorded (e.g. a deleted Service that left its
//! PIP, frontend and NSG destination); those cascades are only used when the cascaded rules'
//! rates are not zero, except that a resource-group mismatch always leaves its Service pending.

mod arm;
mod kube;
mod model;
mod names;
mod output;
mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Naming helpers the tests use to re-derive findings independently of the planner.
pub use names::{base_name, rule_name};

/// The rules the generator plants, in catalogue order.
pub const RULES: &[&str] = &[
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
    "aks-tunnel-unhealthy",
];

/// `azaudit-mock generate` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Directory to write the world into (must be empty or absent, unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed: the same seed and flags give byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 1)]
    pub subscriptions: usize,
    /// Clusters; even ones are AKS-style, odd ones self-managed on VMs (every fourth IP-based).
    #[arg(long, default_value_t = 2)]
    pub clusters: usize,
    /// LoadBalancer Services, split across clusters.
    #[arg(long, default_value_t = 40)]
    pub services: usize,
    /// Agent nodes, split across clusters (at least 4 per cluster).
    #[arg(long, default_value_t = 12)]
    pub nodes: usize,
    /// Unrelated VMs, NICs and public IPs (streamed to disk in chunks).
    #[arg(long, default_value_t = 0)]
    pub extra_resources: usize,
    /// Default rate of every planted rule.
    #[arg(long, default_value_t = 0.1)]
    pub defect_rate: f64,
    /// Per-rule rate, e.g. `--rate orphaned-public-ip=0.3` (repeatable).
    #[arg(long = "rate", value_name = "RULE=R")]
    pub rates: Vec<String>,
    /// world.json mock: items per ARM list page.
    #[arg(long)]
    pub page_size: Option<usize>,
    /// world.json mock: fixed latency in milliseconds.
    #[arg(long)]
    pub latency_ms: Option<u64>,
    /// world.json mock: random extra latency in milliseconds.
    #[arg(long)]
    pub jitter_ms: Option<u64>,
    /// world.json mock: ARM read bucket size.
    #[arg(long)]
    pub reads_bucket: Option<u32>,
    /// world.json mock: ARM read refill per second.
    #[arg(long)]
    pub reads_per_second: Option<f64>,
    /// Replace what a previous `generate` wrote in --out.
    #[arg(long)]
    pub force: bool,
    /// Items per ARM file (tests use small files to exercise splitting).
    #[arg(long, default_value_t = output::CHUNK, hide = true)]
    pub chunk_size: usize,
}

/// Validated options.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub subscriptions: usize,
    pub clusters: usize,
    pub services: usize,
    pub nodes: usize,
    pub extra_resources: usize,
    pub defect_rate: f64,
    pub rates: BTreeMap<String, f64>,
    pub mock: Value,
    pub chunk_size: usize,
}

impl Options {
    pub fn rate(&self, rule: &str) -> f64 {
        self.rates.get(rule).copied().unwrap_or(self.defect_rate)
    }
}

impl GenerateArgs {
    /// Checks the flags; every problem is reported at once.
    pub fn options(&self) -> anyhow::Result<Options> {
        let mut problems = Vec::new();
        if self.subscriptions == 0 {
            problems.push("--subscriptions must be at least 1".to_string());
        }
        if !(1..=50).contains(&self.clusters) {
            problems.push("--clusters must be between 1 and 50".to_string());
        }
        if !(0.0..=1.0).contains(&self.defect_rate) {
            problems.push("--defect-rate must be between 0 and 1".to_string());
        }
        let mut rates = BTreeMap::new();
        for r in &self.rates {
            let Some((rule, v)) = r.split_once('=') else {
                problems.push(format!("--rate {r}: expected RULE=R"));
                continue;
            };
            if rule == "arm-read-budget-low" {
                problems.push("--rate arm-read-budget-low: depends on the run, never planted".to_string());
            } else if !RULES.contains(&rule) {
                problems.push(format!("--rate {r}: unknown rule (known: {})", RULES.join(", ")));
            }
            match v.parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => {
                    rates.insert(rule.to_string(), x);
                }
                _ => problems.push(format!("--rate {r}: rate must be a number between 0 and 1")),
            }
        }
        if self.chunk_size == 0 {
            problems.push("--chunk-size must be at least 1".to_string());
        }
        if self.page_size == Some(0) {
            problems.push("--page-size must be at least 1".to_string());
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("; "));
        }
        let mut mock = serde_json::Map::new();
        mock.insert("seed".into(), json!(self.seed));
        if let Some(v) = self.page_size {
            mock.insert("page_size".into(), json!(v));
        }
        if let Some(v) = self.latency_ms {
            mock.insert("latency_ms".into(), json!(v));
        }
        if let Some(v) = self.jitter_ms {
            mock.insert("jitter_ms".into(), json!(v));
        }
        let mut throttle = serde_json::Map::new();
        if let Some(v) = self.reads_bucket {
            throttle.insert("reads_bucket".into(), json!(v));
        }
        if let Some(v) = self.reads_per_second {
            throttle.insert("reads_per_second".into(), json!(v));
        }
        if !throttle.is_empty() {
            mock.insert("throttle".into(), Value::Object(throttle));
        }
        Ok(Options {
            seed: self.seed,
            subscriptions: self.subscriptions,
            clusters: self.clusters,
            services: self.services,
            nodes: self.nodes,
            extra_resources: self.extra_resources,
            defect_rate: self.defect_rate,
            rates,
            mock: Value::Object(mock),
            chunk_size: self.chunk_size,
        })
    }
}

/// One expected finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub rule: String,
    pub resource: String,
    pub cluster: Option<String>,
}

/// Something that looks like a defect and must not be reported.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Lookalike {
    pub kind: String,
    pub resource: String,
}

/// Ground truth collected while planning and rendering.
#[derive(Debug, Default)]
pub struct Truth {
    findings: BTreeSet<Finding>,
    lookalikes: BTreeSet<Lookalike>,
    planted: BTreeMap<&'static str, usize>,
    candidates: BTreeMap<&'static str, usize>,
}

impl Truth {
    fn finding(&mut self, rule: &str, resource: &str, cluster: Option<&str>) {
        self.findings.insert(Finding {
            rule: rule.to_string(),
            resource: resource.to_string(),
            cluster: cluster.map(str::to_string),
        });
    }
    fn lookalike(&mut self, kind: &str, resource: &str) {
        self.lookalikes.insert(Lookalike {
            kind: kind.to_string(),
            resource: resource.to_string(),
        });
    }
    fn planted(&mut self, rule: &'static str) {
        *self.planted.entry(rule).or_default() += 1;
    }
    fn candidates(&mut self, rule: &'static str, n: usize) {
        *self.candidates.entry(rule).or_default() += n;
    }
}

/// Per rule: what was asked for and what was written.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleCount {
    pub rate: f64,
    pub candidates: usize,
    /// Defects planted for this rule (a plant may yield more than one finding).
    pub planted: usize,
    /// Entries in `expected-findings.json`, cascades included.
    pub findings: usize,
}

/// What `generate` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub rules: BTreeMap<String, RuleCount>,
    pub findings: Vec<Finding>,
    pub lookalikes: Vec<Lookalike>,
}

/// Values shared by the renderers.
pub struct Env {
    pub tenant: String,
    pub recorded_at: OffsetDateTime,
    pub k8s_version: String,
}

impl Env {
    /// `recorded_at` minus `days`, RFC 3339 (`...Z`).
    pub fn timestamp(&self, days: u32) -> String {
        (self.recorded_at - time::Duration::days(i64::from(days)))
            .format(&Rfc3339)
            .unwrap_or_default()
    }
}

/// Files and folders `generate` owns in `--out` (removed by `--force`).
const OWNED: &[&str] = &[
    "arm",
    "k8s",
    "world.json",
    "expected-findings.json",
    "lookalikes.json",
    "README.md",
];

/// Writes the world; returns its summary.
pub fn generate(out: &Path, opts: &Options, force: bool) -> anyhow::Result<Summary> {
    prepare_out(out, force)?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    // A fixed "now" derived from the seed: 2026-11-01 plus up to 30 days.
    let recorded_at = OffsetDateTime::from_unix_timestamp(1_793_491_200 + (opts.seed % (30 * 86_400)) as i64)
        .context("recorded_at")?;
    let env = Env {
        tenant: names::uuid(&mut rng),
        recorded_at,
        k8s_version: "1.31.7".into(),
    };
    let subs: Vec<String> = (0..opts.subscriptions).map(|_| names::uuid(&mut rng)).collect();
    let mut truth = Truth::default();
    let clusters = model::plan(opts, &mut rng, &subs, &mut truth);

    let mut sink = output::Sink::new(out, opts.chunk_size);
    for c in &clusters {
        render::render_cluster(c, &mut rng, &mut sink, &mut truth, &env, out)
            .with_context(|| format!("write cluster {}", c.name))?;
    }
    write_extras(opts, &mut rng, &subs, &mut sink, &env).context("write extra resources")?;
    write_usages(opts, &mut rng, &mut sink, &mut truth).context("write usages")?;
    sink.finish().context("close ARM files")?;

    let meta = azaudit_world::WorldMeta {
        tenant_id: Some(env.tenant.clone()),
        subscriptions: subs
            .iter()
            .enumerate()
            .map(|(i, id)| azaudit_world::SubscriptionMeta {
                id: id.clone(),
                display_name: Some(
                    ["prod", "staging", "dev", "shared", "sandbox"]
                        .get(i)
                        .map_or_else(|| format!("subscription-{i}"), |s| s.to_string()),
                ),
            })
            .collect(),
        clusters: clusters
            .iter()
            .map(|c| azaudit_world::ClusterMeta {
                name: c.name.clone(),
                cluster_name_tag: Some(c.cluster_name.clone()),
                subscription_id: Some(c.sub.clone()),
                resource_group: Some(c.rg.clone()),
                cloud_config: Some(format!("k8s/{}/azure.json", c.name)),
                cloud_config_mode: None,
            })
            .collect(),
        recorded_at: Some(env.timestamp(0)),
        mock: Some(opts.mock.clone()),
        gaps: Vec::new(),
    };
    azaudit_world::write_json_atomic(&out.join("world.json"), &meta)?;

    let mut rules = BTreeMap::new();
    for r in RULES {
        rules.insert(
            r.to_string(),
            RuleCount {
                rate: opts.rate(r),
                candidates: truth.candidates.get(r).copied().unwrap_or(0),
                planted: truth.planted.get(r).copied().unwrap_or(0),
                findings: truth.findings.iter().filter(|f| f.rule == *r).count(),
            },
        );
    }
    let summary = Summary {
        rules,
        findings: truth.findings.into_iter().collect(),
        lookalikes: truth.lookalikes.into_iter().collect(),
    };
    azaudit_world::write_json_atomic(&out.join("expected-findings.json"), &summary.findings)?;
    azaudit_world::write_json_atomic(&out.join("lookalikes.json"), &summary.lookalikes)?;
    azaudit_world::write_atomic(
        &out.join("README.md"),
        readme(opts, &clusters, &summary).as_bytes(),
    )?;
    Ok(summary)
}

fn prepare_out(out: &Path, force: bool) -> anyhow::Result<()> {
    let non_empty = std::fs::read_dir(out).is_ok_and(|mut e| e.next().is_some());
    if non_empty && !force {
        bail!(
            "{} is not empty; choose an empty directory or pass --force to replace a generated world",
            out.display()
        );
    }
    if non_empty {
        for name in OWNED {
            let p = out.join(name);
            if p.is_dir() {
                std::fs::remove_dir_all(&p).with_context(|| format!("remove {}", p.display()))?;
            } else if p.exists() {
                std::fs::remove_file(&p).with_context(|| format!("remove {}", p.display()))?;
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))
}

/// Unrelated VMs with their NIC and (attached, Standard) public IP, in their own resource groups
/// and virtual networks: bulk that must produce no finding. Streamed, never held.
fn write_extras(
    opts: &Options,
    rng: &mut ChaCha8Rng,
    subs: &[String],
    sink: &mut output::Sink,
    env: &Env,
) -> std::io::Result<()> {
    const PER_GROUP: usize = 60;
    let units = opts.extra_resources / 3;
    let lone_nics = opts.extra_resources % 3;
    let groups = (units + lone_nics).div_ceil(PER_GROUP);
    let locations = ["westeurope", "eastus", "northeurope", "eastus2", "westus2"];
    // 40.64.0.0 upwards: never used by the clusters (20.x).
    let mut next_ip = u32::from_be_bytes([40, 64, 0, 10]);
    let mut done = 0;
    for g in 0..groups {
        let sub = &subs[g % subs.len()];
        let loc = locations[rng.gen_range(0..locations.len())];
        let rg = format!("rg-app-{g:04}");
        sink.push(
            sub,
            "resourceGroups",
            loc,
            &arm::resource_group(
                sub,
                &rg,
                loc,
                None,
                Some(json!({"team": format!("team-{}", g % 17)})),
            ),
        )?;
        let vnet_name = format!("vnet-app-{g:04}");
        let vnet = arm::vnet(
            rng,
            sub,
            &rg,
            &vnet_name,
            loc,
            "172.16.0.0/16",
            &[("default", "172.16.0.0/16".into(), None)],
        );
        let subnet_id = format!("{}/subnets/default", vnet["id"].as_str().unwrap_or_default());
        sink.push(sub, "virtualNetworks", loc, &vnet)?;
        for k in 0..PER_GROUP {
            if done >= units + lone_nics {
                break;
            }
            let with_vm = done < units;
            done += 1;
            let name = format!("app{g:04}-vm{k:02}");
            let nic_name = format!("{name}-nic");
            let nic_id = names::res_id(sub, &rg, arm::T_NIC, &nic_name);
            let ip4 = format!("172.16.{}.{}", k / 250, k % 250 + 4);
            let pip_name = format!("{name}-pip");
            if with_vm {
                next_ip += 1;
                if next_ip & 0xff == 0 || next_ip & 0xff == 255 {
                    next_ip += 2;
                }
                let ip = std::net::Ipv4Addr::from(next_ip).to_string();
                let p = arm::pip(
                    rng,
                    arm::PipSpec {
                        sub,
                        rg: &rg,
                        name: &pip_name,
                        location: loc,
                        ip: &ip,
                        ipv6: false,
                        basic: false,
                        tags: None,
                        attached_to: Some(format!("{nic_id}/ipConfigurations/ipconfig1")),
                        nat_gateway: None,
                        prefix: None,
                        dns_label: None,
                    },
                );
                sink.push(sub, "publicIPAddresses", loc, &p)?;
            }
            let nic = arm::nic(
                rng,
                arm::NicSpec {
                    sub,
                    rg: &rg,
                    name: &nic_name,
                    location: loc,
                    ip: &ip4,
                    subnet_id: &subnet_id,
                    vm_id: with_vm.then(|| names::res_id(sub, &rg, arm::T_VM, &name)),
                    pools: Vec::new(),
                    pip_id: with_vm.then(|| names::res_id(sub, &rg, arm::T_PIP, &pip_name)),
                },
            );
            sink.push(sub, "networkInterfaces", loc, &nic)?;
            if with_vm {
                let days = rng.gen_range(1..1500);
                let v = arm::vm(
                    rng,
                    arm::VmSpec {
                        sub,
                        rg: &rg,
                        name: &name,
                        location: loc,
                        size: "Standard_D2s_v5",
                        nic_id: &nic_id,
                        avset_id: None,
                        created: &env.timestamp(days),
                        tags: None,
                    },
                );
                sink.push(sub, "virtualMachines", loc, &v)?;
            }
        }
    }
    Ok(())
}

/// Network usages per (subscription, region): counted values, Azure's default limits raised
/// where a real subscription would have had them raised, and planted `quota-pressure` rows.
fn write_usages(
    opts: &Options,
    rng: &mut ChaCha8Rng,
    sink: &mut output::Sink,
    truth: &mut Truth,
) -> std::io::Result<()> {
    let counts = sink.usage.clone();
    let mut candidates: Vec<(String, String, &'static str)> = Vec::new();
    for ((sub, loc), row) in &counts {
        for name in arm::COUNTED_USAGES {
            if row.get(name).copied().unwrap_or(0) > 0 {
                candidates.push((sub.clone(), loc.clone(), name));
            }
        }
    }
    let rule = "quota-pressure";
    truth.candidates(rule, candidates.len());
    let k = model::planned(rng, opts.rate(rule), candidates.len());
    let mut idx: Vec<usize> = (0..candidates.len()).collect();
    rand::seq::SliceRandom::shuffle(idx.as_mut_slice(), rng);
    let chosen: BTreeSet<(String, String, &'static str)> =
        idx.into_iter().take(k).map(|i| candidates[i].clone()).collect();
    for _ in 0..chosen.len() {
        truth.planted(rule);
    }
    for ((sub, loc), row) in &counts {
        for (name, localized, default_limit) in arm::USAGE_ROWS {
            let current = row.get(name).copied().unwrap_or(0);
            let limit = if chosen.contains(&(sub.clone(), loc.clone(), *name)) {
                // 82–97 % used: a subscription close to its limit.
                let pct = rng.gen_range(82u64..=97);
                let v = arm::usage(
                    sub,
                    loc,
                    name,
                    localized,
                    current,
                    (current * 100 / pct).max(current).max(1),
                );
                truth.finding(rule, v["id"].as_str().unwrap_or_default(), None);
                sink.push(sub, "usages", loc, &v)?;
                continue;
            } else if current * 5 >= default_limit * 4 {
                // Raised by support long ago, comfortably above what is used.
                (current * 2).div_ceil(1000) * 1000
            } else {
                *default_limit
            };
            sink.push(
                sub,
                "usages",
                loc,
                &arm::usage(sub, loc, name, localized, current, limit),
            )?;
        }
    }
    Ok(())
}

fn readme(opts: &Options, clusters: &[model::Cluster], s: &Summary) -> String {
    let mut out = String::new();
    out.push_str("# Generated world\n\n");
    out.push_str(&format!(
        "Written by `azaudit-mock generate --seed {} --subscriptions {} --clusters {} --services {} --nodes {} --extra-resources {} --defect-rate {}`{}.\n",
        opts.seed,
        opts.subscriptions,
        opts.clusters,
        opts.services,
        opts.nodes,
        opts.extra_resources,
        opts.defect_rate,
        opts.rates.iter().map(|(r, v)| format!(" --rate {r}={v}")).collect::<String>(),
    ));
    out.push_str("Regenerate with the same flags for byte-identical files. The rule conditions are in the doc comment of `mocks/src/generate/mod.rs`.\n\n");
    out.push_str("## Clusters\n\n| cluster | kind | cluster name | subscription | resource group | location | nodes | LB Services |\n|---|---|---|---|---|---|---|---|\n");
    for c in clusters {
        let kind = match c.flavor {
            model::Flavor::Aks => "AKS (VMSS Uniform)",
            model::Flavor::SelfManaged => "self-managed (VMs, NIC pools)",
            model::Flavor::SelfManagedIpPools => "self-managed (VMs, IP pools)",
        };
        out.push_str(&format!(
            "| {} | {kind} | {} | {} | {} | {} | {} | {} |\n",
            c.name,
            c.cluster_name,
            c.sub,
            c.rg,
            c.location,
            c.nodes.len(),
            c.services.len()
        ));
    }
    out.push_str("\n## Expected findings per rule\n\n`expected-findings.json` holds one entry per (rule, resource); `lookalikes.json` lists objects that must not be reported.\n\n| rule | rate | candidates | planted | findings |\n|---|---|---|---|---|\n");
    for (r, c) in &s.rules {
        out.push_str(&format!(
            "| {r} | {} | {} | {} | {} |\n",
            c.rate, c.candidates, c.planted, c.findings
        ));
    }
    out.push_str(&format!(
        "\nTotal: {} findings, {} look-alikes. `arm-read-budget-low` depends on the audit run and is never expected.\n",
        s.findings.len(),
        s.lookalikes.len()
    ));
    out
}

/// Runs the `generate` subcommand.
pub fn run(args: &GenerateArgs) -> anyhow::Result<Summary> {
    let opts = args.options()?;
    generate(&args.out, &opts, args.force)
}
