//! Access tokens the mock issues and checks.
//!
//! Tokens are real JWTs (HS256 with a per-process key) carrying the claims ARM cares about
//! (`tid`, `oid`, `appid`, `aud`, `exp`), so the ARM and Kubernetes handlers can tell who is
//! calling and whether the token has expired without shared mutable state.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// Claims of an issued access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub tid: String,
    /// Object id of the principal.
    pub oid: String,
    /// Client id of the application (or managed identity).
    pub appid: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// `app` for service principals, `mi` for managed identities, `wi` for workload identity.
    pub idtyp: String,
}

/// Why a bearer token was refused; maps onto ARM's error codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a token this mock issued (bad format or signature).
    Invalid,
    /// `exp` has passed.
    Expired,
    /// Issued for another tenant.
    WrongTenant,
    /// Issued for another audience.
    WrongAudience,
}

impl TokenError {
    /// ARM's error code and message for this failure.
    pub fn arm_code(&self) -> (&'static str, &'static str) {
        match self {
            TokenError::Missing => (
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            ),
            TokenError::Invalid => ("InvalidAuthenticationToken", "The access token is invalid."),
            TokenError::Expired => (
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
            ),
            TokenError::WrongTenant => (
                "InvalidAuthenticationTokenTenant",
                "The access token is from the wrong issuer. It must match the tenant associated with this subscription.",
            ),
            TokenError::WrongAudience => (
                "InvalidAuthenticationTokenAudience",
                "The access token has been obtained for wrong audience or resource.",
            ),
        }
    }
}

/// Signs and verifies the mock's access tokens.
pub struct TokenSigner {
    key: hmac::Key,
}

impl TokenSigner {
    /// A signer with a random key.
    pub fn new() -> TokenSigner {
        let rng = ring::rand::SystemRandom::new();
        TokenSigner {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("system random"),
        }
    }

    pub fn issue(&self, claims: &Claims) -> String {
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = B64.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let signing_input = format!("{header}.{body}");
        let sig = hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(sig.as_ref()))
    }

    /// Verifies signature and expiry (against `now`, unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(b), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let sig = B64.decode(s).map_err(|_| TokenError::Invalid)?;
        hmac::verify(&self.key, format!("{h}.{b}").as_bytes(), &sig).map_err(|_| TokenError::Invalid)?;
        let claims: Claims = B64
            .decode(b)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Invalid)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Extracts and verifies the bearer token of an `Authorization` header value.
    pub fn verify_header(&self, header: Option<&str>, now: i64) -> Result<Claims, TokenError> {
        let h = header.ok_or(TokenError::Missing)?;
        let t = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .ok_or(TokenError::Missing)?;
        self.verify(t.trim(), now)
    }
}

impl Default for TokenSigner {
    fn default() -> Self {
        TokenSigner::new()
    }
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            aud: "https://management.azure.com/".into(),
            iss: "https://sts".into(),
            tid: "t".into(),
            oid: "o".into(),
            appid: "a".into(),
            iat: 0,
            nbf: 0,
            exp,
            idtyp: "app".into(),
        }
    }

    #[test]
    fn issue_verify_expire_and_tamper() {
        let s = TokenSigner::new();
        let t = s.issue(&claims(100));
        assert_eq!(s.verify(&t, 50).unwrap().oid, "o");
        assert_eq!(s.verify(&t, 100), Err(TokenError::Expired));
        let other = TokenSigner::new();
        assert_eq!(other.verify(&t, 50), Err(TokenError::Invalid));
        assert_eq!(s.verify_header(None, 0), Err(TokenError::Missing));
        assert_eq!(
            s.verify_header(Some(&format!("Bearer {t}")), 1).unwrap().appid,
            "a"
        );
        let mut tampered = t.clone();
        tampered.insert(t.find('.').unwrap() + 2, 'x');
        assert_eq!(s.verify(&tampered, 1), Err(TokenError::Invalid));
    }
}
