//! Entra ID, managed identity and the principals of the mock.
//!
//! - [`setup`] registers the principals every mock knows (`contributor`, `reader`,
//!   `no-access`, `expired-cert`, `workload`, a system- and a user-assigned managed identity)
//!   plus `world.json`'s `mock.principals`, and writes the credential files clients read
//!   (`client.pem`, `client.pfx`, `expired-client.pem`; all mode 0600).
//! - [`after_bind`] runs once the listeners are bound, when the authority URL (and so the
//!   federated issuer URL) is known: it writes `federated-token`.
//! - [`authority_router`] is Entra ID's token endpoint and discovery documents (`entra.rs`),
//!   [`msi_router`] the IMDS and App Service managed identity endpoints (`msi.rs`).
//!
//! Every URL this module hands out points back at the mock; it must never name or contact a
//! real Entra ID or IMDS endpoint, and it must not decide what a principal may do in ARM
//! (that is `arm.rs`, from `Principal::subscriptions`/`actions`).

pub mod cert;
mod entra;
pub mod jwt;
mod msi;
pub mod principals;

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use ring::signature::RsaKeyPair;
use serde_json::{Value, json};

use crate::config::MockConfig;
use crate::state::{MockState, Principal, PrincipalKind};
use crate::tokens::now_unix;

pub use principals::{TOKEN_EXCHANGE_AUDIENCE, WORKLOAD_SUBJECT};

/// The mock's own OIDC issuer for federated (workload identity) assertions: the part of an
/// AKS cluster's `--service-account-issuer` that Entra ID trusts through a federated credential.
pub struct Issuer {
    key: RsaKeyPair,
    public_pkcs1: Vec<u8>,
    kid: String,
    jwk: Value,
}

/// State the token endpoints keep. `Default` is an identity module with no federated issuer
/// and no App Service header (every federated assertion and App Service request is refused),
/// for code that builds a [`MockState`] by hand.
#[derive(Default)]
pub struct IdentityState {
    issuer: Option<Issuer>,
    /// The secret App Service hands its apps in `IDENTITY_HEADER`; requests to `/msi/token`
    /// must echo it in `X-IDENTITY-HEADER`.
    pub identity_header: String,
    /// Start of validity of the registered certificates, by `x5t` (for AADSTS700027's
    /// "Found key 'Start=..., End=...'"; `RegisteredCert` keeps only the end).
    cert_not_before: Vec<(String, i64)>,
}

impl IdentityState {
    /// The issuer's public key as a JWK, when there is an issuer.
    pub fn issuer_jwk(&self) -> Option<&Value> {
        self.issuer.as_ref().map(|i| &i.jwk)
    }

    pub(crate) fn cert_not_before(&self, x5t: &str) -> Option<i64> {
        self.cert_not_before
            .iter()
            .find(|(t, _)| t == x5t)
            .map(|(_, n)| *n)
    }
}

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

/// [`setup_for_world`] without subscriptions (the user-assigned identity then lives in the nil
/// subscription).
pub fn setup(config: &MockConfig, tenant_id: &str, files_dir: &Path) -> anyhow::Result<IdentitySetup> {
    setup_for_world(config, tenant_id, files_dir, &[])
}

