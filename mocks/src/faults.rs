//! Fault injection for ARM responses: the `faults` of `world.json`'s `mock` section
//! ([`crate::config::Fault`]).
//!
//! This module decides, per request, which faults fire ([`plan`]) and provides the mangled
//! bodies (malformed, truncated, slowly streamed). It keeps one counter of matching requests per
//! configured fault, so `nth` / `first` / `start` are deterministic; `rate` draws from the mock's
//! seeded RNG. Applying the plan (and counting what was injected) is the ARM handler's job.
//!
//! A "matching request" is an ARM request that was authenticated and admitted by the throttle
//! and whose decoded path contains the fault's `path_contains` (case-insensitive): requests
//! refused with 400/401/429 before that, the metadata document and the admin endpoints never
//! count, so `nth` means the same whatever a client's token or retry behaviour.
//!
//! It must not touch the world, the buckets or the clock (other than the slow body's timer), and
//! it leaves `ShortTokens` to the identity module.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use rand::Rng;

use crate::config::{Fault, FaultScope};

/// Matching requests seen so far, per configured fault (by index in `config.faults`).
#[derive(Debug, Default)]
pub struct FaultCounters {
    matched: Vec<u64>,
}

impl FaultCounters {
    /// Counts one more matching request for fault `i` and returns its 1-based ordinal.
    fn bump(&mut self, i: usize) -> u64 {
        if self.matched.len() <= i {
            self.matched.resize(i + 1, 0);
        }
        self.matched[i] += 1;
        self.matched[i]
    }
}

/// A response that replaces the real one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// A 5xx (or whatever status was configured) with ARM's error body.
    Status { status: u16 },
    /// A 429 with this Retry-After, whatever the bucket says.
    Burst429 { retry_after: u64 },
}

/// What to do to one request. Several faults may fire at once; the first replacement in
/// configuration order wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub replace: Option<Replacement>,
    pub malformed_json: bool,
    pub truncated_json: bool,
    pub foreign_next_link: bool,
    pub next_link_loop: bool,
    /// Stream the body over this many milliseconds.
    pub slow_body_ms: Option<u64>,
}

fn matches(scope: &FaultScope, path_lower: &str) -> bool {
    scope.path_contains.is_empty() || path_lower.contains(&scope.path_contains.to_ascii_lowercase())
}

/// `nth` absent = every matching request.
fn at_nth(nth: Option<u64>, ordinal: u64) -> bool {
    nth.is_none_or(|n| n == ordinal)
}

/// Decides which faults fire for a request to `path` (decoded request path). Every fault whose
/// scope matches counts the request, whether or not it fires.
pub fn plan(faults: &[Fault], counters: &mut FaultCounters, rng: &mut impl Rng, path: &str) -> FaultPlan {
    let path_lower = path.to_ascii_lowercase();
    let mut plan = FaultPlan::default();
    for (i, fault) in faults.iter().enumerate() {
        match fault {
            Fault::Status {
                status,
                rate,
                nth,
                first,
                scope,
            } => {
                if !matches(scope, &path_lower) {
                    continue;
                }
                let n = counters.bump(i);
                // Only draw from the RNG when a rate is set, so adding an `nth` fault does not
                // shift the random sequence of another.
                let by_rate = *rate > 0.0 && rng.r#gen::<f64>() < *rate;
                let fire = by_rate || *nth == Some(n) || first.is_some_and(|f| n <= f);
                if fire && plan.replace.is_none() {
                    plan.replace = Some(Replacement::Status { status: *status });
                }
            }
            Fault::Burst429 {
                count,
                start,
                retry_after_seconds,
                scope,
            } => {
                if !matches(scope, &path_lower) {
                    continue;
                }
                let n = counters.bump(i);
                if n >= *start && n < start.saturating_add(*count) && plan.replace.is_none() {
                    plan.replace = Some(Replacement::Burst429 {
                        retry_after: (*retry_after_seconds).max(1),
                    });
                }
            }
            Fault::MalformedJson { nth, scope } => {
                if matches(scope, &path_lower) {
                    let n = counters.bump(i);
                    plan.malformed_json |= at_nth(*nth, n);
                }
            }
            Fault::TruncatedJson { nth, scope } => {
                if matches(scope, &path_lower) {
                    let n = counters.bump(i);
                    plan.truncated_json |= at_nth(*nth, n);
                }
            }
            Fault::ForeignNextLink { scope } => {
                if matches(scope, &path_lower) {
                    counters.bump(i);
                    plan.foreign_next_link = true;
                }
            }
            Fault::NextLinkLoop { scope } => {
                if matches(scope, &path_lower) {
                    counters.bump(i);
                    plan.next_link_loop = true;
                }
            }
            Fault::SlowBody { millis, scope } => {
                if matches(scope, &path_lower) {
                    counters.bump(i);
                    plan.slow_body_ms = Some(plan.slow_body_ms.unwrap_or(0).max(*millis));
                }
            }
            // Token lifetimes are the identity module's business.
            Fault::ShortTokens { .. } => {}
        }
    }
    plan
}

