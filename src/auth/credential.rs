//! The credential azaudit hands to ARM and everything else: one credential source behind a
//! token cache that refreshes ahead of expiry (5 minutes, or half the lifetime of short
//! tokens), lets exactly one refresh run at a time while concurrent callers wait for its result,
//! and forgets everything on `clear_cache` (what the ARM client calls after a 401).
//!
//! It implements `azure_core::auth::TokenCredential`, the interface the pipeline takes; SDK
//! types stop here and in `arm`. Tokens live in memory only: never on disk, never in logs.

use std::collections::HashMap;
use std::path::PathBuf;

use azure_core::auth::{AccessToken, TokenCredential};
use time::OffsetDateTime;
use url::Url;

use super::args::AssertionAlg;
use super::azure_cli::AzureCli;
use super::certificate::ClientCertificate;
use super::entra::{self, Flavour, Proof};
use super::managed_identity::ManagedIdentity;
use super::token::Token;
use super::{AuthError, CredentialSource};
use crate::secret::Secret;

/// One way of getting a token.
#[derive(Debug)]
pub enum Source {
    ClientSecret {
        authority: Url,
        tenant: String,
        client_id: String,
        secret: Secret,
    },
    Certificate {
        authority: Url,
        tenant: String,
        client_id: String,
        cert: Box<ClientCertificate>,
        alg: AssertionAlg,
        send_chain: bool,
    },
    Workload {
        authority: Url,
        tenant: String,
        client_id: String,
        token_file: PathBuf,
    },
    ManagedIdentity(ManagedIdentity),
    AzureCli(AzureCli),
}

impl Source {
    pub fn kind(&self) -> CredentialSource {
        match self {
            Source::ClientSecret { .. } => CredentialSource::ServicePrincipal,
            Source::Certificate { .. } => CredentialSource::Certificate,
            Source::Workload { .. } => CredentialSource::WorkloadIdentity,
            Source::ManagedIdentity(_) => CredentialSource::ManagedIdentity,
            Source::AzureCli(_) => CredentialSource::AzureCli,
        }
    }

    /// What this source is, for attempts and `doctor` (no secrets).
    pub fn describe(&self) -> String {
        match self {
            Source::ClientSecret {
                tenant, client_id, ..
            } => {
                format!("client {client_id} in tenant {tenant} with a client secret")
            }
            Source::Certificate {
                tenant,
                client_id,
                cert,
                ..
            } => format!(
                "client {client_id} in tenant {tenant} with certificate {} ({})",
                cert.path.display(),
                cert.subject
            ),
            Source::Workload {
                tenant,
                client_id,
                token_file,
                ..
            } => format!(
                "client {client_id} in tenant {tenant} with federated token file {}",
                token_file.display()
            ),
            Source::ManagedIdentity(mi) => mi.describe(),
            Source::AzureCli(cli) => cli.describe(),
        }
    }