/// Registers the principals and writes the credential files into `files_dir`.
pub fn setup_for_world(
    config: &MockConfig,
    tenant_id: &str,
    files_dir: &Path,
    subscription_ids: &[String],
) -> anyhow::Result<IdentitySetup> {
    let now = now_unix();
    const DAY: i64 = 86_400;
    // Three RSA-2048 keys: generating them is the slow part of starting a mock, so do it on
    // two threads (the machines this runs on have two cores).
    let (contributor, expired, issuer_key) = std::thread::scope(|s| {
        let contributor =
            s.spawn(|| cert::self_signed("azaudit-mock contributor", now - DAY, now + 365 * DAY));
        let expired = s.spawn(|| {
            // Expired yesterday: Entra ID refuses assertions signed with it (AADSTS700027).
            cert::self_signed("azaudit-mock expired-cert", now - 30 * DAY, now - DAY)
        });
        let issuer = cert::RsaKey::generate();
        (
            contributor.join().expect("key generation thread"),
            expired.join().expect("key generation thread"),
            issuer,
        )
    });
    let (contributor, expired, issuer_key) = (contributor?, expired?, issuer_key?);

    let mut principals = principals::builtin(
        tenant_id,
        subscription_ids,
        principals::BuiltinCerts {
            contributor: contributor.registered.clone(),
            expired: expired.registered.clone(),
        },
    );
    principals.extend(config.principals.iter().map(crate::state::principal_from_config));

    std::fs::create_dir_all(files_dir).with_context(|| format!("create {}", files_dir.display()))?;
    let client_pem = files_dir.join("client.pem");
    write_private(&client_pem, contributor.combined_pem().as_bytes())?;
    let expired_pem = files_dir.join("expired-client.pem");
    write_private(&expired_pem, expired.combined_pem().as_bytes())?;
    let pfx_password = principals::random_secret();
    let client_pfx = files_dir.join("client.pfx");
    write_private(
        &client_pfx,
        &contributor.pfx(&pfx_password, "azaudit-mock contributor")?,
    )?;

    let issuer = Issuer {
        key: RsaKeyPair::from_pkcs8(&issuer_key.pkcs8_der).map_err(|e| anyhow::anyhow!("issuer key: {e}"))?,
        public_pkcs1: issuer_key.public_pkcs1_der.clone(),
        kid: issuer_key.kid(),
        jwk: issuer_key.jwk(&issuer_key.kid()),
    };
    let identity_header = principals::random_guid();

    let by_label = |label: &str| {
        principals
            .iter()
            .find(|p| p.label == label)
            .expect("built-in principal is registered")
    };
    let contributor_p = by_label(principals::CONTRIBUTOR);
    let user_assigned = by_label(principals::USER_ASSIGNED);
    let system_assigned = by_label(principals::SYSTEM_ASSIGNED);
    let workload = by_label(principals::WORKLOAD);

    let client_pem_s = path_string(&client_pem);
    let expired_pem_s = path_string(&expired_pem);
    let described: Vec<Value> = principals
        .iter()
        .map(|p| {
            let cert = match p.label.as_str() {
                principals::CONTRIBUTOR => Some(client_pem_s.as_str()),
                principals::EXPIRED_CERT => Some(expired_pem_s.as_str()),
                _ => None,
            };
            principals::describe(p, cert)
        })
        .collect();
    let ua_resource_id = match &user_assigned.kind {
        PrincipalKind::UserAssigned { resource_id } => resource_id.clone(),
        _ => String::new(),
    };
    let mut extra = serde_json::Map::new();
    extra.insert("principals".into(), Value::Array(described));
    extra.insert(
        "user_assigned_identity".into(),
        json!({
            "client_id": user_assigned.client_id,
            "object_id": user_assigned.object_id,
            "resource_id": ua_resource_id,
        }),
    );
    extra.insert(
        "system_assigned_object_id".into(),
        json!(system_assigned.object_id),
    );
    extra.insert(
        "system_assigned_client_id".into(),
        json!(system_assigned.client_id),
    );
    extra.insert("workload_identity_client_id".into(), json!(workload.client_id));
    extra.insert("workload_identity_subject".into(), json!(WORKLOAD_SUBJECT));
    extra.insert("client_certificate_pfx".into(), json!(path_string(&client_pfx)));
    extra.insert("client_certificate_password".into(), json!(pfx_password));
    extra.insert("expired_client_certificate".into(), json!(expired_pem_s));

    let files = IdentityFiles {
        client_id: contributor_p.client_id.clone(),
        client_secret: contributor_p.client_secret.clone().unwrap_or_default(),
        client_certificate: client_pem,
        identity_header: identity_header.clone(),
        federated_token_file: files_dir.join("federated-token"),
        extra,
    };
    Ok(IdentitySetup {
        principals,
        state: IdentityState {
            issuer: Some(issuer),
            identity_header,
            cert_not_before: vec![
                (contributor.registered.x5t.clone(), contributor.not_before),
                (expired.registered.x5t.clone(), expired.not_before),
            ],
        },
        files,
    })
}

/// Finishes what needs the bound endpoints: the federated issuer URL goes into the ready file
/// and a 1-hour service-account token for `workload` into `federated-token` (what the AKS
/// workload identity webhook mounts at `AZURE_FEDERATED_TOKEN_FILE`).
pub fn after_bind(state: &MockState, files: &mut IdentityFiles) -> anyhow::Result<()> {
    files
        .extra
        .insert("oidc_issuer".into(), json!(oidc_issuer(state)));
    if state.identity.issuer.is_some() {
        let token = mint_federated_token(state, WORKLOAD_SUBJECT, 3600);
        write_private(&files.federated_token_file, token.as_bytes())?;
    }
    Ok(())
}

/// The mock's OIDC issuer URL: `<authority>/federated`.
pub fn oidc_issuer(state: &MockState) -> String {
    format!(
        "{}/federated",
        state.endpoints.read().expect("endpoints lock").authority
    )
}

