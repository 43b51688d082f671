//! The ARM client against the in-process mock over real HTTPS on loopback: paging, every fault
//! the mock injects, throttling, 403, the deadline, the cache, the counters, the concurrency
//! bound, and that tokens and secrets never leak into logs, errors or the cache.
//!
//! Every endpoint comes from the mock's ready info; the HTTP client trusts only the mock's CA and
//! ignores proxy settings, so nothing here can reach a real cloud. Faults are scoped by resource
//! group, so one mock serves several scenarios without them touching each other.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use azaudit::arm::{ArmClient, ArmError, ArmOptions, CacheOptions, CacheScope, ListOutcome};
use azaudit::auth::Cloud;
use azaudit_mocks::config::{Fault, FaultScope, MockConfig, ThrottleConfig};
use azaudit_mocks::{RunningMock, ServeOptions};
use azaudit_world::World;
use azure_core::auth::{AccessToken, Secret, TokenCredential};
use azure_core::error::ErrorKind;
use serde_json::{Value, json};
use url::Url;

const SUB: &str = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";

/// Resource groups and how many public IPs each holds. Each fault is scoped to one group.
const GROUPS: &[(&str, usize)] = &[
    ("rg-paging", 10),
    ("rg-fivexx-once", 4),
    ("rg-fivexx-always", 4),
    ("rg-unavailable", 4),
    ("rg-burst", 4),
    ("rg-burst-once", 4),
    ("rg-malformed", 4),
    ("rg-truncated", 4),
    ("rg-foreign", 4),
    ("rg-loop", 4),
    ("rg-slow", 2),
    ("rg-long-throttle", 2),
    ("rg-stalled", 2),
];

fn pip_id(rg: &str, i: usize) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Network/publicIPAddresses/pip-{i}")
}

