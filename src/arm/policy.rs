//! Our `azure_core` pipeline policies: host guard, retry, rate limit, counters, and the bearer
//! transport that is the only place a token touches a request.
//!
//! Why the token is attached in a *custom transport* and not in a policy before azure_core's
//! `TransportPolicy`: azure_core 0.21's `TransportPolicy` logs every request with `{request:#?}`
//! at debug level, and its `Headers` `Debug` implementation redacts every header *except*
//! `Authorization` (`azure_core-0.21.0/src/headers/mod.rs`, `impl Debug for Headers`). A token
//! added earlier in the pipeline would be printed by `-vv`. Here the token goes on a `reqwest`
//! request built inside the transport, marked sensitive by `bearer_auth`, and the pipeline's own
//! `Request` never holds it.
//!
//! Must not: send to any host but the ARM endpoint, retry without counting, sleep past the
//! overall deadline, or put a token in an error or a log line.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use azure_core::auth::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::headers::{HeaderName, HeaderValue, Headers};
use azure_core::{Body, Context, Policy, PolicyResult, Request, Response, StatusCode, Url};
use bytes::Bytes;
use tokio::time::Instant;

use super::ArmError;
use super::counters::Counters;
use super::pacing::{Pacer, Priority};
use super::retry::{
    ATTEMPT_TIMEOUT, BACKOFF_CAP, THROTTLE_BACKOFF_CAP, is_transient_status, jittered_backoff, retry_after,
};

/// ARM's operation types, each with its own bucket and remaining-quota header (domain.md §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallOp {
    Read,
    Write,
    Delete,
}

impl CallOp {
    /// The plural in ARM's header names (`x-ms-ratelimit-remaining-subscription-reads`).
    fn header_word(self) -> &'static str {
        match self {
            CallOp::Read => "reads",
            CallOp::Write => "writes",
            CallOp::Delete => "deletes",
        }
    }
}

/// Per-call facts the policies need, carried in the pipeline `Context`.
#[derive(Debug, Clone)]
pub(crate) struct CallInfo {
    /// The rate-limit bucket: the lower-cased subscription id, or `tenant`.
    pub key: String,
    pub subscription: Option<String>,
    pub op: CallOp,
    /// At the concurrency gate: next pages of a list go first.
    pub priority: Priority,
}

impl CallInfo {
    pub fn new(subscription: Option<&str>) -> CallInfo {
        Self::with_op(subscription, CallOp::Read)
    }

    pub fn with_op(subscription: Option<&str>, op: CallOp) -> CallInfo {
        let subscription = subscription
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty());
        CallInfo {
            key: subscription.clone().unwrap_or_else(|| "tenant".into()),
            subscription,
            op,
            priority: Priority::DEFAULT,
        }
    }

    fn from(ctx: &Context) -> CallInfo {
        ctx.get::<CallInfo>()
            .cloned()
            .unwrap_or_else(|| CallInfo::new(None))
    }
}

/// A failure below HTTP (connect, TLS, timeout, broken body), and whether retrying can help.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub(crate) struct TransportFailure {
    pub detail: String,
    pub retryable: bool,
}

pub(crate) fn to_azure(e: impl std::error::Error + Send + Sync + 'static) -> azure_core::Error {
    azure_core::Error::new(ErrorKind::Other, e)
}

/// Finds an error of type `T` anywhere in an azure_core error's chain.
pub(crate) fn find<T: std::error::Error + 'static>(e: &azure_core::Error) -> Option<&T> {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    loop {
        if let Some(t) = cur.downcast_ref::<T>() {
            return Some(t);
        }
        cur = cur.source()?;
    }
}

/// Every message in an error chain, deduplicated, joined with ": ".
pub(crate) fn chain_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// The one ARM endpoint requests may go to: scheme, host and port must all match.
#[derive(Debug, Clone)]
pub(crate) struct HostGuard {
    pub base: Url,
}

impl HostGuard {
    pub fn new(base: &Url) -> Result<HostGuard, ArmError> {
        if base.scheme() != "https" {
            return Err(ArmError::Invalid(format!(
                "the ARM endpoint {base} is not https: bearer tokens are only sent over TLS; fix --arm-endpoint"
            )));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(ArmError::Invalid(format!(
                "the ARM endpoint {base} has no host: fix --arm-endpoint"
            )));
        }
        Ok(HostGuard { base: base.clone() })
    }

    pub fn allows(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str().map(str::to_ascii_lowercase)
                == self.base.host_str().map(str::to_ascii_lowercase)
            && url.port_or_known_default() == self.base.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none()
    }

