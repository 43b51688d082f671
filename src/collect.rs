//! The one place that knows both the clients and the world format: live collection.
//!
//! Collection produces an in-memory [`World`] — the same raw ARM and Kubernetes JSON a snapshot
//! holds — and the audit converts it with `snapshot::inventory_from_world`. Live audits, snapshots
//! and offline audits therefore share every line of conversion code.
//!
//! Call plan (ARCHITECTURE.md, "Call plan"): Kubernetes first (nodes name the subscriptions and
//! scale sets), then one subscription-scope list per resource type per subscription, VMSS
//! instances only for scale sets that nodes use (asked for as soon as the scale set list names
//! them), and usages per (subscription, location) that holds resources (asked for as soon as a
//! list shows the location). No per-resource GETs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use async_trait::async_trait;
use azaudit_world::{ArmResource, ClusterMeta, ClusterObjects, SubscriptionMeta, World, WorldMeta, id_key};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::conventions::{DEFAULT_CLUSTER_NAME, ProviderId};
use crate::inventory::convert::InventoryBuilder;
use crate::inventory::json::str_at;
use crate::inventory::{ArmKind, CloudConfigSource, Gap, GapScope, K8sKind};

/// API versions: what cloud-provider-azure itself uses at HEAD (domain.md §6.1).
pub const NETWORK_API: &str = "2025-05-01";
pub const COMPUTE_API: &str = "2025-04-01";
pub const SUBSCRIPTIONS_API: &str = "2022-12-01";

/// Lists ARM collections; implemented by the real ARM client and by test fakes.
#[async_trait]
pub trait ArmSource: Send + Sync {
    /// Every page of a list. On failure, `error` says why (actionable) and `items` holds what
    /// was read before it.
    async fn list(&self, subscription: Option<&str>, path_and_query: &str) -> RawList;

    /// [`ArmSource::list`] with a scheduling hint: lists of lower `rank` should start first when
    /// requests must wait for each other. Sources that do not schedule ignore it.
    async fn list_ranked(&self, subscription: Option<&str>, path_and_query: &str, rank: u8) -> RawList {
        let _ = rank;
        self.list(subscription, path_and_query).await
    }
}

#[derive(Debug, Default, Clone)]
pub struct RawList {
    /// Each item as JSON text (`azaudit_world::raw`): a list of 100,000 items held as trees
    /// would cost 7–8 times as much memory.
    pub items: Vec<Box<RawValue>>,
    pub error: Option<String>,
}

/// What the user told us about a cluster (config file or flags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterHint {
    /// Context name (the cluster's name in reports).
    pub context: String,
    pub cluster_name_tag: Option<String>,
    pub subscription_id: Option<String>,
    pub resource_group: Option<String>,
    /// A cloud config file for this cluster (`--cloud-config`).
    pub cloud_config_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct CollectOptions {
    /// Subscriptions to audit; empty = those the clusters name, or every visible one.
    pub subscriptions: Vec<String>,
    pub clusters: Vec<ClusterHint>,
    pub tenant_id: Option<String>,
}

/// One Kubernetes cluster's listing (from `crate::kube::list_cluster`, or a test).
#[derive(Debug, Default)]
pub struct ClusterListing {
    pub name: String,
    /// Its place among the clusters asked for: the world lists clusters in this order.
    pub order: usize,
    pub objects: Vec<Value>,
    pub failures: Vec<(K8sKind, String)>,
    pub cloud_config: Option<CloudConfigSource>,
}

fn list_path(sub: &str, kind: ArmKind) -> String {
    let api = if kind.arm_type().starts_with("Microsoft.Compute") {
        COMPUTE_API
    } else {
        NETWORK_API
    };
    format!(
        "/subscriptions/{sub}/providers/{}?api-version={api}",
        kind.arm_type()
    )
}

/// Subscription and resource group named by most nodes' providerIDs.
fn infer_from_nodes(objects: &[Value]) -> (Option<String>, Option<String>) {
    let mut count: BTreeMap<(String, String), usize> = BTreeMap::new();
    for o in objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Node"))
    {
        let pid = ProviderId::parse(&str_at(o, &["spec", "providerID"]).unwrap_or_default());
        if let (Some(s), Some(rg)) = (pid.subscription(), pid.resource_group()) {
            *count.entry((s.to_string(), rg.to_string())).or_insert(0) += 1;
        }
    }
    match count.into_iter().max_by_key(|(_, n)| *n) {
        Some(((s, rg), _)) => (Some(s), Some(rg)),
        None => (None, None),
    }
}

/// Scale sets that nodes' providerIDs name (ids as ARM spells them are found later).
fn node_scale_sets(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Node"))
        .filter_map(|o| match ProviderId::parse(&str_at(o, &["spec", "providerID"]).unwrap_or_default()) {
            ProviderId::VmssInstance { subscription, resource_group, scale_set, .. } => Some(id_key(&format!(
                "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/virtualMachineScaleSets/{scale_set}"
            ))),
            _ => None,
        })
        .collect()
}

