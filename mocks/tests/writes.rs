//! The mock's ARM writes over real HTTPS on loopback (issue 7): `If-Match` and 412, new ETags,
//! long-running operations (`Azure-AsyncOperation` / `Location` polling), the in-use public IP
//! (400 `PublicIPAddressCannotBeDeleted`), locks (409 `ScopeLocked`), the write and delete
//! budgets with their headers, RBAC for writes, reference checks on load balancer PUTs, and the
//! `writes` list of `/_mock/stats`.

use std::path::PathBuf;

use azaudit_mocks::config::{
    LockConfig, LockLevel, MockConfig, PrincipalConfig, ThrottleConfig, WritesConfig,
};
use azaudit_mocks::tokens::{Claims, now_unix};
use azaudit_mocks::{RunningMock, ServeOptions};
use azaudit_world::World;
use serde_json::{Value, json};

const SUB: &str = "0b1f6471-1bf0-4dda-aec3-111111111111";
const RG: &str = "MC_rg_aks_westeurope";
const WRITER: &str = "bbbbbbbb-0000-0000-0000-000000000001";
const READER: &str = "bbbbbbbb-0000-0000-0000-000000000002";
const API: &str = "api-version=2025-05-01";
const FE: &str = "a3d654cb447704508bc7b1db1dacaec0";
const FE_OLD: &str = "a9b1e2f3c4d5e6f708192a3b4c5d6e7f";

fn net(t: &str, name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/{t}/{name}")
}

fn lb_id() -> String {
    net("loadBalancers", "kubernetes")
}

fn sub_id(coll: &str, name: &str) -> String {
    format!("{}/{coll}/{name}", lb_id())
}