    /// `scheme://host:port` of a URL, for messages.
    pub fn authority(url: &Url) -> String {
        format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    pub fn check(&self, url: &Url) -> Result<(), ArmError> {
        if self.allows(url) {
            Ok(())
        } else {
            Err(ArmError::HostRefused {
                host: Self::authority(url),
                expected: Self::authority(&self.base),
            })
        }
    }
}

/// First in the pipeline: refuses any request for another host before anything else happens.
#[derive(Debug)]
pub(crate) struct HostGuardPolicy {
    pub guard: HostGuard,
}

#[async_trait]
impl Policy for HostGuardPolicy {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        self.guard.check(request.url()).map_err(to_azure)?;
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// Retries: the only place that decides to send a request again (azure_core's own retry policy
/// is off, so each retry is counted exactly once, here).
pub(crate) struct RetryPolicy {
    pub pacer: Arc<Pacer>,
    pub counters: Arc<Counters>,
    pub credential: Arc<dyn TokenCredential>,
    pub deadline: Instant,
    pub timeout: Duration,
    pub max_attempts: u32,
}

// Manual `Debug`s leave the credential out: its `Debug` is not ours to trust with secrets.
impl std::fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl RetryPolicy {
    fn deadline_error(&self, url: &Url, waiting_for: impl Into<String>) -> azure_core::Error {
        to_azure(ArmError::Deadline {
            url: url.to_string(),
            waiting_for: waiting_for.into(),
            timeout: self.timeout,
        })
    }

    /// Sleeps `d`, or fails at once if that would pass the deadline.
    async fn back_off(&self, d: Duration, url: &Url, why: &str) -> Result<(), azure_core::Error> {
        if Instant::now() + d > self.deadline {
            return Err(self.deadline_error(url, format!("backing off after {why}")));
        }
        tracing::debug!(url = %url, wait_ms = d.as_millis() as u64, "retrying after {why}");
        tokio::time::sleep(d).await;
        Ok(())
    }

    fn retried(&self) {
        Counters::add(&self.counters.retries, 1);
    }
}

fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.get_optional_str(&HeaderName::from(name.to_ascii_lowercase()))
}

fn buffered(status: StatusCode, headers: Headers, body: Bytes) -> Response {
    Response::new(status, headers, Box::pin(futures::stream::iter([Ok(body)])))
}

#[async_trait]
impl Policy for RetryPolicy {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        let call = CallInfo::from(ctx);
        let url = request.url().clone();
        let mut attempt: u32 = 0;
        // Failures that count against `max_attempts` (5xx, network, broken bodies); 429s and the
        // token refresh do not.
        let mut transient_failures: u32 = 0;
        let mut throttle_retries: u32 = 0;
        let mut refreshed_token = false;
        loop {
            attempt += 1;
            if attempt > 1 {
                self.retried();
            }
            let sent = tokio::time::timeout_at(self.deadline, next[0].send(ctx, request, &next[1..])).await;
            let response = match sent {
                Err(_) => {
                    return Err(self.deadline_error(&url, "waiting for ARM's answer or for a send slot"));
                }
                Ok(Err(e)) => {
                    if find::<ArmError>(&e).is_some() {
                        return Err(e);
                    }
                    let (detail, retryable) = match find::<TransportFailure>(&e) {
                        Some(f) => (f.detail.clone(), f.retryable),
                        None => (chain_message(&e), false),
                    };
                    transient_failures += 1;
                    if !retryable || transient_failures >= self.max_attempts {
                        return Err(to_azure(ArmError::Transport(format!(
                            "{detail} (after {attempt} attempt{})",
                            if attempt == 1 { "" } else { "s" }
                        ))));
                    }
                    self.back_off(
                        jittered_backoff(transient_failures, BACKOFF_CAP),
                        &url,
                        "a network failure",
                    )
                    .await?;
                    continue;
                }
                Ok(Ok(r)) => r,
            };
            let status = u16::from(response.status());

            if (200..300).contains(&status) {
                // The transport buffered the body; check it is JSON at all, so that a truncated or
                // mangled page is fetched again instead of failing the list.
                let (st, headers, body) = response.deconstruct();
                let bytes = body.collect().await?;
                // Only reads are fetched again: a write's answer (a 202 or 204 has no body at
                // all) says the write was taken, and sending it again would act twice.
                let valid = *request.method() != azure_core::Method::Get
                    || serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok();
                if !valid {
                    transient_failures += 1;
                }
                if valid || transient_failures >= self.max_attempts {
                    return Ok(buffered(st, headers, bytes));
                }
                tracing::info!(url = %url, attempt, "ARM's answer is not valid JSON; fetching it again");
                self.back_off(
                    jittered_backoff(transient_failures, BACKOFF_CAP),
                    &url,
                    "a broken body",
                )
                .await?;
                continue;
            }

            if status == 401 && !refreshed_token {
                // An expired or revoked token: drop the credential's cache and try once more.
                refreshed_token = true;
                tracing::info!(url = %url, "ARM rejected the token; refreshing it once");
                if let Err(e) = self.credential.clear_cache().await {
                    tracing::debug!("clearing the token cache failed: {}", chain_message(&e));
                }
                continue;
            }

            let asked = retry_after(|n| header(response.headers(), n), SystemTime::now());
            if status == 429 || (status == 503 && asked.is_some()) {
                throttle_retries += 1;
                let wait = asked.unwrap_or_else(|| jittered_backoff(throttle_retries, THROTTLE_BACKOFF_CAP));
                let until = Instant::now() + wait;
                // Every request of this subscription waits until then, this one included, so none
                // arrives early (ARM would refuse it with a new 429); the rate-limit policy fails
                // those that cannot wait that long at once.
                self.pacer.block(&call.key, until);
                if until > self.deadline {
                    return Err(to_azure(ArmError::Throttled {
                        url: url.to_string(),
                        retry_after: wait,
                        timeout: self.timeout,
                    }));
                }
                tracing::warn!(
                    url = %url,
                    status,
                    wait_ms = wait.as_millis() as u64,
                    "ARM is throttling this subscription; holding every request for it until Retry-After"
                );
                continue;
            }

            if is_transient_status(status) && transient_failures + 1 < self.max_attempts {
                transient_failures += 1;
                let wait = asked
                    .unwrap_or_default()
                    .max(jittered_backoff(transient_failures, BACKOFF_CAP));
                self.back_off(wait, &url, &format!("HTTP {status}")).await?;
                continue;
            }
            return Ok(response);
        }
    }
}

