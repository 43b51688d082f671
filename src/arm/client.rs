//! [`ArmClient`]: paged lists and single GETs through the policy pipeline, with the cache.
//!
//! Paging follows `nextLink` verbatim (it carries api-version and `$skiptoken`, domain.md §6.1),
//! but only to the configured ARM endpoint, and never twice to the same page. A list that fails
//! keeps what it read and says why ([`ListOutcome::error`]); it never pretends to be complete.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use azure_core::auth::TokenCredential;
use azure_core::{
    ClientOptions, Context, Method, Pipeline, Policy, Request, RetryOptions, TransportOptions, Url,
};
use serde_json::Value;
use tokio::time::Instant;

use super::cache::{DiskCache, default_cache_dir};
use super::counters::Counters;
use super::error::arm_error_parts;
use super::policy::{
    BearerTransport, CallInfo, CountersPolicy, HostGuard, HostGuardPolicy, RateLimitPolicy, RetryPolicy,
    chain_message, find,
};
use super::{ArmError, ArmOptions, CacheScope, pacing::Pacer};

/// A request for [`ArmClient::send_raw`].
pub(super) struct RawRequest<'a> {
    pub call: &'a CallInfo,
    pub url: &'a Url,
    pub method: Method,
    pub body: Option<bytes::Bytes>,
    pub if_match: Option<&'a str>,
    /// Through the write pipeline (its own limiter).
    pub write: bool,
}

/// An answer of [`ArmClient::send_raw`].
pub(super) struct RawResponse {
    pub status: u16,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
use crate::auth::Cloud;
use crate::report::CallStats;
use serde_json::value::RawValue;

/// One list page, `{"value": [...], "nextLink": ...}` (keys matched case-insensitively), with
/// the items kept as JSON text: no tree is built for a page.
struct ListPage {
    value: Vec<Box<RawValue>>,
    next_link: Option<String>,
}

impl ListPage {
    fn parse(text: &str) -> Result<ListPage, String> {
        use serde::de::{IgnoredAny, MapAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = (Option<Box<RawValue>>, Option<Value>);
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list page (a JSON object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let (mut value, mut next) = (None, None);
                while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    if k.eq_ignore_ascii_case("value") && value.is_none() {
                        value = Some(m.next_value::<Box<RawValue>>()?);
                    } else if k.eq_ignore_ascii_case("nextLink") && next.is_none() {
                        next = Some(m.next_value::<Value>()?);
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok((value, next))
            }
        }
        struct Top((Option<Box<RawValue>>, Option<Value>));
        impl<'de> serde::Deserialize<'de> for Top {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Top, D::Error> {
                d.deserialize_map(V).map(Top)
            }
        }
        let not_a_page = || "the answer has no `value` array, so it is not a list page".to_string();
        let Top((value, next)) = serde_json::from_str(text).map_err(|_| not_a_page())?;
        let value = value
            .filter(|v| v.get().trim_start().starts_with('['))
            .ok_or_else(not_a_page)?;
        let value: Vec<Box<RawValue>> = serde_json::from_str(value.get()).map_err(|e| e.to_string())?;
        Ok(ListPage {
            value,
            next_link: next.and_then(|v| v.as_str().map(str::to_string)),
        })
    }
}

/// What a paged list produced. On error, `items` holds every item read before the failure.
#[derive(Debug, Clone)]
pub struct ListOutcome {
    /// Each item as ARM sent it (JSON text; see `azaudit_world::raw`).
    pub items: Vec<Box<RawValue>>,
    pub pages: u32,
    pub error: Option<ArmError>,
}

impl ListOutcome {
    pub fn is_complete(&self) -> bool {
        self.error.is_none()
    }

