//! The demo world (`mocks/worlds/demo`) through the binary, for the network rules
//! (`nsg-blocks-service-port`, `quota-pressure`, `basic-sku-retired`): exactly the planted
//! (rule, resource, cluster) triples of `expected-findings.json`, none of the look-alikes its
//! README lists, and the evidence a person needs (deciding NSG rule, quota numbers).
//!
//! Offline only (`audit --snapshot`): no network is involved.

use std::collections::BTreeSet;
use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

const RULES: [&str; 3] = ["nsg-blocks-service-port", "quota-pressure", "basic-sku-retired"];

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mocks/worlds/demo")
}

type Key = (String, String, Option<String>);

fn key(v: &Value) -> Key {
    (
        v["rule"].as_str().unwrap_or_default().to_string(),
        v["resource"].as_str().unwrap_or_default().to_ascii_lowercase(),
        v["cluster"].as_str().map(str::to_string),
    )
}

fn audit() -> Value {
    let tmp = tempfile::tempdir().expect("tempdir");
    let report = tmp.path().join("report.json");
    let out = Command::cargo_bin("azaudit")
        .expect("azaudit binary")
        .args(["audit", "--snapshot"])
        .arg(demo_dir())
        .args(["--only", &RULES.join(","), "--format", "json", "--output"])
        .arg(&report)
        .output()
        .expect("run azaudit audit");
    // Complete audit with high findings: exit status 1.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&report).expect("report written")).expect("report JSON")
}

#[test]
fn the_network_rules_find_exactly_the_planted_examples() {
    let report = audit();
    let findings = report["findings"].as_array().expect("findings").clone();
    let got: BTreeSet<Key> = findings.iter().map(key).collect();
    let expected: Vec<Value> = serde_json::from_slice(
        &std::fs::read(demo_dir().join("expected-findings.json")).expect("answer key"),
    )
    .expect("answer key JSON");
    let want: BTreeSet<Key> = expected
        .iter()
        .map(key)
        .filter(|(rule, _, _)| RULES.contains(&rule.as_str()))
        .collect();
    assert_eq!(want.len(), 3, "one planted example per rule");
    assert_eq!(got, want);

    let by_rule = |r: &str| findings.iter().find(|f| f["rule"] == r).expect(r);

    // The baseline deny at 400 shadows the provider's allow at 505.
    let nsg = by_rule("nsg-blocks-service-port");
    assert_eq!(nsg["severity"], "high");
    let blocked = nsg["evidence"]["blocked"].as_array().expect("blocked");
    assert_eq!(blocked.len(), 1, "{blocked:#?}");
    assert_eq!(blocked[0]["rule"], "deny-internet-8443");
    assert_eq!(blocked[0]["priority"], 400);
    assert_eq!(blocked[0]["nsg_name"], "k8s-east-nsg");
    assert_eq!(blocked[0]["port"], 8443);
    assert_eq!(blocked[0]["source"], "Internet");
    assert_eq!(blocked[0]["destination"], "51.136.19.245");
    assert!(
        nsg["remediation"]
            .as_str()
            .unwrap_or_default()
            .contains("--nsg-name k8s-east-nsg"),
        "{}",
        nsg["remediation"]
    );

    // 25 of 30 public IPs: medium.
    let q = by_rule("quota-pressure");
    assert_eq!(q["severity"], "medium");
    assert_eq!(q["evidence"]["quota"], "PublicIPAddresses");
    assert_eq!(q["evidence"]["current"], 25.0);
    assert_eq!(q["evidence"]["limit"], 30.0);
    assert_eq!(q["evidence"]["ratio"], 0.83);

    let b = by_rule("basic-sku-retired");
    assert_eq!(b["evidence"]["sku"], "Basic");
}

#[test]
fn the_readmes_lookalikes_are_not_reported() {
    let report = audit();
    let resources: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["resource"].as_str().map(str::to_string))
        .collect();
    // Source-restricted and service-tag Services, and the internal ones the VNet reaches.
    for svc in [
        "k8s://aks-prod/payments/services/payments-api",
        "k8s://aks-prod/monitoring/services/grafana",
        "k8s://k8s-east/monitoring/services/grafana",
        "k8s://aks-prod/shop/services/storefront-api",
        "k8s://aks-prod/payments/services/ledger-api",
        "k8s://k8s-east/erp/services/erp-db-proxy",
        "k8s://k8s-east/www/services/corporate-site",
    ] {
        assert!(!resources.iter().any(|r| r == svc), "{svc} reported");
    }
    // Standard resources and quiet usage rows.
    assert!(
        !resources
            .iter()
            .any(|r| r.ends_with("/usages/StaticPublicIPAddresses"))
    );
    assert!(!resources.iter().any(|r| r.contains("/loadBalancers/")));
    assert!(!resources.iter().any(|r| r.contains("/networkSecurityGroups/")));
}