/// A service-account token from the mock's OIDC issuer for `subject`, with audience
/// `api://AzureADTokenExchange`, valid for `lifetime_secs` from now (a negative lifetime gives
/// a token that expired that many seconds ago). With no issuer (a hand-built state) the token
/// carries an empty signature, which the token endpoint refuses.
pub fn mint_federated_token(state: &MockState, subject: &str, lifetime_secs: i64) -> String {
    let now = now_unix();
    let exp = now + lifetime_secs;
    let iat = if lifetime_secs > 0 { now } else { exp - 3600 };
    // Kubernetes puts the namespace and service account in a private claim as well as `sub`.
    let (namespace, name) = subject
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
        .unwrap_or(("", ""));
    let claims = json!({
        "aud": [TOKEN_EXCHANGE_AUDIENCE],
        "exp": exp,
        "iat": iat,
        "nbf": iat,
        "iss": oidc_issuer(state),
        "sub": subject,
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": principals::derived_guid(subject)},
        },
    });
    match &state.identity.issuer {
        Some(i) => jwt::sign_rs256(&i.key, &json!({"alg": "RS256", "kid": i.kid}), &claims),
        None => {
            use base64::Engine;
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!(
                "{}.{}.",
                b.encode(br#"{"alg":"RS256"}"#),
                b.encode(claims.to_string())
            )
        }
    }
}

pub fn authority_router(state: Arc<MockState>) -> Router {
    entra::router(state)
}

pub fn msi_router(state: Arc<MockState>) -> Router {
    msi::router(state)
}

/// Lifetime of issued access tokens: the `short_tokens` fault's when present, else
/// `token_lifetime_seconds`. Counts the fault when it applies.
pub(crate) fn token_lifetime(state: &MockState) -> u64 {
    let short = state.config.faults.iter().find_map(|f| match f {
        crate::config::Fault::ShortTokens { seconds } => Some(*seconds),
        _ => None,
    });
    match short {
        Some(s) => {
            *state
                .stats
                .lock()
                .expect("stats lock")
                .faults_injected
                .entry("short_tokens".into())
                .or_default() += 1;
            s
        }
        None => state.config.token_lifetime_seconds,
    }
}

/// ARM audiences a token may be requested for, without trailing slash, lower case: public
/// cloud (`management.azure.com` as in the cloud-provider-azure environment,
/// `management.core.windows.net` as azcore), China and US Gov (domain.md §7.5), and AKS's
/// Entra server application (kubelogin asks for `6dae42f8-.../.default`) so that a Kubernetes
/// mock can use Entra tokens. The mock's own ARM URL is added at request time.
const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://management.chinacloudapi.cn",
    "https://management.core.chinacloudapi.cn",
    "https://management.usgovcloudapi.net",
    "https://management.core.usgovcloudapi.net",
    "6dae42f8-4368-4678-94ff-3960e28e3630",
];

/// Whether `resource` (a scope without `/.default`, or an IMDS `resource`) is an audience the
/// mock issues tokens for. Trailing slashes and case are ignored, as Entra ID does.
pub(crate) fn known_audience(state: &MockState, resource: &str) -> bool {
    let r = resource.trim().trim_end_matches('/').to_ascii_lowercase();
    if ARM_AUDIENCES.contains(&r.as_str()) {
        return true;
    }
    let arm = state.endpoints.read().expect("endpoints lock").arm.clone();
    !arm.is_empty() && arm.trim_end_matches('/').eq_ignore_ascii_case(&r)
}

/// Issues an access token for `principal` and audience `aud`; returns it with its lifetime
/// and the issue time.
pub(crate) fn issue_access_token(
    state: &MockState,
    principal: &Principal,
    aud: &str,
    idtyp: &str,
) -> (String, u64, i64) {
    let lifetime = token_lifetime(state);
    let now = now_unix();
    let authority = state.endpoints.read().expect("endpoints lock").authority.clone();
    let claims = crate::tokens::Claims {
        aud: aud.to_string(),
        iss: format!("{authority}/{}/v2.0", state.tenant_id),
        tid: state.tenant_id.clone(),
        oid: principal.object_id.clone(),
        appid: principal.client_id.clone(),
        iat: now,
        nbf: now,
        exp: now + lifetime as i64,
        idtyp: idtyp.to_string(),
    };
    (state.signer.issue(&claims), lifetime, now)
}

/// Writes a credential file readable by its owner only (mode 0600), replacing any previous
/// one atomically so a reader never sees half a key.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    // The mode of `open` is masked by the umask and ignored for an existing file: set it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
