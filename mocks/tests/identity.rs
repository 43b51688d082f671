//! Entra ID, managed identity and principals of the mock, tested over real HTTPS (and the plain
//! HTTP the managed identity endpoints use) against an in-process mock on loopback.
//!
//! Client assertions are built here, independently of the mock's code: signed with ring using
//! the key the mock wrote to `client.pem`, as a client SDK would.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use azaudit_mocks::config::{Fault, MockConfig, PrincipalConfig};
use azaudit_mocks::tokens::now_unix;
use azaudit_mocks::{RunningMock, ServeOptions, start};
use azaudit_world::World;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use reqwest::StatusCode;
use ring::signature::{self, RsaKeyPair};
use serde_json::{Value, json};
use sha1::Digest as _;

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const SUB: &str = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";
const ARM: &str = "https://management.azure.com/.default";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Mock {
    mock: RunningMock,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Mock {
    async fn start(config: MockConfig) -> Mock {
        let dir = tempfile::tempdir().expect("temp dir");
        let world_json = json!({"tenant_id": TENANT, "subscriptions": [{"id": SUB}]});
        let world = World::from_files(vec![(
            PathBuf::from("world.json"),
            serde_json::to_vec(&world_json).unwrap(),
        )]);
        let mock = start(ServeOptions {
            world,
            listen: "127.0.0.1:0".parse().unwrap(),
            files_dir: dir.path().join("files"),
            config: Some(config),
        })
        .await
        .expect("mock starts");
        let ca = std::fs::read(&mock.ready.ca_file).expect("CA file");
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
            // Only ever the mock on loopback, whatever proxy the environment names.
            .no_proxy()
            .build()
            .expect("HTTP client");
        Mock {
            mock,
            http,
            _dir: dir,
        }
    }

    async fn default() -> Mock {
        Mock::start(MockConfig::default()).await
    }

    fn ready(&self) -> &azaudit_mocks::ReadyInfo {
        &self.mock.ready
    }

    fn authority(&self) -> String {
        self.ready().authority_host.trim_end_matches('/').to_string()
    }

    fn token_url(&self) -> String {
        format!("{}{TENANT}/oauth2/v2.0/token", self.ready().authority_host)
    }

    /// A principal of the ready file's `principals` list, by label.
    fn principal(&self, label: &str) -> Value {
        self.ready().extra["principals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["label"] == label)
            .unwrap_or_else(|| panic!("principal {label} in ready file"))
            .clone()
    }

    fn extra_path(&self, key: &str) -> PathBuf {
        PathBuf::from(self.ready().extra[key].as_str().unwrap())
    }

    async fn post_token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        self.post_token_to(&self.token_url(), form).await
    }

    async fn post_token_to(&self, url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self
            .http
            .post(url)
            .form(form)
            .send()
            .await
            .expect("token request");
        let status = r.status();
        (status, r.json().await.expect("JSON body"))
    }

    async fn secret_token(&self, client_id: &str, secret: &str) -> (StatusCode, Value) {
        self.post_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", ARM),
        ])
        .await
    }

    async fn assertion_token(&self, client_id: &str, assertion: &str) -> (StatusCode, Value) {
        self.post_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", ARM),
        ])
        .await
    }

    async fn get(&self, url: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut req = self.http.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("GET");
        let status = r.status();
        (status, r.json().await.expect("JSON body"))
    }

    /// Verifies an issued access token with the mock's signer.
    fn claims(&self, access_token: &str) -> azaudit_mocks::tokens::Claims {
        self.mock
            .state
            .signer
            .verify(access_token, now_unix())
            .expect("issued token verifies")
    }
}