/// The remaining-quota value ARM reports for this call's bucket (reads, writes or deletes): the
/// lower of the per-principal and the global header when both are present (domain.md §5.1).
pub(crate) fn remaining_reads(call: &CallInfo, headers: &Headers) -> Option<u64> {
    let word = call.op.header_word();
    let names: Vec<String> = if call.subscription.is_some() {
        vec![
            format!("x-ms-ratelimit-remaining-subscription-{word}"),
            format!("x-ms-ratelimit-remaining-subscription-global-{word}"),
        ]
    } else {
        vec![format!("x-ms-ratelimit-remaining-tenant-{word}")]
    };
    names
        .iter()
        .filter_map(|n| header(headers, n).and_then(|v| v.trim().parse::<u64>().ok()))
        .min()
}

/// Whether a request goes to the Compute resource provider (which has budgets of its own).
pub(crate) fn is_compute(url: &url::Url) -> bool {
    url.path()
        .to_ascii_lowercase()
        .contains("/providers/microsoft.compute/")
}

/// The lowest count of Compute's policies in `x-ms-ratelimit-remaining-resource`
/// (`Microsoft.Compute/HighCostGet3Min;107,Microsoft.Compute/HighCostGet30Min;587`; domain.md
/// §5.1). Entries of other providers and unreadable entries are ignored.
pub(crate) fn remaining_compute(headers: &Headers) -> Option<u64> {
    header(headers, "x-ms-ratelimit-remaining-resource")?
        .split(',')
        .filter_map(|entry| {
            let (policy, count) = entry.trim().rsplit_once(';')?;
            policy
                .trim()
                .to_ascii_lowercase()
                .starts_with("microsoft.compute/")
                .then(|| count.trim().parse::<u64>().ok())?
        })
        .min()
}

/// Waits at the pacing gates for every attempt, then feeds the answer's budget back.
#[derive(Debug)]
pub(crate) struct RateLimitPolicy {
    pub pacer: Arc<Pacer>,
    pub deadline: Instant,
    pub timeout: Duration,
}

#[async_trait]
impl Policy for RateLimitPolicy {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        let call = CallInfo::from(ctx);
        let asked = std::time::Instant::now();
        let slot = self
            .pacer
            .acquire(&call.key, self.deadline, call.priority, is_compute(request.url()))
            .await
            .map_err(|wait| {
                to_azure(ArmError::Throttled {
                    url: request.url().to_string(),
                    retry_after: wait,
                    timeout: self.timeout,
                })
            })?;
        let admitted = std::time::Instant::now();
        let result = next[0].send(ctx, request, &next[1..]).await;
        let remaining = result
            .as_ref()
            .ok()
            .and_then(|r| remaining_reads(&call, r.headers()));
        // Where a request's time goes (BENCHMARKS.md): waiting at the pacing gates, then on the wire.
        tracing::trace!(
            url = %request.url(),
            gates_ms = admitted.duration_since(asked).as_millis() as u64,
            wire_ms = admitted.elapsed().as_millis() as u64,
            remaining,
            "ARM request answered"
        );
        let compute_remaining = result.as_ref().ok().and_then(|r| remaining_compute(r.headers()));
        slot.observe(remaining, compute_remaining);
        result
    }
}

