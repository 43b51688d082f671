//! The fake Azure Resource Manager: serves the world in `state.world` the way ARM does — paths
//! and types compared case-insensitively, `api-version` required, bearer tokens checked,
//! RBAC actions enforced, lists paged with absolute `nextLink`s, ARM's error bodies and headers,
//! token-bucket throttling ([`crate::throttle`]) and injected faults ([`crate::faults`]) — plus
//! the `/_mock/stats` and `/_mock/reset` admin endpoints.
//!
//! Routes (GET; path segments and types case-insensitive; `{sc}` = `/subscriptions/{s}` or
//! `/subscriptions/{s}/resourceGroups/{rg}`):
//! - `/metadata/endpoints` (no auth), `/subscriptions`, `/tenants`, `/subscriptions/{s}`,
//!   `/subscriptions/{s}/resourcegroups[/{rg}]`;
//! - `{sc}/providers/Microsoft.Authorization/permissions`;
//! - `/subscriptions/{s}/providers/Microsoft.Network/locations/{loc}/usages`;
//! - `{sc}/providers/{ns}/{type}`: lists of the world-format types and other known types;
//! - `.../providers/{ns}/{type}/{name}[/{child}/{name}]*`: any resource of the world by id, and
//!   sub-resources from the parent's properties (LB frontendIPConfigurations,
//!   backendAddressPools, loadBalancingRules, probes, inboundNatRules, outboundRules; NSG
//!   securityRules, defaultSecurityRules; VNet subnets; NIC ipConfigurations);
//! - `.../{parent}/{child}` lists of those, VMSS `virtualMachines`, and the Network RP's
//!   `virtualMachineScaleSets/{vmss}[/virtualMachines/{i}]/networkInterfaces`;
//! - `/_mock/stats` (GET) and `/_mock/reset` (POST), no auth, not counted as ARM requests;
//! - PUT and DELETE of public IPs, load balancers and NSGs, and the polls of their long-running
//!   operations (`/subscriptions/{s}/providers/Microsoft.Network/locations/{loc}/operations/{id}`
//!   and `.../operationResults/{id}`): see [`writes`].
//!
//! Request pipeline (one fallback handler, so casing never decides routing):
//! foreign-host check → count → `api-version` → metadata (no auth) → token → throttle → fault
//! plan → subscription / authorization → the answer → body faults → latency.
//!
//! It changes the world only through [`writes`] (issue 7), never contacts anything, and every URL
//! it puts in a response points at the mock's own listeners.

mod authz;
mod metadata;
mod routes;
mod view;
mod writes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use azaudit_world::{ArmResource, World};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::Rng;
use serde_json::{Value, json};

use crate::faults::{FaultPlan, Replacement};
use crate::state::{MockState, Principal};
use crate::throttle::{Ask, Limiter, Operation, Scope, Throttled};
use crate::tokens::{Claims, TokenError, now_unix};
use routes::Route;

pub use view::{INVENTORY_TYPES, MinimalPages, minimal_pages};
pub use writes::Operations;

