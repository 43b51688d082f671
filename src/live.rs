//! Live collection end to end: authenticate, build the ARM client, list the clusters, collect.
//! Shared by `audit`, `inventory`, `snapshot`, `demo` and `cleanup apply`, so every live path is
//! the same path.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use futures::future::join_all;

use crate::arm::{ArmArgs, ArmClient, CacheScope};
use crate::auth::{AuthArgs, IdentityInfo};
use crate::cloud_config::CloudConfig;
use crate::collect::{ClusterEvent, ClusterHint, ClusterListing, CollectOptions};
use crate::config::Config;
use crate::inventory::CloudConfigSource;
use crate::kube::KubeArgs;
use crate::report::CallStats;

/// Set by `--quiet`: no progress display.
pub static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A spinner on stderr while collecting — only on a terminal, never in cron or pipes.
fn progress() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if QUIET.load(std::sync::atomic::Ordering::Relaxed) || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(pb)
}

fn step(pb: &Option<indicatif::ProgressBar>, msg: &str) {
    if let Some(pb) = pb {
        pb.set_message(msg.to_string());
    }
}

/// What to collect live (besides credentials, which are `AuthArgs`).
#[derive(Args, Debug, Clone)]
pub struct LiveArgs {
    /// Subscription to audit (repeatable). Default: the subscriptions the clusters' cloud configs
    /// and node providerIDs name; with no cluster, every subscription the principal can see.
    #[arg(long = "subscription", value_name = "ID", value_delimiter = ',')]
    pub subscriptions: Vec<String>,
    /// The cloud provider's `--cluster-name` for clusters that azaudit.toml does not describe
    /// (it is the `k8s-azure-cluster-name` tag value and the LB name; AKS uses `kubernetes`).
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub arm: ArmArgs,
}

/// Everything a live collection produced.
pub struct Collected {
    pub world: azaudit_world::World,
    /// The world's ARM side already converted during collection, when that worked out
    /// (`snapshot::inventory_from_collection`).
    pub arm_converted: Option<crate::inventory::convert::InventoryBuilder>,
    pub stats: CallStats,
    pub identity: IdentityInfo,
    /// The ARM client, for callers that go on talking to ARM (cleanup apply).
    pub arm: ArmClient,
}

/// Drops `value` on a thread of its own: freeing a large world (hundreds of thousands of
/// allocations) then overlaps the report instead of preceding it.
pub fn drop_in_background<T: Send + 'static>(value: T) {
    if let Err(e) = std::thread::Builder::new()
        .name("azaudit-free".into())
        .spawn(move || drop(value))
    {
        tracing::debug!("could not start a thread to free memory: {e}");
    }
}

fn read_cloud_config_file(path: &PathBuf) -> anyhow::Result<CloudConfigSource> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("read cloud config {}", path.display()))?;
    #[cfg(unix)]
    let file_mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
    };
    #[cfg(not(unix))]
    let file_mode = None;
    Ok(CloudConfigSource {
        reference: format!("file://{}", path.display()),
        text,
        file_mode,
    })
}

