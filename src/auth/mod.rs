//! Authentication (issue 3): every credential source ops teams use, in every Azure cloud, behind
//! one call, [`authenticate`], that picks the source, obtains a first token (so a failure shows
//! at once, with its cause and fix), and returns a caching `TokenCredential` for the rest of
//! the run.
//!
//! Sources: service principal with a client secret or a certificate (PEM/PFX), workload
//! identity (federated token file), managed identity (IMDS, App Service), the Azure CLI, and the
//! cluster's own cloud config. `--auth auto` tries, in this order: environment service
//! principal (secret, then certificate), workload identity, the cloud config's credentials
//! (only with `--cloud-config`), managed identity (App Service when its variables are set,
//! else IMDS with a 1 s connect timeout), Azure CLI. The first source that yields a token wins;
//! when none does, the error lists every attempt and why it failed.
//!
//! This module must not log, print or serialise a secret (see [`crate::secret`]), must not fall
//! back to another cloud than the one chosen, and must not contact anything but loopback in
//! loopback-only mode ([`guard`]). SDK types (`azure_core`) stay inside `auth` and `arm`; the
//! rest of azaudit gets [`Authenticated`].

pub mod args;
pub mod azure_cli;
pub mod certificate;
pub mod cloud;
pub mod credential;
pub mod entra;
pub mod guard;
pub mod managed_identity;
pub mod token;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use url::Url;

pub use args::{AuthArgs, AuthMethod, DEFAULT_IMDS_ENDPOINT};
pub use cloud::{Cloud, CloudError};

use crate::cloud_config::{CloudConfig, UserAssignedIdentity};
use crate::secret::Secret;
use credential::{CachingCredential, Clients, Source};
use managed_identity::{Endpoint, ManagedIdentity, UserAssigned};

/// Where the default federated token file is mounted by the workload identity webhook.
pub const DEFAULT_FEDERATED_TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";

/// A kind of credential source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialSource {
    ServicePrincipal,
    Certificate,
    WorkloadIdentity,
    ManagedIdentity,
    AzureCli,
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CredentialSource::ServicePrincipal => "service-principal",
            CredentialSource::Certificate => "certificate",
            CredentialSource::WorkloadIdentity => "workload-identity",
            CredentialSource::ManagedIdentity => "managed-identity",
            CredentialSource::AzureCli => "azure-cli",
        })
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// It produced a token.
    Ok,
    /// It was configured and failed.
    Failed,
    /// It was not configured (nothing to try).
    Skipped,
}

/// One credential source tried (or skipped), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub source: CredentialSource,
    pub outcome: AttemptOutcome,
    pub detail: String,
}

/// Who we are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityInfo {
    pub source: CredentialSource,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    /// From the token's `oid` claim when readable: the id role assignments name.
    pub object_id: Option<String>,
    /// What was used (no secrets), e.g. "client ... in tenant ... with a client secret".
    pub description: String,
}

/// The result of [`authenticate`].
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Caches tokens, refreshes ahead of expiry, one refresh at a time; `clear_cache` after a 401.
    pub credential: Arc<dyn azure_core::auth::TokenCredential>,
    pub cloud: Cloud,
    /// Why this cloud (`--cloud`, the cloud config, discovery, default).
    pub cloud_reason: String,
    /// The HTTPS client (extra CAs, no redirects) for ARM and anything else azaudit reaches.
    pub http: reqwest::Client,
    pub identity: IdentityInfo,
    pub attempts: Vec<Attempt>,
    /// Things worth fixing that did not stop authentication (e.g. a key file readable by others).
    pub warnings: Vec<String>,
}

impl Authenticated {
    /// A bearer token for the cloud's ARM audience (cached).
    pub async fn bearer(&self) -> Result<Secret, AuthError> {
        let t = self
            .credential
            .get_token(&[&self.cloud.scope()])
            .await
            .map_err(auth_error_from_core)?;
        Ok(Secret::new(t.token.secret().to_string()))
    }
}

/// Recovers our error from azure_core's wrapper.
pub fn auth_error_from_core(e: azure_core::Error) -> AuthError {
    match e.into_downcast::<AuthError>() {
        Ok(a) => a,
        Err(e) => AuthError::Invalid {
            what: format!("token: {e}"),
            fix: "report this as a bug".into(),
        },
    }
}

