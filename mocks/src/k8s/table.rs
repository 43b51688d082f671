//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for (its `Accept`
//! header starts with `application/json;as=Table;v=v1;g=meta.k8s.io`) when no `-o` is given.
//!
//! Columns and cell formats follow kube-apiserver's printers (`pkg/printers/internalversion/
//! printers.go`: `printService`, `printNode`, `printPod`, `printEndpointSlice`, `printSecret`) and
//! ages follow `apimachinery/pkg/util/duration.HumanDuration`, so `kubectl get svc -A` against the
//! mock reads like it does against AKS. This module only formats objects it is given; it decides
//! nothing about which objects are served.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Whether an `Accept` header asks for a `Table` (any version kube-apiserver offers).
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let params: Vec<&str> = part.split(';').map(str::trim).collect();
            params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
        })
    })
}

/// How much of each object a row carries (`includeObject`: `None`, `Metadata` (default), `Object`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(v: Option<&str>) -> IncludeObject {
        match v {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// (name, type, priority, description) of each column of a kind.
type Column = (&'static str, &'static str, u8, &'static str);

fn columns(kind: &str) -> &'static [Column] {
    const NAME: Column = (
        "Name",
        "string",
        0,
        "Name must be unique within a namespace. Cannot be updated.",
    );
    const AGE: Column = (
        "Age",
        "string",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    match kind {
        "Service" => &[
            NAME,
            ("Type", "string", 0, "The type of the service."),
            ("Cluster-IP", "string", 0, "The cluster IP of the service."),
            ("External-IP", "string", 0, "The external IPs of the service."),
            ("Port(s)", "string", 0, "The ports of the service."),
            AGE,
            ("Selector", "string", 1, "The selector of the service."),
        ],
        "Node" => &[
            NAME,
            ("Status", "string", 0, "The status of the node."),
            ("Roles", "string", 0, "The roles of the node."),
            AGE,
            ("Version", "string", 0, "Kubelet Version reported by the node."),
            ("Internal-IP", "string", 1, "List of internal IPs."),
            ("External-IP", "string", 1, "List of external IPs."),
            ("OS-Image", "string", 1, "OS Image reported by the node."),
            (
                "Kernel-Version",
                "string",
                1,
                "Kernel Version reported by the node.",
            ),
            (
                "Container-Runtime",
                "string",
                1,
                "Container Runtime Version reported by the node.",
            ),
        ],
        "Pod" => &[
            NAME,
            ("Ready", "string", 0, "The aggregate readiness state of this pod."),
            (
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            (
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted.",
            ),
            AGE,
            ("IP", "string", 1, "IP address allocated to the pod."),
            ("Node", "string", 1, "Name of the Node this pod is scheduled on."),
            (
                "Nominated Node",
                "string",
                1,
                "Name of the node this pod is nominated to.",
            ),
            ("Readiness Gates", "string", 1, "Readiness gates of the pod."),
        ],
        "EndpointSlice" => &[
            NAME,
            (
                "AddressType",
                "string",
                0,
                "The type of address carried by this EndpointSlice.",
            ),
            ("Ports", "string", 0, "Ports of this EndpointSlice."),
            ("Endpoints", "string", 0, "Endpoints of this EndpointSlice."),
            AGE,
        ],
        "Secret" => &[
            NAME,
            ("Type", "string", 0, "The type of the secret."),
            ("Data", "string", 0, "The number of keys in the secret's data."),
            AGE,
        ],
        _ => &[NAME, AGE],
    }
}

fn s<'a>(o: &'a Value, pointer: &str) -> &'a str {
    o.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn or_none(v: String) -> Value {
    Value::String(if v.is_empty() { "<none>".into() } else { v })
}

fn arr<'a>(o: &'a Value, pointer: &str) -> &'a [Value] {
    o.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn cells(kind: &str, o: &Value, now: OffsetDateTime) -> Vec<Value> {
    let name = Value::String(s(o, "/metadata/name").into());
    let age = Value::String(age(s(o, "/metadata/creationTimestamp"), now));
    match kind {
        "Service" => {
            let typ = s(o, "/spec/type");
            let mut external: Vec<String> = Vec::new();
            if typ == "LoadBalancer" {
                for ing in arr(o, "/status/loadBalancer/ingress") {
                    let ip = s(ing, "/ip");
                    external.push(if ip.is_empty() { s(ing, "/hostname") } else { ip }.to_string());
                }
            }
            external.extend(
                arr(o, "/spec/externalIPs")
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string),
            );
            let external = if typ == "LoadBalancer" && external.is_empty() {
                "<pending>".to_string()
            } else {
                external.join(",")
            };
            let ports: Vec<String> = arr(o, "/spec/ports")
                .iter()
                .map(|p| {
                    let port = p.get("port").map(Value::to_string).unwrap_or_default();
                    let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64).filter(|n| *n != 0) {
                        Some(np) => format!("{port}:{np}/{proto}"),
                        None => format!("{port}/{proto}"),
                    }
                })
                .collect();
            vec![
                name,
                Value::String(typ.into()),
                or_none(s(o, "/spec/clusterIP").into()),
                or_none(external),
                or_none(ports.join(",")),
                age,
                or_none(label_string(o.pointer("/spec/selector"))),
            ]
        }
        "Node" => {
            let ready = arr(o, "/status/conditions")
                .iter()
                .find(|c| s(c, "/type") == "Ready")
                .map(|c| match s(c, "/status") {
                    "True" => "Ready",
                    "False" => "NotReady",
                    _ => "Unknown",
                })
                .unwrap_or("Unknown");
            let mut status = ready.to_string();
            if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            let mut roles: Vec<String> = o
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.iter()
                        .filter_map(|(k, v)| {
                            if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                                Some(r.to_string())
                            } else if k == "kubernetes.io/role" {
                                v.as_str().map(str::to_string)
                            } else {
                                None
                            }
                        })
                        .filter(|r| !r.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            roles.sort();
            roles.dedup();
            let addr = |t: &str| {
                arr(o, "/status/addresses")
                    .iter()
                    .filter(|a| s(a, "/type") == t)
                    .map(|a| s(a, "/address").to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            vec![
                name,
                Value::String(status),
                or_none(roles.join(",")),
                age,
                Value::String(s(o, "/status/nodeInfo/kubeletVersion").into()),
                or_none(addr("InternalIP")),
                or_none(addr("ExternalIP")),
                Value::String(s(o, "/status/nodeInfo/osImage").into()),
                Value::String(s(o, "/status/nodeInfo/kernelVersion").into()),
                Value::String(s(o, "/status/nodeInfo/containerRuntimeVersion").into()),
            ]
        }
        "Pod" => {
            let statuses = arr(o, "/status/containerStatuses");
            let ready = statuses
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .sum();
            let reason = s(o, "/status/reason");
            let phase = if reason.is_empty() {
                s(o, "/status/phase")
            } else {
                reason
            };
            let gates = arr(o, "/spec/readinessGates").len();
            vec![
                name,
                Value::String(format!("{ready}/{}", arr(o, "/spec/containers").len())),
                Value::String(phase.into()),
                Value::String(restarts.to_string()),
                age,
                or_none(s(o, "/status/podIP").into()),
                or_none(s(o, "/spec/nodeName").into()),
                or_none(s(o, "/status/nominatedNodeName").into()),
                or_none(if gates == 0 {
                    String::new()
                } else {
                    format!("0/{gates}")
                }),
            ]
        }
        "EndpointSlice" => {
            let ports: Vec<String> = arr(o, "/ports")
                .iter()
                .filter_map(|p| p.get("port").map(Value::to_string))
                .collect();
            let addrs: Vec<&str> = arr(o, "/endpoints")
                .iter()
                .flat_map(|e| arr(e, "/addresses"))
                .filter_map(Value::as_str)
                .collect();
            // kube-apiserver shows at most three, then "+ N more..." (`formatEndpointSlice`).
            let endpoints = if addrs.is_empty() {
                "<unset>".to_string()
            } else if addrs.len() > 3 {
                format!("{} + {} more...", addrs[..3].join(","), addrs.len() - 3)
            } else {
                addrs.join(",")
            };
            vec![
                name,
                Value::String(s(o, "/addressType").into()),
                Value::String(if ports.is_empty() {
                    "<unset>".into()
                } else {
                    ports.join(",")
                }),
                Value::String(endpoints),
                age,
            ]
        }
        "Secret" => vec![
            name,
            Value::String(s(o, "/type").into()),
            json!(o.get("data").and_then(Value::as_object).map_or(0, Map::len)),
            age,
        ],
        _ => vec![name, age],
    }
}

/// `k=v` pairs sorted by key, comma-separated (`labels.FormatLabels`).
fn label_string(map: Option<&Value>) -> String {
    let Some(m) = map.and_then(Value::as_object) else {
        return String::new();
    };
    let mut pairs: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// Age of an RFC 3339 creation time as `HumanDuration` prints it (`5d`, `3h12m`, `2y40d`).
fn age(created: &str, now: OffsetDateTime) -> String {
    match OffsetDateTime::parse(created, &Rfc3339) {
        Ok(t) => human_duration((now - t).whole_seconds()),
        Err(_) => "<unknown>".into(),
    }
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`, in whole seconds.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    let (m, h) = (secs / 60, secs / 3600);
    let with = |big: i64, bu: &str, small: i64, su: &str| {
        if small == 0 {
            format!("{big}{bu}")
        } else {
            format!("{big}{bu}{small}{su}")
        }
    };
    if secs < 60 * 2 {
        format!("{secs}s")
    } else if m < 10 {
        with(m, "m", secs % 60, "s")
    } else if m < 60 * 3 {
        format!("{m}m")
    } else if h < 8 {
        with(h, "h", m % 60, "m")
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        with(h / 24, "d", h % 24, "h")
    } else if h < 24 * 365 * 2 {
        format!("{}d", h / 24)
    } else if h < 24 * 365 * 8 {
        let days = h / 24;
        with(days / 365, "y", days % 365, "d")
    } else {
        format!("{}y", h / 24 / 365)
    }
}

/// A `Table` of served objects (each with `kind`/`apiVersion` removed or not, it does not matter),
/// with the list metadata (`resourceVersion`, `continue`, `remainingItemCount`) carried over.
pub fn table(kind: &str, objects: &[Value], list_meta: Value, include: IncludeObject) -> Value {
    let now = OffsetDateTime::now_utc();
    let column_definitions: Vec<Value> = columns(kind)
        .iter()
        .map(|(name, typ, priority, description)| {
            let mut c = json!({"name": name, "type": typ, "format": "", "description": description, "priority": priority});
            if *name == "Name" {
                c["format"] = json!("name");
            }
            c
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(kind, o, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    });
                }
                IncludeObject::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_like_apimachinery() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (59, "59s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (10 * 3600, "10h"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400 + 10 * 86400, "3y10d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn accept_header_detection() {
        assert!(wants_table(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        )));
        assert!(!wants_table(Some("application/json, */*")));
        assert!(!wants_table(None));
    }

    #[test]
    fn service_and_node_cells() {
        let now = OffsetDateTime::parse("2026-01-15T08:30:00Z", &Rfc3339).unwrap();
        let svc = json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-12T08:30:00Z"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.7", "selector": {"b": "2", "a": "1"},
                     "ports": [{"port": 80, "nodePort": 31080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]},
            "status": {"loadBalancer": {}}});
        assert_eq!(
            cells("Service", &svc, now),
            vec![
                json!("web"),
                json!("LoadBalancer"),
                json!("10.0.0.7"),
                json!("<pending>"),
                json!("80:31080/TCP,53/UDP"),
                json!("3d"),
                json!("a=1,b=2")
            ]
        );
        let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "agent"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.31.5"}}});
        let c = cells("Node", &node, now);
        assert_eq!(c[1], json!("Ready,SchedulingDisabled"));
        assert_eq!(c[2], json!("agent,control-plane"));
        assert_eq!(c[3], json!("<unknown>"));
        assert_eq!(c[5], json!("<none>"));
    }
}
