//! The estate `cleanup apply` works on: ARM through the run's [`ArmClient`] (fresh reads that
//! bypass the cache, writes on their own limiter) and the plan's clusters through kube-rs.
//!
//! Must not read ARM from the cache (a re-check on cached data would re-check nothing) or reach
//! any cluster the plan does not name.

use std::sync::Mutex;

use async_trait::async_trait;
use azaudit_world::World;
use futures::future::join_all;
use serde_json::Value;

use super::engine::Estate;
use crate::arm::{ArmClient, ArmError, WriteMethod, WriteOutcome};
use crate::collect::{ClusterListing, NETWORK_API};
use crate::kube::Target;

pub struct LiveEstate {
    pub arm: ArmClient,
    /// The plan's clusters.
    pub targets: Vec<Target>,
    /// What the run's live collection found (handed to the engine once).
    pub collected: Mutex<Option<World>>,
}

fn path(id: &str) -> String {
    format!("{id}?api-version={NETWORK_API}")
}

#[async_trait]
impl Estate for LiveEstate {
    async fn collect(&self) -> Result<World, String> {
        self.collected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| "the estate was already collected for this run".to_string())
    }

    async fn kubernetes(&self) -> Result<Vec<ClusterListing>, String> {
        let listed = join_all(self.targets.iter().map(crate::kube::list_cluster)).await;
        Ok(self
            .targets
            .iter()
            .zip(listed)
            .enumerate()
            .map(|(order, (t, l))| ClusterListing {
                name: t.name.clone(),
                order,
                objects: l.objects,
                failures: l.failures,
                cloud_config: None,
            })
            .collect())
    }

    async fn get(&self, subscription: &str, id: &str) -> Result<Option<Value>, ArmError> {
        self.arm.get_fresh(Some(subscription), &path(id)).await
    }

    async fn write(
        &self,
        method: WriteMethod,
        subscription: &str,
        id: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Result<WriteOutcome, ArmError> {
        self.arm
            .write(method, subscription, &path(id), body, if_match)
            .await
    }
}
