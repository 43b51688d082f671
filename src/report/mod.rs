//! HOW WE SAY IT: renderers over an [`AuditResult`], each writing to any `Write`.
//!
//! The JSON wire model (`json.rs`) is versioned and separate from the domain types, so the
//! domain can change without breaking the nightly consumers of `schema_version: 1`.

pub mod csv;
pub mod html;
pub mod json;
pub mod markdown;
pub mod prometheus;
pub mod table;

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::findings::{Finding, Severity};
use crate::inventory::Gap;

/// Call statistics of a run (zero for offline audits).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallStats {
    pub requests: u64,
    pub pages: u64,
    pub retries: u64,
    pub throttled_429: u64,
    pub cache_hits: u64,
    pub bytes: u64,
    /// Lowest `x-ms-ratelimit-remaining-subscription-reads` seen, per subscription.
    pub lowest_remaining_reads: BTreeMap<String, u64>,
    pub kubernetes_requests: u64,
}

/// Where the data came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Live,
    Snapshot { path: String },
    Demo,
}

/// Everything a renderer needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditResult {
    pub generated_at: String,
    pub source: Source,
    pub subscriptions: Vec<String>,
    pub clusters: Vec<String>,
    pub gaps: Vec<Gap>,
    pub findings: Vec<Finding>,
    pub stats: CallStats,
    pub duration_ms: u64,
    /// Rules that ran.
    pub rules: Vec<&'static str>,
    /// Findings held back by suppressions in the config file.
    pub suppressed: Vec<crate::config::Suppressed>,
    /// What the state file (`--state`) added: ages, what is new, what was resolved. `None`
    /// without a state file.
    pub history: Option<History>,
}

/// What a run learned from its state file (filled by `state::Session::begin`; renderers only read it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The state file, as given.
    pub path: String,
    /// When a run last wrote the state file before this one (`None`: its first run).
    pub previous_run: Option<String>,
    /// The newest run whose audit was complete, this one included (for
    /// `azaudit_last_success_timestamp_seconds`, which must survive an incomplete run).
    pub last_complete_run: Option<String>,
    /// `--min-age` as given (`7d`), when set.
    pub min_age: Option<String>,
    /// Per finding, by [`Finding::key`].
    pub seen: BTreeMap<(String, String), Seen>,
    /// Findings of earlier runs that this run, with complete data for their scope, no longer
    /// finds. Listed once: they leave the state file with this run.
    pub resolved: Vec<Resolved>,
    /// Entries of the state file not found by this run but kept, because their rule did not run
    /// or their scope had a gap (an incomplete run never resolves anything it could not see).
    pub held: usize,
}

/// A finding's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub first_seen: String,
    /// Whole days since `first_seen`.
    pub age_days: u64,
    /// Not in the state file before this run.
    pub new_since_last_run: bool,
    /// The severity before `--min-age` lowered it to info (the finding is also held back from
    /// cleanup).
    pub downgraded_from: Option<Severity>,
}

/// A finding an earlier run reported and this one no longer finds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    pub rule: String,
    pub resource: String,
    pub cluster: Option<String>,
    pub subscription: Option<String>,
    /// Its severity when last seen.
    pub severity: Severity,
    pub first_seen: String,
    pub last_seen: String,
}

impl AuditResult {
    pub fn complete(&self) -> bool {
        self.gaps.is_empty()
    }
    pub fn count(&self, sev: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == sev).count()
    }
    /// The finding's history, when a state file is used.
    pub fn seen(&self, f: &Finding) -> Option<&Seen> {
        self.history.as_ref().and_then(|h| h.seen.get(&f.key()))
    }
    /// Findings not in the state file before this run (0 without a state file).
    pub fn new_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| self.seen(f).is_some_and(|s| s.new_since_last_run))
            .count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
    /// Prometheus text exposition (node_exporter textfile collector, Pushgateway).
    Prometheus,
    /// RFC 4180, one row per finding.
    Csv,
    /// One self-contained HTML file (inline CSS and script, no external assets).
    Html,
}

/// Renders in the chosen format.
pub fn render(r: &AuditResult, format: Format, color: bool, w: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => table::render(r, color, w),
        Format::Json => json::render(r, w),
        Format::Markdown => markdown::render(r, w),
        Format::Prometheus => prometheus::render(r, w),
        Format::Csv => csv::render(r, w),
        Format::Html => html::render(r, w),
    }
}
