//! The world directory (`docs/world-format.md` in shared/): raw ARM resources and Kubernetes objects
//! as their APIs return them, plus optional metadata.
//!
//! This crate only reads and writes the directory. It keeps every object as raw JSON: converting
//! into inventory types is azaudit's job, serving it is the mock's. It never touches the network.
//!
//! Loading is lenient, as the format asks: a file that cannot be read or parsed is recorded as a
//! [`Problem`] and the rest still loads; duplicate ids are resolved "last file wins" and reported.

pub mod id;
pub mod raw;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub use id::{ResourceId, id_key};

/// The usages "type" we assign (usage rows carry no `type` field of their own).
pub const USAGE_TYPE: &str = "Microsoft.Network/locations/usages";

/// One cluster as `world.json` describes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    /// Where the cloud config is: a path in the world (`k8s/<cluster>/azure.json`, the cluster's
    /// own config as its Secret holds it), or `file://<path>` when it was read from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_config: Option<String>,
    /// Unix permission bits of that file, when read from one (group/other-readable secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_config_mode: Option<u32>,
}

/// One subscription as `world.json` describes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SubscriptionMeta {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `world.json`. Every field optional; `mock` is opaque here (only the mock reads it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WorldMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<SubscriptionMeta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<Value>,
    /// What a snapshot failed to collect; an audit of it is incomplete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Value>,
}

/// One ARM resource as found in the world.
///
/// The object is kept as compact JSON text (see [`raw`]): [`ArmResource::value`] parses it,
/// [`ArmResource::set_value`] replaces it.
#[derive(Debug, Clone)]
pub struct ArmResource {
    /// The id as written (ARM's casing).
    pub id: String,
    /// The `type` as written, or derived from the id when absent.
    pub type_: String,
    /// The `location`, when the object has one.
    location: Option<String>,
    /// The raw object, normalised to ARM's REST shape (`properties` nested), compact.
    raw: Box<RawValue>,
    /// The file it came from, relative to the world root.
    pub source: PathBuf,
}

impl PartialEq for ArmResource {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id && self.type_ == o.type_ && self.source == o.source && self.raw.get() == o.raw.get()
    }
}

impl ArmResource {
    /// A resource from an object already in ARM's REST shape (see [`normalise_arm`]).
    pub fn new(id: String, type_: String, value: &Value, source: PathBuf) -> ArmResource {
        ArmResource {
            id,
            type_,
            location: value.get("location").and_then(Value::as_str).map(str::to_string),
            raw: raw::to_raw(value),
            source,
        }
    }

    /// A resource from an ARM item as compact JSON, normalised as [`normalise_arm`] does.
    pub fn from_raw(item: Box<RawValue>, source: PathBuf) -> Result<ArmResource, String> {
        let n = raw::normalise(item)?;
        Ok(ArmResource {
            id: n.id,
            type_: n.type_,
            location: n.location,
            raw: n.raw,
            source,
        })
    }

    /// The object, parsed (a new tree on every call: keep it while you need it).
    pub fn value(&self) -> Value {
        serde_json::from_str(self.raw.get()).unwrap_or(Value::Null)
    }

    /// The object as JSON text.
    pub fn raw(&self) -> &RawValue {
        &self.raw
    }

    /// Replaces the object (id, type and source stay).
    pub fn set_value(&mut self, v: &Value) {
        self.location = v.get("location").and_then(Value::as_str).map(str::to_string);
        self.raw = raw::to_raw(v);
    }

    /// Changes the object in place: parsed, handed to `f`, stored again.
    pub fn edit<T>(&mut self, f: impl FnOnce(&mut Value) -> T) -> T {
        let mut v = self.value();
        let out = f(&mut v);
        self.set_value(&v);
        out
    }

    pub fn type_is(&self, t: &str) -> bool {
        self.type_.eq_ignore_ascii_case(t)
    }
    pub fn parsed_id(&self) -> Option<ResourceId> {
        ResourceId::parse(&self.id)
    }
    pub fn subscription(&self) -> Option<String> {
        self.parsed_id().and_then(|p| p.subscription)
    }
    pub fn resource_group(&self) -> Option<String> {
        self.parsed_id().and_then(|p| p.resource_group)
    }
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }
}

