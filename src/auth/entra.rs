//! Entra ID's client-credentials token request (domain.md §7.1) with a client secret or a
//! client assertion (certificate JWT or federated token), and the translation of Entra's error
//! answers (`error`, `error_description` with `AADSTSnnnn`, `error_codes`) into a cause and a
//! fix an operator can act on.
//!
//! Error codes and meanings: https://learn.microsoft.com/entra/identity-platform/reference-error-codes.
//! This module never logs the request body (it carries the secret or the assertion) or the
//! response body of a success (it carries the token).

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use super::token::{self, Token};
use super::{AuthError, guard};
use crate::secret::Secret;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Per-request timeout of token requests.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts for 429 and 5xx answers of the token endpoint (transient by definition).
const ATTEMPTS: u32 = 3;

/// What the client proves itself with.
pub enum Proof<'a> {
    Secret(&'a Secret),
    /// A JWT: a certificate assertion we signed, or the workload identity token.
    Assertion(Secret),
}

/// Which credential the request is for, so that error fixes name the right thing.
#[derive(Debug, Clone)]
pub enum Flavour {
    Secret,
    Certificate { path: String },
    Workload { token_file: String },
}

/// `https://<authority>/<tenant>/oauth2/v2.0/token`. The tenant is checked so it cannot change
/// the path (it comes from flags, env and files).
pub fn token_url(authority: &Url, tenant: &str) -> Result<Url, AuthError> {
    let ok = !tenant.is_empty()
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if !ok {
        return Err(AuthError::Invalid {
            what: format!("tenant id {tenant:?}"),
            fix: "give the directory (tenant) id GUID or its domain name (contoso.onmicrosoft.com) in --tenant-id or AZURE_TENANT_ID".into(),
        });
    }
    authority
        .join(&format!("{tenant}/oauth2/v2.0/token"))
        .map_err(|e| AuthError::Invalid {
            what: format!("authority host {authority}: {e}"),
            fix: "give an absolute https:// URL in --authority-host".into(),
        })
}