/// Replaces secret values of a cloud config (`aadClientSecret`, `aadClientCertPassword`, any
/// key containing "secret" or "password"; matched case-insensitively).
pub fn redact_cloud_config(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut o)) => {
            for (k, v) in o.iter_mut() {
                let l = k.to_ascii_lowercase();
                // AKS's `msi` placeholder is no secret, and keeping it keeps the config's meaning.
                if (l.contains("secret") || l.contains("password"))
                    && v.as_str()
                        .is_some_and(|s| !s.is_empty() && !s.eq_ignore_ascii_case("msi"))
                {
                    *v = Value::String("<redacted>".into());
                }
            }
            serde_json::to_string_pretty(&Value::Object(o)).unwrap_or_default()
        }
        // Unparsable: keep nothing that might be a secret, but keep the fact that it is broken.
        _ => "<unparsable cloud config; content not recorded>".to_string(),
    }
}

/// One ARM list of the call plan.
#[derive(Debug, Clone)]
enum Job {
    /// A subscription-scope list of one resource type.
    List(String, ArmKind),
    /// The instances of one scale set: (subscription, the scale set's ARM id).
    Instances(String, String),
    /// Network usages of one (subscription, normalised location).
    Usages(String, String),
}

impl Job {
    fn subscription(&self) -> &str {
        match self {
            Job::List(s, _) | Job::Instances(s, _) | Job::Usages(s, _) => s,
        }
    }

    /// Start order when requests wait for each other: the lists that are long in a Kubernetes
    /// estate first (a public IP per LoadBalancer Service, a NIC and a VM per node), since the
    /// longest page chain bounds the collection, then the scale sets (their instance lists
    /// follow), then the short ones.
    fn rank(&self) -> u8 {
        match self {
            Job::List(_, k) => match k {
                ArmKind::PublicIpAddresses => 0,
                ArmKind::NetworkInterfaces => 1,
                ArmKind::VirtualMachines => 2,
                ArmKind::VirtualMachineScaleSets => 3,
                ArmKind::LoadBalancers => 5,
                ArmKind::NetworkSecurityGroups => 6,
                _ => 7,
            },
            Job::Instances(..) => 4,
            Job::Usages(..) => 8,
        }
    }

    fn path(&self) -> String {
        match self {
            Job::List(s, k) => list_path(s, *k),
            Job::Instances(_, id) => format!("{id}/virtualMachines?api-version={COMPUTE_API}"),
            Job::Usages(s, l) => format!(
                "/subscriptions/{s}/providers/Microsoft.Network/locations/{l}/usages?api-version={NETWORK_API}"
            ),
        }
    }

    /// The gap a failure of this list leaves.
    fn gap(&self, cause: String) -> Gap {
        let (subscription, kind, detail) = match self {
            Job::List(s, k) => (s.clone(), *k, None),
            Job::Instances(s, id) => (s.clone(), ArmKind::VmssVirtualMachines, Some(id.clone())),
            Job::Usages(s, l) => (s.clone(), ArmKind::Usages, Some(l.clone())),
        };
        Gap {
            scope: GapScope::Arm {
                subscription,
                kind,
                detail,
            },
            cause,
        }
    }
}

fn gap_value(g: Gap) -> Value {
    serde_json::to_value(g).unwrap_or(Value::Null)
}

/// What the Kubernetes side tells the collector, as soon as it learns it.
#[derive(Debug)]
pub enum ClusterEvent {
    /// A subscription a cluster names (its hint, its cloud config), known before its listing
    /// ends: its lists can start while the cluster is still being listed.
    Subscription(String),
    /// A cluster's whole listing.
    Listed(ClusterListing),
}

/// What a collection produced: the world, and the inventory of its ARM side when it could be
/// converted while lists were still being read (see [`crate::snapshot::inventory_from_collection`]).
pub struct Collection {
    pub world: World,
    pub arm_converted: Option<InventoryBuilder>,
}

/// Converts ARM items on a thread of its own while the collector waits for the next pages, so
/// that the conversion costs no wall time after the last page. It sees exactly the items that
/// enter the world; if an id enters twice (the world keeps the last), its result is dropped.
/// (Cluster objects are converted at the end: they arrive while every first page is being
/// served, and converting them then delayed the longest page chain more than it saved.)
struct Converter {
    tx: Option<std::sync::mpsc::Sender<(ArmKind, Box<RawValue>)>>,
    thread: Option<std::thread::JoinHandle<(InventoryBuilder, usize)>>,
    sent: usize,
    replaced: bool,
}

