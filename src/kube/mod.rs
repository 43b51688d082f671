//! Read-only Kubernetes listing: Services, Nodes, EndpointSlices, kube-system Pods and the
//! `kube-system/azure-cloud-provider` Secret, with `limit`/`continue` paging (kube-rs).
//!
//! Objects are handed on as raw JSON so that the same converter reads live clusters and
//! snapshots. A list that fails becomes a gap for that cluster and kind; the others go on.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, ObjectList};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;

use crate::inventory::{CloudConfigSource, K8sKind};

/// Page size for Kubernetes lists (the API server's recommended chunk size is 500).
pub const PAGE_LIMIT: u32 = 500;

/// Where to find clusters.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KubeArgs {
    /// Kubeconfig context to audit (repeatable). Default: the current context.
    #[arg(long = "context", value_name = "NAME")]
    pub contexts: Vec<String>,
    /// Audit every context of the kubeconfig.
    #[arg(long, conflicts_with = "contexts")]
    pub all_contexts: bool,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Use the in-cluster service account instead of a kubeconfig (for the CronJob).
    #[arg(long, conflicts_with_all = ["contexts", "all_contexts", "kubeconfig"])]
    pub in_cluster: bool,
    /// Audit no cluster (Azure side only; orphan rules that need Services then report nothing).
    #[arg(long, conflicts_with_all = ["contexts", "all_contexts", "in_cluster"])]
    pub no_kubernetes: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("read kubeconfig {path}: {source}. Pass --kubeconfig FILE or set KUBECONFIG")]
    ReadKubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("kubeconfig context {context:?}: {source}")]
    Context {
        context: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("in-cluster config: {0}. Run inside a pod with a service account, or use --kubeconfig")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("kubeconfig has no current context and no --context was given")]
    NoContext,
    #[error("build Kubernetes client for {context:?}: {source}")]
    Client {
        context: String,
        #[source]
        source: kube::Error,
    },
}

/// One cluster to list: its name (the context name) and a client.
pub struct Target {
    pub name: String,
    pub client: Client,
}

/// Resolves `--context` / `--all-contexts` / `--in-cluster` into clients.
pub async fn targets(args: &KubeArgs) -> Result<Vec<Target>, KubeError> {
    if args.no_kubernetes {
        return Ok(Vec::new());
    }
    if args.in_cluster {
        let cfg = Config::incluster().map_err(KubeError::InCluster)?;
        let client = Client::try_from(cfg).map_err(|source| KubeError::Client {
            context: "in-cluster".into(),
            source,
        })?;
        return Ok(vec![Target {
            name: "in-cluster".into(),
            client,
        }]);
    }
    let kc = match &args.kubeconfig {
        Some(p) => Kubeconfig::read_from(p).map_err(|source| KubeError::ReadKubeconfig {
            path: p.display().to_string(),
            source,
        })?,
        None => Kubeconfig::read().map_err(|source| KubeError::ReadKubeconfig {
            path: "$KUBECONFIG or ~/.kube/config".into(),
            source,
        })?,
    };
    let names: Vec<String> = if args.all_contexts {
        kc.contexts.iter().map(|c| c.name.clone()).collect()
    } else if !args.contexts.is_empty() {
        args.contexts.clone()
    } else {
        vec![kc.current_context.clone().ok_or(KubeError::NoContext)?]
    };
    let mut out = Vec::new();
    for name in names {
        let opts = KubeConfigOptions {
            context: Some(name.clone()),
            ..Default::default()
        };
        let cfg = Config::from_custom_kubeconfig(kc.clone(), &opts)
            .await
            .map_err(|source| KubeError::Context {
                context: name.clone(),
                source,
            })?;
        let client = Client::try_from(cfg).map_err(|source| KubeError::Client {
            context: name.clone(),
            source,
        })?;
        out.push(Target { name, client });
    }
    Ok(out)
}

/// What was listed from one cluster.
#[derive(Debug, Default)]
pub struct Listed {
    /// Raw objects, each with `kind` set.
    pub objects: Vec<Value>,
    /// Kinds that failed, with the cause (actionable).
    pub failures: Vec<(K8sKind, String)>,
    pub cloud_config: Option<CloudConfigSource>,
    pub requests: u64,
}

fn describe(err: &kube::Error, what: &str) -> String {
    match err {
        kube::Error::Api(s) if s.code == 403 => format!(
            "forbidden to list {what}: grant the audit's identity `list` on {what} (see deploy/rbac.yaml): {}",
            s.message
        ),
        kube::Error::Api(s) if s.code == 401 => {
            format!(
                "unauthorized listing {what}: the kubeconfig credentials were refused (expired token? run your login/exec plugin again): {}",
                s.message
            )
        }
        other => format!("listing {what} failed: {other}"),
    }
}

/// One Kubernetes list the audit reads: what `list_cluster_with` collects and what `azaudit
/// doctor` checks it may read.
pub struct KubeList {
    pub kind: K8sKind,
    /// The `kind` its objects get.
    pub object_kind: &'static str,
    /// The API path (all namespaces, or `kube-system` for Pods).
    pub path: &'static str,
    /// How a gap names it.
    pub what: &'static str,
    /// `azaudit doctor`'s check id (`kubernetes:<context>:<id>`) and how it names the list.
    pub doctor: (&'static str, &'static str),
    /// The RBAC resource and `kubectl` namespace flag to grant `list` on.
    pub rbac: (&'static str, &'static str),
}

