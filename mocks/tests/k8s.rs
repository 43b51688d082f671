//! The mock's Kubernetes API servers, tested over real HTTPS on loopback with a client that trusts
//! only the mock's CA: discovery, lists and paging, selectors, single objects, the cloud-config
//! Secret, errors, request counting, server-side tables and the kubeconfig.
//!
//! Every test starts its own mock on 127.0.0.1 from `tests/worlds/basic` (or a world built in the
//! test) and never talks to anything else: the client has proxies disabled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use azaudit_mocks::{RunningMock, ServeOptions};
use azaudit_world::World;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn basic_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/worlds/basic")
}

struct Mock {
    running: RunningMock,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(world: World) -> Mock {
    let dir = tempfile::tempdir().unwrap();
    let running = azaudit_mocks::start(ServeOptions {
        world,
        listen: "127.0.0.1:0".parse().unwrap(),
        files_dir: dir.path().join("files"),
        config: None,
    })
    .await
    .unwrap();
    let ca = std::fs::read(&running.ready.ca_file).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .tls_built_in_root_certs(false)
        .no_proxy()
        .build()
        .unwrap();
    Mock {
        running,
        client,
        _dir: dir,
    }
}

async fn start_basic() -> Mock {
    start(World::load(&basic_dir()).unwrap()).await
}

impl Mock {
    fn url(&self, cluster: &str, path: &str) -> String {
        format!("{}{path}", self.running.ready.k8s_endpoints[cluster])
    }

    fn token(&self, cluster: &str) -> String {
        self.running.state.k8s_tokens[cluster].clone()
    }

    /// GET with the cluster's token and optional query pairs; returns status and JSON body.
    async fn get_q(&self, cluster: &str, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let resp = self
            .client
            .get(self.url(cluster, path))
            .query(query)
            .bearer_auth(self.token(cluster))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert_eq!(
            resp.headers()[reqwest::header::CONTENT_TYPE],
            "application/json",
            "{path}"
        );
        (status, resp.json().await.unwrap())
    }

    async fn get(&self, cluster: &str, path: &str) -> (StatusCode, Value) {
        self.get_q(cluster, path, &[]).await
    }