/// ARM's error code and message for an injected status.
pub fn status_error(status: u16) -> (String, String) {
    let (code, message) = match status {
        500 => (
            "InternalServerError",
            "The server encountered an internal error. Please retry the request.",
        ),
        502 => (
            "BadGateway",
            "The gateway did not receive a valid response from the upstream server. Please retry the request.",
        ),
        503 => (
            "ServiceUnavailable",
            "The server is currently unable to handle the request due to a temporary overloading or maintenance. Please retry the request.",
        ),
        504 => (
            "GatewayTimeout",
            "The gateway did not receive a response from 'Microsoft.Network' within the specified time period.",
        ),
        _ => ("InjectedFault", "The mock injected this error status."),
    };
    (code.to_string(), message.to_string())
}

/// A 200 body that is not JSON: what a misbehaving proxy or a half-deployed backend returns.
pub fn malformed_body() -> Vec<u8> {
    b"{\"value\": [ {\"id\": <unexpected token>, } ]".to_vec()
}

/// The first half of a JSON body, cut on a character boundary: a valid prefix that never parses,
/// since the outermost bracket is left open.
pub fn truncate(body: &[u8]) -> Vec<u8> {
    let mut cut = body.len() / 2;
    while cut > 0 && (body[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    body[..cut].to_vec()
}

/// A response body sent in chunks, spread evenly over a duration.
pub struct SlowBody {
    chunks: VecDeque<Bytes>,
    interval: Duration,
    total: u64,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How many pieces a slow body is cut into.
const SLOW_CHUNKS: usize = 8;

impl SlowBody {
    pub fn new(body: Vec<u8>, over: Duration) -> SlowBody {
        let total = body.len() as u64;
        let size = body.len().div_ceil(SLOW_CHUNKS).max(1);
        let bytes = Bytes::from(body);
        let chunks: VecDeque<Bytes> = (0..bytes.len())
            .step_by(size)
            .map(|start| bytes.slice(start..(start + size).min(bytes.len())))
            .collect();
        let n = chunks.len().max(1) as u32;
        SlowBody {
            chunks,
            interval: over / n,
            total,
            sleep: None,
        }
    }
}

impl HttpBody for SlowBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.chunks.is_empty() {
            return Poll::Ready(None);
        }
        let interval = self.interval;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
        match sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.sleep = None;
                match self.chunks.pop_front() {
                    Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn scope(p: &str) -> FaultScope {
        FaultScope {
            path_contains: p.into(),
        }
    }

    #[test]
    fn nth_first_and_scope() {
        let faults = vec![
            Fault::Status {
                status: 503,
                rate: 0.0,
                nth: Some(2),
                first: None,
                scope: scope("loadbalancers"),
            },
            Fault::Status {
                status: 500,
                rate: 0.0,
                nth: None,
                first: Some(1),
                scope: scope(""),
            },
        ];
        let mut c = FaultCounters::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let lb = "/subscriptions/s/providers/Microsoft.Network/loadBalancers";
        let p1 = plan(&faults, &mut c, &mut rng, lb);
        assert_eq!(p1.replace, Some(Replacement::Status { status: 500 }));
        let p2 = plan(&faults, &mut c, &mut rng, lb);
        assert_eq!(p2.replace, Some(Replacement::Status { status: 503 }));
        let p3 = plan(
            &faults,
            &mut c,
            &mut rng,
            "/subscriptions/s/providers/Microsoft.Network/publicIPAddresses",
        );
        assert_eq!(p3.replace, None);
    }

    #[test]
    fn rate_is_seeded_and_burst_has_a_window() {
        let faults = vec![Fault::Status {
            status: 500,
            rate: 0.5,
            nth: None,
            first: None,
            scope: scope(""),
        }];
        let run = || {
            let mut c = FaultCounters::default();
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            (0..40)
                .map(|_| plan(&faults, &mut c, &mut rng, "/x").replace.is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let fired = a.iter().filter(|f| **f).count();
        assert!((5..35).contains(&fired), "{fired} of 40 at rate 0.5");

        let burst = vec![Fault::Burst429 {
            count: 2,
            start: 2,
            retry_after_seconds: 3,
            scope: scope(""),
        }];
        let mut c = FaultCounters::default();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let got: Vec<bool> = (0..4)
            .map(|_| plan(&burst, &mut c, &mut rng, "/x").replace.is_some())
            .collect();
        assert_eq!(got, vec![false, true, true, false]);
    }

    #[test]
    fn truncation_and_malformed_never_parse() {
        let body = serde_json::to_vec(&serde_json::json!({"value": [{"id": "é/ü", "n": 1}]})).unwrap();
        let cut = truncate(&body);
        assert!(cut.len() < body.len() && !cut.is_empty());
        assert!(body.starts_with(&cut));
        assert!(std::str::from_utf8(&cut).is_ok());
        assert!(serde_json::from_slice::<serde_json::Value>(&cut).is_err());
        assert!(serde_json::from_slice::<serde_json::Value>(&malformed_body()).is_err());
    }
}