/// Kubernetes objects of one cluster (`k8s/<cluster>/`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterObjects {
    pub name: String,
    /// Single objects (lists are expanded), each with `kind` set.
    pub objects: Vec<Value>,
    /// `k8s/<cluster>/azure.json` if present: its path relative to the root and its raw text.
    pub cloud_config: Option<(PathBuf, String)>,
}

impl ClusterObjects {
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |o| o.get("kind").and_then(Value::as_str) == Some(kind))
    }
}

/// Something the loader skipped or resolved, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: PathBuf,
    pub reason: String,
    /// `true` when data was lost (the load is incomplete); `false` for notes such as duplicates.
    pub lost_data: bool,
}

/// A loaded world.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub meta: WorldMeta,
    /// By [`id_key`]; iteration is in id order.
    pub resources: BTreeMap<String, ArmResource>,
    pub clusters: BTreeMap<String, ClusterObjects>,
    pub problems: Vec<Problem>,
}

/// Errors that stop a load altogether (a missing root); everything else is a [`Problem`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read world directory {path}")]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl World {
    /// Loads a world directory from disk.
    pub fn load(root: &Path) -> Result<World, LoadError> {
        let meta = fs::metadata(root).map_err(|source| LoadError::Root {
            path: root.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(LoadError::Root {
                path: root.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"),
            });
        }
        let mut files = Vec::new();
        let mut problems = Vec::new();
        collect_files(root, Path::new(""), &mut files, &mut problems);
        let mut w = World::from_files(files);
        problems.append(&mut w.problems);
        w.problems = problems;
        Ok(w)
    }

    /// Builds a world from `(relative path, contents)` pairs, e.g. an embedded world.
    pub fn from_files(mut files: Vec<(PathBuf, Vec<u8>)>) -> World {
        // "The file that sorts last wins": process in path order.
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut w = World::default();
        for (rel, bytes) in files {
            let comps: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let is_json = rel.extension().and_then(|e| e.to_str()) == Some("json");
            match comps.first().map(String::as_str) {
                Some("world.json") if comps.len() == 1 => match serde_json::from_slice(&bytes) {
                    Ok(m) => w.meta = m,
                    Err(e) => w.problem(&rel, format!("world.json is not valid: {e}"), true),
                },
                Some("arm") if is_json => w.load_arm_file(&rel, &bytes),
                Some("k8s") if is_json && comps.len() >= 3 => {
                    w.load_k8s_file(&comps[1], &rel, &bytes, comps.len() == 3)
                }
                _ => {}
            }
        }
        w
    }

    fn problem(&mut self, path: &Path, reason: String, lost_data: bool) {
        self.problems.push(Problem {
            path: path.to_path_buf(),
            reason,
            lost_data,
        });
    }

    /// `true` when some file could not be used.
    pub fn is_incomplete(&self) -> bool {
        self.problems.iter().any(|p| p.lost_data) || !self.meta.gaps.is_empty()
    }

    fn load_arm_file(&mut self, rel: &Path, bytes: &[u8]) {
        let items = match raw::file_items(bytes) {
            Ok(items) => items,
            Err(reason) => return self.problem(rel, reason, true),
        };
        for (pos, item) in items.into_iter().enumerate() {
            match ArmResource::from_raw(item, rel.to_path_buf()) {
                Ok(resource) => {
                    let key = id_key(&resource.id);
                    if let Some(prev) = self.resources.insert(key, resource) {
                        self.problem(
                            rel,
                            format!(
                                "resource {} also in {}; this file sorts last and wins",
                                prev.id,
                                prev.source.display()
                            ),
                            false,
                        );
                    }
                }
                Err(reason) => self.problem(rel, format!("item {pos}: {reason}"), true),
            }
        }
    }

    fn load_k8s_file(&mut self, cluster: &str, rel: &Path, bytes: &[u8], top_level: bool) {
        let entry = self
            .clusters
            .entry(cluster.to_string())
            .or_insert_with(|| ClusterObjects {
                name: cluster.to_string(),
                ..Default::default()
            });
        if top_level && rel.file_name().and_then(|f| f.to_str()) == Some("azure.json") {
            entry.cloud_config = Some((rel.to_path_buf(), String::from_utf8_lossy(bytes).into_owned()));
            return;
        }
        let v: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => return self.problem(rel, format!("not valid JSON: {e}"), true),
        };
        let mut out = Vec::new();
        expand_k8s(v, None, &mut out);
        if out.is_empty() {
            self.problem(rel, "no Kubernetes objects (no `kind`)".into(), false);
        }
        let entry = self.clusters.get_mut(cluster).expect("inserted above");
        entry.objects.extend(out);
    }

    /// Resources of one type (case-insensitive).
    pub fn of_type<'a>(&'a self, t: &'a str) -> impl Iterator<Item = &'a ArmResource> + 'a {
        self.resources.values().filter(move |r| r.type_is(t))
    }

    /// A resource by id (case-insensitive).
    pub fn get(&self, id: &str) -> Option<&ArmResource> {
        self.resources.get(&id_key(id))
    }

    /// Subscription ids: from `world.json`, else derived from resource ids. Sorted, deduplicated
    /// case-insensitively, first casing kept.
    pub fn subscription_ids(&self) -> Vec<String> {
        let mut seen = BTreeMap::new();
        for s in &self.meta.subscriptions {
            seen.entry(s.id.to_ascii_lowercase())
                .or_insert_with(|| s.id.clone());
        }
        for r in self.resources.values() {
            if let Some(s) = r.subscription() {
                seen.entry(s.to_ascii_lowercase()).or_insert(s);
            }
        }
        seen.into_values().collect()
    }
}

