//! Service principal certificates: reading a PEM (certificate + PKCS#8 or PKCS#1 RSA key, any
//! order, optional chain) or a PFX/PKCS#12 file (with password), checking the certificate's
//! validity locally before use, and signing the client assertion JWT
//! (https://learn.microsoft.com/entra/identity-platform/certificate-credentials, domain.md §7.1):
//! header `alg: PS256` + `x5t#S256` (or `RS256` + `x5t` for older tenants), optional `x5c`
//! chain (`SendCertificateChain`, as cloud-provider-azure sends it); claims `aud` = the token
//! endpoint, `iss` = `sub` = client id, `jti`, `nbf`, `iat`, `exp` (10 minutes).
//!
//! Entra ID accepts only RSA keys for certificate credentials, so other key types are refused
//! here with that explanation. The key never leaves this module, and nothing here logs it.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use ring::rand::SecureRandom;
use ring::signature::RsaKeyPair;
use sha2::Digest as _;
use time::OffsetDateTime;

use super::AuthError;
use super::args::AssertionAlg;
use crate::secret::Secret;

/// Lifetime of an assertion (Entra advises 5–10 minutes).
const ASSERTION_LIFETIME_SECS: i64 = 600;

/// A loaded certificate credential.
pub struct ClientCertificate {
    pub path: PathBuf,
    key: RsaKeyPair,
    /// DER certificates, leaf first.
    chain: Vec<Vec<u8>>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub subject: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("path", &self.path)
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn err(path: &Path, problem: impl Into<String>, fix: impl Into<String>) -> AuthError {
    AuthError::Certificate {
        path: path.display().to_string(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// Decoded PEM blocks: (label, DER).
fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let mut b64 = String::new();
        let end = format!("-----END {label}-----");
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                break;
            }
            // Encrypted-PEM headers (`Proc-Type:`, `DEK-Info:`) are not base64.
            if !l.contains(':') {
                b64.push_str(l);
            }
        }
        if let Ok(der) = B64.decode(b64.as_bytes()) {
            out.push((label.to_string(), der));
        }
    }
    out
}

impl ClientCertificate {
    /// Reads `path`: a PFX when it is not PEM text.
    pub fn load(path: &Path, password: Option<&Secret>) -> Result<ClientCertificate, AuthError> {
        let bytes = std::fs::read(path).map_err(|e| {
            err(
                path,
                format!("cannot read it ({e})"),
                "check the path in --client-certificate / AZURE_CLIENT_CERTIFICATE_PATH and that azaudit's user may read the file",
            )
        })?;
        let is_pem = std::str::from_utf8(&bytes).is_ok_and(|t| t.contains("-----BEGIN "));
        let (key_der, key_kind, mut certs) = if is_pem {
            Self::from_pem(path, std::str::from_utf8(&bytes).unwrap_or_default())?
        } else {
            Self::from_pfx(path, &bytes, password)?
        };
        let key = match key_kind {
            KeyKind::Pkcs8 => RsaKeyPair::from_pkcs8(&key_der),
            KeyKind::Pkcs1 => RsaKeyPair::from_der(&key_der),
        }
        .map_err(|e| {
            err(
                path,
                format!("the private key is not a usable RSA key ({e})"),
                "Entra ID accepts only RSA certificates (2048 bits or more): create one with `az ad sp create-for-rbac --create-cert` or `openssl req -x509 -newkey rsa:2048 ...`",
            )
        })?;
        // The leaf is the certificate of this key; the rest is the chain, in file order.
        let public = key.public().as_ref().to_vec();
        let leaf_pos = certs
            .iter()
            .position(|der| cert_public_key(der).as_deref() == Some(public.as_slice()))
            .ok_or_else(|| {
                err(
                    path,
                    "no certificate in the file matches its private key",
                    "put the certificate that belongs to the key in the file (PEM: the CERTIFICATE block of that key pair)",
                )
            })?;
        let leaf = certs.remove(leaf_pos);
        certs.insert(0, leaf);
        let (_, parsed) = x509_parser::parse_x509_certificate(&certs[0]).map_err(|e| {
            err(
                path,
                format!("the certificate does not parse ({e})"),
                "replace the certificate",
            )
        })?;
        let validity = parsed.validity();
        let not_before = validity.not_before.to_datetime();
        let not_after = validity.not_after.to_datetime();
        let subject = parsed.subject().to_string();
        Ok(ClientCertificate {
            path: path.to_path_buf(),
            key,
            chain: certs,
            not_before,
            not_after,
            subject,
        })
    }

