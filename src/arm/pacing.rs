//! Client-side rate limiting per subscription: what keeps azaudit from ever being the reason a
//! subscription is throttled (issue 4; the complaints in prior-art.md §3, "Throttling").
//!
//! Four gates, passed in order before every attempt:
//! 1. the Retry-After gate: after a 429 (or a 503 with Retry-After) on a subscription, *no*
//!    request for that subscription leaves before the time ARM named — ARM refuses requests sent
//!    earlier and answers them with a new 429 (domain.md §5.1);
//! 2. the read budget ([`Budget`]): ARM reports the tokens left in its bucket for (subscription,
//!    principal) in `x-ms-ratelimit-remaining-subscription-reads`. Below a quarter of the bucket
//!    (at most [`SLOW_BELOW`]) we send at half `--max-rps`; below a reserve of a tenth (at most
//!    25) we wait for the bucket to refill, at a refill rate learnt from the header (starting
//!    from half `--max-rps`, at most ARM's documented 25/s);
//! 3. `governor` per subscription: at most `--max-rps` sustained, with a short burst;
//! 4. the concurrency gate ([`Gate`]): at most `--concurrency` requests in flight, across all
//!    subscriptions. Next pages of lists already under way go before first pages: a list's pages
//!    can only be read one after the other, so the longest list bounds the run, and its next page
//!    must not queue behind the first pages of lists that have time to spare (BENCHMARKS.md).
//!
//! Must not send anything, and must not hold the semaphore while waiting on gates 1–3 (a
//! throttled subscription must not stall the others).

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Below this many remaining reads, send at half `--max-rps` (the threshold cloud-provider-azure's
/// `armbalancer` reacts to, `CPA:pkg/azclient/utils/armbalancer`, domain.md §5.1).
pub(crate) const SLOW_BELOW: f64 = 100.0;
/// ...or below this fraction of the largest remaining count seen, when that is lower: a quarter
/// of the bucket (62 of ARM's 250) is kept for other clients of the same principal while we slow
/// down, and a small bucket can still be used at all.
pub(crate) const SLOW_FRACTION: f64 = 0.25;
/// Reads left untouched for other clients of the same bucket: a tenth of the largest remaining
/// count seen, at most 25 (one second of ARM's refill), at least 1.
pub(crate) const RESERVE_MAX: f64 = 25.0;
/// ARM's documented read refill per second per subscription and principal (domain.md §5.1):
/// the ceiling of the refill estimate. The estimate starts lower, at half `--max-rps`, and is
/// learnt upwards from the header: overestimating it is what would cause 429s.
pub(crate) const ARM_READ_REFILL_PER_SEC: f64 = 25.0;
/// The refill estimate never drops below this (a wait is at most a few seconds per read).
pub(crate) const MIN_REFILL_PER_SEC: f64 = 0.2;
/// Longest wait on the predicted budget alone (ARM's own Retry-After is honoured in full).
pub(crate) const MAX_BUDGET_WAIT: Duration = Duration::from_secs(5);
/// The refill rate is re-estimated over windows at least this long.
const REFILL_WINDOW: Duration = Duration::from_secs(1);
/// The governor's burst: this many seconds' worth of `--max-rps`...
pub(crate) const BURST_SECONDS: f64 = 5.0;
/// ...but never more than this: a fifth of ARM's 250-read bucket, so parallel lists can start
/// together without draining the budget others share.
pub(crate) const BURST_MAX: u32 = 50;

/// What we know about ARM's read bucket for one subscription, and our own gates for it.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    /// Last remaining-reads value and when it arrived.
    last: Option<(f64, Instant)>,
    /// Largest remaining value seen: the best guess of the bucket's size.
    peak: f64,
    /// Estimated refill per second available to us.
    refill: f64,
    /// Reference point of the refill estimate: remaining, when, responses observed since.
    window: Option<(f64, Instant, u32)>,
    /// Our requests sent and not yet answered.
    in_flight: u32,
    /// Earliest send time of the next request while at half rate.
    next_slot: Instant,
    /// No request before this instant (Retry-After).
    blocked_until: Option<Instant>,
    /// Compute's lowest remaining count over its policies (`x-ms-ratelimit-remaining-resource`)
    /// and when it was seen (or when the last Compute request was let through while low).
    compute: Option<(f64, Instant)>,
    /// Largest Compute remaining count seen.
    compute_peak: f64,
}

