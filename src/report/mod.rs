//! HOW WE SAY IT: renderers over an [`AuditResult`], each writing to any `Write`.
//!
//! The JSON wire model (`json.rs`) is versioned and separate from the domain types, so the
//! domain can change without breaking the nightly consumers of `schema_version: 1`.

pub mod json;
pub mod markdown;
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
}

impl AuditResult {
    pub fn complete(&self) -> bool {
        self.gaps.is_empty()
    }
    pub fn count(&self, sev: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == sev).count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

/// Renders in the chosen format.
pub fn render(r: &AuditResult, format: Format, color: bool, w: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => table::render(r, color, w),
        Format::Json => json::render(r, w),
        Format::Markdown => markdown::render(r, w),
    }
}
