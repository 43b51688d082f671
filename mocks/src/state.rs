//! The mock's shared state: the world it serves, the principals it knows, counters, buckets.

use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};

use azaudit_world::World;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::config::MockConfig;
use crate::tokens::TokenSigner;

/// A certificate registered for a service principal (client assertion flow).
#[derive(Debug, Clone)]
pub struct RegisteredCert {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The RSA public key as PKCS#1 `RSAPublicKey` DER (what `ring` verifies with).
    pub rsa_public_key_pkcs1: Vec<u8>,
    /// base64url SHA-1 of the DER (`x5t`).
    pub x5t: String,
    /// base64url SHA-256 of the DER (`x5t#S256`).
    pub x5t_s256: String,
    /// Unix seconds after which the certificate is expired.
    pub not_after: i64,
}

/// What kind of identity a principal is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// App registration / service principal (secret, certificate and/or federated credential).
    ServicePrincipal,
    /// System-assigned managed identity of the "VM" the mock pretends to be.
    SystemAssigned,
    /// User-assigned managed identity with this ARM resource id.
    UserAssigned { resource_id: String },
}

/// A principal the mock authenticates.
#[derive(Debug, Clone)]
pub struct Principal {
    /// A short label for stats and the ready file: `contributor`, `reader`, `no-access`, ...
    pub label: String,
    pub kind: PrincipalKind,
    pub client_id: String,
    pub object_id: String,
    pub client_secret: Option<String>,
    pub certificate: Option<RegisteredCert>,
    /// Accepts federated (workload identity) assertions signed by the mock's issuer.
    pub federated: bool,
    /// Subscriptions it may read (`*` = all, compared case-insensitively).
    pub subscriptions: Vec<String>,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
}

impl Principal {
    pub fn can_access(&self, subscription: &str) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s == "*" || s.eq_ignore_ascii_case(subscription))
    }
}

/// Where each part of the mock listens, known once bound.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Endpoints {
    /// `https://127.0.0.1:P` (no trailing slash): ARM and the admin endpoint.
    pub arm: String,
    /// `https://127.0.0.1:Q`: Entra ID (authority host).
    pub authority: String,
    /// `http://127.0.0.1:R`: IMDS and the App Service identity endpoint.
    pub msi: String,
    /// `https://127.0.0.2:P`: the same ARM listener seen through another loopback address, used
    /// as the "foreign host" of the foreign-nextLink fault. Requests that arrive there are
    /// counted as leaks in the stats.
    pub foreign: String,
    /// Per cluster: `https://127.0.0.1:K`.
    pub k8s: BTreeMap<String, String>,
}

/// Request counters, reset by `/_mock/reset`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Every ARM request that reached a handler (including refused ones).
    pub arm_requests: u64,
    /// ARM requests by route label (e.g. `list loadBalancers`).
    pub arm_by_route: BTreeMap<String, u64>,
    /// ARM requests by principal label.
    pub arm_by_principal: BTreeMap<String, u64>,
    /// 429s sent (bucket empty or injected burst).
    pub throttled_429: u64,
    /// 429s sent to requests that arrived before the Retry-After of an earlier 429 had passed.
    pub throttled_429_early_retries: u64,
    /// Faults injected, by kind.
    pub faults_injected: BTreeMap<String, u64>,
    /// Token endpoint requests and failures.
    pub token_requests: u64,
    pub token_failures: u64,
    /// Managed identity endpoint requests.
    pub msi_requests: u64,
    /// Kubernetes API requests by cluster.
    pub k8s_requests: BTreeMap<String, u64>,
    /// Requests that arrived at the foreign host (a client followed a foreign nextLink).
    pub foreign_host_requests: u64,
    /// Bearer tokens seen at the foreign host (should always be 0).
    pub foreign_host_bearer_tokens: u64,
    /// Lowest remaining-reads value sent, per subscription.
    pub lowest_remaining_reads: BTreeMap<String, u64>,
    /// ARM writes (issue 7): method, id, status.
    pub writes: Vec<WriteRecord>,
}

/// One PUT or DELETE as the mock answered it (`/_mock/stats` → `writes`), in arrival order.
#[derive(Debug, Clone, Serialize)]
pub struct WriteRecord {
    pub method: String,
    pub id: String,
    pub status: u16,
    pub principal: String,
    /// ARM's error code when the write was refused (`PreconditionFailed`, `ScopeLocked`, ...).
    pub code: Option<String>,
    /// The `If-Match` header the client sent.
    pub if_match: Option<String>,
    /// The resource's ETag before and after (after: `None` for deletes and refusals).
    pub etag_before: Option<String>,
    pub etag_after: Option<String>,
    /// The long-running operation that completes the write.
    pub operation: Option<String>,
}

/// Everything the handlers share.
pub struct MockState {
    pub config: MockConfig,
    pub tenant_id: String,
    /// The served world; writes (cleanup) change it.
    pub world: RwLock<World>,
    pub principals: Vec<Principal>,
    pub signer: TokenSigner,
    pub stats: Mutex<Stats>,
    pub endpoints: RwLock<Endpoints>,
    pub rng: Mutex<ChaCha8Rng>,
    /// Kubernetes bearer tokens, per cluster.
    pub k8s_tokens: BTreeMap<String, String>,
    /// The token-endpoint state that the identity module keeps (federated issuer key etc.).
    pub identity: crate::identity::IdentityState,
    /// Throttle buckets and fault counters.
    pub throttle: Mutex<crate::throttle::Throttle>,
    pub faults: Mutex<crate::faults::FaultCounters>,
    /// Long-running write operations (`Azure-AsyncOperation` / `Location` polling).
    pub operations: Mutex<crate::arm::Operations>,
}

impl MockState {
    pub fn principal_by_client_id(&self, client_id: &str) -> Option<&Principal> {
        self.principals
            .iter()
            .find(|p| p.client_id.eq_ignore_ascii_case(client_id))
    }

    pub fn principal_by_object_id(&self, object_id: &str) -> Option<&Principal> {
        self.principals
            .iter()
            .find(|p| p.object_id.eq_ignore_ascii_case(object_id))
    }

    pub fn new_rng(seed: u64) -> Mutex<ChaCha8Rng> {
        Mutex::new(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Resets counters, buckets and fault counters (not the world).
    pub fn reset(&self) {
        *self.stats.lock().expect("stats lock") = Stats::default();
        self.throttle.lock().expect("throttle lock").reset();
        *self.faults.lock().expect("faults lock") = crate::faults::FaultCounters::default();
    }
}

/// A principal described in `world.json` (`mock.principals`). Object ids default to one derived
/// from the client id, so a world file stays short.
pub fn principal_from_config(c: &crate::config::PrincipalConfig) -> Principal {
    let object_id = if c.object_id.is_empty() {
        format!(
            "00000000-0000-0000-0000-{:0>12}",
            c.client_id.replace('-', "").chars().take(12).collect::<String>()
        )
    } else {
        c.object_id.clone()
    };
    Principal {
        label: format!("config:{}", c.client_id),
        kind: PrincipalKind::ServicePrincipal,
        client_id: c.client_id.clone(),
        object_id,
        client_secret: c.client_secret.clone(),
        certificate: None,
        federated: false,
        subscriptions: c.subscriptions.clone(),
        actions: c.actions.clone(),
        not_actions: c.not_actions.clone(),
    }
}
