//! Managed identity endpoints, over plain HTTP as the real ones are:
//! - IMDS: `GET /metadata/identity/oauth2/token?api-version=..&resource=..` with `Metadata: true`,
//!   user-assigned identity by `client_id`, `object_id` or `msi_res_id`;
//! - App Service / Functions: `GET /msi/token?api-version=2019-08-01&resource=..` with
//!   `X-IDENTITY-HEADER`, user-assigned identity by `client_id`, `object_id` (or its older name
//!   `principal_id`) or `mi_res_id`.
//!
//! Sources: MSAL Go `apps/managedidentity` (domain.md §7.2), the App Service "REST endpoint
//! reference" (https://learn.microsoft.com/azure/app-service/overview-managed-identity) and
//! the IMDS token doc (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token).
//! Response numbers are strings, as both services send them. This module must only issue
//! tokens for the mock's managed identities, never for an application principal.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::principals::random_guid;
use crate::state::{MockState, Principal, PrincipalKind};

pub fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/metadata/identity/oauth2/token", get(imds))
        .route("/msi/token", get(app_service))
        .with_state(state)
}

fn imds_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// App Service's error body: `{"statusCode":n,"message":"...","correlationId":"..."}`.
fn app_service_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "statusCode": status.as_u16(),
            "message": message,
            "correlationId": random_guid(),
        })),
    )
        .into_response()
}

/// The managed identity a request names: system-assigned when no id is given.
fn select_identity<'a>(
    state: &'a MockState,
    q: &HashMap<String, String>,
    res_id_param: &str,
    object_params: &[&str],
) -> Option<&'a Principal> {
    let is_mi = |p: &&Principal| p.kind != PrincipalKind::ServicePrincipal;
    if let Some(c) = q.get("client_id").filter(|v| !v.is_empty()) {
        return state.principal_by_client_id(c).filter(is_mi);
    }
    if let Some(o) = object_params
        .iter()
        .find_map(|k| q.get(*k).filter(|v| !v.is_empty()))
    {
        return state.principal_by_object_id(o).filter(is_mi);
    }
    if let Some(r) = q.get(res_id_param).filter(|v| !v.is_empty()) {
        // ARM resource ids compare case-insensitively.
        return state.principals.iter().find(|p| {
            matches!(&p.kind, PrincipalKind::UserAssigned { resource_id } if resource_id.eq_ignore_ascii_case(r.trim_end_matches('/')))
        });
    }
    state
        .principals
        .iter()
        .find(|p| p.kind == PrincipalKind::SystemAssigned)
}

fn unknown_resource(state: &MockState, resource: &str) -> String {
    format!(
        "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
        state.tenant_id
    )
}

async fn imds(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    state.stats.lock().expect("stats lock").msi_requests += 1;
    // IMDS refuses requests without `Metadata: true`, a guard against SSRF.
    let metadata = headers
        .get("metadata")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !metadata {
        return imds_error("invalid_request", "Required metadata header not specified");
    }
    if q.get("api-version").is_none_or(|v| v.is_empty()) {
        return imds_error(
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let Some(resource) = q.get("resource").filter(|v| !v.is_empty()) else {
        return imds_error("invalid_request", "Required audience parameter not specified");
    };
    let Some(identity) = select_identity(&state, &q, "msi_res_id", &["object_id"]) else {
        return imds_error("invalid_request", "Identity not found");
    };
    if !super::known_audience(&state, resource) {
        return imds_error("invalid_resource", &unknown_resource(&state, resource));
    }
    let (token, lifetime, now) = super::issue_access_token(&state, identity, resource, "mi");
    let body = json!({
        "access_token": token,
        "client_id": identity.client_id,
        "expires_in": lifetime.to_string(),
        "expires_on": (now + lifetime as i64).to_string(),
        "ext_expires_in": lifetime.to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn app_service(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    state.stats.lock().expect("stats lock").msi_requests += 1;
    let sent = headers.get("x-identity-header").and_then(|v| v.to_str().ok());
    match sent {
        None => {
            return app_service_error(
                StatusCode::BAD_REQUEST,
                "The X-IDENTITY-HEADER header is missing.",
            );
        }
        // An empty configured header (a hand-built state) matches nothing.
        Some(h) if state.identity.identity_header.is_empty() || h != state.identity.identity_header => {
            return app_service_error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: the X-IDENTITY-HEADER value is not valid.",
            );
        }
        Some(_) => {}
    }
    if q.get("api-version").is_none_or(|v| v.is_empty()) {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "The api-version query parameter is missing.",
        );
    }
    let Some(resource) = q.get("resource").filter(|v| !v.is_empty()) else {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "The resource query parameter is missing.",
        );
    };
    // 2019-08-01 names the resource-id parameter `mi_res_id` (not IMDS's `msi_res_id`) and the
    // object id `principal_id` in older docs, `object_id` in newer ones.
    let Some(identity) = select_identity(&state, &q, "mi_res_id", &["object_id", "principal_id"]) else {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "Unable to load the proper Managed Identity.",
        );
    };
    if !super::known_audience(&state, resource) {
        return app_service_error(StatusCode::BAD_REQUEST, &unknown_resource(&state, resource));
    }
    let (token, lifetime, now) = super::issue_access_token(&state, identity, resource, "mi");
    let body = json!({
        "access_token": token,
        "expires_on": (now + lifetime as i64).to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": identity.client_id,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}