/// Asserts Entra ID's error shape and returns the AADSTS code.
fn assert_aad_error(
    mock: &Mock,
    status: StatusCode,
    body: &Value,
    want_status: u16,
    want_error: &str,
    want_code: u64,
) {
    assert_eq!(status.as_u16(), want_status, "status for {body}");
    assert_eq!(body["error"], want_error, "error for {body}");
    assert_eq!(body["error_codes"], json!([want_code]), "codes for {body}");
    let d = body["error_description"].as_str().unwrap();
    assert!(d.starts_with(&format!("AADSTS{want_code}: ")), "{d}");
    let trace = body["trace_id"].as_str().unwrap();
    let corr = body["correlation_id"].as_str().unwrap();
    let ts = body["timestamp"].as_str().unwrap();
    assert_eq!(trace.len(), 36);
    assert!(
        d.contains(&format!(
            "Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"
        )),
        "{d}"
    );
    assert!(
        ts.ends_with('Z') && ts.len() == "2024-10-02 22:05:03Z".len(),
        "{ts}"
    );
    assert_eq!(
        body["error_uri"],
        format!("{}/error?code={want_code}", mock.authority())
    );
}

/// The certificate (DER) and PKCS#8 private key (DER) of a PEM file the mock wrote.
fn read_pem(path: &Path) -> (Vec<u8>, Vec<u8>) {
    let text = std::fs::read_to_string(path).expect("PEM file");
    let block = |label: &str| -> Vec<u8> {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = text
            .find(&begin)
            .unwrap_or_else(|| panic!("{label} in {}", path.display()))
            + begin.len();
        let stop = start + text[start..].find(&end).unwrap();
        let b64: String = text[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
        STANDARD.decode(b64).unwrap()
    };
    (block("CERTIFICATE"), block("PRIVATE KEY"))
}

#[derive(Clone, Copy)]
enum Alg {
    Ps256,
    Rs256,
}

enum Thumb {
    X5t,
    X5tS256,
    /// `x5t` in padded standard base64, as azure_identity 0.21 sends it.
    X5tStandardBase64,
    Other,
}

struct Assertion<'a> {
    cert_der: &'a [u8],
    key_der: &'a [u8],
    alg: Alg,
    thumb: Thumb,
    iss: String,
    aud: String,
    nbf: i64,
    exp: i64,
}

impl Assertion<'_> {
    fn sign(&self) -> String {
        let (name, scheme): (&str, &'static dyn signature::RsaEncoding) = match self.alg {
            Alg::Ps256 => ("PS256", &signature::RSA_PSS_SHA256),
            Alg::Rs256 => ("RS256", &signature::RSA_PKCS1_SHA256),
        };
        let mut header = json!({"alg": name, "typ": "JWT"});
        match self.thumb {
            Thumb::X5t => header["x5t"] = json!(B64.encode(sha1::Sha1::digest(self.cert_der))),
            Thumb::X5tS256 => header["x5t#S256"] = json!(B64.encode(sha2::Sha256::digest(self.cert_der))),
            Thumb::X5tStandardBase64 => {
                header["x5t"] = json!(STANDARD.encode(sha1::Sha1::digest(self.cert_der)))
            }
            Thumb::Other => {
                header["x5t#S256"] = json!(B64.encode(sha2::Sha256::digest(b"another certificate")))
            }
        }
        let claims = json!({
            "aud": self.aud, "iss": self.iss, "sub": self.iss, "jti": "5e1c4a3e-0000-4000-8000-000000000001",
            "nbf": self.nbf, "iat": self.nbf, "exp": self.exp,
        });
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let key = RsaKeyPair::from_pkcs8(self.key_der).expect("PKCS#8 RSA key");
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            scheme,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", B64.encode(sig))
    }
}

