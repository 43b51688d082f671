//! The mock's ARM side over real HTTPS on loopback: routes, paging, ARM's errors, auth,
//! RBAC, throttling, faults, the admin endpoints, and the shared fixture world.
//!
//! Every request goes to the mock's own listeners (the ready info), through a client that trusts
//! only the mock's CA and ignores proxy settings, so nothing can reach a real endpoint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use azaudit_mocks::config::{Fault, FaultScope, MockConfig, PrincipalConfig, ThrottleConfig};
use azaudit_mocks::tokens::{Claims, now_unix};
use azaudit_mocks::{RunningMock, ServeOptions};
use azaudit_world::World;
use serde_json::{Value, json};

const S1: &str = "0b1f6471-1bf0-4dda-aec3-111111111111";
const S2: &str = "0b1f6471-1bf0-4dda-aec3-222222222222";
const RG: &str = "MC_rg_aks_westeurope";
const VMSS: &str = "aks-nodepool1-12345678-vmss";

const READER: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const ONLY_S1: &str = "aaaaaaaa-0000-0000-0000-000000000002";
const NO_COMPUTE: &str = "aaaaaaaa-0000-0000-0000-000000000003";
const SECOND: &str = "aaaaaaaa-0000-0000-0000-000000000004";

fn rg_id(sub: &str, rg: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}")
}

fn net(name_type: &str, name: &str) -> String {
    format!("{}/providers/Microsoft.Network/{name_type}/{name}", rg_id(S1, RG))
}

fn vmss_id() -> String {
    format!(
        "{}/providers/Microsoft.Compute/virtualMachineScaleSets/{VMSS}",
        rg_id(S1, RG)
    )
}

