//! The audit against generated worlds: for every rule the binary runs, its findings equal the
//! generator's ground truth exactly, at several seeds and sizes (the bench script runs a large one).

use std::collections::{BTreeMap, BTreeSet};

use assert_cmd::Command;
use azaudit_mocks::generate::{Options, generate};
use serde_json::{Value, json};

fn audit(dir: &std::path::Path) -> Value {
    let out = Command::cargo_bin("azaudit")
        .unwrap()
        .env("XDG_CONFIG_HOME", "/nonexistent-azaudit-test")
        .args([
            "audit",
            "--snapshot",
            dir.to_str().unwrap(),
            "--format",
            "json",
            "--now",
            "2026-11-27T03:00:00Z",
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn check(seed: u64, subscriptions: usize, clusters: usize, services: usize, nodes: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        seed,
        subscriptions,
        clusters,
        services,
        nodes,
        extra_resources: 0,
        defect_rate: 0.1,
        rates: BTreeMap::new(),
        mock: json!({}),
        chunk_size: 5000,
    };
    generate(tmp.path(), &opts, true).unwrap();
    let report = audit(tmp.path());
    assert_eq!(report["complete"], true, "seed {seed}: {}", report["gaps"]);
    let ran: BTreeSet<&str> = report["scope"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let got: BTreeSet<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["resource"].as_str().unwrap().to_ascii_lowercase(),
            )
        })
        .collect();
    let expected: Vec<Value> =
        serde_json::from_slice(&std::fs::read(tmp.path().join("expected-findings.json")).unwrap()).unwrap();
    let want: BTreeSet<(String, String)> = expected
        .iter()
        .filter(|e| ran.contains(e["rule"].as_str().unwrap()))
        .map(|e| {
            (
                e["rule"].as_str().unwrap().to_string(),
                e["resource"].as_str().unwrap().to_ascii_lowercase(),
            )
        })
        .collect();
    assert!(
        !want.is_empty(),
        "seed {seed}: the generator planted nothing for the rules that ran"
    );
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "seed {seed}\nmissing {missing:#?}\nextra {extra:#?}"
    );
    // No look-alike is ever reported.
    let lookalikes: Vec<Value> =
        serde_json::from_slice(&std::fs::read(tmp.path().join("lookalikes.json")).unwrap()).unwrap();
    let reported: BTreeSet<String> = got.iter().map(|(_, r)| r.clone()).collect();
    for l in &lookalikes {
        let r = l["resource"].as_str().unwrap().to_ascii_lowercase();
        assert!(
            !reported.contains(&r),
            "seed {seed}: look-alike {} reported: {r}",
            l["kind"]
        );
    }
}

#[test]
fn small_worlds_match_ground_truth() {
    check(1, 1, 2, 40, 12);
    check(7, 1, 4, 120, 24);
}

#[test]
fn multi_subscription_world_matches_ground_truth() {
    check(42, 2, 5, 200, 30);
}
