//! The mock's Kubernetes API servers: one HTTPS listener per cluster of the world (`k8s/<cluster>/`),
//! serving that cluster's objects read-only, plus the kubeconfig that points `kubectl` (or kube-rs)
//! at them.
//!
//! What it serves is what azaudit and `kubectl get` need, shaped like kube-apiserver v1.31
//! answers it: `/version`, legacy discovery (`/api`, `/api/v1`, `/apis`, `/apis/<group>[/<v>]`,
//! always plain `application/json` so clients fall back from aggregated discovery), lists of
//! Services, Nodes, Pods and EndpointSlices (all namespaces or one) with `labelSelector`,
//! `fieldSelector` and `limit`/`continue` paging, single objects, and the cloud-provider Secret
//! `kube-system/azure-cloud-provider`. Errors are `Status` objects with the API server's reasons
//! and messages.
//!
//! It must not: write (every method but GET is refused), watch, serve a resource the discovery
//! documents do not list, or accept a request without the cluster's own bearer token. It never
//! contacts anything: it only answers on the loopback listener `server.rs` binds for it.
//!
//! Forbidden resources (for RBAC tests): a world may hold, in `k8s/<cluster>/`, an object
//! `{"kind": "MockSettings", "forbidden": ["pods", ...]}` (any file name, e.g. `mock.json`; the
//! `kind` is what makes the world loader keep it, and what makes azaudit's own readers ignore it).
//! Requests for a listed resource (plural, or `*` for all) then get 403 `Forbidden`.

mod kubeconfig;
pub mod selector;
mod table;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use azaudit_world::ClusterObjects;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::Rng;
use serde_json::{Map, Value, json};

use self::selector::{FieldSelector, LabelSelector};
use self::table::IncludeObject;
use crate::state::MockState;

/// The version the mock claims: a v1.31 patch release, within kubectl's supported skew of the
/// client versions in use (kubectl v1.30–v1.32).
pub const GIT_VERSION: &str = "v1.31.5";

/// The Secret that holds the cloud-provider config (`consts.DefaultCloudProviderConfigSecName`
/// and `...SecNamespace`, cloud-provider-azure `pkg/consts/consts.go`; domain.md §7.4).
const CLOUD_CONFIG_SECRET_NAMESPACE: &str = "kube-system";
const CLOUD_CONFIG_SECRET_NAME: &str = "azure-cloud-provider";
/// Its data key (`consts.DefaultCloudProviderConfigSecKey`).
const CLOUD_CONFIG_SECRET_KEY: &str = "cloud-config";

/// The user named in 403 messages.
const MOCK_USER: &str = "azaudit-mock-user";

/// One resource the mock serves.
struct Resource {
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    /// `""` for the core group.
    group: &'static str,
    version: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    verbs: &'static [&'static str],
    /// Field selector labels besides `metadata.name`/`metadata.namespace`, with the value an
    /// absent field has (the registry's `ToSelectableFields` formats booleans, so absent = "false").
    fields: &'static [(&'static str, &'static str)],
}

