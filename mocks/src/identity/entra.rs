//! Entra ID (the authority host): the client-credentials token endpoint (secret, certificate
//! assertion, federated assertion), the discovery documents MSAL reads, and the mock's own
//! OIDC issuer for federated service-account tokens.
//!
//! Failures are answered in Entra ID's JSON shape with its AADSTS codes, HTTP statuses and
//! message texts (as seen in real responses quoted in Azure SDK and MSAL issue trackers; the
//! codes are listed at https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
//! It must not issue a token for anything but the known ARM audiences, and every URL it puts in
//! a document points back at this mock.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::jwt::{Jwt, SigError, b64_lenient};
use super::principals::{TOKEN_EXCHANGE_AUDIENCE, WORKLOAD_SUBJECT, random_guid};
use crate::state::{MockState, Principal, PrincipalKind};
use crate::tokens::now_unix;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew allowed on assertion `exp`/`nbf`. Entra ID tolerates a few minutes.
const SKEW_SECS: i64 = 300;
const CERT_DOC: &str = "Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .";
const FIC_DOC: &str = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation";

pub fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2))
        .route("/{tenant}/oauth2/token", post(token_v1))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(openid_v2))
        .route("/{tenant}/.well-known/openid-configuration", get(openid_v1))
        .route("/{tenant}/discovery/v2.0/keys", get(tenant_keys))
        .route("/{tenant}/discovery/keys", get(tenant_keys))
        .route("/common/discovery/instance", get(instance_discovery))
        .route(
            "/federated/.well-known/openid-configuration",
            get(federated_openid),
        )
        .route("/federated/openid/v1/jwks", get(federated_jwks))
        .route("/error", get(error_page))
        .with_state(state)
}

/// An Entra ID error: HTTP status, OAuth `error`, AADSTS number and message.
#[derive(Debug)]
pub(crate) struct AadError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
}

impl AadError {
    fn new(status: StatusCode, error: &'static str, code: u32, message: impl Into<String>) -> AadError {
        AadError {
            status,
            error,
            code,
            message: message.into(),
        }
    }

    /// The response body, in the shape Entra ID sends:
    /// `{"error","error_description":"AADSTSn: ... Trace ID: ... Correlation ID: ... Timestamp: ...",
    ///   "error_codes":[n],"timestamp","trace_id","correlation_id","error_uri"}`.
    fn into_response(self, authority: &str, correlation_id: Option<&str>) -> Response {
        let trace_id = random_guid();
        let correlation_id = correlation_id
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .unwrap_or_else(random_guid);
        let timestamp = entra_timestamp(now_unix());
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.code, self.message
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{authority}/error?code={}", self.code),
        });
        (self.status, axum::Json(body)).into_response()
    }
}

fn unknown_tenant(tenant: &str) -> AadError {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

fn missing_parameter(name: &str) -> AadError {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

fn signature_failed(
    reason: &str,
    thumbprint_hex: &str,
    found: Option<(i64, i64)>,
    client_id: &str,
) -> AadError {
    let found = found
        .map(|(start, end)| format!(", Found key 'Start={}, End={}'", key_date(start), key_date(end)))
        .unwrap_or_default();
    AadError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        700027,
        format!(
            "Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key used by client: '{thumbprint_hex}'{found}, Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
        ),
    )
}

fn assertion_time_range(now: i64, nbf: Option<i64>, exp: Option<i64>) -> AadError {
    AadError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        700024,
        format!(
            "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. {CERT_DOC}",
            iso_time(now),
            iso_time(nbf.unwrap_or(0)),
            iso_time(exp.unwrap_or(0)),
        ),
    )
}

/// Entra's `timestamp`: `2024-10-02 22:05:03Z`.
fn entra_timestamp(t: i64) -> String {
    let d = time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    d.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

/// The times in AADSTS700024: `2024-10-02T22:05:03.0000000Z`.
fn iso_time(t: i64) -> String {
    let d = time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    d.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].0000000Z"
    ))
    .unwrap_or_default()
}

