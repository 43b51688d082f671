//! Entra ID and managed identity endpoints (placeholder until implemented).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;

use crate::config::MockConfig;
use crate::state::{MockState, Principal};

/// State the token endpoints keep.
#[derive(Default)]
pub struct IdentityState {}

/// Files and values written for clients.
pub struct IdentityFiles {
    pub client_id: String,
    pub client_secret: String,
    pub client_certificate: PathBuf,
    pub identity_header: String,
    pub federated_token_file: PathBuf,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

pub struct IdentitySetup {
    pub principals: Vec<Principal>,
    pub state: IdentityState,
    pub files: IdentityFiles,
}

pub fn setup(config: &MockConfig, _tenant_id: &str, files_dir: &Path) -> anyhow::Result<IdentitySetup> {
    Ok(IdentitySetup {
        principals: config
            .principals
            .iter()
            .map(crate::state::principal_from_config)
            .collect(),
        state: IdentityState::default(),
        files: IdentityFiles {
            client_id: String::new(),
            client_secret: String::new(),
            client_certificate: files_dir.join("client.pem"),
            identity_header: String::new(),
            federated_token_file: files_dir.join("federated-token"),
            extra: Default::default(),
        },
    })
}

pub fn authority_router(_state: Arc<MockState>) -> Router {
    Router::new()
}

pub fn msi_router(_state: Arc<MockState>) -> Router {
    Router::new()
}