    /// Every item of a list, following `continue` with the given `limit`; checks each page, and
    /// without selectors (`extra` empty) that `remainingItemCount` counts what is still to come.
    async fn list_all(&self, cluster: &str, path: &str, limit: usize, extra: &[(&str, &str)]) -> Vec<Value> {
        let total = match extra.is_empty() {
            true => Some(self.get(cluster, path).await.1["items"].as_array().unwrap().len()),
            false => None,
        };
        let limit_s = limit.to_string();
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut q: Vec<(&str, &str)> = vec![("limit", &limit_s)];
            q.extend_from_slice(extra);
            if let Some(t) = &token {
                q.push(("continue", t));
            }
            let (status, page) = self.get_q(cluster, path, &q).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let got = page["items"].as_array().unwrap();
            assert!(got.len() <= limit, "page larger than limit {limit}");
            items.extend(got.iter().cloned());
            pages += 1;
            assert!(pages < 100, "paging does not end");
            match page["metadata"]["continue"].as_str() {
                Some(t) => {
                    assert!(!t.is_empty());
                    token = Some(t.to_string());
                    let remaining = page["metadata"].get("remainingItemCount").and_then(Value::as_u64);
                    match total {
                        Some(total) => assert_eq!(remaining, Some((total - items.len()) as u64), "{path}"),
                        None => assert_eq!(remaining, None, "{path}"),
                    }
                }
                None => {
                    assert!(page["metadata"].get("remainingItemCount").is_none());
                    break;
                }
            }
        }
        items
    }
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            let m = &i["metadata"];
            match m["namespace"].as_str() {
                Some(ns) => format!("{ns}/{}", m["name"].as_str().unwrap()),
                None => m["name"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// `ns/name` (or `name`) of a kind in the world, in the API server's order.
fn world_names(cluster: &str, kind: &str) -> Vec<String> {
    let w = World::load(&basic_dir()).unwrap();
    let mut v: Vec<String> = names(&w.clusters[cluster].of_kind(kind).cloned().collect::<Vec<_>>());
    v.sort();
    v
}

fn assert_status(body: &Value, code: u16, reason: &str) {
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["code"], code);
    assert_eq!(body["reason"], reason, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn version_and_discovery_are_plain_json() {
    let m = start_basic().await;
    let (s, v) = m.get("aks-prod", "/version").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["gitVersion"].as_str().unwrap().starts_with("v1.31."), "{v}");
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("31"))
    );

    // kubectl asks for aggregated discovery first; the mock answers legacy JSON, and kubectl
    // falls back on the content type.
    let resp = m
        .client
        .get(m.url("aks-prod", "/api"))
        .header(
            "Accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .bearer_auth(m.token("aks-prod"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let api: Value = resp.json().await.unwrap();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));

    let (_, core) = m.get("aks-prod", "/api/v1").await;
    assert_eq!(core["kind"], "APIResourceList");
    assert_eq!(core["groupVersion"], "v1");
    let svc = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "services")
        .unwrap();
    assert_eq!(svc["kind"], "Service");
    assert_eq!(svc["namespaced"], true);
    assert_eq!(svc["shortNames"], json!(["svc"]));
    assert_eq!(svc["verbs"], json!(["get", "list"]));
    let core_names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(core_names, ["services", "nodes", "pods", "secrets"]);

    let (_, groups) = m.get("aks-prod", "/apis").await;
    assert_eq!(groups["kind"], "APIGroupList");
    assert_eq!(groups["groups"][0]["name"], "discovery.k8s.io");
    assert_eq!(
        groups["groups"][0]["preferredVersion"]["groupVersion"],
        "discovery.k8s.io/v1"
    );
    let (_, group) = m.get("aks-prod", "/apis/discovery.k8s.io").await;
    assert_eq!(group["kind"], "APIGroup");
    let (_, disc) = m.get("aks-prod", "/apis/discovery.k8s.io/v1").await;
    assert_eq!(disc["groupVersion"], "discovery.k8s.io/v1");
    assert_eq!(disc["resources"][0]["name"], "endpointslices");
    assert_eq!(disc["resources"][0]["kind"], "EndpointSlice");
}

#[tokio::test]
async fn lists_serve_the_world_in_storage_order() {
    let m = start_basic().await;
    let cases = [
        ("aks-prod", "/api/v1/services", "Service", "ServiceList", "v1"),
        ("aks-prod", "/api/v1/nodes", "Node", "NodeList", "v1"),
        ("aks-prod", "/api/v1/pods", "Pod", "PodList", "v1"),
        (
            "aks-prod",
            "/apis/discovery.k8s.io/v1/endpointslices",
            "EndpointSlice",
            "EndpointSliceList",
            "discovery.k8s.io/v1",
        ),
        ("aks-dev", "/api/v1/services", "Service", "ServiceList", "v1"),
        ("aks-dev", "/api/v1/nodes", "Node", "NodeList", "v1"),
    ];
    for (cluster, path, kind, list_kind, api_version) in cases {
        let (s, list) = m.get(cluster, path).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list["kind"], list_kind);
        assert_eq!(list["apiVersion"], api_version);
        assert!(list["metadata"]["resourceVersion"].as_str().is_some());
        assert!(list["metadata"].get("continue").is_none());
        let items = list["items"].as_array().unwrap();
        assert_eq!(names(items), world_names(cluster, kind), "{cluster} {path}");
        // Items of a typed list carry no kind/apiVersion, as from kube-apiserver.
        assert!(
            items
                .iter()
                .all(|i| i.get("kind").is_none() && i.get("apiVersion").is_none())
        );
    }
    let (_, svcs) = m.get("aks-prod", "/api/v1/services").await;
    assert_eq!(
        names(svcs["items"].as_array().unwrap()),
        [
            "default/kubernetes",
            "default/web",
            "kube-system/kube-dns",
            "monitoring/grafana"
        ]
    );
    // The list's resourceVersion is the newest object's.
    assert_eq!(svcs["metadata"]["resourceVersion"], "50120");