fn jwt_part(token: &str, i: usize) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn secret_flow_and_its_errors() {
    let m = Mock::default().await;
    let r = m.ready();
    let contributor = m.principal("contributor");
    assert_eq!(contributor["client_id"], r.client_id);
    assert_eq!(contributor["client_secret"], r.client_secret);

    let (s, body) = m.secret_token(&r.client_id, &r.client_secret).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let c = m.claims(body["access_token"].as_str().unwrap());
    assert_eq!(c.oid, contributor["object_id"].as_str().unwrap());
    assert_eq!(c.appid, r.client_id);
    assert_eq!(c.tid, TENANT);
    assert_eq!(c.aud, "https://management.azure.com");
    assert_eq!(c.idtyp, "app");
    assert_eq!(c.exp - c.iat, 3599);

    // The reader and the principal with no access authenticate too (ARM decides what they may do).
    for label in ["reader", "no-access"] {
        let p = m.principal(label);
        let (s, body) = m
            .secret_token(
                p["client_id"].as_str().unwrap(),
                p["client_secret"].as_str().unwrap(),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{label}: {body}");
        assert_eq!(
            m.claims(body["access_token"].as_str().unwrap()).oid,
            p["object_id"].as_str().unwrap()
        );
    }

    // azcore's audience form (trailing slash, so `//.default`) and the mock's own ARM URL.
    for scope in [
        "https://management.core.windows.net//.default".to_string(),
        format!("{}.default", r.arm_endpoint),
    ] {
        let (s, body) = m
            .post_token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &r.client_id),
                ("client_secret", &r.client_secret),
                ("scope", &scope),
            ])
            .await;
        assert_eq!(s, StatusCode::OK, "{scope}: {body}");
        assert_eq!(
            m.claims(body["access_token"].as_str().unwrap()).aud,
            scope.trim_end_matches("/.default")
        );
    }

    let (s, body) = m.secret_token(&r.client_id, "not-the-secret").await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 7000215);
    assert!(body["error_description"].as_str().unwrap().contains(&r.client_id));

    let (s, body) = m
        .secret_token("99999999-9999-4999-8999-999999999999", &r.client_secret)
        .await;
    assert_aad_error(&m, s, &body, 400, "unauthorized_client", 700016);
    assert!(body["error_description"].as_str().unwrap().contains(
        "Application with identifier '99999999-9999-4999-8999-999999999999' was not found in the directory"
    ));

    // A managed identity's client id is no application a client can authenticate as.
    let mi = r.extra["user_assigned_identity"]["client_id"].as_str().unwrap();
    let (s, body) = m.secret_token(mi, &r.client_secret).await;
    assert_aad_error(&m, s, &body, 400, "unauthorized_client", 700016);

    let other_tenant = format!(
        "{}00000000-0000-0000-0000-000000000000/oauth2/v2.0/token",
        r.authority_host
    );
    let (s, body) = m
        .post_token_to(
            &other_tenant,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &r.client_id),
                ("client_secret", &r.client_secret),
                ("scope", ARM),
            ],
        )
        .await;
    assert_aad_error(&m, s, &body, 400, "invalid_request", 90002);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Tenant '00000000-0000-0000-0000-000000000000' not found.")
    );

    let (s, body) = m
        .post_token(&[("grant_type", "client_credentials"), ("scope", ARM)])
        .await;
    assert_aad_error(&m, s, &body, 400, "invalid_request", 900144);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("'client_id'")
    );

    let (s, body) = m
        .post_token(&[("grant_type", "password"), ("client_id", &r.client_id)])
        .await;
    assert_aad_error(&m, s, &body, 400, "unsupported_grant_type", 70003);

    let (s, body) = m
        .post_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &r.client_id),
            ("client_secret", &r.client_secret),
            ("scope", "https://management.azure.com/user_impersonation"),
        ])
        .await;
    assert_aad_error(&m, s, &body, 400, "invalid_scope", 70011);

    let (s, body) = m
        .post_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &r.client_id),
            ("client_secret", &r.client_secret),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .await;
    assert_aad_error(&m, s, &body, 400, "invalid_resource", 500011);

    let (s, body) = m
        .post_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &r.client_id),
            ("scope", ARM),
        ])
        .await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 7000218);

    // Entra echoes the client's request id as the correlation id.
    let resp = m
        .http
        .post(m.token_url())
        .header("client-request-id", "0e4f5c1a-aaaa-4bbb-8ccc-123456789abc")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "y"),
            ("scope", ARM),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["correlation_id"], "0e4f5c1a-aaaa-4bbb-8ccc-123456789abc");

    let stats = m.mock.stats();
    assert_eq!(stats.token_requests, 15);
    assert_eq!(stats.token_failures, 10);
}