/// The key dates in AADSTS700027: `02/07/2021 17:00:39` (US order, as Entra prints them).
fn key_date(t: i64) -> String {
    let d = time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    d.format(time::macros::format_description!(
        "[month]/[day]/[year] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn authority(state: &MockState) -> String {
    state.endpoints.read().expect("endpoints lock").authority.clone()
}

fn tenant_matches(state: &MockState, tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(&state.tenant_id)
}

/// Which token endpoint a request came to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    /// `/oauth2/v2.0/token`: `scope=<resource>/.default`.
    V2,
    /// `/oauth2/token` (ADAL, older SDKs): `resource=<resource>`; numbers in the response are strings.
    V1,
}

async fn token_v2(
    state: State<Arc<MockState>>,
    tenant: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(state, tenant, headers, body, Version::V2)
}

async fn token_v1(
    state: State<Arc<MockState>>,
    tenant: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(state, tenant, headers, body, Version::V1)
}

fn token(
    State(state): State<Arc<MockState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    version: Version,
) -> Response {
    state.stats.lock().expect("stats lock").token_requests += 1;
    // The body is form-encoded; parse it whatever the Content-Type says, as a lenient server
    // would, so that a client bug shows up as a missing parameter rather than a 415.
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    match client_credentials(&state, &tenant, &form, version) {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => {
            state.stats.lock().expect("stats lock").token_failures += 1;
            let correlation = headers.get("client-request-id").and_then(|v| v.to_str().ok());
            e.into_response(&authority(&state), correlation)
        }
    }
}

/// How the client proved who it is.
enum Credential<'a> {
    Secret(&'a str),
    Assertion(&'a str),
}

fn client_credentials(
    state: &MockState,
    tenant: &str,
    form: &HashMap<String, String>,
    version: Version,
) -> Result<Value, AadError> {
    if !tenant_matches(state, tenant) {
        return Err(unknown_tenant(tenant));
    }
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let grant_type = param("grant_type").ok_or_else(|| missing_parameter("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let client_id = param("client_id").ok_or_else(|| missing_parameter("client_id"))?;
    let resource = match version {
        Version::V2 => resource_from_scope(param("scope").ok_or_else(|| missing_parameter("scope"))?)?,
        Version::V1 => param("resource")
            .ok_or_else(|| missing_parameter("resource"))?
            .to_string(),
    };
    // Managed identities are service principals too, but they have no credentials a client can
    // present here: to this endpoint they do not exist as applications.
    let principal = state
        .principal_by_client_id(client_id)
        .filter(|p| p.kind == PrincipalKind::ServicePrincipal)
        .ok_or_else(|| {
            AadError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                    state.tenant_id
                ),
            )
        })?;
    let credential = match (
        param("client_secret"),
        param("client_assertion_type"),
        param("client_assertion"),
    ) {
        (_, Some(JWT_BEARER), Some(a)) => Credential::Assertion(a),
        (Some(s), _, _) => Credential::Secret(s),
        _ => {
            return Err(AadError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
    };
    let idtyp = match credential {
        Credential::Secret(secret) => {
            if principal.client_secret.as_deref() != Some(secret) {
                return Err(AadError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                        principal.client_id
                    ),
                ));
            }
            "app"
        }
        Credential::Assertion(a) => check_assertion(state, tenant, principal, a)?,
    };
    if !super::known_audience(state, &resource) {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                state.tenant_id
            ),
        ));
    }
    let (token, lifetime, now) = super::issue_access_token(state, principal, &resource, idtyp);
    Ok(match version {
        Version::V2 => json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }),
        // The v1 endpoint sends every number as a string.
        Version::V1 => json!({
            "token_type": "Bearer",
            "expires_in": lifetime.to_string(),
            "ext_expires_in": lifetime.to_string(),
            "expires_on": (now + lifetime as i64).to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "access_token": token,
        }),
    })
}

/// The resource of a client-credentials `scope`: exactly one `<resource>/.default` (OpenID
/// scopes aside, which some clients add), as Entra ID requires for this grant.
fn resource_from_scope(scope: &str) -> Result<String, AadError> {
    let scopes: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !matches!(*s, "openid" | "profile" | "offline_access"))
        .collect();
    match scopes.as_slice() {
        [one] if one.len() > "/.default".len() && one.ends_with("/.default") => {
            Ok(one[..one.len() - "/.default".len()].to_string())
        }
        _ => Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )),
    }
}

/// Checks a client assertion; returns the token's `idtyp`. A certificate assertion is issued
/// by the application itself (`iss` = `sub` = client id); anything else is a federated
/// assertion, matched against the application's federated credentials by issuer.
fn check_assertion(
    state: &MockState,
    tenant: &str,
    principal: &Principal,
    assertion: &str,
) -> Result<&'static str, AadError> {
    let jwt = Jwt::parse(assertion).ok_or_else(|| {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        )
    })?;
    if jwt.claim_str("iss") == Some(principal.client_id.as_str()) {
        check_certificate_assertion(state, tenant, principal, &jwt)?;
        Ok("app")
    } else {
        check_federated_assertion(state, principal, &jwt)?;
        Ok("wi")
    }
}