/// ARM and the admin endpoints, for the ARM listener and the foreign host.
pub fn router(state: Arc<MockState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// A response under construction.
struct Reply {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Stream the body over this long (the `slow_body` fault).
    slow: Option<Duration>,
}

impl Reply {
    fn json(status: StatusCode, v: &Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: serde_json::to_vec(v).expect("JSON values serialise"),
            slow: None,
        }
    }

    /// ARM's error body: always `{"error":{"code","message"}}`.
    fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Reply {
        Reply::json(
            status,
            &json!({"error": {"code": code, "message": message.into()}}),
        )
    }

    fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn into_response(self) -> Response {
        let body = match self.slow {
            Some(over) => Body::new(crate::faults::SlowBody::new(self.body, over)),
            None => Body::from(self.body),
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        for (k, v) in self.headers {
            if let (Ok(k), Ok(v)) = (
                header::HeaderName::try_from(k.as_str()),
                HeaderValue::from_str(&v),
            ) {
                h.append(k, v);
            }
        }
        resp
    }
}

/// Largest request body the mock reads (a load balancer with hundreds of rules is well below).
const MAX_BODY: usize = 8 * 1024 * 1024;

async fn handle(State(state): State<Arc<MockState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if is_foreign(&state, &parts) {
        return foreign(&state, &parts).into_response();
    }
    let path = parts.uri.path();
    if path.len() >= 7 && path[..7].eq_ignore_ascii_case("/_mock/") {
        return admin(&state, &parts).into_response();
    }
    // Only writes carry a body worth reading.
    let body = if parts.method == Method::GET {
        axum::body::Bytes::new()
    } else {
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return Reply::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    "The request body is too large.",
                )
                .into_response();
            }
        }
    };
    let reply = arm(&state, &parts, &body);
    let delay = latency(&state);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    reply.into_response()
}

/// The fixed latency plus seeded jitter of `config`.
fn latency(state: &MockState) -> Duration {
    let jitter = if state.config.jitter_ms > 0 {
        state
            .rng
            .lock()
            .expect("rng lock")
            .gen_range(0..=state.config.jitter_ms)
    } else {
        0
    };
    Duration::from_millis(state.config.latency_ms + jitter)
}

/// The authority (`host:port`) of an endpoint URL.
fn authority_of(url: &str) -> &str {
    url.split("://").nth(1).unwrap_or(url).trim_end_matches('/')
}

/// Whether the request was addressed to the foreign host (`state.endpoints.foreign`).
fn is_foreign(state: &MockState, parts: &Parts) -> bool {
    let foreign = state.endpoints.read().expect("endpoints lock").foreign.clone();
    if foreign.is_empty() {
        return false;
    }
    let host = parts.uri.authority().map(|a| a.as_str().to_string()).or_else(|| {
        parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
    });
    host.is_some_and(|h| h.eq_ignore_ascii_case(authority_of(&foreign)))
}

/// A request that followed a foreign nextLink: counted as a leak, never served.
fn foreign(state: &MockState, parts: &Parts) -> Reply {
    let mut st = state.stats.lock().expect("stats lock");
    st.foreign_host_requests += 1;
    if parts.headers.contains_key(header::AUTHORIZATION) {
        st.foreign_host_bearer_tokens += 1;
    }
    Reply::error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "This host is not the Resource Manager endpoint the client was configured with.",
    )
}

/// `GET /_mock/stats`, `POST /_mock/reset` (no auth; not counted as ARM requests).
fn admin(state: &MockState, parts: &Parts) -> Reply {
    let path = parts.uri.path().trim_end_matches('/').to_ascii_lowercase();
    match (parts.method.clone(), path.as_str()) {
        (Method::GET, "/_mock/stats") => Reply::json(StatusCode::OK, &stats_json(state)),
        (Method::POST, "/_mock/reset") => {
            state.reset();
            Reply::json(StatusCode::OK, &json!({"reset": true}))
        }
        (_, "/_mock/stats" | "/_mock/reset") => Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Use GET /_mock/stats or POST /_mock/reset.",
        ),
        _ => Reply::error(StatusCode::NOT_FOUND, "NotFound", "Unknown admin endpoint."),
    }
}