fn world() -> World {
    let pips: Vec<Value> = GROUPS
        .iter()
        .flat_map(|(rg, n)| {
            (0..*n).map(move |i| {
                json!({"id": pip_id(rg, i), "name": format!("pip-{i}"), "type": "Microsoft.Network/publicIPAddresses",
                       "location": "westeurope", "sku": {"name": "Standard"},
                       "properties": {"ipAddress": format!("20.0.{}.{i}", rg.len()), "publicIPAllocationMethod": "Static"}})
            })
        })
        .collect();
    let meta = json!({"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                      "subscriptions": [{"id": SUB, "display_name": "prod"}]});
    World::from_files(vec![
        (PathBuf::from("world.json"), serde_json::to_vec(&meta).unwrap()),
        (PathBuf::from("arm/pips.json"), serde_json::to_vec(&pips).unwrap()),
    ])
}

fn list_path(rg: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Network/publicIPAddresses?api-version=2025-05-01"
    )
}

fn scope(rg: &str) -> FaultScope {
    FaultScope {
        path_contains: format!("/{rg}/"),
    }
}

/// Page size 3 and one fault per resource group.
fn fault_config() -> MockConfig {
    MockConfig {
        page_size: 3,
        faults: vec![
            Fault::Status {
                status: 500,
                rate: 0.0,
                nth: Some(2),
                first: None,
                scope: scope("rg-fivexx-once"),
            },
            Fault::Status {
                status: 500,
                rate: 0.0,
                nth: None,
                first: Some(100),
                scope: scope("rg-fivexx-always"),
            },
            Fault::Status {
                status: 503,
                rate: 0.0,
                nth: None,
                first: Some(1),
                scope: scope("rg-unavailable"),
            },
            Fault::Burst429 {
                count: 2,
                start: 1,
                retry_after_seconds: 1,
                scope: scope("rg-burst"),
            },
            Fault::Burst429 {
                count: 1,
                start: 1,
                retry_after_seconds: 1,
                scope: scope("rg-burst-once"),
            },
            Fault::MalformedJson {
                nth: Some(1),
                scope: scope("rg-malformed"),
            },
            Fault::TruncatedJson {
                nth: None,
                scope: scope("rg-truncated"),
            },
            Fault::ForeignNextLink {
                scope: scope("rg-foreign"),
            },
            Fault::NextLinkLoop {
                scope: scope("rg-loop"),
            },
            Fault::SlowBody {
                millis: 300,
                scope: scope("rg-slow"),
            },
            Fault::Burst429 {
                count: 5,
                start: 1,
                retry_after_seconds: 120,
                scope: scope("rg-long-throttle"),
            },
            Fault::SlowBody {
                millis: 4000,
                scope: scope("rg-stalled"),
            },
        ],
        ..MockConfig::default()
    }
}

struct Env {
    mock: RunningMock,
    cloud: Cloud,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

async fn start(config: MockConfig) -> Env {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let mock = azaudit_mocks::start(ServeOptions {
        world: world(),
        listen: "127.0.0.1:0".parse().unwrap(),
        files_dir: dir.path().join("mock"),
        config: Some(config),
    })
    .await
    .unwrap();
    let arm = Url::parse(&mock.ready.arm_endpoint).unwrap();
    assert_eq!(arm.host_str(), Some("127.0.0.1"), "the mock must be on loopback");
    let cloud = Cloud {
        name: "custom".into(),
        arm_endpoint: arm,
        authority_host: Url::parse(&mock.ready.authority_host).unwrap(),
        audience: mock.ready.arm_endpoint.clone(),
    };
    let ca = reqwest::Certificate::from_pem(&fs::read(&mock.ready.ca_file).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Env {
        mock,
        cloud,
        http,
        dir,
    }
}

impl Env {
    fn contributor(&self) -> Arc<TestCredential> {
        self.credential(&self.mock.ready.client_id, &self.mock.ready.client_secret, true)
    }

    /// A principal from the ready file's list, by label.
    fn principal(&self, label: &str) -> (String, String) {
        let p = self.mock.ready.extra["principals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["label"] == label)
            .unwrap_or_else(|| panic!("no principal {label}"));
        (
            p["client_id"].as_str().unwrap().to_string(),
            p["client_secret"].as_str().unwrap().to_string(),
        )
    }

    fn credential(&self, client_id: &str, secret: &str, refresh_on_expiry: bool) -> Arc<TestCredential> {
        Arc::new(TestCredential {
            http: self.http.clone(),
            token_url: format!(
                "{}{}/oauth2/v2.0/token",
                self.mock.ready.authority_host, self.mock.ready.tenant_id
            ),
            client_id: client_id.to_string(),
            secret: secret.to_string(),
            refresh_on_expiry,
            cached: Mutex::new(None),
            token_requests: AtomicU32::new(0),
            issued: Mutex::new(Vec::new()),
        })
    }

    fn client(&self, cred: &Arc<TestCredential>, opts: ArmOptions) -> ArmClient {
        ArmClient::new(
            opts,
            self.http.clone(),
            cred.clone(),
            &self.cloud,
            CacheScope {
                tenant: self.mock.ready.tenant_id.clone(),
                principal: cred.client_id.clone(),
            },
        )
        .unwrap()
    }

    async fn stats(&self) -> Value {
        let r = self
            .http
            .get(format!("{}/stats", self.mock.ready.admin_endpoint))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    fn ids(&self, rg: &str) -> Vec<String> {
        let n = GROUPS.iter().find(|(g, _)| *g == rg).unwrap().1;
        (0..n).map(|i| pip_id(rg, i)).collect()
    }
}

fn no_cache() -> ArmOptions {
    ArmOptions {
        cache: CacheOptions::disabled(),
        timeout: Duration::from_secs(60),
        ..ArmOptions::default()
    }
}

fn ids_of(out: &ListOutcome) -> Vec<String> {
    out.items
        .iter()
        .map(|v| {
            serde_json::from_str::<Value>(v.get()).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// A client-secret credential against the mock's Entra ID. With `refresh_on_expiry: false` it
/// keeps handing out its token until `clear_cache`, so a 401 is the only way to a new one.
struct TestCredential {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    secret: String,
    refresh_on_expiry: bool,
    cached: Mutex<Option<AccessToken>>,
    token_requests: AtomicU32,
    issued: Mutex<Vec<String>>,
}

impl std::fmt::Debug for TestCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestCredential({})", self.client_id)
    }
}

#[async_trait::async_trait]
impl TokenCredential for TestCredential {
    async fn get_token(&self, scopes: &[&str]) -> azure_core::Result<AccessToken> {
        if let Some(t) = self.cached.lock().unwrap().clone()
            && (!self.refresh_on_expiry || t.expires_on > time::OffsetDateTime::now_utc())
        {
            return Ok(t);
        }
        assert!(self.token_url.starts_with("https://127.0.0.1:"));
        self.token_requests.fetch_add(1, Ordering::SeqCst);
        let r = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.secret.as_str()),
                ("scope", scopes.join(" ").as_str()),
            ])
            .send()
            .await
            .map_err(|e| azure_core::Error::new(ErrorKind::Io, e))?;
        let status = r.status();
        let v: Value = r
            .json()
            .await
            .map_err(|e| azure_core::Error::new(ErrorKind::Io, e))?;
        if !status.is_success() {
            return Err(azure_core::Error::message(
                ErrorKind::Credential,
                format!(
                    "token endpoint answered {status}: {}",
                    v["error_description"].as_str().unwrap_or("")
                ),
            ));
        }
        let token = v["access_token"].as_str().unwrap().to_string();
        let secs = v["expires_in"].as_i64().unwrap();
        self.issued.lock().unwrap().push(token.clone());
        let t = AccessToken::new(
            Secret::new(token),
            time::OffsetDateTime::now_utc() + time::Duration::seconds(secs),
        );
        *self.cached.lock().unwrap() = Some(t.clone());
        Ok(t)
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        *self.cached.lock().unwrap() = None;
        Ok(())
    }
}

#[tokio::test]
async fn pages_every_item_once_and_counts_what_it_did() {
    let env = start(fault_config()).await;
    let arm = env.client(&env.contributor(), no_cache());
    let out = arm.list(SUB, &list_path("rg-paging")).await;
    assert!(out.is_complete(), "{:?}", out.error);
    assert_eq!(out.pages, 4, "10 items at 3 per page");
    assert_eq!(ids_of(&out), env.ids("rg-paging"), "every item once, in order");

    let one = arm
        .get(
            Some(SUB),
            &format!("{}?api-version=2025-05-01", pip_id("rg-paging", 7)),
        )
        .await
        .unwrap();
    assert_eq!(one["name"], "pip-7");

    let s = arm.stats();
    let m = env.stats().await;
    assert_eq!(s.requests, 5);
    assert_eq!(m["arm_requests"], 5, "the mock saw exactly what we counted");
    assert_eq!(s.pages, 4);
    assert_eq!((s.retries, s.throttled_429, s.cache_hits), (0, 0, 0));
    assert!(s.bytes > 1000, "{}", s.bytes);
    // The lowest remaining read budget is the one the mock sent last (it only falls here).
    let lowest = s.lowest_remaining_reads[SUB];
    assert_eq!(json!(lowest), m["lowest_remaining_reads"][SUB]);
    assert!((240..250).contains(&lowest), "{lowest}");

    // Through the collector's interface too.
    let raw = azaudit::collect::ArmSource::list(&arm, Some(SUB), &list_path("rg-paging")).await;
    assert_eq!((raw.items.len(), raw.error), (10, None));
    env.mock.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let env = start(fault_config()).await;
    let arm = env.client(
        &env.contributor(),
        ArmOptions {
            max_attempts_5xx: 3,
            ..no_cache()
        },
    );
    // One 500 on the second page: retried, and the list is whole.
    let out = arm.list(SUB, &list_path("rg-fivexx-once")).await;
    assert!(out.is_complete(), "{:?}", out.error);
    assert_eq!(ids_of(&out), env.ids("rg-fivexx-once"));
    assert_eq!(arm.stats().retries, 1);
    assert_eq!(arm.stats().requests, 3);

    // 500 forever: three attempts, then a Server error naming ARM's code; nothing is invented.
    let out = arm.list(SUB, &list_path("rg-fivexx-always")).await;
    assert_eq!(
        out.error,
        Some(ArmError::Server {
            status: 500,
            code: "InternalServerError".into()
        })
    );
    assert!(out.items.is_empty() && out.pages == 0);
    let s = arm.stats();
    assert_eq!((s.requests, s.retries), (6, 3));
    assert!(out.error.unwrap().to_string().contains("rerun later"));

    // A 503 with Retry-After is waited out like throttling.
    let out = arm.list(SUB, &list_path("rg-unavailable")).await;
    assert!(out.is_complete(), "{:?}", out.error);
    assert_eq!(arm.stats().retries, 4);
    assert_eq!(env.stats().await["faults_injected"]["status"], 1 + 3 + 1);
    env.mock.shutdown().await;
}

/// Runs on one thread so that "the 429 has been counted" and "the subscription is held" happen
/// without another task in between.
#[tokio::test(flavor = "current_thread")]
async fn burst_429_waits_retry_after_for_the_whole_subscription() {
    let env = start(fault_config()).await;
    let arm = env.client(&env.contributor(), no_cache());

    // Two 429s in a row, Retry-After 1 s each: waited out, none early, the list is whole.
    let out = arm.list(SUB, &list_path("rg-burst")).await;
    assert!(out.is_complete(), "{:?}", out.error);
    assert_eq!(ids_of(&out), env.ids("rg-burst"));
    let m = env.stats().await;
    assert_eq!(m["throttled_429"], 2, "exactly the burst");
    assert_eq!(
        m["throttled_429_early_retries"], 0,
        "nothing arrived before Retry-After"
    );
    let s = arm.stats();
    assert_eq!((s.throttled_429, s.retries), (2, 2));
    assert_eq!(m["arm_requests"], s.requests);

    // A 429 on one list holds the other lists of the same subscription as well: start another
    // once the 429 is in, and it too waits (ARM refuses anything sent before Retry-After).
    let burst = tokio::spawn({
        let arm = arm.clone();
        async move { arm.list(SUB, &list_path("rg-burst-once")).await }
    });
    while arm.stats().throttled_429 == 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let other = arm.list(SUB, &list_path("rg-paging")).await;
    let burst = burst.await.unwrap();
    assert!(burst.is_complete() && other.is_complete());
    assert_eq!(ids_of(&burst), env.ids("rg-burst-once"));
    assert_eq!(ids_of(&other), env.ids("rg-paging"));
    let m = env.stats().await;
    assert_eq!(m["throttled_429"], 3);
    assert_eq!(m["throttled_429_early_retries"], 0);
    assert_eq!(arm.stats().throttled_429, 3);
    env.mock.shutdown().await;
}

#[tokio::test]
async fn broken_bodies_are_fetched_again_then_reported_with_their_url() {
    let env = start(fault_config()).await;
    let arm = env.client(
        &env.contributor(),
        ArmOptions {
            max_attempts_5xx: 2,
            ..no_cache()
        },
    );
    let out = arm.list(SUB, &list_path("rg-malformed")).await;
    assert!(out.is_complete(), "{:?}", out.error);
    assert_eq!(ids_of(&out), env.ids("rg-malformed"));
    assert_eq!(arm.stats().retries, 1);

    let out = arm.list(SUB, &list_path("rg-truncated")).await;
    match &out.error {
        Some(ArmError::DecodePage { url, detail }) => {
            assert!(url.contains("/rg-truncated/"), "{url}");
            assert!(detail.contains("EOF"), "{detail}");
        }
        other => panic!("expected DecodePage, got {other:?}"),
    }
    assert!(out.items.is_empty());
    assert_eq!(arm.stats().retries, 2, "one retry each");
    env.mock.shutdown().await;
}

#[tokio::test]
async fn foreign_next_links_are_refused_and_loops_are_stopped() {
    let env = start(fault_config()).await;
    let arm = env.client(&env.contributor(), no_cache());

    let out = arm.list(SUB, &list_path("rg-foreign")).await;
    match &out.error {
        Some(ArmError::ForeignNextLink { host }) => assert!(host.starts_with("https://127.0.0.2:"), "{host}"),
        other => panic!("expected ForeignNextLink, got {other:?}"),
    }
    assert!(out.error.as_ref().unwrap().to_string().contains("127.0.0.2"));
    assert_eq!((out.items.len(), out.pages), (3, 1), "the first page is kept");
    let m = env.stats().await;
    assert_eq!(m["foreign_host_requests"], 0);
    assert_eq!(m["foreign_host_bearer_tokens"], 0);

    let out = arm.list(SUB, &list_path("rg-loop")).await;
    match &out.error {
        Some(ArmError::NextLinkLoop { url }) => assert!(url.contains("/rg-loop/"), "{url}"),
        other => panic!("expected NextLinkLoop, got {other:?}"),
    }
    assert_eq!(ids_of(&out), env.ids("rg-loop"), "both pages read, none twice");
    assert_eq!(out.pages, 2);
    assert_eq!(arm.stats().requests, 1 + 2);
    env.mock.shutdown().await;
}

#[tokio::test]
async fn slow_bodies_within_the_timeout_are_fine_and_the_deadline_is_kept() {
    let env = start(fault_config()).await;
    let arm = env.client(&env.contributor(), no_cache());
    let out = arm.list(SUB, &list_path("rg-slow")).await;
    assert!(out.is_complete(), "{:?}", out.error);
    assert_eq!(ids_of(&out), env.ids("rg-slow"));

    // A body that takes 4 s with 1 s left: the deadline ends the wait.
    let shorter = env.client(
        &env.contributor(),
        ArmOptions {
            timeout: Duration::from_secs(1),
            ..no_cache()
        },
    );
    let out = shorter.list(SUB, &list_path("rg-stalled")).await;
    match &out.error {
        Some(e @ ArmError::Deadline { url, .. }) => {
            assert!(url.contains("/rg-stalled/"), "{url}");
            assert!(e.to_string().contains("--timeout of 1s"), "{e}");
        }
        other => panic!("expected Deadline, got {other:?}"),
    }

    // ARM asks to wait 120 s with a 2 s deadline: give up at once, saying so. (Last: the mock
    // now refuses this principal on this subscription for two minutes.)
    let short = env.client(
        &env.contributor(),
        ArmOptions {
            timeout: Duration::from_secs(2),
            ..no_cache()
        },
    );
    let out = short.list(SUB, &list_path("rg-long-throttle")).await;
    match &out.error {
        Some(ArmError::Throttled { retry_after, .. }) => assert_eq!(*retry_after, Duration::from_secs(120)),
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert_eq!(short.stats().requests, 1, "no pointless retries");
    assert!(out.error.unwrap().to_string().contains("--timeout of 2s"));
    // The rest of that subscription is held too, and fails at once instead of arriving early.
    let out = short.list(SUB, &list_path("rg-paging")).await;
    assert!(
        matches!(out.error, Some(ArmError::Throttled { .. })),
        "{:?}",
        out.error
    );
    assert_eq!(short.stats().requests, 1);
    assert_eq!(env.stats().await["throttled_429_early_retries"], 0);

    env.mock.shutdown().await;
}

#[tokio::test]
async fn forbidden_says_which_role_to_grant() {
    let env = start(fault_config()).await;
    let (id, secret) = env.principal("no-access");
    let arm = env.client(&env.credential(&id, &secret, true), no_cache());
    let out = arm.list(SUB, &list_path("rg-paging")).await;
    match &out.error {
        Some(ArmError::Forbidden {
            code, action_hint, ..
        }) => {
            assert_eq!(code, "AuthorizationFailed");
            assert!(
                action_hint.contains(&format!(
                    "az role assignment create --assignee {id} --role Reader --scope /subscriptions/{SUB}"
                )),
                "{action_hint}"
            );
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert_eq!(arm.stats().requests, 1, "a 403 is not retried");
    env.mock.shutdown().await;
}

#[tokio::test]
async fn a_credential_that_fails_is_a_token_error() {
    let env = start(fault_config()).await;
    let wrong = "not-the-secret-4f1d9a";
    let arm = env.client(
        &env.credential(&env.mock.ready.client_id, wrong, true),
        no_cache(),
    );
    let out = arm.list(SUB, &list_path("rg-paging")).await;
    let e = out.error.unwrap();
    assert_eq!(e.step(), "token", "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("AADSTS7000215") && msg.contains("azaudit doctor"),
        "{msg}"
    );
    assert!(!msg.contains(wrong) && !format!("{e:?}").contains(wrong));
    assert_eq!(arm.stats().requests, 0, "nothing went to ARM without a token");
    env.mock.shutdown().await;
}

#[tokio::test]
async fn the_cache_serves_a_warm_rerun_without_requests() {
    let env = start(fault_config()).await;
    let cred = env.contributor();
    let dir = env.dir.path().join("cache");
    let cached = |refresh: bool, ttl: u64| ArmOptions {
        cache: CacheOptions {
            dir: Some(dir.clone()),
            ttl: Duration::from_secs(ttl),
            enabled: true,
            refresh,
        },
        ..no_cache()
    };
    let path = list_path("rg-paging");
    let want = env.ids("rg-paging");

    let cold = env.client(&cred, cached(false, 600));
    assert_eq!(ids_of(&cold.list(SUB, &path).await), want);
    assert_eq!(cold.stats().requests, 4);
    assert_eq!(cold.cache_dir().as_deref(), Some(dir.as_path()));

    // Private directory, private files, no token or secret in them.
    assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    let files = entries(&dir);
    assert_eq!(files.len(), 4, "one entry per page");
    for f in &files {
        assert_eq!(
            fs::metadata(f).unwrap().permissions().mode() & 0o777,
            0o600,
            "{f:?}"
        );
        let text = fs::read_to_string(f).unwrap();
        let entry: Value = serde_json::from_str(&text).unwrap();
        assert!(
            entry["url"]
                .as_str()
                .unwrap()
                .starts_with(&env.mock.ready.arm_endpoint)
        );
        assert!(entry["fetched_at"].as_i64().unwrap() > 1_700_000_000);
        assert_eq!(entry["status"], 200);
        assert!(entry["body"]["value"].is_array());
        for t in cred.issued.lock().unwrap().iter() {
            assert!(!text.contains(t.as_str()), "a token in the cache");
        }
        assert!(!text.contains(&env.mock.ready.client_secret));
    }

    // Warm: zero requests at the mock.
    let before = env.stats().await["arm_requests"].as_u64().unwrap();
    let warm = env.client(&cred, cached(false, 600));
    let out = warm.list(SUB, &path).await;
    assert_eq!(ids_of(&out), want);
    assert_eq!(out.pages, 4);
    let s = warm.stats();
    assert_eq!((s.requests, s.cache_hits, s.pages), (0, 4, 4));
    assert_eq!(env.stats().await["arm_requests"].as_u64().unwrap(), before);

    // Another principal does not see these entries.
    let (id, secret) = env.principal("reader");
    let other = env.client(&env.credential(&id, &secret, true), cached(false, 600));
    assert_eq!(ids_of(&other.list(SUB, &path).await), want);
    assert_eq!(other.stats().cache_hits, 0);

    // A corrupt entry is discarded and the list is read again, whole.
    fs::write(&files[0], b"{\"url\": \"https://127.0.0.1:1/trunc").unwrap();
    let repaired = env.client(&cred, cached(false, 600));
    assert_eq!(ids_of(&repaired.list(SUB, &path).await), want);
    assert_eq!(repaired.cache_discarded(), 1);
    assert!(repaired.stats().requests >= 1);
    assert_eq!(
        entries(&dir).len(),
        4 + 4,
        "the reader's entries and ours, all valid again"
    );

    // --refresh: not read, but rewritten.
    let refreshed = env.client(&cred, cached(true, 600));
    assert_eq!(ids_of(&refreshed.list(SUB, &path).await), want);
    assert_eq!((refreshed.stats().requests, refreshed.stats().cache_hits), (4, 0));

    // Entries older than the TTL are not used.
    for f in entries(&dir) {
        let mut v: Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
        v["fetched_at"] = json!(v["fetched_at"].as_i64().unwrap() - 3600);
        fs::write(&f, serde_json::to_vec(&v).unwrap()).unwrap();
    }
    let stale = env.client(&cred, cached(false, 600));
    assert_eq!(ids_of(&stale.list(SUB, &path).await), want);
    assert_eq!((stale.stats().requests, stale.stats().cache_hits), (4, 0));

    // --no-cache: nothing written anywhere.
    let empty = env.dir.path().join("unused-cache");
    let none = env.client(
        &cred,
        ArmOptions {
            cache: CacheOptions {
                dir: Some(empty.clone()),
                enabled: false,
                ..CacheOptions::default()
            },
            ..no_cache()
        },
    );
    assert_eq!(ids_of(&none.list(SUB, &path).await), want);
    assert!(!empty.exists());
    assert_eq!(none.cache_dir(), None);
    env.mock.shutdown().await;
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let env = start(fault_config()).await;
    let cred = env.contributor();
    for limit in [1usize, 2] {
        let arm = env.client(
            &cred,
            ArmOptions {
                concurrency: limit,
                ..no_cache()
            },
        );
        let path = list_path("rg-slow");
        let lists = (0..5).map(|_| arm.list(SUB, &path));
        let outs = futures::future::join_all(lists).await;
        assert!(outs.iter().all(|o| ids_of(o) == env.ids("rg-slow")));
        let peak = arm.peak_concurrency();
        assert!(
            peak >= 1 && peak <= limit as u64,
            "peak {peak} with --concurrency {limit}"
        );
    }
    env.mock.shutdown().await;
}

/// ARM's bucket of 10 reads refilling 2 per second, and --max-rps 2: three lists of four pages
/// (more reads than the bucket holds) finish without a single 429.
#[tokio::test]
async fn a_tight_bucket_is_never_overrun() {
    let env = start(MockConfig {
        page_size: 3,
        throttle: ThrottleConfig {
            reads_bucket: 10,
            reads_per_second: 2.0,
            ..ThrottleConfig::default()
        },
        ..MockConfig::default()
    })
    .await;
    let arm = env.client(
        &env.contributor(),
        ArmOptions {
            max_rps: 2.0,
            ..no_cache()
        },
    );
    let path = list_path("rg-paging");
    let outs = futures::future::join_all((0..3).map(|_| arm.list(SUB, &path))).await;
    for o in &outs {
        assert!(o.is_complete(), "{:?}", o.error);
        assert_eq!(ids_of(o), env.ids("rg-paging"));
    }
    let m = env.stats().await;
    assert_eq!(m["throttled_429"], 0);
    assert_eq!(m["arm_requests"], 12);
    let s = arm.stats();
    assert_eq!((s.throttled_429, s.retries, s.requests), (0, 0, 12));
    assert!(s.lowest_remaining_reads[SUB] < 10);
    env.mock.shutdown().await;
}

/// Compute's HighCostGet bucket of 3 refilling 4 per second, read budget plentiful: six VM lists
/// one after the other. Without heeding `x-ms-ratelimit-remaining-resource` the fourth would be a
/// 429; with it, once Compute's count reaches its reserve, one Compute list per hold (300 ms here).
#[tokio::test]
async fn compute_budget_is_heeded_before_it_runs_out() {
    let env = start(MockConfig {
        throttle: ThrottleConfig {
            compute_high_cost_bucket: 3,
            compute_high_cost_per_second: 4.0,
            ..ThrottleConfig::default()
        },
        ..MockConfig::default()
    })
    .await;
    let hold = Duration::from_millis(300);
    let arm = env.client(
        &env.contributor(),
        ArmOptions {
            compute_hold: hold,
            ..no_cache()
        },
    );
    let path =
        format!("/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines?api-version=2025-04-01");
    let started = std::time::Instant::now();
    for i in 0..6 {
        let o = arm.list(SUB, &path).await;
        assert!(o.is_complete(), "list {i}: {:?}", o.error);
    }
    let m = env.stats().await;
    assert_eq!(m["throttled_429"], 0, "{m}");
    assert_eq!(m["arm_requests"], 6);
    assert_eq!(arm.stats().throttled_429, 0);
    // Counts seen: 2, 1 (the reserve), then one list per hold: at least four holds.
    assert!(started.elapsed() >= hold * 4, "{:?}", started.elapsed());
    env.mock.shutdown().await;
}

/// Tokens that live two seconds at most, a credential that never refreshes on its own: every
/// expiry is a 401 that the client answers by clearing the credential's cache once. Also: no
/// token or secret appears in any log line (at trace level, every crate), error or `Debug` output.
#[tokio::test]
async fn short_lived_tokens_are_refreshed_and_never_logged() {
    let env = start(MockConfig {
        page_size: 3,
        latency_ms: 700,
        faults: vec![Fault::ShortTokens { seconds: 2 }],
        ..MockConfig::default()
    })
    .await;
    let cred = env.credential(&env.mock.ready.client_id, &env.mock.ready.client_secret, false);
    let dir = env.dir.path().join("cache");
    let arm = env.client(
        &cred,
        ArmOptions {
            cache: CacheOptions::in_dir(&dir),
            ..no_cache()
        },
    );
    let out = arm.list(SUB, &list_path("rg-paging")).await;
    assert!(out.is_complete(), "{:?}", out.error);
    assert_eq!(ids_of(&out), env.ids("rg-paging"));
    assert!(
        cred.token_requests.load(Ordering::SeqCst) >= 2,
        "the expired token was replaced"
    );
    assert!(arm.stats().retries >= 1, "the 401 was retried and counted");

    // A failing list too, for its error text.
    let (id, secret) = env.principal("no-access");
    let denied = env.client(&env.credential(&id, &secret, true), no_cache());
    let err = denied.list(SUB, &list_path("rg-paging")).await.error.unwrap();

    let mut everything = logs().text();
    everything.push_str(&format!("{arm:?} {out:?} {err} {err:?} {:?}", arm.stats()));
    for f in entries(&dir) {
        everything.push_str(&fs::read_to_string(f).unwrap());
    }
    assert!(everything.contains("refreshing"), "the log shows the refresh");
    // azure_core's transport policy logged every request at debug level (with its `Headers`
    // Debug, which prints `Authorization`): the capture saw it, and it held no token.
    assert!(
        everything.contains("passed to the transport policy"),
        "debug logs were captured"
    );
    let mut secrets = cred.issued.lock().unwrap().clone();
    secrets.push(env.mock.ready.client_secret.clone());
    secrets.push(secret);
    assert!(secrets.len() >= 4);
    for s in &secrets {
        assert!(s.len() > 20);
        assert!(
            !everything.contains(s.as_str()),
            "a secret leaked into logs or output"
        );
    }
    env.mock.shutdown().await;
}

/// Every log line of this test binary, at trace level, from every crate. A global subscriber
/// (not a per-test one): tracing caches per call site whether anyone listens, so a scoped
/// subscriber in parallel tests can miss lines, and a missed line proves nothing.
fn logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(buffer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buffer
    })
}

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

#[tokio::test]
async fn lists_outside_subscriptions_and_bad_paths() {
    let env = start(fault_config()).await;
    let arm = env.client(&env.contributor(), no_cache());
    let subs = arm.list_in(None, "/subscriptions?api-version=2022-12-01").await;
    assert!(subs.is_complete(), "{:?}", subs.error);
    assert_eq!(
        serde_json::from_str::<Value>(subs.items[0].get()).unwrap()["subscriptionId"],
        SUB
    );
    assert!(
        arm.stats().lowest_remaining_reads.is_empty(),
        "tenant reads are not a subscription's"
    );

    let e = arm.list(SUB, "subscriptions/x").await.error.unwrap();
    assert_eq!(e.step(), "invalid");
    let e = arm
        .get(
            Some(SUB),
            &format!("{}?api-version=2025-05-01", pip_id("rg-paging", 99)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ArmError::NotFound { ref code, .. } if code == "ResourceNotFound"),
        "{e:?}"
    );
    // A scheme-relative path still goes to the ARM endpoint, never to the host it names.
    let e = arm
        .get(None, "//127.0.0.2/subscriptions?api-version=2022-12-01")
        .await
        .unwrap_err();
    assert!(!matches!(e, ArmError::Transport(_)), "{e:?}");
    assert_eq!(env.stats().await["foreign_host_requests"], 0);
    env.mock.shutdown().await;
}