impl Budget {
    /// `refill`: the first guess of ARM's refill per second.
    pub fn new(now: Instant, refill: f64) -> Budget {
        Budget {
            last: None,
            peak: 0.0,
            refill: refill.clamp(MIN_REFILL_PER_SEC, ARM_READ_REFILL_PER_SEC),
            window: None,
            in_flight: 0,
            next_slot: now,
            blocked_until: None,
            compute: None,
            compute_peak: 0.0,
        }
    }

    /// Compute's reserve, by the rule of the read reserve: a tenth of the largest count seen,
    /// at most 25, at least 1.
    fn compute_reserve(&self) -> f64 {
        (self.compute_peak / 10.0).clamp(1.0, RESERVE_MAX)
    }

    /// How long a Compute request must wait: while Compute's last count is at or below its
    /// reserve, one request per `hold` (the refill is not in the header; `hold` is slower than
    /// any Compute documents), so the budget is left to the cluster's own cloud provider.
    pub fn compute_wait(&self, now: Instant, hold: Duration) -> Duration {
        match self.compute {
            Some((r, at)) if r <= self.compute_reserve() => (at + hold).saturating_duration_since(now),
            _ => Duration::ZERO,
        }
    }

    /// A Compute request is let through: while low, the next one waits a whole `hold`.
    fn compute_sent(&mut self, now: Instant) {
        let reserve = self.compute_reserve();
        if let Some((r, at)) = &mut self.compute
            && *r <= reserve
        {
            *at = now;
        }
    }

    /// An answer's Compute count (`None`: the answer had none).
    pub fn observe_compute(&mut self, now: Instant, remaining: Option<u64>) {
        if let Some(r) = remaining {
            let r = r as f64;
            self.compute_peak = self.compute_peak.max(r);
            self.compute = Some((r, now));
        }
    }

    fn reserve_level(&self) -> f64 {
        (self.peak / 10.0).clamp(1.0, RESERVE_MAX)
    }

    /// Remaining reads we expect ARM to hold now: the last value, refilled since, minus what we
    /// have in flight (they may or may not have been counted yet: assume they were).
    pub fn predicted(&self, now: Instant) -> Option<f64> {
        let (r, at) = self.last?;
        let refilled = r + self.refill * now.saturating_duration_since(at).as_secs_f64();
        // The bucket holds at most what we have seen it hold; but never cap below what the
        // reserve needs, or a bucket first seen empty would keep us waiting forever.
        let ceiling = self.peak.max(r).max(self.reserve_level() + 1.0);
        Some(refilled.min(ceiling) - f64::from(self.in_flight))
    }

    /// How long ARM's last Retry-After still holds this subscription, if it does.
    pub fn blocked_for(&self, now: Instant) -> Option<Duration> {
        self.blocked_until.filter(|u| *u > now).map(|u| u - now)
    }

    /// How long to wait before trying again (zero: go ahead and [`Budget::reserve`]).
    pub fn wait(&self, now: Instant) -> Duration {
        if let Some(until) = self.blocked_until
            && until > now
        {
            return until - now;
        }
        match self.predicted(now) {
            // The prediction is only a guess: wait at most MAX_BUDGET_WAIT, then let the next
            // answer's header say how much budget there really is.
            Some(p) if p < self.reserve_level() + 1.0 => {
                Duration::from_secs_f64((self.reserve_level() + 1.0 - p) / self.refill).min(MAX_BUDGET_WAIT)
            }
            _ => Duration::ZERO,
        }
    }

    /// Below this many predicted reads, send at half rate: [`SLOW_BELOW`], or less for a bucket
    /// smaller than ARM's (trial subscriptions, the mock's tight buckets), where 100 would mean
    /// "always slow" and the bucket could never be used.
    fn slow_level(&self) -> f64 {
        SLOW_BELOW.min(self.peak * SLOW_FRACTION)
    }

