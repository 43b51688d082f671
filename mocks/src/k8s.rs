//! Kubernetes API servers (placeholder until implemented).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::Router;

use crate::state::MockState;

pub fn new_token() -> String {
    String::new()
}

pub fn router(_state: Arc<MockState>, _cluster: String) -> Router {
    Router::new()
}

pub fn write_kubeconfig(
    _path: &Path,
    _servers: &BTreeMap<String, String>,
    _tokens: &BTreeMap<String, String>,
    _ca_pem: &str,
) -> anyhow::Result<()> {
    Ok(())
}