/// The counters plus what a perfect client would have needed (`minimal_pages` and its bounds).
fn stats_json(state: &MockState) -> Value {
    let stats = state.stats.lock().expect("stats lock").clone();
    let mut v = serde_json::to_value(&stats).expect("stats serialise");
    let mp = {
        let world = state.world.read().expect("world lock");
        minimal_pages(&world, state.config.page_size)
    };
    let t = &state.config.throttle;
    // Reads beyond the bucket arrive at the refill rate: (pages - bucket) / refill seconds.
    let throttle_bound = if t.reads_bucket == 0 {
        json!(0.0)
    } else {
        let worst = mp
            .per_subscription
            .values()
            .map(|p| p.saturating_sub(u64::from(t.reads_bucket)))
            .max()
            .unwrap_or(0);
        if worst == 0 {
            json!(0.0)
        } else if t.reads_per_second > 0.0 {
            json!(worst as f64 / t.reads_per_second)
        } else {
            Value::Null
        }
    };
    if let Value::Object(o) = &mut v {
        o.insert("minimal_pages".into(), json!(mp.total));
        o.insert("minimal_pages_detail".into(), json!(mp.detail));
        o.insert(
            "minimal_pages_per_subscription".into(),
            json!(mp.per_subscription),
        );
        o.insert("longest_page_chain".into(), json!(mp.longest_chain));
        o.insert(
            "lower_bound_ms".into(),
            json!(mp.longest_chain * state.config.latency_ms),
        );
        o.insert("throttle_bound_seconds".into(), throttle_bound);
    }
    v
}

/// A random UUID (v4) for request ids.
fn uuid() -> String {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("system random");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Query parameters, decoded; names compared case-insensitively (as ARM does for `api-version`).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        Query(
            url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Everything but `api-version` and `$skiptoken`, re-encoded for a nextLink.
    fn others(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if !k.eq_ignore_ascii_case("api-version") && !k.eq_ignore_ascii_case("$skiptoken") {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }
}

fn skiptoken(offset: usize) -> String {
    B64.encode(format!("azaudit-mock:{offset}"))
}

fn parse_skiptoken(t: &str) -> Option<usize> {
    let raw = B64.decode(t.trim()).ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("azaudit-mock:")?
        .parse()
        .ok()
}

/// Everything a list page needs to build its `nextLink`.
struct Paging<'a> {
    page_size: usize,
    skip: usize,
    /// `https://127.0.0.1:P` (or the foreign host, under the fault).
    base: String,
    /// The request path as received (percent-encoded).
    raw_path: &'a str,
    api_version: &'a str,
    others: String,
    next_link_loop: bool,
    foreign_base: Option<String>,
}

impl Paging<'_> {
    fn link(&self, base: &str, offset: Option<usize>) -> String {
        let mut q = format!(
            "api-version={}",
            url::form_urlencoded::byte_serialize(self.api_version.as_bytes()).collect::<String>()
        );
        if !self.others.is_empty() {
            q.push('&');
            q.push_str(&self.others);
        }
        if let Some(o) = offset {
            q.push_str("&$skiptoken=");
            q.push_str(&skiptoken(o));
        }
        format!("{base}{}?{q}", self.raw_path)
    }

    /// One page of `items`: `{"value": [...], "nextLink": ...}`, no `nextLink` on the last page.
    fn page(&self, items: Vec<Value>, injected: &mut Vec<&'static str>) -> Value {
        self.page_of(&items, Value::clone, injected)
    }

    /// [`Paging::page`] of borrowed items: only the page served is made into JSON.
    fn page_of<T>(&self, items: &[T], json: impl Fn(&T) -> Value, injected: &mut Vec<&'static str>) -> Value {
        let (range, next) = self.window(items.len(), injected);
        let value: Vec<Value> = items[range].iter().map(json).collect();
        let mut out = json!({"value": value});
        if let Some(link) = next {
            out["nextLink"] = Value::String(link);
        }
        out
    }

    /// [`Paging::page_of`] for world resources, written from their JSON text without parsing it.
    fn page_raw(&self, items: &[&ArmResource], injected: &mut Vec<&'static str>) -> Reply {
        #[derive(serde::Serialize)]
        struct Page<'a> {
            value: Vec<&'a serde_json::value::RawValue>,
            #[serde(rename = "nextLink", skip_serializing_if = "Option::is_none")]
            next_link: Option<String>,
        }
        let (range, next_link) = self.window(items.len(), injected);
        let page = Page {
            value: items[range].iter().map(|r| r.raw()).collect(),
            next_link,
        };
        Reply {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: serde_json::to_vec(&page).expect("JSON text serialises"),
            slow: None,
        }
    }

    /// The items of this page and its `nextLink` (none on the last page, unless a fault says so).
    fn window(
        &self,
        len: usize,
        injected: &mut Vec<&'static str>,
    ) -> (std::ops::Range<usize>, Option<String>) {
        let ps = self.page_size.max(1);
        let start = self.skip.min(len);
        let end = (start + ps).min(len);
        let more = end < len;
        let mut next = if more { Some(Some(end)) } else { None };
        if next.is_none() && self.next_link_loop {
            injected.push("next_link_loop");
            next = Some(None);
        }
        let link = next.map(|offset| {
            let base = match &self.foreign_base {
                Some(f) => {
                    injected.push("foreign_next_link");
                    f.as_str()
                }
                None => self.base.as_str(),
            };
            self.link(base, offset)
        });
        (start..end, link)
    }
}