#[allow(clippy::too_many_arguments)]
pub async fn request_token(
    http: &reqwest::Client,
    authority: &Url,
    tenant: &str,
    client_id: &str,
    scope: &str,
    proof: Proof<'_>,
    flavour: &Flavour,
    loopback_only: bool,
) -> Result<Token, AuthError> {
    let url = token_url(authority, tenant)?;
    guard::check(&url, loopback_only)?;
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("scope", scope),
    ];
    let (assertion_claims, proof_value);
    match &proof {
        Proof::Secret(s) => {
            proof_value = s.expose().to_string();
            form.push(("client_secret", &proof_value));
            assertion_claims = None;
        }
        Proof::Assertion(a) => {
            proof_value = a.expose().to_string();
            form.push(("client_assertion_type", JWT_BEARER));
            form.push(("client_assertion", &proof_value));
            assertion_claims = token::claims(a);
        }
    }
    let step = "token request";
    let mut attempt = 0;
    loop {
        attempt += 1;
        let resp = http
            .post(url.clone())
            .timeout(TIMEOUT)
            .header("Accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| AuthError::from_reqwest(step, &url, &e))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = resp
            .bytes()
            .await
            .map_err(|e| AuthError::from_reqwest(step, &url, &e))?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if status.is_success() {
            let json = json.ok_or_else(|| AuthError::BadResponse {
                step,
                url: guard::redact_url(&url),
                status: status.as_u16(),
                detail: "the body is not JSON".into(),
            })?;
            return token::from_response(&json, OffsetDateTime::now_utc()).map_err(|detail| {
                AuthError::BadResponse {
                    step,
                    url: guard::redact_url(&url),
                    status: status.as_u16(),
                    detail,
                }
            });
        }
        if (status.as_u16() == 429 || status.is_server_error()) && attempt < ATTEMPTS {
            let wait = retry_after.unwrap_or(u64::from(attempt)).min(10);
            tracing::info!(
                status = status.as_u16(),
                wait_s = wait,
                "token endpoint busy; retrying"
            );
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        return Err(match json.as_ref().filter(|j| j.get("error").is_some()) {
            Some(j) => entra_error(j, tenant, client_id, scope, flavour, assertion_claims.as_ref()),
            None => AuthError::BadResponse {
                step,
                url: guard::redact_url(&url),
                status: status.as_u16(),
                detail: format!(
                    "not an Entra ID error body: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
                ),
            },
        });
    }
}

/// The first sentence group of an Entra `error_description`, without the trace/correlation ids
/// and timestamp Entra appends (they change on every request).
pub fn short_description(d: &str) -> String {
    let cut = d.find(" Trace ID:").unwrap_or(d.len());
    d[..cut].trim().to_string()
}

/// The AADSTS code of an error body: `error_codes[0]`, else parsed from the description.
pub fn aadsts_code(j: &Value) -> Option<u32> {
    if let Some(n) = j
        .get("error_codes")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_u64)
    {
        return u32::try_from(n).ok();
    }
    let d = j.get("error_description")?.as_str()?;
    let rest = &d[d.find("AADSTS")? + 6..];
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// Maps an Entra error body to an [`AuthError::Entra`] with the cause and the fix.
pub fn entra_error(
    j: &Value,
    tenant: &str,
    client_id: &str,
    scope: &str,
    flavour: &Flavour,
    assertion: Option<&Value>,
) -> AuthError {
    let error = j.get("error").and_then(Value::as_str).unwrap_or("").to_string();
    let description = short_description(j.get("error_description").and_then(Value::as_str).unwrap_or(""));
    let code = aadsts_code(j);
    let (cause, fix) = cause_and_fix(
        code,
        &error,
        &description,
        tenant,
        client_id,
        scope,
        flavour,
        assertion,
    );
    AuthError::Entra(Box::new(super::EntraFailure {
        tenant: tenant.to_string(),
        client_id: client_id.to_string(),
        code: code
            .map(|c| format!("AADSTS{c}"))
            .unwrap_or_else(|| error.clone()),
        cause,
        fix,
        detail: description,
    }))
}

#[allow(clippy::too_many_arguments)]
fn cause_and_fix(
    code: Option<u32>,
    error: &str,
    description: &str,
    tenant: &str,
    client: &str,
    scope: &str,
    flavour: &Flavour,
    assertion: Option<&Value>,
) -> (String, String) {
    let reset_secret = format!(
        "create a new secret with `az ad app credential reset --id {client} --append` and pass its Value (not its Secret ID) in AZURE_CLIENT_SECRET"
    );
    let upload_cert = |path: &str| {
        format!(
            "register the certificate on the application: `az ad app credential reset --id {client} --cert @{path} --append` (or upload it under App registrations → Certificates & secrets), or use a certificate that is registered and valid"
        )
    };
    let claim = |k: &str| {
        assertion
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .unwrap_or("<issuer>")
            .to_string()
    };
    match (code, flavour) {
        (Some(7000215), _) => (
            "the client secret is wrong (or it is the secret's ID rather than its value)".into(),
            reset_secret,
        ),
        (Some(7000222), _) => ("the client secret has expired".into(), reset_secret),
        (Some(700016), _) => (
            format!("no application with client id {client} exists in tenant {tenant}"),
            format!(
                "check --client-id / AZURE_CLIENT_ID and --tenant-id / AZURE_TENANT_ID: `az ad sp show --id {client}` shows the application and its tenant (appOwnerOrganizationId); the app may live in another tenant or have been deleted"
            ),
        ),
        (Some(90002 | 900023 | 90072 | 90013), _) => (
            format!("tenant {tenant} does not exist in this cloud"),
            "check --tenant-id / AZURE_TENANT_ID (`az account show --query tenantId -o tsv`) and --cloud: a tenant of one Azure cloud is unknown to the others".into(),
        ),
        (Some(700024), Flavour::Workload { token_file }) => (
            "the federated service-account token is outside its validity period (expired or not yet valid)".into(),
            format!(
                "{token_file} should be rotated by kubelet: check that the pod mounts the projected token (azure.workload.identity/use: \"true\" label) and that azaudit reads the live file, and that the node clock is right"
            ),
        ),
        (Some(700024), _) => (
            "the client assertion is outside its validity period".into(),
            "check this machine's clock (NTP): assertions are valid for 10 minutes from their creation".into(),
        ),
        (Some(700027), Flavour::Certificate { path }) if description.to_ascii_lowercase().contains("expired") => (
            "the certificate registered on the application has expired".into(),
            upload_cert(path),
        ),
        (Some(700027), Flavour::Certificate { path }) => (
            "the certificate is not registered on the application (its thumbprint is unknown to Entra ID), or the signature does not verify".into(),
            upload_cert(path),
        ),
        (Some(700027), Flavour::Workload { .. }) => (
            "the federated token's signature does not verify against the issuer's published keys".into(),
            format!(
                "check that the cluster's OIDC issuer ({}) serves its current signing keys (JWKS) and that the federated credential names that issuer",
                claim("iss")
            ),
        ),
        (Some(70021 | 700211 | 700212 | 700213), _) => {
            let (iss, sub) = (claim("iss"), claim("sub"));
            (
                format!(
                    "no federated identity credential on application {client} matches the token (issuer {iss}, subject {sub})"
                ),
                format!(
                    "add one: `az ad app federated-credential create --id {client} --parameters '{{\"name\":\"azaudit\",\"issuer\":\"{iss}\",\"subject\":\"{sub}\",\"audiences\":[\"api://AzureADTokenExchange\"]}}'` (for a user-assigned identity: `az identity federated-credential create --identity-name <name> --resource-group <rg> --name azaudit --issuer {iss} --subject {sub}`); the issuer is `az aks show --query oidcIssuerProfile.issuerUrl -o tsv`"
                ),
            )
        }
        (Some(700021), _) => (
            "the client assertion was made for another client id".into(),
            "check --client-id / AZURE_CLIENT_ID".into(),
        ),
        (Some(700023), _) => (
            "the client assertion's audience does not match this tenant's token endpoint".into(),
            "check --authority-host and --tenant-id".into(),
        ),
        (Some(7000218 | 900144), _) => (
            "the request carried no credential".into(),
            "give a client secret (AZURE_CLIENT_SECRET) or a certificate (AZURE_CLIENT_CERTIFICATE_PATH)".into(),
        ),
        (Some(70011), _) => (
            format!("the scope {scope} is not valid"),
            "check --audience (or the cloud's audience); it must be an API URL such as https://management.azure.com/".into(),
        ),
        (Some(500011), _) => (
            format!(
                "the token audience {} is not known in tenant {tenant}",
                scope.trim_end_matches("/.default")
            ),
            "check --cloud, --arm-endpoint and --audience: the audience must be the ARM endpoint of the cloud the tenant lives in".into(),
        ),
        (Some(7000112), _) => (
            format!("application {client} is disabled"),
            "enable it (Enterprise applications → Properties → Enabled for users to sign-in) or use another principal".into(),
        ),
        (Some(53003), _) => (
            "a Conditional Access policy blocks this sign-in".into(),
            "ask your Entra ID administrator to allow this workload identity (or this network location) in Conditional Access".into(),
        ),
        (Some(50049), _) | (None, _) if error == "invalid_instance" => (
            "the authority host is not a known Entra ID instance".into(),
            "check --authority-host / AZURE_AUTHORITY_HOST and --cloud".into(),
        ),
        (Some(n), _) => (
            if description.is_empty() {
                format!("Entra ID answered {error} (AADSTS{n})")
            } else {
                description.to_string()
            },
            format!("look the code up at https://login.microsoftonline.com/error?code={n}"),
        ),
        (None, _) => (
            format!("Entra ID answered {error}: {description}"),
            "check the tenant, the client id and the credential".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: u32, error: &str, desc: &str) -> Value {
        serde_json::json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {desc} Trace ID: 1 Correlation ID: 2 Timestamp: 3"),
            "error_codes": [code],
        })
    }

    #[test]
    fn codes_map_to_causes_and_fixes() {
        let e = entra_error(
            &body(7000215, "invalid_client", "Invalid client secret provided."),
            "t",
            "c",
            "s/.default",
            &Flavour::Secret,
            None,
        );
        let m = e.to_string();
        assert!(m.contains("client secret is wrong"), "{m}");
        assert!(m.contains("az ad app credential reset --id c"), "{m}");
        assert!(m.contains("AADSTS7000215"), "{m}");
        assert!(!m.contains("Trace ID"), "{m}");

        let m = entra_error(
            &body(700016, "unauthorized_client", "x"),
            "t",
            "c",
            "s",
            &Flavour::Secret,
            None,
        )
        .to_string();
        assert!(
            m.contains("no application with client id c exists in tenant t"),
            "{m}"
        );
        let m = entra_error(
            &body(90002, "invalid_request", "x"),
            "t",
            "c",
            "s",
            &Flavour::Secret,
            None,
        )
        .to_string();
        assert!(m.contains("tenant t does not exist"), "{m}");
        let cert = Flavour::Certificate {
            path: "/p.pem".into(),
        };
        let m = entra_error(
            &body(
                700027,
                "invalid_client",
                "Client assertion contains an invalid signature. [Reason - The key used is expired.]",
            ),
            "t",
            "c",
            "s",
            &cert,
            None,
        )
        .to_string();
        assert!(m.contains("has expired") && m.contains("--cert @/p.pem"), "{m}");
        let m = entra_error(
            &body(700027, "invalid_client", "The key was not found."),
            "t",
            "c",
            "s",
            &cert,
            None,
        )
        .to_string();
        assert!(m.contains("not registered"), "{m}");
        let claims = serde_json::json!({"iss": "https://issuer", "sub": "system:serviceaccount:a:b"});
        let m = entra_error(
            &body(
                700211,
                "invalid_client",
                "No matching federated identity record found",
            ),
            "t",
            "c",
            "s",
            &Flavour::Workload {
                token_file: "/f".into(),
            },
            Some(&claims),
        )
        .to_string();
        assert!(
            m.contains("federated-credential create") && m.contains("system:serviceaccount:a:b"),
            "{m}"
        );
        let m = entra_error(
            &body(700024, "invalid_client", "x"),
            "t",
            "c",
            "s",
            &Flavour::Workload {
                token_file: "/f".into(),
            },
            None,
        )
        .to_string();
        assert!(m.contains("/f should be rotated by kubelet"), "{m}");
        let m = entra_error(
            &body(123456, "invalid_request", "Something new."),
            "t",
            "c",
            "s",
            &Flavour::Secret,
            None,
        )
        .to_string();
        assert!(m.contains("Something new.") && m.contains("code=123456"), "{m}");
        // The code is read from the description when error_codes is missing.
        assert_eq!(
            aadsts_code(&serde_json::json!({"error_description": "AADSTS700016: x"})),
            Some(700016)
        );
    }

    #[test]
    fn token_url_refuses_path_tricks() {
        let a = Url::parse("https://login.example/").unwrap();
        assert_eq!(
            token_url(&a, "contoso.onmicrosoft.com").unwrap().as_str(),
            "https://login.example/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert!(token_url(&a, "../x").is_err());
        assert!(token_url(&a, "").is_err());
    }
}