    /// Takes a send slot: returns how long to wait for it (half rate when the budget is low).
    pub fn reserve(&mut self, now: Instant, max_rps: f64) -> Duration {
        let slow = self.predicted(now).is_some_and(|p| p < self.slow_level());
        self.in_flight += 1;
        if !slow {
            return Duration::ZERO;
        }
        let slot = self.next_slot.max(now);
        self.next_slot = slot + Duration::from_secs_f64(2.0 / max_rps);
        slot - now
    }

    /// An answer arrived (or the attempt ended without one: `remaining` is `None`).
    pub fn observe(&mut self, now: Instant, remaining: Option<u64>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(rem) = remaining else { return };
        let r = rem as f64;
        self.peak = self.peak.max(r);
        self.window = match self.window {
            None => Some((r, now, 0)),
            Some((r0, t0, n)) => {
                let n = n + 1;
                let dt = now.saturating_duration_since(t0);
                if dt < REFILL_WINDOW {
                    Some((r0, t0, n))
                } else {
                    // A bucket at its capacity hides the refill: learn only from unclipped values.
                    if r0 < self.peak - 1.0 && r < self.peak - 1.0 {
                        let sample = (r - r0 + f64::from(n)) / dt.as_secs_f64();
                        self.refill = (0.5 * self.refill + 0.5 * sample)
                            .clamp(MIN_REFILL_PER_SEC, ARM_READ_REFILL_PER_SEC);
                    }
                    Some((r, now, 0))
                }
            }
        };
        self.last = Some((r, now));
    }

    /// ARM throttled us: nothing goes out before `until`, and we were too optimistic about the
    /// refill (multiplicative decrease).
    pub fn throttled(&mut self, until: Instant) {
        // One burst of 429s (every request that was already on the wire answered 429 together)
        // is one signal: lower the estimate once per Retry-After window, not once per answer, or
        // a handful of concurrent 429s would collapse it and stall the run for minutes.
        let already_blocked = self.blocked_until.is_some_and(|b| b > Instant::now());
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
        if !already_blocked {
            self.refill = (self.refill / 2.0).max(MIN_REFILL_PER_SEC);
        }
    }
}

/// The gates, shared by every request of one client.
#[derive(Debug)]
pub(crate) struct Pacer {
    limiter: DefaultKeyedRateLimiter<String>,
    max_rps: f64,
    budgets: Mutex<HashMap<String, Budget>>,
    gate: Arc<Gate>,
    /// See [`super::ArmOptions::compute_hold`].
    compute_hold: Duration,
}

/// Priority of a request at the concurrency gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// A first page, a single GET, a write; lower `rank` first (lists expected to be long go
    /// before short ones: their page chains bound the run).
    First { rank: u8 },
    /// The next page of a list already under way (its list's `rank`).
    Continuation { rank: u8 },
}

impl Priority {
    /// A GET or a write: after every ranked list.
    pub const DEFAULT: Priority = Priority::First { rank: u8::MAX };
}

/// A counting gate like a semaphore, except that waiting [`Priority::Continuation`] requests are
/// let in before waiting [`Priority::First`] ones, each class by rank (first come, first served
/// within a rank).
#[derive(Debug)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
}

#[derive(Debug)]
struct GateState {
    free: usize,
    /// Both by (rank, arrival).
    continuations: BTreeMap<(u8, u64), oneshot::Sender<()>>,
    firsts: BTreeMap<(u8, u64), oneshot::Sender<()>>,
    arrivals: u64,
}

