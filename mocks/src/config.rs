//! The mock's knobs: `world.json`'s `mock` section, overridden by command-line flags.
//!
//! Everything has a default that behaves like Azure (page size aside: ARM's real page sizes vary
//! by resource type, so tests choose small pages to exercise paging).

use serde::{Deserialize, Serialize};

/// `world.json` → `mock`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MockConfig {
    /// Items per ARM list page (and default Kubernetes page when the client gives no `limit`).
    pub page_size: usize,
    /// Fixed latency added to every ARM and Kubernetes response, in milliseconds.
    pub latency_ms: u64,
    /// Random extra latency, uniformly 0..=jitter_ms.
    pub jitter_ms: u64,
    pub throttle: ThrottleConfig,
    pub faults: Vec<Fault>,
    /// Lifetime of issued access tokens, in seconds (Entra ID issues 3599–5399).
    pub token_lifetime_seconds: u64,
    /// Extra principals besides the ones the mock always registers (see `principals.rs`).
    pub principals: Vec<PrincipalConfig>,
    /// Seed for jitter and fault rates, so a run is repeatable.
    pub seed: u64,
    /// Management locks (issue 7): writes the lock covers are refused with 409 `ScopeLocked`.
    pub locks: Vec<LockConfig>,
    /// How PUT and DELETE behave (long-running operations).
    pub writes: WritesConfig,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            page_size: 50,
            latency_ms: 0,
            jitter_ms: 0,
            throttle: ThrottleConfig::default(),
            faults: Vec::new(),
            token_lifetime_seconds: 3599,
            principals: Vec::new(),
            seed: 1,
            locks: Vec::new(),
            writes: WritesConfig::default(),
        }
    }
}

/// A management lock on a scope: a resource id, a resource group or a subscription; it covers
/// that scope and everything under it. A bare string is a `ReadOnly` lock (no write, no delete);
/// `{"scope": ..., "level": "CanNotDelete"}` only refuses deletes (Azure's two lock levels,
/// https://learn.microsoft.com/azure/azure-resource-manager/management/lock-resources).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum LockConfig {
    ReadOnly(String),
    Level { scope: String, level: LockLevel },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum LockLevel {
    CanNotDelete,
    ReadOnly,
}

impl LockConfig {
    pub fn scope(&self) -> &str {
        match self {
            LockConfig::ReadOnly(s) | LockConfig::Level { scope: s, .. } => s,
        }
    }

    pub fn level(&self) -> LockLevel {
        match self {
            LockConfig::ReadOnly(_) => LockLevel::ReadOnly,
            LockConfig::Level { level, .. } => *level,
        }
    }
}

/// Long-running writes: PUT answers 200/201 and DELETE 202, each with an `Azure-AsyncOperation`
/// URL (DELETE also `Location`) that reports `InProgress` this many times before `Succeeded`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WritesConfig {
    /// Polls answered `InProgress` before the operation completes (0: the first poll completes it).
    pub async_polls: u32,
    /// `Retry-After` seconds on the write and on in-progress polls; 0 sends none.
    pub retry_after_seconds: u64,
}

impl Default for WritesConfig {
    fn default() -> Self {
        WritesConfig {
            async_polls: 1,
            retry_after_seconds: 1,
        }
    }
}

/// ARM's token buckets (`domain.md` §5.1): per subscription, per principal, per operation kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Read bucket capacity (Azure: 250). 0 disables read throttling.
    pub reads_bucket: u32,
    /// Read refill per second (Azure: 25).
    pub reads_per_second: f64,
    /// Write bucket (Azure: 200 / 10 per second).
    pub writes_bucket: u32,
    pub writes_per_second: f64,
    /// Compute "HighCostGet" bucket for VM / VMSS lists (Azure: VM list 900, refill 300/min).
    /// 0 disables it.
    pub compute_high_cost_bucket: u32,
    pub compute_high_cost_per_second: f64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            reads_bucket: 250,
            reads_per_second: 25.0,
            writes_bucket: 200,
            writes_per_second: 10.0,
            compute_high_cost_bucket: 900,
            compute_high_cost_per_second: 5.0,
        }
    }
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaultScope {
    /// Substring of the request path (case-insensitive); empty matches every ARM request.
    pub path_contains: String,
}