    fn failed(error: ArmError) -> ListOutcome {
        ListOutcome {
            items: Vec::new(),
            pages: 0,
            error: Some(error),
        }
    }
}

/// The ARM client of one run. Cheap to clone; all clones share the budget, counters and deadline.
#[derive(Clone)]
pub struct ArmClient {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) pipeline: Pipeline,
    /// PUT and DELETE: the same policies with their own limiter (`--max-writes-per-second`,
    /// burst 1, one write in flight), so writes never share the read budget's pace.
    pub(super) write_pipeline: Pipeline,
    pub(super) guard: HostGuard,
    pub(super) counters: Arc<Counters>,
    pub(super) cache: Option<DiskCache>,
    /// `false` with `--refresh`: the cache is written, not read.
    read_cache: bool,
    principal: String,
    pub(super) deadline: Instant,
    pub(super) options: ArmOptions,
}

/// Everything the pipelines of one client share.
struct PipelineParts<'a> {
    guard: &'a HostGuard,
    counters: &'a Arc<Counters>,
    credential: &'a Arc<dyn TokenCredential>,
    http: &'a reqwest::Client,
    scope: &'a str,
    deadline: Instant,
    timeout: Duration,
    max_attempts: u32,
}

/// One pipeline: host guard, our retry policy in azure_core's retry slot, pacing, counters, and
/// the bearer transport.
fn build_pipeline(parts: &PipelineParts<'_>, pacer: Arc<Pacer>) -> Result<Pipeline, ArmError> {
    let per_call: Vec<Arc<dyn Policy>> = vec![Arc::new(HostGuardPolicy {
        guard: parts.guard.clone(),
    })];
    let retry: Arc<dyn Policy> = Arc::new(RetryPolicy {
        pacer: pacer.clone(),
        counters: parts.counters.clone(),
        credential: parts.credential.clone(),
        deadline: parts.deadline,
        timeout: parts.timeout,
        max_attempts: parts.max_attempts,
    });
    let per_retry: Vec<Arc<dyn Policy>> = vec![
        Arc::new(RateLimitPolicy {
            pacer,
            deadline: parts.deadline,
            timeout: parts.timeout,
        }),
        Arc::new(CountersPolicy {
            counters: parts.counters.clone(),
        }),
    ];
    let transport = TransportOptions::new_custom_policy(Arc::new(BearerTransport {
        http: parts.http.clone(),
        credential: parts.credential.clone(),
        scope: parts.scope.to_string(),
        guard: parts.guard.clone(),
        counters: parts.counters.clone(),
    }));
    let options = ClientOptions::new(transport).retry(RetryOptions::none());
    let mut pipeline = Pipeline::new(
        option_env!("CARGO_PKG_NAME"),
        option_env!("CARGO_PKG_VERSION"),
        options,
        per_call.clone(),
        per_retry,
    );
    // azure_core 0.21 always puts a retry policy after the per-call, telemetry and custom
    // headers policies, and even its `RetryOptions::none()` turns every non-2xx answer into an
    // error (`policies/retry_policies/no_retry.rs`), losing ARM's status for our own handling.
    // Our retry policy takes that slot instead: retries are decided and counted once, here.
    let slot = per_call.len() + 2;
    let is_stub = pipeline
        .policies()
        .get(slot)
        .is_some_and(|p| format!("{p:?}").starts_with("NoRetryPolicy"));
    if !is_stub {
        return Err(ArmError::Invalid(
            "azure_core's pipeline layout changed: the retry slot was not found; update src/arm/client.rs"
                .into(),
        ));
    }
    pipeline.replace_policy(retry, slot);
    Ok(pipeline)
}

impl fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.inner.guard.base.as_str())
            .field("options", &self.inner.options)
            .field("cache_dir", &self.cache_dir())
            .finish_non_exhaustive()
    }
}

enum ListRun {
    Done(ListOutcome),
    /// A cached chain of pages broke off (an entry expired mid-list): start over from ARM.
    Restart,
}

/// A URL as a paging-loop key: ARM compares paths case-insensitively and does not care about the
/// order of query parameters, so neither do we.
fn loop_key(url: &Url) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect();
    pairs.sort();
    format!("{}{}", HostGuard::authority(url), url.path().to_ascii_lowercase()) + &format!("{pairs:?}")
}