/// A small world: S1 holds an AKS node group (LB, 6 PIPs over two groups, NSG, 2 NICs, a VMSS
/// with 3 instances and their NICs, a VM, a VNet) in westeurope; S2 one LB in eastus with stored
/// usage rows (floats, as the spec example has them).
fn small_world() -> World {
    let mut arm = vec![
        json!({"id": net("loadBalancers", "kubernetes"), "name": "kubernetes", "type": "Microsoft.Network/loadBalancers",
        "location": "westeurope", "sku": {"name": "Standard"},
        "properties": {
            "frontendIPConfigurations": [{"name": "a1", "id": format!("{}/frontendIPConfigurations/a1", net("loadBalancers", "kubernetes")),
                                          "properties": {"publicIPAddress": {"id": net("publicIPAddresses", "pip-0")}}}],
            "backendAddressPools": [{"name": "kubernetes", "properties": {"backendIPConfigurations": []}}],
            "loadBalancingRules": [{"name": "a1-TCP-80", "properties": {"frontendPort": 80}}],
            "probes": [{"name": "a1-TCP-80", "properties": {"port": 31000}}, {"name": "p2", "properties": {"port": 31001}}],
            "inboundNatRules": []
        }}),
        json!({"id": net("networkSecurityGroups", "aks-agentpool-nsg"), "type": "Microsoft.Network/networkSecurityGroups", "location": "westeurope",
        "properties": {"securityRules": [
            {"name": "k8s-azure-lb_allow_IPv4_0123", "properties": {"priority": 500}},
            {"name": "other", "properties": {"priority": 100}}
        ]}}),
        json!({"id": net("virtualNetworks", "aks-vnet"), "type": "Microsoft.Network/virtualNetworks", "location": "westeurope",
               "properties": {"subnets": [{"name": "aks-subnet", "properties": {}}]}}),
        json!({"id": format!("{}/providers/Microsoft.Compute/virtualMachines/jumpbox", rg_id(S1, RG)), "type": "Microsoft.Compute/virtualMachines", "location": "westeurope"}),
        json!({"id": vmss_id(), "type": "Microsoft.Compute/virtualMachineScaleSets", "location": "westeurope"}),
        json!({"id": format!("{}/providers/Microsoft.Network/publicIPAddresses/byo", rg_id(S1, "other-rg")), "type": "Microsoft.Network/publicIPAddresses",
               "location": "westeurope", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}}),
        json!({"id": rg_id(S1, "empty-rg"), "type": "Microsoft.Resources/resourceGroups", "location": "westeurope", "name": "empty-rg"}),
        json!({"id": format!("/subscriptions/{S2}/resourceGroups/rg2/providers/Microsoft.Network/loadBalancers/kubernetes"),
               "type": "Microsoft.Network/loadBalancers", "location": "eastus", "properties": {}}),
    ];
    for i in 0..5 {
        arm.push(json!({"id": net("publicIPAddresses", &format!("pip-{i}")), "type": "Microsoft.Network/publicIPAddresses",
                        "location": "westeurope", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}}));
    }
    for i in 0..2 {
        arm.push(json!({"id": net("networkInterfaces", &format!("nic-{i}")), "type": "Microsoft.Network/networkInterfaces", "location": "westeurope"}));
    }
    for i in 0..3 {
        arm.push(json!({"id": format!("{}/virtualMachines/{i}", vmss_id()), "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
                        "location": "westeurope", "instanceId": i.to_string()}));
        // VMSS NIC ids use `microsoft.Compute`, as the Network RP returns them.
        arm.push(json!({"id": format!("/subscriptions/{S1}/resourceGroups/{RG}/providers/microsoft.Compute/virtualMachineScaleSets/{VMSS}/virtualMachines/{i}/networkInterfaces/nic"),
                        "type": "Microsoft.Network/networkInterfaces", "location": "westeurope"}));
    }
    let usages = json!({"value": [
        {"currentValue": 8.0, "id": format!("/subscriptions/{S2}/providers/Microsoft.Network/locations/eastus/usages/VirtualNetworks"),
         "limit": 50.0, "name": {"localizedValue": "Virtual Networks", "value": "VirtualNetworks"}, "unit": "Count"},
        {"currentValue": 1.0, "id": format!("/subscriptions/{S2}/providers/Microsoft.Network/locations/eastus/usages/LoadBalancers"),
         "limit": 1000.0, "name": {"localizedValue": "Load Balancers", "value": "LoadBalancers"}, "unit": "Count"},
        {"currentValue": 0.0, "id": format!("/subscriptions/{S2}/providers/Microsoft.Network/locations/eastus/usages/PublicIPAddresses"),
         "limit": 1000.0, "name": {"localizedValue": "Public IP Addresses", "value": "PublicIPAddresses"}, "unit": "Count"}
    ]});
    let nodes = json!({"kind": "NodeList", "items": (0..3).map(|i| json!({
        "metadata": {"name": format!("aks-nodepool1-12345678-vmss00000{i}")},
        "spec": {"providerID": format!("azure:///subscriptions/{S1}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{VMSS}/virtualMachines/{i}", RG.to_lowercase())}
    })).collect::<Vec<_>>()});
    let meta = json!({"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                      "subscriptions": [{"id": S1, "display_name": "prod"}, {"id": S2, "display_name": "dev"}]});
    World::from_files(vec![
        (PathBuf::from("world.json"), serde_json::to_vec(&meta).unwrap()),
        (
            PathBuf::from("arm/resources.json"),
            serde_json::to_vec(&arm).unwrap(),
        ),
        (
            PathBuf::from("arm/usages.json"),
            serde_json::to_vec(&usages).unwrap(),
        ),
        (
            PathBuf::from("k8s/aks/nodes.json"),
            serde_json::to_vec(&nodes).unwrap(),
        ),
    ])
}

fn principal(oid: &str, subscriptions: &[&str], actions: &[&str], not_actions: &[&str]) -> PrincipalConfig {
    PrincipalConfig {
        client_id: format!("client-{}", &oid[oid.len() - 4..]),
        object_id: oid.to_string(),
        client_secret: None,
        subscriptions: subscriptions.iter().map(|s| s.to_string()).collect(),
        actions: actions.iter().map(|s| s.to_string()).collect(),
        not_actions: not_actions.iter().map(|s| s.to_string()).collect(),
    }
}

fn config() -> MockConfig {
    MockConfig {
        page_size: 2,
        principals: vec![
            principal(READER, &["*"], &["*/read"], &[]),
            principal(ONLY_S1, &[S1], &["*/read"], &[]),
            principal(NO_COMPUTE, &["*"], &["*"], &["Microsoft.Compute/*"]),
            principal(SECOND, &["*"], &["*/read"], &[]),
        ],
        ..MockConfig::default()
    }
}

struct Mock {
    running: RunningMock,
    client: reqwest::Client,
    /// `https://127.0.0.1:P` without trailing slash.
    base: String,
    _dir: tempfile::TempDir,
}

async fn start_with(world: World, config: MockConfig) -> Mock {
    let dir = tempfile::tempdir().unwrap();
    let running = azaudit_mocks::start(ServeOptions {
        world,
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
    assert!(
        base.starts_with("https://127.0.0.1:"),
        "mock must be on loopback: {base}"
    );
    Mock {
        running,
        client,
        base,
        _dir: dir,
    }
}

async fn start() -> Mock {
    start_with(small_world(), config()).await
}

impl Mock {
    fn claims(&self, oid: &str) -> Claims {
        let now = now_unix();
        Claims {
            aud: "https://management.azure.com/".into(),
            iss: format!("https://sts.windows.net/{}/", self.running.state.tenant_id),
            tid: self.running.state.tenant_id.clone(),
            oid: oid.into(),
            appid: format!("app-of-{oid}"),
            iat: now,
            nbf: now,
            exp: now + 3600,
            idtyp: "app".into(),
        }
    }

    fn token(&self, oid: &str) -> String {
        self.running.state.signer.issue(&self.claims(oid))
    }

    /// GET `path_and_query` (relative to the ARM endpoint) as `oid`.
    async fn get_as(&self, oid: &str, path_and_query: &str) -> reqwest::Response {
        self.get_url(&format!("{}{path_and_query}", self.base), Some(&self.token(oid)))
            .await
    }

    async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.get_as(READER, path_and_query).await
    }

    async fn get_url(&self, url: &str, token: Option<&str>) -> reqwest::Response {
        assert!(
            url.starts_with("https://127.0.0.1:") || url.starts_with("https://127.0.0.2:"),
            "tests only talk to loopback: {url}"
        );
        let mut req = self.client.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    async fn json_ok(&self, path_and_query: &str) -> Value {
        let r = self.get(path_and_query).await;
        assert_eq!(r.status(), 200, "{path_and_query}");
        r.json().await.unwrap()
    }

    /// Follows nextLinks from `path_and_query`; returns every page.
    async fn pages(&self, oid: &str, path_and_query: &str) -> Vec<Value> {
        let token = self.token(oid);
        let mut url = format!("{}{path_and_query}", self.base);
        let mut out = Vec::new();
        loop {
            let r = self.get_url(&url, Some(&token)).await;
            assert_eq!(r.status(), 200, "{url}");
            let page: Value = r.json().await.unwrap();
            out.push(page.clone());
            match page.get("nextLink").and_then(Value::as_str) {
                Some(next) => url = next.to_string(),
                None => break,
            }
            assert!(out.len() < 50, "runaway paging");
        }
        out
    }

    async fn all_ids(&self, oid: &str, path_and_query: &str) -> Vec<String> {
        self.pages(oid, path_and_query)
            .await
            .iter()
            .flat_map(|p| p["value"].as_array().unwrap().clone())
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    }

    async fn stats(&self) -> Value {
        let r = self.get_url(&format!("{}/_mock/stats", self.base), None).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

async fn error_of(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    let code = v["error"]["code"].as_str().unwrap().to_string();
    let message = v["error"]["message"].as_str().unwrap().to_string();
    (status, code, message)
}

const NET_V: &str = "api-version=2025-05-01";
const COMPUTE_V: &str = "api-version=2025-04-01";

#[tokio::test]
async fn paging_follows_next_links_and_returns_every_item_once() {
    let m = start().await;
    let path = format!("/subscriptions/{S1}/providers/Microsoft.Network/publicIPAddresses?{NET_V}");
    let pages = m.pages(READER, &path).await;
    assert_eq!(pages.len(), 3, "6 PIPs at page size 2");
    for p in &pages[..2] {
        assert_eq!(p["value"].as_array().unwrap().len(), 2);
        let next = p["nextLink"].as_str().unwrap();
        assert!(next.starts_with(&format!(
            "{}/subscriptions/{S1}/providers/Microsoft.Network/publicIPAddresses?",
            m.base
        )));
        assert!(next.contains("api-version=2025-05-01") && next.contains("$skiptoken="));
    }
    assert!(pages[2].get("nextLink").is_none(), "no nextLink on the last page");
    let mut ids = m.all_ids(READER, &path).await;
    assert_eq!(ids.len(), 6);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "every item exactly once");
    assert!(ids.iter().any(|i| i.contains("/other-rg/")));
    // Responses carry ARM's request ids.
    let r = m.get(&path).await;
    assert!(r.headers().contains_key("x-ms-request-id"));
    assert!(r.headers().contains_key("x-ms-correlation-request-id"));
    m.running.shutdown().await;
}

#[tokio::test]
async fn subscription_and_group_scope_and_case_insensitive_paths() {
    let m = start().await;
    let sub = m
        .all_ids(
            READER,
            &format!("/subscriptions/{S1}/providers/Microsoft.Network/publicIPAddresses?{NET_V}"),
        )
        .await;
    let rg = m
        .all_ids(
            READER,
            &format!(
                "/SUBSCRIPTIONS/{S1}/resourcegroups/{}/providers/microsoft.network/PUBLICIPADDRESSES?{NET_V}",
                RG.to_lowercase()
            ),
        )
        .await;
    assert_eq!((sub.len(), rg.len()), (6, 5));
    assert!(rg.iter().all(|i| i.contains(RG)));
    let other = m
        .all_ids(READER, &format!("/subscriptions/{S1}/resourceGroups/other-rg/providers/Microsoft.Network/publicIPAddresses?{NET_V}"))
        .await;
    assert_eq!(other.len(), 1);
    // Groups: the world's resourceGroups resource plus those derived from ids.
    let mut groups: Vec<String> = m
        .pages(
            READER,
            &format!("/subscriptions/{S1}/resourcegroups?api-version=2021-04-01"),
        )
        .await
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap().clone())
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    groups.sort();
    assert_eq!(groups, vec![RG.to_string(), "empty-rg".into(), "other-rg".into()]);
    let g = m
        .json_ok(&format!(
            "/subscriptions/{S1}/resourceGroups/EMPTY-RG?api-version=2021-04-01"
        ))
        .await;
    assert_eq!(g["name"], "empty-rg");
    let s = m
        .json_ok(&format!("/subscriptions/{S1}?api-version=2022-12-01"))
        .await;
    assert_eq!(
        (s["displayName"].as_str(), s["state"].as_str()),
        (Some("prod"), Some("Enabled"))
    );
    assert_eq!(s["tenantId"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
    let subs = m.json_ok("/subscriptions?api-version=2022-12-01").await;
    assert_eq!(subs["value"].as_array().unwrap().len(), 2);
    let tenants = m.json_ok("/tenants?api-version=2022-12-01").await;
    assert_eq!(
        tenants["value"][0]["tenantId"],
        "72f988bf-86f1-41af-91ab-2d7cd011db47"
    );
    m.running.shutdown().await;
}

#[tokio::test]
async fn vmss_instances_and_vmss_nic_lists() {
    let m = start().await;
    let vms = m
        .all_ids(READER, &format!("{}/virtualMachines?{COMPUTE_V}", vmss_id()))
        .await;
    assert_eq!(vms.len(), 3);
    assert!(vms.iter().all(|v| v.contains("/virtualMachines/")));
    // The Network RP's VMSS NIC APIs, as armnetwork calls them (microsoft.Compute, 2018-10-01).
    let nic_base = format!(
        "/subscriptions/{S1}/resourceGroups/{RG}/providers/microsoft.Compute/virtualMachineScaleSets/{VMSS}"
    );
    let all = m
        .all_ids(
            READER,
            &format!("{nic_base}/networkInterfaces?api-version=2018-10-01"),
        )
        .await;
    assert_eq!(all.len(), 3);
    let one = m
        .all_ids(
            READER,
            &format!("{nic_base}/virtualMachines/1/networkInterfaces?api-version=2018-10-01"),
        )
        .await;
    assert_eq!(one.len(), 1);
    assert!(one[0].contains("/virtualMachines/1/networkInterfaces/nic"));
    let nic = m
        .json_ok(&format!(
            "{nic_base}/virtualMachines/1/networkInterfaces/nic?api-version=2018-10-01"
        ))
        .await;
    assert_eq!(nic["id"].as_str(), Some(one[0].as_str()));
    // The scale set list itself.
    let sets = m
        .all_ids(
            READER,
            &format!("/subscriptions/{S1}/providers/Microsoft.Compute/virtualMachineScaleSets?{COMPUTE_V}"),
        )
        .await;
    assert_eq!(sets.len(), 1);
    m.running.shutdown().await;
}

#[tokio::test]
async fn subscription_nic_list_leaves_out_vmss_nics() {
    let m = start().await;
    let nics = m
        .all_ids(
            READER,
            &format!("/subscriptions/{S1}/providers/Microsoft.Network/networkInterfaces?{NET_V}"),
        )
        .await;
    assert_eq!(nics.len(), 2);
    assert!(
        nics.iter()
            .all(|n| !n.to_lowercase().contains("virtualmachinescalesets"))
    );
    // The same holds at group scope.
    let rg_nics = m
        .all_ids(
            READER,
            &format!(
                "{}/providers/Microsoft.Network/networkInterfaces?{NET_V}",
                rg_id(S1, RG)
            ),
        )
        .await;
    assert_eq!(rg_nics.len(), 2);
    // Standalone VMs only: the VMSS instances are not VMs of the subscription list.
    let vms = m
        .all_ids(
            READER,
            &format!("/subscriptions/{S1}/providers/Microsoft.Compute/virtualMachines?{COMPUTE_V}"),
        )
        .await;
    assert_eq!(vms.len(), 1);
    m.running.shutdown().await;
}

#[tokio::test]
async fn get_by_id_and_sub_resources() {
    let m = start().await;
    let lb_id = net("loadBalancers", "kubernetes");
    let lb = m.json_ok(&format!("{lb_id}?{NET_V}")).await;
    assert_eq!(lb["name"], "kubernetes");
    let pool = m
        .json_ok(&format!("{lb_id}/backendAddressPools/kubernetes?{NET_V}"))
        .await;
    assert_eq!(pool["name"], "kubernetes");
    assert_eq!(pool["id"], format!("{lb_id}/backendAddressPools/kubernetes"));
    assert_eq!(
        pool["type"],
        "Microsoft.Network/loadBalancers/backendAddressPools"
    );
    let fip = m
        .json_ok(&format!(
            "{}/frontendipconfigurations/A1?{NET_V}",
            lb_id.to_lowercase()
        ))
        .await;
    assert_eq!(
        fip["properties"]["publicIPAddress"]["id"],
        net("publicIPAddresses", "pip-0")
    );
    let probes = m.all_ids(READER, &format!("{lb_id}/probes?{NET_V}")).await;
    assert_eq!(probes.len(), 2);
    let rules = m
        .all_ids(READER, &format!("{lb_id}/loadBalancingRules?{NET_V}"))
        .await;
    assert_eq!(rules, vec![format!("{lb_id}/loadBalancingRules/a1-TCP-80")]);
    let nat = m.json_ok(&format!("{lb_id}/inboundNatRules?{NET_V}")).await;
    assert_eq!(nat["value"], json!([]));
    let nsg = net("networkSecurityGroups", "aks-agentpool-nsg");
    let rule = m
        .json_ok(&format!(
            "{nsg}/securityRules/k8s-azure-lb_allow_IPv4_0123?{NET_V}"
        ))
        .await;
    assert_eq!(rule["properties"]["priority"], 500);
    assert_eq!(
        m.all_ids(READER, &format!("{nsg}/securityRules?{NET_V}"))
            .await
            .len(),
        2
    );
    let vm0 = m
        .json_ok(&format!("{}/virtualMachines/0?{COMPUTE_V}", vmss_id()))
        .await;
    assert_eq!(vm0["instanceId"], "0");
    m.running.shutdown().await;
}

#[tokio::test]
async fn not_found_codes_are_arms() {
    let m = start().await;
    let (s, code, msg) = error_of(m.get(&format!("{}?{NET_V}", net("loadBalancers", "nope"))).await).await;
    assert_eq!((s, code.as_str()), (404, "ResourceNotFound"));
    assert_eq!(
        msg,
        format!(
            "The Resource 'Microsoft.Network/loadBalancers/nope' under resource group '{RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        )
    );
    let (s, code, msg) = error_of(
        m.get(&format!(
            "{}/providers/Microsoft.Network/loadBalancers?{NET_V}",
            rg_id(S1, "ghost-rg")
        ))
        .await,
    )
    .await;
    assert_eq!((s, code.as_str()), (404, "ResourceGroupNotFound"));
    assert_eq!(msg, "Resource group 'ghost-rg' could not be found.");
    let ghost_sub = "99999999-0000-0000-0000-000000000000";
    let (s, code, _) = error_of(
        m.get(&format!(
            "/subscriptions/{ghost_sub}/providers/Microsoft.Network/loadBalancers?{NET_V}"
        ))
        .await,
    )
    .await;
    assert_eq!((s, code.as_str()), (404, "SubscriptionNotFound"));
    // A missing child of an existing Network parent: the RP's own NotFound.
    let pool = format!("{}/backendAddressPools/ghost", net("loadBalancers", "kubernetes"));
    let (s, code, msg) = error_of(m.get(&format!("{pool}?{NET_V}")).await).await;
    assert_eq!((s, code.as_str()), (404, "NotFound"));
    assert_eq!(msg, format!("Resource {pool} not found."));
    // A missing scale set instance.
    let (s, code, _) = error_of(
        m.get(&format!("{}/virtualMachines/9?{COMPUTE_V}", vmss_id()))
            .await,
    )
    .await;
    assert_eq!((s, code.as_str()), (404, "ResourceNotFound"));
    // A typo in a type is ARM's InvalidResourceType, not an empty list.
    let (s, code, _) = error_of(
        m.get(&format!(
            "/subscriptions/{S1}/providers/Microsoft.Network/loadBalancer?{NET_V}"
        ))
        .await,
    )
    .await;
    assert_eq!((s, code.as_str()), (400, "InvalidResourceType"));
    m.running.shutdown().await;
}

#[tokio::test]
async fn api_version_is_required() {
    let m = start().await;
    let (s, code, msg) = error_of(
        m.get(&format!(
            "/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers"
        ))
        .await,
    )
    .await;
    assert_eq!((s, code.as_str()), (400, "MissingApiVersionParameter"));
    assert_eq!(
        msg,
        "The api-version query parameter (?api-version=) is required for all requests."
    );
    // Any value is accepted.
    let r = m
        .get(&format!(
            "/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?api-version=1999-01-01"
        ))
        .await;
    assert_eq!(r.status(), 200);
    m.running.shutdown().await;
}

#[tokio::test]
async fn bad_tokens_get_401_with_a_challenge() {
    let m = start().await;
    let url = format!(
        "{}/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?{NET_V}",
        m.base
    );
    let authority = m.running.state.endpoints.read().unwrap().authority.clone();
    let tenant = m.running.state.tenant_id.clone();

    let r = m.get_url(&url, None).await;
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.starts_with(&format!(
        "Bearer authorization_uri=\"{authority}/{tenant}\", error=\"invalid_token\""
    )));
    assert!(challenge.contains("error_description="));
    let (s, code, _) = error_of(r).await;
    assert_eq!((s, code.as_str()), (401, "AuthenticationFailed"));

    let (s, code, _) = error_of(m.get_url(&url, Some("not-a-jwt")).await).await;
    assert_eq!((s, code.as_str()), (401, "InvalidAuthenticationToken"));

    let mut expired = m.claims(READER);
    expired.exp = now_unix() - 10;
    let t = m.running.state.signer.issue(&expired);
    let (s, code, _) = error_of(m.get_url(&url, Some(&t)).await).await;
    assert_eq!((s, code.as_str()), (401, "ExpiredAuthenticationToken"));

    let mut other_tenant = m.claims(READER);
    other_tenant.tid = "00000000-1111-2222-3333-444444444444".into();
    let t = m.running.state.signer.issue(&other_tenant);
    let (s, code, _) = error_of(m.get_url(&url, Some(&t)).await).await;
    assert_eq!((s, code.as_str()), (401, "InvalidAuthenticationTokenTenant"));

    let mut other_audience = m.claims(READER);
    other_audience.aud = "https://vault.azure.net".into();
    let t = m.running.state.signer.issue(&other_audience);
    let (s, code, _) = error_of(m.get_url(&url, Some(&t)).await).await;
    assert_eq!((s, code.as_str()), (401, "InvalidAuthenticationTokenAudience"));
    m.running.shutdown().await;
}

#[tokio::test]
async fn principals_without_access_get_403() {
    let m = start().await;
    // No access to S2 at all.
    let (s, code, msg) = error_of(
        m.get_as(
            ONLY_S1,
            &format!("/subscriptions/{S2}/providers/Microsoft.Network/loadBalancers?{NET_V}"),
        )
        .await,
    )
    .await;
    assert_eq!((s, code.as_str()), (403, "AuthorizationFailed"));
    assert_eq!(
        msg,
        format!(
            "The client 'app-of-{ONLY_S1}' with object id '{ONLY_S1}' does not have authorization to perform action 'Microsoft.Network/loadBalancers/read' over scope '/subscriptions/{S2}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        )
    );
    // /subscriptions only lists what the principal can see.
    let subs = m.pages(ONLY_S1, "/subscriptions?api-version=2022-12-01").await;
    assert_eq!(subs[0]["value"].as_array().unwrap().len(), 1);
    assert_eq!(subs[0]["value"][0]["subscriptionId"], S1);
    // notActions take Compute away, whatever `*` grants.
    let r = m
        .get_as(
            NO_COMPUTE,
            &format!("/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?{NET_V}"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let (s, code, msg) = error_of(
        m.get_as(NO_COMPUTE, &format!("{}/virtualMachines?{COMPUTE_V}", vmss_id()))
            .await,
    )
    .await;
    assert_eq!((s, code.as_str()), (403, "AuthorizationFailed"));
    assert!(msg.contains("'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read'"));
    assert!(msg.contains(&format!("over scope '{}'", vmss_id())));
    // A valid token for an object id the mock does not know has no access.
    let (s, code, _) = error_of(
        m.get_as(
            "ffffffff-0000-0000-0000-000000000000",
            &format!("/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?{NET_V}"),
        )
        .await,
    )
    .await;
    assert_eq!((s, code.as_str()), (403, "AuthorizationFailed"));
    m.running.shutdown().await;
}

#[tokio::test]
async fn permissions_come_from_the_principal() {
    let m = start().await;
    let p = m
        .json_ok(&format!(
            "/subscriptions/{S1}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01"
        ))
        .await;
    assert_eq!(
        p["value"],
        json!([{"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}])
    );
    let r = m
        .get_as(
            NO_COMPUTE,
            &format!(
                "{}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01",
                rg_id(S1, RG)
            ),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["value"][0]["notActions"], json!(["Microsoft.Compute/*"]));
    // A principal without access to the subscription holds nothing there.
    let r = m
        .get_as(
            ONLY_S1,
            &format!(
                "/subscriptions/{S2}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01"
            ),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["value"], json!([]));
    m.running.shutdown().await;
}

#[tokio::test]
async fn metadata_endpoint_points_back_at_the_mock() {
    let m = start().await;
    let endpoints = m.running.state.endpoints.read().unwrap().clone();
    let r = m
        .get_url(
            &format!("{}/metadata/endpoints?api-version=2019-05-01", m.base),
            None,
        )
        .await;
    assert_eq!(r.status(), 200, "no auth needed");
    let v: Value = r.json().await.unwrap();
    let cloud = &v.as_array().expect("an array from 2019-05-01")[0];
    assert_eq!(
        cloud["resourceManager"].as_str(),
        Some(m.running.ready.arm_endpoint.as_str())
    );
    assert_eq!(
        cloud["authentication"]["loginEndpoint"].as_str(),
        Some(endpoints.authority.as_str())
    );
    assert!(
        !cloud["authentication"]["audiences"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(cloud["name"].is_string() && cloud["suffixes"].is_object());
    // Every URL in the document is the mock's own.
    for s in v.to_string().split('"').filter(|s| s.starts_with("http")) {
        assert!(
            s.starts_with(&endpoints.arm)
                || s.starts_with(&endpoints.authority)
                || s.starts_with("https://management."),
            "{s}"
        );
    }
    let old: Value = m
        .get_url(
            &format!("{}/metadata/endpoints?api-version=2015-01-01", m.base),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        old["authentication"]["loginEndpoint"].as_str(),
        Some(endpoints.authority.as_str())
    );
    let r = m.get_url(&format!("{}/metadata/endpoints", m.base), None).await;
    assert_eq!(r.status(), 400);
    m.running.shutdown().await;
}

#[tokio::test]
async fn usages_stored_and_synthesised() {
    let m = start().await;
    // Stored rows, served as stored: floats stay floats (checked on the raw text of every page).
    let token = m.token(READER);
    let mut url = format!(
        "{}/subscriptions/{S2}/providers/Microsoft.Network/locations/EastUS/usages?{NET_V}",
        m.base
    );
    let mut raw = String::new();
    let mut rows = Vec::new();
    loop {
        let r = m.get_url(&url, Some(&token)).await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        let page: Value = serde_json::from_str(&text).unwrap();
        raw.push_str(&text);
        rows.extend(page["value"].as_array().unwrap().clone());
        match page["nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(rows.len(), 3);
    assert!(raw.contains("\"currentValue\":8.0"), "{raw}");
    assert!(raw.contains("\"limit\":50.0"), "{raw}");
    // Synthesised from the world's own counts.
    let rows: Vec<Value> = m
        .pages(
            READER,
            &format!("/subscriptions/{S1}/providers/Microsoft.Network/locations/westeurope/usages?{NET_V}"),
        )
        .await
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap().clone())
        .collect();
    let get = |name: &str| {
        rows.iter()
            .find(|r| r["name"]["value"] == name)
            .unwrap_or_else(|| panic!("{name} row"))
            .clone()
    };
    assert_eq!(get("PublicIPAddresses")["currentValue"], 6);
    assert_eq!(get("StandardPublicIPAddresses")["currentValue"], 6);
    assert_eq!(get("StaticPublicIPAddresses")["currentValue"], 6);
    assert_eq!(get("LoadBalancers")["currentValue"], 1);
    assert_eq!(get("NetworkSecurityGroups")["currentValue"], 1);
    assert_eq!(get("VirtualNetworks")["currentValue"], 1);
    assert_eq!(
        get("NetworkInterfaces")["currentValue"],
        5,
        "VMSS NICs count against the quota"
    );
    assert_eq!(get("LoadBalancers")["limit"], 1000);
    assert_eq!(get("LoadBalancers")["unit"], "Count");
    assert!(
        get("LoadBalancers")["id"]
            .as_str()
            .unwrap()
            .ends_with("/locations/westeurope/usages/LoadBalancers")
    );
    m.running.shutdown().await;
}

fn throttled_config(bucket: u32, per_second: f64) -> MockConfig {
    MockConfig {
        throttle: ThrottleConfig {
            reads_bucket: bucket,
            reads_per_second: per_second,
            compute_high_cost_bucket: 2,
            compute_high_cost_per_second: 0.001,
            ..ThrottleConfig::default()
        },
        ..config()
    }
}

#[tokio::test]
async fn read_bucket_empties_into_429_with_retry_after() {
    let m = start_with(small_world(), throttled_config(5, 0.001)).await;
    let path = format!("/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?{NET_V}");
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let r = m.get(&path).await;
        assert_eq!(r.status(), 200);
        remaining.push(
            r.headers()["x-ms-ratelimit-remaining-subscription-reads"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
    }
    assert_eq!(remaining, vec![4, 3, 2, 1, 0], "remaining reads decrease");
    let r = m.get(&path).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    let (_, code, msg) = error_of(r).await;
    assert_eq!(code, "SubscriptionRequestsThrottled");
    assert!(msg.contains(&format!("'{retry}' seconds")));
    // Buckets are per principal: another one still reads.
    assert_eq!(m.get_as(SECOND, &path).await.status(), 200);
    // ...and per subscription.
    assert_eq!(
        m.get(&format!(
            "/subscriptions/{S2}/providers/Microsoft.Network/loadBalancers?{NET_V}"
        ))
        .await
        .status(),
        200
    );
    let stats = m.stats().await;
    assert_eq!(stats["lowest_remaining_reads"][S1], 0);
    assert_eq!(stats["throttled_429"], 1);
    // Tenant-level requests have their own bucket and header.
    let r = m.get("/subscriptions?api-version=2022-12-01").await;
    assert!(r.headers().contains_key("x-ms-ratelimit-remaining-tenant-reads"));
    m.running.shutdown().await;
}

#[tokio::test]
async fn ignoring_retry_after_costs_more_429s_than_honouring_it() {
    let m = start_with(small_world(), throttled_config(2, 10.0)).await;
    let path = format!("/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?{NET_V}");
    // A client that retries at once, 8 times.
    let mut ignorer_429 = 0;
    for _ in 0..8 {
        if m.get_as(READER, &path).await.status() == 429 {
            ignorer_429 += 1;
        }
    }
    // A client that waits Retry-After, until it has 4 answers.
    let mut honourer_429 = 0;
    let mut ok = 0;
    while ok < 4 {
        let r = m.get_as(SECOND, &path).await;
        if r.status() == 429 {
            honourer_429 += 1;
            let secs: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            tokio::time::sleep(Duration::from_secs(secs)).await;
        } else {
            assert_eq!(r.status(), 200);
            ok += 1;
        }
        assert!(honourer_429 < 4, "a patient client keeps getting refused");
    }
    assert!(
        ignorer_429 > honourer_429,
        "ignorer {ignorer_429} vs honourer {honourer_429}"
    );
    let stats = m.stats().await;
    assert!(stats["throttled_429_early_retries"].as_u64().unwrap() >= 1);
    m.running.shutdown().await;
}

#[tokio::test]
async fn compute_lists_draw_from_high_cost_get() {
    let m = start_with(small_world(), throttled_config(100, 10.0)).await;
    let vms = format!("/subscriptions/{S1}/providers/Microsoft.Compute/virtualMachines?{COMPUTE_V}");
    let r = m.get(&vms).await;
    assert_eq!(
        r.headers()["x-ms-ratelimit-remaining-resource"],
        "Microsoft.Compute/HighCostGet;1"
    );
    let r = m
        .get_as(
            SECOND,
            &format!("/subscriptions/{S1}/providers/Microsoft.Compute/virtualMachineScaleSets?{COMPUTE_V}"),
        )
        .await;
    assert_eq!(
        r.headers()["x-ms-ratelimit-remaining-resource"],
        "Microsoft.Compute/HighCostGet;0"
    );
    let lb = m
        .get(&format!(
            "/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?{NET_V}"
        ))
        .await;
    assert!(!lb.headers().contains_key("x-ms-ratelimit-remaining-resource"));
    let r = m.get(&vms).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let (_, code, _) = error_of(r).await;
    assert_eq!(code, "OperationNotAllowed");
    m.running.shutdown().await;
}

fn with_faults(faults: Vec<Fault>) -> MockConfig {
    MockConfig { faults, ..config() }
}

fn scope(p: &str) -> FaultScope {
    FaultScope {
        path_contains: p.into(),
    }
}

#[tokio::test]
async fn status_faults_at_nth_and_first() {
    let m = start_with(
        small_world(),
        with_faults(vec![
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
                scope: scope("publicIPAddresses"),
            },
            Fault::Status {
                status: 502,
                rate: 1.0,
                nth: None,
                first: None,
                scope: scope("networkSecurityGroups"),
            },
        ]),
    )
    .await;
    let lbs = format!("/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?{NET_V}");
    assert_eq!(m.get(&lbs).await.status(), 200);
    let r = m.get(&lbs).await;
    assert_eq!(r.headers()["retry-after"], "1");
    let (s, code, _) = error_of(r).await;
    assert_eq!((s, code.as_str()), (503, "ServiceUnavailable"));
    assert_eq!(m.get(&lbs).await.status(), 200);
    let pips = format!("/subscriptions/{S1}/providers/Microsoft.Network/publicIPAddresses?{NET_V}");
    let (s, code, _) = error_of(m.get(&pips).await).await;
    assert_eq!((s, code.as_str()), (500, "InternalServerError"));
    assert_eq!(m.get(&pips).await.status(), 200);
    let nsgs = format!("/subscriptions/{S1}/providers/Microsoft.Network/networkSecurityGroups?{NET_V}");
    for _ in 0..2 {
        assert_eq!(m.get(&nsgs).await.status(), 502);
    }
    assert_eq!(m.stats().await["faults_injected"]["status"], 4);
    m.running.shutdown().await;
}

#[tokio::test]
async fn burst_429_and_early_retries() {
    let m = start_with(
        small_world(),
        with_faults(vec![Fault::Burst429 {
            count: 1,
            start: 1,
            retry_after_seconds: 1,
            scope: scope(""),
        }]),
    )
    .await;
    let lbs = format!("/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?{NET_V}");
    let r = m.get(&lbs).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    // Before the Retry-After: refused again.
    assert_eq!(m.get(&lbs).await.status(), 429);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(m.get(&lbs).await.status(), 200);
    let stats = m.stats().await;
    assert_eq!(stats["faults_injected"]["burst429"], 1);
    assert_eq!(stats["throttled_429"], 2);
    assert_eq!(stats["throttled_429_early_retries"], 1);
    m.running.shutdown().await;
}

#[tokio::test]
async fn malformed_and_truncated_bodies() {
    let m = start_with(
        small_world(),
        with_faults(vec![
            Fault::MalformedJson {
                nth: Some(1),
                scope: scope("loadBalancers"),
            },
            Fault::TruncatedJson {
                nth: Some(1),
                scope: scope("publicIPAddresses"),
            },
        ]),
    )
    .await;
    let lbs = format!("/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?{NET_V}");
    let r = m.get(&lbs).await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    assert!(serde_json::from_slice::<Value>(&m.get(&lbs).await.bytes().await.unwrap()).is_ok());

    let pips = format!("/subscriptions/{S1}/providers/Microsoft.Network/publicIPAddresses?{NET_V}");
    let r = m.get(&pips).await;
    assert_eq!(r.status(), 200);
    let cut = r.bytes().await.unwrap();
    let full = m.get(&pips).await.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&cut).is_err());
    assert!(serde_json::from_slice::<Value>(&full).is_ok());
    assert!(!cut.is_empty() && cut.len() < full.len());
    assert!(full.starts_with(&cut), "a valid prefix of the real body");
    let stats = m.stats().await;
    assert_eq!(stats["faults_injected"]["malformed_json"], 1);
    assert_eq!(stats["faults_injected"]["truncated_json"], 1);
    m.running.shutdown().await;
}

#[tokio::test]
async fn foreign_next_link_is_counted_when_followed() {
    let m = start_with(
        small_world(),
        with_faults(vec![Fault::ForeignNextLink {
            scope: scope("publicIPAddresses"),
        }]),
    )
    .await;
    let foreign = m.running.state.endpoints.read().unwrap().foreign.clone();
    assert!(foreign.starts_with("https://127.0.0.2:"), "{foreign}");
    let page: Value = m
        .get(&format!(
            "/subscriptions/{S1}/providers/Microsoft.Network/publicIPAddresses?{NET_V}"
        ))
        .await
        .json()
        .await
        .unwrap();
    let next = page["nextLink"].as_str().unwrap();
    assert!(next.starts_with(&foreign), "{next}");
    // A careless client follows it with its token: refused and counted.
    let r = m.get_url(next, Some(&m.token(READER))).await;
    assert_eq!(r.status(), 404);
    let r = m.get_url(next, None).await;
    assert_eq!(r.status(), 404);
    let stats = m.stats().await;
    assert_eq!(stats["foreign_host_requests"], 2);
    assert_eq!(stats["foreign_host_bearer_tokens"], 1);
    assert_eq!(stats["faults_injected"]["foreign_next_link"], 1);
    m.running.shutdown().await;
}

#[tokio::test]
async fn next_link_loop_points_back_at_the_first_page() {
    let m = start_with(
        small_world(),
        with_faults(vec![Fault::NextLinkLoop {
            scope: scope("publicIPAddresses"),
        }]),
    )
    .await;
    let first = format!(
        "{}/subscriptions/{S1}/providers/Microsoft.Network/publicIPAddresses?{NET_V}",
        m.base
    );
    let token = m.token(READER);
    let mut url = first.clone();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let page: Value = m.get_url(&url, Some(&token)).await.json().await.unwrap();
        seen.push(url.clone());
        url = page["nextLink"]
            .as_str()
            .expect("every page has a nextLink")
            .to_string();
    }
    assert_eq!(seen[3], first, "page 4 is page 1 again");
    assert_eq!(seen[1..3].iter().filter(|u| **u == first).count(), 0);
    m.running.shutdown().await;
}

#[tokio::test]
async fn slow_body_and_latency_still_deliver_the_whole_body() {
    let m = start_with(
        small_world(),
        MockConfig {
            latency_ms: 20,
            jitter_ms: 5,
            faults: vec![Fault::SlowBody {
                millis: 200,
                scope: scope("publicIPAddresses"),
            }],
            ..config()
        },
    )
    .await;
    let pips = format!("/subscriptions/{S1}/providers/Microsoft.Network/publicIPAddresses?{NET_V}");
    let slow: Value = m.get(&pips).await.json().await.unwrap();
    assert_eq!(slow["value"].as_array().unwrap().len(), 2);
    let stats = m.stats().await;
    assert_eq!(stats["faults_injected"]["slow_body"], 1);
    // lower_bound_ms = longest page chain (4 usage pages of S1) x fixed latency.
    assert_eq!(stats["lower_bound_ms"], 4 * 20);
    m.running.shutdown().await;
}

#[tokio::test]
async fn stats_report_requests_and_minimal_pages() {
    let m = start_with(small_world(), throttled_config(10, 2.0)).await;
    m.get(&format!(
        "/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?{NET_V}"
    ))
    .await;
    m.get(&format!(
        "{}/providers/Microsoft.Network/loadBalancers?{NET_V}",
        rg_id(S1, RG)
    ))
    .await;
    m.get(&format!("{}?{NET_V}", net("loadBalancers", "kubernetes")))
        .await;
    m.get_url(&format!("{}/subscriptions?{NET_V}", m.base), None)
        .await;
    let s = m.stats().await;
    assert_eq!(s["arm_requests"], 4);
    assert_eq!(s["arm_by_route"]["list Microsoft.Network/loadBalancers"], 1);
    assert_eq!(s["arm_by_route"]["list-rg Microsoft.Network/loadBalancers"], 1);
    assert_eq!(s["arm_by_route"]["get Microsoft.Network/loadBalancers"], 1);
    assert_eq!(
        s["arm_by_principal"][format!("config:client-{}", &READER[READER.len() - 4..])],
        3
    );
    assert_eq!(s["arm_by_principal"]["unauthenticated"], 1);
    // S1: 7 lists (PIPs 6 -> 3 pages, the rest 1 each) = 9, scale set 3 instances = 2,
    // westeurope's 7 synthesised usage rows = 4; S2: 7 lists + 3 stored usage rows = 2 -> 9.
    assert_eq!(s["minimal_pages"], 15 + 9);
    assert_eq!(
        s["minimal_pages_detail"][S1][format!("vmss {}/{VMSS} virtualMachines", RG.to_lowercase())],
        2
    );
    assert_eq!(
        s["minimal_pages_detail"][S1]["list Microsoft.Network/publicIPAddresses"],
        3
    );
    assert_eq!(s["minimal_pages_detail"][S1]["usages westeurope"], 4);
    assert_eq!(s["minimal_pages_detail"][S2]["usages eastus"], 2);
    // S1 needs 15 reads from a bucket of 10 refilled at 2/s.
    assert_eq!(s["throttle_bound_seconds"], 2.5);
    assert_eq!(s["lower_bound_ms"], 0);
    // The same number from the library, for benches.
    let total = azaudit_mocks::arm::minimal_pages(&m.running.state.world.read().unwrap(), 2).total;
    assert_eq!(total, 24);
    m.running.shutdown().await;
}

#[tokio::test]
async fn reset_clears_counters_and_refills_buckets() {
    let m = start_with(small_world(), throttled_config(1, 0.001)).await;
    let lbs = format!("/subscriptions/{S1}/providers/Microsoft.Network/loadBalancers?{NET_V}");
    assert_eq!(m.get(&lbs).await.status(), 200);
    assert_eq!(m.get(&lbs).await.status(), 429);
    let r = m
        .client
        .post(format!("{}/_mock/reset", m.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s = m.stats().await;
    assert_eq!(
        (s["arm_requests"].as_u64(), s["throttled_429"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(m.get(&lbs).await.status(), 200, "the bucket is full again");
    m.running.shutdown().await;
}

/// The shared fixture world (real ARM bodies, placeholders in ids, floats in usages): every list
/// and every GET answers without a 5xx.
#[tokio::test]
async fn fixture_world_lists_every_type_without_5xx() {
    // `../shared` beside the project (shared/README.md), i.e. `../../shared` from this crate;
    // from a git worktree the project sits deeper, so look further up too.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(dir) = manifest
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/fixtures/world"))
        .find(|d| d.is_dir())
    else {
        eprintln!(
            "SKIPPED: no shared/fixtures/world above {} (expected ../../shared/fixtures/world)",
            manifest.display()
        );
        return;
    };
    let world = World::load(&dir).unwrap();
    let subs = world.subscription_ids();
    let ids: Vec<String> = world.resources.values().map(|r| r.id.clone()).collect();
    let mut cfg = config();
    cfg.page_size = 50;
    let m = start_with(world, cfg).await;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut paths = Vec::new();
    let types = [
        "Microsoft.Network/loadBalancers",
        "Microsoft.Network/publicIPAddresses",
        "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Network/networkInterfaces",
        "Microsoft.Network/virtualNetworks",
        "Microsoft.Compute/virtualMachines",
        "Microsoft.Compute/virtualMachineScaleSets",
    ];
    for s in &subs {
        for t in types {
            paths.push(format!(
                "/subscriptions/{}/providers/{t}?api-version=2025-05-01",
                enc(s)
            ));
        }
        paths.push(format!(
            "/subscriptions/{}/resourcegroups?api-version=2021-04-01",
            enc(s)
        ));
        for loc in ["westus", "eastus", "West US", "eastus2"] {
            paths.push(format!(
                "/subscriptions/{}/providers/Microsoft.Network/locations/{}/usages?api-version=2025-05-01",
                enc(s),
                enc(loc)
            ));
        }
    }
    for id in &ids {
        let segs: String = id
            .split('/')
            .map(|s| enc(s).replace('+', "%20"))
            .collect::<Vec<_>>()
            .join("/");
        paths.push(format!("{segs}?api-version=2025-05-01"));
        if id.to_lowercase().contains("/virtualmachinescalesets/") {
            let vmss: Vec<&str> = id.split('/').take(9).collect();
            let vmss = vmss.iter().map(|s| enc(s)).collect::<Vec<_>>().join("/");
            paths.push(format!("{vmss}/virtualMachines?api-version=2025-04-01"));
            paths.push(format!("{vmss}/networkInterfaces?api-version=2018-10-01"));
        }
    }
    let mut ok = 0;
    for p in &paths {
        let r = m.get(p).await;
        assert!(!r.status().is_server_error(), "{p}: {}", r.status());
        if r.status() == 200 {
            let _: Value = r.json().await.unwrap();
            ok += 1;
        }
    }
    assert!(ok > paths.len() / 2, "{ok} of {} answered 200", paths.len());
    m.running.shutdown().await;
}
