//! Managed identity tokens (domain.md §7.2): IMDS on VMs, VMSS and AKS nodes (system-assigned,
//! or user-assigned by client id, object id or resource id) and App Service / Functions
//! (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`).
//!
//! IMDS must fail fast where there is none: the connect timeout is 1 s, a refused or timed-out
//! connection is not retried, and only the answers IMDS documents as transient (404, 410, 429,
//! 5xx; azidentity's `managed_identity_client.go`) are retried, three times at most. The
//! endpoints are plain HTTP on a link-local or loopback address, so proxies are bypassed. The
//! default IMDS address is a constant in `args.rs`; tests always override it, and loopback-only
//! mode refuses it.

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use super::token::{self, Token};
use super::{AuthError, guard};
use crate::secret::Secret;

/// IMDS token api-version (the one MSAL and azidentity use).
const IMDS_API_VERSION: &str = "2018-02-01";
/// App Service / Functions api-version.
const APP_SERVICE_API_VERSION: &str = "2019-08-01";
/// Connect timeout: a VM reaches IMDS in milliseconds; anywhere else nothing answers.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Whole-request timeout (IMDS can take a few seconds to mint a first token).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const ATTEMPTS: u32 = 3;

/// Which user-assigned identity to ask for; none means the system-assigned one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAssigned {
    ClientId(String),
    ObjectId(String),
    ResourceId(String),
}