impl ArmClient {
    /// Builds the client; the overall `--timeout` starts now. Fails on options that cannot work,
    /// an ARM endpoint that is not https, or a cache directory that is not private.
    pub fn new(
        opts: ArmOptions,
        http: reqwest::Client,
        credential: Arc<dyn TokenCredential>,
        cloud: &Cloud,
        cache_scope: CacheScope,
    ) -> Result<ArmClient, ArmError> {
        if !opts.max_rps.is_finite() || opts.max_rps <= 0.0 {
            return Err(ArmError::Invalid(format!(
                "--max-rps must be above 0 (got {})",
                opts.max_rps
            )));
        }
        if opts.concurrency == 0 {
            return Err(ArmError::Invalid("--concurrency must be at least 1".into()));
        }
        if opts.timeout.is_zero() {
            return Err(ArmError::Invalid("--timeout must be above 0".into()));
        }
        if !opts.max_writes_per_second.is_finite() || opts.max_writes_per_second <= 0.0 {
            return Err(ArmError::Invalid(format!(
                "--max-writes-per-second must be above 0 (got {})",
                opts.max_writes_per_second
            )));
        }
        let guard = HostGuard::new(&cloud.arm_endpoint)?;
        let counters = Arc::new(Counters::default());
        let cache = if opts.cache.enabled {
            match opts.cache.dir.clone().or_else(default_cache_dir) {
                Some(dir) => Some(DiskCache::open(
                    dir,
                    opts.cache.ttl,
                    cache_scope.clone(),
                    counters.clone(),
                )?),
                None => {
                    tracing::warn!(
                        "no home directory and no XDG_CACHE_HOME: the ARM response cache is off (pass --cache-dir to use one)"
                    );
                    None
                }
            }
        } else {
            None
        };
        let scope = cloud.scope();
        let deadline = Instant::now() + opts.timeout;
        let parts = PipelineParts {
            guard: &guard,
            counters: &counters,
            credential: &credential,
            http: &http,
            scope: &scope,
            deadline,
            timeout: opts.timeout,
            max_attempts: opts.max_attempts_5xx.max(1),
        };
        let pipeline = build_pipeline(
            &parts,
            Arc::new(Pacer::new(opts.max_rps, opts.concurrency).with_compute_hold(opts.compute_hold)),
        )?;
        let write_pipeline = build_pipeline(
            &parts,
            Arc::new(Pacer::with_burst(opts.max_writes_per_second, 1, 1)),
        )?;
        Ok(ArmClient {
            inner: Arc::new(Inner {
                pipeline,
                write_pipeline,
                guard,
                counters,
                read_cache: !opts.cache.refresh,
                cache,
                principal: cache_scope.principal,
                deadline,
                options: opts,
            }),
        })
    }

    /// The ARM endpoint every request goes to.
    pub fn endpoint(&self) -> &Url {
        &self.inner.guard.base
    }

    /// The cache directory in use (`None`: no cache).
    pub fn cache_dir(&self) -> Option<PathBuf> {
        self.inner.cache.as_ref().map(|c| c.dir().to_path_buf())
    }

    /// Time left before the overall deadline.
    pub fn time_left(&self) -> Duration {
        self.inner.deadline.saturating_duration_since(Instant::now())
    }

    /// Counters so far: requests, pages, retries, 429s, cache hits, bytes, lowest remaining reads.
    pub fn stats(&self) -> CallStats {
        self.inner.counters.snapshot()
    }

    /// Cache entries found corrupt and deleted so far.
    pub fn cache_discarded(&self) -> u64 {
        Counters::get(&self.inner.counters.cache_discarded)
    }

    /// The most requests that were on the wire at once (bounded by `--concurrency`).
    pub fn peak_concurrency(&self) -> u64 {
        Counters::get(&self.inner.counters.peak_in_flight)
    }

