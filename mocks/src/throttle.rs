//! ARM's request throttling, as token buckets (`domain.md` §5.1).
//!
//! What it models:
//! - ARM's buckets since the 2024 migration: "Subscription limits apply per subscription, per
//!   service principal, and per operation type", reads 250 with a refill of 25 per second
//!   (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
//!   Requests that carry no subscription (`/subscriptions`, `/tenants`) draw from the tenant
//!   bucket of the same size.
//! - "Requests sent before [Retry-After] elapses are not processed, and a new value is returned":
//!   every gate remembers until when its last 429 told the client to wait, and refuses (without
//!   consuming a token) anything that arrives earlier.
//! - Compute's "HighCostGet" bucket for VM and VMSS lists, per subscription only (Compute
//!   throttling limits: "High Cost Get VM ... subscription only"), on top of the ARM read bucket.
//!
//! Writes and deletes have their own [`Operation`]s and buckets (sized from `writes_bucket` /
//! `writes_per_second`; Azure's deletes have the same 200 / 10 per second), so the write issue only
//! has to call [`Throttle::admit`] with another operation.
//!
//! It must not sleep, read the clock or touch HTTP: callers pass `now`, so the arithmetic is
//! testable without waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::ThrottleConfig;

/// ARM's operation types, each with its own bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Read,
    Write,
    Delete,
}

impl Operation {
    /// The plural used in ARM's remaining-quota header names (`...-subscription-reads`).
    pub fn header_word(self) -> &'static str {
        match self {
            Operation::Read => "reads",
            Operation::Write => "writes",
            Operation::Delete => "deletes",
        }
    }
}

/// Where a bucket lives: one subscription, or the tenant for requests without one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Tenant,
    /// Lower-cased subscription id (ARM ids are case-insensitive).
    Subscription(String),
}

impl Scope {
    pub fn subscription(id: &str) -> Scope {
        Scope::Subscription(id.to_ascii_lowercase())
    }

    /// ARM's header for the remaining requests of this scope and operation, e.g.
    /// `x-ms-ratelimit-remaining-subscription-reads` (the official header table in §5.1).
    pub fn remaining_header(&self, op: Operation) -> String {
        let scope = match self {
            Scope::Tenant => "tenant",
            Scope::Subscription(_) => "subscription",
        };
        format!("x-ms-ratelimit-remaining-{scope}-{}", op.header_word())
    }
}

/// Which limiter refused a request (they answer with different error bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limiter {
    /// ARM's per-subscription (or tenant), per-principal bucket.
    Arm,
    /// Compute's HighCostGet bucket.
    ComputeHighCost,
}

/// One request to admit.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub scope: &'a Scope,
    /// The principal's object id (buckets are per principal).
    pub principal: &'a str,
    pub op: Operation,
    /// A VM or VMSS list: also draws from Compute's HighCostGet bucket.
    pub high_cost: bool,
}

/// An admitted request and what the quota headers should say. `None` = that limiter is disabled
/// (bucket size 0) or not involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub remaining: Option<u64>,
    pub high_cost_remaining: Option<u64>,
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub by: Limiter,
    /// Whole seconds, at least 1.
    pub retry_after: u64,
    /// Refused because an earlier 429's Retry-After had not elapsed yet.
    pub early: bool,
    /// The ARM bucket's remaining count for the quota header (0 when the ARM bucket refused).
    pub remaining: Option<u64>,
}

/// A classic token bucket with fractional refill.
#[derive(Debug, Clone)]
struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

/// Retry-After is capped so a zero refill rate still gives a finite header.
const MAX_RETRY_AFTER: u64 = 3600;

impl TokenBucket {
    fn new(capacity: u32, per_second: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            capacity: f64::from(capacity),
            per_second: per_second.max(0.0),
            tokens: f64::from(capacity),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        // Concurrent requests may carry slightly older instants; never move time backwards.
        if now > self.last {
            let elapsed = (now - self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
            self.last = now;
        }
    }

    fn remaining(&self) -> u64 {
        // Tokens are never negative; floor gives what a client may still send right now.
        self.tokens.floor() as u64
    }

    /// Whole seconds until one token is available (at least 1, as a Retry-After must be).
    fn wait_for_one(&self) -> u64 {
        let missing = (1.0 - self.tokens).max(0.0);
        if missing == 0.0 {
            return 1;
        }
        if self.per_second <= 0.0 {
            return MAX_RETRY_AFTER;
        }
        ((missing / self.per_second).ceil() as u64).clamp(1, MAX_RETRY_AFTER)
    }

    /// Takes a token, or says how long to wait.
    fn take(&mut self, now: Instant) -> Result<u64, u64> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(self.remaining())
        } else {
            Err(self.wait_for_one())
        }
    }
}

