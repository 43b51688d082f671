//! Real JSON reports validate against `docs/report.schema.json`: a complete audit, an
//! incomplete one (gaps), and one with suppressions.

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validate(report: &Value) {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(root().join("docs/report.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match docs/report.schema.json:\n{}",
        errors.join("\n")
    );
}

fn run(args: &[&str]) -> Value {
    let out = Command::cargo_bin("azaudit")
        .unwrap()
        .env("XDG_CONFIG_HOME", "/nonexistent-azaudit-test")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn demo_snapshot_report_validates() {
    let v = run(&[
        "audit",
        "--snapshot",
        root().join("mocks/worlds/demo").to_str().unwrap(),
    ]);
    assert!(!v["findings"].as_array().unwrap().is_empty());
    validate(&v);
}

#[test]
fn incomplete_report_with_suppressions_validates() {
    let tmp = tempfile::tempdir().unwrap();
    let world = tmp.path().join("w");
    std::fs::create_dir_all(world.join("arm")).unwrap();
    std::fs::write(world.join("arm/broken.json"), "[{").unwrap();
    std::fs::write(
        world.join("world.json"),
        r#"{"gaps": [{"scope": "arm", "subscription": "s1", "kind": "load-balancers", "cause": "403 AuthorizationFailed"},
                      {"scope": "kubernetes", "cluster": "c1", "kind": "pods", "cause": "forbidden"}]}"#,
    )
    .unwrap();
    let cfg = tmp.path().join("azaudit.toml");
    std::fs::write(
        &cfg,
        "[[suppress]]\nrule = \"orphaned-public-ip\"\nresource = \"/nothing\"\nreason = \"r\"\n",
    )
    .unwrap();
    let v = run(&[
        "audit",
        "--snapshot",
        world.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(v["complete"], false);
    assert_eq!(v["gaps"].as_array().unwrap().len(), 3);
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "stale-suppression")
    );
    validate(&v);
}

#[test]
fn schema_rejects_a_broken_report() {
    let mut v = run(&[
        "audit",
        "--snapshot",
        root().join("mocks/worlds/demo").to_str().unwrap(),
    ]);
    v["findings"][0]["severity"] = Value::String("urgent".into());
    let schema: Value =
        serde_json::from_slice(&std::fs::read(root().join("docs/report.schema.json")).unwrap()).unwrap();
    assert!(!jsonschema::validator_for(&schema).unwrap().is_valid(&v));
}