    pub(super) fn url_for(&self, path_and_query: &str) -> Result<Url, ArmError> {
        if !path_and_query.starts_with('/') {
            return Err(ArmError::Invalid(format!(
                "{path_and_query:?} is not an ARM path: pass the path relative to the ARM endpoint, starting with '/'"
            )));
        }
        let base = self.inner.guard.base.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}{path_and_query}"))
            .map_err(|e| ArmError::Invalid(format!("{path_and_query:?} does not make a URL ({e})")))?;
        self.inner.guard.check(&url)?;
        Ok(url)
    }

    /// One request through a pipeline, uninterpreted: status, headers (lower-cased names) and
    /// body. Failures below HTTP (and the policies' own refusals) are [`ArmError`]s.
    pub(super) async fn send_raw(&self, raw: RawRequest<'_>) -> Result<RawResponse, ArmError> {
        let mut ctx = Context::new();
        ctx.insert(raw.call.clone());
        let mut req = Request::new(raw.url.clone(), raw.method);
        req.insert_header("accept", "application/json");
        if let Some(m) = raw.if_match {
            req.insert_header("if-match", m.to_string());
        }
        if let Some(b) = raw.body {
            req.insert_header("content-type", "application/json");
            req.set_body(b);
        }
        let pipeline = if raw.write {
            &self.inner.write_pipeline
        } else {
            &self.inner.pipeline
        };
        let resp = pipeline
            .send(&ctx, &mut req)
            .await
            .map_err(|e| match find::<ArmError>(&e) {
                Some(a) => a.clone(),
                None => ArmError::Transport(chain_message(&e)),
            })?;
        let (status, headers, body) = resp.deconstruct();
        let headers = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.as_str().to_string()))
            .collect();
        let body = body
            .collect()
            .await
            .map_err(|e| ArmError::Transport(chain_message(&e)))?;
        Ok(RawResponse {
            status: u16::from(status),
            headers,
            body: body.to_vec(),
        })
    }

    /// One request through the pipeline; the answer interpreted into JSON or an [`ArmError`].
    async fn fetch_network(&self, call: &CallInfo, url: &Url) -> Result<Box<RawValue>, ArmError> {
        self.fetch_network_opts(call, url, true).await
    }

    /// [`ArmClient::fetch_network`]; `store`: write a successful answer to the cache.
    pub(super) async fn fetch_network_opts(
        &self,
        call: &CallInfo,
        url: &Url,
        store: bool,
    ) -> Result<Box<RawValue>, ArmError> {
        let RawResponse { status, body, .. } = self
            .send_raw(RawRequest {
                call,
                url,
                method: Method::Get,
                body: None,
                if_match: None,
                write: false,
            })
            .await?;
        if (200..300).contains(&status) {
            let v: Box<RawValue> = serde_json::from_slice(&body).map_err(|e| ArmError::DecodePage {
                url: url.to_string(),
                detail: e.to_string(),
            })?;
            if store && let Some(c) = &self.inner.cache {
                c.write(url.as_str(), status, &v);
            }
            return Ok(v);
        }
        Err(self.error_for(call, url, status, &body))
    }

    /// ARM's answer `status` (not 2xx) as an [`ArmError`].
    pub(super) fn error_for(&self, call: &CallInfo, url: &Url, status: u16, body: &[u8]) -> ArmError {
        let (code, message) = arm_error_parts(body);
        match status {
            401 => ArmError::Unauthorized {
                url: url.to_string(),
                code,
                message,
            },
            403 => ArmError::Forbidden {
                action_hint: self.forbidden_hint(call, url),
                code,
                message,
            },
            404 => ArmError::NotFound {
                url: url.to_string(),
                code,
                message,
            },
            s if s >= 500 => ArmError::Server { status: s, code },
            s => ArmError::Request {
                url: url.to_string(),
                status: s,
                code,
                message,
            },
        }
    }

    pub(super) fn forbidden_hint(&self, call: &CallInfo, url: &Url) -> String {
        let scope = match &call.subscription {
            Some(s) => format!("/subscriptions/{s}"),
            None => {
                // `/subscriptions/<id>/...` in the URL, else the tenant root.
                let segs: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
                match segs.as_slice() {
                    ["subscriptions", id, ..] if !id.is_empty() => format!("/subscriptions/{id}"),
                    _ => "/".to_string(),
                }
            }
        };
        let who = if self.inner.principal.is_empty() {
            "<principal id>"
        } else {
            self.inner.principal.as_str()
        };
        if call.op != super::policy::CallOp::Read {
            // Cleanup needs the Network RP's write and delete actions (doctor's cleanup check).
            return format!(
                "give the principal write access to the network resources, e.g. `az role assignment create --assignee {who} --role \"Network Contributor\" --scope {scope}`, or leave this action out of the plan"
            );
        }
        format!(
            "give the principal read access, e.g. `az role assignment create --assignee {who} --role Reader --scope {scope}` (Reader is all an audit needs), or leave this subscription out"
        )
    }

    /// A cached body (counted as a hit) when reading the cache is allowed.
    fn cached(&self, url: &Url) -> Option<Box<RawValue>> {
        let c = self.inner.cache.as_ref()?;
        if !self.inner.read_cache {
            return None;
        }
        let v = c.read(url.as_str())?;
        Counters::add(&self.inner.counters.cache_hits, 1);
        Some(v)
    }

    /// GETs one resource (or any single ARM document). `subscription` picks the rate-limit bucket.
    pub async fn get(&self, subscription: Option<&str>, path_and_query: &str) -> Result<Value, ArmError> {
        let call = CallInfo::new(subscription);
        let url = self.url_for(path_and_query)?;
        let raw = match self.cached(&url) {
            Some(v) => v,
            None => self.fetch_network(&call, &url).await?,
        };
        serde_json::from_str(raw.get()).map_err(|e| ArmError::DecodePage {
            url: url.to_string(),
            detail: e.to_string(),
        })
    }

    /// GETs every page of a list and returns the items of all pages (the `value` arrays).
    /// `subscription` picks the rate-limit bucket and the counters.
    pub async fn list(&self, subscription: &str, path_and_query: &str) -> ListOutcome {
        self.list_in(Some(subscription), path_and_query).await
    }

    /// [`ArmClient::list`] for lists outside any subscription too (`/subscriptions`, `/tenants`),
    /// which draw from the tenant's bucket.
    pub async fn list_in(&self, subscription: Option<&str>, path_and_query: &str) -> ListOutcome {
        self.list_ranked(subscription, path_and_query, u8::MAX).await
    }

    /// [`ArmClient::list_in`] whose first page passes waiting first pages of higher `rank` at
    /// the concurrency gate (the collector ranks lists it expects to be long first).
    pub async fn list_ranked(
        &self,
        subscription: Option<&str>,
        path_and_query: &str,
        rank: u8,
    ) -> ListOutcome {
        let mut call = CallInfo::new(subscription);
        call.priority = super::pacing::Priority::First { rank };
        let first = match self.url_for(path_and_query) {
            Ok(u) => u,
            Err(e) => return ListOutcome::failed(e),
        };
        let mut read_cache = self.inner.read_cache && self.inner.cache.is_some();
        loop {
            match self.list_once(&call, &first, read_cache).await {
                ListRun::Done(outcome) => {
                    Counters::add(&self.inner.counters.pages, u64::from(outcome.pages));
                    if let Some(e) = &outcome.error {
                        tracing::warn!(url = %first, step = e.step(), pages = outcome.pages, "list incomplete: {e}");
                    }
                    return outcome;
                }
                ListRun::Restart => {
                    tracing::debug!(url = %first, "cached pages of this list expired part-way; fetching it again from ARM");
                    read_cache = false;
                }
            }
        }
    }

    async fn list_once(&self, call: &CallInfo, first: &Url, read_cache: bool) -> ListRun {
        let mut items = Vec::new();
        let mut pages: u32 = 0;
        let mut seen = HashSet::new();
        let mut url = first.clone();
        let mut all_cached = read_cache;
        let done = |items, pages, error| ListRun::Done(ListOutcome { items, pages, error });
        loop {
            if !seen.insert(loop_key(&url)) {
                return done(
                    items,
                    pages,
                    Some(ArmError::NextLinkLoop { url: url.to_string() }),
                );
            }
            let cached = if all_cached { self.cached(&url) } else { None };
            let page = match cached {
                Some(v) => v,
                None => {
                    if all_cached && pages > 0 {
                        // Earlier pages came from the cache, this one is gone: a skiptoken from
                        // an old page may no longer be valid, so read the whole list afresh.
                        return ListRun::Restart;
                    }
                    all_cached = false;
                    // Next pages pass first pages of other lists at the concurrency gate.
                    let next_call;
                    let call = if pages == 0 {
                        call
                    } else {
                        next_call = CallInfo {
                            priority: match call.priority {
                                super::pacing::Priority::First { rank } => {
                                    super::pacing::Priority::Continuation { rank }
                                }
                                other => other,
                            },
                            ..call.clone()
                        };
                        &next_call
                    };
                    match self.fetch_network(call, &url).await {
                        Ok(v) => v,
                        Err(e) => return done(items, pages, Some(e)),
                    }
                }
            };
            let page = match ListPage::parse(page.get()) {
                Ok(p) => p,
                Err(detail) => {
                    return done(
                        items,
                        pages,
                        Some(ArmError::DecodePage {
                            url: url.to_string(),
                            detail,
                        }),
                    );
                }
            };
            items.extend(page.value);
            pages += 1;
            let next = page.next_link.as_deref().map(str::trim).filter(|s| !s.is_empty());
            let Some(next) = next else {
                return done(items, pages, None);
            };
            url = match self.next_url(&url, next) {
                Ok(u) => u,
                Err(e) => return done(items, pages, Some(e)),
            };
        }
    }

    /// Resolves a `nextLink` and refuses it unless it names the ARM endpoint.
    fn next_url(&self, page: &Url, link: &str) -> Result<Url, ArmError> {
        let url = Url::parse(link)
            .or_else(|_| self.inner.guard.base.join(link))
            .map_err(|e| ArmError::DecodePage {
                url: page.to_string(),
                detail: format!("its nextLink {link:?} is not a URL ({e})"),
            })?;
        if !self.inner.guard.allows(&url) {
            tracing::warn!(page = %page, host = %HostGuard::authority(&url), "refusing a nextLink to another host");
            return Err(ArmError::ForeignNextLink {
                host: HostGuard::authority(&url),
            });
        }
        Ok(url)
    }
}