/// A bucket plus the Retry-After promise of its last 429.
#[derive(Debug, Clone)]
struct Gate {
    bucket: TokenBucket,
    blocked_until: Option<Instant>,
}

impl Gate {
    /// Admits or refuses one request at `now`.
    fn pass(&mut self, now: Instant) -> Result<u64, (u64, bool)> {
        if let Some(until) = self.blocked_until
            && now < until
        {
            // Not processed: no token is taken, and the client is told to wait again.
            self.bucket.refill(now);
            let retry = self.bucket.wait_for_one();
            self.blocked_until = Some(now + Duration::from_secs(retry));
            return Err((retry, true));
        }
        match self.bucket.take(now) {
            Ok(rem) => Ok(rem),
            Err(retry) => {
                self.blocked_until = Some(now + Duration::from_secs(retry));
                Err((retry, false))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum GateKey {
    Arm {
        scope: Scope,
        principal: String,
        op: Operation,
    },
    /// Compute limits are per subscription, across principals.
    ComputeHighCost { subscription: String },
}

/// All buckets of the mock, created lazily, full, on first use.
pub struct Throttle {
    config: ThrottleConfig,
    gates: HashMap<GateKey, Gate>,
}

impl Throttle {
    pub fn new(config: &ThrottleConfig) -> Throttle {
        Throttle {
            config: config.clone(),
            gates: HashMap::new(),
        }
    }

    /// Forgets every bucket and pending Retry-After (buckets start full again).
    pub fn reset(&mut self) {
        self.gates.clear();
    }

    /// Bucket size and refill per second of an operation's ARM bucket; size 0 disables it.
    pub fn limits(&self, op: Operation) -> (u32, f64) {
        match op {
            Operation::Read => (self.config.reads_bucket, self.config.reads_per_second),
            Operation::Write | Operation::Delete => {
                (self.config.writes_bucket, self.config.writes_per_second)
            }
        }
    }

    fn arm_key(ask: &Ask<'_>) -> GateKey {
        GateKey::Arm {
            scope: ask.scope.clone(),
            principal: ask.principal.to_ascii_lowercase(),
            op: ask.op,
        }
    }

    fn gate(&mut self, key: GateKey, capacity: u32, per_second: f64, now: Instant) -> &mut Gate {
        self.gates.entry(key).or_insert_with(|| Gate {
            bucket: TokenBucket::new(capacity, per_second, now),
            blocked_until: None,
        })
    }

    /// Admits one request at `now`, or refuses it with a Retry-After.
    pub fn admit(&mut self, now: Instant, ask: &Ask<'_>) -> Result<Admitted, Throttled> {
        let (cap, rate) = self.limits(ask.op);
        let remaining = if cap > 0 {
            match self.gate(Self::arm_key(ask), cap, rate, now).pass(now) {
                Ok(rem) => Some(rem),
                Err((retry_after, early)) => {
                    return Err(Throttled {
                        by: Limiter::Arm,
                        retry_after,
                        early,
                        remaining: Some(0),
                    });
                }
            }
        } else {
            None
        };
        let mut high_cost_remaining = None;
        if ask.high_cost
            && self.config.compute_high_cost_bucket > 0
            && let Scope::Subscription(sub) = ask.scope
        {
            let key = GateKey::ComputeHighCost {
                subscription: sub.clone(),
            };
            let (cap, rate) = (
                self.config.compute_high_cost_bucket,
                self.config.compute_high_cost_per_second,
            );
            match self.gate(key, cap, rate, now).pass(now) {
                Ok(rem) => high_cost_remaining = Some(rem),
                Err((retry_after, early)) => {
                    return Err(Throttled {
                        by: Limiter::ComputeHighCost,
                        retry_after,
                        early,
                        remaining,
                    });
                }
            }
        }
        Ok(Admitted {
            remaining,
            high_cost_remaining,
        })
    }

    /// Records a 429 sent for another reason (an injected burst), so that requests arriving
    /// before its Retry-After are refused like after a bucket 429.
    pub fn note_429(&mut self, now: Instant, ask: &Ask<'_>, retry_after: u64) {
        let (cap, rate) = self.limits(ask.op);
        if cap == 0 {
            return;
        }
        let gate = self.gate(Self::arm_key(ask), cap, rate, now);
        gate.blocked_until = Some(now + Duration::from_secs(retry_after.max(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(bucket: u32, rate: f64) -> ThrottleConfig {
        ThrottleConfig {
            reads_bucket: bucket,
            reads_per_second: rate,
            compute_high_cost_bucket: 2,
            compute_high_cost_per_second: 1.0,
            ..ThrottleConfig::default()
        }
    }

    #[test]
    fn bucket_drains_refuses_then_refills() {
        let t0 = Instant::now();
        let mut t = Throttle::new(&cfg(3, 1.0));
        let sub = Scope::subscription("S1");
        let ask = Ask {
            scope: &sub,
            principal: "p",
            op: Operation::Read,
            high_cost: false,
        };
        let rem: Vec<u64> = (0..3)
            .map(|_| t.admit(t0, &ask).unwrap().remaining.unwrap())
            .collect();
        assert_eq!(rem, vec![2, 1, 0]);
        let refused = t.admit(t0, &ask).unwrap_err();
        assert_eq!((refused.retry_after, refused.early), (1, false));
        // Before the Retry-After: refused again, as early, without a token being taken.
        let early = t.admit(t0 + Duration::from_millis(500), &ask).unwrap_err();
        assert!(early.early);
        // After it: one token has come back.
        let later = t0 + Duration::from_millis(500) + Duration::from_secs(early.retry_after);
        assert!(t.admit(later, &ask).is_ok());
    }

    #[test]
    fn buckets_are_per_principal_and_subscription() {
        let t0 = Instant::now();
        let mut t = Throttle::new(&cfg(1, 0.0));
        let (s1, s2) = (Scope::subscription("a"), Scope::subscription("b"));
        let ask = |scope, principal| Ask {
            scope,
            principal,
            op: Operation::Read,
            high_cost: false,
        };
        assert!(t.admit(t0, &ask(&s1, "p")).is_ok());
        assert!(t.admit(t0, &ask(&s1, "p")).is_err());
        assert!(t.admit(t0, &ask(&s1, "q")).is_ok());
        assert!(t.admit(t0, &ask(&s2, "p")).is_ok());
        // A zero refill still gives a finite Retry-After.
        assert_eq!(
            t.admit(t0, &ask(&s2, "p")).unwrap_err().retry_after,
            MAX_RETRY_AFTER
        );
        t.reset();
        assert!(t.admit(t0, &ask(&s1, "p")).is_ok());
    }

    #[test]
    fn high_cost_bucket_is_per_subscription_and_disabled_reads_pass() {
        let t0 = Instant::now();
        let mut t = Throttle::new(&cfg(0, 0.0));
        let s = Scope::subscription("a");
        let ask = |principal| Ask {
            scope: &s,
            principal,
            op: Operation::Read,
            high_cost: true,
        };
        let a = t.admit(t0, &ask("p")).unwrap();
        assert_eq!(a.remaining, None);
        assert_eq!(a.high_cost_remaining, Some(1));
        assert_eq!(t.admit(t0, &ask("q")).unwrap().high_cost_remaining, Some(0));
        let r = t.admit(t0, &ask("r")).unwrap_err();
        assert_eq!(r.by, Limiter::ComputeHighCost);
    }

    #[test]
    fn injected_429_blocks_early_retries() {
        let t0 = Instant::now();
        let mut t = Throttle::new(&cfg(10, 10.0));
        let s = Scope::Tenant;
        let ask = Ask {
            scope: &s,
            principal: "p",
            op: Operation::Read,
            high_cost: false,
        };
        t.note_429(t0, &ask, 2);
        assert!(t.admit(t0 + Duration::from_secs(1), &ask).unwrap_err().early);
        // The refusal took no token: after the wait, the whole bucket is there.
        let after = t.admit(t0 + Duration::from_secs(3), &ask).unwrap();
        assert_eq!(after.remaining, Some(9));
        assert_eq!(
            Scope::Tenant.remaining_header(Operation::Write),
            "x-ms-ratelimit-remaining-tenant-writes"
        );
    }
}