/// Audiences ARM accepts: the public cloud's, ARM's application id, and the mock's own URL.
fn audience_ok(aud: &str, arm: &str) -> bool {
    let a = aud.trim_end_matches('/');
    metadata::AUDIENCES
        .iter()
        .map(|x| x.trim_end_matches('/'))
        .chain([arm.trim_end_matches('/'), "797f4846-ba00-4fd7-ba43-dac1f8f63013"])
        .any(|x| x.eq_ignore_ascii_case(a))
}

fn authenticate(state: &MockState, parts: &Parts, arm: &str) -> Result<Claims, TokenError> {
    let h = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let claims = state.signer.verify_header(h, now_unix())?;
    if !claims.tid.eq_ignore_ascii_case(&state.tenant_id) {
        return Err(TokenError::WrongTenant);
    }
    if !audience_ok(&claims.aud, arm) {
        return Err(TokenError::WrongAudience);
    }
    Ok(claims)
}

/// 401 with ARM's `WWW-Authenticate` challenge naming the mock's authority and tenant.
fn unauthorized(state: &MockState, err: &TokenError, authority: &str) -> Reply {
    let (code, message) = err.arm_code();
    Reply::error(StatusCode::UNAUTHORIZED, code, message).header(
        "www-authenticate",
        format!(
            "Bearer authorization_uri=\"{authority}/{}\", error=\"invalid_token\", error_description=\"{message}\"",
            state.tenant_id
        ),
    )
}

fn throttled_reply(t: &Throttled, scope: &Scope, oid: &str, op: Operation) -> Reply {
    // ARM names the operation type in the message: 'read', 'write' or 'delete'.
    let op_word = match op {
        Operation::Read => "read",
        Operation::Write => "write",
        Operation::Delete => "delete",
    };
    let reply = match t.by {
        Limiter::Arm => {
            let (code, what) = match scope {
                Scope::Subscription(s) => ("SubscriptionRequestsThrottled", format!("subscription '{s}'")),
                Scope::Tenant => ("TenantRequestsThrottled", "tenant".to_string()),
            };
            Reply::error(
                StatusCode::TOO_MANY_REQUESTS,
                code,
                format!(
                    "Number of '{op_word}' requests for {what} actor '{oid}' exceeded. Please try again after '{}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling",
                    t.retry_after
                ),
            )
        }
        // Compute's own throttling body (troubleshooting-throttling-errors, domain.md §5.1).
        Limiter::ComputeHighCost => Reply::json(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": {
                "code": "OperationNotAllowed",
                "message": "The server rejected the request because too many requests have been received for this subscription.",
                "details": [{"code": "TooManyRequests", "target": "HighCostGet",
                             "message": "{\"operationGroup\":\"HighCostGet\"}"}]
            }}),
        )
        .header("x-ms-ratelimit-remaining-resource", "Microsoft.Compute/HighCostGet;0"),
    };
    reply.header("retry-after", t.retry_after.to_string())
}