/// Counts 429s and the lowest remaining read budget per subscription.
#[derive(Debug)]
pub(crate) struct CountersPolicy {
    pub counters: Arc<Counters>,
}

#[async_trait]
impl Policy for CountersPolicy {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        let result = next[0].send(ctx, request, &next[1..]).await;
        if let Ok(r) = &result {
            let call = CallInfo::from(ctx);
            if u16::from(r.status()) == 429 {
                Counters::add(&self.counters.throttled_429, 1);
            }
            // The report's budget is the read budget; writes have their own limiter.
            if call.op == CallOp::Read
                && let Some(sub) = &call.subscription
                && let Some(rem) = remaining_reads(&call, r.headers())
            {
                self.counters.record_remaining(sub, rem);
            }
        }
        result
    }
}

/// Marks a request in flight for the peak-concurrency counter, even if the future is dropped.
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn enter(c: &'a Counters) -> InFlight<'a> {
        c.enter();
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// The end of the pipeline: checks the host once more, attaches the bearer token, sends with our
/// `reqwest` client (its CAs, no redirects) and buffers the whole body within [`ATTEMPT_TIMEOUT`].
pub(crate) struct BearerTransport {
    pub http: reqwest::Client,
    pub credential: Arc<dyn TokenCredential>,
    pub scope: String,
    pub guard: HostGuard,
    pub counters: Arc<Counters>,
}

impl std::fmt::Debug for BearerTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerTransport")
            .field("endpoint", &self.guard.base.as_str())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

fn classify(e: &reqwest::Error) -> TransportFailure {
    let chain = chain_message(e);
    let lower = chain.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("invalid peer") {
        return TransportFailure {
            detail: format!(
                "{chain}. The TLS certificate of the ARM endpoint is not trusted: if ARM is reached through a TLS-inspecting proxy or a private cloud, pass its CA with --ca-file (or SSL_CERT_FILE)"
            ),
            retryable: false,
        };
    }
    let hint = if e.is_timeout() {
        "ARM did not answer in time"
    } else if e.is_connect() {
        "check the ARM endpoint (--cloud / --arm-endpoint), DNS, proxy (HTTPS_PROXY) and firewall"
    } else {
        "the connection broke; rerun if it persists"
    };
    TransportFailure {
        detail: format!("{chain} ({hint})"),
        retryable: true,
    }
}

#[async_trait]
impl Policy for BearerTransport {
    async fn send(&self, _ctx: &Context, request: &mut Request, _next: &[Arc<dyn Policy>]) -> PolicyResult {
        // Defence in depth: the host guard policy already checked, but this is where the token is.
        self.guard.check(request.url()).map_err(to_azure)?;
        let token = self
            .credential
            .get_token(&[self.scope.as_str()])
            .await
            .map_err(|e| to_azure(ArmError::Token(chain_message(&e))))?;
        let method = reqwest::Method::from_str(request.method().as_ref()).map_err(|_| {
            to_azure(ArmError::Invalid(format!(
                "unsupported method {}",
                request.method()
            )))
        })?;
        let mut rb = self.http.request(method, request.url().clone());
        for (name, value) in request.headers().iter() {
            if !name.as_str().eq_ignore_ascii_case("authorization") {
                rb = rb.header(name.as_str(), value.as_str());
            }
        }
        // `bearer_auth` marks the header sensitive, so reqwest and hyper never print it.
        rb = rb.bearer_auth(token.token.secret());
        match request.body() {
            Body::Bytes(b) if !b.is_empty() => rb = rb.body(b.clone()),
            Body::Bytes(_) => {}
            #[allow(unreachable_patterns)]
            _ => {
                return Err(to_azure(ArmError::Invalid(
                    "streaming request bodies are not supported".into(),
                )));
            }
        }
        Counters::add(&self.counters.requests, 1);
        let _in_flight = InFlight::enter(&self.counters);
        let exchange = async {
            let resp = rb.send().await?;
            let status = resp.status().as_u16();
            let headers = to_headers(resp.headers());
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        let (status, headers, body) = match tokio::time::timeout(ATTEMPT_TIMEOUT, exchange).await {
            Err(_) => {
                return Err(to_azure(TransportFailure {
                    detail: format!(
                        "ARM did not answer {} within {}s",
                        request.url(),
                        ATTEMPT_TIMEOUT.as_secs()
                    ),
                    retryable: true,
                }));
            }
            Ok(Err(e)) => return Err(to_azure(classify(&e))),
            Ok(Ok(x)) => x,
        };
        Counters::add(&self.counters.bytes, body.len() as u64);
        let status = StatusCode::try_from(status).map_err(|_| {
            to_azure(TransportFailure {
                detail: format!(
                    "ARM answered {} with the unknown HTTP status {status}",
                    request.url()
                ),
                retryable: false,
            })
        })?;
        Ok(buffered(status, headers, body))
    }
}

fn to_headers(map: &reqwest::header::HeaderMap) -> Headers {
    let mut h = Headers::new();
    for (k, v) in map {
        if let Ok(value) = v.to_str() {
            h.insert(
                HeaderName::from(k.as_str().to_string()),
                HeaderValue::from(value.to_string()),
            );
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_guard_compares_scheme_host_and_port() {
        let g = HostGuard::new(&Url::parse("https://management.azure.com/").unwrap()).unwrap();
        for ok in [
            "https://management.azure.com/subscriptions?api-version=1",
            "https://MANAGEMENT.azure.com:443/x",
        ] {
            assert!(g.allows(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://management.azure.com/x",
            "https://management.azure.com:8443/x",
            "https://management.azure.com.evil.example/x",
            "https://evil.example/x",
            "https://user:pw@management.azure.com/x",
        ] {
            let e = g.check(&Url::parse(bad).unwrap()).unwrap_err();
            assert_eq!(e.step(), "host-refused", "{bad}");
        }
        assert!(HostGuard::new(&Url::parse("http://127.0.0.1:1/").unwrap()).is_err());
    }

    #[test]
    fn compute_counts_are_read_from_every_policy() {
        let mut h = Headers::new();
        assert_eq!(remaining_compute(&h), None);
        h.insert(
            "x-ms-ratelimit-remaining-resource",
            "Microsoft.Compute/GetVMScaleSet3Min;197, Microsoft.Compute/GetVMScaleSet30Min;1297",
        );
        assert_eq!(remaining_compute(&h), Some(197));
        h.insert(
            "x-ms-ratelimit-remaining-resource",
            "Microsoft.Compute/HighCostGet;159,Microsoft.Other/X;3,garbage,Microsoft.Compute/Y;lots",
        );
        assert_eq!(remaining_compute(&h), Some(159));
        let u = |p: &str| url::Url::parse(&format!("https://management.azure.com{p}")).unwrap();
        assert!(is_compute(&u(
            "/subscriptions/s/providers/Microsoft.Compute/virtualMachines"
        )));
        assert!(is_compute(&u(
            "/subscriptions/s/resourceGroups/rg/providers/microsoft.compute/virtualMachineScaleSets/v/virtualMachines"
        )));
        assert!(!is_compute(&u(
            "/subscriptions/s/providers/Microsoft.Network/loadBalancers"
        )));
    }

    #[test]
    fn remaining_reads_takes_the_lower_header() {
        let mut h = Headers::new();
        h.insert("x-ms-ratelimit-remaining-subscription-reads", "120");
        h.insert("x-ms-ratelimit-remaining-subscription-global-reads", "90");
        let sub = CallInfo::new(Some("SUB"));
        assert_eq!(sub.key, "sub");
        assert_eq!(remaining_reads(&sub, &h), Some(90));
        assert_eq!(remaining_reads(&CallInfo::new(None), &h), None);
        h.insert("x-ms-ratelimit-remaining-tenant-reads", "7");
        assert_eq!(remaining_reads(&CallInfo::new(None), &h), Some(7));
        // A delete reads the delete budget only.
        let del = CallInfo::with_op(Some("SUB"), CallOp::Delete);
        assert_eq!(remaining_reads(&del, &h), None);
        h.insert("x-ms-ratelimit-remaining-subscription-deletes", "9");
        assert_eq!(remaining_reads(&del, &h), Some(9));
    }

    #[test]
    fn errors_travel_through_azure_core_errors() {
        let e = to_azure(ArmError::NextLinkLoop { url: "u".into() });
        assert_eq!(find::<ArmError>(&e).map(ArmError::step), Some("next-link-loop"));
        let e = to_azure(TransportFailure {
            detail: "reset".into(),
            retryable: true,
        });
        assert!(find::<TransportFailure>(&e).is_some_and(|f| f.retryable));
        assert!(find::<ArmError>(&e).is_none());
    }
}
