//! ARM access: every request azaudit sends to Azure Resource Manager goes through here (issue 4).
//!
//! One [`ArmClient`] per run. Requests travel through an `azure_core` [`Pipeline`] with our own
//! policies, in this order:
//!
//! 1. host guard (`policy::HostGuardPolicy`): only the configured ARM endpoint
//!    (scheme, host and port) is ever contacted;
//! 2. retry (`policy::RetryPolicy`): 429 and 503-with-Retry-After wait as long as ARM says
//!    (no attempt cap, only the overall `--timeout`), other 5xx / timeouts / broken bodies back
//!    off exponentially with full jitter for a bounded number of attempts, a 401 refreshes the
//!    token once; every retry is counted;
//! 3. rate limit (`policy::RateLimitPolicy` over `pacing::Pacer`): `governor` per
//!    subscription (`--max-rps`), ARM's remaining-reads header for adaptive slow-down, the
//!    per-subscription Retry-After gate, and the concurrency semaphore (`--concurrency`);
//! 4. counters (`policy::CountersPolicy`): 429s and the lowest remaining read budget;
//! 5. the bearer transport (`policy::BearerTransport`): checks the host again, attaches the
//!    token and sends with our `reqwest` client.
//!
//! Paging (`nextLink` host guard and loop detection) and the on-disk cache (`cache`) sit in
//! [`ArmClient::list`] / [`ArmClient::get`]. Pages stay raw JSON; `inventory::convert` reads them.
//!
//! What this module must not do: let a bearer token reach any other host, log or cache a token,
//! follow a `nextLink` it has already seen, give up on throttling before the deadline, or turn a
//! failed list into an empty one (a failure is an [`ArmError`] that the collector records as a
//! gap). SDK types (`azure_core`) never leave this module.
//!
//! [`Pipeline`]: azure_core::Pipeline

mod args;
mod cache;
mod client;
mod counters;
mod error;
mod pacing;
mod policy;
mod retry;
mod write;

use std::path::PathBuf;
use std::time::Duration;

pub use args::{ArmArgs, format_duration, parse_duration};
pub use cache::default_cache_dir;
pub use client::{ArmClient, ListOutcome};
pub use error::ArmError;
pub use write::{WriteMethod, WriteOutcome};

/// Default `--max-rps`: 10 requests per second per subscription, well below the 25 reads per
/// second that ARM refills per subscription and principal (domain.md §5.1, "request limits and
/// throttling"), so a nightly audit never competes with the cluster's own cloud provider.
pub const DEFAULT_MAX_RPS: f64 = 10.0;
/// Default overall deadline (`--timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default [`ArmOptions::compute_hold`]: the slowest refill Compute documents for the policies
/// an audit draws on is 10–12 per minute per scale set (domain.md §5.1), one every 5–6 s.
pub const DEFAULT_COMPUTE_HOLD: Duration = Duration::from_secs(6);
/// Default `--concurrency`: requests in flight at once, across all subscriptions and lists.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default attempts for 5xx, timeouts and broken bodies (the first try included). The same
/// number as cloud-provider-azure's `cloudProviderBackoffRetries` default of 6 (domain.md §5.1).
pub const DEFAULT_MAX_ATTEMPTS_5XX: u32 = 6;
/// Default `--cache-ttl`: long enough that a rerun after a partial run or a changed flag costs
/// no ARM reads, short enough that a nightly audit never reads last night's data.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(10 * 60);
/// Default `--max-writes-per-second` (cleanup): one write or delete per second per subscription.
/// ARM refills 10 writes and 10 deletes per second per subscription and principal (domain.md
/// §5.1) and the Network RP allows 1,000 writes per 5 minutes per region (3.3/s); cleanup is
/// never urgent, so it leaves nearly all of that to the cluster's own cloud provider.
pub const DEFAULT_MAX_WRITES_PER_SECOND: f64 = 1.0;
/// How long to wait between polls of a long-running operation when ARM sends no `Retry-After`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// How the client treats ARM. Built from [`ArmArgs::options`] on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmOptions {
    /// Most requests per second per subscription (the sustained rate; see `pacing`).
    pub max_rps: f64,
    /// Overall deadline for everything this client does, counted from [`ArmClient::new`].
    pub timeout: Duration,
    /// Most requests in flight at once, across subscriptions and lists.
    pub concurrency: usize,
    pub cache: CacheOptions,
    /// Attempts (first try included) for 5xx answers, timeouts and truncated/malformed bodies.
    pub max_attempts_5xx: u32,
    /// Most writes (PUT, DELETE) per second per subscription, on their own limiter.
    pub max_writes_per_second: f64,
    /// Wait between polls of a long-running operation when ARM gives no `Retry-After`.
    pub poll_interval: Duration,
    /// When Compute reports a policy of a subscription near empty
    /// (`x-ms-ratelimit-remaining-resource`), at most one Compute request per this long.
    pub compute_hold: Duration,
}

impl Default for ArmOptions {
    fn default() -> Self {
        ArmOptions {
            max_rps: DEFAULT_MAX_RPS,
            timeout: DEFAULT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            cache: CacheOptions::default(),
            max_attempts_5xx: DEFAULT_MAX_ATTEMPTS_5XX,
            max_writes_per_second: DEFAULT_MAX_WRITES_PER_SECOND,
            poll_interval: DEFAULT_POLL_INTERVAL,
            compute_hold: DEFAULT_COMPUTE_HOLD,
        }
    }
}

/// The on-disk response cache (`--cache-dir`, `--cache-ttl`, `--no-cache`, `--refresh`).
#[derive(Debug, Clone, PartialEq)]
pub struct CacheOptions {
    /// `None`: `$XDG_CACHE_HOME/azaudit`, else `~/.cache/azaudit` ([`default_cache_dir`]).
    pub dir: Option<PathBuf>,
    /// Entries older than this are not used.
    pub ttl: Duration,
    /// `false` (`--no-cache`): the cache is neither read nor written.
    pub enabled: bool,
    /// `true` (`--refresh`): the cache is not read, but every response is written.
    pub refresh: bool,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            dir: None,
            ttl: DEFAULT_CACHE_TTL,
            enabled: true,
            refresh: false,
        }
    }
}

impl CacheOptions {
    /// No cache at all (`--no-cache`).
    pub fn disabled() -> CacheOptions {
        CacheOptions {
            enabled: false,
            ..CacheOptions::default()
        }
    }

    /// A cache in `dir` with the default TTL.
    pub fn in_dir(dir: impl Into<PathBuf>) -> CacheOptions {
        CacheOptions {
            dir: Some(dir.into()),
            ..CacheOptions::default()
        }
    }
}

/// Whose view of ARM a cached response is: the same URL answers differently for another tenant
/// or principal (RBAC), so both are part of every cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheScope {
    pub tenant: String,
    /// The principal's object id (or client id when the object id is unknown).
    pub principal: String,
}