#[tokio::test]
async fn certificate_assertions_with_ps256_rs256_x5t_and_x5t_s256() {
    let m = Mock::default().await;
    let r = m.ready();
    let (cert, key) = read_pem(Path::new(&r.client_certificate));
    let now = now_unix();
    let token_url = m.token_url();
    let v2_issuer = format!("{}/{TENANT}/v2.0", m.authority());
    let cases = [
        (Alg::Ps256, Thumb::X5tS256, token_url.clone()),
        (Alg::Ps256, Thumb::X5t, token_url.clone()),
        (Alg::Rs256, Thumb::X5tS256, token_url.clone()),
        (Alg::Rs256, Thumb::X5t, token_url.clone()),
        (Alg::Rs256, Thumb::X5tStandardBase64, token_url.clone()),
        (Alg::Ps256, Thumb::X5tS256, v2_issuer),
    ];
    for (i, (alg, thumb, aud)) in cases.into_iter().enumerate() {
        let a = Assertion {
            cert_der: &cert,
            key_der: &key,
            alg,
            thumb,
            iss: r.client_id.clone(),
            aud,
            nbf: now - 5,
            exp: now + 600,
        }
        .sign();
        let (s, body) = m.assertion_token(&r.client_id, &a).await;
        assert_eq!(s, StatusCode::OK, "case {i}: {body}");
        let c = m.claims(body["access_token"].as_str().unwrap());
        assert_eq!(c.oid, m.principal("contributor")["object_id"].as_str().unwrap());
        assert_eq!(c.idtyp, "app");
    }
    assert_eq!(m.mock.stats().token_failures, 0);
}

#[tokio::test]
async fn certificate_assertion_failures() {
    let m = Mock::default().await;
    let r = m.ready();
    let (cert, key) = read_pem(Path::new(&r.client_certificate));
    let now = now_unix();
    let good = || Assertion {
        cert_der: &cert,
        key_der: &key,
        alg: Alg::Ps256,
        thumb: Thumb::X5tS256,
        iss: r.client_id.clone(),
        aud: m.token_url(),
        nbf: now - 5,
        exp: now + 600,
    };

    // Expired an hour ago (beyond any skew).
    let a = Assertion {
        nbf: now - 4200,
        exp: now - 3600,
        ..good()
    }
    .sign();
    let (s, body) = m.assertion_token(&r.client_id, &a).await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 700024);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Client assertion is not within its valid time range. Current time: ")
    );

    // A thumbprint of no registered certificate.
    let a = Assertion {
        thumb: Thumb::Other,
        ..good()
    }
    .sign();
    let (s, body) = m.assertion_token(&r.client_id, &a).await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 700027);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("[Reason - The key was not found., Thumbprint of key used by client: '")
    );

    // A valid assertion with one byte of its signature changed.
    let a = good().sign();
    let (head, sig) = a.rsplit_once('.').unwrap();
    let mut sig = B64.decode(sig).unwrap();
    sig[10] ^= 0x01;
    let tampered = format!("{head}.{}", B64.encode(sig));
    let (s, body) = m.assertion_token(&r.client_id, &tampered).await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 700027);
    let d = body["error_description"].as_str().unwrap();
    assert!(
        d.contains("Key was found, but use of the key to verify the signature failed."),
        "{d}"
    );
    let sha256_hex: String = sha2::Sha256::digest(&cert)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert!(d.contains(&sha256_hex), "{d}");

    // Signed by another key (the expired certificate's) under the contributor's thumbprint.
    let (_, other_key) = read_pem(&m.extra_path("expired_client_certificate"));
    let a = Assertion {
        key_der: &other_key,
        ..good()
    }
    .sign();
    let (s, body) = m.assertion_token(&r.client_id, &a).await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 700027);

    // The wrong audience.
    let a = Assertion {
        aud: "https://login.microsoftonline.com/common/oauth2/v2.0/token".into(),
        ..good()
    }
    .sign();
    let (s, body) = m.assertion_token(&r.client_id, &a).await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 700023);

    // Not a JWT at all.
    let (s, body) = m.assertion_token(&r.client_id, "not-a-jwt").await;
    assert_aad_error(&m, s, &body, 400, "invalid_request", 50027);

    // The expired-cert principal's own, correctly signed assertion: its certificate expired.
    let expired = m.principal("expired-cert");
    assert_eq!(
        expired["client_certificate"],
        m.ready().extra["expired_client_certificate"]
    );
    let (ecert, ekey) = read_pem(&m.extra_path("expired_client_certificate"));
    let expired_id = expired["client_id"].as_str().unwrap();
    let a = Assertion {
        cert_der: &ecert,
        key_der: &ekey,
        iss: expired_id.to_string(),
        ..good()
    }
    .sign();
    let (s, body) = m.assertion_token(expired_id, &a).await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 700027);
    let d = body["error_description"].as_str().unwrap();
    assert!(
        d.contains("[Reason - The key used is expired., Thumbprint of key used by client: '"),
        "{d}"
    );
    assert!(d.contains("Found key 'Start="), "{d}");
    assert!(expired.get("client_secret").is_none());

    let stats = m.mock.stats();
    assert_eq!((stats.token_requests, stats.token_failures), (7, 7));
}