impl Resource {
    fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// What is served. Field labels per kind from kube-apiserver's registries
/// (`pkg/registry/core/{pod,service,node,secret}/strategy.go`, `ToSelectableFields`).
const RESOURCES: &[Resource] = &[
    Resource {
        plural: "services",
        singular: "service",
        kind: "Service",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &["svc"],
        verbs: &["get", "list"],
        fields: &[("spec.clusterIP", ""), ("spec.type", "")],
    },
    Resource {
        plural: "nodes",
        singular: "node",
        kind: "Node",
        group: "",
        version: "v1",
        namespaced: false,
        short_names: &["no"],
        verbs: &["get", "list"],
        fields: &[("spec.unschedulable", "false")],
    },
    Resource {
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &["po"],
        verbs: &["get", "list"],
        fields: &[
            ("spec.nodeName", ""),
            ("spec.restartPolicy", ""),
            ("spec.schedulerName", ""),
            ("spec.serviceAccountName", ""),
            ("spec.hostNetwork", "false"),
            ("status.phase", ""),
            ("status.podIP", ""),
            ("status.nominatedNodeName", ""),
        ],
    },
    Resource {
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &[],
        // Only the cloud-config Secret is needed; listing secrets is not something azaudit does.
        verbs: &["get"],
        fields: &[("type", "")],
    },
    Resource {
        plural: "endpointslices",
        singular: "endpointslice",
        kind: "EndpointSlice",
        group: "discovery.k8s.io",
        version: "v1",
        namespaced: true,
        short_names: &[],
        verbs: &["get", "list"],
        fields: &[],
    },
];

fn resource(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// A new random bearer token for one cluster: 32 bytes from the system RNG, hex.
pub fn new_token() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random number generator is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the kubeconfig for every cluster (mode 0600; see [`kubeconfig`]).
pub fn write_kubeconfig(
    path: &Path,
    servers: &BTreeMap<String, String>,
    tokens: &BTreeMap<String, String>,
    ca_pem: &str,
) -> anyhow::Result<()> {
    kubeconfig::write_private(path, &kubeconfig::render(servers, tokens, ca_pem))
}

#[derive(Clone)]
struct Ctx {
    state: Arc<MockState>,
    cluster: Arc<str>,
}

/// The API server of one cluster.
pub fn router(state: Arc<MockState>, cluster: String) -> Router {
    Router::new().fallback(handle).with_state(Ctx {
        state,
        cluster: cluster.into(),
    })
}

async fn handle(State(ctx): State<Ctx>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    {
        let mut stats = ctx.state.stats.lock().expect("stats lock");
        *stats.k8s_requests.entry(ctx.cluster.to_string()).or_default() += 1;
    }
    let config = &ctx.state.config;
    let mut delay = config.latency_ms;
    if config.jitter_ms > 0 {
        delay += ctx
            .state
            .rng
            .lock()
            .expect("rng lock")
            .gen_range(0..=config.jitter_ms);
    }
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    respond(&ctx, &method, &uri, &headers)
}

fn respond(ctx: &Ctx, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    if !authorized(ctx, headers) {
        // kube-apiserver's body for a failed authentication (`responsewriters.Unauthorized`).
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
            None,
        );
    }
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    if let ["healthz" | "livez" | "readyz"] = segs.as_slice() {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "ok",
        )
            .into_response();
    }
    if method != Method::GET {
        return method_not_allowed();
    }
    let mut query = Query::parse(uri.query().unwrap_or(""));
    if table::wants_table(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())) {
        query.table = Some(IncludeObject::parse(query.include_object.as_deref()));
    }
    match segs.as_slice() {
        ["version"] => ok(version_info()),
        ["api"] => ok(api_versions(uri, headers)),
        ["api", "v1"] => ok(resource_list("", "v1")),
        ["apis"] => ok(api_group_list()),
        ["apis", g] if RESOURCES.iter().any(|r| r.group == *g) => ok(api_group(g)),
        ["apis", g, v] if RESOURCES.iter().any(|r| r.group == *g && r.version == *v) => {
            ok(resource_list(g, v))
        }
        ["api", "v1", rest @ ..] => resource_request(ctx, "", "v1", rest, &query),
        ["apis", g, v, rest @ ..] => resource_request(ctx, g, v, rest, &query),
        _ => not_found_path(),
    }
}

fn authorized(ctx: &Ctx, headers: &HeaderMap) -> bool {
    let Some(expected) = ctx.state.k8s_tokens.get(&*ctx.cluster).filter(|t| !t.is_empty()) else {
        return false;
    };
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    match value.split_once(' ') {
        Some((scheme, token)) => scheme.eq_ignore_ascii_case("bearer") && token.trim() == expected,
        None => false,
    }
}

/// The query parameters of a list or get.
#[derive(Default)]
struct Query {
    limit: Option<String>,
    continue_: Option<String>,
    label_selector: Option<String>,
    field_selector: Option<String>,
    resource_version: Option<String>,
    watch: Option<String>,
    include_object: Option<String>,
    /// Set when the `Accept` header asks for a `Table` (`kubectl get` without `-o`).
    table: Option<IncludeObject>,
}