/// Entra ID refused a token request: its code, what it means, and the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "token request for client {client_id} in tenant {tenant} refused by Entra ID ({code}): {cause} [{detail}]. Fix: {fix}"
)]
pub struct EntraFailure {
    pub tenant: String,
    pub client_id: String,
    /// `AADSTS7000215`, or the OAuth `error` when there is no code.
    pub code: String,
    pub cause: String,
    pub fix: String,
    /// Entra's description, without trace ids.
    pub detail: String,
}

/// Everything that can go wrong, each naming the failed step and saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{method}: {what} is not set. Fix: {fix}")]
    Missing {
        /// The `--auth` method that needs it.
        method: String,
        what: String,
        fix: String,
    },
    #[error("{what} is not valid. Fix: {fix}")]
    Invalid { what: String, fix: String },
    #[error("cloud: {0}")]
    Cloud(#[from] CloudError),
    #[error(
        "extra CA certificates: {detail}. Fix: pass a PEM bundle of CA certificates with --ca-file (or SSL_CERT_FILE)"
    )]
    CaFile { detail: String },
    #[error(
        "{step}: TLS handshake with {url} failed ({detail}): the server's certificate is not signed by a CA azaudit trusts. Fix: if the endpoint uses a private CA (Azure Stack Hub, a TLS-inspecting proxy, a test mock), pass its CA certificate with --ca-file <pem> (or SSL_CERT_FILE); TLS verification cannot be turned off"
    )]
    Tls {
        step: &'static str,
        url: String,
        detail: String,
    },
    #[error(
        "{step}: cannot reach {url} ({detail}). Fix: check the endpoint, DNS, firewalls and proxy settings (HTTPS_PROXY, NO_PROXY)"
    )]
    Unreachable {
        step: &'static str,
        url: String,
        detail: String,
    },
    #[error(
        "{step}: {url} answered HTTP {status} with an unexpected body ({detail}). Fix: check that the endpoint is the right one (--authority-host, --arm-endpoint, --imds-endpoint)"
    )]
    BadResponse {
        step: &'static str,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{0}")]
    Entra(Box<EntraFailure>),
    #[error("certificate {path}: {problem}. Fix: {fix}")]
    Certificate {
        path: String,
        problem: String,
        fix: String,
    },
    #[error("federated token file {path}: {problem}. Fix: {fix}")]
    TokenFile {
        path: String,
        problem: String,
        fix: String,
    },
    #[error("managed identity at {endpoint}: {problem}. Fix: {fix}")]
    ManagedIdentity {
        endpoint: String,
        problem: String,
        fix: String,
    },
    #[error("Azure CLI: {problem}. Fix: {fix}")]
    AzureCli { problem: String, fix: String },
    #[error(
        "refusing to contact {target}: loopback-only mode (AZAUDIT_LOOPBACK_ONLY) allows only 127.0.0.0/8 and ::1. Fix: point every endpoint at the mock (--arm-endpoint, --authority-host, --imds-endpoint, IDENTITY_ENDPOINT, AZAUDIT_AZ_PATH)"
    )]
    LoopbackOnly { target: String },
    #[error("no credential source worked; --auth auto tried, in order:\n{}\nFix: configure one of them, or force one with --auth", render_attempts(.attempts))]
    NoCredential { attempts: Vec<Attempt> },
}

fn render_attempts(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| {
            format!(
                "  - {}: {}: {}",
                a.source,
                match a.outcome {
                    AttemptOutcome::Ok => "ok",
                    AttemptOutcome::Failed => "failed",
                    AttemptOutcome::Skipped => "skipped",
                },
                a.detail
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A transport error with its causes (reqwest's own message hides them).
pub fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    if e.is_timeout() {
        parts.push("timed out".into());
    }
    parts.join(": ")
}

impl AuthError {
    /// Classifies a transport error: TLS trust problems get the `--ca-file` advice.
    pub fn from_reqwest(step: &'static str, url: &Url, e: &reqwest::Error) -> AuthError {
        let detail = describe_reqwest_error(e);
        let lower = detail.to_ascii_lowercase();
        let url = guard::redact_url(url);
        if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("handshake") {
            AuthError::Tls { step, url, detail }
        } else {
            AuthError::Unreachable { step, url, detail }
        }
    }

    /// Errors that must stop `--auth auto` at once instead of moving to the next source.
    fn is_fatal(&self) -> bool {
        matches!(self, AuthError::LoopbackOnly { .. })
    }
}

/// A warning when `path` (a key, certificate or token file) is readable by group or others.
pub fn loose_permissions_warning(path: &Path, what: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{what} {} is readable by group or others (mode {mode:04o}): restrict it with `chmod 600 {}` (on a projected volume: defaultMode 0400)",
            path.display(),
            path.display()
        )
    })
}

