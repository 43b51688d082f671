//! A wrapper for values that must never be printed: client secrets, certificate passwords,
//! access tokens, client assertions, the App Service identity header.
//!
//! `Debug` and `Display` print `<redacted>`; there is no `Serialize`, so a secret cannot end up
//! in a report, a cache entry or a snapshot by accident. The only way to the value is
//! [`Secret::expose`], which call sites use at the moment the value goes on the wire. This
//! module must not grow a way to print or serialise the value.

use std::fmt;

/// A secret string. Compares in constant time (for equal lengths) so tests and callers can
/// compare without leaking timing; cloning is allowed because credentials are shared.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place it is sent (a form field, a header, a signature input).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for Secret {}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

/// clap value parser: flags such as `--client-secret` parse straight into a [`Secret`], so the
/// parsed command line (which derives `Debug`) never holds the value in a printable field.
pub fn parse_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2-value");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(Secret(<redacted>))");
        assert_eq!(s.expose(), "hunter2-value");
        assert_eq!(s, Secret::new("hunter2-value"));
        assert_ne!(s, Secret::new("hunter2-valuf"));
        assert_ne!(s, Secret::new("short"));
    }
}
