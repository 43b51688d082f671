//! Loopback-only mode (`AZAUDIT_LOOPBACK_ONLY=1`, hidden flag `--loopback-only`): every
//! endpoint azaudit is about to contact must be a loopback address, and nothing that could
//! reach a real cloud (the real IMDS at 169.254.169.254, the `az` on PATH) may run.
//!
//! Tests and CI set it so that a forgotten endpoint override fails loudly instead of silently
//! reaching Azure; the defaults are the real cloud's endpoints, so a test that forgets
//! `--imds-endpoint` would otherwise probe the metadata address. It guards; it does not decide
//! which endpoint to use.

use std::net::IpAddr;

use url::Url;

/// Whether `url` may be contacted. Host names other than `localhost` are refused in
/// loopback-only mode, since their addresses are not known before resolution.
pub fn check(url: &Url, loopback_only: bool) -> Result<(), super::AuthError> {
    if !loopback_only || is_loopback(url) {
        return Ok(());
    }
    Err(super::AuthError::LoopbackOnly {
        target: redact_url(url),
    })
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The URL without query (query strings can carry ids; never secrets here, but errors should
/// name endpoints, not requests).
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_passes() {
        let ok = |s: &str| check(&Url::parse(s).unwrap(), true).is_ok();
        assert!(ok("https://127.0.0.1:1/x"));
        assert!(ok("http://[::1]:80/"));
        assert!(ok("http://localhost/"));
        assert!(!ok(
            "http://169.254.169.254/metadata/identity/oauth2/token?resource=x"
        ));
        assert!(!ok("https://login.microsoftonline.com/"));
        assert!(check(&Url::parse("https://login.microsoftonline.com/").unwrap(), false).is_ok());
        let e = check(&Url::parse("http://169.254.169.254/a?b=c").unwrap(), true).unwrap_err();
        assert!(e.to_string().contains("http://169.254.169.254/a"));
        assert!(!e.to_string().contains("b=c"));
    }
}
