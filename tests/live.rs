//! Live audits end to end: the real binary against the in-process mock over HTTPS, with every
//! endpoint given explicitly and the loopback-only guard on.
//!
//! - a live audit and an offline audit of the same world give identical findings;
//! - `snapshot` records a world that audits to the same findings, with no secret in it;
//! - a list that fails makes the run incomplete (exit 2) with the cause in the report;
//! - a 403 subscription and ARM throttling surface as gaps and `arm-read-budget-low`;
//! - `inventory` prints counts and call statistics.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use azaudit_mocks::config::{Fault, FaultScope, MockConfig};
use azaudit_mocks::{ReadyInfo, RunningMock, ServeOptions};
use serde_json::Value;

struct Mock {
    mock: Option<RunningMock>,
    rt: tokio::runtime::Runtime,
    _files: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Mock {
    fn start(config: Option<MockConfig>) -> Mock {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let files = tempfile::tempdir().unwrap();
        let mock = rt
            .block_on(azaudit_mocks::start(ServeOptions {
                world: azaudit_mocks::demo::world(),
                listen: "127.0.0.1:0".parse().unwrap(),
                files_dir: files.path().to_path_buf(),
                config,
            }))
            .unwrap();
        let work = tempfile::tempdir().unwrap();
        // The demo's self-managed cluster uses its own cluster name, as an operator would say.
        std::fs::write(
            work.path().join("azaudit.toml"),
            "[[cluster]]\ncontext = \"k8s-east\"\ncluster_name = \"k8s-east\"\n",
        )
        .unwrap();
        Mock {
            mock: Some(mock),
            rt,
            _files: files,
            work,
        }
    }

    fn ready(&self) -> &ReadyInfo {
        &self.mock.as_ref().unwrap().ready
    }

    fn principal_secret(&self, label: &str) -> (String, String) {
        let p = self.ready().extra["principals"]
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

    /// The binary with the flags a live run against this mock needs.
    fn azaudit(&self, subcommand: &str, principal: Option<&str>) -> Command {
        let r = self.ready();
        let (client, secret) = match principal {
            Some(label) => self.principal_secret(label),
            None => (r.client_id.clone(), r.client_secret.clone()),
        };
        let mut c = Command::cargo_bin("azaudit").unwrap();
        c.current_dir(self.work.path())
            .env("XDG_CONFIG_HOME", "/nonexistent-azaudit-test")
            .env("AZAUDIT_LOOPBACK_ONLY", "1")
            .env_remove("AZURE_CLIENT_SECRET")
            .env_remove("AZURE_CLIENT_ID")
            .env_remove("AZURE_TENANT_ID")
            .env_remove("KUBECONFIG")
            .args([
                subcommand,
                "--auth",
                "service-principal",
                "--tenant-id",
                &r.tenant_id,
                "--client-id",
                &client,
            ])
            .args([
                "--client-secret",
                &secret,
                "--arm-endpoint",
                &r.arm_endpoint,
                "--authority-host",
                &r.authority_host,
            ])
            .args([
                "--ca-file",
                &r.ca_file,
                "--kubeconfig",
                &r.kubeconfig,
                "--all-contexts",
                "--no-cache",
            ]);
        c
    }

    fn stats(&self) -> azaudit_mocks::state::Stats {
        self.mock.as_ref().unwrap().stats()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Some(m) = self.mock.take() {
            self.rt.block_on(m.shutdown());
        }
    }
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}); stderr: {}", String::from_utf8_lossy(&out.stderr)))
}