impl Converter {
    fn start() -> Converter {
        let (tx, rx) = std::sync::mpsc::channel::<(ArmKind, Box<RawValue>)>();
        let thread = std::thread::Builder::new()
            .name("azaudit-convert".into())
            .spawn(move || {
                let mut b = InventoryBuilder::new();
                let mut n = 0;
                for (kind, raw) in rx {
                    let v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                    b.add_arm(kind, &v, None);
                    n += 1;
                }
                (b, n)
            })
            .ok();
        Converter {
            tx: thread.is_some().then_some(tx),
            thread,
            sent: 0,
            replaced: false,
        }
    }

    fn add(&mut self, r: &ArmResource) {
        if let (Some(tx), Some(kind)) = (&self.tx, ArmKind::from_arm_type(&r.type_))
            && tx.send((kind, r.raw().to_owned())).is_ok()
        {
            self.sent += 1;
        }
    }

    /// The builder, if it holds exactly the world's convertible resources.
    fn finish(mut self, world: &World) -> Option<InventoryBuilder> {
        drop(self.tx.take());
        let (b, n) = self.thread.take()?.join().ok()?;
        let expected = world
            .resources
            .values()
            .filter(|r| ArmKind::from_arm_type(&r.type_).is_some())
            .count();
        (!self.replaced && n == self.sent && n == expected).then_some(b)
    }
}

/// The subscription a cluster is audited in when its config says so: the hint's (azaudit.toml),
/// else its cloud config's `subscriptionId` (keys matched case-insensitively, as the provider
/// does; a blank value names none). Nodes' providerIDs come after (see `Plan::add_cluster`).
pub fn configured_subscription(
    hint: Option<&str>,
    cloud_config: Option<&CloudConfigSource>,
) -> Option<String> {
    hint.map(str::to_string).or_else(|| {
        let v: Value = serde_json::from_str(&cloud_config?.text).ok()?;
        str_at(&v, &["subscriptionId"]).filter(|s| !s.trim().is_empty())
    })
}

/// Mutable state of one collection.
struct Plan {
    world: World,
    gaps: Vec<Gap>,
    subscriptions: BTreeSet<String>,
    explicit_subscriptions: bool,
    wanted_scale_sets: BTreeSet<String>,
    instances_asked: BTreeSet<String>,
    usage_locations: BTreeSet<(String, String)>,
    converter: Converter,
}

impl Plan {
    /// A subscription to audit; `true` when it is new (its lists must start).
    fn add_subscription(&mut self, s: &str) -> bool {
        !self.explicit_subscriptions && self.subscriptions.insert(s.to_ascii_lowercase())
    }

    /// Adds list items to the world; returns the keys of those added (items without an id are skipped).
    fn add_resources(&mut self, items: Vec<Box<RawValue>>, source: &str) -> Vec<String> {
        let mut added = Vec::with_capacity(items.len());
        for item in items {
            // Same derivation as a snapshot's loader, so live and offline see the same types.
            let Ok(resource) = ArmResource::from_raw(item, PathBuf::from(source)) else {
                continue;
            };
            self.converter.add(&resource);
            let key = id_key(&resource.id);
            if self.world.resources.insert(key.clone(), resource).is_some() {
                self.converter.replaced = true;
            }
            added.push(key);
        }
        added
    }

    /// Instance lists for wanted scale sets that the scale set lists have shown, each once.
    fn instance_jobs(&mut self) -> Vec<Job> {
        let mut jobs = Vec::new();
        for key in &self.wanted_scale_sets {
            if self.instances_asked.contains(key) {
                continue;
            }
            if let Some(r) = self.world.resources.get(key)
                && r.type_is(ArmKind::VirtualMachineScaleSets.arm_type())
                && let Some(s) = r.subscription()
            {
                self.instances_asked.insert(key.clone());
                jobs.push(Job::Instances(s, r.id.clone()));
            }
        }
        jobs
    }

