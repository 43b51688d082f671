//! Authentication end to end, against the in-process mock over real HTTPS: every credential
//! source, every cloud setting, Azure Stack discovery, the CA option, and every failure with
//! its cause and fix. Binary runs go through `azaudit doctor --format json -vvv`, and every byte
//! they print is searched for the mock's secrets (`auth_support::run`).

mod auth_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use auth_support::{Ran, azaudit, cloud_flags, principal, run, s, shared, unused_port};
use azaudit::auth::{self, AuthArgs, AuthMethod, CredentialSource};
use azaudit::cloud_config::CloudConfig;
use azaudit::secret::Secret;
use serde_json::Value;

/// `azaudit doctor --format json -vvv` against the shared mock's cloud, plus `args`.
fn doctor(home: &Path, args: &[&str]) -> assert_cmd::Command {
    let m = shared();
    let mut c = azaudit(home);
    c.arg("-vvv").arg("doctor").arg("--format").arg("json");
    c.args(cloud_flags(&m.ready));
    c.args(args);
    c
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Asserts that authentication worked with `source` and returns the identity.
fn authenticated(r: &Ran, source: &str) -> Value {
    let auth = r.check("auth");
    assert_eq!(auth["status"], "ok", "{}\n{}", r.stdout, r.stderr);
    let id = r.json()["identity"].clone();
    assert_eq!(id["source"], source, "{}", r.stdout);
    id
}

/// Asserts that authentication failed and returns the message.
fn auth_failed(r: &Ran) -> String {
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let c = r.check("auth");
    assert_eq!(c["status"], "fail", "{}", r.stdout);
    s(&c["message"])
}

/// Library arguments pointing at the shared mock, loopback-only.
fn lib_args() -> AuthArgs {
    let m = shared();
    AuthArgs {
        arm_endpoint: Some(m.ready.arm_endpoint.clone()),
        authority_host: Some(m.ready.authority_host.clone()),
        ca_files: vec![m.ready.ca_file.clone().into()],
        loopback_only: true,
        imds_endpoint: Some(format!(
            "http://127.0.0.1:{}/metadata/identity/oauth2/token",
            unused_port()
        )),
        az_path: Some("/nonexistent/az".into()),
        ..AuthArgs::default()
    }
}

// ---------------------------------------------------------------- service principal (secret)

#[test]
fn environment_service_principal_is_found_by_auto() {
    let m = shared();
    let h = home();
    let mut c = doctor(h.path(), &[]);
    c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env("AZURE_CLIENT_ID", &m.ready.client_id)
        .env("AZURE_CLIENT_SECRET", &m.ready.client_secret);
    let r = run(c, &m.ready, &[]);
    let id = authenticated(&r, "service-principal");
    let contributor = principal(&m.ready, "contributor");
    assert_eq!(id["object_id"], contributor["object_id"]);
    assert_eq!(id["client_id"], contributor["client_id"]);
    assert_eq!(id["tenant_id"], m.ready.tenant_id.as_str());
    // The first attempt in auto order is the environment service principal.
    assert_eq!(r.json()["attempts"][0]["source"], "service-principal");
    assert_eq!(r.json()["attempts"][0]["outcome"], "ok");
    // Debug logs ran (-vvv) and still hold no secret (checked by run()).
    assert!(
        r.stderr.contains("DEBUG") || r.stderr.contains("TRACE"),
        "{}",
        r.stderr
    );
}

#[test]
fn wrong_secret_names_cause_and_fix() {
    let m = shared();
    let h = home();
    let wrong = "wrong-8Q~not-the-secret-value-at-all-0000";
    let mut c = doctor(h.path(), &["--auth", "service-principal"]);
    c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env("AZURE_CLIENT_ID", &m.ready.client_id)
        .env("AZURE_CLIENT_SECRET", wrong);
    let r = run(c, &m.ready, &[wrong]);
    let msg = auth_failed(&r);
    assert!(msg.contains("AADSTS7000215"), "{msg}");
    assert!(msg.contains("client secret is wrong"), "{msg}");
    assert!(
        msg.contains(&format!("az ad app credential reset --id {}", m.ready.client_id)),
        "{msg}"
    );
}

#[test]
fn unknown_client_names_cause_and_fix() {
    let m = shared();
    let h = home();
    let mut c = doctor(h.path(), &["--auth", "service-principal"]);
    c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env("AZURE_CLIENT_ID", "00000000-1111-4222-8333-444444444444")
        .env("AZURE_CLIENT_SECRET", &m.ready.client_secret);
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(msg.contains("AADSTS700016"), "{msg}");
    assert!(
        msg.contains("no application with client id 00000000-1111-4222-8333-444444444444"),
        "{msg}"
    );
    assert!(msg.contains("check --client-id"), "{msg}");
}

#[test]
fn wrong_tenant_names_cause_and_fix() {
    let m = shared();
    let h = home();
    let mut c = doctor(h.path(), &["--auth", "service-principal"]);
    c.env("AZURE_TENANT_ID", "99999999-9999-4999-8999-999999999999")
        .env("AZURE_CLIENT_ID", &m.ready.client_id)
        .env("AZURE_CLIENT_SECRET", &m.ready.client_secret);
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(msg.contains("AADSTS90002"), "{msg}");
    assert!(
        msg.contains("tenant 99999999-9999-4999-8999-999999999999 does not exist"),
        "{msg}"
    );
    assert!(msg.contains("--tenant-id"), "{msg}");
}

#[test]
fn forced_service_principal_without_secret_says_what_to_set() {
    let m = shared();
    let h = home();
    let mut c = doctor(h.path(), &["--auth", "service-principal"]);
    c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env("AZURE_CLIENT_ID", &m.ready.client_id);
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(msg.contains("the client secret is not set"), "{msg}");
    assert!(msg.contains("AZURE_CLIENT_SECRET"), "{msg}");
}

// ---------------------------------------------------------------- certificates

#[test]
fn certificate_pem_ps256_and_rs256_with_chain() {
    let m = shared();
    let h = home();
    for extra in [
        &[][..],
        &["--assertion-alg", "rs256", "--send-certificate-chain"][..],
    ] {
        let mut c = doctor(h.path(), extra);
        c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
            .env("AZURE_CLIENT_ID", &m.ready.client_id)
            .env("AZURE_CLIENT_CERTIFICATE_PATH", &m.ready.client_certificate);
        let r = run(c, &m.ready, &[]);
        let id = authenticated(&r, "certificate");
        assert_eq!(id["object_id"], principal(&m.ready, "contributor")["object_id"]);
        assert!(s(&id["description"]).contains("azaudit-mock contributor"), "{id}");
    }
}

#[test]
fn certificate_pfx_with_password_and_wrong_password() {
    let m = shared();
    let h = home();
    let pfx = s(&m.ready.extra["client_certificate_pfx"]);
    let pw = s(&m.ready.extra["client_certificate_password"]);
    let mut c = doctor(h.path(), &["--auth", "certificate"]);
    c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env("AZURE_CLIENT_ID", &m.ready.client_id)
        .env("AZURE_CLIENT_CERTIFICATE_PATH", &pfx)
        .env("AZURE_CLIENT_CERTIFICATE_PASSWORD", &pw);
    authenticated(&run(c, &m.ready, &[]), "certificate");

    let wrong = "not-the-pfx-password";
    let mut c = doctor(h.path(), &["--auth", "certificate"]);
    c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env("AZURE_CLIENT_ID", &m.ready.client_id)
        .env("AZURE_CLIENT_CERTIFICATE_PATH", &pfx)
        .env("AZURE_CLIENT_CERTIFICATE_PASSWORD", wrong);
    let msg = auth_failed(&run(c, &m.ready, &[wrong]));
    assert!(msg.contains("the PFX password is wrong"), "{msg}");
    assert!(msg.contains("AZURE_CLIENT_CERTIFICATE_PASSWORD"), "{msg}");

    let mut c = doctor(h.path(), &["--auth", "certificate"]);
    c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env("AZURE_CLIENT_ID", &m.ready.client_id)
        .env("AZURE_CLIENT_CERTIFICATE_PATH", &pfx);
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(
        msg.contains("password-protected and no password was given"),
        "{msg}"
    );
}

#[test]
fn expired_certificate_is_refused_locally_with_the_fix() {
    let m = shared();
    let h = home();
    let expired = principal(&m.ready, "expired-cert");
    let mut c = doctor(h.path(), &["--auth", "certificate"]);
    c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env("AZURE_CLIENT_ID", s(&expired["client_id"]))
        .env(
            "AZURE_CLIENT_CERTIFICATE_PATH",
            s(&m.ready.extra["expired_client_certificate"]),
        );
    let before = m.state.stats.lock().unwrap().token_requests;
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(msg.contains("expired on"), "{msg}");
    assert!(msg.contains("az ad app credential reset --id"), "{msg}");
    assert!(msg.contains("--create-cert"), "{msg}");
    // Refused before any request: other tests may run concurrently, so only check it did not
    // need one by the message (local check) and that the counter did not move backwards.
    assert!(m.state.stats.lock().unwrap().token_requests >= before);
}

#[test]
fn unreadable_and_garbage_certificates_are_explained() {
    let m = shared();
    let h = home();
    // A directory cannot be read as a file (root ignores mode bits, so chmod 000 proves nothing).
    let dir = h.path().join("cert-dir");
    std::fs::create_dir(&dir).unwrap();
    let garbage = h.path().join("garbage.pem");
    std::fs::write(&garbage, b"\x00\x01 not a certificate").unwrap();
    for (path, expect) in [
        (dir.display().to_string(), "cannot read it"),
        (
            h.path().join("missing.pem").display().to_string(),
            "cannot read it",
        ),
        (garbage.display().to_string(), "neither PEM nor a PFX"),
    ] {
        let mut c = doctor(h.path(), &["--auth", "certificate"]);
        c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
            .env("AZURE_CLIENT_ID", &m.ready.client_id)
            .env("AZURE_CLIENT_CERTIFICATE_PATH", &path);
        let msg = auth_failed(&run(c, &m.ready, &[]));
        assert!(msg.contains(&path) && msg.contains(expect), "{msg}");
        assert!(msg.contains("Fix:"), "{msg}");
    }
}

#[test]
fn certificate_readable_by_others_is_warned_about() {
    let m = shared();
    let h = home();
    let loose = h.path().join("client.pem");
    std::fs::copy(&m.ready.client_certificate, &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = doctor(h.path(), &[]);
    c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env("AZURE_CLIENT_ID", &m.ready.client_id)
        .env("AZURE_CLIENT_CERTIFICATE_PATH", &loose);
    let r = run(c, &m.ready, &[]);
    authenticated(&r, "certificate");
    let w = r.check("auth:warning");
    assert_eq!(w["status"], "warn");
    assert!(
        s(&w["message"]).contains("readable by group or others (mode 0644)"),
        "{w}"
    );
    assert!(
        s(&w["message"]).contains(&format!("chmod 600 {}", loose.display())),
        "{w}"
    );
    assert!(r.stderr.contains("readable by group or others"), "{}", r.stderr);
}

// ---------------------------------------------------------------- workload identity

fn workload_env(c: &mut assert_cmd::Command, token_file: &str) {
    let m = shared();
    c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env(
            "AZURE_CLIENT_ID",
            s(&m.ready.extra["workload_identity_client_id"]),
        )
        .env("AZURE_FEDERATED_TOKEN_FILE", token_file);
}

#[test]
fn workload_identity_from_the_webhook_environment() {
    let m = shared();
    let h = home();
    let mut c = doctor(h.path(), &[]);
    workload_env(&mut c, &m.ready.federated_token_file);
    let r = run(c, &m.ready, &[]);
    let id = authenticated(&r, "workload-identity");
    assert_eq!(id["object_id"], principal(&m.ready, "workload")["object_id"]);
    // auto: the service principal was skipped first.
    assert_eq!(r.json()["attempts"][0]["outcome"], "skipped");
}

#[test]
fn missing_token_file_names_cause_and_fix() {
    let m = shared();
    let h = home();
    let missing = h.path().join("no-such-token");
    let mut c = doctor(h.path(), &["--auth", "workload-identity"]);
    workload_env(&mut c, &missing.display().to_string());
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(
        msg.contains(&format!(
            "federated token file {}: it does not exist",
            missing.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("azure.workload.identity/use"), "{msg}");
}

#[test]
fn federated_credential_mismatch_names_issuer_and_subject() {
    let m = shared();
    let h = home();
    let token =
        azaudit_mocks::identity::mint_federated_token(&m.state, "system:serviceaccount:other:sa", 600);
    let f = h.path().join("token");
    std::fs::write(&f, &token).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut c = doctor(h.path(), &["--auth", "workload-identity"]);
    workload_env(&mut c, &f.display().to_string());
    let msg = auth_failed(&run(c, &m.ready, &[&token]));
    assert!(msg.contains("no federated identity credential"), "{msg}");
    assert!(msg.contains("system:serviceaccount:other:sa"), "{msg}");
    assert!(msg.contains("federated-credential create"), "{msg}");

    // An expired projected token: kubelet did not rotate it.
    let expired = azaudit_mocks::identity::mint_federated_token(
        &m.state,
        azaudit_mocks::identity::WORKLOAD_SUBJECT,
        -3600,
    );
    std::fs::write(&f, &expired).unwrap();
    let mut c = doctor(h.path(), &["--auth", "workload-identity"]);
    workload_env(&mut c, &f.display().to_string());
    let msg = auth_failed(&run(c, &m.ready, &[&expired]));
    assert!(msg.contains("AADSTS700024"), "{msg}");
    assert!(msg.contains("should be rotated by kubelet"), "{msg}");
}

/// The token file is re-read for every token request: after kubelet rotates it, the next
/// request carries the new token (here, one the mock refuses, which proves it was read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_token_file_is_reread_after_rotation() {
    let m = shared();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("azure-identity-token");
    std::fs::copy(&m.ready.federated_token_file, &f).unwrap();
    let args = AuthArgs {
        auth: AuthMethod::WorkloadIdentity,
        tenant_id: Some(m.ready.tenant_id.clone()),
        client_id: Some(s(&m.ready.extra["workload_identity_client_id"])),
        federated_token_file: Some(f.clone()),
        ..lib_args()
    };
    let a = auth::authenticate(&args, None).await.expect("first token");
    assert_eq!(a.identity.source, CredentialSource::WorkloadIdentity);
    let scope = a.cloud.scope();

    let rotated =
        azaudit_mocks::identity::mint_federated_token(&m.state, "system:serviceaccount:rotated:sa", 600);
    std::fs::write(&f, &rotated).unwrap();
    // Cached: no new request, the rotation is not seen yet.
    a.credential.get_token(&[&scope]).await.expect("cached token");
    a.credential.clear_cache().await.unwrap();
    let e = a
        .credential
        .get_token(&[&scope])
        .await
        .expect_err("the rotated token is refused");
    let e = auth::auth_error_from_core(e).to_string();
    assert!(e.contains("system:serviceaccount:rotated:sa"), "{e}");

    let fresh = azaudit_mocks::identity::mint_federated_token(
        &m.state,
        azaudit_mocks::identity::WORKLOAD_SUBJECT,
        600,
    );
    std::fs::write(&f, &fresh).unwrap();
    a.credential
        .get_token(&[&scope])
        .await
        .expect("the new file is used");
}

// ---------------------------------------------------------------- managed identity

#[test]
fn imds_system_assigned() {
    let m = shared();
    let h = home();
    let mut c = doctor(h.path(), &["--auth", "managed-identity"]);
    c.env("AZAUDIT_IMDS_ENDPOINT", &m.ready.imds_endpoint);
    let r = run(c, &m.ready, &[]);
    let id = authenticated(&r, "managed-identity");
    assert_eq!(id["object_id"], m.ready.extra["system_assigned_object_id"]);
    assert!(
        s(&id["description"]).contains("system-assigned identity via IMDS"),
        "{id}"
    );
}

#[test]
fn imds_user_assigned_by_client_object_and_resource_id() {
    let m = shared();
    let h = home();
    let ua = &m.ready.extra["user_assigned_identity"];
    for (flag, key) in [
        ("--managed-identity-client-id", "client_id"),
        ("--managed-identity-object-id", "object_id"),
        ("--managed-identity-resource-id", "resource_id"),
    ] {
        let value = s(&ua[key]);
        let c = doctor(
            h.path(),
            &[
                "--auth",
                "managed-identity",
                "--imds-endpoint",
                &m.ready.imds_endpoint,
                flag,
                &value,
            ],
        );
        let r = run(c, &m.ready, &[]);
        let id = authenticated(&r, "managed-identity");
        assert_eq!(id["object_id"], ua["object_id"], "{flag}");
    }
}

#[test]
fn imds_unknown_user_assigned_identity_is_explained() {
    let m = shared();
    let h = home();
    let c = doctor(
        h.path(),
        &[
            "--auth",
            "managed-identity",
            "--imds-endpoint",
            &m.ready.imds_endpoint,
            "--managed-identity-client-id",
            "12345678-aaaa-4bbb-8ccc-123456789012",
        ],
    );
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(
        msg.contains(
            "user-assigned identity with client id 12345678-aaaa-4bbb-8ccc-123456789012 is not assigned"
        ),
        "{msg}"
    );
    assert!(msg.contains("identity assign"), "{msg}");
}

#[test]
fn no_imds_fails_fast_with_the_fix() {
    let m = shared();
    let h = home();
    let nothing = format!(
        "http://127.0.0.1:{}/metadata/identity/oauth2/token",
        unused_port()
    );
    let c = doctor(
        h.path(),
        &["--auth", "managed-identity", "--imds-endpoint", &nothing],
    );
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(msg.contains("no managed identity endpoint answers"), "{msg}");
    assert!(msg.contains("Azure VM, VMSS instance or AKS node"), "{msg}");
}

#[test]
fn app_service_identity_and_wrong_header() {
    let m = shared();
    let h = home();
    let mut c = doctor(h.path(), &[]);
    c.env("IDENTITY_ENDPOINT", &m.ready.identity_endpoint)
        .env("IDENTITY_HEADER", &m.ready.identity_header)
        // Auto must not reach IMDS here: App Service comes first when its variables are set.
        .env(
            "AZAUDIT_IMDS_ENDPOINT",
            format!("http://127.0.0.1:{}/x", unused_port()),
        );
    let r = run(c, &m.ready, &[]);
    let id = authenticated(&r, "managed-identity");
    assert_eq!(id["object_id"], m.ready.extra["system_assigned_object_id"]);
    assert!(s(&id["description"]).contains("App Service"), "{id}");

    let wrong = "11111111-0000-4000-8000-000000000000";
    let mut c = doctor(h.path(), &["--auth", "managed-identity"]);
    c.env("IDENTITY_ENDPOINT", &m.ready.identity_endpoint)
        .env("IDENTITY_HEADER", wrong);
    let msg = auth_failed(&run(c, &m.ready, &[wrong]));
    assert!(msg.contains("refused the identity header"), "{msg}");
    assert!(
        msg.contains("IDENTITY_HEADER must be the value App Service sets"),
        "{msg}"
    );
}

// ---------------------------------------------------------------- Azure CLI and auto

/// A fake `az` printing `stdout` (or failing with `stderr`).
fn fake_az(dir: &Path, stdout: &str, stderr: &str, code: i32) -> String {
    let p = dir.join("az");
    let script =
        format!("#!/bin/sh\ncat <<'EOF'\n{stdout}\nEOF\ncat >&2 <<'EOF'\n{stderr}\nEOF\nexit {code}\n");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
    p.display().to_string()
}

#[test]
fn azure_cli_token_and_not_logged_in() {
    let m = shared();
    let h = home();
    // A real mock token for the fake az to hand out (as `az` would after `az login`).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let token = rt.block_on(async {
        let args = AuthArgs {
            auth: AuthMethod::ServicePrincipal,
            tenant_id: Some(m.ready.tenant_id.clone()),
            client_id: Some(
                principal(&m.ready, "reader")["client_id"]
                    .as_str()
                    .unwrap()
                    .into(),
            ),
            client_secret: Some(Secret::new(s(&principal(&m.ready, "reader")["client_secret"]))),
            ..lib_args()
        };
        auth::authenticate(&args, None)
            .await
            .unwrap()
            .bearer()
            .await
            .unwrap()
    });
    let out = serde_json::json!({
        "accessToken": token.expose(),
        "expiresOn": "2030-01-01 00:00:00.000000",
        "expires_on": 1_893_456_000,
        "subscription": m.ready.subscription_ids[0],
        "tenant": m.ready.tenant_id,
        "tokenType": "Bearer",
    });
    let az = fake_az(h.path(), &out.to_string(), "", 0);
    let mut c = doctor(h.path(), &["--auth", "azure-cli"]);
    c.env("AZAUDIT_AZ_PATH", &az);
    let r = run(c, &m.ready, &[token.expose()]);
    let id = authenticated(&r, "azure-cli");
    assert_eq!(id["object_id"], principal(&m.ready, "reader")["object_id"]);
    assert_eq!(id["tenant_id"], m.ready.tenant_id.as_str());

    let az = fake_az(h.path(), "", "ERROR: Please run 'az login' to setup account.", 1);
    let mut c = doctor(
        h.path(),
        &["--auth", "azure-cli", "--tenant-id", &m.ready.tenant_id],
    );
    c.env("AZAUDIT_AZ_PATH", &az);
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(msg.contains("Please run 'az login' to setup account."), "{msg}");
    assert!(
        msg.contains(&format!("run `az login --tenant {}`", m.ready.tenant_id)),
        "{msg}"
    );
}

#[test]
fn auto_with_nothing_configured_lists_every_attempt() {
    let m = shared();
    let h = home();
    let az = fake_az(h.path(), "", "ERROR: Please run 'az login' to setup account.", 1);
    let mut c = doctor(h.path(), &[]);
    c.env("AZAUDIT_AZ_PATH", &az).env(
        "AZAUDIT_IMDS_ENDPOINT",
        format!(
            "http://127.0.0.1:{}/metadata/identity/oauth2/token",
            unused_port()
        ),
    );
    let r = run(c, &m.ready, &[]);
    let msg = auth_failed(&r);
    assert!(msg.contains("no credential source worked"), "{msg}");
    let attempts: Vec<(String, String)> = r.json()["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (s(&a["source"]), s(&a["outcome"])))
        .collect();
    assert_eq!(
        attempts,
        [
            ("service-principal", "skipped"),
            ("workload-identity", "skipped"),
            ("managed-identity", "failed"),
            ("azure-cli", "failed"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    for line in [
        "no AZURE_CLIENT_SECRET",
        "no AZURE_FEDERATED_TOKEN_FILE",
        "no managed identity endpoint answers",
        "az login",
    ] {
        assert!(msg.contains(line), "{line} missing from: {msg}");
    }
}

#[test]
fn auto_without_imds_override_fails_loudly_in_loopback_mode() {
    let m = shared();
    let h = home();
    let az = fake_az(h.path(), "", "ERROR: Please run 'az login' to setup account.", 1);
    let mut c = doctor(h.path(), &[]);
    c.env("AZAUDIT_AZ_PATH", &az);
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(
        msg.contains("refusing to contact http://169.254.169.254/metadata/identity/oauth2/token"),
        "{msg}"
    );
    assert!(msg.contains("--imds-endpoint"), "{msg}");
}

// ---------------------------------------------------------------- cloud config as a source

#[test]
fn cloud_config_credentials_in_provider_precedence() {
    let m = shared();
    let h = home();
    let reader = principal(&m.ready, "reader");
    // Keys in the spellings the provider's docs use (tenantID, aadClientID): matched
    // case-insensitively.
    let sp = h.path().join("azure.json");
    std::fs::write(
        &sp,
        serde_json::json!({
            "cloud": "AzurePublicCloud",
            "tenantID": m.ready.tenant_id,
            "aadClientID": reader["client_id"],
            "aadClientSecret": reader["client_secret"],
            "subscriptionId": m.ready.subscription_ids[0],
            "resourceGroup": "rg",
        })
        .to_string(),
    )
    .unwrap();
    std::fs::set_permissions(&sp, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = doctor(
        h.path(),
        &[
            "--auth",
            "cloud-config",
            "--cloud-config",
            &sp.display().to_string(),
        ],
    );
    let r = run(c, &m.ready, &[]);
    let id = authenticated(&r, "service-principal");
    assert_eq!(id["object_id"], reader["object_id"]);

    // Managed identity beats the secret (AKS's azure.json: useManagedIdentityExtension with a
    // user-assigned identity given by resource id).
    let ua = &m.ready.extra["user_assigned_identity"];
    let mi = h.path().join("azure-mi.json");
    std::fs::write(
        &mi,
        serde_json::json!({
            "tenantId": m.ready.tenant_id,
            "aadClientId": "msi",
            "aadClientSecret": "msi",
            "useManagedIdentityExtension": true,
            "userAssignedIdentityID": ua["resource_id"],
        })
        .to_string(),
    )
    .unwrap();
    let c = doctor(
        h.path(),
        &[
            "--auth",
            "cloud-config",
            "--cloud-config",
            &mi.display().to_string(),
            "--imds-endpoint",
            &m.ready.imds_endpoint,
        ],
    );
    let r = run(c, &m.ready, &[]);
    let id = authenticated(&r, "managed-identity");
    assert_eq!(id["object_id"], ua["object_id"]);

    // A config without any credential says so.
    let none = h.path().join("azure-none.json");
    std::fs::write(&none, r#"{"resourceGroup":"rg"}"#).unwrap();
    let c = doctor(
        h.path(),
        &[
            "--auth",
            "cloud-config",
            "--cloud-config",
            &none.display().to_string(),
        ],
    );
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(msg.contains("names none of"), "{msg}");
}

// ---------------------------------------------------------------- clouds, discovery, CA

#[test]
fn without_the_ca_file_tls_fails_with_the_ca_advice_and_ssl_cert_file_works() {
    let m = shared();
    let h = home();
    let mut c = azaudit(h.path());
    c.args([
        "-vvv",
        "doctor",
        "--format",
        "json",
        "--auth",
        "service-principal",
    ])
    .args([
        "--arm-endpoint",
        &m.ready.arm_endpoint,
        "--authority-host",
        &m.ready.authority_host,
    ])
    .env("AZURE_TENANT_ID", &m.ready.tenant_id)
    .env("AZURE_CLIENT_ID", &m.ready.client_id)
    .env("AZURE_CLIENT_SECRET", &m.ready.client_secret);
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(msg.contains("TLS handshake"), "{msg}");
    assert!(msg.contains("--ca-file"), "{msg}");

    let mut c = azaudit(h.path());
    c.args(["doctor", "--format", "json", "--auth", "service-principal"])
        .args([
            "--arm-endpoint",
            &m.ready.arm_endpoint,
            "--authority-host",
            &m.ready.authority_host,
        ])
        .env("SSL_CERT_FILE", &m.ready.ca_file)
        .env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env("AZURE_CLIENT_ID", &m.ready.client_id)
        .env("AZURE_CLIENT_SECRET", &m.ready.client_secret);
    authenticated(&run(c, &m.ready, &[]), "service-principal");
}

#[test]
fn a_bad_ca_file_is_explained() {
    let m = shared();
    let h = home();
    let bad = h.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let mut c = azaudit(h.path());
    c.args([
        "doctor",
        "--format",
        "json",
        "--arm-endpoint",
        &m.ready.arm_endpoint,
    ])
    .args([
        "--authority-host",
        &m.ready.authority_host,
        "--ca-file",
        &bad.display().to_string(),
    ]);
    let msg = auth_failed(&run(c, &m.ready, &[]));
    assert!(
        msg.contains("extra CA certificates") && msg.contains("--ca-file"),
        "{msg}"
    );
}

#[test]
fn azure_stack_discovery_finds_the_authority() {
    let m = shared();
    let h = home();
    let mut c = azaudit(h.path());
    c.args([
        "-vvv",
        "doctor",
        "--format",
        "json",
        "--auth",
        "service-principal",
    ])
    .args([
        "--arm-endpoint",
        &m.ready.arm_endpoint,
        "--discover",
        "--ca-file",
        &m.ready.ca_file,
    ])
    .env("AZURE_TENANT_ID", &m.ready.tenant_id)
    .env("AZURE_CLIENT_ID", &m.ready.client_id)
    .env("AZURE_CLIENT_SECRET", &m.ready.client_secret);
    let r = run(c, &m.ready, &[]);
    authenticated(&r, "service-principal");
    let cloud = &r.json()["cloud"];
    assert_eq!(cloud["authority_host"], m.ready.authority_host.as_str());
    assert!(s(&cloud["reason"]).contains("discovered from"), "{cloud}");
}

#[test]
fn custom_cloud_needs_its_authority() {
    let m = shared();
    let h = home();
    let mut c = azaudit(h.path());
    c.args([
        "doctor",
        "--format",
        "json",
        "--arm-endpoint",
        &m.ready.arm_endpoint,
    ]);
    let r = run(c, &m.ready, &[]);
    assert_eq!(r.code, 3);
    let msg = s(&r.check("cloud")["message"]);
    assert!(msg.contains("needs the matching Entra ID authority"), "{msg}");
    assert!(
        msg.contains("--authority-host") && msg.contains("--discover"),
        "{msg}"
    );
}

#[test]
fn sovereign_cloud_names_resolve_and_loopback_mode_refuses_them() {
    let m = shared();
    let h = home();
    for (name, host) in [
        ("AzureChinaCloud", "https://login.chinacloudapi.cn/"),
        ("AzureUSGovernment", "https://login.microsoftonline.us/"),
        ("AzurePublicCloud", "https://login.microsoftonline.com/"),
    ] {
        let mut c = azaudit(h.path());
        c.args(["doctor", "--format", "json", "--cloud", name]);
        let r = run(c, &m.ready, &[]);
        let msg = auth_failed(&r);
        assert!(msg.contains(&format!("refusing to contact {host}")), "{msg}");
    }
    let mut c = azaudit(h.path());
    c.args(["doctor", "--format", "json", "--cloud", "AzureGermanCloud"]);
    let r = run(c, &m.ready, &[]);
    let msg = s(&r.check("cloud")["message"]);
    assert!(msg.contains("unknown cloud \"AzureGermanCloud\""), "{msg}");
}

/// Cloud resolution without the network: names, the cloud config's `cloud`, custom clouds and
/// their audience, `--authority-host` / `--audience` overrides.
#[tokio::test]
async fn cloud_settings_resolve() {
    let http = reqwest::Client::new();
    let cfg = CloudConfig::parse(r#"{"CLOUD":"AzureChinaCloud"}"#, "t").unwrap();
    let r = auth::cloud::resolve(&AuthArgs::default(), Some(&cfg), &http)
        .await
        .unwrap();
    assert_eq!(r.cloud, auth::Cloud::china());
    assert_eq!(r.cloud.scope(), "https://management.chinacloudapi.cn/.default");
    let r = auth::cloud::resolve(
        &AuthArgs {
            cloud: Some("AzureUSGovernmentCloud".into()),
            ..AuthArgs::default()
        },
        Some(&cfg),
        &http,
    )
    .await
    .unwrap();
    assert_eq!(
        r.cloud.arm_endpoint.as_str(),
        "https://management.usgovcloudapi.net/"
    );
    let r = auth::cloud::resolve(&AuthArgs::default(), None, &http)
        .await
        .unwrap();
    assert_eq!(r.cloud, auth::Cloud::public());
    let custom = AuthArgs {
        arm_endpoint: Some("https://arm.example:8443".into()),
        authority_host: Some("https://login.example".into()),
        ..AuthArgs::default()
    };
    let r = auth::cloud::resolve(&custom, None, &http).await.unwrap();
    assert_eq!(r.cloud.audience, "https://arm.example:8443/");
    assert_eq!(r.cloud.authority_host.as_str(), "https://login.example/");
    let r = auth::cloud::resolve(
        &AuthArgs {
            audience: Some("https://management.core.windows.net/".into()),
            ..custom
        },
        None,
        &http,
    )
    .await
    .unwrap();
    assert_eq!(r.cloud.scope(), "https://management.core.windows.net/.default");
    let r = auth::cloud::resolve(
        &AuthArgs {
            authority_host: Some("https://login.partner.example/".into()),
            ..AuthArgs::default()
        },
        None,
        &http,
    )
    .await
    .unwrap();
    assert_eq!(r.cloud.arm_endpoint.as_str(), "https://management.azure.com/");
    assert_eq!(r.cloud.authority_host.as_str(), "https://login.partner.example/");
    let e = auth::cloud::resolve(
        &AuthArgs {
            arm_endpoint: Some("http://arm.example".into()),
            authority_host: Some("https://login.example".into()),
            ..AuthArgs::default()
        },
        None,
        &http,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("https"), "{e}");
}

// ---------------------------------------------------------------- the token cache

/// Many concurrent `get_token` calls make exactly one token request; the token is refreshed
/// ahead of its expiry; `clear_cache` forces a new one. A dedicated mock (short tokens, its own
/// counters).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_shared_refreshed_ahead_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let config = azaudit_mocks::config::MockConfig {
        // 6-second tokens: refreshed after 3 s (half the lifetime of a short token).
        faults: vec![azaudit_mocks::config::Fault::ShortTokens { seconds: 6 }],
        ..Default::default()
    };
    let mock = auth_support::start_in(dir.path(), Some(config)).await;
    let ready = &mock.ready;
    let args = AuthArgs {
        auth: AuthMethod::ServicePrincipal,
        tenant_id: Some(ready.tenant_id.clone()),
        client_id: Some(ready.client_id.clone()),
        client_secret: Some(Secret::new(ready.client_secret.clone())),
        arm_endpoint: Some(ready.arm_endpoint.clone()),
        authority_host: Some(ready.authority_host.clone()),
        ca_files: vec![ready.ca_file.clone().into()],
        loopback_only: true,
        ..AuthArgs::default()
    };
    let requests = || mock.state.stats.lock().unwrap().token_requests;
    let a = auth::authenticate(&args, None).await.expect("authenticated");
    assert_eq!(requests(), 1, "authenticate obtains the first token");
    let scope = a.cloud.scope();

    a.credential.clear_cache().await.unwrap();
    let cred = a.credential.clone();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let c = Arc::clone(&cred);
            let scope = scope.clone();
            tokio::spawn(async move { c.get_token(&[&scope]).await.map(|t| t.token.secret().to_string()) })
        })
        .collect();
    let mut tokens = std::collections::BTreeSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap().expect("token"));
    }
    assert_eq!(requests(), 2, "64 concurrent callers, one token request");
    assert_eq!(tokens.len(), 1, "all callers share the token");

    // Half-way through its 6 s life the token is refreshed, before it expires.
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    let t = a.credential.get_token(&[&scope]).await.unwrap();
    assert_eq!(requests(), 3, "refreshed ahead of expiry");
    assert!(t.expires_on > time::OffsetDateTime::now_utc());
    a.credential.get_token(&[&scope]).await.unwrap();
    assert_eq!(requests(), 3, "the refreshed token is reused");
    mock.shutdown().await;
}

/// `Debug` of everything `authenticate` returns holds no secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_of_credentials_holds_no_secret() {
    let m = shared();
    let args = AuthArgs {
        auth: AuthMethod::Certificate,
        tenant_id: Some(m.ready.tenant_id.clone()),
        client_id: Some(m.ready.client_id.clone()),
        client_secret: Some(Secret::new(m.ready.client_secret.clone())),
        client_certificate: Some(s(&m.ready.extra["client_certificate_pfx"]).into()),
        client_certificate_password: Some(Secret::new(s(&m.ready.extra["client_certificate_password"]))),
        identity_header: Some(Secret::new(m.ready.identity_header.clone())),
        ..lib_args()
    };
    let a = auth::authenticate(&args, None).await.expect("authenticated");
    let token = a.bearer().await.unwrap();
    let dump = format!("{args:?}\n{a:?}\n{token:?}\n{}", a.identity.description);
    for secret in auth_support::secrets(&m.ready)
        .iter()
        .chain([token.expose().to_string()].iter())
    {
        assert!(
            !dump.contains(secret.as_str()),
            "a secret in Debug output:\n{dump}"
        );
    }
    assert!(dump.contains("<redacted>"));
}