impl Query {
    fn parse(q: &str) -> Query {
        let mut out = Query::default();
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            let v = Some(v.into_owned());
            match &*k {
                "limit" => out.limit = v,
                "continue" => out.continue_ = v,
                "labelSelector" => out.label_selector = v,
                "fieldSelector" => out.field_selector = v,
                "resourceVersion" => out.resource_version = v,
                "watch" => out.watch = v,
                "includeObject" => out.include_object = v,
                _ => {}
            }
        }
        out
    }

    fn watching(&self) -> bool {
        matches!(self.watch.as_deref(), Some("true" | "1"))
    }
}

fn resource_request(ctx: &Ctx, group: &str, version: &str, rest: &[&str], query: &Query) -> Response {
    let (namespace, plural, name) = match rest {
        [plural] => (None, *plural, None),
        [plural, name] => (None, *plural, Some(*name)),
        ["namespaces", ns, plural] => (Some(*ns), *plural, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
        _ => return not_found_path(),
    };
    let Some(res) = resource(group, version, plural) else {
        return not_found_path();
    };
    // Cluster-scoped resources have no namespaced path; a namespaced object needs its namespace.
    if (!res.namespaced && namespace.is_some()) || (res.namespaced && name.is_some() && namespace.is_none()) {
        return not_found_path();
    }
    let verb = if name.is_some() { "get" } else { "list" };
    let world = ctx.state.world.read().expect("world lock");
    let objects = world.clusters.get(&*ctx.cluster);
    if is_forbidden(objects, res.plural) {
        return forbidden(res, verb, namespace, name);
    }
    if !res.verbs.contains(&verb) || query.watching() {
        return method_not_allowed();
    }
    match name {
        Some(name) => get_object(objects, res, namespace.unwrap_or(""), name, query.table),
        None => list_objects(ctx, objects, res, namespace, query),
    }
}

/// Objects of a kind in a cluster as `(namespace, name, object)`, in world file order. The
/// namespace is `default` when the file left it out, as `kubectl create` would have; it is empty
/// for cluster-scoped kinds.
fn objects_of<'a>(
    objects: Option<&'a ClusterObjects>,
    res: &'a Resource,
) -> impl Iterator<Item = (String, String, &'a Value)> + 'a {
    objects
        .into_iter()
        .flat_map(|c| c.of_kind(res.kind))
        .map(move |o| {
            let ns = if res.namespaced {
                o.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("default")
                    .to_string()
            } else {
                String::new()
            };
            let name = o
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            (ns, name, o)
        })
}

/// The object as served: `kind`/`apiVersion` of the served version, and its namespace filled in.
fn served(res: &Resource, ns: &str, o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.as_object_mut() {
        m.insert("kind".into(), Value::String(res.kind.into()));
        m.insert("apiVersion".into(), Value::String(res.group_version()));
        if res.namespaced
            && let Some(meta) = m
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
        {
            meta.insert("namespace".into(), Value::String(ns.into()));
        }
    }
    o
}

fn get_object(
    objects: Option<&ClusterObjects>,
    res: &Resource,
    namespace: &str,
    name: &str,
    as_table: Option<IncludeObject>,
) -> Response {
    let found = if res.kind == "Secret"
        && namespace == CLOUD_CONFIG_SECRET_NAMESPACE
        && name == CLOUD_CONFIG_SECRET_NAME
        && let Some((_, text)) = objects.and_then(|c| c.cloud_config.as_ref())
    {
        Some(cloud_config_secret(text, objects))
    } else {
        // The same object in two files: the file that sorts last wins, as for ARM ids.
        objects_of(objects, res)
            .filter(|(ns, n, _)| ns == namespace && n == name)
            .last()
            .map(|(ns, _, o)| served(res, &ns, o))
    };
    match found {
        Some(o) => match as_table {
            Some(include) => {
                let rv = o
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(json!(""));
                ok(table::table(
                    res.kind,
                    &[o],
                    json!({"resourceVersion": rv}),
                    include,
                ))
            }
            None => ok(o),
        },
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} \"{name}\" not found", qualified_resource(res)),
            Some(details(res, Some(name))),
        ),
    }
}