    /// Takes in one cluster's listing: its metadata, objects and gaps. Returns the subscription
    /// it names, if any.
    fn add_cluster(&mut self, c: ClusterListing, hints: &[ClusterHint]) -> Option<String> {
        let hint = hints
            .iter()
            .find(|h| h.context == c.name)
            .cloned()
            .unwrap_or_default();
        let cc: Option<Value> = c
            .cloud_config
            .as_ref()
            .and_then(|s| serde_json::from_str(&s.text).ok());
        let (node_sub, node_rg) = infer_from_nodes(&c.objects);
        let sub =
            configured_subscription(hint.subscription_id.as_deref(), c.cloud_config.as_ref()).or(node_sub);
        let rg = hint
            .resource_group
            .clone()
            .or_else(|| cc.as_ref().and_then(|v| str_at(v, &["resourceGroup"])))
            .or(node_rg);
        self.wanted_scale_sets.extend(node_scale_sets(&c.objects));
        for (kind, cause) in &c.failures {
            self.gaps.push(Gap {
                scope: GapScope::Kubernetes {
                    cluster: c.name.clone(),
                    kind: *kind,
                },
                cause: cause.clone(),
            });
        }
        let cloud_config = c.cloud_config.as_ref().map(|s| {
            (
                PathBuf::from(format!("k8s/{}/azure.json", c.name)),
                redact_cloud_config(&s.text),
            )
        });
        self.world.meta.clusters.push(ClusterMeta {
            name: c.name.clone(),
            cluster_name_tag: Some(
                hint.cluster_name_tag
                    .clone()
                    .unwrap_or_else(|| DEFAULT_CLUSTER_NAME.to_string()),
            ),
            subscription_id: sub.clone(),
            resource_group: rg,
            cloud_config: c.cloud_config.as_ref().map(|s| {
                if s.reference.starts_with("file://") {
                    s.reference.clone()
                } else {
                    format!("k8s/{}/azure.json", c.name)
                }
            }),
            cloud_config_mode: c.cloud_config.as_ref().and_then(|s| s.file_mode),
        });
        self.world.clusters.insert(
            c.name.clone(),
            ClusterObjects {
                name: c.name.clone(),
                objects: c.objects,
                cloud_config,
            },
        );
        sub
    }
}

/// Collects everything an audit needs while the Kubernetes side is still being listed: a
/// subscription's lists start as soon as any cluster names it (`events`), scale set instances as
/// soon as both a node and the scale set list name the scale set, usages as soon as a list shows
/// a location. The collection ends when `events` is closed and every list has finished. Never
/// fails as a whole: failures become gaps.
pub async fn collect_streaming(
    arm: &dyn ArmSource,
    mut events: tokio::sync::mpsc::UnboundedReceiver<ClusterEvent>,
    opts: &CollectOptions,
) -> Collection {
    let subscriptions: BTreeSet<String> = opts
        .subscriptions
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mut plan = Plan {
        world: World {
            meta: WorldMeta {
                tenant_id: opts.tenant_id.clone(),
                ..Default::default()
            },
            ..Default::default()
        },
        gaps: Vec::new(),
        explicit_subscriptions: !subscriptions.is_empty(),
        subscriptions,
        wanted_scale_sets: BTreeSet::new(),
        instances_asked: BTreeSet::new(),
        usage_locations: BTreeSet::new(),
        converter: Converter::start(),
    };
    let mut orders: BTreeMap<String, usize> = BTreeMap::new();

    // Every list of the call plan, pipelined (BENCHMARKS.md: the longest page chain, not the
    // sum of phases, should bound the wall time). The ARM client bounds concurrency and rate.
    let started = std::time::Instant::now();
    let run = |job: Job| async move {
        let r = arm
            .list_ranked(Some(job.subscription()), &job.path(), job.rank())
            .await;
        (job, r)
    };
    let mut pending = FuturesUnordered::new();
    for s in &plan.subscriptions {
        pending.extend(subscription_lists(s).into_iter().map(run));
    }
    let mut discovered = false;
    let mut events_open = true;
    let mut lists = 0usize;
    loop {
        tokio::select! {
            ev = events.recv(), if events_open => match ev {
                Some(ClusterEvent::Subscription(s)) => {
                    if plan.add_subscription(&s) {
                        tracing::debug!(subscription = %s, at_ms = started.elapsed().as_millis() as u64, "subscription named early");
                        pending.extend(subscription_lists(&s).into_iter().map(run));
                    }
                }
                Some(ClusterEvent::Listed(c)) => {
                    orders.insert(c.name.clone(), c.order);
                    if let Some(s) = plan.add_cluster(c, &opts.clusters)
                        && plan.add_subscription(&s)
                    {
                        pending.extend(subscription_lists(&s).into_iter().map(run));
                    }
                    // A scale set this cluster's nodes use may already have been listed.
                    pending.extend(plan.instance_jobs().into_iter().map(run));
                }
                None => {
                    events_open = false;
                    // No subscription given and none named by a cluster: every one the principal can see.
                    if plan.subscriptions.is_empty() {
                        discovered = true;
                        for s in discover(arm, &mut plan).await {
                            pending.extend(subscription_lists(&s).into_iter().map(run));
                        }
                    }
                }
            },
            Some((job, r)) = pending.next(), if !pending.is_empty() => {
                lists += 1;
                pending.extend(handle(&mut plan, job, r, started).into_iter().map(run));
            }
            else => break,
        }
    }
    tracing::info!(
        lists,
        subscriptions = plan.subscriptions.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "ARM collection done"
    );

    let Plan {
        mut world,
        mut gaps,
        subscriptions,
        converter,
        ..
    } = plan;
    if !discovered {
        for s in &subscriptions {
            world.meta.subscriptions.push(SubscriptionMeta {
                id: s.clone(),
                display_name: None,
            });
        }
    }
    // Clusters in the order they were asked for, whatever order they answered in.
    world
        .meta
        .clusters
        .sort_by_key(|c| orders.get(&c.name).copied().unwrap_or(usize::MAX));
    gaps.sort();
    world.meta.gaps = gaps.into_iter().map(gap_value).collect();
    let arm_converted = converter.finish(&world);
    Collection { world, arm_converted }
}