fn check_certificate_assertion(
    state: &MockState,
    tenant: &str,
    principal: &Principal,
    jwt: &Jwt,
) -> Result<(), AadError> {
    let now = now_unix();
    // The thumbprint names the key: `x5t#S256` (SHA-256, current docs) or `x5t` (SHA-1).
    let (sent, registered) = match (jwt.header_str("x5t#S256"), jwt.header_str("x5t")) {
        (Some(t), _) => (
            b64_lenient(t),
            principal.certificate.as_ref().map(|c| &c.x5t_s256),
        ),
        (None, Some(t)) => (b64_lenient(t), principal.certificate.as_ref().map(|c| &c.x5t)),
        (None, None) => (None, None),
    };
    let sent = sent.unwrap_or_default();
    let thumbprint = hex_upper(&sent);
    let cert = match (
        principal.certificate.as_ref(),
        registered.and_then(|r| b64_lenient(r)),
    ) {
        (Some(c), Some(r)) if !sent.is_empty() && r == sent => c,
        _ => {
            return Err(signature_failed(
                "The key was not found.",
                &thumbprint,
                None,
                &principal.client_id,
            ));
        }
    };
    let found = Some((
        state.identity.cert_not_before(&cert.x5t).unwrap_or(0),
        cert.not_after,
    ));
    if cert.not_after < now {
        return Err(signature_failed(
            "The key used is expired.",
            &thumbprint,
            found,
            &principal.client_id,
        ));
    }
    match jwt.verify_rsa(&cert.rsa_public_key_pkcs1) {
        Ok(()) => {}
        Err(SigError::UnsupportedAlg) | Err(SigError::BadSignature) => {
            return Err(signature_failed(
                "Key was found, but use of the key to verify the signature failed.",
                &thumbprint,
                found,
                &principal.client_id,
            ));
        }
    }
    if jwt.claim_str("sub") != Some(principal.client_id.as_str()) {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700021,
            format!(
                "Client assertion application identifier doesn't match 'client_id' parameter. {CERT_DOC}"
            ),
        ));
    }
    // `aud` is the token endpoint (certificate-credentials doc); Entra also takes the v2.0
    // issuer form `<authority>/<tenant>/v2.0`.
    let base = format!("{}/{tenant}", authority(state));
    let accepted = [
        format!("{base}/oauth2/v2.0/token"),
        format!("{base}/oauth2/token"),
        format!("{base}/v2.0"),
    ];
    let aud_ok = jwt.audiences().iter().any(|a| {
        let a = a.trim_end_matches('/');
        accepted.iter().any(|x| x.eq_ignore_ascii_case(a))
    });
    if !aud_ok {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700023,
            format!("Client assertion audience claim does not match Realm issuer. {CERT_DOC}"),
        ));
    }
    check_time(jwt, now)
}

fn check_time(jwt: &Jwt, now: i64) -> Result<(), AadError> {
    let exp = jwt.claim_time("exp");
    let nbf = jwt.claim_time("nbf");
    let expired = exp.is_none_or(|e| e + SKEW_SECS < now);
    let early = nbf.is_some_and(|n| n - SKEW_SECS > now);
    if expired || early {
        return Err(assertion_time_range(now, nbf, exp));
    }
    Ok(())
}

fn check_federated_assertion(state: &MockState, principal: &Principal, jwt: &Jwt) -> Result<(), AadError> {
    let now = now_unix();
    let iss = jwt.claim_str("iss").unwrap_or_default();
    let issuer = state.identity.issuer.as_ref();
    let issuer_url = super::oidc_issuer(state);
    // Issuers are compared case-sensitively (Entra ID's federated credential matching).
    let Some(issuer) = issuer.filter(|_| principal.federated && iss == issuer_url) else {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. {FIC_DOC}"
            ),
        ));
    };
    if jwt.verify_rsa(&issuer.public_pkcs1).is_err() {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            "Client assertion failed signature validation.",
        ));
    }
    check_time(jwt, now)?;
    let sub = jwt.claim_str("sub").unwrap_or_default();
    let auds = jwt.audiences();
    if sub != WORKLOAD_SUBJECT || !auds.contains(&TOKEN_EXCHANGE_AUDIENCE) {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            70021,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'. {FIC_DOC}",
                auds.join(",")
            ),
        ));
    }
    Ok(())
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: what MSAL reads to find the token
/// endpoint (field set of the real document; hosts replaced by the mock's).
async fn openid_v2(State(state): State<Arc<MockState>>, Path(tenant): Path<String>) -> Response {
    openid(&state, &tenant, true)
}

/// `GET /{tenant}/.well-known/openid-configuration`: the v1 document.
async fn openid_v1(State(state): State<Arc<MockState>>, Path(tenant): Path<String>) -> Response {
    openid(&state, &tenant, false)
}