/// The collector's view of ARM (`collect::ArmSource`): every list through this client.
#[async_trait::async_trait]
impl crate::collect::ArmSource for ArmClient {
    async fn list(&self, subscription: Option<&str>, path_and_query: &str) -> crate::collect::RawList {
        crate::collect::ArmSource::list_ranked(self, subscription, path_and_query, u8::MAX).await
    }

    async fn list_ranked(
        &self,
        subscription: Option<&str>,
        path_and_query: &str,
        rank: u8,
    ) -> crate::collect::RawList {
        let out = ArmClient::list_ranked(self, subscription, path_and_query, rank).await;
        crate::collect::RawList {
            items: out.items,
            error: out.error.map(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_pages_are_read_without_trees_and_with_any_key_case() {
        let p = ListPage::parse(r#"{"Value": [{"id": "/a"}, {"id": "/b", "properties": {"x": [1]}}], "NEXTLINK": "https://h/next", "other": {"deep": [1, 2]}}"#)
            .unwrap();
        assert_eq!(p.value.len(), 2);
        assert_eq!(p.value[1].get(), r#"{"id": "/b", "properties": {"x": [1]}}"#);
        assert_eq!(p.next_link.as_deref(), Some("https://h/next"));
        let last = ListPage::parse(r#"{"value": [], "nextLink": null}"#).unwrap();
        assert!(last.value.is_empty() && last.next_link.is_none());
        for not_a_page in [r#"{"id": "/a"}"#, r#"{"value": 3}"#, "[1, 2]", r#"{"value": [1,"#] {
            let e = ListPage::parse(not_a_page).err().unwrap_or_default();
            assert!(!e.is_empty(), "{not_a_page} must be refused");
        }
    }

    #[test]
    fn loop_keys_ignore_parameter_order_and_path_case() {
        let a = Url::parse("https://h:1/Subscriptions/S/x?api-version=1&$skiptoken=a").unwrap();
        let b = Url::parse("https://h:1/subscriptions/s/x?$skiptoken=a&api-version=1").unwrap();
        let c = Url::parse("https://h:1/subscriptions/s/x?api-version=1").unwrap();
        assert_eq!(loop_key(&a), loop_key(&b));
        assert_ne!(loop_key(&a), loop_key(&c));
    }
}
