//! What can go wrong talking to ARM, one variant per failed step, each message saying what is
//! wrong and what to do. The collector turns these into gaps (`inventory::Gap`) with
//! [`ArmError::to_string`] as the cause.
//!
//! Must not carry secrets: no tokens, no request headers; only URLs, ARM's error codes and
//! messages, and our own hints.

use std::time::Duration;

use super::args::format_duration;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArmError {
    /// 403: the principal lacks a role on the scope.
    #[error("ARM refused access ({code}): {message}. Fix: {action_hint}")]
    Forbidden {
        code: String,
        message: String,
        action_hint: String,
    },
    /// 404.
    #[error(
        "ARM found nothing at {url} ({code}): {message}. Check the subscription id, resource group and name, and that the resource provider is registered in the subscription"
    )]
    NotFound {
        url: String,
        code: String,
        message: String,
    },
    /// 401, also after the token was refreshed once.
    #[error(
        "ARM rejected the access token for {url} ({code}): {message}. The token was refreshed once and was still refused: check that the credential belongs to the subscription's tenant and that the cloud (--cloud / --arm-endpoint) matches where the subscription lives; `azaudit doctor` shows which credential is used"
    )]
    Unauthorized {
        url: String,
        code: String,
        message: String,
    },
    /// ARM asked to wait (429, or 503 with Retry-After) beyond the overall deadline.
    #[error(
        "ARM is throttling {url} and asked to wait {} more, which is past the overall --timeout of {}: rerun later, lower --max-rps if azaudit shares the subscription with busy clients, or raise --timeout",
        format_duration(*.retry_after),
        format_duration(*.timeout)
    )]
    Throttled {
        url: String,
        retry_after: Duration,
        timeout: Duration,
    },
    /// The overall deadline passed while waiting for ARM.
    #[error(
        "the overall --timeout of {} ran out while {waiting_for} ({url}): raise --timeout or narrow the audit (fewer subscriptions); what was read before is kept and the run is reported incomplete",
        format_duration(*.timeout)
    )]
    Deadline {
        url: String,
        waiting_for: String,
        timeout: Duration,
    },
    /// 5xx after the bounded retries.
    #[error(
        "ARM kept failing with HTTP {status} ({code}) after every retry: this is on Azure's side; rerun later, and check https://status.azure.com if it persists"
    )]
    Server { status: u16, code: String },
    /// Another 4xx.
    #[error(
        "ARM refused the request {url} with HTTP {status} ({code}): {message}. This request is built by azaudit: report it with this message"
    )]
    Request {
        url: String,
        status: u16,
        code: String,
        message: String,
    },
    /// A 200 whose body is not the JSON page ARM sends, after the bounded retries.
    #[error(
        "ARM's answer for {url} is not a valid JSON page ({detail}), even after retries: something between azaudit and ARM (a proxy, a TLS-inspecting firewall, a flaky link) is cutting or rewriting responses; rerun, or check the proxy"
    )]
    DecodePage { url: String, detail: String },
    /// A `nextLink` names another host than the ARM endpoint; it was not followed.
    #[error(
        "ARM's paging link points at another host ({host}) than the configured ARM endpoint; it was not followed and no token was sent there. If you use a custom cloud, check --arm-endpoint; otherwise report this, the list is incomplete"
    )]
    ForeignNextLink { host: String },
    /// A request for another host than the ARM endpoint was refused before it was sent.
    #[error(
        "refused to send a request to {host}: only the ARM endpoint {expected} receives requests and tokens. Pass ARM-relative paths (\"/subscriptions/...\"), or fix --arm-endpoint"
    )]
    HostRefused { host: String, expected: String },
    /// A `nextLink` leads back to a page already read.
    #[error(
        "ARM's paging loops back to a page already read ({url}); it was not followed again. The list is incomplete: rerun, and report it to Azure support if it persists"
    )]
    NextLinkLoop { url: String },
    /// Network, TLS or timeout failure, after the bounded retries where retrying makes sense.
    #[error("could not reach ARM: {0}")]
    Transport(String),
    /// The credential could not produce a token.
    #[error(
        "could not get an access token for ARM: {0}. Run `azaudit doctor` to see which credential is used and why it fails"
    )]
    Token(String),
    /// The response cache directory cannot be used safely.
    #[error(
        "the response cache at {path} cannot be used: {detail}. Fix it, choose another --cache-dir, or run with --no-cache"
    )]
    Cache { path: String, detail: String },
    /// Options or arguments that cannot work (a programming or configuration error).
    #[error("invalid ARM client setup: {0}")]
    Invalid(String),
    /// 412 to a write: the resource's ETag is no longer the one sent in `If-Match`.
    #[error(
        "ARM refused the write to {url} (412 PreconditionFailed): the resource changed since azaudit read it ({message}). Nothing was written; it was not retried. Run `azaudit cleanup plan` again to review the resource as it is now"
    )]
    PreconditionFailed { url: String, message: String },
    /// 409 `ScopeLocked`: a management lock covers the resource.
    #[error(
        "a management lock blocks the write to {url} (409 ScopeLocked): {message}. azaudit never removes locks: if this cleanup is wanted, have the lock's owner remove it (az lock list --resource <id>), otherwise leave the resource; it was not retried"
    )]
    Locked { url: String, message: String },
    /// Another 409 (an operation in progress on the resource, ...).
    #[error(
        "ARM refused the write to {url} with 409 {code}: {message}. Another operation is probably running on it; run the apply again later"
    )]
    Conflict {
        url: String,
        code: String,
        message: String,
    },
    /// 400 because the resource is still in use (a public IP allocated to an IP configuration,
    /// an NSG associated with a subnet).
    #[error(
        "ARM refused to change {url} because it is still in use ({code}): {message}. Detach it from what uses it first; it was not retried"
    )]
    InUse {
        url: String,
        code: String,
        message: String,
    },
    /// A long-running operation ended `Failed` or `Canceled`.
    #[error(
        "ARM's operation for {url} ended {status} ({code}): {message}. Look the resource up in the activity log (az monitor activity-log list --resource-id <id>) before trying again"
    )]
    OperationFailed {
        url: String,
        status: String,
        code: String,
        message: String,
    },
}

