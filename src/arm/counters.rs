//! Call counters of one run, shared by the policies and the client, reported as
//! [`CallStats`] with every run.
//!
//! Lock-free counters plus one small map; must never hold anything secret (no URLs with tokens,
//! no headers).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::report::CallStats;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// HTTP requests actually sent to ARM (every attempt).
    pub requests: AtomicU64,
    /// List pages delivered, from ARM or the cache (single GETs are not pages).
    pub pages: AtomicU64,
    /// Attempts after the first, for any reason (429, 5xx, timeout, broken body, 401 refresh).
    pub retries: AtomicU64,
    /// 429 answers received.
    pub throttled_429: AtomicU64,
    /// Responses served from the on-disk cache.
    pub cache_hits: AtomicU64,
    /// Cache entries found corrupt (or for another URL) and deleted.
    pub cache_discarded: AtomicU64,
    /// Response body bytes received from ARM.
    pub bytes: AtomicU64,
    /// Requests on the wire right now, and the most ever at once.
    pub in_flight: AtomicU64,
    pub peak_in_flight: AtomicU64,
    /// Lowest `x-ms-ratelimit-remaining-subscription-reads` seen, per subscription.
    lowest: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn record_remaining(&self, subscription: &str, remaining: u64) {
        let mut m = self.lowest.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(subscription.to_string())
            .and_modify(|v| *v = (*v).min(remaining))
            .or_insert(remaining);
    }

    pub fn enter(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    pub fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn snapshot(&self) -> CallStats {
        CallStats {
            requests: Self::get(&self.requests),
            pages: Self::get(&self.pages),
            retries: Self::get(&self.retries),
            throttled_429: Self::get(&self.throttled_429),
            cache_hits: Self::get(&self.cache_hits),
            bytes: Self::get(&self.bytes),
            lowest_remaining_reads: self.lowest.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            kubernetes_requests: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_and_peak() {
        let c = Counters::default();
        c.record_remaining("s", 200);
        c.record_remaining("s", 150);
        c.record_remaining("s", 180);
        c.enter();
        c.enter();
        c.leave();
        c.enter();
        Counters::add(&c.requests, 3);
        let s = c.snapshot();
        assert_eq!(s.lowest_remaining_reads.get("s"), Some(&150));
        assert_eq!(s.requests, 3);
        assert_eq!(Counters::get(&c.peak_in_flight), 2);
    }
}