/// Authenticates and collects. Authentication failures are errors (exit 3); everything after
/// that degrades into gaps.
pub async fn collect(auth_args: &AuthArgs, live: &LiveArgs, cfg: &Config) -> anyhow::Result<Collected> {
    let cloud_config = match &auth_args.cloud_config {
        Some(p) => Some(CloudConfig::load(p).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let pb = progress();
    step(&pb, "authenticating");
    let auth = crate::auth::authenticate(auth_args, cloud_config.as_ref()).await?;
    for w in &auth.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(source = %auth.identity.description, cloud = %auth.cloud.name, "authenticated");
    let scope = CacheScope {
        tenant: auth.identity.tenant_id.clone().unwrap_or_default(),
        principal: auth
            .identity
            .object_id
            .clone()
            .or_else(|| auth.identity.client_id.clone())
            .unwrap_or_default(),
    };
    let arm = ArmClient::new(
        live.arm.options(),
        auth.http.clone(),
        auth.credential.clone(),
        &auth.cloud,
        scope,
    )?;

    // Kubernetes and ARM at once: every cluster is listed concurrently (a cluster that cannot be
    // reached is a gap, not an error), and a subscription's ARM lists start as soon as a
    // cluster names it (config hint, cloud config file or Secret), before the listings end.
    step(
        &pb,
        "listing Kubernetes clusters and Azure resources (rate-limited per subscription)",
    );
    let targets = crate::kube::targets(&live.kube).await?;
    let hints: Vec<ClusterHint> = cfg.clusters.clone();
    // Cloud config files are read first: a missing file is an error before anything is listed.
    let mut file_configs = Vec::new();
    for t in &targets {
        let hint = hints.iter().find(|h| h.context == t.name);
        let file = if let Some(p) = hint.and_then(|h| h.cloud_config_file.as_ref()) {
            Some(read_cloud_config_file(p)?)
        } else if let (Some(p), 1) = (&auth_args.cloud_config, targets.len()) {
            Some(read_cloud_config_file(p)?)
        } else {
            None
        };
        file_configs.push(file);
    }
    let mut cluster_hints = hints.clone();
    if let Some(name) = &live.cluster_name {
        for t in &targets {
            if !cluster_hints.iter().any(|h| h.context == t.name) {
                cluster_hints.push(ClusterHint {
                    context: t.name.clone(),
                    cluster_name_tag: Some(name.clone()),
                    ..Default::default()
                });
            }
        }
    }
    let opts = CollectOptions {
        subscriptions: live.subscriptions.clone(),
        clusters: cluster_hints,
        tenant_id: auth.identity.tenant_id.clone(),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let hint_subscription = |t: &crate::kube::Target| {
        hints
            .iter()
            .find(|h| h.context == t.name)
            .and_then(|h| h.subscription_id.clone())
    };
    // A subscription azaudit.toml names is known before any listing.
    for t in &targets {
        if let Some(s) = hint_subscription(t) {
            let _ = tx.send(ClusterEvent::Subscription(s));
        }
    }
    let k8s_requests = std::sync::atomic::AtomicU64::new(0);
    let k8s_started = std::time::Instant::now();
    let kubernetes = async {
        let per_cluster = targets
            .iter()
            .zip(file_configs)
            .enumerate()
            .map(|(order, (t, file))| {
                let tx = tx.clone();
                let hinted = hint_subscription(t);
                let k8s_requests = &k8s_requests;
                async move {
                    // Once the Secret has answered, the subscription the collector will audit
                    // this cluster in (same precedence: hint, Secret, file) starts its lists.
                    let early = |secret: Option<&CloudConfigSource>| {
                        let cc = secret.or(file.as_ref());
                        if let Some(s) = crate::collect::configured_subscription(hinted.as_deref(), cc) {
                            let _ = tx.send(ClusterEvent::Subscription(s));
                        }
                    };
                    let l = crate::kube::list_cluster_with(t, &early).await;
                    tracing::debug!(
                        cluster = %t.name,
                        elapsed_ms = k8s_started.elapsed().as_millis() as u64,
                        "cluster listed"
                    );
                    k8s_requests.fetch_add(l.requests, std::sync::atomic::Ordering::Relaxed);
                    let _ = tx.send(ClusterEvent::Listed(ClusterListing {
                        name: t.name.clone(),
                        order,
                        objects: l.objects,
                        failures: l.failures,
                        cloud_config: l.cloud_config.or(file),
                    }));
                }
            });
        join_all(per_cluster).await;
        drop(tx);
        tracing::info!(
            clusters = targets.len(),
            elapsed_ms = k8s_started.elapsed().as_millis() as u64,
            "Kubernetes listing done"
        );
    };
    let (_, collection) = tokio::join!(kubernetes, crate::collect::collect_streaming(&arm, rx, &opts));
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let mut stats = arm.stats();
    stats.kubernetes_requests = k8s_requests.into_inner();
    Ok(Collected {
        world: collection.world,
        arm_converted: collection.arm_converted,
        stats,
        identity: auth.identity,
        arm,
    })
}