/// A source to try, or why there is none.
enum Candidate {
    Ready(Box<Source>),
    Skipped(CredentialSource, String),
    Failed(CredentialSource, AuthError),
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

struct Planner<'a> {
    args: &'a AuthArgs,
    config: Option<&'a CloudConfig>,
    cloud: &'a Cloud,
    warnings: Vec<String>,
}

impl Planner<'_> {
    fn warn_loose(&mut self, path: &Path, what: &str) {
        if let Some(w) = loose_permissions_warning(path, what) {
            tracing::warn!("{w}");
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
    }

    fn tenant(&self) -> Option<String> {
        nonempty(&self.args.tenant_id)
            .or(self.config.and_then(|c| c.tenant_id()))
            .map(str::to_string)
    }

    fn need(
        &self,
        kind: CredentialSource,
        v: Option<String>,
        what: &str,
        fix: &str,
    ) -> Result<String, AuthError> {
        v.ok_or_else(|| AuthError::Missing {
            method: kind.to_string(),
            what: what.into(),
            fix: fix.into(),
        })
    }

    fn tenant_for(&self, kind: CredentialSource) -> Result<String, AuthError> {
        self.need(
            kind,
            self.tenant(),
            "the tenant id",
            "set --tenant-id or AZURE_TENANT_ID (`az account show --query tenantId -o tsv`)",
        )
    }

    fn client_for(&self, kind: CredentialSource, client: Option<&str>) -> Result<String, AuthError> {
        self.need(
            kind,
            client.map(str::to_string),
            "the client id",
            "set --client-id or AZURE_CLIENT_ID (the application id of the service principal)",
        )
    }

    fn secret_source(&self, client: Option<&str>, secret: &Secret) -> Result<Source, AuthError> {
        let kind = CredentialSource::ServicePrincipal;
        Ok(Source::ClientSecret {
            authority: self.cloud.authority_host.clone(),
            tenant: self.tenant_for(kind)?,
            client_id: self.client_for(kind, client)?,
            secret: secret.clone(),
        })
    }

    fn certificate_source(
        &mut self,
        client: Option<&str>,
        path: &Path,
        password: Option<&Secret>,
    ) -> Result<Source, AuthError> {
        let kind = CredentialSource::Certificate;
        let tenant = self.tenant_for(kind)?;
        let client_id = self.client_for(kind, client)?;
        self.warn_loose(path, "certificate file");
        let cert = certificate::ClientCertificate::load(path, password)?;
        cert.check_validity(&client_id, time::OffsetDateTime::now_utc())?;
        Ok(Source::Certificate {
            authority: self.cloud.authority_host.clone(),
            tenant,
            client_id,
            cert: Box::new(cert),
            alg: self.args.assertion_alg,
            send_chain: self.args.send_certificate_chain,
        })
    }

    fn workload_source(&mut self, client: Option<&str>, file: &Path) -> Result<Source, AuthError> {
        let kind = CredentialSource::WorkloadIdentity;
        let tenant = self.tenant_for(kind)?;
        let client_id = self.client_for(kind, client)?;
        // Read once now so a missing file is reported before any request; it is read again
        // for every token.
        credential::read_token_file(file)?;
        self.warn_loose(file, "federated token file");
        Ok(Source::Workload {
            authority: self.cloud.authority_host.clone(),
            tenant,
            client_id,
            token_file: file.to_path_buf(),
        })
    }

    /// The user-assigned identity named by flags.
    fn flag_identity(&self) -> Option<UserAssigned> {
        let a = self.args;
        nonempty(&a.managed_identity_client_id)
            .map(|c| UserAssigned::ClientId(c.into()))
            .or_else(|| nonempty(&a.managed_identity_object_id).map(|o| UserAssigned::ObjectId(o.into())))
            .or_else(|| nonempty(&a.managed_identity_resource_id).map(|r| UserAssigned::ResourceId(r.into())))
    }

    fn managed_identity_source(&self, identity: Option<UserAssigned>) -> Result<Source, AuthError> {
        let a = self.args;
        let endpoint = match (nonempty(&a.identity_endpoint), &a.identity_header) {
            (Some(url), Some(header)) if !header.is_empty() => Endpoint::AppService {
                url: parse_plain_url("--identity-endpoint / IDENTITY_ENDPOINT", url)?,
                header: header.clone(),
            },
            _ => Endpoint::Imds(parse_plain_url(
                "--imds-endpoint / AZAUDIT_IMDS_ENDPOINT",
                nonempty(&a.imds_endpoint).unwrap_or(DEFAULT_IMDS_ENDPOINT),
            )?),
        };
        Ok(Source::ManagedIdentity(ManagedIdentity {
            endpoint,
            identity,
            loopback_only: a.loopback_only,
        }))
    }

    fn cli_source(&self) -> Source {
        Source::AzureCli(azure_cli::AzureCli {
            program: self.args.az_path.clone().unwrap_or_else(|| PathBuf::from("az")),
            explicit_program: self.args.az_path.is_some(),
            tenant: self.tenant(),
            loopback_only: self.args.loopback_only,
        })
    }

    /// The cloud config's credential, in the provider's precedence (`NewAuthProvider`,
    /// `CPA:pkg/azclient/auth.go`): workload identity > managed identity > client secret >
    /// client certificate. Flags and `AZURE_*` variables override the file's values, as the
    /// provider's environment overrides do.
    fn cloud_config_source(&mut self) -> Result<Source, AuthError> {
        let Some(cfg) = self.config else {
            return Err(AuthError::Missing {
                method: "cloud-config".into(),
                what: "--cloud-config".into(),
                fix: "pass the cluster's cloud config: --cloud-config /etc/kubernetes/azure.json".into(),
            });
        };
        let s = &cfg.settings;
        let client = nonempty(&self.args.client_id)
            .map(str::to_string)
            .or(cfg.aad_client_id().map(str::to_string));
        let token_file = self
            .args
            .federated_token_file
            .clone()
            .or_else(|| nonempty(&s.aad_federated_token_file).map(PathBuf::from))
            .or_else(|| {
                (s.use_federated_workload_identity_extension == Some(true))
                    .then(|| PathBuf::from(DEFAULT_FEDERATED_TOKEN_FILE))
            });
        if let Some(file) = token_file {
            return self.workload_source(client.as_deref(), &file);
        }
        if s.use_managed_identity_extension == Some(true) {
            let id = self.flag_identity().or_else(|| {
                cfg.user_assigned_identity().map(|u| match u {
                    UserAssignedIdentity::ClientId(c) => UserAssigned::ClientId(c),
                    UserAssignedIdentity::ResourceId(r) => UserAssigned::ResourceId(r),
                })
            });
            return self.managed_identity_source(id);
        }
        let secret = self
            .args
            .client_secret
            .clone()
            .or(cfg.aad_client_secret().cloned());
        if let Some(secret) = secret {
            if let Some(path) = Path::new(&cfg.origin)
                .exists()
                .then(|| PathBuf::from(&cfg.origin))
            {
                self.warn_loose(&path, "cloud config with a client secret");
            }
            return self.secret_source(client.as_deref(), &secret);
        }
        let cert = self
            .args
            .client_certificate
            .clone()
            .or_else(|| nonempty(&s.aad_client_cert_path).map(PathBuf::from));
        if let Some(path) = cert {
            let password = self
                .args
                .client_certificate_password
                .clone()
                .or(s.aad_client_cert_password.clone())
                .filter(|p| !p.is_empty());
            return self.certificate_source(client.as_deref(), &path, password.as_ref());
        }
        if nonempty(&s.aad_msi_data_plane_identity_path).is_some() {
            return Err(AuthError::Invalid {
                what: format!("{}: aadMSIDataPlaneIdentityPath", cfg.origin),
                fix: "azaudit does not read MSI data-plane credential files; use managed identity, a service principal or workload identity".into(),
            });
        }
        Err(AuthError::Missing {
            method: "cloud-config".into(),
            what: format!("a credential in {}", cfg.origin),
            fix: "the cloud config names none of aadFederatedTokenFile / useFederatedWorkloadIdentityExtension, useManagedIdentityExtension, aadClientId + aadClientSecret, aadClientCertPath: add one, or choose another --auth".into(),
        })
    }

    /// The candidates in order, for the chosen method.
    fn candidates(&mut self) -> Result<Vec<Candidate>, AuthError> {
        let a = self.args;
        let client = nonempty(&a.client_id).map(str::to_string);
        let ready = |r: Result<Source, AuthError>, kind| match r {
            Ok(s) => Candidate::Ready(Box::new(s)),
            Err(e) => Candidate::Failed(kind, e),
        };
        Ok(match a.auth {
            AuthMethod::ServicePrincipal => {
                let Some(s) = a.client_secret.clone().filter(|s| !s.is_empty()) else {
                    return Err(AuthError::Missing {
                        method: "service-principal".into(),
                        what: "the client secret".into(),
                        fix: "set AZURE_CLIENT_SECRET (or --client-secret); for a certificate use --auth certificate".into(),
                    });
                };
                vec![Candidate::Ready(Box::new(
                    self.secret_source(client.as_deref(), &s)?,
                ))]
            }
            AuthMethod::Certificate => {
                let Some(path) = a.client_certificate.clone() else {
                    return Err(AuthError::Missing {
                        method: "certificate".into(),
                        what: "the certificate path".into(),
                        fix: "set --client-certificate or AZURE_CLIENT_CERTIFICATE_PATH (PEM with certificate and key, or PFX)".into(),
                    });
                };
                let pw = a.client_certificate_password.clone();
                vec![Candidate::Ready(Box::new(self.certificate_source(
                    client.as_deref(),
                    &path,
                    pw.as_ref(),
                )?))]
            }
            AuthMethod::WorkloadIdentity => {
                let Some(file) = a.federated_token_file.clone() else {
                    return Err(AuthError::Missing {
                        method: "workload-identity".into(),
                        what: "the federated token file".into(),
                        fix: "set AZURE_FEDERATED_TOKEN_FILE (or --federated-token-file); the workload identity webhook sets it in pods labelled azure.workload.identity/use: \"true\"".into(),
                    });
                };
                vec![Candidate::Ready(Box::new(
                    self.workload_source(client.as_deref(), &file)?,
                ))]
            }
            AuthMethod::ManagedIdentity => {
                vec![Candidate::Ready(Box::new(
                    self.managed_identity_source(self.flag_identity())?,
                ))]
            }
            AuthMethod::AzureCli => vec![Candidate::Ready(Box::new(self.cli_source()))],
            AuthMethod::CloudConfig => vec![Candidate::Ready(Box::new(self.cloud_config_source()?))],
            AuthMethod::Auto => {
                let mut v = Vec::new();
                // 1. Environment service principal: secret, then certificate.
                match (&a.client_secret, &a.client_certificate) {
                    (Some(s), _) if !s.is_empty() => v.push(ready(
                        self.secret_source(client.as_deref(), s),
                        CredentialSource::ServicePrincipal,
                    )),
                    (_, Some(path)) => {
                        let pw = a.client_certificate_password.clone();
                        v.push(ready(
                            self.certificate_source(client.as_deref(), path, pw.as_ref()),
                            CredentialSource::Certificate,
                        ))
                    }
                    _ => v.push(Candidate::Skipped(
                        CredentialSource::ServicePrincipal,
                        "no AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH".into(),
                    )),
                }
                // 2. Workload identity.
                match &a.federated_token_file {
                    Some(file) => v.push(ready(
                        self.workload_source(client.as_deref(), file),
                        CredentialSource::WorkloadIdentity,
                    )),
                    None => v.push(Candidate::Skipped(
                        CredentialSource::WorkloadIdentity,
                        "no AZURE_FEDERATED_TOKEN_FILE".into(),
                    )),
                }
                // 3. The cloud config, when one was given.
                if self.config.is_some() {
                    match self.cloud_config_source() {
                        Ok(s) => v.push(Candidate::Ready(Box::new(s))),
                        Err(e @ AuthError::Missing { .. }) => v.push(Candidate::Skipped(
                            CredentialSource::ServicePrincipal,
                            format!("cloud config: {e}"),
                        )),
                        Err(e) => v.push(Candidate::Failed(CredentialSource::ServicePrincipal, e)),
                    }
                }
                // 4. Managed identity. Like DefaultAzureCredential, a client id without any
                // other credential names a user-assigned identity.
                let mi_id = self.flag_identity().or_else(|| {
                    (a.client_secret.is_none()
                        && a.client_certificate.is_none()
                        && a.federated_token_file.is_none())
                    .then(|| client.clone().map(UserAssigned::ClientId))
                    .flatten()
                });
                v.push(ready(
                    self.managed_identity_source(mi_id),
                    CredentialSource::ManagedIdentity,
                ));
                // 5. Azure CLI.
                v.push(Candidate::Ready(Box::new(self.cli_source())));
                v
            }
        })
    }
}