/// One fault to inject into ARM responses (and, where it says so, the token endpoint).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answer `status` (5xx) instead of the real response: for a fraction `rate` of matching
    /// requests, and/or exactly at the `nth` matching request (1-based), and/or for the first
    /// `first` matching requests.
    Status {
        status: u16,
        #[serde(default)]
        rate: f64,
        #[serde(default)]
        nth: Option<u64>,
        #[serde(default)]
        first: Option<u64>,
        #[serde(default, flatten)]
        scope: FaultScope,
    },
    /// Answer 429 with `Retry-After: retry_after_seconds` to `count` matching requests starting
    /// at the `start`-th (1-based), regardless of the bucket.
    Burst429 {
        count: u64,
        #[serde(default = "one")]
        start: u64,
        #[serde(default = "one")]
        retry_after_seconds: u64,
        #[serde(default, flatten)]
        scope: FaultScope,
    },
    /// A 200 whose body is not JSON, at the `nth` matching request (every one when `nth` is absent).
    MalformedJson {
        #[serde(default)]
        nth: Option<u64>,
        #[serde(default, flatten)]
        scope: FaultScope,
    },
    /// A 200 whose body is cut in the middle, at the `nth` matching request (every one when absent).
    TruncatedJson {
        #[serde(default)]
        nth: Option<u64>,
        #[serde(default, flatten)]
        scope: FaultScope,
    },
    /// List pages carry a `nextLink` to another host (`https://127.0.0.2:<port>/...`).
    ForeignNextLink {
        #[serde(default, flatten)]
        scope: FaultScope,
    },
    /// The last page's `nextLink` points back at the first page.
    NextLinkLoop {
        #[serde(default, flatten)]
        scope: FaultScope,
    },
    /// The body is sent in small chunks over `millis` milliseconds.
    SlowBody {
        millis: u64,
        #[serde(default, flatten)]
        scope: FaultScope,
    },
    /// Issued tokens expire after `seconds` (overrides `token_lifetime_seconds`).
    ShortTokens { seconds: u64 },
}

fn one() -> u64 {
    1
}

/// A principal the token endpoint knows, with what ARM lets it do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PrincipalConfig {
    /// Application (client) id.
    pub client_id: String,
    /// Object id; generated when empty.
    pub object_id: String,
    /// Client secret; `None` means the secret grant is refused.
    pub client_secret: Option<String>,
    /// Subscriptions it can read; `["*"]` means all.
    pub subscriptions: Vec<String>,
    /// Actions it holds (returned by `Microsoft.Authorization/permissions`), e.g. `["*/read"]`
    /// for Reader or `["*"]` for Contributor.
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
}

impl Default for PrincipalConfig {
    fn default() -> Self {
        PrincipalConfig {
            client_id: String::new(),
            object_id: String::new(),
            client_secret: None,
            subscriptions: vec!["*".into()],
            actions: vec!["*/read".into()],
            not_actions: Vec::new(),
        }
    }
}

impl MockConfig {
    /// Reads the `mock` section of `world.json` (absent = defaults). Unknown keys are errors, so a
    /// typo in a test world fails loudly instead of silently testing nothing.
    pub fn from_world_meta(v: Option<&serde_json::Value>) -> Result<MockConfig, String> {
        match v {
            None => Ok(MockConfig::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("world.json mock section: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_faults_and_rejects_typos() {
        let c = MockConfig::from_world_meta(Some(&json!({
            "page_size": 7,
            "faults": [
                {"kind": "status", "status": 503, "nth": 3, "path_contains": "loadBalancers"},
                {"kind": "burst429", "count": 5},
                {"kind": "short_tokens", "seconds": 2}
            ]
        })))
        .unwrap();
        assert_eq!(c.page_size, 7);
        assert_eq!(c.faults.len(), 3);
        assert_eq!(c.throttle.reads_bucket, 250);
        assert!(MockConfig::from_world_meta(Some(&json!({"page_sise": 7}))).is_err());
    }
}