fn collect_files(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>, problems: &mut Vec<Problem>) {
    let dir = root.join(rel);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(Problem {
                path: rel.to_path_buf(),
                reason: format!("cannot read directory: {e}"),
                lost_data: true,
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let child_rel = rel.join(&name);
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            collect_files(root, &child_rel, out, problems);
        } else if ft.is_file() || ft.is_symlink() {
            let wanted = child_rel.extension().and_then(|e| e.to_str()) == Some("json");
            if !wanted {
                continue;
            }
            match fs::read(entry.path()) {
                Ok(b) => out.push((child_rel, b)),
                Err(e) => problems.push(Problem {
                    path: child_rel,
                    reason: format!("cannot read: {e}"),
                    lost_data: true,
                }),
            }
        }
    }
}

/// Envelope keys of an ARM resource; anything else at the top level of an object with no
/// `properties` is taken to be `az`'s flattened output and moved under `properties`.
const ENVELOPE: &[&str] = &[
    "id",
    "name",
    "type",
    "location",
    "tags",
    "etag",
    "sku",
    "zones",
    "extendedLocation",
    "identity",
    "plan",
    "kind",
    "managedBy",
    "systemData",
    "instanceId",
    "resourceGroup",
];

/// `az` prints some keys with other capitals than the REST API; map the ones the auditor reads.
const AZ_KEY_FIXES: &[(&str, &str)] = &[
    ("frontendIpConfigurations", "frontendIPConfigurations"),
    ("frontendIpConfiguration", "frontendIPConfiguration"),
    ("publicIpAddress", "publicIPAddress"),
    ("privateIpAddress", "privateIPAddress"),
    ("privateIpAddressVersion", "privateIPAddressVersion"),
    ("privateIpAllocationMethod", "privateIPAllocationMethod"),
    ("publicIpAllocationMethod", "publicIPAllocationMethod"),
    ("publicIpAddressVersion", "publicIPAddressVersion"),
    ("publicIpPrefix", "publicIPPrefix"),
    ("backendIpConfigurations", "backendIPConfigurations"),
    ("backendIpConfiguration", "backendIPConfiguration"),
];

