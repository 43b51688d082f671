//! The hand-written demo world (`mocks/worlds/demo`) against its answer key
//! (`expected-findings.json`), through the binary: every registered rule must find exactly the
//! planted (rule, resource) pairs — no more, no fewer — with the expected cluster. Rules not yet
//! registered are skipped, so the test stays valid while the catalogue is being completed.
//!
//! Offline only (`audit --snapshot`): no network is involved.

use std::collections::BTreeSet;
use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mocks/worlds/demo")
}

fn registered_rules() -> BTreeSet<String> {
    let out = Command::cargo_bin("azaudit")
        .expect("azaudit binary")
        .args(["rules", "--format", "json"])
        .output()
        .expect("run azaudit rules");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rules: Vec<Value> = serde_json::from_slice(&out.stdout).expect("rules JSON");
    rules
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect()
}

type Key = (String, String, Option<String>);

fn key(v: &Value) -> Key {
    (
        v["rule"].as_str().unwrap_or_default().to_string(),
        v["resource"].as_str().unwrap_or_default().to_ascii_lowercase(),
        v["cluster"].as_str().map(str::to_string),
    )
}

#[test]
fn every_registered_rule_finds_exactly_the_planted_examples() {
    let rules = registered_rules();
    let tmp = tempfile::tempdir().expect("tempdir");
    let report = tmp.path().join("report.json");
    let out = Command::cargo_bin("azaudit")
        .expect("azaudit binary")
        .args(["audit", "--snapshot"])
        .arg(demo_dir())
        .args(["--format", "json", "--output"])
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
    let report: Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report written")).expect("report JSON");
    assert_eq!(
        report["complete"], true,
        "the demo world is complete: {}",
        report["gaps"]
    );
    let got: BTreeSet<Key> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(key)
        .collect();
    let expected: Vec<Value> = serde_json::from_slice(
        &std::fs::read(demo_dir().join("expected-findings.json")).expect("answer key"),
    )
    .expect("answer key JSON");
    let want: BTreeSet<Key> = expected
        .iter()
        .map(key)
        .filter(|(rule, _, _)| rules.contains(rule))
        .collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing (planted, not found): {missing:#?}\nextra (found, not planted): {extra:#?}"
    );
    // The Service, tunnel and budget rules are registered and planted (the budget rule is
    // measured during live runs only: never in a world, never offline).
    for r in [
        "service-pending-load-balancer",
        "service-pip-resource-group-mismatch",
        "service-without-ready-endpoints",
        "lb-health-probe-mismatch",
        "dns-label-conflict",
        "aks-tunnel-unhealthy",
    ] {
        assert!(rules.contains(r), "{r} is not registered");
        assert_eq!(
            want.iter().filter(|(x, _, _)| x == r).count(),
            1,
            "{r} is planted once"
        );
    }
    assert!(rules.contains("arm-read-budget-low"));
    assert!(!got.iter().any(|(r, _, _)| r == "arm-read-budget-low"));
}