    fn from_pem(path: &Path, text: &str) -> Result<KeyMaterial, AuthError> {
        let blocks = pem_blocks(text);
        let certs: Vec<Vec<u8>> = blocks
            .iter()
            .filter(|(l, _)| l == "CERTIFICATE")
            .map(|(_, d)| d.clone())
            .collect();
        let mut key = None;
        for (label, der) in &blocks {
            match label.as_str() {
                "PRIVATE KEY" => key = Some((der.clone(), KeyKind::Pkcs8)),
                "RSA PRIVATE KEY" if text.contains("Proc-Type: 4,ENCRYPTED") => {
                    return Err(err(
                        path,
                        "the RSA private key is encrypted (legacy PEM encryption)",
                        "decrypt it (`openssl rsa -in key.pem -out plain.pem`) and keep the file mode 0600, or convert the pair to a PFX with a password",
                    ));
                }
                "RSA PRIVATE KEY" => key = Some((der.clone(), KeyKind::Pkcs1)),
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(err(
                        path,
                        "the private key is encrypted (PKCS#8 ENCRYPTED PRIVATE KEY), which azaudit reads only inside a PFX",
                        "convert it: `openssl pkcs12 -export -in cert.pem -inkey key.pem -out cert.pfx` and pass --client-certificate cert.pfx with AZURE_CLIENT_CERTIFICATE_PASSWORD",
                    ));
                }
                "EC PRIVATE KEY" => {
                    return Err(err(
                        path,
                        "the key is an EC key",
                        "Entra ID accepts only RSA certificates: create an RSA one",
                    ));
                }
                _ => {}
            }
        }
        let Some((key, kind)) = key else {
            return Err(err(
                path,
                "the PEM file holds no private key",
                "put the certificate and its private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`) in one PEM file, as AZURE_CLIENT_CERTIFICATE_PATH expects",
            ));
        };
        if certs.is_empty() {
            return Err(err(
                path,
                "the PEM file holds no certificate",
                "append the certificate (`cat cert.pem key.pem > client.pem`)",
            ));
        }
        Ok((key, kind, certs))
    }

    fn from_pfx(path: &Path, bytes: &[u8], password: Option<&Secret>) -> Result<KeyMaterial, AuthError> {
        let pw = password.map(Secret::expose).unwrap_or("");
        let store = p12_keystore::KeyStore::from_pkcs12(bytes, pw).map_err(|e| {
            let wrong_password = matches!(e, p12_keystore::error::Error::MacError(_));
            if wrong_password && password.is_none() {
                err(
                    path,
                    "the PFX file is password-protected and no password was given",
                    "set AZURE_CLIENT_CERTIFICATE_PASSWORD (or --client-certificate-password)",
                )
            } else if wrong_password {
                err(
                    path,
                    "the PFX password is wrong",
                    "check AZURE_CLIENT_CERTIFICATE_PASSWORD / --client-certificate-password",
                )
            } else {
                err(
                    path,
                    format!("it is neither PEM nor a PFX azaudit can read ({e})"),
                    "give a PEM file (certificate + unencrypted key) or a PKCS#12/PFX file with its password",
                )
            }
        })?;
        let (_, chain) = store.private_key_chain().ok_or_else(|| {
            err(
                path,
                "the PFX file holds no private key with its certificate",
                "export the certificate together with its private key",
            )
        })?;
        let certs = chain.chain().iter().map(|c| c.as_der().to_vec()).collect();
        Ok((chain.key().to_vec(), KeyKind::Pkcs8, certs))
    }

    /// Refuses a certificate outside its validity period, before Entra ID does (its answer,
    /// AADSTS700027, does not say which certificate).
    pub fn check_validity(&self, client_id: &str, now: OffsetDateTime) -> Result<(), AuthError> {
        let fmt = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.to_string())
        };
        if now > self.not_after {
            return Err(err(
                &self.path,
                format!(
                    "the certificate ({}) expired on {}",
                    self.subject,
                    fmt(self.not_after)
                ),
                format!(
                    "create and register a new one: `az ad app credential reset --id {client_id} --create-cert` (or upload yours with `--cert @new.pem --append`), then point --client-certificate at it"
                ),
            ));
        }
        if now < self.not_before {
            return Err(err(
                &self.path,
                format!(
                    "the certificate ({}) is not valid before {}",
                    self.subject,
                    fmt(self.not_before)
                ),
                "check this machine's clock, or wait until the certificate becomes valid",
            ));
        }
        Ok(())
    }

    /// base64url SHA-256 of the leaf (`x5t#S256`).
    pub fn x5t_s256(&self) -> String {
        B64URL.encode(sha2::Sha256::digest(&self.chain[0]))
    }

    /// base64url SHA-1 of the leaf (`x5t`).
    pub fn x5t(&self) -> String {
        use sha1::Digest as _;
        B64URL.encode(sha1::Sha1::digest(&self.chain[0]))
    }

    /// A signed client assertion for `audience` (the token endpoint URL).
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        alg: AssertionAlg,
        send_chain: bool,
        now: OffsetDateTime,
    ) -> Result<Secret, AuthError> {
        let rng = ring::rand::SystemRandom::new();
        let mut header = match alg {
            AssertionAlg::Ps256 => {
                serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.x5t_s256()})
            }
            AssertionAlg::Rs256 => serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t()}),
        };
        if send_chain {
            header["x5c"] = serde_json::json!(self.chain.iter().map(|d| B64.encode(d)).collect::<Vec<_>>());
        }
        let mut jti = [0u8; 16];
        rng.fill(&mut jti)
            .map_err(|_| err(&self.path, "no system randomness", "retry"))?;
        let t = now.unix_timestamp();
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": guid(jti),
            "nbf": t,
            "iat": t,
            "exp": t + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let padding: &'static dyn ring::signature::RsaEncoding = match alg {
            AssertionAlg::Ps256 => &ring::signature::RSA_PSS_SHA256,
            AssertionAlg::Rs256 => &ring::signature::RSA_PKCS1_SHA256,
        };
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(padding, &rng, signing_input.as_bytes(), &mut sig)
            .map_err(|_| err(&self.path, "signing the client assertion failed", "check the key"))?;
        Ok(Secret::new(format!("{signing_input}.{}", B64URL.encode(sig))))
    }
}