#[tokio::test]
async fn federated_workload_identity() {
    let m = Mock::default().await;
    let r = m.ready();
    let workload_id = r.extra["workload_identity_client_id"].as_str().unwrap();
    assert_eq!(m.principal("workload")["client_id"], workload_id);
    let issuer = r.extra["oidc_issuer"].as_str().unwrap();
    assert_eq!(issuer, format!("{}/federated", m.authority()));

    // The token file is a service-account token of the mock's issuer, valid for an hour.
    let file_token = std::fs::read_to_string(&r.federated_token_file).unwrap();
    let claims = jwt_part(&file_token, 1);
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["sub"], "system:serviceaccount:azaudit:azaudit");
    assert_eq!(claims["aud"], json!(["api://AzureADTokenExchange"]));
    let exp = claims["exp"].as_i64().unwrap();
    assert!((exp - now_unix() - 3600).abs() < 60, "exp {exp}");

    let (s, body) = m.assertion_token(workload_id, file_token.trim()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let c = m.claims(body["access_token"].as_str().unwrap());
    assert_eq!(c.oid, m.principal("workload")["object_id"].as_str().unwrap());
    assert_eq!(c.idtyp, "wi");

    let wrong_subject = azaudit_mocks::identity::mint_federated_token(
        &m.mock.state,
        "system:serviceaccount:default:other",
        600,
    );
    let (s, body) = m.assertion_token(workload_id, &wrong_subject).await;
    assert_aad_error(&m, s, &body, 400, "invalid_request", 70021);
    let d = body["error_description"].as_str().unwrap();
    assert!(
        d.contains("Assertion Subject: 'system:serviceaccount:default:other'"),
        "{d}"
    );
    assert!(d.contains(&format!("Assertion Issuer: '{issuer}'")), "{d}");

    let expired = azaudit_mocks::identity::mint_federated_token(
        &m.mock.state,
        "system:serviceaccount:azaudit:azaudit",
        -600,
    );
    let (s, body) = m.assertion_token(workload_id, &expired).await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 700024);

    // The same good token presented for an application with no federated credential.
    let (s, body) = m.assertion_token(&r.client_id, file_token.trim()).await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 700211);

    // A token from another issuer, even a well-formed one.
    let (_, key) = read_pem(Path::new(&r.client_certificate));
    let foreign = Assertion {
        cert_der: b"x",
        key_der: &key,
        alg: Alg::Rs256,
        thumb: Thumb::Other,
        iss: "https://oidc.prod-aks.azure.com/tenant/issuer/".into(),
        aud: "api://AzureADTokenExchange".into(),
        nbf: now_unix(),
        exp: now_unix() + 600,
    }
    .sign();
    let (s, body) = m.assertion_token(workload_id, &foreign).await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 700211);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("issuer 'https://oidc.prod-aks.azure.com/tenant/issuer/'")
    );

    // The mock issuer's token with its signature broken.
    let (head, _) = file_token.trim().rsplit_once('.').unwrap();
    let (s, body) = m
        .assertion_token(workload_id, &format!("{head}.{}", B64.encode([7u8; 256])))
        .await;
    assert_aad_error(&m, s, &body, 401, "invalid_client", 700027);
}