/// The Secret cloud-provider-azure reads its config from (`cloudConfigType` `secret`/`merge`),
/// built from `k8s/<cluster>/azure.json`: `data.cloud-config` is that file, base64.
fn cloud_config_secret(text: &str, objects: Option<&ClusterObjects>) -> Value {
    json!({
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": CLOUD_CONFIG_SECRET_NAME,
            "namespace": CLOUD_CONFIG_SECRET_NAMESPACE,
            "resourceVersion": resource_version(objects).to_string(),
        },
        "type": "Opaque",
        "data": { CLOUD_CONFIG_SECRET_KEY: STANDARD.encode(text.as_bytes()) },
    })
}

/// The list's `resourceVersion`: the newest one among the cluster's objects (they never change
/// while the mock runs), at least 1.
fn resource_version(objects: Option<&ClusterObjects>) -> u64 {
    objects
        .into_iter()
        .flat_map(|c| c.objects.iter())
        .filter_map(|o| o.pointer("/metadata/resourceVersion").and_then(Value::as_str))
        .filter_map(|rv| rv.parse::<u64>().ok())
        .max()
        .unwrap_or(1)
        .max(1)
}

fn bad_request(message: String) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

fn list_objects(
    ctx: &Ctx,
    objects: Option<&ClusterObjects>,
    res: &Resource,
    namespace: Option<&str>,
    query: &Query,
) -> Response {
    let labels = match LabelSelector::parse(query.label_selector.as_deref().unwrap_or("")) {
        Ok(s) => s,
        Err(e) => return bad_request(e),
    };
    let fields = match FieldSelector::parse(query.field_selector.as_deref().unwrap_or("")) {
        Ok(s) => s,
        Err(e) => return bad_request(e),
    };
    if let Some(f) = fields.fields().find(|f| {
        !matches!(*f, "metadata.name" | "metadata.namespace") && !res.fields.iter().any(|(n, _)| n == f)
    }) {
        return bad_request(format!("field label not supported: {f}"));
    }
    // The API server reads `limit` as an int64 and treats anything below 1 as "no limit"
    // (`metav1.ListOptions`); without one the mock still pages at `page_size` (config.rs).
    let limit = match query.limit.as_deref().filter(|s| !s.is_empty()) {
        None => ctx.state.config.page_size,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
            Ok(_) => 0,
            Err(_) => return bad_request(format!("limit: Invalid value: \"{s}\": must be an integer")),
        },
    };
    let rv = resource_version(objects);
    let start = match query.continue_.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(token) => {
            if query.resource_version.as_deref().is_some_and(|v| !v.is_empty()) {
                return bad_request("specifying resource version is not allowed when using continue".into());
            }
            match decode_continue(token) {
                Ok((start, _rv)) => Some(start),
                Err(e) => return bad_request(format!("invalid continue token: {e}")),
            }
        }
    };

    // Storage order: etcd keys `<ns>/<name>` for an all-namespaces list, `<name>` within a
    // namespace or for cluster-scoped kinds; the continue key is relative to the same prefix.
    let mut all: Vec<(String, String, &Value)> = objects_of(objects, res)
        .filter(|(ns, _, _)| namespace.is_none_or(|want| want == ns))
        .map(|(ns, name, o)| {
            let key = if res.namespaced && namespace.is_none() {
                format!("{ns}/{name}")
            } else {
                name
            };
            (key, ns, o)
        })
        .collect();
    // A stable sort keeps file order among equal keys; of the same object in two files the one
    // that sorts last wins (as for ARM ids), so keep the last of each run.
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.reverse();
    all.dedup_by(|dup, kept| dup.0 == kept.0);
    all.reverse();
    let begin = match &start {
        Some(s) => all.partition_point(|(k, _, _)| k.as_str() < s.as_str()),
        None => 0,
    };

    // As etcd3's `GetList`: walk keys in order, stop when `limit` items matched and another key
    // follows; the continue token then starts right after the last key examined.
    let mut items: Vec<(&str, &Value)> = Vec::new();
    let mut next_start: Option<String> = None;
    let mut remaining = 0usize;
    for (i, (_, ns, o)) in all.iter().enumerate().skip(begin) {
        if limit > 0 && items.len() >= limit {
            remaining = all.len() - i;
            next_start = Some(format!("{}\u{0}", all[i - 1].0));
            break;
        }
        let lookup = |f: &str| field_value(res, ns, o, f);
        if labels.matches(o) && fields.matches(lookup) {
            items.push((ns.as_str(), *o));
        }
    }
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), Value::String(rv.to_string()));
    if let Some(s) = next_start {
        metadata.insert("continue".into(), Value::String(encode_continue(&s, rv)));
        // "This field is not set if the list request contained label or field selectors"
        // (`metav1.ListMeta.RemainingItemCount`).
        if labels.is_empty() && fields.is_empty() {
            metadata.insert("remainingItemCount".into(), json!(remaining));
        }
    }
    if let Some(include) = query.table {
        let items: Vec<Value> = items.iter().map(|(ns, o)| served(res, ns, o)).collect();
        return ok(table::table(res.kind, &items, Value::Object(metadata), include));
    }
    // Items of a typed list carry no `kind`/`apiVersion` of their own. Written from the world's
    // objects by reference: a list of thousands is never copied to be served.
    #[derive(serde::Serialize)]
    struct List<'a> {
        kind: String,
        #[serde(rename = "apiVersion")]
        api_version: String,
        metadata: Value,
        items: Vec<ListItem<'a>>,
    }
    let list = List {
        kind: format!("{}List", res.kind),
        api_version: res.group_version(),
        metadata: Value::Object(metadata),
        items: items
            .into_iter()
            .map(|(ns, o)| ListItem {
                object: o,
                namespace: res.namespaced.then_some(ns),
            })
            .collect(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        serde_json::to_string(&list).expect("JSON values serialise"),
    )
        .into_response()
}