/// A private key (DER, in its encoding) and the certificates found with it.
type KeyMaterial = (Vec<u8>, KeyKind, Vec<Vec<u8>>);

#[derive(Clone, Copy)]
enum KeyKind {
    Pkcs8,
    Pkcs1,
}

/// The PKCS#1 RSA public key inside a certificate (the BIT STRING of its SubjectPublicKeyInfo,
/// which is what ring's `PublicKey::as_ref` gives for the private key).
fn cert_public_key(der: &[u8]) -> Option<Vec<u8>> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(c.public_key().subject_public_key.data.to_vec())
}

/// A random (version 4) GUID string from 16 random bytes.
fn guid(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_any_order_with_headers() {
        let text = "junk\n-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nAwQF\n-----END CERTIFICATE-----\n";
        let b = pem_blocks(text);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0], ("PRIVATE KEY".to_string(), vec![0, 1, 2]));
        assert_eq!(b[1].0, "CERTIFICATE");
        assert_eq!(guid([0; 16]).len(), 36);
    }

    #[test]
    fn pem_without_key_or_with_encrypted_key_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.pem");
        std::fs::write(
            &p,
            "-----BEGIN CERTIFICATE-----\nAwQF\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = ClientCertificate::load(&p, None).unwrap_err().to_string();
        assert!(e.contains("no private key"), "{e}");
        std::fs::write(
            &p,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAwQF\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = ClientCertificate::load(&p, None).unwrap_err().to_string();
        assert!(e.contains("openssl pkcs12 -export"), "{e}");
        let e = ClientCertificate::load(&dir.path().join("missing.pem"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read it"), "{e}");
        std::fs::write(&p, [0x30u8, 0x03, 0x02, 0x01, 0x03]).unwrap();
        let e = ClientCertificate::load(&p, None).unwrap_err().to_string();
        assert!(e.contains("PFX"), "{e}");
    }
}
