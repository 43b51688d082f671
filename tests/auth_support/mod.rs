//! Shared by `tests/auth.rs` and `tests/doctor.rs`: the in-process mock (one per test binary,
//! served from a background thread so every test can reach it), the `azaudit` command with a
//! clean environment pointed at the mock, and the secret check every binary run goes through.
//!
//! Nothing here may reach beyond loopback: every command runs with `AZAUDIT_LOOPBACK_ONLY=1`
//! and an emptied environment, so a forgotten endpoint override fails instead of calling Azure.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use azaudit_mocks::config::MockConfig;
use azaudit_mocks::state::MockState;
use azaudit_mocks::{ReadyInfo, RunningMock, ServeOptions, start};
use serde_json::Value;

/// The test world: two AKS clusters (one forbids listing pods), one subscription.
pub fn world_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mocks/tests/worlds/basic")
}

pub struct Shared {
    pub ready: ReadyInfo,
    pub state: Arc<MockState>,
    pub dir: PathBuf,
}

/// The mock shared by every test of this binary (each start generates RSA keys, so start once).
pub fn shared() -> &'static Shared {
    static MOCK: OnceLock<Shared> = OnceLock::new();
    MOCK.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let dir = tempfile::tempdir().expect("temp dir").keep();
                let m = start_in(&dir, None).await;
                tx.send(Shared {
                    ready: m.ready.clone(),
                    state: m.state.clone(),
                    dir,
                })
                .expect("send ready");
                // Serve for the life of the test process.
                let _keep = m;
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the mock started")
    })
}

/// Starts a mock on the current runtime (for tests that count requests and need their own).
pub async fn start_in(dir: &Path, config: Option<MockConfig>) -> RunningMock {
    let world = azaudit_world::World::load(&world_dir()).expect("test world loads");
    start(ServeOptions {
        world,
        listen: "127.0.0.1:0".parse().expect("address"),
        files_dir: dir.join("files"),
        config,
    })
    .await
    .expect("mock starts")
}

/// A principal of the ready file by label.
pub fn principal(ready: &ReadyInfo, label: &str) -> Value {
    ready.extra["principals"]
        .as_array()
        .expect("principals")
        .iter()
        .find(|p| p["label"] == label)
        .unwrap_or_else(|| panic!("no principal {label}"))
        .clone()
}

pub fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// Every secret value the mock handed out: client secrets, the PFX password, the App Service
/// identity header, the federated token.
pub fn secrets(ready: &ReadyInfo) -> Vec<String> {
    let mut v = vec![
        ready.client_secret.clone(),
        ready.identity_header.clone(),
        s(&ready.extra["client_certificate_password"]),
    ];
    for p in ready.extra["principals"].as_array().expect("principals") {
        if let Some(sec) = p["client_secret"].as_str() {
            v.push(sec.to_string());
        }
    }
    if let Ok(t) = std::fs::read_to_string(&ready.federated_token_file) {
        v.push(t.trim().to_string());
    }
    v.retain(|x| !x.is_empty());
    v
}

/// The mock's endpoints as flags: a custom cloud whose CA is the mock's.
pub fn cloud_flags(ready: &ReadyInfo) -> Vec<String> {
    vec![
        "--arm-endpoint".into(),
        ready.arm_endpoint.clone(),
        "--authority-host".into(),
        ready.authority_host.clone(),
        "--ca-file".into(),
        ready.ca_file.clone(),
    ]
}

/// A loopback port nothing listens on (bound, then released).
pub fn unused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `azaudit` with an empty environment (only PATH, HOME and loopback-only mode), most verbose
/// logging, and no managed identity, Azure CLI or kubeconfig unless the test adds them.
pub fn azaudit(home: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("azaudit").expect("binary");
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("AZAUDIT_LOOPBACK_ONLY", "1")
        .env("NO_COLOR", "1");
    c
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
    /// The doctor check with this id.
    pub fn check(&self, id: &str) -> Value {
        self.json()["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no check {id}:\n{}", self.stdout))
            .clone()
    }
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs the command and checks that no secret appears in anything it printed: the mock's
/// secrets, `extra` (e.g. a wrong secret the test passed), JWTs (`eyJ`, the start of every
/// token and assertion) and PEM private keys.
pub fn run(mut cmd: assert_cmd::Command, ready: &ReadyInfo, extra: &[&str]) -> Ran {
    let out = cmd.output().expect("azaudit runs");
    let r = Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let all = r.all();
    let mut needles = secrets(ready);
    needles.extend(extra.iter().map(|x| x.to_string()));
    for secret in needles.iter().filter(|x| !x.is_empty()) {
        assert!(
            !all.contains(secret.as_str()),
            "a secret value appears in azaudit's output:\n{all}"
        );
    }
    assert!(!all.contains("eyJ"), "a JWT appears in azaudit's output:\n{all}");
    assert!(
        !all.contains("PRIVATE KEY"),
        "a private key appears in azaudit's output"
    );
    r
}