/// An object as a list serves it: without `kind`/`apiVersion`, with `metadata.namespace` set
/// for namespaced kinds (the world's files may leave it out).
struct ListItem<'a> {
    object: &'a Value,
    namespace: Option<&'a str>,
}

impl serde::Serialize for ListItem<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Meta<'a>(Option<&'a Map<String, Value>>, &'a str);
        impl serde::Serialize for Meta<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                for (k, v) in self.0.into_iter().flatten() {
                    if k != "namespace" {
                        m.serialize_entry(k, v)?;
                    }
                }
                m.serialize_entry("namespace", self.1)?;
                m.end()
            }
        }
        let Some(o) = self.object.as_object() else {
            return self.object.serialize(s);
        };
        let mut m = s.serialize_map(None)?;
        for (k, v) in o {
            match (k.as_str(), self.namespace) {
                ("kind" | "apiVersion", _) => {}
                ("metadata", Some(ns)) => m.serialize_entry(k, &Meta(v.as_object(), ns))?,
                _ => m.serialize_entry(k, v)?,
            }
        }
        if let (Some(ns), false) = (self.namespace, o.contains_key("metadata")) {
            m.serialize_entry("metadata", &Meta(None, ns))?;
        }
        m.end()
    }
}

/// A field's value as the registry's `ToSelectableFields` formats it.
fn field_value(res: &Resource, ns: &str, o: &Value, field: &str) -> String {
    match field {
        "metadata.namespace" => return ns.to_string(),
        "metadata.name" => {
            return o
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
        }
        _ => {}
    }
    let default = res
        .fields
        .iter()
        .find(|(n, _)| *n == field)
        .map(|(_, d)| *d)
        .unwrap_or("");
    let pointer = format!("/{}", field.replace('.', "/"));
    match o.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => default.to_string(),
    }
}

/// The continue token kube-apiserver hands out (`storage.EncodeContinue`): base64url (no padding)
/// of `{"v":"meta.k8s.io/v1","rv":<rv>,"start":"<key>\u0000"}`.
fn encode_continue(start: &str, rv: u64) -> String {
    let body = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    URL_SAFE_NO_PAD.encode(body.to_string())
}

