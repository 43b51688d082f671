//! Writes (issue 7, `azaudit cleanup apply`): PUT and DELETE with `If-Match`, then the
//! long-running operation followed to its terminal state, and fresh reads that bypass the cache.
//!
//! How a write travels:
//! - through the write pipeline: the same host guard, retry policy and bearer transport as reads,
//!   but its own limiter (`--max-writes-per-second`, burst 1, one write in flight) and ARM's
//!   write / delete budget headers (`x-ms-ratelimit-remaining-subscription-writes` / `-deletes`);
//! - 412 (`If-Match` no longer matches), 409 (a lock, another operation) and 400 (in use, a bad
//!   reference) are never retried by anything: the retry policy only repeats 429s, 503s with
//!   Retry-After, other 5xx, timeouts and broken bodies; each refusal becomes its own
//!   [`ArmError`] variant, so the caller reports it plainly. A retried PUT or DELETE is safe: the
//!   PUT carries `If-Match` (a second copy of a write that landed gets 412), and DELETE is
//!   idempotent (ARM answers 204 for what is gone);
//! - the long-running operation: `Azure-AsyncOperation` (status document, `InProgress` →
//!   `Succeeded` / `Failed` / `Canceled`), else `Location` (202 while running), else the
//!   resource's own `provisioningState` — the order of azcore's ARM pollers
//!   (`sdk/azcore/runtime/poller.go`: async-operation, then location, then body), each poll
//!   waiting for `Retry-After` (else `--poll-interval`), all within the overall `--timeout`;
//! - every cached page of the subscription is dropped once ARM accepted a write.
//!
//! Must not: send anything but to the ARM endpoint (poll URLs go through the host guard too),
//! retry a refused write, or report a write as done before its operation ended.

use std::time::SystemTime;

use azure_core::Method;
use serde_json::Value;
use tokio::time::Instant;

use super::ArmError;
use super::client::{ArmClient, RawRequest, RawResponse};
use super::error::arm_error_parts;
use super::policy::{CallInfo, CallOp};
use super::retry::retry_after;
use crate::inventory::json::str_at;

/// The two writes cleanup makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMethod {
    Put,
    Delete,
}

impl WriteMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMethod::Put => "PUT",
            WriteMethod::Delete => "DELETE",
        }
    }
}

/// What a write achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    /// ARM's first answer (PUT: 200/201; DELETE: 200/202/204).
    pub status: u16,
    /// The operation's terminal state: `Succeeded`, or `NoContent` for a DELETE ARM answered 204
    /// (nothing was there to delete).
    pub state: String,
    /// After a PUT: the resource as ARM holds it once the operation ended (read fresh).
    pub resource: Option<Value>,
    /// Polls of the operation.
    pub polls: u32,
}

/// How to follow an accepted write.
#[derive(Debug, Clone, PartialEq)]
enum Follow {
    /// `Azure-AsyncOperation`: a status document.
    Status(String),
    /// `Location`: 202 while running.
    Location(String),
    /// No header: the resource's own `provisioningState`.
    Resource,
    /// Already terminal.
    Done,
}

/// Terminal states of ARM's status documents and `provisioningState`.
fn terminal(state: &str) -> Option<bool> {
    match state.to_ascii_lowercase().as_str() {
        "succeeded" => Some(true),
        "failed" | "canceled" | "cancelled" => Some(false),
        _ => None,
    }
}

/// Which polling ARM asked for with its first answer.
fn follow_of(resp: &RawResponse, method: WriteMethod) -> Follow {
    if let Some(u) = resp.header("azure-asyncoperation").filter(|u| !u.is_empty()) {
        return Follow::Status(u.to_string());
    }
    if resp.status == 202
        && let Some(u) = resp.header("location").filter(|u| !u.is_empty())
    {
        return Follow::Location(u.to_string());
    }
    if resp.status == 204 || method == WriteMethod::Delete && resp.status == 200 {
        return Follow::Done;
    }
    let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let state = body
        .as_ref()
        .and_then(|b| str_at(b, &["properties", "provisioningState"]));
    match state.as_deref().map(terminal) {
        // Nothing to follow: done, unless ARM said "accepted".
        None if resp.status == 202 => Follow::Resource,
        None | Some(Some(true)) => Follow::Done,
        // Still running, or failed (the poll of the resource reports the failure).
        Some(_) => Follow::Resource,
    }
}