impl ArmError {
    /// A short name of the failed step, for logs and JSON reports.
    pub fn step(&self) -> &'static str {
        match self {
            ArmError::Forbidden { .. } => "forbidden",
            ArmError::NotFound { .. } => "not-found",
            ArmError::Unauthorized { .. } => "unauthorized",
            ArmError::Throttled { .. } => "throttled",
            ArmError::Deadline { .. } => "deadline",
            ArmError::Server { .. } => "server-error",
            ArmError::Request { .. } => "bad-request",
            ArmError::DecodePage { .. } => "decode-page",
            ArmError::ForeignNextLink { .. } => "foreign-next-link",
            ArmError::HostRefused { .. } => "host-refused",
            ArmError::NextLinkLoop { .. } => "next-link-loop",
            ArmError::Transport(_) => "transport",
            ArmError::Token(_) => "token",
            ArmError::Cache { .. } => "cache",
            ArmError::Invalid(_) => "invalid",
            ArmError::PreconditionFailed { .. } => "precondition-failed",
            ArmError::Locked { .. } => "locked",
            ArmError::Conflict { .. } => "conflict",
            ArmError::InUse { .. } => "in-use",
            ArmError::OperationFailed { .. } => "operation-failed",
        }
    }
}

/// ARM's error body: `{"error": {"code", "message"}}` (sometimes without the wrapper).
pub(crate) fn arm_error_parts(body: &[u8]) -> (String, String) {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.chars().take(200).collect();
            return ("(no code)".into(), text.trim().to_string());
        }
    };
    let inner = crate::inventory::json::get(&v, "error").unwrap_or(&v);
    let code = crate::inventory::json::str_at(inner, &["code"]).unwrap_or_else(|| "(no code)".into());
    let message = crate::inventory::json::str_at(inner, &["message"]).unwrap_or_default();
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let (c, m) = arm_error_parts(br#"{"error":{"code":"AuthorizationFailed","message":"no"}}"#);
        assert_eq!((c.as_str(), m.as_str()), ("AuthorizationFailed", "no"));
        let (c, m) = arm_error_parts(br#"{"Code":"X","Message":"y"}"#);
        assert_eq!((c.as_str(), m.as_str()), ("X", "y"));
        let (c, m) = arm_error_parts(b"<html>bad gateway</html>");
        assert_eq!(c, "(no code)");
        assert!(m.contains("bad gateway"));
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = ArmError::Throttled {
            url: "https://x/".into(),
            retry_after: Duration::from_secs(30),
            timeout: Duration::from_secs(600),
        };
        let s = e.to_string();
        assert!(
            s.contains("30s") && s.contains("10m") && s.contains("raise --timeout"),
            "{s}"
        );
        let e = ArmError::ForeignNextLink {
            host: "evil.example".into(),
        };
        assert!(e.to_string().contains("evil.example"));
        assert_eq!(e.step(), "foreign-next-link");
    }
}