#[tokio::test]
async fn discovery_documents() {
    let m = Mock::default().await;
    let a = m.authority();

    let (s, doc) = m
        .get(
            &format!("{a}/{TENANT}/v2.0/.well-known/openid-configuration"),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["token_endpoint"], m.token_url());
    assert_eq!(doc["issuer"], format!("{a}/{TENANT}/v2.0"));
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{a}/{TENANT}/oauth2/v2.0/authorize")
    );
    // Every URL the document hands out points back at the mock.
    for (k, v) in doc.as_object().unwrap() {
        if let Some(s) = v.as_str().filter(|s| s.starts_with("http")) {
            assert!(s.starts_with(&a), "{k} = {s}");
        }
    }
    let (s, keys) = m.get(doc["jwks_uri"].as_str().unwrap(), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys["keys"][0]["kty"], "RSA");

    let (s, v1) = m
        .get(&format!("{a}/{TENANT}/.well-known/openid-configuration"), &[])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v1["token_endpoint"], format!("{a}/{TENANT}/oauth2/token"));

    let (s, body) = m
        .get(
            &format!("{a}/not-a-tenant/v2.0/.well-known/openid-configuration"),
            &[],
        )
        .await;
    assert_aad_error(&m, s, &body, 400, "invalid_tenant", 90002);

    // MSAL's instance discovery, as MSAL Python calls it.
    let (s, inst) = m
        .get(
            &format!("{a}/common/discovery/instance?api-version=1.1&authorization_endpoint={a}/{TENANT}/oauth2/v2.0/authorize"),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        inst["tenant_discovery_endpoint"],
        format!("{a}/{TENANT}/v2.0/.well-known/openid-configuration")
    );
    let host = a.trim_start_matches("https://");
    assert_eq!(inst["metadata"][0]["preferred_network"], host);
    assert_eq!(inst["metadata"][0]["aliases"], json!([host]));
    let (s, body) = m
        .get(
            &format!("{a}/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize"),
            &[],
        )
        .await;
    assert_aad_error(&m, s, &body, 400, "invalid_instance", 50049);

    // The federated issuer's discovery and keys verify the token it issued.
    let issuer = m.ready().extra["oidc_issuer"].as_str().unwrap().to_string();
    let (s, fed) = m
        .get(&format!("{issuer}/.well-known/openid-configuration"), &[])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(fed["issuer"], issuer);
    let (s, jwks) = m.get(fed["jwks_uri"].as_str().unwrap(), &[]).await;
    assert_eq!(s, StatusCode::OK);
    let token = std::fs::read_to_string(&m.ready().federated_token_file).unwrap();
    let kid = jwt_part(&token, 0)["kid"].clone();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("token kid in JWKS");
    let components = signature::RsaPublicKeyComponents {
        n: B64.decode(jwk["n"].as_str().unwrap()).unwrap(),
        e: B64.decode(jwk["e"].as_str().unwrap()).unwrap(),
    };
    let (input, sig) = token.trim().rsplit_once('.').unwrap();
    components
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &B64.decode(sig).unwrap(),
        )
        .expect("federated token verifies with the published key");
}