fn fix_az_keys(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (from, to) in AZ_KEY_FIXES {
                if let Some(x) = o.remove(*from) {
                    o.entry(to.to_string()).or_insert(x);
                }
            }
            for (_, x) in o.iter_mut() {
                fix_az_keys(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(fix_az_keys),
        _ => {}
    }
}

/// The type of an item that declares none: usage rows (by id, or by a `currentValue`), else
/// what the id says.
pub(crate) fn derive_type(id: &str, has_current_value: bool) -> Result<String, String> {
    let l = id.to_ascii_lowercase();
    let parsed = ResourceId::parse(id);
    if l.contains("/locations/") && l.contains("/usages/") || has_current_value {
        Ok(USAGE_TYPE.to_string())
    } else if let Some(t) = parsed.as_ref().and_then(ResourceId::full_type) {
        Ok(t)
    } else if parsed.as_ref().is_some_and(|p| p.resource_group.is_some()) {
        Ok("Microsoft.Resources/resourceGroups".to_string())
    } else {
        Err(format!("no `type`, and none can be derived from id {id}"))
    }
}

/// Returns `(id, type, normalised value)`: the one place an ARM item gets its type (declared,
/// or derived from its id; usage rows have none) and `az`'s flattened shape is nested. Used by
/// the loader and by azaudit's live collector, so both see the same resources.
pub fn normalise_arm(item: Value) -> Result<(String, String, Value), String> {
    let Value::Object(mut o) = item else {
        return Err("not a JSON object".into());
    };
    let id = match o.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => return Err("no `id`".into()),
    };
    let type_ = match o.get("type").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None => derive_type(&id, o.contains_key("currentValue"))?,
    };
    if type_ != USAGE_TYPE && !o.contains_key("properties") {
        let extra: Vec<String> = o
            .keys()
            .filter(|k| !ENVELOPE.contains(&k.as_str()))
            .cloned()
            .collect();
        if !extra.is_empty() {
            let mut props = Map::new();
            for k in extra {
                if let Some(v) = o.remove(&k) {
                    props.insert(k, v);
                }
            }
            let mut props = Value::Object(props);
            fix_az_keys(&mut props);
            o.insert("properties".into(), props);
        }
    }
    Ok((id, type_, Value::Object(o)))
}

fn expand_k8s(v: Value, list_kind: Option<&str>, out: &mut Vec<Value>) {
    let Value::Object(mut o) = v else { return };
    let kind = o.get("kind").and_then(Value::as_str).map(str::to_string);
    if let Some(Value::Array(items)) = o.remove("items") {
        let item_kind = kind
            .as_deref()
            .and_then(|k| k.strip_suffix("List"))
            .filter(|k| !k.is_empty())
            .map(str::to_string);
        for it in items {
            expand_k8s(it, item_kind.as_deref(), out);
        }
        return;
    }
    match kind {
        Some(_) => out.push(Value::Object(o)),
        None => {
            if let Some(k) = list_kind {
                o.insert("kind".into(), Value::String(k.to_string()));
                out.push(Value::Object(o));
            }
        }
    }
}

impl World {
    /// Writes the world as a directory: ARM resources grouped by their `source` file as list
    /// pages, each cluster's objects as one `List`, its cloud config, and `world.json`. Every
    /// file is written atomically. The caller redacts secrets before (see azaudit's collector).
    pub fn write(&self, root: &Path) -> std::io::Result<()> {
        let mut files: BTreeMap<PathBuf, Vec<&ArmResource>> = BTreeMap::new();
        for r in self.resources.values() {
            let src = if r.source.as_os_str().is_empty() || !r.source.starts_with("arm") {
                PathBuf::from("arm/resources.json")
            } else {
                r.source.clone()
            };
            files.entry(src).or_default().push(r);
        }
        for (path, items) in files {
            // Parsed one file at a time, so that the file is pretty-printed like the rest.
            let items: Vec<Value> = items.iter().map(|r| r.value()).collect();
            write_json_atomic(&root.join(path), &serde_json::json!({ "value": items }))?;
        }
        for (name, c) in &self.clusters {
            let items: Vec<&Value> = c.objects.iter().collect();
            write_json_atomic(
                &root.join("k8s").join(name).join("objects.json"),
                &serde_json::json!({"kind": "List", "apiVersion": "v1", "items": items}),
            )?;
            if let Some((path, text)) = &c.cloud_config {
                write_atomic(&root.join(path), text.as_bytes())?;
            }
        }
        write_json_atomic(&root.join("world.json"), &self.meta)
    }
}