impl Gate {
    pub fn new(permits: usize) -> Gate {
        Gate {
            state: Mutex::new(GateState {
                free: permits,
                continuations: BTreeMap::new(),
                firsts: BTreeMap::new(),
                arrivals: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a permit; dropping the future while waiting gives up the place (and a permit
    /// handed over meanwhile goes to the next in line).
    pub async fn acquire(self: &Arc<Self>, priority: Priority) -> GatePermit {
        let rx = {
            let mut s = self.lock();
            if s.free > 0 {
                s.free -= 1;
                return GatePermit { gate: self.clone() };
            }
            let (tx, rx) = oneshot::channel();
            s.arrivals += 1;
            let at = s.arrivals;
            match priority {
                Priority::Continuation { rank } => s.continuations.insert((rank, at), tx),
                Priority::First { rank } => s.firsts.insert((rank, at), tx),
            };
            rx
        };
        let mut waiting = Waiting {
            gate: self.clone(),
            rx: Some(rx),
        };
        let rx = waiting.rx.as_mut().expect("set above");
        // The sender is only dropped by a release that handed the permit over (`send` succeeded)
        // or never: the gate outlives its waiters, so an error cannot happen in practice; treat
        // it as a hand-over anyway rather than wait forever.
        let _ = rx.await;
        waiting.rx = None;
        GatePermit { gate: self.clone() }
    }

    /// Hands a permit to the next waiter (continuations first), or returns it to the pool.
    fn release(&self) {
        let mut s = self.lock();
        loop {
            let next = match s.continuations.pop_first() {
                Some((_, tx)) => Some(tx),
                None => s.firsts.pop_first().map(|(_, tx)| tx),
            };
            match next {
                Some(tx) => {
                    if tx.send(()).is_ok() {
                        return;
                    }
                    // That waiter gave up: try the next one.
                }
                None => {
                    s.free += 1;
                    return;
                }
            }
        }
    }

    #[cfg(test)]
    fn available(&self) -> usize {
        self.lock().free
    }
}

/// A waiter's place in line; if it is dropped after a permit was handed to it, the permit is
/// passed on.
struct Waiting {
    gate: Arc<Gate>,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.gate.release();
            }
        }
    }
}

/// One permit of a [`Gate`], returned when dropped.
#[derive(Debug)]
pub(crate) struct GatePermit {
    gate: Arc<Gate>,
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        self.gate.release();
    }
}

impl Pacer {
    pub fn new(max_rps: f64, concurrency: usize) -> Pacer {
        let burst = ((max_rps * BURST_SECONDS).floor() as u32).clamp(1, BURST_MAX);
        Self::with_burst(max_rps, concurrency, burst)
    }

    /// A pacer that never lets more than `burst` requests go at once. Writes use a burst of 1: a
    /// cleanup is spread evenly at `--max-writes-per-second`, never sent in a volley.
    pub fn with_burst(max_rps: f64, concurrency: usize, burst: u32) -> Pacer {
        let period = Duration::from_secs_f64(1.0 / max_rps);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Pacer {
            limiter: RateLimiter::keyed(quota),
            max_rps,
            budgets: Mutex::new(HashMap::new()),
            gate: Arc::new(Gate::new(concurrency.max(1))),
            compute_hold: super::DEFAULT_COMPUTE_HOLD,
        }
    }

    /// See [`super::ArmOptions::compute_hold`].
    pub fn with_compute_hold(mut self, hold: Duration) -> Pacer {
        self.compute_hold = hold;
        self
    }

    fn with_budget<T>(&self, key: &str, f: impl FnOnce(&mut Budget) -> T) -> T {
        let mut m = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let b = m
            .entry(key.to_string())
            .or_insert_with(|| Budget::new(Instant::now(), self.max_rps / 2.0));
        f(b)
    }