#[tokio::test]
async fn imds_system_and_user_assigned() {
    let m = Mock::default().await;
    let r = m.ready();
    let base = format!(
        "{}?api-version=2018-02-01&resource=https://management.azure.com/",
        r.imds_endpoint
    );
    let md = [("Metadata", "true")];
    let ua = &r.extra["user_assigned_identity"];
    assert_eq!(
        ua["resource_id"],
        format!(
            "/subscriptions/{SUB}/resourceGroups/identity-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/azaudit-mi"
        )
    );

    let (s, body) = m.get(&base, &md).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for k in ["expires_in", "expires_on", "ext_expires_in", "not_before"] {
        let v = body[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} is a string: {body}"));
        assert!(v.parse::<i64>().is_ok(), "{k} = {v}");
    }
    assert_eq!(body["expires_in"], "3599");
    assert_eq!(body["resource"], "https://management.azure.com/");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["client_id"], r.extra["system_assigned_client_id"]);
    let c = m.claims(body["access_token"].as_str().unwrap());
    assert_eq!(c.oid, r.extra["system_assigned_object_id"].as_str().unwrap());
    assert_eq!(c.idtyp, "mi");
    assert_eq!(c.aud, "https://management.azure.com/");

    let by_resource_id = ua["resource_id"].as_str().unwrap().to_ascii_lowercase();
    for q in [
        format!("client_id={}", ua["client_id"].as_str().unwrap()),
        format!("object_id={}", ua["object_id"].as_str().unwrap()),
        format!("msi_res_id={by_resource_id}"),
    ] {
        let (s, body) = m.get(&format!("{base}&{q}"), &md).await;
        assert_eq!(s, StatusCode::OK, "{q}: {body}");
        assert_eq!(body["client_id"], ua["client_id"], "{q}");
        assert_eq!(
            m.claims(body["access_token"].as_str().unwrap()).oid,
            ua["object_id"].as_str().unwrap()
        );
    }

    let (s, body) = m.get(&base, &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Required metadata header not specified"})
    );

    for q in [
        "client_id=99999999-9999-4999-8999-999999999999".to_string(),
        // A service principal is not a managed identity of this "VM".
        format!("client_id={}", r.client_id),
        "msi_res_id=/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/z".to_string(),
    ] {
        let (s, body) = m.get(&format!("{base}&{q}"), &md).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(body, json!({"error": "invalid_request", "error_description": "Identity not found"}), "{q}");
    }

    let (s, body) = m
        .get(
            &format!(
                "{}?api-version=2018-02-01&resource=https://vault.azure.net",
                r.imds_endpoint
            ),
            &md,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_resource");

    assert_eq!(m.mock.stats().msi_requests, 9);
}

#[tokio::test]
async fn app_service_identity_endpoint() {
    let m = Mock::default().await;
    let r = m.ready();
    assert!(!r.identity_header.is_empty());
    let base = format!(
        "{}?api-version=2019-08-01&resource=https://management.azure.com",
        r.identity_endpoint
    );
    let hdr = [("X-IDENTITY-HEADER", r.identity_header.as_str())];

    let (s, body) = m.get(&base, &hdr).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let expires_on: i64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    assert!((expires_on - now_unix() - 3599).abs() < 60);
    assert_eq!(body["resource"], "https://management.azure.com");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        m.claims(body["access_token"].as_str().unwrap()).oid,
        r.extra["system_assigned_object_id"].as_str().unwrap()
    );

    let ua = &r.extra["user_assigned_identity"];
    for q in [
        format!("client_id={}", ua["client_id"].as_str().unwrap()),
        format!("object_id={}", ua["object_id"].as_str().unwrap()),
        format!("mi_res_id={}", ua["resource_id"].as_str().unwrap()),
    ] {
        let (s, body) = m.get(&format!("{base}&{q}"), &hdr).await;
        assert_eq!(s, StatusCode::OK, "{q}: {body}");
        assert_eq!(body["client_id"], ua["client_id"]);
        let c = m.claims(body["access_token"].as_str().unwrap());
        assert_eq!(
            (c.oid.as_str(), c.idtyp.as_str()),
            (ua["object_id"].as_str().unwrap(), "mi")
        );
    }

    let (s, body) = m.get(&base, &[("X-IDENTITY-HEADER", "wrong")]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["statusCode"], 401);
    let (s, body) = m.get(&base, &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["statusCode"], 400);
    let (s, body) = m
        .get(
            &format!("{base}&client_id=99999999-9999-4999-8999-999999999999"),
            &hdr,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Unable to load the proper Managed Identity.");
}

