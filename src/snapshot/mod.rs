//! The world directory as azaudit's offline input and snapshot output.
//!
//! Reading: a [`World`] (from disk, or the embedded demo) becomes an [`Inventory`] through the
//! same [`InventoryBuilder`] that live collection uses. Writing (`azaudit snapshot`) lives in
//! `write.rs` once live collection exists.

use azaudit_world::World;
use serde_json::Value;

use crate::inventory::convert::InventoryBuilder;
use crate::inventory::json::str_at;
use crate::inventory::{ArmKind, CloudConfigSource, Cluster, Gap, GapScope, Inventory, K8sKind};

/// The `cloud-config` key of a `kube-system/azure-cloud-provider` Secret object, decoded.
fn cloud_config_secret(o: &azaudit_world::ClusterObjects) -> Option<String> {
    use base64::Engine;
    let secret = o.of_kind("Secret").find(|s| {
        str_at(s, &["metadata", "name"]).as_deref() == Some("azure-cloud-provider")
            && str_at(s, &["metadata", "namespace"]).as_deref() == Some("kube-system")
    })?;
    if let Some(text) = str_at(secret, &["stringData", "cloud-config"]) {
        return Some(text);
    }
    let b64 = str_at(secret, &["data", "cloud-config"])?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Builds the inventory of a world. Load problems that lost data become gaps, as do the gaps a
/// snapshot recorded in `world.json`.
pub fn inventory_from_world(world: &World) -> Inventory {
    inventory_from_collection(world, None)
}

/// [`inventory_from_world`], with the world's ARM resources already converted (by the live
/// collector, while it waited for pages) when `arm_converted` is given: the same conversion,
/// done earlier.
pub fn inventory_from_collection(world: &World, arm_converted: Option<InventoryBuilder>) -> Inventory {
    let mut b = match arm_converted {
        Some(b) => b,
        None => {
            let mut b = InventoryBuilder::new();
            for r in world.resources.values() {
                if let Some(kind) = ArmKind::from_arm_type(&r.type_) {
                    b.add_arm(kind, &r.value(), None);
                }
            }
            b
        }
    };
    for s in world.subscription_ids() {
        b.add_subscription(&s);
    }
    let mut names: Vec<String> = world.clusters.keys().cloned().collect();
    for m in &world.meta.clusters {
        if !names.contains(&m.name) {
            names.push(m.name.clone());
        }
    }
    for name in names {
        let meta = world.meta.clusters.iter().find(|m| m.name == name);
        let objects = world.clusters.get(&name);
        // `k8s/<cluster>/azure.json` is the cluster's own cloud config, which a live audit reads
        // from the `kube-system/azure-cloud-provider` Secret: both get the Secret's reference, so
        // live and offline audits of the same estate name it the same way.
        let secret_ref = format!("k8s://{name}/kube-system/secrets/azure-cloud-provider");
        let cloud_config = objects
            .and_then(|o| {
                o.cloud_config
                    .as_ref()
                    .map(|(_, text)| text.clone())
                    .or_else(|| cloud_config_secret(o))
            })
            .map(|text| {
                match meta
                    .and_then(|m| m.cloud_config.as_deref())
                    .filter(|r| r.starts_with("file://"))
                {
                    // Read from a file on the auditing machine: keep its path and mode.
                    Some(file) => CloudConfigSource {
                        reference: file.to_string(),
                        text,
                        file_mode: meta.and_then(|m| m.cloud_config_mode),
                    },
                    None => CloudConfigSource {
                        reference: secret_ref.clone(),
                        text,
                        file_mode: None,
                    },
                }
            });
        let cc: Option<Value> = cloud_config
            .as_ref()
            .and_then(|c| serde_json::from_str(&c.text).ok());
        let mut cluster = Cluster {
            name: name.clone(),
            cluster_name_tag: meta
                .and_then(|m| m.cluster_name_tag.clone())
                .unwrap_or_else(|| crate::conventions::DEFAULT_CLUSTER_NAME.to_string()),
            subscription_id: meta
                .and_then(|m| m.subscription_id.clone())
                .or_else(|| cc.as_ref().and_then(|c| str_at(c, &["subscriptionId"]))),
            resource_group: meta
                .and_then(|m| m.resource_group.clone())
                .or_else(|| cc.as_ref().and_then(|c| str_at(c, &["resourceGroup"]))),
            cloud_config,
            services: Vec::new(),
            nodes: Vec::new(),
            endpoint_slices: Vec::new(),
            pods: Vec::new(),
            incomplete: Vec::new(),
        };
        match objects {
            Some(o) => b.fill_cluster(&mut cluster, &o.objects),
            None => {
                for kind in [
                    K8sKind::Services,
                    K8sKind::Nodes,
                    K8sKind::EndpointSlices,
                    K8sKind::Pods,
                ] {
                    cluster.incomplete.push(kind);
                    b.add_gap(Gap {
                        scope: GapScope::Kubernetes {
                            cluster: name.clone(),
                            kind,
                        },
                        cause: "world.json names this cluster but the world has no k8s/ folder for it".into(),
                    });
                }
            }
        }
        if cluster.subscription_id.is_none() {
            cluster.subscription_id = cluster.nodes.iter().find_map(|n| {
                n.provider_id
                    .as_deref()
                    .map(crate::conventions::ProviderId::parse)
                    .and_then(|p| p.subscription().map(str::to_string))
            });
        }
        b.add_cluster(cluster);
    }
    for p in world.problems.iter().filter(|p| p.lost_data) {
        b.add_gap(Gap {
            scope: GapScope::Other {
                what: format!("snapshot file {}", p.path.display()),
            },
            cause: p.reason.clone(),
        });
    }
    for g in &world.meta.gaps {
        let gap = serde_json::from_value::<Gap>(g.clone()).unwrap_or_else(|_| Gap {
            scope: GapScope::Other {
                what: "recorded in world.json".into(),
            },
            cause: g.to_string(),
        });
        b.add_gap(gap);
    }
    let mut inv = b.finish();
    // A recorded Kubernetes gap marks that cluster's listing incomplete.
    let k8s_gaps: Vec<(String, K8sKind)> = inv
        .gaps
        .iter()
        .filter_map(|g| match &g.scope {
            GapScope::Kubernetes { cluster, kind } => Some((cluster.clone(), *kind)),
            _ => None,
        })
        .collect();
    for (cluster, kind) in k8s_gaps {
        if let Some(c) = inv.clusters.iter_mut().find(|c| c.name == cluster)
            && !c.incomplete.contains(&kind)
        {
            c.incomplete.push(kind);
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// `shared/fixtures/world` beside the checkout (or beside a parent, for git worktrees).
    fn fixtures_world() -> Option<PathBuf> {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|a| a.join("shared/fixtures/world"))
            .find(|p| p.is_dir())
    }

    /// Every real response in shared/fixtures converts; nothing is lost but what lacks an id.
    #[test]
    fn shared_fixture_world_converts() {
        let Some(dir) = fixtures_world() else {
            panic!(
                "shared/fixtures/world not found beside the checkout: the fixtures are part of the test input"
            );
        };
        let world = World::load(&dir).unwrap();
        assert!(
            world.problems.iter().all(|p| !p.lost_data),
            "{:?}",
            world.problems
        );
        let inv = inventory_from_world(&world);
        assert!(!inv.load_balancers.is_empty());
        assert!(!inv.public_ips.is_empty());
        assert!(!inv.nsgs.is_empty());
        assert!(!inv.nics.is_empty());
        assert!(!inv.vms.is_empty());
        assert!(!inv.vmss.is_empty());
        assert!(!inv.vmss_vms.is_empty());
        assert!(!inv.usages.is_empty());
        assert!(
            inv.usages.iter().any(|u| u.current == 8.0),
            "UsageList floats read as numbers"
        );
        assert_eq!(inv.notes, Vec::<String>::new(), "nothing skipped");
        let sample = inv.clusters.iter().find(|c| c.name == "sample").unwrap();
        assert!(!sample.services.is_empty());
        assert!(!sample.nodes.is_empty());
    }
}