/// The seven subscription-scope lists of `sub`, in start order ([`Job::rank`]): the first
/// requests take the free concurrency slots in the order they are made.
fn subscription_lists(sub: &str) -> Vec<Job> {
    let mut jobs: Vec<Job> = ArmKind::LISTED
        .into_iter()
        .map(|k| Job::List(sub.to_ascii_lowercase(), k))
        .collect();
    jobs.sort_by_key(Job::rank);
    jobs
}

/// Subscription discovery: `GET /subscriptions`. Returns the lower-cased ids found.
async fn discover(arm: &dyn ArmSource, plan: &mut Plan) -> Vec<String> {
    let r = arm
        .list(None, &format!("/subscriptions?api-version={SUBSCRIPTIONS_API}"))
        .await;
    if let Some(e) = r.error {
        plan.gaps.push(Gap {
            scope: GapScope::Other {
                what: "subscription discovery".into(),
            },
            cause: e,
        });
    }
    let mut found = Vec::new();
    for s in r.items {
        let s: Value = serde_json::from_str(s.get()).unwrap_or(Value::Null);
        if let Some(id) = str_at(&s, &["subscriptionId"]) {
            plan.world.meta.subscriptions.push(SubscriptionMeta {
                display_name: str_at(&s, &["displayName"]),
                id: id.clone(),
            });
            if plan.subscriptions.insert(id.to_ascii_lowercase()) {
                found.push(id.to_ascii_lowercase());
            }
        }
    }
    found
}

