//! Access tokens as the credential sources return them: the value (a [`Secret`]), when it
//! expires, and when it was obtained (to refresh ahead of expiry by a share of its lifetime);
//! plus the lenient readers of token responses and the unverified read of a JWT's claims.
//!
//! Token responses send `expires_in`/`expires_on` as numbers (Entra v2) or strings (IMDS, App
//! Service, Entra v1); MSAL accepts both (`accesstokens/tokens.go`, domain.md §7.2), so do we.
//! Claims are read only to report who we are (`oid`, `tid`, `appid`); they are never trusted
//! for a decision, and the token itself is never logged.

use base64::Engine;
use serde_json::Value;
use time::OffsetDateTime;

use crate::secret::Secret;

/// Refresh this long before expiry at most (azidentity and MSAL refresh 5 minutes ahead).
pub const REFRESH_MARGIN_SECS: i64 = 300;

#[derive(Clone, Debug)]
pub struct Token {
    pub value: Secret,
    pub expires_on: OffsetDateTime,
    pub obtained_at: OffsetDateTime,
}

impl Token {
    /// Time to refresh: 5 minutes before expiry, or half-way through the lifetime for tokens
    /// that live less than 10 minutes (short-lived tokens would otherwise be refreshed on every
    /// request).
    pub fn needs_refresh(&self, now: OffsetDateTime) -> bool {
        let lifetime = (self.expires_on - self.obtained_at).whole_seconds().max(0);
        let margin = REFRESH_MARGIN_SECS.min(lifetime / 2);
        now >= self.expires_on - time::Duration::seconds(margin)
    }

    pub fn expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_on
    }
}

/// A number or a numeric string.
pub fn number(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

/// Reads `access_token` and the expiry (`expires_on` unix seconds, else `expires_in` from now)
/// from a token response. `None` when the response has no usable token.
pub fn from_response(body: &Value, now: OffsetDateTime) -> Result<Token, String> {
    let value = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("no access_token in the response")?;
    let expires_on = match (number(body.get("expires_on")), number(body.get("expires_in"))) {
        (Some(on), _) if on > 0 => OffsetDateTime::from_unix_timestamp(on).map_err(|e| e.to_string())?,
        (_, Some(secs)) => now + time::Duration::seconds(secs.max(0)),
        _ => return Err("no expires_in or expires_on in the response".into()),
    };
    Ok(Token {
        value: Secret::new(value),
        expires_on,
        obtained_at: now,
    })
}

/// The claims of a JWT access token, without verifying anything (`None` for opaque tokens).
pub fn claims(token: &Secret) -> Option<Value> {
    let payload = token.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_ahead() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let long = Token {
            value: Secret::new("x"),
            expires_on: t0 + time::Duration::hours(1),
            obtained_at: t0,
        };
        assert!(!long.needs_refresh(t0 + time::Duration::minutes(54)));
        assert!(long.needs_refresh(t0 + time::Duration::minutes(55)));
        let short = Token {
            value: Secret::new("x"),
            expires_on: t0 + time::Duration::seconds(60),
            obtained_at: t0,
        };
        assert!(!short.needs_refresh(t0 + time::Duration::seconds(29)));
        assert!(short.needs_refresh(t0 + time::Duration::seconds(30)));
        assert!(short.expired(t0 + time::Duration::seconds(60)));
    }

    #[test]
    fn responses_with_strings_or_numbers() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let t = from_response(&serde_json::json!({"access_token":"a","expires_in":"3599"}), now).unwrap();
        assert_eq!(t.expires_on.unix_timestamp(), 4_599);
        let t = from_response(
            &serde_json::json!({"access_token":"a","expires_in":60,"expires_on":"5000"}),
            now,
        )
        .unwrap();
        assert_eq!(t.expires_on.unix_timestamp(), 5_000);
        assert!(from_response(&serde_json::json!({"access_token":"a"}), now).is_err());
        assert!(from_response(&serde_json::json!({"expires_in":1}), now).is_err());
    }

    #[test]
    fn claims_are_read_unverified() {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let tok = format!("{}.{}.sig", b.encode("{}"), b.encode(r#"{"oid":"o","tid":"t"}"#));
        let c = claims(&Secret::new(tok)).unwrap();
        assert_eq!(c["oid"], "o");
        assert!(claims(&Secret::new("opaque")).is_none());
    }
}