fn principal_label(p: Option<&Principal>, oid: &str) -> String {
    p.map(|p| p.label.clone())
        .unwrap_or_else(|| format!("unknown:{oid}"))
}

/// One ARM request, answered synchronously (latency is added by the caller).
fn arm(state: &MockState, parts: &Parts, body: &[u8]) -> Reply {
    let request_id = uuid();
    let correlation = parts
        .headers
        .get("x-ms-correlation-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let mut reply = arm_inner(state, parts, body);
    reply.headers.push(("x-ms-request-id".into(), request_id));
    reply
        .headers
        .push(("x-ms-correlation-request-id".into(), correlation));
    if let Some(c) = parts
        .headers
        .get("x-ms-client-request-id")
        .and_then(|v| v.to_str().ok())
    {
        reply
            .headers
            .push(("x-ms-client-request-id".into(), c.to_string()));
    }
    reply
}

fn count_fault(state: &MockState, kind: &str) {
    *state
        .stats
        .lock()
        .expect("stats lock")
        .faults_injected
        .entry(kind.to_string())
        .or_default() += 1;
}

fn arm_inner(state: &MockState, parts: &Parts, body: &[u8]) -> Reply {
    let raw_path = parts.uri.path();
    let route = routes::parse(raw_path);
    {
        let mut st = state.stats.lock().expect("stats lock");
        st.arm_requests += 1;
        *st.arm_by_route.entry(route.label()).or_default() += 1;
    }
    // Reads, and the writes of `writes.rs` (each operation type has its own bucket).
    let (op, write) = match parts.method {
        Method::GET => (Operation::Read, None),
        Method::PUT => (Operation::Write, Some(writes::Method::Put)),
        Method::DELETE => (Operation::Delete, Some(writes::Method::Delete)),
        _ => {
            return Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!(
                    "The mock serves GET, PUT and DELETE; {} is not supported.",
                    parts.method
                ),
            );
        }
    };
    let query = Query::parse(parts.uri.query());
    let Some(api_version) = query.get("api-version").map(str::to_string) else {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    };
    let endpoints = state.endpoints.read().expect("endpoints lock").clone();
    if route == Route::Metadata {
        return Reply::json(
            StatusCode::OK,
            &metadata::document(&api_version, &endpoints.arm, &endpoints.authority),
        );
    }

    let claims = match authenticate(state, parts, &endpoints.arm) {
        Ok(c) => c,
        Err(e) => {
            *state
                .stats
                .lock()
                .expect("stats lock")
                .arm_by_principal
                .entry("unauthenticated".into())
                .or_default() += 1;
            return unauthorized(state, &e, &endpoints.authority);
        }
    };
    let principal = state.principal_by_object_id(&claims.oid);
    *state
        .stats
        .lock()
        .expect("stats lock")
        .arm_by_principal
        .entry(principal_label(principal, &claims.oid))
        .or_default() += 1;

    // Throttling, before anything is looked at (ARM's gateway does it first).
    let world_sub = {
        let world = state.world.read().expect("world lock");
        route
            .subscription()
            .map(|s| view::find_subscription(&world, s).unwrap_or_else(|| s.to_string()))
    };
    let scope = world_sub
        .as_deref()
        .map(Scope::subscription)
        .unwrap_or(Scope::Tenant);
    let ask = Ask {
        scope: &scope,
        principal: &claims.oid,
        op,
        high_cost: write.is_none() && route.is_compute_high_cost(),
    };
    let now = Instant::now();
    let admitted = state.throttle.lock().expect("throttle lock").admit(now, &ask);
    let remaining_header = scope.remaining_header(op);
    let record_lowest = |remaining: u64| {
        if op != Operation::Read {
            return;
        }
        if let Some(sub) = &world_sub {
            let mut st = state.stats.lock().expect("stats lock");
            let e = st.lowest_remaining_reads.entry(sub.clone()).or_insert(remaining);
            *e = (*e).min(remaining);
        }
    };
    let mut quota: Vec<(String, String)> = Vec::new();
    match admitted {
        Err(t) => {
            {
                let mut st = state.stats.lock().expect("stats lock");
                st.throttled_429 += 1;
                if t.early {
                    st.throttled_429_early_retries += 1;
                }
            }
            let mut r = throttled_reply(&t, &scope, &claims.oid, op);
            if let Some(rem) = t.remaining {
                record_lowest(rem);
                r = r.header(remaining_header, rem.to_string());
            }
            return r;
        }
        Ok(a) => {
            if let Some(rem) = a.remaining {
                record_lowest(rem);
                quota.push((remaining_header, rem.to_string()));
            }
            if let Some(hc) = a.high_cost_remaining {
                quota.push((
                    "x-ms-ratelimit-remaining-resource".into(),
                    format!("Microsoft.Compute/HighCostGet;{hc}"),
                ));
            }
        }
    }
    let with_quota = |mut r: Reply| {
        r.headers.extend(quota.iter().cloned());
        r
    };

    // Faults: every admitted request counts towards their nth / first / start.
    let plan: FaultPlan = {
        let mut counters = state.faults.lock().expect("faults lock");
        let mut rng = state.rng.lock().expect("rng lock");
        crate::faults::plan(
            &state.config.faults,
            &mut counters,
            &mut *rng,
            &routes::percent_decode(raw_path),
        )
    };
    match plan.replace {
        Some(Replacement::Status { status }) => {
            count_fault(state, "status");
            let (code, message) = crate::faults::status_error(status);
            let st = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = Reply::error(st, &code, message);
            if status == 503 {
                r = r.header("retry-after", "1");
            }
            return with_quota(r);
        }
        Some(Replacement::Burst429 { retry_after }) => {
            count_fault(state, "burst429");
            state.stats.lock().expect("stats lock").throttled_429 += 1;
            state
                .throttle
                .lock()
                .expect("throttle lock")
                .note_429(now, &ask, retry_after);
            let t = Throttled {
                by: Limiter::Arm,
                retry_after,
                early: false,
                remaining: None,
            };
            return with_quota(throttled_reply(&t, &scope, &claims.oid, op));
        }
        None => {}
    }

    // Writes and the polls of their long-running operations change the world: they take its
    // lock themselves.
    if let Some(method) = write {
        let if_match = parts.headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
        let req = writes::WriteRequest {
            method,
            route: &route,
            principal,
            claims: &claims,
            api_version: &api_version,
            if_match,
            body,
            arm_endpoint: &endpoints.arm,
        };
        return with_quota(writes::serve(state, &req));
    }
    if let Route::Operation { .. } = &route {
        let allowed = {
            let world = state.world.read().expect("world lock");
            authorize(&world, &route, principal, &claims)
        };
        if let Err(r) = allowed {
            return with_quota(r);
        }
        return with_quota(writes::poll(state, &route, &api_version, &endpoints.arm));
    }

    let skip = match query.get("$skiptoken") {
        None => 0,
        Some(t) => match parse_skiptoken(t) {
            Some(n) => n,
            None => {
                return with_quota(Reply::error(
                    StatusCode::BAD_REQUEST,
                    "InvalidSkipToken",
                    "The provided $skiptoken is not valid.",
                ));
            }
        },
    };
    let paging = Paging {
        page_size: state.config.page_size,
        skip,
        base: endpoints.arm.clone(),
        raw_path,
        api_version: &api_version,
        others: query.others(),
        next_link_loop: plan.next_link_loop,
        foreign_base: plan.foreign_next_link.then(|| endpoints.foreign.clone()),
    };
    let mut injected = Vec::new();
    let mut reply = {
        let world = state.world.read().expect("world lock");
        serve(state, &world, &route, principal, &claims, &paging, &mut injected)
    };
    for kind in injected {
        count_fault(state, kind);
    }
    if reply.status == StatusCode::OK {
        if plan.malformed_json {
            count_fault(state, "malformed_json");
            reply.body = crate::faults::malformed_body();
        } else if plan.truncated_json {
            count_fault(state, "truncated_json");
            reply.body = crate::faults::truncate(&reply.body);
        }
    }
    if let Some(ms) = plan.slow_body_ms {
        count_fault(state, "slow_body");
        reply.slow = Some(Duration::from_millis(ms));
    }
    with_quota(reply)
}