/// The four lists, in the order their objects are merged.
pub const LISTS: [KubeList; 4] = [
    KubeList {
        kind: K8sKind::Services,
        object_kind: "Service",
        path: "/api/v1/services",
        what: "services",
        doctor: ("services", "services (all namespaces)"),
        rbac: ("services", ""),
    },
    KubeList {
        kind: K8sKind::Nodes,
        object_kind: "Node",
        path: "/api/v1/nodes",
        what: "nodes",
        doctor: ("nodes", "nodes"),
        rbac: ("nodes", ""),
    },
    KubeList {
        kind: K8sKind::EndpointSlices,
        object_kind: "EndpointSlice",
        path: "/apis/discovery.k8s.io/v1/endpointslices",
        what: "endpointslices",
        doctor: (
            "endpointslices",
            "endpointslices.discovery.k8s.io (all namespaces)",
        ),
        rbac: ("endpointslices.discovery.k8s.io", ""),
    },
    KubeList {
        kind: K8sKind::Pods,
        object_kind: "Pod",
        path: "/api/v1/namespaces/kube-system/pods",
        what: "pods in kube-system",
        doctor: ("kube-system-pods", "pods in kube-system"),
        rbac: ("pods", " -n kube-system"),
    },
];

/// One page of a list, its items as JSON as the API server sent them.
pub async fn list_page(
    client: &Client,
    path: &str,
    lp: &ListParams,
) -> Result<ObjectList<Value>, kube::Error> {
    let req = kube::core::Request::new(path)
        .list(lp)
        .map_err(kube::Error::BuildRequest)?;
    client.request::<ObjectList<Value>>(req).await
}

/// The cloud config a `kube-system/azure-cloud-provider` Secret holds.
fn cloud_config_of(t: &Target, s: &Secret) -> Option<CloudConfigSource> {
    let data = s.data.as_ref()?.get("cloud-config")?;
    Some(CloudConfigSource {
        reference: format!("k8s://{}/kube-system/secrets/azure-cloud-provider", t.name),
        text: String::from_utf8_lossy(&data.0).into_owned(),
        file_mode: None,
    })
}

/// Every page of one list: the objects read (with `kind` set), the requests sent, and the error
/// that ended it early, if any (objects read before it are kept). Items are read straight into
/// JSON trees, as the API server sent them: no typed round trip (which costs CPU and drops
/// fields the typed structs do not know).
async fn list_all(
    client: &Client,
    path: &str,
    kind: &str,
    labels: Option<&str>,
) -> (Vec<Value>, u64, Option<kube::Error>) {
    let mut objects = Vec::new();
    let mut requests = 0;
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE_LIMIT);
        if let Some(l) = labels {
            lp = lp.labels(l);
        }
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        requests += 1;
        let page = match list_page(client, path, &lp).await {
            Ok(p) => p,
            Err(e) => return (objects, requests, Some(e)),
        };
        for mut v in page.items {
            if let Value::Object(o) = &mut v {
                o.insert("kind".into(), Value::String(kind.into()));
            }
            objects.push(v);
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return (objects, requests, None);
        }
    }
}

/// Lists everything the audit needs from one cluster. Never fails as a whole. The four lists
/// and the cloud config Secret are asked for at once (they do not depend on each other); the
/// objects are merged in a fixed order, so the result does not depend on which answered first.
pub async fn list_cluster(t: &Target) -> Listed {
    list_cluster_with(t, &|_| {}).await
}

/// [`list_cluster`], calling `early` with the cloud config (if the Secret holds one) as soon as
/// the Secret has answered. The Secret is asked for alone first: it names the subscription, so it
/// decides when ARM can start, and it is answered sooner without four lists opening connections
/// beside it (measured: BENCHMARKS.md). The four lists then go at once; a Secret that cannot be
/// read delays them by one round trip only.
pub async fn list_cluster_with(t: &Target, early: &(dyn Fn(Option<&CloudConfigSource>) + Sync)) -> Listed {
    let mut listed = Listed::default();
    let c = t.client.clone();
    let secret = Api::<Secret>::namespaced(c.clone(), "kube-system")
        .get_opt("azure-cloud-provider")
        .await
        .map(|s| s.and_then(|s| cloud_config_of(t, &s)));
    early(secret.as_ref().ok().and_then(Option::as_ref));
    let lists =
        futures::future::join_all(LISTS.iter().map(|l| list_all(&c, l.path, l.object_kind, None))).await;
    for (l, (objects, requests, error)) in LISTS.iter().zip(lists) {
        listed.objects.extend(objects);
        listed.requests += requests;
        if let Some(e) = error {
            listed.failures.push((l.kind, describe(&e, l.what)));
        }
    }
    // The cloud config Secret is optional: most audit identities may not read Secrets.
    listed.requests += 1;
    match secret {
        Ok(cc) => listed.cloud_config = cc,
        Err(e) => tracing::debug!(cluster = %t.name, "cloud config secret not readable: {e}"),
    }
    listed
}
