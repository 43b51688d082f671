//! The one HTTP client builder: rustls with the Mozilla roots plus any extra CAs the user trusts
//! (`--ca-file`, `SSL_CERT_FILE`). There is deliberately no way to turn verification off.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

/// Extra CA files: the given ones, then `SSL_CERT_FILE` if set.
pub fn extra_ca_files(given: &[PathBuf]) -> Vec<PathBuf> {
    let mut v = given.to_vec();
    if let Some(p) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        v.push(PathBuf::from(p));
    }
    v
}

fn add_pem_file(mut b: reqwest::ClientBuilder, path: &Path) -> anyhow::Result<reqwest::ClientBuilder> {
    let pem = std::fs::read(path).with_context(|| format!("read CA file {}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no PEM certificate", path.display());
    for c in certs {
        b = b.add_root_certificate(c);
    }
    Ok(b)
}

/// A client for ARM, Entra ID and the Kubernetes-independent endpoints.
pub fn client(extra_ca: &[PathBuf], timeout: Option<Duration>) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(concat!("azaudit/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        // Redirects would carry requests (and maybe tokens) to hosts we did not choose.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    for p in extra_ca {
        b = add_pem_file(b, p)?;
    }
    b.build().context("build HTTP client")
}