fn not_found_group(rg: &str) -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        "ResourceGroupNotFound",
        format!("Resource group '{rg}' could not be found."),
    )
}

fn invalid_type(provider: &str, type_: &str, api_version: &str) -> Reply {
    Reply::error(
        StatusCode::BAD_REQUEST,
        "InvalidResourceType",
        format!(
            "The resource type '{type_}' could not be found in the namespace '{provider}' for api version '{api_version}'."
        ),
    )
}

/// ARM's 404 for a missing resource: `ResourceNotFound` naming type/name path and group (the
/// recorded `*_testResourcenotfound_404.json` bodies).
fn not_found_resource(rg: &str, provider: &str, types: &[(String, String)]) -> Reply {
    let full: Vec<&str> = std::iter::once(provider)
        .chain(types.iter().flat_map(|(t, n)| [t.as_str(), n.as_str()]))
        .collect();
    Reply::error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "The Resource '{}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            full.join("/")
        ),
    )
}

/// Subscription existence, then RBAC; `Ok` means the principal may make this request.
fn authorize(
    world: &World,
    route: &Route,
    principal: Option<&Principal>,
    claims: &Claims,
) -> Result<(), Reply> {
    let Some(sub) = route.subscription() else {
        return Ok(());
    };
    if view::find_subscription(world, sub).is_none() {
        return Err(Reply::error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        ));
    }
    let Some(action) = route.action() else {
        return Ok(());
    };
    let allowed = principal.is_some_and(|p| p.can_access(sub) && authz::allows(p, &action));
    if allowed {
        return Ok(());
    }
    Err(Reply::error(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        format!(
            "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            if claims.appid.is_empty() {
                &claims.oid
            } else {
                &claims.appid
            },
            claims.oid,
            route.scope_id()
        ),
    ))
}