/// An http:// (or https://) URL for managed identity endpoints, which are plain HTTP.
fn parse_plain_url(what: &str, raw: &str) -> Result<Url, AuthError> {
    let u = Url::parse(raw.trim()).map_err(|e| AuthError::Invalid {
        what: format!("{what} {raw:?} ({e})"),
        fix: "give an absolute http:// URL".into(),
    })?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(AuthError::Invalid {
            what: format!("{what} {raw:?}"),
            fix: "give an absolute http:// URL".into(),
        });
    }
    Ok(u)
}

/// Picks the credential source (`--auth`), obtains a first token, and returns the credential
/// with everything the rest of azaudit needs. See the module documentation for the order of
/// `--auth auto`.
pub async fn authenticate(
    args: &AuthArgs,
    cloud_config: Option<&CloudConfig>,
) -> Result<Authenticated, AuthError> {
    let http = crate::http::client(&crate::http::extra_ca_files(&args.ca_files), None).map_err(|e| {
        AuthError::CaFile {
            detail: format!("{e:#}"),
        }
    })?;
    let choice = cloud::resolve(args, cloud_config, &http).await?;
    let cloud = choice.cloud;
    // In loopback-only mode a cloud that points anywhere else is a test that forgot an
    // override: stop before anything is sent.
    guard::check(&cloud.authority_host, args.loopback_only)?;
    guard::check(&cloud.arm_endpoint, args.loopback_only)?;
    let clients = Clients {
        https: http.clone(),
        managed_identity: managed_identity::client()?,
        loopback_only: args.loopback_only,
    };
    let mut planner = Planner {
        args,
        config: cloud_config,
        cloud: &cloud,
        warnings: Vec::new(),
    };
    let candidates = planner.candidates()?;
    // Every warning comes from building the sources.
    let warnings = planner.warnings;
    let forced = args.auth != AuthMethod::Auto;
    let scope = cloud.scope();
    let mut attempts = Vec::new();
    for c in candidates {
        let source = match c {
            Candidate::Skipped(kind, why) => {
                tracing::debug!(source = %kind, "skipped: {why}");
                attempts.push(Attempt {
                    source: kind,
                    outcome: AttemptOutcome::Skipped,
                    detail: why,
                });
                continue;
            }
            Candidate::Failed(kind, e) => {
                if e.is_fatal() {
                    return Err(e);
                }
                tracing::info!(source = %kind, "cannot be used: {e}");
                attempts.push(Attempt {
                    source: kind,
                    outcome: AttemptOutcome::Failed,
                    detail: e.to_string(),
                });
                continue;
            }
            Candidate::Ready(s) => *s,
        };
        let kind = source.kind();
        let description = source.describe();
        let (tenant, client) = (
            source.tenant().map(str::to_string),
            source.client_id().map(str::to_string),
        );
        let cred = CachingCredential::new(source, clients.clone());
        tracing::debug!(source = %kind, "trying {description}");
        match cred.token(&scope).await {
            Ok(tok) => {
                attempts.push(Attempt {
                    source: kind,
                    outcome: AttemptOutcome::Ok,
                    detail: description.clone(),
                });
                if attempts.iter().any(|a| a.outcome == AttemptOutcome::Failed) {
                    tracing::warn!(
                        "using {kind} after earlier sources failed (run `azaudit doctor` to see why)"
                    );
                }
                let claims = token::claims(&tok.value);
                let claim = |k: &str| {
                    claims
                        .as_ref()
                        .and_then(|c| c.get(k))
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                };
                let identity = IdentityInfo {
                    source: kind,
                    tenant_id: tenant.or_else(|| claim("tid")),
                    // An Azure CLI user token's appid is the CLI's, not the user's.
                    client_id: client.or_else(|| {
                        (kind != CredentialSource::AzureCli)
                            .then(|| claim("appid").or_else(|| claim("azp")))
                            .flatten()
                    }),
                    object_id: claim("oid"),
                    description,
                };
                tracing::info!(source = %kind, "authenticated: {}", identity.description);
                return Ok(Authenticated {
                    credential: Arc::new(cred),
                    cloud,
                    cloud_reason: choice.reason,
                    http,
                    identity,
                    attempts,
                    warnings,
                });
            }
            Err(e) if forced || e.is_fatal() => return Err(e),
            Err(e) => {
                tracing::info!(source = %kind, "failed: {e}");
                attempts.push(Attempt {
                    source: kind,
                    outcome: AttemptOutcome::Failed,
                    detail: e.to_string(),
                });
            }
        }
    }
    Err(AuthError::NoCredential { attempts })
}
