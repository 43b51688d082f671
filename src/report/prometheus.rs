//! Prometheus text exposition format 0.0.4, for node_exporter's textfile collector or a
//! Pushgateway (https://prometheus.io/docs/instrumenting/exposition_formats/).
//!
//! Every family has one `# HELP` and one `# TYPE` line followed by all its samples; label values
//! escape `\`, `"` and newlines, HELP text escapes `\` and newlines. No sample carries a
//! timestamp: the textfile collector rejects them and the Pushgateway refuses them. Counts per
//! (rule, severity) and per orphan rule are written for every rule that ran, zeros included, so
//! an alert can tell "none" from "not audited".
//!
//! `azaudit_*_total` are counters of this run (they start at 0 with each run, like a restarted
//! process). `azaudit_last_success_timestamp_seconds` is written when this run was complete, or,
//! with `--state`, from the last complete run, so one incomplete night does not make the series
//! vanish. Pure: never reads the clock or the environment.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AuditResult;
use crate::findings::{Finding, Severity};

/// Escapes a label value (exposition format: backslash, double quote, line feed).
pub fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn help_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as Prometheus parses it (Go float syntax).
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

/// Metric families in output order.
#[derive(Default)]
struct Families {
    order: Vec<&'static str>,
    fams: BTreeMap<&'static str, (&'static str, &'static str, Vec<String>)>,
}

impl Families {
    fn family(&mut self, name: &'static str, kind: &'static str, help: &'static str) {
        if !self.fams.contains_key(name) {
            self.order.push(name);
            self.fams.insert(name, (kind, help, Vec::new()));
        }
    }

    fn sample(&mut self, name: &'static str, labels: &[(&str, &str)], v: f64) {
        let mut line = name.to_string();
        if !labels.is_empty() {
            let ls: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
                .collect();
            let _ = write!(line, "{{{}}}", ls.join(","));
        }
        let _ = write!(line, " {}", num(v));
        if let Some(f) = self.fams.get_mut(name) {
            f.2.push(line);
        }
    }

    fn write(&self, w: &mut dyn Write) -> io::Result<()> {
        for name in &self.order {
            let (kind, help, samples) = &self.fams[name];
            // A family without samples is left out (e.g. no quota under pressure).
            if samples.is_empty() {
                continue;
            }
            writeln!(w, "# HELP {name} {}", help_text(help))?;
            writeln!(w, "# TYPE {name} {kind}")?;
            for s in samples {
                writeln!(w, "{s}")?;
            }
        }
        Ok(())
    }
}

fn unix(ts: &str) -> Option<f64> {
    OffsetDateTime::parse(ts, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp() as f64)
}

/// Rules whose findings are leftovers: cleanup-eligible, or named `orphaned-*` / `unattached-*`.
pub fn is_orphan_rule(rule: &str) -> bool {
    crate::checks::find(rule).is_some_and(|r| r.info.cleanup)
        || rule.starts_with("orphaned-")
        || rule.starts_with("unattached-")
}

/// The kind of leftover an orphan rule reports, stable per rule so that zeros and counts are
/// one series: the rule id without `orphaned-` / `unattached-` (`public-ip`, `lb-frontend`,
/// `lb-rule`, `nsg-rule`).
pub fn orphan_kind(rule: &str) -> &str {
    rule.strip_prefix("orphaned-")
        .or_else(|| rule.strip_prefix("unattached-"))
        .unwrap_or(rule)
}

/// What kind of thing a finding is about: the last ARM type in its id (`publicIPAddresses`,
/// `frontendIPConfigurations`, `securityRules`, ...), the plural of a `k8s://` reference.
pub fn resource_kind(resource: &str) -> String {
    if let Some(id) = azaudit_world::ResourceId::parse(resource)
        && let Some((t, _)) = id.types.last()
    {
        return t.clone();
    }
    if let Some(rest) = resource.strip_prefix("k8s://") {
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() >= 3 {
            return parts[parts.len() - 2].to_string();
        }
    }
    "other".into()
}

fn ev_f64(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_end_matches('%').parse().ok(),
        _ => None,
    }
}

fn ev_str(f: &Finding, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match f.evidence.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    })
}

/// A quota-pressure finding's numbers: (quota name, current, limit, ratio). The ratio is read from
/// evidence, else computed; a row without a usable limit is left out rather than drawn as 0 or ∞.
pub fn quota_of(f: &Finding) -> Option<(String, Option<f64>, Option<f64>, f64)> {
    if f.rule != "quota-pressure" {
        return None;
    }
    let current = ev_f64(f.evidence.get("current"));
    let limit = ev_f64(f.evidence.get("limit"));
    let ratio = ev_f64(f.evidence.get("ratio")).or_else(|| match (current, limit) {
        (Some(c), Some(l)) if l > 0.0 => Some(c / l),
        _ => None,
    })?;
    let quota = ev_str(f, &["quota", "quota_name", "name"]).unwrap_or_else(|| resource_kind(&f.resource));
    Some((quota, current, limit, ratio))
}