fn openid(state: &MockState, tenant: &str, v2: bool) -> Response {
    let a = authority(state);
    if !tenant_matches(state, tenant) {
        // The discovery endpoints answer an unknown tenant with `invalid_tenant` (what MSAL
        // reports as "OIDC Discovery endpoint rejects our request").
        let mut e = unknown_tenant(tenant);
        e.error = "invalid_tenant";
        return e.into_response(&a, None);
    }
    let t = &state.tenant_id;
    let host = a.trim_start_matches("https://").to_string();
    let (oauth, issuer, keys) = if v2 {
        (
            format!("{a}/{t}/oauth2/v2.0"),
            format!("{a}/{t}/v2.0"),
            format!("{a}/{t}/discovery/v2.0/keys"),
        )
    } else {
        (
            format!("{a}/{t}/oauth2"),
            format!("{a}/{t}/"),
            format!("{a}/{t}/discovery/keys"),
        )
    };
    let doc = json!({
        "token_endpoint": format!("{oauth}/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": keys,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{a}/oidc/userinfo"),
        "authorization_endpoint": format!("{oauth}/authorize"),
        "device_authorization_endpoint": format!("{oauth}/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{oauth}/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{a}/{t}/kerberos"),
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        // Hosts, not URLs, in the real document; the mock names itself so nothing built from
        // them leaves loopback.
        "cloud_graph_host_name": host,
        "msgraph_host": host,
        "rbac_url": a,
    });
    (StatusCode::OK, axum::Json(doc)).into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys`: the tenant's signing keys. The mock's access tokens
/// are HMAC-signed and verified by the mock only, so this publishes the issuer key, which is
/// the only RSA signing key the mock has; it exists so that clients fetching it get the shape.
async fn tenant_keys(State(state): State<Arc<MockState>>, Path(tenant): Path<String>) -> Response {
    if !tenant_matches(&state, &tenant) {
        let mut e = unknown_tenant(&tenant);
        e.error = "invalid_tenant";
        return e.into_response(&authority(&state), None);
    }
    jwks(&state)
}

fn jwks(state: &MockState) -> Response {
    let keys: Vec<Value> = state.identity.issuer_jwk().cloned().into_iter().collect();
    (StatusCode::OK, axum::Json(json!({ "keys": keys }))).into_response()
}

/// `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=...`: MSAL's
/// instance discovery (shape of the real answer: `tenant_discovery_endpoint`, `api-version`,
/// `metadata[]` with `preferred_network`, `preferred_cache`, `aliases`). Only this mock's
/// host is a known instance.
async fn instance_discovery(
    State(state): State<Arc<MockState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let a = authority(&state);
    let host = a.trim_start_matches("https://").to_string();
    let mut tenant = state.tenant_id.clone();
    if let Some(ep) = q.get("authorization_endpoint") {
        let parsed = url::Url::parse(ep).ok();
        let ep_host = parsed.as_ref().and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}{}", u.port().map(|p| format!(":{p}")).unwrap_or_default()))
        });
        if ep_host.as_deref() != Some(host.as_str()) {
            return AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_instance",
                50049,
                "Unknown or invalid instance.",
            )
            .into_response(&a, None);
        }
        if let Some(t) = parsed
            .as_ref()
            .and_then(|u| u.path_segments().and_then(|mut s| s.next().map(str::to_string)))
            .filter(|t| !t.is_empty())
        {
            tenant = t;
        }
    }
    let body = json!({
        "tenant_discovery_endpoint": format!("{a}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host],
        }],
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `GET /federated/.well-known/openid-configuration`: the issuer's discovery document, in the
/// shape a Kubernetes API server (and the AKS OIDC issuer) publishes.
async fn federated_openid(State(state): State<Arc<MockState>>) -> Response {
    let issuer = super::oidc_issuer(&state);
    let body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/openid/v1/jwks"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn federated_jwks(State(state): State<Arc<MockState>>) -> Response {
    jwks(&state)
}

/// `error_uri` target: a plain page, so following the link stays on loopback.
async fn error_page(Query(q): Query<HashMap<String, String>>) -> Response {
    let code = q.get("code").map(String::as_str).unwrap_or("");
    (
        StatusCode::OK,
        format!("azaudit mock: AADSTS{code} (see https://learn.microsoft.com/entra/identity-platform/reference-error-codes)\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_rules() {
        assert_eq!(
            resource_from_scope("https://management.azure.com//.default").unwrap(),
            "https://management.azure.com/"
        );
        assert_eq!(
            resource_from_scope("https://management.azure.com/.default offline_access").unwrap(),
            "https://management.azure.com"
        );
        assert_eq!(
            resource_from_scope("https://management.azure.com/user_impersonation")
                .unwrap_err()
                .code,
            70011
        );
        assert_eq!(resource_from_scope("/.default").unwrap_err().code, 70011);
        assert_eq!(
            resource_from_scope("a/.default b/.default").unwrap_err().code,
            70011
        );
    }

    #[test]
    fn time_formats() {
        assert_eq!(entra_timestamp(0), "1970-01-01 00:00:00Z");
        assert_eq!(iso_time(86_400), "1970-01-02T00:00:00.0000000Z");
        assert_eq!(key_date(0), "01/01/1970 00:00:00");
    }
}