    /// Waits at every gate, then holds a concurrency permit until the returned slot is dropped.
    /// Fails at once with the remaining wait when ARM's Retry-After for this subscription reaches
    /// past `deadline`: waiting would only end in the deadline.
    /// `compute`: a request to the Compute RP, which also waits on Compute's own budget.
    pub async fn acquire(
        self: &Arc<Self>,
        key: &str,
        deadline: Instant,
        priority: Priority,
        compute: bool,
    ) -> Result<Slot, Duration> {
        enum Next {
            Go(Duration),
            Wait(Duration),
            Hopeless(Duration),
        }
        loop {
            let next = self.with_budget(key, |b| {
                let now = Instant::now();
                if let Some(blocked) = b.blocked_for(now)
                    && now + blocked > deadline
                {
                    return Next::Hopeless(blocked);
                }
                let mut w = b.wait(now);
                if compute {
                    w = w.max(b.compute_wait(now, self.compute_hold));
                }
                if w.is_zero() {
                    if compute {
                        b.compute_sent(now);
                    }
                    Next::Go(b.reserve(now, self.max_rps))
                } else {
                    Next::Wait(w)
                }
            });
            match next {
                Next::Hopeless(blocked) => return Err(blocked),
                Next::Wait(w) => {
                    tracing::debug!(
                        subscription = key,
                        wait_ms = w.as_millis() as u64,
                        "waiting for ARM's read budget"
                    );
                    tokio::time::sleep(w).await;
                }
                Next::Go(slot_wait) => {
                    // From here on the budget counts this request in flight; the guard undoes it
                    // even if the caller gives up while waiting.
                    let mut slot = Slot {
                        pacer: self.clone(),
                        key: key.to_string(),
                        observed: false,
                        _permit: None,
                    };
                    if !slot_wait.is_zero() {
                        tokio::time::sleep(slot_wait).await;
                    }
                    self.limiter.until_key_ready(&slot.key).await;
                    slot._permit = Some(self.gate.acquire(priority).await);
                    // ARM may have answered another request of this subscription with a 429
                    // while this one waited for its slot: then it must not leave before the
                    // Retry-After either. Give the slot back and wait at the gates again.
                    if self.with_budget(key, |b| b.blocked_for(Instant::now())).is_some() {
                        drop(slot);
                        continue;
                    }
                    return Ok(slot);
                }
            }
        }
    }

    /// ARM asked to wait until `until` before anything more is sent for `key`.
    pub fn block(&self, key: &str, until: Instant) {
        self.with_budget(key, |b| b.throttled(until));
    }
}

/// One admitted request: holds its concurrency permit and its place in the budget.
pub(crate) struct Slot {
    pacer: Arc<Pacer>,
    key: String,
    observed: bool,
    _permit: Option<GatePermit>,
}

impl Slot {
    /// Records the answer's remaining-reads value and Compute's lowest remaining count (`None`:
    /// no answer or no header).
    pub fn observe(mut self, remaining: Option<u64>, compute_remaining: Option<u64>) {
        self.observed = true;
        self.pacer.with_budget(&self.key, |b| {
            let now = Instant::now();
            b.observe(now, remaining);
            b.observe_compute(now, compute_remaining);
        });
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.observed {
            self.pacer
                .with_budget(&self.key, |b| b.observe(Instant::now(), None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn plenty_of_budget_means_no_wait() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0, ARM_READ_REFILL_PER_SEC);
        assert_eq!(b.wait(t0), Duration::ZERO, "nothing known yet");
        assert_eq!(b.reserve(t0, 10.0), Duration::ZERO);
        b.observe(t0, Some(249));
        assert_eq!(b.wait(t0), Duration::ZERO);
        assert_eq!(b.reserve(t0, 10.0), Duration::ZERO);
    }

    #[test]
    fn low_budget_halves_the_rate() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0, ARM_READ_REFILL_PER_SEC);
        b.reserve(t0, 10.0);
        b.observe(t0, Some(250));
        b.reserve(t0, 10.0);
        b.observe(t0, Some(80));
        assert_eq!(b.reserve(t0, 10.0), Duration::ZERO, "80 of 250 is still plenty");
        b.observe(t0, Some(50));
        assert_eq!(b.wait(t0), Duration::ZERO);
        assert_eq!(b.reserve(t0, 10.0), Duration::ZERO, "first slot is now");
        assert_eq!(b.reserve(t0, 10.0), secs(0.2), "then 2 / max_rps apart");
        assert_eq!(b.reserve(t0, 10.0), secs(0.4));
    }