/// An AKS-shaped LB with a live frontend and an orphaned one (each with a rule and a probe), the
/// two PIPs they hold, a detached PIP and an NSG.
fn world() -> World {
    let etag = "W/\"00000000-0000-0000-0000-00000000aaaa\"";
    let rule = |fe: &str, port: u32| {
        json!({"name": format!("{fe}-TCP-{port}"), "id": sub_id("loadBalancingRules", &format!("{fe}-TCP-{port}")), "etag": etag,
               "properties": {"frontendIPConfiguration": {"id": sub_id("frontendIPConfigurations", fe)},
                              "backendAddressPool": {"id": sub_id("backendAddressPools", "kubernetes")},
                              "probe": {"id": sub_id("probes", &format!("{fe}-TCP-{port}"))},
                              "protocol": "Tcp", "frontendPort": port, "backendPort": port}})
    };
    let probe = |fe: &str, port: u32| {
        json!({"name": format!("{fe}-TCP-{port}"), "id": sub_id("probes", &format!("{fe}-TCP-{port}")), "etag": etag,
               "properties": {"protocol": "Tcp", "port": 30000 + port}})
    };
    let arm = vec![
        json!({"id": lb_id(), "name": "kubernetes", "type": "Microsoft.Network/loadBalancers", "location": "westeurope",
        "etag": etag, "sku": {"name": "Standard"},
        "properties": {
            "provisioningState": "Succeeded",
            "frontendIPConfigurations": [
                {"name": FE, "id": sub_id("frontendIPConfigurations", FE), "etag": etag,
                 "properties": {"publicIPAddress": {"id": net("publicIPAddresses", "pip-live")}}},
                {"name": FE_OLD, "id": sub_id("frontendIPConfigurations", FE_OLD), "etag": etag,
                 "properties": {"publicIPAddress": {"id": net("publicIPAddresses", "pip-old")}}}
            ],
            "backendAddressPools": [{"name": "kubernetes", "id": sub_id("backendAddressPools", "kubernetes"), "etag": etag, "properties": {}}],
            "loadBalancingRules": [rule(FE, 80), rule(FE_OLD, 8080)],
            "probes": [probe(FE, 80), probe(FE_OLD, 8080)]
        }}),
        json!({"id": net("publicIPAddresses", "pip-live"), "name": "pip-live", "type": "Microsoft.Network/publicIPAddresses",
               "location": "westeurope", "etag": "W/\"pip-live-1\"",
               "properties": {"ipAddress": "20.61.10.20", "ipConfiguration": {"id": sub_id("frontendIPConfigurations", FE)}}}),
        json!({"id": net("publicIPAddresses", "pip-old"), "name": "pip-old", "type": "Microsoft.Network/publicIPAddresses",
               "location": "westeurope", "etag": "W/\"pip-old-1\"",
               "properties": {"ipAddress": "20.61.10.21", "ipConfiguration": {"id": sub_id("frontendIPConfigurations", FE_OLD)}}}),
        json!({"id": net("publicIPAddresses", "pip-free"), "name": "pip-free", "type": "Microsoft.Network/publicIPAddresses",
               "location": "westeurope", "etag": "W/\"pip-free-1\"", "properties": {"ipAddress": "20.61.10.22"}}),
        json!({"id": net("networkSecurityGroups", "aks-nsg"), "name": "aks-nsg", "type": "Microsoft.Network/networkSecurityGroups",
               "location": "westeurope", "etag": "W/\"nsg-1\"",
               "properties": {"securityRules": [
                   {"name": "k8s-azure-lb_allow_IPv4_x", "properties": {"priority": 500, "direction": "Inbound", "access": "Allow",
                    "protocol": "Tcp", "destinationAddressPrefixes": ["20.61.10.20", "20.61.10.21"]}}]}}),
    ];
    let meta = json!({"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "subscriptions": [{"id": SUB}]});
    World::from_files(vec![
        (PathBuf::from("world.json"), serde_json::to_vec(&meta).unwrap()),
        (
            PathBuf::from("arm/resources.json"),
            serde_json::to_vec(&arm).unwrap(),
        ),
    ])
}

fn principal(oid: &str, actions: &[&str]) -> PrincipalConfig {
    PrincipalConfig {
        client_id: format!("client-{}", &oid[oid.len() - 4..]),
        object_id: oid.to_string(),
        client_secret: None,
        subscriptions: vec!["*".into()],
        actions: actions.iter().map(|s| s.to_string()).collect(),
        not_actions: Vec::new(),
    }
}

fn config() -> MockConfig {
    MockConfig {
        principals: vec![principal(WRITER, &["*"]), principal(READER, &["*/read"])],
        writes: WritesConfig {
            async_polls: 1,
            retry_after_seconds: 1,
        },
        ..MockConfig::default()
    }
}

struct Mock {
    running: RunningMock,
    client: reqwest::Client,
    base: String,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

async fn start(config: MockConfig) -> Mock {
    let dir = tempfile::tempdir().unwrap();
    let running = azaudit_mocks::start(ServeOptions {
        world: world(),
        listen: "127.0.0.1:0".parse().unwrap(),
        files_dir: dir.path().to_path_buf(),
        config: Some(config),
    })
    .await
    .unwrap();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&running.ready.ca_file).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .no_proxy()
        .build()
        .unwrap();
    let base = running.ready.arm_endpoint.trim_end_matches('/').to_string();
    assert!(base.starts_with("https://127.0.0.1:"), "loopback only: {base}");
    Mock {
        running,
        client,
        base,
        _dir: dir,
    }
}

impl Mock {
    fn token(&self, oid: &str) -> String {
        let now = now_unix();
        self.running.state.signer.issue(&Claims {
            aud: "https://management.azure.com/".into(),
            iss: format!("https://sts.windows.net/{}/", self.running.state.tenant_id),
            tid: self.running.state.tenant_id.clone(),
            oid: oid.into(),
            appid: format!("app-of-{oid}"),
            iat: now,
            nbf: now,
            exp: now + 3600,
            idtyp: "app".into(),
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        as_: &str,
        if_match: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        assert!(url.starts_with("https://127.0.0.1:"), "loopback only: {url}");
        let mut r = self.client.request(method, url).bearer_auth(self.token(as_));
        if let Some(m) = if_match {
            r = r.header("if-match", m);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    fn url(&self, id: &str) -> String {
        format!("{}{id}?{API}", self.base)
    }

    async fn get(&self, id: &str) -> Answer {
        self.send(reqwest::Method::GET, &self.url(id), WRITER, None, None)
            .await
    }

    async fn put(&self, id: &str, if_match: Option<&str>, body: &Value) -> Answer {
        self.send(reqwest::Method::PUT, &self.url(id), WRITER, if_match, Some(body))
            .await
    }

    async fn delete(&self, id: &str, if_match: Option<&str>) -> Answer {
        self.send(reqwest::Method::DELETE, &self.url(id), WRITER, if_match, None)
            .await
    }

    /// Polls an operation URL the mock handed out until it is no longer in progress; returns
    /// the answers in order.
    async fn poll(&self, url: &str) -> Vec<Answer> {
        let mut out = Vec::new();
        for _ in 0..10 {
            let a = self.send(reqwest::Method::GET, url, WRITER, None, None).await;
            let done = a.status != 202 && a.body["status"] != "InProgress";
            out.push(a);
            if done {
                return out;
            }
        }
        panic!("operation {url} never completed");
    }

    async fn stats(&self) -> Value {
        self.client
            .get(format!("{}/_mock/stats", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The LB without the orphaned frontend, its rule and its probe: what cleanup PUTs.
fn without_old_frontend(lb: &Value) -> Value {
    let mut v = lb.clone();
    for coll in ["frontendIPConfigurations", "loadBalancingRules", "probes"] {
        let items = v["properties"][coll].as_array_mut().unwrap();
        items.retain(|i| !i["name"].as_str().unwrap().starts_with(FE_OLD));
    }
    v
}

#[tokio::test]
async fn put_with_if_match_changes_etags_and_completes_by_polling() {
    let m = start(config()).await;
    let lb = m.get(&lb_id()).await.body;
    let etag = lb["etag"].as_str().unwrap().to_string();

    // A stale ETag: 412, nothing changes.
    let stale = m
        .put(&lb_id(), Some("W/\"stale\""), &without_old_frontend(&lb))
        .await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.code(), "PreconditionFailed");
    assert!(stale.message().contains(&etag), "{}", stale.message());
    assert_eq!(m.get(&lb_id()).await.body["etag"], etag.as_str());

    // The right ETag: 200, a new ETag on the LB and its sub-resources, Updating until polled.
    let put = m.put(&lb_id(), Some(&etag), &without_old_frontend(&lb)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let new_etag = put.body["etag"].as_str().unwrap().to_string();
    assert_ne!(new_etag, etag);
    assert!(new_etag.starts_with("W/\""));
    assert_eq!(put.body["properties"]["provisioningState"], "Updating");
    assert_eq!(
        put.body["properties"]["frontendIPConfigurations"][0]["etag"],
        new_etag.as_str()
    );
    assert_eq!(put.header("retry-after").as_deref(), Some("1"));
    let op = put.header("azure-asyncoperation").expect("Azure-AsyncOperation");
    assert!(op.starts_with(&m.base) && op.contains("/operations/"), "{op}");
    assert_eq!(
        m.get(&lb_id()).await.body["properties"]["provisioningState"],
        "Updating"
    );
    let polls = m.poll(&op).await;
    let statuses: Vec<&str> = polls.iter().map(|a| a.body["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["InProgress", "Succeeded"]);
    assert_eq!(polls[0].header("retry-after").as_deref(), Some("1"));
    let after = m.get(&lb_id()).await.body;
    assert_eq!(after["properties"]["provisioningState"], "Succeeded");
    assert_eq!(after["etag"], new_etag.as_str());
    assert_eq!(
        after["properties"]["frontendIPConfigurations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Back-references follow the rules: the live frontend names its remaining rule only.
    assert_eq!(
        after["properties"]["frontendIPConfigurations"][0]["properties"]["loadBalancingRules"],
        json!([{"id": sub_id("loadBalancingRules", &format!("{FE}-TCP-80"))}])
    );

    // The released public IP lost its association and got a new ETag; the other kept both.
    let old = m.get(&net("publicIPAddresses", "pip-old")).await.body;
    assert!(old["properties"].get("ipConfiguration").is_none(), "{old}");
    assert_ne!(old["etag"], "W/\"pip-old-1\"");
    let live = m.get(&net("publicIPAddresses", "pip-live")).await.body;
    assert_eq!(live["etag"], "W/\"pip-live-1\"");

    // The old ETag is now stale too.
    let again = m.put(&lb_id(), Some(&etag), &after).await;
    assert_eq!(again.status, 412);
    m.running.shutdown().await;
}

#[tokio::test]
async fn lb_put_must_not_leave_dangling_references() {
    let m = start(config()).await;
    let lb = m.get(&lb_id()).await.body;
    // Drop the frontend but keep its rule: ARM refuses the reference.
    let mut body = lb.clone();
    body["properties"]["frontendIPConfigurations"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != FE_OLD);
    let r = m.put(&lb_id(), lb["etag"].as_str(), &body).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "InvalidResourceReference");
    assert!(
        r.message().contains(&sub_id("frontendIPConfigurations", FE_OLD)),
        "{}",
        r.message()
    );
    // Nothing changed.
    assert_eq!(m.get(&lb_id()).await.body["etag"], lb["etag"]);
    m.running.shutdown().await;
}

#[tokio::test]
async fn delete_is_refused_while_the_ip_is_allocated_then_polled_to_the_end() {
    let m = start(config()).await;
    let pip = net("publicIPAddresses", "pip-old");
    let etag = m.get(&pip).await.body["etag"].as_str().unwrap().to_string();
    let refused = m.delete(&pip, Some(&etag)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.code(), "PublicIPAddressCannotBeDeleted");
    assert_eq!(
        refused.message(),
        format!(
            "Public IP address {pip} can not be deleted since it is still allocated to resource {}. In order to delete the public IP, disassociate/detach the Public IP address from the resource.  To learn how to do this, see aka.ms/deletepublicip.",
            sub_id("frontendIPConfigurations", FE_OLD)
        )
    );
    assert_eq!(m.get(&pip).await.status, 200);

    // A detached IP: 202, Location and Azure-AsyncOperation; gone once the operation ends.
    let free = net("publicIPAddresses", "pip-free");
    let etag = m.get(&free).await.body["etag"].as_str().unwrap().to_string();
    assert_eq!(m.delete(&free, Some("W/\"other\"")).await.status, 412);
    let d = m.delete(&free, Some(&etag)).await;
    assert_eq!(d.status, 202);
    let location = d.header("location").expect("Location");
    assert!(
        d.header("azure-asyncoperation")
            .is_some_and(|u| u.contains("/operations/"))
    );
    assert!(location.contains("/operationResults/"), "{location}");
    assert_eq!(d.header("retry-after").as_deref(), Some("1"));
    let during = m.get(&free).await;
    assert_eq!(during.status, 200);
    assert_eq!(during.body["properties"]["provisioningState"], "Deleting");
    let polls = m.poll(&location).await;
    let statuses: Vec<u16> = polls.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [202, 204]);
    assert_eq!(m.get(&free).await.status, 404);
    // Deleting what is gone is not an error in ARM.
    assert_eq!(m.delete(&free, None).await.status, 204);
    m.running.shutdown().await;
}

#[tokio::test]
async fn locks_refuse_writes_with_scope_locked() {
    let mut c = config();
    c.locks = vec![
        LockConfig::ReadOnly(lb_id()),
        LockConfig::Level {
            scope: format!(
                "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/publicIPAddresses/pip-free"
            ),
            level: LockLevel::CanNotDelete,
        },
    ];
    let m = start(c).await;
    let lb = m.get(&lb_id()).await.body;
    let r = m
        .put(&lb_id(), lb["etag"].as_str(), &without_old_frontend(&lb))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "ScopeLocked");
    assert_eq!(
        r.message(),
        format!(
            "The scope '{}' cannot perform write operation because following scope(s) are locked: '{}'. Please remove the lock and try again.",
            lb_id(),
            lb_id()
        )
    );
    let free = net("publicIPAddresses", "pip-free");
    let d = m.delete(&free, None).await;
    assert_eq!((d.status, d.code()), (409, "ScopeLocked"));
    assert!(d.message().contains("cannot perform delete operation"));
    // CanNotDelete still allows an update.
    let pip = m.get(&free).await.body;
    assert_eq!(m.put(&free, pip["etag"].as_str(), &pip).await.status, 200);
    m.running.shutdown().await;
}

#[tokio::test]
async fn writes_need_write_actions_and_have_their_own_budget() {
    let mut c = config();
    c.throttle = ThrottleConfig {
        writes_bucket: 2,
        writes_per_second: 0.0,
        ..ThrottleConfig::default()
    };
    let m = start(c).await;
    let free = net("publicIPAddresses", "pip-free");
    // A reader may not delete.
    let r = m
        .send(reqwest::Method::DELETE, &m.url(&free), READER, None, None)
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "AuthorizationFailed");
    assert!(
        r.message()
            .contains("'Microsoft.Network/publicIPAddresses/delete'"),
        "{}",
        r.message()
    );
    // Writes and deletes report their own remaining budget; reads are untouched.
    let pip = m.get(&free).await.body;
    let put = m.put(&free, pip["etag"].as_str(), &pip).await;
    assert_eq!(put.status, 200);
    assert_eq!(
        put.header("x-ms-ratelimit-remaining-subscription-writes")
            .as_deref(),
        Some("1")
    );
    assert!(
        put.header("x-ms-ratelimit-remaining-subscription-reads")
            .is_none()
    );
    let put2 = m.put(&free, None, &pip).await;
    assert_eq!(
        put2.header("x-ms-ratelimit-remaining-subscription-writes")
            .as_deref(),
        Some("0")
    );
    let third = m.put(&free, None, &pip).await;
    assert_eq!(third.status, 429);
    assert!(
        third.message().contains("'write' requests"),
        "{}",
        third.message()
    );
    assert!(third.header("retry-after").is_some());
    // Deletes have their own bucket, per principal (the reader's refused delete took one of
    // the reader's tokens, not the writer's).
    let d = m.delete(&free, None).await;
    assert_eq!(d.status, 202, "{}", d.body);
    assert_eq!(
        d.header("x-ms-ratelimit-remaining-subscription-deletes")
            .as_deref(),
        Some("1")
    );
    let read = m.get(&lb_id()).await;
    assert_eq!(read.status, 200);
    assert!(
        read.header("x-ms-ratelimit-remaining-subscription-reads")
            .is_some()
    );
    m.running.shutdown().await;
}

#[tokio::test]
async fn stats_list_every_write() {
    let m = start(config()).await;
    let lb = m.get(&lb_id()).await.body;
    let etag = lb["etag"].as_str().unwrap().to_string();
    m.put(&lb_id(), Some("W/\"stale\""), &lb).await;
    let ok = m.put(&lb_id(), Some(&etag), &without_old_frontend(&lb)).await;
    m.delete(&net("publicIPAddresses", "pip-live"), None).await;
    let stats = m.stats().await;
    let writes = stats["writes"].as_array().unwrap();
    assert_eq!(writes.len(), 3, "{stats}");
    assert_eq!(writes[0]["method"], "PUT");
    assert_eq!(writes[0]["status"], 412);
    assert_eq!(writes[0]["code"], "PreconditionFailed");
    assert_eq!(writes[0]["if_match"], "W/\"stale\"");
    assert_eq!(writes[1]["status"], 200);
    assert_eq!(writes[1]["id"], lb_id());
    assert_eq!(writes[1]["etag_before"], etag.as_str());
    assert_eq!(writes[1]["etag_after"], ok.body["etag"]);
    assert!(writes[1]["operation"].is_string());
    assert_eq!(writes[1]["principal"], "config:client-0001");
    assert_eq!(writes[2]["method"], "DELETE");
    assert_eq!(writes[2]["code"], "PublicIPAddressCannotBeDeleted");
    m.running.shutdown().await;
}