    let (_, ns_svcs) = m.get("aks-prod", "/api/v1/namespaces/default/services").await;
    assert_eq!(
        names(ns_svcs["items"].as_array().unwrap()),
        ["default/kubernetes", "default/web"]
    );
    let (_, ns_eps) = m
        .get(
            "aks-prod",
            "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
        )
        .await;
    assert_eq!(
        names(ns_eps["items"].as_array().unwrap()),
        ["kube-system/kube-dns-4hq8m"]
    );
    let (_, ns_pods) = m.get("aks-prod", "/api/v1/namespaces/kube-system/pods").await;
    assert_eq!(ns_pods["items"].as_array().unwrap().len(), 5);
    let (_, empty) = m.get("aks-prod", "/api/v1/namespaces/nowhere/pods").await;
    assert_eq!(empty["items"], json!([]));
}

#[tokio::test]
async fn paging_with_limit_1_and_2_returns_every_item_once() {
    let m = start_basic().await;
    for (cluster, path) in [
        ("aks-prod", "/api/v1/services"),
        ("aks-prod", "/api/v1/namespaces/default/services"),
        ("aks-prod", "/api/v1/nodes"),
        ("aks-prod", "/api/v1/namespaces/kube-system/pods"),
        ("aks-prod", "/apis/discovery.k8s.io/v1/endpointslices"),
    ] {
        let (_, whole) = m.get(cluster, path).await;
        let all = names(whole["items"].as_array().unwrap());
        assert!(all.len() >= 2, "{path} needs at least two items to test paging");
        for limit in [1, 2] {
            let paged = names(&m.list_all(cluster, path, limit, &[]).await);
            assert_eq!(paged, all, "{path} limit {limit}");
        }
    }

    // Page by page: continue and remainingItemCount while more remain, neither on the last page.
    let (_, p1) = m.get_q("aks-prod", "/api/v1/services", &[("limit", "2")]).await;
    assert_eq!(
        names(p1["items"].as_array().unwrap()),
        ["default/kubernetes", "default/web"]
    );
    assert_eq!(p1["metadata"]["remainingItemCount"], 2);
    let c1 = p1["metadata"]["continue"].as_str().unwrap().to_string();
    // The token is kube-apiserver's: base64url of {"v","rv","start"} with start after the last key.
    let decoded: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&c1).unwrap()).unwrap();
    assert_eq!(decoded["v"], "meta.k8s.io/v1");
    assert_eq!(decoded["start"], "default/web\u{0}");
    let (_, p2) = m
        .get_q(
            "aks-prod",
            "/api/v1/services",
            &[("limit", "3"), ("continue", &c1)],
        )
        .await;
    assert_eq!(
        names(p2["items"].as_array().unwrap()),
        ["kube-system/kube-dns", "monitoring/grafana"]
    );
    assert!(p2["metadata"].get("continue").is_none());
    assert!(p2["metadata"].get("remainingItemCount").is_none());
    assert_eq!(
        p2["metadata"]["resourceVersion"],
        p1["metadata"]["resourceVersion"]
    );

    // An exact fit: two items, limit 2, no continue.
    let (_, exact) = m
        .get_q(
            "aks-prod",
            "/api/v1/namespaces/default/services",
            &[("limit", "2")],
        )
        .await;
    assert!(exact["metadata"].get("continue").is_none());
    // limit 0 means no limit.
    let (_, unlimited) = m.get_q("aks-prod", "/api/v1/pods", &[("limit", "0")]).await;
    assert_eq!(unlimited["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn paging_with_a_selector_has_no_remaining_count() {
    let m = start_basic().await;
    let sel = [("labelSelector", "k8s-app in (kube-proxy,cloud-node-manager)")];
    let (_, p1) = m
        .get_q("aks-prod", "/api/v1/pods", &[("limit", "1"), sel[0]])
        .await;
    assert_eq!(
        names(p1["items"].as_array().unwrap()),
        ["kube-system/cloud-node-manager-h7c2z"]
    );
    assert!(p1["metadata"]["continue"].is_string());
    // "not set if the list request contained label or field selectors" (ListMeta).
    assert!(p1["metadata"].get("remainingItemCount").is_none());
    let got = names(&m.list_all("aks-prod", "/api/v1/pods", 1, &sel).await);
    assert_eq!(
        got,
        [
            "kube-system/cloud-node-manager-h7c2z",
            "kube-system/cloud-node-manager-w5r8n",
            "kube-system/kube-proxy-2xv7l",
            "kube-system/kube-proxy-q9m4t"
        ]
    );
}

#[tokio::test]
async fn bad_continue_and_bad_limit_are_400() {
    let m = start_basic().await;
    let wrong_version = URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v0","rv":1,"start":"a\u0000"}"#);
    let no_rv = URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a\u0000"}"#);
    let no_start = URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":5,"start":""}"#);
    for token in ["%%%not-base64", "bm90IGpzb24", &wrong_version, &no_rv, &no_start] {
        let (s, body) = m
            .get_q("aks-prod", "/api/v1/services", &[("continue", token)])
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{token}");
        assert_status(&body, 400, "BadRequest");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("invalid continue token")
        );
    }
    let (_, p1) = m.get_q("aks-prod", "/api/v1/services", &[("limit", "1")]).await;
    let c = p1["metadata"]["continue"].as_str().unwrap();
    let (s, body) = m
        .get_q(
            "aks-prod",
            "/api/v1/services",
            &[("continue", c), ("resourceVersion", "5")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_status(&body, 400, "BadRequest");
    let (s, body) = m.get_q("aks-prod", "/api/v1/services", &[("limit", "ten")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_status(&body, 400, "BadRequest");
}

#[tokio::test]
async fn label_selectors_every_operator() {
    let m = start_basic().await;
    let pods = |sel: &'static str| {
        let m = &m;
        async move {
            let (s, body) = m
                .get_q("aks-prod", "/api/v1/pods", &[("labelSelector", sel)])
                .await;
            assert_eq!(s, StatusCode::OK, "{sel}: {body}");
            names(body["items"].as_array().unwrap())
                .into_iter()
                .map(|n| n.trim_start_matches("kube-system/").to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(pods("k8s-app=kube-dns").await, ["coredns-6d8c4cb4d-8gq2x"]);
    assert_eq!(
        pods("k8s-app==kube-proxy").await,
        ["kube-proxy-2xv7l", "kube-proxy-q9m4t"]
    );
    assert_eq!(
        pods("k8s-app!=kube-proxy").await,
        [
            "cloud-node-manager-h7c2z",
            "cloud-node-manager-w5r8n",
            "coredns-6d8c4cb4d-8gq2x"
        ]
    );
    assert_eq!(pods("component").await, ["kube-proxy-2xv7l", "kube-proxy-q9m4t"]);
    assert_eq!(
        pods("!component").await,
        [
            "cloud-node-manager-h7c2z",
            "cloud-node-manager-w5r8n",
            "coredns-6d8c4cb4d-8gq2x"
        ]
    );
    assert_eq!(
        pods("k8s-app in (kube-dns, cloud-node-manager)").await,
        [
            "cloud-node-manager-h7c2z",
            "cloud-node-manager-w5r8n",
            "coredns-6d8c4cb4d-8gq2x"
        ]
    );
    assert_eq!(
        pods("k8s-app notin (kube-proxy,cloud-node-manager)").await,
        ["coredns-6d8c4cb4d-8gq2x"]
    );
    // `!=`/`notin` also select objects without the label.
    assert_eq!(pods("tier!=node").await.len(), 3);
    // Comma = AND.
    assert_eq!(
        pods("component=kube-proxy,tier=node").await,
        ["kube-proxy-2xv7l", "kube-proxy-q9m4t"]
    );
    assert!(pods("component=kube-proxy,!tier").await.is_empty());
    // Prefixed keys; on another kind.
    let (_, nodes) = m
        .get_q(
            "aks-prod",
            "/api/v1/nodes",
            &[(
                "labelSelector",
                "!node.kubernetes.io/exclude-from-external-load-balancers",
            )],
        )
        .await;
    assert_eq!(
        names(nodes["items"].as_array().unwrap()),
        [
            "aks-nodepool1-12345678-vmss000000",
            "aks-nodepool1-12345678-vmss000001"
        ]
    );
    for bad in ["k8s-app in ()", "k8s-app in kube-dns", "=x", "a b"] {
        let (s, body) = m
            .get_q("aks-prod", "/api/v1/pods", &[("labelSelector", bad)])
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_status(&body, 400, "BadRequest");
    }
}

#[tokio::test]
async fn field_selectors() {
    let m = start_basic().await;
    let list = |path: &'static str, sel: &'static str| {
        let m = &m;
        async move {
            let (s, body) = m.get_q("aks-prod", path, &[("fieldSelector", sel)]).await;
            assert_eq!(s, StatusCode::OK, "{sel}: {body}");
            names(body["items"].as_array().unwrap())
        }
    };
    assert_eq!(
        list("/api/v1/services", "metadata.namespace=kube-system").await,
        ["kube-system/kube-dns"]
    );
    assert_eq!(
        list("/api/v1/services", "metadata.name==web").await,
        ["default/web"]
    );
    assert_eq!(
        list(
            "/api/v1/services",
            "metadata.namespace=default,metadata.name!=web"
        )
        .await,
        ["default/kubernetes"]
    );
    assert_eq!(
        list("/api/v1/services", "spec.type=LoadBalancer").await,
        ["default/web"]
    );
    assert_eq!(
        list("/api/v1/pods", "spec.nodeName=aks-nodepool1-12345678-vmss000001").await,
        [
            "kube-system/cloud-node-manager-w5r8n",
            "kube-system/kube-proxy-q9m4t"
        ]
    );
    assert_eq!(
        list("/api/v1/pods", "status.phase=Pending").await,
        ["kube-system/cloud-node-manager-w5r8n"]
    );
    // Absent booleans read as "false", as the registry formats them.
    assert_eq!(
        list("/api/v1/nodes", "spec.unschedulable=false").await,
        ["aks-nodepool1-12345678-vmss000000", "virtual-node-aci-linux"]
    );
    assert_eq!(
        list("/api/v1/nodes", "metadata.name=virtual-node-aci-linux").await,
        ["virtual-node-aci-linux"]
    );
    // Both selectors together.
    let (_, both) = m
        .get_q(
            "aks-prod",
            "/api/v1/pods",
            &[
                ("labelSelector", "k8s-app=kube-proxy"),
                ("fieldSelector", "spec.nodeName=aks-nodepool1-12345678-vmss000000"),
            ],
        )
        .await;
    assert_eq!(
        names(both["items"].as_array().unwrap()),
        ["kube-system/kube-proxy-2xv7l"]
    );
    for bad in ["spec.nope=1", "metadata.name"] {
        let (s, body) = m
            .get_q("aks-prod", "/api/v1/services", &[("fieldSelector", bad)])
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_status(&body, 400, "BadRequest");
    }
    let (_, body) = m
        .get_q(
            "aks-prod",
            "/api/v1/services",
            &[("fieldSelector", "spec.nope=1")],
        )
        .await;
    assert_eq!(body["message"], "field label not supported: spec.nope");
}

#[tokio::test]
async fn single_objects_and_404s() {
    let m = start_basic().await;
    let (s, web) = m.get("aks-prod", "/api/v1/namespaces/default/services/web").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(web["kind"], "Service");
    assert_eq!(web["apiVersion"], "v1");
    assert_eq!(web["metadata"]["uid"], "3d654cb4-4770-4508-bc7b-1db1dacaec07");
    assert_eq!(web["status"]["loadBalancer"]["ingress"][0]["ip"], "20.61.10.20");
    let (s, node) = m
        .get("aks-prod", "/api/v1/nodes/aks-nodepool1-12345678-vmss000000")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(node["kind"], "Node");
    assert!(
        node["spec"]["providerID"]
            .as_str()
            .unwrap()
            .starts_with("azure:///subscriptions/")
    );
    let (s, eps) = m
        .get(
            "aks-prod",
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-7xk2p",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(eps["apiVersion"], "discovery.k8s.io/v1");

    let (s, nf) = m
        .get("aks-prod", "/api/v1/namespaces/default/services/nope")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_status(&nf, 404, "NotFound");
    assert_eq!(nf["message"], "services \"nope\" not found");
    assert_eq!(nf["details"], json!({"name": "nope", "kind": "services"}));
    // Right name, wrong namespace.
    let (s, _) = m
        .get("aks-prod", "/api/v1/namespaces/kube-system/services/web")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = m.get("aks-prod", "/api/v1/nodes/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for path in [
        "/api/v1/configmaps",
        "/api/v1/services/web",
        "/api/v1/namespaces/default/nodes",
        "/apis/apps/v1/deployments",
        "/api/v2/services",
        "/nope",
    ] {
        let (s, body) = m.get("aks-prod", path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_status(&body, 404, "NotFound");
    }
}

#[tokio::test]
async fn unauthenticated_requests_are_401() {
    let m = start_basic().await;
    let url = m.url("aks-prod", "/api/v1/services");
    let other_cluster = m.token("aks-dev");
    let requests = [
        m.client.get(&url),
        m.client.get(&url).bearer_auth("not-the-token"),
        m.client.get(&url).bearer_auth(&other_cluster),
        m.client.get(&url).basic_auth("admin", Some(m.token("aks-prod"))),
        m.client.get(m.url("aks-prod", "/version")),
    ];
    for req in requests {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: Value = resp.json().await.unwrap();
        assert_status(&body, 401, "Unauthorized");
        assert_eq!(body["message"], "Unauthorized");
    }
}

#[tokio::test]
async fn cloud_config_secret() {
    let m = start_basic().await;
    let path = "/api/v1/namespaces/kube-system/secrets/azure-cloud-provider";
    // From k8s/aks-prod/azure.json.
    let (s, secret) = m.get("aks-prod", path).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["metadata"]["name"], "azure-cloud-provider");
    assert_eq!(secret["metadata"]["namespace"], "kube-system");
    let data = STANDARD
        .decode(secret["data"]["cloud-config"].as_str().unwrap())
        .unwrap();
    let file = std::fs::read(basic_dir().join("k8s/aks-prod/azure.json")).unwrap();
    assert_eq!(data, file);
    // aks-dev has no azure.json, but the Secret object itself.
    let (s, dev) = m.get("aks-dev", path).await;
    assert_eq!(s, StatusCode::OK);
    let world_secret: Value = serde_json::from_slice(
        &std::fs::read(basic_dir().join("k8s/aks-dev/cloud-provider-secret.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dev["data"], world_secret["data"]);
    let cfg: Value = serde_json::from_slice(
        &STANDARD
            .decode(dev["data"]["cloud-config"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["resourceGroup"], "MC_rg-dev_aks-dev_westeurope");
    // Other Secrets do not exist, and Secrets cannot be listed.
    let (s, body) = m
        .get("aks-prod", "/api/v1/namespaces/kube-system/secrets/other")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_status(&body, 404, "NotFound");
    let (s, body) = m.get("aks-prod", "/api/v1/namespaces/kube-system/secrets").await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_status(&body, 405, "MethodNotAllowed");

    // A world without either: 404.
    let w = World::from_files(vec![(
        PathBuf::from("k8s/c1/nodes.json"),
        br#"{"kind":"Node","metadata":{"name":"n1"}}"#.to_vec(),
    )]);
    let m2 = start(w).await;
    let (s, body) = m2.get("c1", path).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "secrets \"azure-cloud-provider\" not found");
}

#[tokio::test]
async fn forbidden_resources_from_mock_settings() {
    let m = start_basic().await;
    // k8s/aks-dev/mock.json forbids pods.
    let (s, body) = m.get("aks-dev", "/api/v1/pods").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_status(&body, 403, "Forbidden");
    assert_eq!(
        body["message"],
        "pods is forbidden: User \"azaudit-mock-user\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
    );
    let (s, body) = m.get("aks-dev", "/api/v1/namespaces/kube-system/pods/x").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot get resource \"pods\"")
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("in the namespace \"kube-system\"")
    );
    // Other resources and other clusters are unaffected.
    let (s, _) = m.get("aks-dev", "/api/v1/services").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = m.get("aks-prod", "/api/v1/pods").await;
    assert_eq!(s, StatusCode::OK);

    let w = World::from_files(vec![(
        PathBuf::from("k8s/c1/mock.json"),
        br#"{"kind":"MockSettings","forbidden":["*"]}"#.to_vec(),
    )]);
    let m2 = start(w).await;
    let (s, body) = m2.get("c1", "/apis/discovery.k8s.io/v1/endpointslices").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("endpointslices.discovery.k8s.io is forbidden")
    );
}

#[tokio::test]
async fn writes_and_watches_are_refused() {
    let m = start_basic().await;
    let url = m.url("aks-prod", "/api/v1/namespaces/default/services/web");
    for method in [
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
    ] {
        let resp = m
            .client
            .request(method.clone(), &url)
            .bearer_auth(m.token("aks-prod"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_status(&resp.json().await.unwrap(), 405, "MethodNotAllowed");
    }
    let (s, _) = m
        .get_q("aks-prod", "/api/v1/services", &[("watch", "true")])
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    // The world is unchanged.
    let (s, _) = m.get("aks-prod", "/api/v1/namespaces/default/services/web").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn requests_are_counted_per_cluster() {
    let m = start_basic().await;
    assert!(m.running.stats().k8s_requests.is_empty());
    for _ in 0..3 {
        m.get("aks-prod", "/api/v1/nodes").await;
    }
    m.get("aks-dev", "/version").await;
    // Refused requests count too.
    m.client
        .get(m.url("aks-dev", "/api/v1/nodes"))
        .send()
        .await
        .unwrap();
    let stats = m.running.stats();
    assert_eq!(
        stats.k8s_requests,
        BTreeMap::from([("aks-dev".to_string(), 2), ("aks-prod".to_string(), 3)])
    );
    assert_eq!(stats.arm_requests, 0);
}

#[tokio::test]
async fn tables_for_kubectl_get() {
    let m = start_basic().await;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let get = |path: &str, query: &'static [(&'static str, &'static str)]| {
        let req = m
            .client
            .get(m.url("aks-prod", path))
            .query(query)
            .header("Accept", accept)
            .bearer_auth(m.token("aks-prod"));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let t = get("/api/v1/services", &[("limit", "500")]).await;
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    let rows = t["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[1]["cells"].as_array().unwrap()[..5],
        [
            json!("web"),
            json!("LoadBalancer"),
            json!("10.0.114.77"),
            json!("20.61.10.20"),
            json!("80:31080/TCP,443:31443/TCP")
        ]
    );
    // kubectl -A takes the namespace from the row's metadata.
    assert_eq!(rows[1]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(rows[1]["object"]["metadata"]["namespace"], "default");

    // Paging carries over.
    let t = get("/api/v1/nodes", &[("limit", "1")]).await;
    assert_eq!(t["rows"].as_array().unwrap().len(), 1);
    assert_eq!(t["metadata"]["remainingItemCount"], 2);
    assert_eq!(t["rows"][0]["cells"][1], "Ready");
    // A single object as a table.
    let t = get(
        "/api/v1/nodes/aks-nodepool1-12345678-vmss000001",
        &[("includeObject", "Object")],
    )
    .await;
    assert_eq!(t["rows"][0]["cells"][1], "Ready,SchedulingDisabled");
    assert_eq!(t["rows"][0]["object"]["kind"], "Node");
}

#[tokio::test]
async fn namespace_defaults_duplicates_and_kinds_from_list_files() {
    // Objects without a namespace are in `default`; kind-less items take it from the list kind;
    // a duplicate is served once.
    let w = World::from_files(vec![
        (
            PathBuf::from("k8s/c1/svc.json"),
            br#"{"kind":"ServiceList","items":[{"metadata":{"name":"z"}},{"metadata":{"name":"a","namespace":"b"}}]}"#.to_vec(),
        ),
        // The same Service again in a file that sorts later: that one wins, once.
        (
            PathBuf::from("k8s/c1/tv.json"),
            br#"{"kind":"Service","metadata":{"name":"a","namespace":"b","labels":{"v":"2"}}}"#.to_vec(),
        ),
        (
            PathBuf::from("k8s/c1/ignored.json"),
            br#"{"kind":"ConfigMap","metadata":{"name":"cm","namespace":"b"}}"#.to_vec(),
        ),
    ]);
    let m = start(w).await;
    let (_, list) = m.get("c1", "/api/v1/services").await;
    assert_eq!(names(list["items"].as_array().unwrap()), ["b/a", "default/z"]);
    assert_eq!(list["items"][0]["metadata"]["labels"]["v"], "2");
    let (_, a) = m.get("c1", "/api/v1/namespaces/b/services/a").await;
    assert_eq!(a["metadata"]["labels"]["v"], "2");
    let (s, z) = m.get("c1", "/api/v1/namespaces/default/services/z").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(z["metadata"]["namespace"], "default");
    assert_eq!(z["metadata"]["name"], "z");
    let (_, nodes) = m.get("c1", "/api/v1/nodes").await;
    assert_eq!(nodes["items"], json!([]));
}

/// One `- name: ...` entry of a kubeconfig list, flattened.
type Entry = BTreeMap<String, String>;

/// The kubeconfig, read as the simple YAML the mock writes: top-level keys, and lists of
/// `- name: "x"` entries whose nested keys are JSON-quoted scalars.
fn parse_kubeconfig(text: &str) -> (BTreeMap<String, String>, BTreeMap<String, Vec<Entry>>) {
    let mut top = BTreeMap::new();
    let mut lists: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let unquote = |v: &str| -> String {
            serde_json::from_str::<String>(v.trim()).unwrap_or_else(|_| v.trim().to_string())
        };
        if !line.starts_with(' ') && !line.starts_with('-') {
            let (k, v) = line.split_once(':').unwrap();
            if v.trim().is_empty() {
                section = k.to_string();
                lists.entry(section.clone()).or_default();
            } else {
                top.insert(k.to_string(), unquote(v));
            }
        } else if let Some(rest) = line.strip_prefix("- ") {
            let (k, v) = rest.split_once(':').unwrap();
            let entry = BTreeMap::from([(k.trim().to_string(), unquote(v))]);
            lists.get_mut(&section).unwrap().push(entry);
        } else {
            let (k, v) = line.trim().split_once(':').unwrap();
            if !v.trim().is_empty() {
                let entry = lists.get_mut(&section).unwrap().last_mut().unwrap();
                entry.insert(k.trim().to_string(), unquote(v));
            }
        }
    }
    (top, lists)
}

#[tokio::test]
async fn kubeconfig_points_at_every_cluster() {
    use std::os::unix::fs::PermissionsExt;
    let m = start_basic().await;
    let path = &m.running.ready.kubeconfig;
    assert_eq!(
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(path).unwrap();
    let (top, lists) = parse_kubeconfig(&text);
    assert_eq!(top["apiVersion"], "v1");
    assert_eq!(top["kind"], "Config");
    assert_eq!(top["current-context"], "aks-dev");
    let ca = std::fs::read(&m.running.ready.ca_file).unwrap();
    let endpoints = &m.running.ready.k8s_endpoints;
    assert_eq!(endpoints.len(), 2);
    for section in ["clusters", "users", "contexts"] {
        let names: Vec<&str> = lists[section].iter().map(|e| e["name"].as_str()).collect();
        assert_eq!(names, ["aks-dev", "aks-prod"], "{section}");
    }
    for (i, (cluster, url)) in endpoints.iter().enumerate() {
        let c = &lists["clusters"][i];
        assert_eq!(&c["server"], url);
        assert!(url.starts_with("https://127.0.0.1:"));
        assert_eq!(STANDARD.decode(&c["certificate-authority-data"]).unwrap(), ca);
        let u = &lists["users"][i];
        assert_eq!(u["token"], m.token(cluster));
        assert_eq!(u["token"].len(), 64);
        let ctx = &lists["contexts"][i];
        assert_eq!((&ctx["cluster"], &ctx["user"]), (cluster, cluster));
        // And the token works against that server.
        let resp = m
            .client
            .get(format!("{url}/version"))
            .bearer_auth(&u["token"])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // Tokens differ per cluster.
    assert_ne!(m.token("aks-dev"), m.token("aks-prod"));
}
