//! Azure Resource Manager (placeholder until implemented).

use std::sync::Arc;

use axum::Router;

use crate::state::MockState;

pub fn router(_state: Arc<MockState>) -> Router {
    Router::new()
}
