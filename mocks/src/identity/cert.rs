//! RSA keys and self-signed certificates for the mock's principals and its federated issuer.
//!
//! Entra ID accepts only RSA keys for certificate credentials
//! (https://learn.microsoft.com/entra/identity-platform/certificate-credentials), so every key
//! here is a 2048-bit RSA key made with the `rsa` crate (ring cannot generate RSA keys); the
//! certificate is signed by `rcgen` (ring backend) with `PKCS_RSA_SHA256`.
//!
//! This module only makes keys and encodes them; it must not write files or know about HTTP.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rand::RngCore;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, KeyUsagePurpose, SerialNumber};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rustls::pki_types::PrivatePkcs8KeyDer;
use sha1::Digest as _;
use time::OffsetDateTime;

use crate::state::RegisteredCert;

/// An RSA key in the encodings the mock needs.
pub struct RsaKey {
    /// PKCS#8 `PrivateKeyInfo`, DER (what ring, rcgen and PKCS#12 take).
    pub pkcs8_der: Vec<u8>,
    /// The same, PEM (`-----BEGIN PRIVATE KEY-----`).
    pub pkcs8_pem: String,
    /// PKCS#1 `RSAPublicKey`, DER (what `ring::signature::UnparsedPublicKey` verifies with).
    pub public_pkcs1_der: Vec<u8>,
    /// Big-endian modulus and exponent (for a JWK).
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl RsaKey {
    /// A fresh 2048-bit key (the smallest Entra ID accepts, and what ring verifies with
    /// `RSA_*_2048_8192_*`).
    pub fn generate() -> anyhow::Result<RsaKey> {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).context("generate RSA key")?;
        let pkcs8 = key.to_pkcs8_der().context("encode PKCS#8")?;
        let pkcs8_pem = key.to_pkcs8_pem(LineEnding::LF).context("encode PKCS#8 PEM")?;
        let public = key.to_public_key();
        let public_pkcs1 = public.to_pkcs1_der().context("encode PKCS#1 public key")?;
        Ok(RsaKey {
            pkcs8_der: pkcs8.as_bytes().to_vec(),
            pkcs8_pem: pkcs8_pem.to_string(),
            public_pkcs1_der: public_pkcs1.as_bytes().to_vec(),
            n: public.n().to_bytes_be(),
            e: public.e().to_bytes_be(),
        })
    }

    /// A JWK for the public half (RFC 7517 §4, RSA members from RFC 7518 §6.3.1).
    pub fn jwk(&self, kid: &str) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": B64URL.encode(&self.n),
            "e": B64URL.encode(&self.e),
        })
    }

    /// A key id derived from the public key (base64url SHA-256 of the PKCS#1 DER), stable for
    /// the key, as Kubernetes derives its service-account issuer `kid` from the key.
    pub fn kid(&self) -> String {
        B64URL.encode(sha2::Sha256::digest(&self.public_pkcs1_der))
    }
}

/// A certificate together with the key it certifies.
pub struct IssuedCert {
    pub key: RsaKey,
    pub registered: RegisteredCert,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Unix seconds from which the certificate is valid.
    pub not_before: i64,
}

impl IssuedCert {
    /// What `AZURE_CLIENT_CERTIFICATE_PATH` expects: the certificate and its unencrypted PKCS#8
    /// private key in one PEM file (azure-identity's `CertificateCredential`, azidentity's
    /// `ParseCertificates` read either order).
    pub fn combined_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key.pkcs8_pem)
    }

    /// A PKCS#12 file with the key and certificate, encrypted with `password` (PBES2 with
    /// AES-256-CBC and HMAC-SHA256, which OpenSSL 3 and .NET read without legacy providers).
    pub fn pfx(&self, password: &str, friendly_name: &str) -> anyhow::Result<Vec<u8>> {
        use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKeyChain};
        let cert = Certificate::from_der(&self.registered.der)
            .map_err(|e| anyhow::anyhow!("PKCS#12 certificate: {e}"))?;
        // localKeyId ties the key bag to its certificate bag; the SHA-1 thumbprint is what
        // OpenSSL and Windows use.
        let local_key_id = sha1::Sha1::digest(&self.registered.der).to_vec();
        let chain = PrivateKeyChain::new(&self.key.pkcs8_der, local_key_id, [cert]);
        let mut store = KeyStore::new();
        store.add_entry(friendly_name, KeyStoreEntry::PrivateKeyChain(chain));
        store
            .writer(password)
            .write()
            .map_err(|e| anyhow::anyhow!("write PKCS#12: {e}"))
    }
}

/// A self-signed certificate for `common_name`, valid between the two unix times, on a fresh
/// RSA key.
pub fn self_signed(common_name: &str, not_before: i64, not_after: i64) -> anyhow::Result<IssuedCert> {
    let key = RsaKey::generate()?;
    self_signed_with(key, common_name, not_before, not_after)
}

/// The same, on a given key.
pub fn self_signed_with(
    key: RsaKey,
    common_name: &str,
    not_before: i64,
    not_after: i64,
) -> anyhow::Result<IssuedCert> {
    let key_pair = KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(key.pkcs8_der.as_slice()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .context("load RSA key into rcgen")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "azaudit mock (loopback only)");
    params.distinguished_name = dn;
    params.not_before = OffsetDateTime::from_unix_timestamp(not_before).context("not_before")?;
    params.not_after = OffsetDateTime::from_unix_timestamp(not_after).context("not_after")?;
    // A random positive serial, so that two certificates for the same name differ.
    let mut serial = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = params
        .self_signed(&key_pair)
        .context("self-sign client certificate")?;
    let der = cert.der().to_vec();
    let registered = RegisteredCert {
        x5t: B64URL.encode(sha1::Sha1::digest(&der)),
        x5t_s256: B64URL.encode(sha2::Sha256::digest(&der)),
        rsa_public_key_pkcs1: key.public_pkcs1_der.clone(),
        not_after,
        der,
    };
    Ok(IssuedCert {
        key,
        registered,
        cert_pem: cert.pem(),
        not_before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_thumbprints_and_key_round_trip() {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let c = self_signed("unit", now - 10, now + 1000).unwrap();
        let pem = c.combined_pem();
        assert!(pem.contains("-----BEGIN CERTIFICATE-----"));
        assert!(pem.contains("-----BEGIN PRIVATE KEY-----"));
        // x5t is the SHA-1 of the DER, 20 bytes → 27 base64url characters; x5t#S256 43.
        assert_eq!(c.registered.x5t.len(), 27);
        assert_eq!(c.registered.x5t_s256.len(), 43);
        // The key signs and the registered public key verifies (what the token endpoint does).
        let kp = ring::signature::RsaKeyPair::from_pkcs8(&c.key.pkcs8_der).unwrap();
        let mut sig = vec![0; kp.public().modulus_len()];
        kp.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            b"msg",
            &mut sig,
        )
        .unwrap();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &c.registered.rsa_public_key_pkcs1,
        )
        .verify(b"msg", &sig)
        .unwrap();
        let pfx = c.pfx("pw", "unit").unwrap();
        let store = p12_keystore::KeyStore::from_pkcs12(&pfx, "pw").unwrap();
        let (_, chain) = store.private_key_chain().unwrap();
        assert_eq!(chain.key(), c.key.pkcs8_der.as_slice());
        assert_eq!(chain.chain()[0].as_der(), c.registered.der.as_slice());
    }
}