/// Writes a file atomically: a temporary file in the same directory, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Writes pretty JSON atomically, with a trailing newline.
pub fn write_json_atomic(path: &Path, v: &impl Serialize) -> std::io::Result<()> {
    let mut s = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
    s.push(b'\n');
    write_atomic(path, &s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(p: &str, v: Value) -> (PathBuf, Vec<u8>) {
        (PathBuf::from(p), serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn loads_objects_pages_arrays_and_lists() {
        let lb = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/kubernetes";
        let w = World::from_files(vec![
            f(
                "arm/a.json",
                json!({"id": lb, "type": "Microsoft.Network/loadBalancers", "properties": {}}),
            ),
            f(
                "arm/b/page.json",
                json!({"value": [{"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p", "type": "Microsoft.Network/publicIPAddresses"}], "nextLink": "https://x"}),
            ),
            f(
                "arm/c.json",
                json!([{"id": "/subscriptions/s2/providers/Microsoft.Network/locations/westus/usages/VirtualNetworks", "currentValue": 8.0, "limit": 50}]),
            ),
            f(
                "k8s/c1/svc.json",
                json!({"kind": "ServiceList", "items": [{"metadata": {"name": "x"}}]}),
            ),
            f("k8s/c1/azure.json", json!({"cloud": "AzurePublicCloud"})),
            (PathBuf::from("arm/bad.json"), b"{not json".to_vec()),
        ]);
        assert_eq!(w.resources.len(), 3);
        assert!(w.get(&lb.to_uppercase()).is_some());
        assert_eq!(w.of_type(USAGE_TYPE).count(), 1);
        assert_eq!(w.subscription_ids(), vec!["s1".to_string(), "s2".to_string()]);
        let c = &w.clusters["c1"];
        assert_eq!(c.of_kind("Service").count(), 1);
        assert!(c.cloud_config.is_some());
        assert!(w.is_incomplete());
        assert_eq!(w.problems.len(), 1);
        assert!(w.problems[0].reason.contains("not valid JSON"));
    }

    #[test]
    fn last_file_wins_and_is_reported() {
        let id = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p";
        let w = World::from_files(vec![
            f(
                "arm/z.json",
                json!({"id": id, "type": "Microsoft.Network/publicIPAddresses", "properties": {"ipAddress": "2.2.2.2"}}),
            ),
            f(
                "arm/a.json",
                json!({"id": id.to_lowercase(), "type": "Microsoft.Network/publicIPAddresses", "properties": {"ipAddress": "1.1.1.1"}}),
            ),
        ]);
        assert_eq!(w.resources.len(), 1);
        let r = w.get(id).unwrap();
        assert_eq!(r.value()["properties"]["ipAddress"], "2.2.2.2");
        assert!(!w.is_incomplete());
        assert_eq!(w.problems.len(), 1);
    }

    #[test]
    fn az_flattened_shape_is_nested() {
        let w = World::from_files(vec![f(
            "arm/lb.json",
            json!([{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/k", "type": "Microsoft.Network/loadBalancers",
                    "name": "k", "resourceGroup": "rg", "frontendIpConfigurations": [{"name": "f", "publicIpAddress": {"id": "x"}}], "provisioningState": "Succeeded"}]),
        )]);
        let lb = w.resources.values().next().unwrap();
        assert_eq!(
            lb.value()["properties"]["frontendIPConfigurations"][0]["publicIPAddress"]["id"],
            "x"
        );
        assert_eq!(lb.value()["properties"]["provisioningState"], "Succeeded");
    }

    #[test]
    fn write_then_load_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let mut w = World::from_files(vec![
            f(
                "arm/s/lb.json",
                json!({"value": [{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/k", "type": "Microsoft.Network/loadBalancers", "properties": {}}]}),
            ),
            f(
                "k8s/c1/svc.json",
                json!({"kind": "ServiceList", "items": [{"metadata": {"name": "x"}}]}),
            ),
            f("k8s/c1/azure.json", json!({"cloud": "AzurePublicCloud"})),
        ]);
        w.meta.tenant_id = Some("t".into());
        w.write(d.path()).unwrap();
        let back = World::load(d.path()).unwrap();
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert_eq!(
            back.resources.keys().collect::<Vec<_>>(),
            w.resources.keys().collect::<Vec<_>>()
        );
        assert_eq!(back.clusters["c1"].objects, w.clusters["c1"].objects);
        assert_eq!(back.clusters["c1"].cloud_config, w.clusters["c1"].cloud_config);
        assert_eq!(back.meta, w.meta);
    }

    #[test]
    fn load_from_disk_and_write_atomic() {
        let d = tempfile::tempdir().unwrap();
        write_json_atomic(&d.path().join("world.json"), &json!({"tenant_id": "t"})).unwrap();
        write_json_atomic(
            &d.path().join("arm/x/rg.json"),
            &json!({"id": "/subscriptions/s/resourceGroups/rg", "type": "Microsoft.Resources/resourceGroups", "location": "westus"}),
        )
        .unwrap();
        let w = World::load(d.path()).unwrap();
        assert_eq!(w.meta.tenant_id.as_deref(), Some("t"));
        assert_eq!(w.resources.len(), 1);
        assert!(World::load(&d.path().join("missing")).is_err());
    }
}
