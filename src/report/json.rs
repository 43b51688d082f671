//! The JSON report, `schema_version: 1` (docs/report-schema.md, docs/report.schema.json).
//! Wire types only; fields are added, never renamed or removed, within a schema version.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use super::{AuditResult, CallStats, Resolved, Source};
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
    /// The state file's view of this run (`null` without `--state`).
    pub state: Option<StateV1<'a>>,
    /// Findings of earlier runs that this run no longer finds (listed once; empty without
    /// `--state`).
    pub resolved: &'a [Resolved],
}

#[derive(Serialize)]
pub struct StateV1<'a> {
    pub path: &'a str,
    /// The run before this one (`null`: the state file's first run, so every finding is new).
    pub previous_run: Option<&'a str>,
    pub last_complete_run: Option<&'a str>,
    pub min_age: Option<&'a str>,
    pub new_since_last_run: usize,
    pub resolved: usize,
    /// Entries not found by this run but kept: their rule did not run or their scope had a gap.
    pub held: usize,
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
    /// Whole days since `first_seen` (with `--state`).
    pub age_days: Option<u64>,
    /// Not in the state file before this run (with `--state`).
    pub new_since_last_run: Option<bool>,
    /// The rule's severity when `--min-age` lowered this young finding to `info`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downgraded_from: Option<&'static str>,
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
                age_days: r.seen(f).map(|s| s.age_days),
                new_since_last_run: r.seen(f).map(|s| s.new_since_last_run),
                downgraded_from: r.seen(f).and_then(|s| s.downgraded_from).map(|s| s.as_str()),
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
        state: r.history.as_ref().map(|h| StateV1 {
            path: &h.path,
            previous_run: h.previous_run.as_deref(),
            last_complete_run: h.last_complete_run.as_deref(),
            min_age: h.min_age.as_deref(),
            new_since_last_run: r.new_count(),
            resolved: h.resolved.len(),
            held: h.held,
        }),
        resolved: r.history.as_ref().map_or(&[], |h| &h.resolved),
    }
}

pub fn render(r: &AuditResult, w: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &report(r)).map_err(io::Error::other)?;
    writeln!(w)
}
