//! Azure CLI tokens for interactive one-off audits: `az account get-access-token --resource
//! <audience> [--tenant <t>] -o json`, as azidentity's `AzureCLICredential` runs it.
//!
//! The output's `accessToken` is a secret and never logged; the expiry comes from `expires_on`
//! (unix seconds, az ≥ 2.54). Older versions only print `expiresOn` as a local time without a
//! zone, which cannot be read reliably, so such tokens are treated as valid for 5 minutes (az
//! caches tokens, so re-running it is cheap). The binary is `az` on PATH, or `AZAUDIT_AZ_PATH`;
//! loopback-only mode refuses to run the real `az` (it would contact Azure).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use super::AuthError;
use super::token::{self, Token};
use crate::secret::Secret;

/// `az` can take a while (it may refresh its own tokens), but must not hang an audit.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Lifetime assumed when az does not say when the token expires in a readable way.
const ASSUMED_LIFETIME_SECS: i64 = 300;

#[derive(Debug, Clone)]
pub struct AzureCli {
    /// The executable (`az` on PATH unless given).
    pub program: PathBuf,
    pub explicit_program: bool,
    pub tenant: Option<String>,
    pub loopback_only: bool,
}

impl AzureCli {
    pub fn describe(&self) -> String {
        format!("{} account get-access-token", self.program.display())
    }

    pub async fn fetch(&self, resource: &str) -> Result<Token, AuthError> {
        if self.loopback_only && !self.explicit_program {
            return Err(AuthError::LoopbackOnly {
                target: "the Azure CLI (`az` on PATH would contact Azure; set AZAUDIT_AZ_PATH)".into(),
            });
        }
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args([
            "account",
            "get-access-token",
            "--resource",
            resource,
            "-o",
            "json",
        ]);
        if let Some(t) = &self.tenant {
            cmd.args(["--tenant", t]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| AuthError::AzureCli {
            problem: if e.kind() == std::io::ErrorKind::NotFound {
                format!("{} is not installed (not found)", self.program.display())
            } else {
                format!("cannot run {} ({e})", self.program.display())
            },
            fix: "install the Azure CLI (https://learn.microsoft.com/cli/azure/install-azure-cli) and run `az login`, or choose another --auth".into(),
        })?;
        let out = match tokio::time::timeout(TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                return Err(AuthError::AzureCli {
                    problem: format!("running az failed ({e})"),
                    fix: "run `az account get-access-token` yourself to see what is wrong".into(),
                });
            }
            Err(_) => {
                return Err(AuthError::AzureCli {
                    problem: format!("az did not answer within {} s", TIMEOUT.as_secs()),
                    fix: "run `az account get-access-token` yourself to see what is wrong".into(),
                });
            }
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // The first meaningful line; az prints tracebacks below it on some failures.
            let first = stderr
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no error output")
                .trim_start_matches("ERROR: ")
                .to_string();
            let lower = stderr.to_ascii_lowercase();
            let fix = if lower.contains("az login") {
                match &self.tenant {
                    Some(t) => format!(
                        "run `az login --tenant {t}` (service principals: `az login --service-principal ...`)"
                    ),
                    None => "run `az login` (service principals: `az login --service-principal ...`)".into(),
                }
            } else if lower.contains("aadsts") {
                "run `az login` again; your CLI session was refused by Entra ID".into()
            } else {
                "run `az account get-access-token` yourself to see what is wrong".into()
            };
            return Err(AuthError::AzureCli {
                problem: format!("az exited with {}: {first}", out.status),
                fix,
            });
        }
        let json: Value = serde_json::from_slice(&out.stdout).map_err(|_| AuthError::AzureCli {
            problem: "az printed something that is not JSON".into(),
            fix: "update the Azure CLI (`az upgrade`)".into(),
        })?;
        parse_output(&json, OffsetDateTime::now_utc())
    }
}

/// Reads `az account get-access-token -o json`.
pub fn parse_output(json: &Value, now: OffsetDateTime) -> Result<Token, AuthError> {
    let value = json
        .get("accessToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::AzureCli {
            problem: "az's output has no accessToken".into(),
            fix: "update the Azure CLI (`az upgrade`)".into(),
        })?;
    let expires_on = match token::number(json.get("expires_on")) {
        Some(t) if t > 0 => OffsetDateTime::from_unix_timestamp(t).unwrap_or(now),
        _ => now + time::Duration::seconds(ASSUMED_LIFETIME_SECS),
    };
    Ok(Token {
        value: Secret::new(value),
        expires_on,
        obtained_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_shapes() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let t = parse_output(
            &serde_json::json!({"accessToken":"a","expiresOn":"2024-01-01 10:00:00.000000","expires_on":5000,"tokenType":"Bearer"}),
            now,
        )
        .unwrap();
        assert_eq!(t.expires_on.unix_timestamp(), 5000);
        let t = parse_output(
            &serde_json::json!({"accessToken":"a","expiresOn":"2024-01-01 10:00:00.000000"}),
            now,
        )
        .unwrap();
        assert_eq!(t.expires_on.unix_timestamp(), 1_300);
        assert!(parse_output(&serde_json::json!({}), now).is_err());
    }
}