fn group_exists(world: &World, sub: &str, rg: &str) -> bool {
    view::resource_group(world, sub, rg).is_some()
}

/// The answer to an authenticated, admitted request.
fn serve(
    state: &MockState,
    world: &World,
    route: &Route,
    principal: Option<&Principal>,
    claims: &Claims,
    paging: &Paging<'_>,
    injected: &mut Vec<&'static str>,
) -> Reply {
    if let Err(r) = authorize(world, route, principal, claims) {
        return r;
    }
    let ok = |v: Value| Reply::json(StatusCode::OK, &v);
    let list = |items: Vec<Value>, injected: &mut Vec<&'static str>| ok(paging.page(items, injected));
    match route {
        Route::Metadata => unreachable!("answered before authentication"),
        Route::Operation { .. } => unreachable!("answered by writes::poll"),
        Route::Unknown => Reply::error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "No HTTP resource was found that matches the request URI '{}'.",
                paging.raw_path
            ),
        ),
        Route::ListSubscriptions => {
            let subs = world
                .subscription_ids()
                .into_iter()
                .filter(|s| principal.is_some_and(|p| p.can_access(s)))
                .map(|s| view::subscription_json(world, &s, &state.tenant_id))
                .collect();
            list(subs, injected)
        }
        Route::ListTenants => {
            let t = &state.tenant_id;
            list(
                vec![json!({
                    "id": format!("/tenants/{t}"),
                    "tenantId": t,
                    "tenantCategory": "Home",
                    "countryCode": "US",
                    "displayName": "azaudit mock tenant",
                    "domains": ["azauditmock.onmicrosoft.com"],
                    "defaultDomain": "azauditmock.onmicrosoft.com",
                    "tenantType": "AAD"
                })],
                injected,
            )
        }
        Route::GetSubscription { sub } => {
            let s = view::find_subscription(world, sub).unwrap_or_else(|| sub.clone());
            ok(view::subscription_json(world, &s, &state.tenant_id))
        }
        Route::ListResourceGroups { sub } => list(view::resource_groups(world, sub), injected),
        Route::GetResourceGroup { sub, rg } => match view::resource_group(world, sub, rg) {
            Some(g) => ok(g),
            None => not_found_group(rg),
        },
        Route::Permissions { sub, rg } => {
            if let Some(rg) = rg
                && !group_exists(world, sub, rg)
            {
                return not_found_group(rg);
            }
            // Everyone may ask what they hold; a principal without access holds nothing.
            let perms = match principal {
                Some(p) if p.can_access(sub) => vec![json!({
                    "actions": p.actions,
                    "notActions": p.not_actions,
                    "dataActions": [],
                    "notDataActions": []
                })],
                _ => Vec::new(),
            };
            list(perms, injected)
        }
        Route::Usages { sub, location } => list(view::usage_rows(world, sub, location), injected),
        Route::ListTop {
            sub,
            rg,
            provider,
            type_,
        } => {
            if let Some(rg) = rg
                && !group_exists(world, sub, rg)
            {
                return not_found_group(rg);
            }
            let full = route.full_type().unwrap_or_default();
            if routes::known_type(&full).is_none() && !view::world_has_type(world, &full) {
                return invalid_type(provider, type_, paging.api_version);
            }
            paging.page_raw(&view::list_top(world, sub, rg.as_deref(), &full), injected)
        }
        Route::ListChild {
            sub,
            rg,
            provider,
            parent,
            child,
        } => {
            if !group_exists(world, sub, rg) {
                return not_found_group(rg);
            }
            let parent_id = routes::resource_id(sub, rg, provider, parent);
            let vmss_level_nics = parent.len() == 1
                && parent[0].0.eq_ignore_ascii_case("virtualMachineScaleSets")
                && child.eq_ignore_ascii_case("networkInterfaces");
            let items = if vmss_level_nics {
                view::vmss_nics(world, &parent_id)
            } else {
                view::list_children(world, &parent_id, child)
            };
            let full = route.full_type().unwrap_or_default();
            match items {
                None => not_found_resource(rg, provider, parent),
                Some(items) if items.is_empty() && routes::known_type(&full).is_none() => {
                    invalid_type(provider, &full, paging.api_version)
                }
                Some(items) => list(items, injected),
            }
        }
        Route::Get {
            sub,
            rg,
            provider,
            types,
        } => {
            let id = routes::resource_id(sub, rg, provider, types);
            if let Some(v) = view::get(world, &id) {
                return ok(v);
            }
            if !group_exists(world, sub, rg) {
                return not_found_group(rg);
            }
            let top_exists = world
                .get(&routes::resource_id(sub, rg, provider, &types[..1]))
                .is_some();
            // The Network RP answers for children of an existing parent with its own `NotFound`
            // (recorded `backendaddresspoolclient__i10_..._404.json`).
            if types.len() >= 2 && top_exists && provider.eq_ignore_ascii_case("Microsoft.Network") {
                return Reply::json(
                    StatusCode::NOT_FOUND,
                    &json!({"error": {"code": "NotFound", "message": format!("Resource {id} not found."), "details": []}}),
                );
            }
            let shown = if top_exists { &types[..] } else { &types[..1] };
            not_found_resource(rg, provider, shown)
        }
    }
}