/// The inverse of [`encode_continue`], with `storage.DecodeContinue`'s checks and messages.
fn decode_continue(token: &str) -> Result<(String, u64), String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| format!("continue key is not valid: {e}"))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("continue key is not valid: {e}"))?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err("continue key is not valid: server does not recognize this encoded version".into());
    }
    let rv = v.get("rv").and_then(Value::as_u64).unwrap_or(0);
    if rv == 0 {
        return Err(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
                .into(),
        );
    }
    let start = v.get("start").and_then(Value::as_str).unwrap_or("");
    if start.is_empty() {
        return Err("continue key is not valid: encoded start key empty (version meta.k8s.io/v1)".into());
    }
    // The real server rejects keys that would escape the listed prefix after cleaning.
    if start.split('/').any(|seg| seg == "..") {
        return Err("continue key is not valid: the start key must not contain '..'".into());
    }
    Ok((start.to_string(), rv))
}

fn is_forbidden(objects: Option<&ClusterObjects>, plural: &str) -> bool {
    objects.is_some_and(|c| {
        c.of_kind("MockSettings")
            .filter_map(|s| s.get("forbidden").and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .any(|f| f == plural || f == "*")
    })
}

/// The resource as messages name it: `services`, or `endpointslices.discovery.k8s.io`.
fn qualified_resource(res: &Resource) -> String {
    if res.group.is_empty() {
        res.plural.to_string()
    } else {
        format!("{}.{}", res.plural, res.group)
    }
}

fn details(res: &Resource, name: Option<&str>) -> Value {
    let mut d = Map::new();
    if let Some(n) = name {
        d.insert("name".into(), Value::String(n.into()));
    }
    if !res.group.is_empty() {
        d.insert("group".into(), Value::String(res.group.into()));
    }
    d.insert("kind".into(), Value::String(res.plural.into()));
    Value::Object(d)
}

/// 403 as the RBAC authorizer words it (`responsewriters.ForbiddenStatusError`).
fn forbidden(res: &Resource, verb: &str, namespace: Option<&str>, name: Option<&str>) -> Response {
    let what = match name {
        Some(n) => format!("{} \"{n}\"", qualified_resource(res)),
        None => qualified_resource(res),
    };
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    status(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "{what} is forbidden: User \"{MOCK_USER}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
            res.plural, res.group
        ),
        Some(details(res, name)),
    )
}

fn method_not_allowed() -> Response {
    status(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource".into(),
        None,
    )
}

fn not_found_path() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource".into(),
        None,
    )
}

fn status(code: StatusCode, reason: &str, message: String, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    with_json(code, &body)
}

fn ok(body: Value) -> Response {
    with_json(StatusCode::OK, &body)
}

fn with_json(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body.to_string(),
    )
        .into_response()
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "31",
        "gitVersion": GIT_VERSION,
        "gitCommit": "a87cd7e6e6a0a4d1b0b5ab4d1b4f4e3a2a0a5c5e",
        "gitTreeState": "clean",
        "buildDate": "2025-01-15T14:31:55Z",
        "goVersion": "go1.22.10",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn api_versions(uri: &Uri, headers: &HeaderMap) -> Value {
    let host = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    })
}

fn group_versions(group: &str) -> Vec<Value> {
    let mut versions: Vec<&str> = RESOURCES
        .iter()
        .filter(|r| r.group == group)
        .map(|r| r.version)
        .collect();
    versions.dedup();
    versions
        .into_iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect()
}

fn api_group(group: &str) -> Value {
    let versions = group_versions(group);
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
        "versions": versions,
    })
}

fn api_group_list() -> Value {
    let mut groups: Vec<&str> = RESOURCES
        .iter()
        .map(|r| r.group)
        .filter(|g| !g.is_empty())
        .collect();
    groups.dedup();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let mut v = api_group(g);
            if let Some(m) = v.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            v
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(group: &str, version: &str) -> Value {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            let mut v = json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": r.verbs,
            });
            if !r.short_names.is_empty() {
                v["shortNames"] = json!(r.short_names);
            }
            v
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}