impl ArmClient {
    /// GETs one resource without the cache (neither read nor written): what ARM holds now.
    /// `Ok(None)` when ARM answers 404.
    pub async fn get_fresh(
        &self,
        subscription: Option<&str>,
        path_and_query: &str,
    ) -> Result<Option<Value>, ArmError> {
        let call = CallInfo::new(subscription);
        let url = self.url_for(path_and_query)?;
        match self.fetch_network_opts(&call, &url, false).await {
            Ok(v) => serde_json::from_str(v.get())
                .map(Some)
                .map_err(|e| ArmError::DecodePage {
                    url: url.to_string(),
                    detail: e.to_string(),
                }),
            Err(ArmError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUTs or DELETEs `path_and_query` (relative to the ARM endpoint, with its api-version),
    /// with `If-Match` when given, and follows the long-running operation to its end. Bypasses
    /// the cache and drops the subscription's cached pages once ARM accepted the write.
    pub async fn write(
        &self,
        method: WriteMethod,
        subscription: &str,
        path_and_query: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Result<WriteOutcome, ArmError> {
        let url = self.url_for(path_and_query)?;
        let op = match method {
            WriteMethod::Put => CallOp::Write,
            WriteMethod::Delete => CallOp::Delete,
        };
        let call = CallInfo::with_op(Some(subscription), op);
        let body = match body {
            Some(b) => Some(bytes::Bytes::from(serde_json::to_vec(&b).map_err(|e| {
                ArmError::Invalid(format!("the body for {url} does not serialise ({e})"))
            })?)),
            None => None,
        };
        tracing::info!(method = method.as_str(), url = %url, if_match = if_match.unwrap_or("-"), "ARM write");
        let resp = self
            .send_raw(RawRequest {
                call: &call,
                url: &url,
                method: match method {
                    WriteMethod::Put => Method::Put,
                    WriteMethod::Delete => Method::Delete,
                },
                body,
                if_match,
                write: true,
            })
            .await?;
        if !(200..300).contains(&resp.status) {
            return Err(self.write_error(&call, &url, &resp));
        }
        if let Some(c) = &self.inner.cache {
            let n = c.invalidate_subscription(subscription);
            tracing::debug!(subscription, removed = n, "dropped cached pages after a write");
        }
        let first = resp.status;
        let mut follow = follow_of(&resp, method);
        let mut last = resp;
        let mut polls = 0u32;
        let state = loop {
            let poll_url = match &follow {
                Follow::Done => {
                    break if first == 204 { "NoContent" } else { "Succeeded" }.to_string();
                }
                Follow::Status(u) | Follow::Location(u) => u.clone(),
                Follow::Resource => url.to_string(),
            };
            self.wait_to_poll(&last, &url).await?;
            let poll = self.url_for_absolute(&poll_url)?;
            let read = CallInfo::new(Some(subscription));
            let r = self
                .send_raw(RawRequest {
                    call: &read,
                    url: &poll,
                    method: Method::Get,
                    body: None,
                    if_match: None,
                    write: false,
                })
                .await?;
            polls += 1;
            match &follow {
                Follow::Status(_) => {
                    if !(200..300).contains(&r.status) {
                        return Err(self.error_for(&read, &poll, r.status, &r.body));
                    }
                    let doc: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                    let status = str_at(&doc, &["status"]).unwrap_or_default();
                    match terminal(&status) {
                        Some(true) => follow = Follow::Done,
                        Some(false) => {
                            let (code, message) = arm_error_parts(&r.body);
                            return Err(ArmError::OperationFailed {
                                url: url.to_string(),
                                status,
                                code,
                                message,
                            });
                        }
                        None => {}
                    }
                }
                Follow::Location(_) => match r.status {
                    202 => {}
                    200 | 201 | 204 => follow = Follow::Done,
                    s => return Err(self.error_for(&read, &poll, s, &r.body)),
                },
                Follow::Resource => match r.status {
                    404 if method == WriteMethod::Delete => follow = Follow::Done,
                    s if (200..300).contains(&s) => {
                        let doc: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                        let state = str_at(&doc, &["properties", "provisioningState"]).unwrap_or_default();
                        match terminal(&state) {
                            Some(true) => follow = Follow::Done,
                            Some(false) => {
                                return Err(ArmError::OperationFailed {
                                    url: url.to_string(),
                                    status: state,
                                    code: "(provisioningState)".into(),
                                    message: "the resource's provisioningState ended in failure".into(),
                                });
                            }
                            None => {}
                        }
                    }
                    s => return Err(self.error_for(&read, &poll, s, &r.body)),
                },
                Follow::Done => {}
            }
            last = r;
        };
        let resource = match method {
            WriteMethod::Put => self.get_fresh(Some(subscription), path_and_query).await?,
            WriteMethod::Delete => None,
        };
        tracing::info!(method = method.as_str(), url = %url, state = %state, polls, "ARM write finished");
        Ok(WriteOutcome {
            status: first,
            state,
            resource,
            polls,
        })
    }

    /// An absolute URL ARM handed out (operation status, `Location`), checked by the host guard.
    fn url_for_absolute(&self, raw: &str) -> Result<azure_core::Url, ArmError> {
        let url = azure_core::Url::parse(raw)
            .or_else(|_| self.inner.guard.base.join(raw))
            .map_err(|e| ArmError::Invalid(format!("ARM's operation URL {raw:?} is not a URL ({e})")))?;
        self.inner.guard.check(&url)?;
        Ok(url)
    }

    /// Sleeps as long as the last answer's `Retry-After` says (else `--poll-interval`), or fails
    /// if that would pass the overall deadline.
    async fn wait_to_poll(&self, last: &RawResponse, url: &azure_core::Url) -> Result<(), ArmError> {
        let wait =
            retry_after(|n| last.header(n), SystemTime::now()).unwrap_or(self.inner.options.poll_interval);
        if Instant::now() + wait > self.inner.deadline {
            return Err(ArmError::Deadline {
                url: url.to_string(),
                waiting_for: "the write's long-running operation to finish (it may still complete; the next apply checks)".into(),
                timeout: self.inner.options.timeout,
            });
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// A refused write as the error that says what happened: 412, a lock, a conflict, in use.
    fn write_error(&self, call: &CallInfo, url: &azure_core::Url, resp: &RawResponse) -> ArmError {
        let (code, message) = arm_error_parts(&resp.body);
        match resp.status {
            412 => ArmError::PreconditionFailed {
                url: url.to_string(),
                message,
            },
            409 if code.eq_ignore_ascii_case("ScopeLocked") => ArmError::Locked {
                url: url.to_string(),
                message,
            },
            409 => ArmError::Conflict {
                url: url.to_string(),
                code,
                message,
            },
            400 if is_in_use(&code) => ArmError::InUse {
                url: url.to_string(),
                code,
                message,
            },
            s => self.error_for(call, url, s, &resp.body),
        }
    }
}

/// ARM's "still in use" codes: `PublicIPAddressCannotBeDeleted`,
/// `InUseNetworkSecurityGroupCannotBeDeleted`, `InUseSubnetCannotBeDeleted`,
/// `PublicIPAddressInUse`, ...
fn is_in_use(code: &str) -> bool {
    let c = code.to_ascii_lowercase();
    c.contains("inuse") || c.ends_with("cannotbedeleted")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> RawResponse {
        RawResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn polling_follows_azcore_order() {
        let both = resp(
            202,
            &[
                ("azure-asyncoperation", "https://a/op"),
                ("location", "https://a/res"),
            ],
            "",
        );
        assert_eq!(
            follow_of(&both, WriteMethod::Delete),
            Follow::Status("https://a/op".into())
        );
        let loc = resp(202, &[("location", "https://a/res")], "");
        assert_eq!(
            follow_of(&loc, WriteMethod::Delete),
            Follow::Location("https://a/res".into())
        );
        assert_eq!(follow_of(&resp(204, &[], ""), WriteMethod::Delete), Follow::Done);
        let updating = resp(200, &[], r#"{"properties":{"provisioningState":"Updating"}}"#);
        assert_eq!(follow_of(&updating, WriteMethod::Put), Follow::Resource);
        let done = resp(200, &[], r#"{"properties":{"provisioningState":"Succeeded"}}"#);
        assert_eq!(follow_of(&done, WriteMethod::Put), Follow::Done);
        assert_eq!(terminal("Canceled"), Some(false));
        assert_eq!(terminal("InProgress"), None);
    }

    #[test]
    fn in_use_codes() {
        assert!(is_in_use("PublicIPAddressCannotBeDeleted"));
        assert!(is_in_use("InUseNetworkSecurityGroupCannotBeDeleted"));
        assert!(!is_in_use("InvalidResourceReference"));
    }
}