fn findings(v: &Value) -> BTreeSet<(String, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["resource"].as_str().unwrap().to_ascii_lowercase(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mocks/worlds/demo")
}

fn offline(dir: &Path, work: &Path) -> Value {
    let out = Command::cargo_bin("azaudit")
        .unwrap()
        .current_dir(work)
        .env("XDG_CONFIG_HOME", "/nonexistent-azaudit-test")
        .args(["audit", "--snapshot", dir.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    json(&out)
}

#[test]
fn live_snapshot_and_offline_audits_agree() {
    let m = Mock::start(None);
    let out = m
        .azaudit("audit", None)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = json(&out);
    assert_eq!(live["complete"], true, "{}", live["gaps"]);
    assert_eq!(live["scope"]["source"], "live");
    assert!(live["stats"]["requests"].as_u64().unwrap() > 0);
    assert!(live["stats"]["kubernetes_requests"].as_u64().unwrap() > 0);
    // The client's count is the mock's count: nothing hidden, nothing retried.
    assert_eq!(
        live["stats"]["requests"].as_u64().unwrap(),
        m.stats().arm_requests
    );
    assert_eq!(m.stats().throttled_429, 0);
    assert_eq!(m.stats().foreign_host_requests, 0);

    // The demo world on disk, audited offline, gives the same findings.
    let off = offline(&demo_dir(), m.work.path());
    assert_eq!(findings(&live), findings(&off), "live and offline audits differ");

    // A snapshot of the live estate audits to the same findings too, and holds no secret.
    let snap = m.work.path().join("snap");
    let out = m
        .azaudit("snapshot", None)
        .args(["--out", snap.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_snapshot = offline(&snap, m.work.path());
    assert_eq!(
        findings(&live),
        findings(&from_snapshot),
        "snapshot audit differs from live"
    );
    let secret = &m.ready().client_secret;
    for entry in walk(&snap) {
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(
            !text.contains(secret.as_str()),
            "{} holds the client secret",
            entry.display()
        );
    }
    // Refuses to overwrite a non-empty directory.
    let again = m
        .azaudit("snapshot", None)
        .args(["--out", snap.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

#[test]
fn a_failing_list_makes_the_audit_incomplete() {
    let cfg = MockConfig {
        page_size: 20,
        faults: vec![Fault::Status {
            status: 500,
            rate: 0.0,
            nth: None,
            first: Some(1_000),
            scope: FaultScope {
                path_contains: "networkSecurityGroups".into(),
            },
        }],
        ..Default::default()
    };
    let m = Mock::start(Some(cfg));
    let out = m
        .azaudit("audit", None)
        .args(["--format", "json", "--timeout", "60s", "--max-attempts", "2"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "incomplete beats findings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["complete"], false);
    let gaps = v["gaps"].as_array().unwrap();
    assert!(
        gaps.iter()
            .any(|g| g["kind"] == "network-security-groups" && g["cause"].as_str().unwrap().contains("500")),
        "{gaps:#?}"
    );
    // Rules that need the NSGs say nothing rather than guess.
    assert!(
        findings(&v)
            .iter()
            .all(|(r, _, _)| r != "orphaned-nsg-rule" && r != "nsg-blocks-service-port")
    );
    assert!(
        v["stats"]["retries"].as_u64().unwrap() > 0,
        "5xx are retried before giving up"
    );
}

#[test]
fn throttling_is_waited_out_and_reported() {
    let cfg = MockConfig {
        page_size: 20,
        faults: vec![Fault::Burst429 {
            count: 1,
            start: 1,
            retry_after_seconds: 1,
            scope: FaultScope {
                path_contains: "loadBalancers".into(),
            },
        }],
        ..Default::default()
    };
    let m = Mock::start(Some(cfg));
    // The reader principal audits fine, and the 429 it met shows up as arm-read-budget-low.
    let out = m
        .azaudit("audit", Some("reader"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["complete"], true, "{}", v["gaps"]);
    assert!(v["stats"]["throttled_429"].as_u64().unwrap() >= 1);
    assert!(
        findings(&v).iter().any(|(r, _, _)| r == "arm-read-budget-low"),
        "{:?}",
        findings(&v)
    );
    // After the 429 the client holds the subscription's requests until Retry-After; only
    // requests already on the wire (at most --concurrency) can still arrive early.
    assert!(m.stats().throttled_429_early_retries < 8, "{:?}", m.stats());
}

#[test]
fn forbidden_subscription_is_a_gap_with_the_fix() {
    let m = Mock::start(None);
    // The no-access principal gets a token but every list is refused: gaps that name the fix.
    let out = m
        .azaudit("audit", Some("no-access"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let causes: Vec<&str> = v["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["cause"].as_str())
        .collect();
    assert!(
        causes.iter().any(|c| c.contains("az role assignment create")),
        "{causes:#?}"
    );
}

#[test]
fn bad_credentials_exit_3_without_leaking_the_secret() {
    let m = Mock::start(None);
    let r = m.ready();
    let wrong = "not-the-secret-0123456789";
    let out = Command::cargo_bin("azaudit")
        .unwrap()
        .current_dir(m.work.path())
        .env("XDG_CONFIG_HOME", "/nonexistent-azaudit-test")
        .env("AZAUDIT_LOOPBACK_ONLY", "1")
        .args([
            "audit",
            "--auth",
            "service-principal",
            "--tenant-id",
            &r.tenant_id,
            "--client-id",
            &r.client_id,
        ])
        .args([
            "--client-secret",
            wrong,
            "--arm-endpoint",
            &r.arm_endpoint,
            "--authority-host",
            &r.authority_host,
        ])
        .args([
            "--ca-file",
            &r.ca_file,
            "--kubeconfig",
            &r.kubeconfig,
            "--all-contexts",
            "--no-cache",
            "-vv",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("7000215") || all.to_lowercase().contains("secret"),
        "{all}"
    );
    assert!(!all.contains(wrong), "the wrong secret was printed");
    assert_eq!(m.stats().arm_requests, 0, "no ARM call without a token");
}

#[test]
fn inventory_prints_counts_and_statistics() {
    let m = Mock::start(None);
    let out = m.azaudit("inventory", None).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("aks-prod") && text.contains("k8s-east"), "{text}");
    assert!(text.contains("ARM:") && text.contains("request(s)"), "{text}");
    let out = m
        .azaudit("inventory", None)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let v = json(&out);
    assert!(!v["inventory"]["load_balancers"].as_array().unwrap().is_empty());
    assert_eq!(v["inventory"]["clusters"].as_array().unwrap().len(), 2);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