/// Takes in one finished list; returns the lists it makes necessary (scale set instances,
/// usages of newly seen locations).
fn handle(plan: &mut Plan, job: Job, r: RawList, started: std::time::Instant) -> Vec<Job> {
    tracing::debug!(
        list = %job.path(),
        items = r.items.len(),
        failed = r.error.is_some(),
        at_ms = started.elapsed().as_millis() as u64,
        "ARM list done"
    );
    if let Some(e) = r.error {
        plan.gaps.push(job.gap(e));
    }
    let mut next = Vec::new();
    let added = match &job {
        Job::List(sub, kind) => {
            let added = plan.add_resources(
                r.items,
                &format!("arm/{sub}/{}.json", kind.arm_type().replace('/', "_")),
            );
            if *kind == ArmKind::VirtualMachineScaleSets {
                // VMSS instances, only for scale sets that nodes use and that exist.
                next.extend(plan.instance_jobs());
            }
            added
        }
        Job::Instances(sub, _) => plan.add_resources(r.items, &format!("arm/{sub}/vmss-instances.json")),
        Job::Usages(sub, loc) => {
            // Rows whose id lacks the scope get a synthetic one, so they can be told apart.
            let items = r
                .items
                .into_iter()
                .map(|raw| {
                    let mut v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                    if v.get("id").and_then(Value::as_str).is_none_or(str::is_empty)
                        && let (Some(name), Value::Object(o)) = (str_at(&v, &["name", "value"]), &mut v)
                    {
                        o.insert(
                            "id".into(),
                            Value::String(format!(
                                "/subscriptions/{sub}/providers/Microsoft.Network/locations/{loc}/usages/{name}"
                            )),
                        );
                    }
                    azaudit_world::raw::to_raw(&v)
                })
                .collect();
            plan.add_resources(items, &format!("arm/{sub}/usages-{loc}.json"));
            // Usage rows hold no resources: they add no location.
            Vec::new()
        }
    };
    // Network usages per (subscription, location) holding resources, each asked for once.
    for key in &added {
        if let Some(r) = plan.world.resources.get(key)
            && let (Some(sub), Some(loc)) = (r.subscription(), r.location())
        {
            let at = (
                sub.to_ascii_lowercase(),
                loc.to_ascii_lowercase().replace(' ', ""),
            );
            if plan.usage_locations.insert(at.clone()) {
                next.push(Job::Usages(at.0, at.1));
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects from listings already made (the whole Kubernetes side known at the start).
    async fn collect(arm: &dyn ArmSource, clusters: Vec<ClusterListing>, opts: &CollectOptions) -> World {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, mut c) in clusters.into_iter().enumerate() {
            c.order = i;
            let _ = tx.send(ClusterEvent::Listed(c));
        }
        drop(tx);
        collect_streaming(arm, rx, opts).await.world
    }

    fn raws(items: Vec<Value>) -> Vec<Box<RawValue>> {
        items.iter().map(azaudit_world::raw::to_raw).collect()
    }
    use serde_json::json;
    use std::sync::Mutex;

    /// Serves lists from a fixed map and records the paths asked for.
    struct Fake {
        lists: BTreeMap<String, RawList>,
        asked: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl ArmSource for Fake {
        async fn list(&self, _s: Option<&str>, p: &str) -> RawList {
            self.asked.lock().unwrap().push(p.to_string());
            let key = p.split('?').next().unwrap().to_ascii_lowercase();
            self.lists.get(&key).cloned().unwrap_or_default()
        }
    }

    #[test]
    fn the_configured_subscription_is_the_hint_else_the_cloud_config() {
        let cc = |text: &str| CloudConfigSource {
            reference: "k8s://c/kube-system/secrets/azure-cloud-provider".into(),
            text: text.into(),
            file_mode: None,
        };
        let named = cc(r#"{"SubscriptionID": "s-cc", "resourceGroup": "rg"}"#);
        assert_eq!(
            configured_subscription(Some("s-hint"), Some(&named)).as_deref(),
            Some("s-hint")
        );
        assert_eq!(
            configured_subscription(None, Some(&named)).as_deref(),
            Some("s-cc")
        );
        assert_eq!(
            configured_subscription(None, Some(&cc(r#"{"subscriptionId": " "}"#))),
            None
        );
        assert_eq!(configured_subscription(None, Some(&cc("not json"))), None);
        assert_eq!(configured_subscription(None, None), None);
    }

    #[tokio::test]
    async fn call_plan_and_gaps() {
        let sub = "s1";
        let ss = "/subscriptions/s1/resourceGroups/MC_rg/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np";
        let mut lists = BTreeMap::new();
        lists.insert(
            "/subscriptions/s1/providers/microsoft.compute/virtualmachinescalesets".to_string(),
            RawList { items: raws(vec![json!({"id": ss, "type": "Microsoft.Compute/virtualMachineScaleSets", "location": "westeurope"})]), error: None },
        );
        lists.insert(
            "/subscriptions/s1/providers/microsoft.network/loadbalancers".to_string(),
            RawList {
                items: raws(vec![]),
                error: Some("403 AuthorizationFailed".into()),
            },
        );
        let fake = Fake {
            lists,
            asked: Mutex::new(Vec::new()),
        };
        let node = json!({"kind": "Node", "metadata": {"name": "n0"}, "spec": {"providerID": format!("azure://{}/virtualMachines/0", ss.replace("MC_rg", "mc_rg"))}});
        let listing = ClusterListing {
            name: "c1".into(),
            objects: vec![node],
            failures: vec![(K8sKind::Pods, "forbidden".into())],
            cloud_config: None,
            order: 0,
        };
        let w = collect(&fake, vec![listing], &CollectOptions::default()).await;
        let asked = fake.asked.lock().unwrap().clone();
        // 7 subscription lists + 1 VMSS instance list + 1 usages list; no discovery (the node names s1).
        assert_eq!(asked.len(), 9, "{asked:#?}");
        assert!(
            asked
                .iter()
                .any(|p| p.contains("virtualMachineScaleSets/aks-np/virtualMachines"))
        );
        assert!(asked.iter().any(|p| p.contains("/locations/westeurope/usages")));
        assert_eq!(w.meta.gaps.len(), 2);
        assert_eq!(w.meta.clusters[0].subscription_id.as_deref(), Some(sub));
        assert_eq!(w.meta.clusters[0].resource_group.as_deref(), Some("mc_rg"));
        let inv = crate::snapshot::inventory_from_world(&w);
        assert!(!inv.arm_complete("s1", ArmKind::LoadBalancers));
        assert!(!inv.clusters[0].is_complete(K8sKind::Pods));
    }

    /// Holds the NIC list until the usages list is asked for: only a pipelined plan (usages asked
    /// for as soon as the scale set list shows a location) finishes.
    struct Gated {
        inner: Fake,
        gate: tokio::sync::Notify,
    }

    #[async_trait]
    impl ArmSource for Gated {
        async fn list(&self, s: Option<&str>, p: &str) -> RawList {
            if p.contains("/usages") {
                self.gate.notify_one();
            }
            if p.contains("networkInterfaces") {
                self.gate.notified().await;
            }
            self.inner.list(s, p).await
        }
    }

    #[tokio::test]
    async fn later_lists_start_before_slow_lists_finish() {
        let ss = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/np";
        let vm0 = json!({"id": format!("{ss}/virtualMachines/0"), "location": "westeurope"});
        let mut lists = BTreeMap::new();
        lists.insert(
            "/subscriptions/s1/providers/microsoft.compute/virtualmachinescalesets".to_string(),
            RawList { items: raws(vec![json!({"id": ss, "type": "Microsoft.Compute/virtualMachineScaleSets", "location": "westeurope"})]), error: None },
        );
        lists.insert(
            format!("{ss}/virtualMachines").to_ascii_lowercase(),
            RawList {
                items: raws(vec![vm0]),
                error: None,
            },
        );
        let fake = Gated {
            inner: Fake {
                lists,
                asked: Mutex::new(Vec::new()),
            },
            gate: tokio::sync::Notify::new(),
        };
        let node = json!({"kind": "Node", "metadata": {"name": "n0"}, "spec": {"providerID": format!("azure://{ss}/virtualMachines/0")}});
        let listing = ClusterListing {
            name: "c1".into(),
            objects: vec![node],
            ..Default::default()
        };
        // A sequential plan would wait for the NIC list forever; the timeout only turns that
        // hang into a failure.
        let w = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            collect(&fake, vec![listing], &CollectOptions::default()),
        )
        .await
        .expect("usages must be asked for while the NIC list is still running");
        let asked = fake.inner.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 9, "the same plan as before: {asked:#?}");
        let usages = asked.iter().position(|p| p.contains("/usages")).unwrap();
        let nics = asked
            .iter()
            .position(|p| p.contains("networkInterfaces"))
            .unwrap();
        // `Gated` records the NIC list only once it is released.
        assert!(
            usages < nics,
            "usages were asked for while the NIC list was held: {asked:#?}"
        );
        assert!(w.meta.gaps.is_empty(), "{:?}", w.meta.gaps);
        assert!(
            w.resources
                .contains_key(&id_key(&format!("{ss}/virtualMachines/0")))
        );
    }

    #[tokio::test]
    async fn each_location_is_asked_for_once_per_subscription() {
        // Two lists show the same location (spelt two ways) and a second location: two usages lists.
        let rg = "/subscriptions/s1/resourceGroups/rg/providers";
        let mut lists = BTreeMap::new();
        lists.insert(
            "/subscriptions/s1/providers/microsoft.network/publicipaddresses".to_string(),
            RawList { items: raws(vec![
                json!({"id": format!("{rg}/Microsoft.Network/publicIPAddresses/a"), "location": "westeurope"}),
                json!({"id": format!("{rg}/Microsoft.Network/publicIPAddresses/b"), "location": "East US"}),
            ]), error: None },
        );
        lists.insert(
            "/subscriptions/s1/providers/microsoft.network/loadbalancers".to_string(),
            RawList { items: raws(vec![json!({"id": format!("{rg}/Microsoft.Network/loadBalancers/k"), "location": "WestEurope"})]), error: None },
        );
        lists.insert(
            "/subscriptions/s1/providers/microsoft.network/locations/eastus/usages".to_string(),
            RawList {
                items: raws(vec![
                    json!({"name": {"value": "PublicIPAddresses"}, "currentValue": 1, "limit": 10}),
                ]),
                error: None,
            },
        );
        let fake = Fake {
            lists,
            asked: Mutex::new(Vec::new()),
        };
        let opts = CollectOptions {
            subscriptions: vec!["s1".into()],
            ..Default::default()
        };
        let w = collect(&fake, vec![], &opts).await;
        let asked = fake.asked.lock().unwrap().clone();
        let mut usages: Vec<&String> = asked.iter().filter(|p| p.contains("/usages")).collect();
        usages.sort();
        assert_eq!(usages.len(), 2, "{asked:#?}");
        assert!(usages[0].contains("/locations/eastus/usages"));
        assert!(usages[1].contains("/locations/westeurope/usages"));
        // No discovery (a subscription was given), no VMSS instances (no node names a scale set).
        assert_eq!(asked.len(), 7 + 2, "{asked:#?}");
        assert!(
            w.resources.contains_key(&id_key(
                "/subscriptions/s1/providers/Microsoft.Network/locations/eastus/usages/PublicIPAddresses"
            )),
            "usage rows without an id get one"
        );
    }

    #[test]
    fn redacts_secrets() {
        let r = redact_cloud_config(
            r#"{"aadClientSecret": "hunter2", "AADClientCertPassword": "pw", "tenantId": "t"}"#,
        );
        assert!(!r.contains("hunter2") && !r.contains("\"pw\""));
        assert!(r.contains("\"t\""));
        assert!(!redact_cloud_config("{broken hunter2").contains("hunter2"));
    }

    /// A fake that tells, through `asked`, which lists were requested, and answers from `inner`.
    struct Watched {
        inner: Fake,
        asked: tokio::sync::mpsc::UnboundedSender<String>,
    }

    #[async_trait]
    impl ArmSource for Watched {
        async fn list(&self, s: Option<&str>, p: &str) -> RawList {
            let _ = self.asked.send(p.to_string());
            self.inner.list(s, p).await
        }
    }

    #[tokio::test]
    async fn a_subscription_named_early_is_listed_before_its_cluster_is_and_late_nodes_still_get_instances() {
        let ss = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/np";
        let lb = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/kubernetes";
        let mut lists = BTreeMap::new();
        lists.insert(
            "/subscriptions/s1/providers/microsoft.compute/virtualmachinescalesets".to_string(),
            RawList { items: raws(vec![json!({"id": ss, "type": "Microsoft.Compute/virtualMachineScaleSets", "location": "westeurope"})]), error: None },
        );
        lists.insert(
            "/subscriptions/s1/providers/microsoft.network/loadbalancers".to_string(),
            RawList {
                items: raws(vec![
                    json!({"id": lb, "location": "westeurope", "properties": {}}),
                ]),
                error: None,
            },
        );
        lists.insert(
            format!("{ss}/virtualMachines").to_ascii_lowercase(),
            RawList {
                items: raws(vec![
                    json!({"id": format!("{ss}/virtualMachines/0"), "location": "westeurope"}),
                ]),
                error: None,
            },
        );
        let (asked_tx, mut asked) = tokio::sync::mpsc::unbounded_channel();
        let fake = Watched {
            inner: Fake {
                lists,
                asked: Mutex::new(Vec::new()),
            },
            asked: asked_tx,
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tx.send(ClusterEvent::Subscription("S1".into())).unwrap();
        let opts = CollectOptions::default();
        let collecting = collect_streaming(&fake, rx, &opts);
        let cluster = async {
            // The cluster's listing arrives only after every list of the subscription was asked
            // for, and after the scale set list has answered: the ARM side did not wait for it.
            let mut seen = Vec::new();
            while seen.len() < ArmKind::LISTED.len() {
                seen.push(asked.recv().await.unwrap());
            }
            assert!(
                seen.iter().all(|p| p.starts_with("/subscriptions/s1/")),
                "{seen:?}"
            );
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            let node = json!({"kind": "Node", "metadata": {"name": "n0"}, "spec": {"providerID": format!("azure://{ss}/virtualMachines/0")}});
            tx.send(ClusterEvent::Listed(ClusterListing {
                name: "c1".into(),
                objects: vec![node],
                order: 0,
                ..Default::default()
            }))
            .unwrap();
            drop(tx);
        };
        let (c, ()) = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            tokio::join!(collecting, cluster)
        })
        .await
        .expect("collection ends when the events end");
        let w = &c.world;
        let all = fake.inner.asked.lock().unwrap().clone();
        // 7 lists once (the cluster's subscription is the one named early), the scale set's
        // instances although its list answered before the node that names it arrived, usages once.
        assert_eq!(all.len(), 9, "{all:#?}");
        assert!(
            all.iter()
                .any(|p| p.contains("virtualMachineScaleSets/np/virtualMachines"))
        );
        assert!(
            w.resources
                .contains_key(&id_key(&format!("{ss}/virtualMachines/0")))
        );
        assert_eq!(w.meta.subscriptions.len(), 1);
        assert_eq!(w.meta.clusters[0].subscription_id.as_deref(), Some("s1"));
        // The ARM side was converted while collecting, to the same inventory.
        let pre = c.arm_converted.expect("converted during collection");
        assert_eq!(
            serde_json::to_value(crate::snapshot::inventory_from_collection(w, Some(pre))).unwrap(),
            serde_json::to_value(crate::snapshot::inventory_from_world(w)).unwrap()
        );
    }

    #[tokio::test]
    async fn clusters_keep_their_order_and_a_duplicate_id_drops_the_early_conversion() {
        let lb = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/kubernetes";
        let mut lists = BTreeMap::new();
        // The same load balancer in two lists (a misbehaving API): the world keeps the last.
        for t in ["loadbalancers", "publicipaddresses"] {
            lists.insert(
                format!("/subscriptions/s1/providers/microsoft.network/{t}"),
                RawList {
                    items: raws(vec![
                        json!({"id": lb, "type": "Microsoft.Network/loadBalancers", "properties": {}}),
                    ]),
                    error: None,
                },
            );
        }
        let fake = Fake {
            lists,
            asked: Mutex::new(Vec::new()),
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for (name, order) in [("zeta", 0), ("alpha", 1)] {
            tx.send(ClusterEvent::Listed(ClusterListing {
                name: name.into(),
                order,
                ..Default::default()
            }))
            .unwrap();
        }
        drop(tx);
        let opts = CollectOptions {
            subscriptions: vec!["s1".into()],
            ..Default::default()
        };
        let c = collect_streaming(&fake, rx, &opts).await;
        let names: Vec<&str> = c.world.meta.clusters.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha"]);
        assert!(
            c.arm_converted.is_none(),
            "a replaced resource must not be counted twice"
        );
        assert_eq!(
            crate::snapshot::inventory_from_world(&c.world)
                .load_balancers
                .len(),
            1
        );
    }
}
