//! The one place that knows both the clients and the world format: live collection.
//!
//! Collection produces an in-memory [`World`] — the same raw ARM and Kubernetes JSON a snapshot
//! holds — and the audit converts it with `snapshot::inventory_from_world`. Live audits, snapshots
//! and offline audits therefore share every line of conversion code.
//!
//! Call plan (ARCHITECTURE.md, "Call plan"): Kubernetes first (nodes name the subscriptions and
//! scale sets), then one subscription-scope list per resource type per subscription, then VMSS
//! instances only for scale sets that nodes use, then usages per (subscription, location) that
//! holds resources. No per-resource GETs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use async_trait::async_trait;
use azaudit_world::{
    ArmResource, ClusterMeta, ClusterObjects, ResourceId, SubscriptionMeta, World, WorldMeta, id_key,
};
use futures::future::join_all;
use serde_json::Value;

use crate::conventions::{DEFAULT_CLUSTER_NAME, ProviderId};
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
}

#[derive(Debug, Default, Clone)]
pub struct RawList {
    pub items: Vec<Value>,
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

fn add_resources(world: &mut World, items: Vec<Value>, source: &str) {
    for item in items {
        let Some(id) = item.get("id").and_then(Value::as_str).map(str::to_string) else {
            continue;
        };
        let type_ = item
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                if item.get("currentValue").is_some() {
                    Some(azaudit_world::USAGE_TYPE.to_string())
                } else {
                    ResourceId::parse(&id).and_then(|p| p.full_type())
                }
            })
            .unwrap_or_default();
        world.resources.insert(
            id_key(&id),
            ArmResource {
                id,
                type_,
                value: item,
                source: PathBuf::from(source),
            },
        );
    }
}

/// Runs lists concurrently; `reqs` are (subscription, path).
async fn list_many(arm: &dyn ArmSource, reqs: &[(String, String)]) -> Vec<RawList> {
    join_all(reqs.iter().map(|(s, p)| arm.list(Some(s), p))).await
}

fn gap_value(g: Gap) -> Value {
    serde_json::to_value(g).unwrap_or(Value::Null)
}

