//! Just enough JOSE for the token endpoint: split and decode compact JWTs, verify RS256/PS256
//! signatures with ring, sign RS256 for the mock's own federated issuer.
//!
//! It must not decide whether a token is acceptable (issuer, audience, time): that is the
//! token endpoint's job, because Entra ID answers each failure with its own AADSTS code.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Map, Value};

/// A compact JWT split into its parts, header and claims decoded, signature not yet checked.
pub struct Jwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    /// `base64url(header) "." base64url(claims)`: the bytes the signature covers (RFC 7515 §5.2).
    pub signing_input: String,
    pub signature: Vec<u8>,
}

/// Decodes base64 as clients send it: base64url per RFC 7515, but also standard base64 and
/// padded forms, because some clients get it wrong (azure_identity 0.21 sends `x5t` in
/// standard base64 with padding, `client_certificate_credentials.rs`).
pub fn b64_lenient(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .or_else(|_| STANDARD.decode(s))
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .ok()
}

impl Jwt {
    /// Parses a compact JWS; `None` when it is not three base64url parts with JSON objects.
    pub fn parse(token: &str) -> Option<Jwt> {
        let mut parts = token.trim().split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let header: Map<String, Value> = serde_json::from_slice(&b64_lenient(h)?).ok()?;
        let claims: Map<String, Value> = serde_json::from_slice(&b64_lenient(c)?).ok()?;
        Some(Jwt {
            header,
            claims,
            signing_input: format!("{h}.{c}"),
            signature: b64_lenient(s)?,
        })
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A numeric date claim (RFC 7519 §2), also accepted as a string of digits.
    pub fn claim_time(&self, name: &str) -> Option<i64> {
        match self.claims.get(name)? {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// `aud` as a list: RFC 7519 §4.1.3 allows a string or an array of strings.
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Verifies the signature with an RSA public key (PKCS#1 DER). Only `RS256` and `PS256`
    /// are accepted: the two algorithms Entra ID documents for client assertions
    /// (certificate-credentials: PS256 now, RS256 in older revisions and older SDKs).
    pub fn verify_rsa(&self, public_pkcs1_der: &[u8]) -> Result<(), SigError> {
        let alg: &dyn signature::VerificationAlgorithm = match self.header_str("alg") {
            Some("RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
            Some("PS256") => &signature::RSA_PSS_2048_8192_SHA256,
            _ => return Err(SigError::UnsupportedAlg),
        };
        UnparsedPublicKey::new(alg, public_pkcs1_der)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| SigError::BadSignature)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigError {
    UnsupportedAlg,
    BadSignature,
}

/// Signs `header` and `claims` as a compact RS256 JWS with a PKCS#8 RSA key.
pub fn sign_rs256(key: &RsaKeyPair, header: &Value, claims: &Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).expect("JSON value serialises"));
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("JSON value serialises"));
    let input = format!("{h}.{c}");
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    // ring fails only when the output buffer has the wrong length, which it cannot have here.
    .expect("RSA signing into a modulus-sized buffer");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_garbage_and_reads_claims() {
        assert!(Jwt::parse("a.b").is_none());
        assert!(Jwt::parse("!!.!!.!!").is_none());
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let c = URL_SAFE_NO_PAD.encode(br#"{"aud":["x","y"],"exp":"12","nbf":3.0}"#);
        let j = Jwt::parse(&format!("{h}.{c}.")).unwrap();
        assert_eq!(j.audiences(), vec!["x", "y"]);
        assert_eq!(j.claim_time("exp"), Some(12));
        assert_eq!(j.claim_time("nbf"), Some(3));
        assert_eq!(j.verify_rsa(&[]), Err(SigError::UnsupportedAlg));
        assert_eq!(b64_lenient("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(b64_lenient("-_8"), Some(vec![0xfb, 0xff]));
    }
}
