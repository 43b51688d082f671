//! The JSON report, `schema_version: 1` (docs/report-schema.md, docs/report.schema.json).
//! Wire types only; fields are added, never renamed or removed, within a schema version.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use super::{AuditResult, CallStats, Source};
use crate::inventory::Gap;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
pub struct Report<'a> {
    pub schema_version: u32,
    pub tool: Tool,
    pub generated_at: &'a str,
    pub complete: bool,
    pub scope: Scope<'a>,
    pub gaps: &'a [Gap],
    pub summary: Summary,
    pub stats: &'a CallStats,
    pub duration_ms: u64,
    pub findings: Vec<FindingV1<'a>>,
    pub suppressed: Vec<SuppressedV1<'a>>,
}

#[derive(Serialize)]
pub struct SuppressedV1<'a> {
    pub rule: &'a str,
    pub resource: &'a str,
    pub reason: &'a str,
    pub suppressed_by: &'a str,
}

#[derive(Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Serialize)]
pub struct Scope<'a> {
    pub source: &'a Source,
    pub subscriptions: &'a [String],
    pub clusters: &'a [String],
    pub rules: &'a [&'static str],
}

#[derive(Serialize)]
pub struct Summary {
    pub total: usize,
    pub by_severity: BTreeMap<&'static str, usize>,
    pub by_rule: BTreeMap<&'static str, usize>,
    pub cleanup_eligible: usize,
}

#[derive(Serialize)]
pub struct FindingV1<'a> {
    pub rule: &'a str,
    pub severity: &'static str,
    pub resource: &'a str,
    pub cluster: Option<&'a str>,
    pub subscription: Option<&'a str>,
    pub message: &'a str,
    pub evidence: &'a BTreeMap<String, Value>,
    pub remediation: &'a str,
    pub cleanup_eligible: bool,
    pub first_seen: Option<&'a str>,
}

pub fn report(r: &AuditResult) -> Report<'_> {
    let mut by_severity = BTreeMap::new();
    for s in crate::findings::Severity::ALL {
        by_severity.insert(s.as_str(), r.count(s));
    }
    let mut by_rule = BTreeMap::new();
    for f in &r.findings {
        *by_rule.entry(f.rule).or_insert(0) += 1;
    }
    Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "azaudit",
            version: env!("CARGO_PKG_VERSION"),
        },
        generated_at: &r.generated_at,
        complete: r.complete(),
        scope: Scope {
            source: &r.source,
            subscriptions: &r.subscriptions,
            clusters: &r.clusters,
            rules: &r.rules,
        },
        gaps: &r.gaps,
        summary: Summary {
            total: r.findings.len(),
            by_severity,
            by_rule,
            cleanup_eligible: r.findings.iter().filter(|f| f.cleanup_eligible).count(),
        },
        stats: &r.stats,
        duration_ms: r.duration_ms,
        findings: r
            .findings
            .iter()
            .map(|f| FindingV1 {
                rule: f.rule,
                severity: f.severity.as_str(),
                resource: &f.resource,
                cluster: f.cluster.as_deref(),
                subscription: f.subscription.as_deref(),
                message: &f.message,
                evidence: &f.evidence,
                remediation: &f.remediation,
                cleanup_eligible: f.cleanup_eligible,
                first_seen: f.first_seen.as_deref(),
            })
            .collect(),
        suppressed: r
            .suppressed
            .iter()
            .map(|s| SuppressedV1 {
                rule: s.finding.rule,
                resource: &s.finding.resource,
                reason: &s.reason,
                suppressed_by: &s.location,
            })
            .collect(),
    }
}

pub fn render(r: &AuditResult, w: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &report(r)).map_err(io::Error::other)?;
    writeln!(w)
}