#[tokio::test]
async fn short_tokens_fault_shortens_every_token() {
    let m = Mock::start(MockConfig {
        faults: vec![Fault::ShortTokens { seconds: 5 }],
        ..MockConfig::default()
    })
    .await;
    let r = m.ready();
    let (s, body) = m.secret_token(&r.client_id, &r.client_secret).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["expires_in"], 5);
    assert_eq!(body["ext_expires_in"], 5);
    let c = m.claims(body["access_token"].as_str().unwrap());
    assert_eq!(c.exp - c.iat, 5);

    let (s, body) = m
        .get(
            &format!(
                "{}?api-version=2018-02-01&resource=https://management.azure.com",
                r.imds_endpoint
            ),
            &[("Metadata", "true")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["expires_in"], "5");
    assert_eq!(m.mock.stats().faults_injected.get("short_tokens"), Some(&2));
}

#[tokio::test]
async fn ready_file_principals_and_private_files() {
    let extra_principal = PrincipalConfig {
        client_id: "abcdef01-2345-4678-89ab-cdef01234567".into(),
        client_secret: Some("world-json-secret".into()),
        ..PrincipalConfig::default()
    };
    let m = Mock::start(MockConfig {
        principals: vec![extra_principal],
        ..MockConfig::default()
    })
    .await;
    let r = m.ready().clone();

    let labels: BTreeSet<String> = r.extra["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            for k in ["client_id", "object_id", "kind"] {
                assert!(p[k].as_str().is_some_and(|s| !s.is_empty()), "{k} of {p}");
            }
            p["label"].as_str().unwrap().to_string()
        })
        .collect();
    let want: BTreeSet<String> = [
        "contributor",
        "reader",
        "no-access",
        "expired-cert",
        "workload",
        "system-assigned",
        "user-assigned",
        "config:abcdef01-2345-4678-89ab-cdef01234567",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(labels, want);
    assert_eq!(
        m.principal("contributor")["client_certificate"],
        r.client_certificate
    );
    assert_eq!(m.principal("system-assigned")["kind"], "system_assigned");
    assert_eq!(m.principal("user-assigned")["kind"], "user_assigned");
    assert_eq!(
        m.principal("system-assigned")["object_id"],
        r.extra["system_assigned_object_id"]
    );
    assert_eq!(
        m.principal("user-assigned")["client_id"],
        r.extra["user_assigned_identity"]["client_id"]
    );
    assert!(
        r.extra["oidc_issuer"]
            .as_str()
            .unwrap()
            .starts_with(&m.authority())
    );

    // The world.json principal authenticates with its secret.
    let (s, body) = m
        .secret_token("abcdef01-2345-4678-89ab-cdef01234567", "world-json-secret")
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // Credential files are private to their owner.
    let pfx_path = m.extra_path("client_certificate_pfx");
    for p in [
        PathBuf::from(&r.client_certificate),
        m.extra_path("expired_client_certificate"),
        pfx_path.clone(),
        PathBuf::from(&r.federated_token_file),
    ] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }

    // The PFX holds the same certificate and key as client.pem, under the given password.
    let (cert, key) = read_pem(Path::new(&r.client_certificate));
    let pfx = std::fs::read(&pfx_path).unwrap();
    let store =
        p12_keystore::KeyStore::from_pkcs12(&pfx, r.extra["client_certificate_password"].as_str().unwrap())
            .expect("PFX opens with its password");
    let (_, chain) = store.private_key_chain().unwrap();
    assert_eq!(chain.key(), key.as_slice());
    assert_eq!(chain.chain()[0].as_der(), cert.as_slice());
    assert!(p12_keystore::KeyStore::from_pkcs12(&pfx, "wrong password").is_err());

    // The ready file round-trips with its extra fields flattened in.
    let json = serde_json::to_string(&r).unwrap();
    let back: azaudit_mocks::ReadyInfo = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    assert!(serde_json::from_str::<Value>(&json).unwrap()["workload_identity_client_id"].is_string());

    // Another start: same ids (derived from tenant and label), fresh secrets and certificates.
    let other = Mock::default().await;
    assert_eq!(other.ready().client_id, r.client_id);
    assert_ne!(other.ready().client_secret, r.client_secret);
    assert_ne!(
        other.principal("reader")["client_secret"],
        m.principal("reader")["client_secret"]
    );
    let (other_cert, _) = read_pem(Path::new(&other.ready().client_certificate));
    assert_ne!(other_cert, cert);
}