/// Collects everything an audit needs. Never fails as a whole: failures become gaps.
pub async fn collect(arm: &dyn ArmSource, clusters: Vec<ClusterListing>, opts: &CollectOptions) -> World {
    let mut world = World {
        meta: WorldMeta {
            tenant_id: opts.tenant_id.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut gaps: Vec<Gap> = Vec::new();

    // Kubernetes side and cluster mapping.
    let mut wanted_scale_sets = BTreeSet::new();
    let mut subscriptions: BTreeSet<String> = opts
        .subscriptions
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let explicit_subscriptions = !subscriptions.is_empty();
    for c in clusters {
        let hint = opts
            .clusters
            .iter()
            .find(|h| h.context == c.name)
            .cloned()
            .unwrap_or_default();
        let cc: Option<Value> = c
            .cloud_config
            .as_ref()
            .and_then(|s| serde_json::from_str(&s.text).ok());
        let (node_sub, node_rg) = infer_from_nodes(&c.objects);
        let sub = hint
            .subscription_id
            .clone()
            .or_else(|| cc.as_ref().and_then(|v| str_at(v, &["subscriptionId"])))
            .or(node_sub);
        let rg = hint
            .resource_group
            .clone()
            .or_else(|| cc.as_ref().and_then(|v| str_at(v, &["resourceGroup"])))
            .or(node_rg);
        if let Some(s) = &sub
            && !explicit_subscriptions
        {
            subscriptions.insert(s.to_ascii_lowercase());
        }
        wanted_scale_sets.extend(node_scale_sets(&c.objects));
        for (kind, cause) in &c.failures {
            gaps.push(Gap {
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
        world.meta.clusters.push(ClusterMeta {
            name: c.name.clone(),
            cluster_name_tag: Some(
                hint.cluster_name_tag
                    .clone()
                    .unwrap_or_else(|| DEFAULT_CLUSTER_NAME.to_string()),
            ),
            subscription_id: sub,
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
        world.clusters.insert(
            c.name.clone(),
            ClusterObjects {
                name: c.name.clone(),
                objects: c.objects,
                cloud_config,
            },
        );
    }

    // Subscriptions: given, named by clusters, or every one the principal can see.
    if subscriptions.is_empty() {
        let r = arm
            .list(None, &format!("/subscriptions?api-version={SUBSCRIPTIONS_API}"))
            .await;
        if let Some(e) = r.error {
            gaps.push(Gap {
                scope: GapScope::Other {
                    what: "subscription discovery".into(),
                },
                cause: e,
            });
        }
        for s in r.items {
            if let Some(id) = str_at(&s, &["subscriptionId"]) {
                world.meta.subscriptions.push(SubscriptionMeta {
                    display_name: str_at(&s, &["displayName"]),
                    id: id.clone(),
                });
                subscriptions.insert(id.to_ascii_lowercase());
            }
        }
    } else {
        for s in &subscriptions {
            world.meta.subscriptions.push(SubscriptionMeta {
                id: s.clone(),
                display_name: None,
            });
        }
    }

    // One subscription-scope list per type per subscription, all concurrently (the ARM client
    // bounds concurrency and rate).
    let jobs: Vec<(String, ArmKind)> = subscriptions
        .iter()
        .flat_map(|s| ArmKind::LISTED.into_iter().map(move |k| (s.clone(), k)))
        .collect();
    let reqs: Vec<(String, String)> = jobs.iter().map(|(s, k)| (s.clone(), list_path(s, *k))).collect();
    let results = list_many(arm, &reqs).await;
    for ((sub, kind), r) in jobs.into_iter().zip(results) {
        if let Some(e) = r.error {
            gaps.push(Gap {
                scope: GapScope::Arm {
                    subscription: sub.clone(),
                    kind,
                    detail: None,
                },
                cause: e,
            });
        }
        add_resources(
            &mut world,
            r.items,
            &format!("arm/{sub}/{}.json", kind.arm_type().replace('/', "_")),
        );
    }

    // VMSS instances, only for scale sets that nodes use and that exist.
    let scale_sets: Vec<(String, String)> = world
        .resources
        .values()
        .filter(|r| {
            r.type_is(ArmKind::VirtualMachineScaleSets.arm_type())
                && wanted_scale_sets.contains(&id_key(&r.id))
        })
        .filter_map(|r| Some((r.subscription()?, r.id.clone())))
        .collect();
    let reqs: Vec<(String, String)> = scale_sets
        .iter()
        .map(|(s, id)| {
            (
                s.clone(),
                format!("{id}/virtualMachines?api-version={COMPUTE_API}"),
            )
        })
        .collect();
    let results = list_many(arm, &reqs).await;
    for ((sub, id), r) in scale_sets.into_iter().zip(results) {
        if let Some(e) = r.error {
            gaps.push(Gap {
                scope: GapScope::Arm {
                    subscription: sub.clone(),
                    kind: ArmKind::VmssVirtualMachines,
                    detail: Some(id.clone()),
                },
                cause: e,
            });
        }
        add_resources(&mut world, r.items, &format!("arm/{sub}/vmss-instances.json"));
    }

    // Network usages per (subscription, location) holding resources.
    let locations: BTreeSet<(String, String)> = world
        .resources
        .values()
        .filter_map(|r| {
            Some((
                r.subscription()?.to_ascii_lowercase(),
                r.location()?.to_ascii_lowercase().replace(' ', ""),
            ))
        })
        .collect();
    let reqs: Vec<(String, String)> = locations
        .iter()
        .map(|(s, l)| {
            (s.clone(), format!("/subscriptions/{s}/providers/Microsoft.Network/locations/{l}/usages?api-version={NETWORK_API}"))
        })
        .collect();
    let results = list_many(arm, &reqs).await;
    for ((sub, loc), r) in locations.into_iter().zip(results) {
        if let Some(e) = r.error {
            gaps.push(Gap {
                scope: GapScope::Arm {
                    subscription: sub.clone(),
                    kind: ArmKind::Usages,
                    detail: Some(loc.clone()),
                },
                cause: e,
            });
        }
        // Rows whose id lacks the scope get a synthetic one, so they can be told apart.
        let items = r
            .items
            .into_iter()
            .map(|mut v| {
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
                v
            })
            .collect();
        add_resources(&mut world, items, &format!("arm/{sub}/usages-{loc}.json"));
    }

    gaps.sort();
    world.meta.gaps = gaps.into_iter().map(gap_value).collect();
    world
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[tokio::test]
    async fn call_plan_and_gaps() {
        let sub = "s1";
        let ss = "/subscriptions/s1/resourceGroups/MC_rg/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np";
        let mut lists = BTreeMap::new();
        lists.insert(
            "/subscriptions/s1/providers/microsoft.compute/virtualmachinescalesets".to_string(),
            RawList { items: vec![json!({"id": ss, "type": "Microsoft.Compute/virtualMachineScaleSets", "location": "westeurope"})], error: None },
        );
        lists.insert(
            "/subscriptions/s1/providers/microsoft.network/loadbalancers".to_string(),
            RawList {
                items: vec![],
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

    #[test]
    fn redacts_secrets() {
        let r = redact_cloud_config(
            r#"{"aadClientSecret": "hunter2", "AADClientCertPassword": "pw", "tenantId": "t"}"#,
        );
        assert!(!r.contains("hunter2") && !r.contains("\"pw\""));
        assert!(r.contains("\"t\""));
        assert!(!redact_cloud_config("{broken hunter2").contains("hunter2"));
    }
}