pub fn render(r: &AuditResult, w: &mut dyn Write) -> io::Result<()> {
    let mut m = Families::default();
    m.family(
        "azaudit_info",
        "gauge",
        "Version of the azaudit that wrote these metrics (always 1).",
    );
    m.sample("azaudit_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);

    m.family(
        "azaudit_audit_complete",
        "gauge",
        "1 when the audit read every list it needed; 0 when some part could not be audited (see azaudit_gaps and the report).",
    );
    m.sample(
        "azaudit_audit_complete",
        &[],
        if r.complete() { 1.0 } else { 0.0 },
    );
    m.family(
        "azaudit_gaps",
        "gauge",
        "Parts of the estate that could not be audited (lists that failed), by scope.",
    );
    let mut gaps: BTreeMap<&str, usize> = [("arm", 0), ("kubernetes", 0), ("other", 0)].into();
    for g in &r.gaps {
        let k = match g.scope {
            crate::inventory::GapScope::Arm { .. } => "arm",
            crate::inventory::GapScope::Kubernetes { .. } => "kubernetes",
            crate::inventory::GapScope::Other { .. } => "other",
        };
        *gaps.entry(k).or_default() += 1;
    }
    for (scope, n) in &gaps {
        m.sample("azaudit_gaps", &[("scope", scope)], *n as f64);
    }
    m.family(
        "azaudit_audit_timestamp_seconds",
        "gauge",
        "When this audit ran (Unix time).",
    );
    if let Some(t) = unix(&r.generated_at) {
        m.sample("azaudit_audit_timestamp_seconds", &[], t);
    }
    m.family(
        "azaudit_last_success_timestamp_seconds",
        "gauge",
        "When the last complete audit ran (Unix time): this run if complete, else the last complete run recorded in the state file.",
    );
    let last_success = if r.complete() {
        Some(r.generated_at.as_str())
    } else {
        r.history.as_ref().and_then(|h| h.last_complete_run.as_deref())
    };
    if let Some(t) = last_success.and_then(unix) {
        m.sample("azaudit_last_success_timestamp_seconds", &[], t);
    }
    m.family(
        "azaudit_audit_duration_seconds",
        "gauge",
        "How long the audit took, collection included.",
    );
    m.sample(
        "azaudit_audit_duration_seconds",
        &[],
        r.duration_ms as f64 / 1000.0,
    );

    m.family(
        "azaudit_findings",
        "gauge",
        "Findings by rule and severity (after --min-age), for every rule that ran.",
    );
    for rule in &r.rules {
        for sev in Severity::ALL {
            let n = r
                .findings
                .iter()
                .filter(|f| f.rule == *rule && f.severity == sev)
                .count();
            m.sample(
                "azaudit_findings",
                &[("rule", rule), ("severity", sev.as_str())],
                n as f64,
            );
        }
    }
    m.family(
        "azaudit_findings_cleanup_eligible",
        "gauge",
        "Findings a cleanup plan may act on (orphans older than --min-age).",
    );
    m.sample(
        "azaudit_findings_cleanup_eligible",
        &[],
        r.findings.iter().filter(|f| f.cleanup_eligible).count() as f64,
    );

    m.family(
        "azaudit_orphans",
        "gauge",
        "Leftover resources (findings of orphan rules) by kind and rule, for every orphan rule that ran; sum by (kind) for totals.",
    );
    for rule in r.rules.iter().filter(|id| is_orphan_rule(id)) {
        let n = r.findings.iter().filter(|f| f.rule == *rule).count();
        m.sample(
            "azaudit_orphans",
            &[("kind", orphan_kind(rule)), ("rule", rule)],
            n as f64,
        );
    }

    if let Some(h) = &r.history {
        m.family(
            "azaudit_findings_new",
            "gauge",
            "Findings that were not in the state file before this run.",
        );
        m.sample("azaudit_findings_new", &[], r.new_count() as f64);
        m.family(
            "azaudit_findings_resolved",
            "gauge",
            "Findings of earlier runs that this run no longer finds (scope audited completely).",
        );
        m.sample("azaudit_findings_resolved", &[], h.resolved.len() as f64);
        m.family(
            "azaudit_orphan_max_age_days",
            "gauge",
            "Age in days of the oldest finding of each orphan rule that ran, from the state file (0 when none).",
        );
        for rule in r.rules.iter().filter(|id| is_orphan_rule(id)) {
            let oldest = r
                .findings
                .iter()
                .filter(|f| f.rule == *rule)
                .filter_map(|f| r.seen(f).map(|s| s.age_days))
                .max()
                .unwrap_or(0);
            m.sample("azaudit_orphan_max_age_days", &[("rule", rule)], oldest as f64);
        }
    }

    m.family(
        "azaudit_quota_ratio",
        "gauge",
        "Usage over limit of each quota that quota-pressure reported (0.8 and above), per LB, NSG or regional usage row.",
    );
    m.family(
        "azaudit_quota_current",
        "gauge",
        "Current usage of a reported quota.",
    );
    m.family("azaudit_quota_limit", "gauge", "Limit of a reported quota.");
    for f in &r.findings {
        if let Some((quota, current, limit, ratio)) = quota_of(f) {
            let labels = [("resource", f.resource.as_str()), ("quota", quota.as_str())];
            m.sample("azaudit_quota_ratio", &labels, ratio);
            if let Some(c) = current {
                m.sample("azaudit_quota_current", &labels, c);
            }
            if let Some(l) = limit {
                m.sample("azaudit_quota_limit", &labels, l);
            }
        }
    }

    let s = &r.stats;
    for (name, help, v) in [
        (
            "azaudit_arm_requests_total",
            "ARM requests this run sent (retries included, cache hits excluded).",
            s.requests,
        ),
        (
            "azaudit_arm_pages_total",
            "ARM list pages this run read.",
            s.pages,
        ),
        (
            "azaudit_arm_retries_total",
            "ARM requests this run retried (429, 5xx, timeouts).",
            s.retries,
        ),
        (
            "azaudit_arm_throttled_total",
            "ARM responses with status 429 (throttled) this run received.",
            s.throttled_429,
        ),
        (
            "azaudit_arm_cache_hits_total",
            "ARM list pages this run took from its response cache.",
            s.cache_hits,
        ),
        (
            "azaudit_arm_response_bytes_total",
            "Bytes of ARM responses this run read.",
            s.bytes,
        ),
        (
            "azaudit_kubernetes_requests_total",
            "Kubernetes API requests this run sent.",
            s.kubernetes_requests,
        ),
    ] {
        m.family(name, "counter", help);
        m.sample(name, &[], v as f64);
    }
    m.family(
        "azaudit_arm_lowest_remaining_reads",
        "gauge",
        "Lowest x-ms-ratelimit-remaining-subscription-reads ARM reported during the audit, per subscription.",
    );
    for (sub, n) in &s.lowest_remaining_reads {
        m.sample(
            "azaudit_arm_lowest_remaining_reads",
            &[("subscription", sub)],
            *n as f64,
        );
    }
    m.write(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values_and_help() {
        assert_eq!(label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(label_value("x\ny"), r"x\ny");
        assert_eq!(help_text("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(3.0), "3");
        assert_eq!(num(f64::INFINITY), "+Inf");
    }

    #[test]
    fn kinds_and_quota_numbers() {
        assert_eq!(
            resource_kind(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/k/frontendIPConfigurations/a1"
            ),
            "frontendIPConfigurations"
        );
        assert_eq!(resource_kind("k8s://c/ns/services/x"), "services");
        assert_eq!(resource_kind("k8s://c/nodes/n"), "nodes");
        assert_eq!(resource_kind("file://x"), "other");
        let f = Finding::new("quota-pressure", Severity::High, "/subscriptions/s/x", "m")
            .evidence("quota", "frontendIPConfigurations")
            .evidence("current", 580)
            .evidence("limit", 600);
        let (q, c, l, ratio) = quota_of(&f).unwrap();
        assert_eq!(
            (q.as_str(), c, l),
            ("frontendIPConfigurations", Some(580.0), Some(600.0))
        );
        assert!((ratio - 580.0 / 600.0).abs() < 1e-9);
        let zero = Finding::new("quota-pressure", Severity::High, "/subscriptions/s/x", "m")
            .evidence("current", 0)
            .evidence("limit", 0);
        assert!(quota_of(&zero).is_none(), "no limit, no ratio");
        assert!(is_orphan_rule("orphaned-public-ip") && is_orphan_rule("unattached-public-ip"));
        assert!(!is_orphan_rule("empty-backend-pool"));
        assert_eq!(
            orphan_kind("unattached-public-ip"),
            orphan_kind("orphaned-public-ip")
        );
    }
}
