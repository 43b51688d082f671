//! The binary end to end on offline worlds: formats, exit codes, config, rule selection, and the
//! demo world's ground truth for every implemented rule.

use std::collections::BTreeSet;
use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn demo() -> PathBuf {
    root().join("mocks/worlds/demo")
}

fn azaudit() -> Command {
    let mut c = Command::cargo_bin("azaudit").unwrap();
    // Never pick up a developer's own config or cache.
    c.env("XDG_CONFIG_HOME", "/nonexistent-azaudit-test")
        .env_remove("AZAUDIT_LOG")
        .current_dir(std::env::temp_dir());
    c
}

fn json_report(args: &[&str]) -> (Value, i32) {
    let out = azaudit()
        .args(args)
        .args(["--format", "json", "--now", "2026-11-27T03:00:00Z"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (v, out.status.code().unwrap())
}

/// Every rule the binary runs finds exactly the demo world's planted examples: no more, no fewer.
#[test]
fn demo_world_ground_truth_for_every_rule() {
    let (v, code) = json_report(&["audit", "--snapshot", demo().to_str().unwrap()]);
    assert_eq!(code, 1, "high findings → exit 1");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["complete"], true);
    let ran: BTreeSet<String> = v["scope"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let got: BTreeSet<(String, String)> = v["findings"]
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
        serde_json::from_slice(&std::fs::read(demo().join("expected-findings.json")).unwrap()).unwrap();
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
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    assert!(ran.len() >= 11);
}

#[test]
fn exit_codes_follow_fail_on_and_completeness() {
    let d = demo();
    let d = d.to_str().unwrap();
    // Only low findings selected, fail-on high → 0.
    let (_, code) = json_report(&["audit", "--snapshot", d, "--only", "unattached-public-ip"]);
    assert_eq!(code, 0);
    let (_, code) = json_report(&[
        "audit",
        "--snapshot",
        d,
        "--only",
        "unattached-public-ip",
        "--fail-on",
        "low",
    ]);
    assert_eq!(code, 1);
    // An unreadable file makes the audit incomplete: 2 beats 1.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&demo(), tmp.path());
    std::fs::write(tmp.path().join("arm/broken.json"), b"{\"value\": [").unwrap();
    let (v, code) = json_report(&["audit", "--snapshot", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(v["complete"], false);
    assert!(v["gaps"][0]["cause"].as_str().unwrap().contains("not valid JSON"));
}

#[test]
fn usage_and_config_errors_exit_3_with_a_reason() {
    let d = demo();
    let out = azaudit()
        .args([
            "audit",
            "--snapshot",
            d.to_str().unwrap(),
            "--only",
            "no-such-rule",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown rule \"no-such-rule\""));
    let out = azaudit().args(["audit", "--fail-on", "urgent"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("azaudit.toml");
    std::fs::write(
        &cfg,
        "[severity]\norphaned-public-ip = \"urgent\"\n[[suppress]]\nrule = \"x\"\nresource = \"y\"\n",
    )
    .unwrap();
    let out = azaudit()
        .args([
            "audit",
            "--snapshot",
            d.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("azaudit.toml:2") && err.contains("azaudit.toml:3") && err.contains("reason"),
        "{err}"
    );
}

#[test]
fn config_overrides_and_suppressions_apply() {
    let d = demo();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("azaudit.toml");
    std::fs::write(
        &cfg,
        "[severity]\nunattached-public-ip = \"critical\"\n[[suppress]]\nrule = \"orphaned-public-ip\"\nresource = \"*\"\nreason = \"test\"\n",
    )
    .unwrap();
    let (v, _) = json_report(&[
        "audit",
        "--snapshot",
        d.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let f = v["findings"].as_array().unwrap();
    assert!(f.iter().all(|f| f["rule"] != "orphaned-public-ip"));
    assert!(
        f.iter()
            .any(|f| f["rule"] == "unattached-public-ip" && f["severity"] == "critical")
    );
    assert_eq!(v["suppressed"].as_array().unwrap().len(), 1);
    assert_eq!(v["suppressed"][0]["reason"], "test");
}

#[test]
fn output_file_formats_and_broken_pipe() {
    let d = demo();
    let tmp = tempfile::tempdir().unwrap();
    for (fmt, needle) in [
        ("markdown", "# azaudit report"),
        ("table", "finding(s)"),
        ("json", "\"schema_version\": 1"),
    ] {
        let out = tmp.path().join(format!("r.{fmt}"));
        azaudit()
            .args([
                "audit",
                "--snapshot",
                d.to_str().unwrap(),
                "--format",
                fmt,
                "--output",
                out.to_str().unwrap(),
            ])
            .assert()
            .code(1)
            .stdout("");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains(needle), "{fmt}: {text}");
    }
    // No temporary files left behind by the atomic write.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn rules_lists_the_registry() {
    let out = azaudit().args(["rules", "--format", "json"]).output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "orphaned-public-ip" && r["cleanup_eligible"] == true)
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Entra ID secrets may start with '-': the flag takes them as values, not as options.
#[test]
fn a_secret_starting_with_a_dash_is_a_value() {
    let d = demo();
    let out = azaudit()
        .args([
            "audit",
            "--client-secret",
            "-Kx8Q~abc",
            "--snapshot",
            d.to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