    #[test]
    fn empty_budget_waits_for_refill() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0, ARM_READ_REFILL_PER_SEC);
        b.reserve(t0, 10.0);
        b.observe(t0, Some(250));
        b.reserve(t0, 10.0);
        b.observe(t0, Some(5));
        // Reserve is 25 (a tenth of 250): wait for 21 reads at 25 per second.
        let w = b.wait(t0);
        assert!((w.as_secs_f64() - 21.0 / 25.0).abs() < 1e-6, "{w:?}");
        // After that long the bucket is predicted refilled enough.
        assert_eq!(b.wait(t0 + w + secs(0.001)), Duration::ZERO);
    }

    #[test]
    fn a_small_bucket_never_waits_forever() {
        // The mock's tight bucket: 10 reads. The reserve scales down to 1.
        let t0 = Instant::now();
        let mut b = Budget::new(t0, ARM_READ_REFILL_PER_SEC);
        b.reserve(t0, 2.0);
        b.observe(t0, Some(9));
        assert_eq!(b.wait(t0), Duration::ZERO);
        b.reserve(t0, 2.0);
        b.observe(t0, Some(1));
        let w = b.wait(t0);
        assert!(w > Duration::ZERO && w < secs(1.0), "{w:?}");
    }

    #[test]
    fn a_bucket_first_seen_empty_still_refills() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0, ARM_READ_REFILL_PER_SEC);
        b.reserve(t0, 10.0);
        b.observe(t0, Some(0));
        let w = b.wait(t0);
        assert!(w > Duration::ZERO && w <= secs(1.0), "{w:?}");
        assert_eq!(b.wait(t0 + w + secs(0.001)), Duration::ZERO);
    }

    #[test]
    fn retry_after_blocks_and_lowers_the_refill_guess() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0, ARM_READ_REFILL_PER_SEC);
        b.throttled(t0 + secs(3.0));
        assert_eq!(b.wait(t0), secs(3.0));
        assert_eq!(b.wait(t0 + secs(3.0)), Duration::ZERO);
        assert_eq!(b.refill, ARM_READ_REFILL_PER_SEC / 2.0);
        // A shorter, later Retry-After does not shorten the block.
        b.throttled(t0 + secs(1.0));
        assert_eq!(b.wait(t0), secs(3.0));
    }

    #[test]
    fn a_burst_of_429s_lowers_the_refill_once_and_waits_are_bounded() {
        let now = Instant::now();
        let mut b = Budget::new(now, 20.0);
        let until = now + Duration::from_secs(1);
        for _ in 0..8 {
            b.throttled(until);
        }
        assert_eq!(b.refill, 10.0, "eight 429s of one burst halve the estimate once");
        b.observe(until, Some(0));
        let w = b.wait(until + Duration::from_millis(1));
        assert!(w <= MAX_BUDGET_WAIT, "{w:?}");
    }

    #[test]
    fn refill_is_learnt_from_the_header() {
        // A bucket refilling 5 per second, drained: one read per 0.5 s leaves +1.5 per step.
        let t0 = Instant::now();
        let mut b = Budget::new(t0, ARM_READ_REFILL_PER_SEC);
        b.reserve(t0, 10.0);
        b.observe(t0, Some(20));
        let mut r = 2.0;
        for i in 1..=8 {
            let t = t0 + secs(0.5 * f64::from(i));
            b.reserve(t, 10.0);
            b.observe(t, Some(r as u64));
            r += 1.5;
        }
        assert!(b.refill < 10.0 && b.refill > 2.0, "{}", b.refill);
    }

    #[tokio::test]
    async fn slots_hold_permits_and_release_the_budget() {
        let p = Arc::new(Pacer::new(1000.0, 2));
        let far = Instant::now() + Duration::from_secs(60);
        let a = p.acquire("s", far, Priority::DEFAULT, false).await.unwrap();
        let b = p.acquire("s", far, Priority::DEFAULT, false).await.unwrap();
        assert_eq!(p.gate.available(), 0);
        assert_eq!(p.with_budget("s", |b| b.in_flight), 2);
        a.observe(Some(200), None);
        drop(b);
        assert_eq!(p.gate.available(), 2);
        assert_eq!(p.with_budget("s", |b| b.in_flight), 0);
        // Held past the deadline by Retry-After: no waiting, the remaining wait is reported.
        p.block("s", Instant::now() + Duration::from_secs(120));
        let e = p.acquire("s", far, Priority::DEFAULT, false).await.err().unwrap();
        assert!(e > Duration::from_secs(100), "{e:?}");
        assert!(
            p.acquire("other", far, Priority::DEFAULT, false).await.is_ok(),
            "other subscriptions are not held"
        );
    }

    #[tokio::test]
    async fn continuations_go_before_first_pages_and_first_pages_by_rank() {
        let gate = Arc::new(Gate::new(1));
        let held = gate.acquire(Priority::DEFAULT).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, prio) in [
            ("first-a", Priority::First { rank: 5 }),
            ("first-b", Priority::First { rank: 5 }),
            ("next-a", Priority::Continuation { rank: 5 }),
            ("long-list", Priority::First { rank: 0 }),
            ("next-b", Priority::Continuation { rank: 5 }),
            ("next-of-long-list", Priority::Continuation { rank: 0 }),
        ] {
            let (gate, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _p = gate.acquire(prio).await;
                order.lock().unwrap().push(name);
            }));
            // Each is queued before the next is spawned.
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            [
                "next-of-long-list",
                "next-a",
                "next-b",
                "long-list",
                "first-a",
                "first-b"
            ]
        );
        assert_eq!(gate.available(), 1);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_loses_no_permit() {
        let gate = Arc::new(Gate::new(1));
        let held = gate.acquire(Priority::DEFAULT).await;
        // Gives up while queued.
        let gave_up = tokio::time::timeout(
            Duration::from_millis(5),
            gate.acquire(Priority::Continuation { rank: 0 }),
        )
        .await;
        assert!(gave_up.is_err());
        drop(held);
        assert_eq!(gate.available(), 1);
        // Handed a permit, then dropped before it ran: the permit comes back.
        let held = gate.acquire(Priority::DEFAULT).await;
        let mut waiter = Box::pin(gate.acquire(Priority::DEFAULT));
        assert!(futures::poll!(waiter.as_mut()).is_pending());
        drop(held);
        drop(waiter);
        assert_eq!(gate.available(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_that_arrives_while_waiting_for_a_slot_holds_the_request() {
        let p = Arc::new(Pacer::new(10.0, 1));
        let far = Instant::now() + Duration::from_secs(600);
        let held = p.acquire("s", far, Priority::DEFAULT, false).await.unwrap();
        let started = Instant::now();
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move {
                let slot = p.acquire("s", far, Priority::DEFAULT, false).await.unwrap();
                let at = Instant::now();
                drop(slot);
                at
            })
        };
        // The waiter has passed the Retry-After gate and waits for the only permit...
        tokio::time::sleep(Duration::from_millis(10)).await;
        // ...when ARM says "retry after 30 s" to the request that holds it.
        p.block("s", started + Duration::from_secs(30));
        drop(held);
        let sent_at = waiter.await.unwrap();
        assert!(
            sent_at >= started + Duration::from_secs(30),
            "sent {:?} after the start, inside the Retry-After",
            sent_at - started
        );
        assert_eq!(p.gate.available(), 1);
        assert_eq!(p.with_budget("s", |b| b.in_flight), 0);
    }

    #[test]
    fn a_low_compute_budget_lets_one_compute_request_through_per_hold() {
        let t0 = Instant::now();
        let hold = secs(6.0);
        let mut b = Budget::new(t0, ARM_READ_REFILL_PER_SEC);
        assert_eq!(b.compute_wait(t0, hold), Duration::ZERO, "nothing known: go");
        b.observe_compute(t0, Some(900));
        b.observe_compute(t0, Some(120));
        assert_eq!(
            b.compute_wait(t0, hold),
            Duration::ZERO,
            "120 of 900 is above the reserve of 25"
        );
        b.observe_compute(t0, Some(20));
        assert_eq!(
            b.compute_wait(t0, hold),
            hold,
            "at the reserve: wait a hold from the answer"
        );
        let t1 = t0 + secs(6.0);
        assert_eq!(b.compute_wait(t1, hold), Duration::ZERO);
        b.compute_sent(t1);
        assert_eq!(
            b.compute_wait(t1, hold),
            hold,
            "the next one waits a whole hold again"
        );
        // Reads are not held by Compute's budget.
        assert_eq!(b.wait(t1), Duration::ZERO);
        // Refilled: no more holding.
        b.observe_compute(t1 + secs(1.0), Some(300));
        assert_eq!(b.compute_wait(t1 + secs(1.0), hold), Duration::ZERO);
    }
}
