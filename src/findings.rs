//! Findings are data, not errors: what a rule concluded, about which resource, with evidence.
//!
//! Severity is adjusted in one place ([`apply_policy`]: config overrides, suppressions) and the
//! exit code is derived from the totals, never from inside a check.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `critical > high > medium > low > info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|x| x.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One conclusion of one rule about one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// ARM id, `k8s://...`, usage id or `file://...` (rule-catalogue "Resource references").
    pub resource: String,
    pub cluster: Option<String>,
    pub subscription: Option<String>,
    pub message: String,
    pub evidence: BTreeMap<String, Value>,
    pub remediation: String,
    pub cleanup_eligible: bool,
    /// Set from the state file (nightly runs).
    pub first_seen: Option<String>,
}

impl Finding {
    pub fn new(
        rule: &'static str,
        severity: Severity,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            rule,
            severity,
            resource: resource.into(),
            cluster: None,
            subscription: None,
            message: message.into(),
            evidence: BTreeMap::new(),
            remediation: String::new(),
            cleanup_eligible: false,
            first_seen: None,
        }
    }

    pub fn cluster(mut self, c: &str) -> Self {
        self.cluster = Some(c.to_string());
        self
    }

    pub fn subscription(mut self, s: &str) -> Self {
        if !s.is_empty() {
            self.subscription = Some(s.to_string());
        }
        self
    }

    pub fn evidence(mut self, key: &str, v: impl Serialize) -> Self {
        self.evidence
            .insert(key.to_string(), serde_json::to_value(v).unwrap_or(Value::Null));
        self
    }

    pub fn remediation(mut self, r: impl Into<String>) -> Self {
        self.remediation = r.into();
        self
    }

    pub fn cleanup(mut self, eligible: bool) -> Self {
        self.cleanup_eligible = eligible;
        self
    }

    /// The identity of a finding across runs: one finding per (rule, resource).
    pub fn key(&self) -> (String, String) {
        (self.rule.to_string(), self.resource.to_ascii_lowercase())
    }
}

/// Deterministic order: severity (highest first), rule, resource (case-insensitive).
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(b.rule))
            .then_with(|| {
                a.resource
                    .to_ascii_lowercase()
                    .cmp(&b.resource.to_ascii_lowercase())
            })
            .then_with(|| a.cluster.cmp(&b.cluster))
    });
}

/// Counts per severity.
pub fn summary(findings: &[Finding]) -> BTreeMap<Severity, usize> {
    let mut m = BTreeMap::new();
    for f in findings {
        *m.entry(f.severity).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_severity_then_rule_then_resource() {
        let mut v = vec![
            Finding::new("b-rule", Severity::Low, "/x/B", ""),
            Finding::new("a-rule", Severity::Low, "/x/a", ""),
            Finding::new("z-rule", Severity::Critical, "/x/c", ""),
            Finding::new("a-rule", Severity::Low, "/x/A0", ""),
        ];
        sort(&mut v);
        let order: Vec<_> = v.iter().map(|f| (f.rule, f.resource.as_str())).collect();
        assert_eq!(
            order,
            vec![
                ("z-rule", "/x/c"),
                ("a-rule", "/x/a"),
                ("a-rule", "/x/A0"),
                ("b-rule", "/x/B")
            ]
        );
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
        assert!(Severity::Critical > Severity::High);
    }
}