    pub fn tenant(&self) -> Option<&str> {
        match self {
            Source::ClientSecret { tenant, .. }
            | Source::Certificate { tenant, .. }
            | Source::Workload { tenant, .. } => Some(tenant),
            Source::ManagedIdentity(_) => None,
            Source::AzureCli(c) => c.tenant.as_deref(),
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        match self {
            Source::ClientSecret { client_id, .. }
            | Source::Certificate { client_id, .. }
            | Source::Workload { client_id, .. } => Some(client_id),
            Source::ManagedIdentity(mi) => match &mi.identity {
                Some(super::managed_identity::UserAssigned::ClientId(c)) => Some(c),
                _ => None,
            },
            Source::AzureCli(_) => None,
        }
    }

    async fn fetch(&self, clients: &Clients, scope: &str) -> Result<Token, AuthError> {
        // Managed identity and the CLI take a resource, not a scope.
        let resource = scope
            .split_whitespace()
            .next()
            .unwrap_or(scope)
            .trim_end_matches("/.default")
            .to_string();
        let lo = clients.loopback_only;
        match self {
            Source::ClientSecret {
                authority,
                tenant,
                client_id,
                secret,
            } => {
                entra::request_token(
                    &clients.https,
                    authority,
                    tenant,
                    client_id,
                    scope,
                    Proof::Secret(secret),
                    &Flavour::Secret,
                    lo,
                )
                .await
            }
            Source::Certificate {
                authority,
                tenant,
                client_id,
                cert,
                alg,
                send_chain,
            } => {
                let now = OffsetDateTime::now_utc();
                // Checked on every request: a long audit can outlive the certificate.
                cert.check_validity(client_id, now)?;
                let aud = entra::token_url(authority, tenant)?;
                let assertion = cert.assertion(client_id, aud.as_str(), *alg, *send_chain, now)?;
                let flavour = Flavour::Certificate {
                    path: cert.path.display().to_string(),
                };
                entra::request_token(
                    &clients.https,
                    authority,
                    tenant,
                    client_id,
                    scope,
                    Proof::Assertion(assertion),
                    &flavour,
                    lo,
                )
                .await
            }
            Source::Workload {
                authority,
                tenant,
                client_id,
                token_file,
            } => {
                // Re-read on every request: kubelet rotates the projected token (domain.md §7.3).
                let assertion = read_token_file(token_file)?;
                let flavour = Flavour::Workload {
                    token_file: token_file.display().to_string(),
                };
                entra::request_token(
                    &clients.https,
                    authority,
                    tenant,
                    client_id,
                    scope,
                    Proof::Assertion(assertion),
                    &flavour,
                    lo,
                )
                .await
            }
            Source::ManagedIdentity(mi) => mi.fetch(&clients.managed_identity, &resource).await,
            Source::AzureCli(cli) => cli.fetch(&resource).await,
        }
    }
}

/// Reads the federated token file; a missing or empty file is an error with the fix.
pub fn read_token_file(path: &std::path::Path) -> Result<Secret, AuthError> {
    let err = |problem: String| {
        AuthError::TokenFile {
        path: path.display().to_string(),
        problem,
        fix: "check AZURE_FEDERATED_TOKEN_FILE / --federated-token-file: the workload identity webhook mounts the token at /var/run/secrets/azure/tokens/azure-identity-token in pods labelled azure.workload.identity/use: \"true\" whose service account is annotated with azure.workload.identity/client-id".into(),
    }
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        err(if e.kind() == std::io::ErrorKind::NotFound {
            "it does not exist".into()
        } else {
            format!("cannot read it ({e})")
        })
    })?;
    let t = text.trim();
    if t.is_empty() {
        return Err(err("it is empty".into()));
    }
    Ok(Secret::new(t))
}

/// The HTTP clients a source may use.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Entra ID (and everything HTTPS), with the user's extra CAs.
    pub https: reqwest::Client,
    /// Managed identity endpoints (plain HTTP, no proxy, 1 s connect timeout).
    pub managed_identity: reqwest::Client,
    pub loopback_only: bool,
}

/// A credential source with a token cache.
pub struct CachingCredential {
    source: Source,
    clients: Clients,
    /// Tokens by scope. The async mutex is held while a token is fetched, so concurrent callers
    /// wait for that one request and then read its result: one refresh at a time.
    cache: tokio::sync::Mutex<HashMap<String, Token>>,
}

impl std::fmt::Debug for CachingCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingCredential")
            .field("source", &self.source.kind())
            .finish_non_exhaustive()
    }
}

impl CachingCredential {
    pub fn new(source: Source, clients: Clients) -> CachingCredential {
        CachingCredential {
            source,
            clients,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// A token for `scope`: the cached one while it is fresh, else a new one. When a refresh
    /// fails but the cached token has not expired yet, the cached one is used (and the failure
    /// logged): a transient Entra ID hiccup must not fail an audit that still holds a valid token.
    pub async fn token(&self, scope: &str) -> Result<Token, AuthError> {
        let mut cache = self.cache.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some(t) = cache.get(scope)
            && !t.needs_refresh(now)
        {
            return Ok(t.clone());
        }
        match self.source.fetch(&self.clients, scope).await {
            Ok(t) => {
                tracing::debug!(
                    source = %self.source.kind(),
                    expires_in_s = (t.expires_on - now).whole_seconds(),
                    "token acquired"
                );
                cache.insert(scope.to_string(), t.clone());
                Ok(t)
            }
            Err(e) => match cache.get(scope) {
                Some(t) if !t.expired(OffsetDateTime::now_utc()) => {
                    tracing::warn!("token refresh failed, using the cached token until it expires: {e}");
                    Ok(t.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// Forgets every cached token.
    pub async fn clear(&self) {
        self.cache.lock().await.clear();
    }
}

#[async_trait::async_trait]
impl TokenCredential for CachingCredential {
    async fn get_token(&self, scopes: &[&str]) -> azure_core::Result<AccessToken> {
        let scope = scopes.join(" ");
        let t = self
            .token(&scope)
            .await
            .map_err(|e| azure_core::Error::new(azure_core::error::ErrorKind::Credential, e))?;
        Ok(AccessToken::new(t.value.expose().to_string(), t.expires_on))
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        self.clear().await;
        Ok(())
    }
}
