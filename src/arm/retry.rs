//! Retry arithmetic: how long ARM asked us to wait, and how long to back off when it did not say.
//!
//! Pure functions (the clock and the random source are parameters or isolated), so the policy's
//! decisions are unit-tested without waiting. Must not sleep or send anything.

use std::time::{Duration, SystemTime};

/// First backoff ceiling for 5xx, timeouts and broken bodies. Each further attempt doubles it.
/// cloud-provider-azure backs off from 5 s with exponent 1.5 (`cloudProviderBackoffDuration`,
/// domain.md §5.1); an auditor has no write to protect, so it starts lower and doubles.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Largest backoff ceiling for 5xx and timeouts.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(32);
/// Largest backoff ceiling for a 429 that carries no Retry-After (cloud-custodian PR #6349:
/// retry even then). Attempts are not capped for throttling; the overall deadline is.
pub(crate) const THROTTLE_BACKOFF_CAP: Duration = Duration::from_secs(60);
/// Shortest wait between two attempts, so full jitter never turns into a hot loop.
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// One HTTP exchange (request, headers and the whole body) that takes longer than this is
/// abandoned and retried as a timeout. ARM's own gateway gives up on a request after about a
/// minute, so a longer wait only delays the retry.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Statuses retried with backoff and a bounded number of attempts (the set the Azure SDKs retry,
/// minus 429, which has its own rule).
pub(crate) fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 500 | 502 | 503 | 504)
}

/// How long the server asked us to wait: `retry-after-ms`, then `x-ms-retry-after-ms`
/// (milliseconds), then `Retry-After` as seconds or an HTTP date — the order azcore uses
/// (`sdk/azcore/internal/shared/shared.go`, `RetryAfter`), and the two `Retry-After` forms
/// cloud-provider-azure accepts (`pkg/azclient/policy/retryrepectthrottled/throttle.go`).
/// `None` when absent, unparsable or zero (then the caller backs off on its own).
pub(crate) fn retry_after<'a>(header: impl Fn(&str) -> Option<&'a str>, now: SystemTime) -> Option<Duration> {
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = header(name).and_then(|v| v.trim().parse::<f64>().ok())
            && ms.is_finite()
            && ms > 0.0
        {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let v = header("retry-after")?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    // A date in the past means "now"; a zero wait is the caller's cue to back off instead.
    at.duration_since(now).ok().filter(|d| !d.is_zero())
}

/// Full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS Architecture Blog):
/// uniformly random in `[MIN_BACKOFF, min(cap, BACKOFF_BASE * 2^(retry-1))]`. `retry` is 1 for
/// the first retry. `unit` is a random number in `[0, 1)`.
pub(crate) fn backoff(retry: u32, cap: Duration, unit: f64) -> Duration {
    let exp = retry.saturating_sub(1).min(20);
    let ceiling = BACKOFF_BASE.saturating_mul(1u32 << exp).min(cap);
    ceiling.mul_f64(unit.clamp(0.0, 1.0)).max(MIN_BACKOFF)
}

/// [`backoff`] with a fresh random number.
pub(crate) fn jittered_backoff(retry: u32, cap: Duration) -> Duration {
    backoff(retry, cap, fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn hdr(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
        let h = hdr(&[("retry-after", "7")]);
        assert_eq!(
            retry_after(|n| h.get(n).copied(), now),
            Some(Duration::from_secs(7))
        );
        let h = hdr(&[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")]);
        assert_eq!(
            retry_after(|n| h.get(n).copied(), now),
            Some(Duration::from_secs(30))
        );
        let h = hdr(&[("retry-after", "Wed, 21 Oct 2015 07:27:00 GMT")]);
        assert_eq!(
            retry_after(|n| h.get(n).copied(), now),
            None,
            "a date in the past"
        );
        let h = hdr(&[("retry-after", "3"), ("x-ms-retry-after-ms", "1500")]);
        assert_eq!(
            retry_after(|n| h.get(n).copied(), now),
            Some(Duration::from_millis(1500))
        );
        let h = hdr(&[("retry-after-ms", "250"), ("x-ms-retry-after-ms", "1500")]);
        assert_eq!(
            retry_after(|n| h.get(n).copied(), now),
            Some(Duration::from_millis(250))
        );
        for v in ["0", "soon", "-5"] {
            let h: HashMap<&str, &str> = [("retry-after", v)].into_iter().collect();
            assert_eq!(retry_after(|n| h.get(n).copied(), now), None, "{v}");
        }
        assert_eq!(retry_after(|_| None, now), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1, BACKOFF_CAP, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(3, BACKOFF_CAP, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(30, BACKOFF_CAP, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(3, BACKOFF_CAP, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(3, BACKOFF_CAP, 0.0), MIN_BACKOFF);
        for r in 1..10 {
            let d = jittered_backoff(r, BACKOFF_CAP);
            assert!(d >= MIN_BACKOFF && d <= BACKOFF_CAP);
        }
        assert!(is_transient_status(503) && is_transient_status(408));
        assert!(!is_transient_status(429) && !is_transient_status(501) && !is_transient_status(404));
    }
}