impl UserAssigned {
    pub fn describe(&self) -> String {
        match self {
            UserAssigned::ClientId(c) => format!("user-assigned identity with client id {c}"),
            UserAssigned::ObjectId(o) => format!("user-assigned identity with object id {o}"),
            UserAssigned::ResourceId(r) => format!("user-assigned identity {r}"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Endpoint {
    Imds(Url),
    AppService { url: Url, header: Secret },
}

impl Endpoint {
    pub fn url(&self) -> &Url {
        match self {
            Endpoint::Imds(u) | Endpoint::AppService { url: u, .. } => u,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Endpoint::Imds(_) => "IMDS",
            Endpoint::AppService { .. } => "App Service",
        }
    }
}

/// The HTTP client for managed identity endpoints: no proxy, short connect timeout, no redirects.
pub fn client() -> Result<reqwest::Client, AuthError> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("azaudit/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AuthError::Invalid {
            what: format!("HTTP client for managed identity: {e}"),
            fix: "report this as a bug".into(),
        })
}

#[derive(Debug)]
pub struct ManagedIdentity {
    pub endpoint: Endpoint,
    pub identity: Option<UserAssigned>,
    pub loopback_only: bool,
}

impl ManagedIdentity {
    pub fn describe(&self) -> String {
        let who = self
            .identity
            .as_ref()
            .map(UserAssigned::describe)
            .unwrap_or_else(|| "system-assigned identity".into());
        format!(
            "{who} via {} at {}",
            self.endpoint.kind(),
            guard::redact_url(self.endpoint.url())
        )
    }

    fn request_url(&self, resource: &str) -> Url {
        let mut u = self.endpoint.url().clone();
        {
            let mut q = u.query_pairs_mut();
            let (api, res_param) = match &self.endpoint {
                Endpoint::Imds(_) => (IMDS_API_VERSION, "msi_res_id"),
                // App Service names the resource-id parameter `mi_res_id`.
                Endpoint::AppService { .. } => (APP_SERVICE_API_VERSION, "mi_res_id"),
            };
            q.append_pair("api-version", api);
            q.append_pair("resource", resource);
            match &self.identity {
                Some(UserAssigned::ClientId(c)) => {
                    q.append_pair("client_id", c);
                }
                Some(UserAssigned::ObjectId(o)) => {
                    q.append_pair("object_id", o);
                }
                Some(UserAssigned::ResourceId(r)) => {
                    q.append_pair(res_param, r);
                }
                None => {}
            }
        }
        u
    }

    pub async fn fetch(&self, http: &reqwest::Client, resource: &str) -> Result<Token, AuthError> {
        let url = self.request_url(resource);
        guard::check(&url, self.loopback_only)?;
        let endpoint = guard::redact_url(self.endpoint.url());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = http.get(url.clone());
            req = match &self.endpoint {
                Endpoint::Imds(_) => req.header("Metadata", "true"),
                Endpoint::AppService { header, .. } => {
                    // Marked sensitive so no HTTP-level debug output shows it.
                    let mut v = reqwest::header::HeaderValue::from_str(header.expose()).map_err(|_| {
                        AuthError::Invalid {
                            what: "IDENTITY_HEADER (not a valid HTTP header value)".into(),
                            fix: "use the value App Service sets in the app's environment".into(),
                        }
                    })?;
                    v.set_sensitive(true);
                    req.header("X-IDENTITY-HEADER", v)
                }
            };
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    // No retry: nothing listening means this is not a machine with a managed
                    // identity, and retrying would only make `--auth auto` slow.
                    return Err(AuthError::ManagedIdentity {
                        endpoint,
                        problem: format!(
                            "no managed identity endpoint answers ({})",
                            super::describe_reqwest_error(&e)
                        ),
                        fix: match self.endpoint {
                            Endpoint::Imds(_) => "run azaudit on an Azure VM, VMSS instance or AKS node with a managed identity, or choose another --auth; --imds-endpoint / AZAUDIT_IMDS_ENDPOINT points at a proxy".into(),
                            Endpoint::AppService { .. } => "check IDENTITY_ENDPOINT (--identity-endpoint); it is set by App Service and Functions".into(),
                        },
                    });
                }
            };
            let status = resp.status();
            let body = resp.bytes().await.unwrap_or_default();
            let json: Option<Value> = serde_json::from_slice(&body).ok();
            if status.is_success() {
                let json = json.ok_or_else(|| AuthError::BadResponse {
                    step: "managed identity token request",
                    url: endpoint.clone(),
                    status: status.as_u16(),
                    detail: "the body is not JSON".into(),
                })?;
                return token::from_response(&json, OffsetDateTime::now_utc()).map_err(|detail| {
                    AuthError::BadResponse {
                        step: "managed identity token request",
                        url: endpoint.clone(),
                        status: status.as_u16(),
                        detail,
                    }
                });
            }
            let transient = matches!(status.as_u16(), 404 | 410 | 429) || status.is_server_error();
            if transient && attempt < ATTEMPTS {
                let wait = Duration::from_millis(500 * 2u64.pow(attempt - 1));
                tracing::info!(
                    status = status.as_u16(),
                    ?wait,
                    "managed identity endpoint busy; retrying"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(self.error(status.as_u16(), json.as_ref(), &body, resource, endpoint));
        }
    }

    fn error(
        &self,
        status: u16,
        json: Option<&Value>,
        body: &[u8],
        resource: &str,
        endpoint: String,
    ) -> AuthError {
        let text = |k: &str| {
            json.and_then(|j| j.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        // IMDS: {"error","error_description"}; App Service: {"statusCode","message"}.
        let description = [text("error_description"), text("message")]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&body[..body.len().min(200)])
                    .trim()
                    .to_string()
            });
        let error = text("error");
        let who = self
            .identity
            .as_ref()
            .map(UserAssigned::describe)
            .unwrap_or_else(|| "the system-assigned identity".into());
        let lower = description.to_ascii_lowercase();
        let (problem, fix) = if lower.contains("identity not found")
            || lower.contains("unable to load the proper managed identity")
        {
            (
                format!("{who} is not assigned to this machine or app ({description})"),
                match &self.identity {
                    Some(id) => format!(
                        "assign it (`az vmss identity assign -g <rg> -n <vmss> --identities {}` / `az vm identity assign ...` / `az webapp identity assign ...`) or pass the id of one that is assigned",
                        match id {
                            UserAssigned::ResourceId(r) => r.clone(),
                            _ => "<identity resource id>".into(),
                        }
                    ),
                    None => "enable a system-assigned identity (`az vm identity assign -g <rg> -n <vm>`), or name a user-assigned one with --managed-identity-client-id / --managed-identity-resource-id".into(),
                },
            )
        } else if error == "invalid_resource" || lower.contains("aadsts500011") {
            (
                format!("the token audience {resource} is not known ({description})"),
                "check --cloud, --arm-endpoint and --audience".into(),
            )
        } else if matches!(self.endpoint, Endpoint::AppService { .. })
            && (status == 401 || status == 403 || lower.contains("x-identity-header"))
        {
            (
                format!("the App Service identity endpoint refused the identity header (HTTP {status}: {description})"),
                "IDENTITY_HEADER must be the value App Service sets in the app's environment; do not copy it between apps or restarts".into(),
            )
        } else if lower.contains("metadata header") {
            (
                format!("IMDS refused the request ({description})"),
                "a proxy between azaudit and IMDS drops the `Metadata: true` header; point --imds-endpoint at IMDS directly".into(),
            )
        } else {
            (
                format!("HTTP {status}: {description}"),
                "check the managed identity configuration of this machine or app".into(),
            )
        };
        AuthError::ManagedIdentity {
            endpoint,
            problem,
            fix,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_urls() {
        let mi = ManagedIdentity {
            endpoint: Endpoint::Imds(
                Url::parse("http://127.0.0.1:1/metadata/identity/oauth2/token").unwrap(),
            ),
            identity: Some(UserAssigned::ResourceId("/subscriptions/s/x".into())),
            loopback_only: true,
        };
        let u = mi.request_url("https://management.azure.com/");
        assert!(u.as_str().contains("api-version=2018-02-01"));
        assert!(u.as_str().contains("msi_res_id=%2Fsubscriptions%2Fs%2Fx"));
        let app = ManagedIdentity {
            endpoint: Endpoint::AppService {
                url: Url::parse("http://127.0.0.1:1/msi/token").unwrap(),
                header: Secret::new("h"),
            },
            identity: Some(UserAssigned::ResourceId("/subscriptions/s/x".into())),
            loopback_only: true,
        };
        let u = app.request_url("r");
        assert!(u.as_str().contains("api-version=2019-08-01") && u.as_str().contains("mi_res_id="));
        assert!(!format!("{app:?}").contains("\"h\""));
    }
}
