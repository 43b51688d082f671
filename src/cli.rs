//! The command line: clap derive types only. Parsing happens here; turning flags into validated
//! settings happens in the command modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::findings::Severity;
use crate::report::Format;

pub const EXIT_CODES: &str = "Exit status:
  0  the audit is complete and found nothing at or above --fail-on
  1  the audit is complete and found something at or above --fail-on
  2  the audit is incomplete (some list failed: see the report's gaps); beats 1
  3  could not audit at all (usage, configuration or authentication error)";

#[derive(Parser, Debug)]
#[command(
    name = "azaudit",
    version,
    about = "Audits what Kubernetes' Azure cloud provider leaves behind: orphaned public IPs, frontends, rules and NSG rules, empty backend pools, drifted nodes.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Colour in terminal output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr, no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Audit live estates (or a snapshot with --snapshot) and report findings.
    #[command(after_help = EXIT_CODES)]
    Audit(AuditArgs),
    /// Audit the embedded demo world, served on loopback by the built-in mock, over HTTPS.
    #[command(after_help = EXIT_CODES)]
    Demo(ReportArgs),
    /// Collect everything and print counts per subscription and cluster with the call statistics
    /// (`--format json`: the whole inventory).
    Inventory(InventoryArgs),
    /// Record everything collected as a world directory (secrets redacted, gaps recorded), for
    /// `azaudit audit --snapshot DIR` later or elsewhere.
    Snapshot(SnapshotArgs),
    /// Check that azaudit can audit from here: cloud, credential, token, ARM permissions per
    /// subscription, Kubernetes access per context. Exit 0 when everything needed works, else 3.
    Doctor(crate::doctor::DoctorArgs),
    /// Plan and apply the safe cleanup of what the audit found orphaned: `cleanup plan`, then
    /// `cleanup apply PLAN`.
    #[command(subcommand)]
    Cleanup(crate::cleanup::CleanupCommand),
    /// List the rules.
    Rules {
        #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
        format: RulesFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    Table,
    Json,
    Markdown,
}

#[derive(Args, Debug, Clone)]
pub struct InventoryArgs {
    /// Read a world directory instead of collecting live.
    #[arg(long, value_name = "DIR")]
    pub snapshot: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InventoryFormat::Table)]
    pub format: InventoryFormat,
    /// Config file (cluster definitions).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub live: crate::live::LiveArgs,
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InventoryFormat {
    Table,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct SnapshotArgs {
    /// The directory to write (must be empty or absent unless --force).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write into a non-empty directory (files of the same name are replaced).
    #[arg(long)]
    pub force: bool,
    /// Config file (cluster definitions).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub live: crate::live::LiveArgs,
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,
}

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    /// Audit a world directory offline (from `azaudit snapshot`, or built by hand); no network.
    #[arg(long, value_name = "DIR")]
    pub snapshot: Option<PathBuf>,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub live: crate::live::LiveArgs,
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// Report format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the report to FILE (atomically) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Lowest severity that makes the exit status 1.
    #[arg(long, value_parser = parse_severity, default_value = "high")]
    pub fail_on: Severity,
    /// Run only these rules (repeatable, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "RULE")]
    pub only: Vec<String>,
    /// Skip these rules (repeatable, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "RULE")]
    pub skip: Vec<String>,
    /// Config file (default: ./azaudit.toml, then $XDG_CONFIG_HOME/azaudit/azaudit.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Timestamp to write as the report's generation time (RFC 3339), for reproducible reports.
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub now: Option<String>,
    /// State file for nightly runs (created if missing): remembers when each finding was first
    /// and last seen, so reports show its age, what is new since the last run and what was
    /// resolved. Written atomically under FILE.lock, so overlapping runs are safe.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// With --state: cleanup-eligible findings first seen less than AGE ago (e.g. 7d, 36h) are
    /// reported as info and held back from cleanup, so --fail-on ignores them.
    #[arg(long, value_name = "AGE", requires = "state", value_parser = crate::state::parse_age)]
    pub min_age: Option<std::time::Duration>,
    /// Also write the report in FORMAT to FILE (repeatable), e.g. `--also-write html=report.html
    /// --also-write json=report.json`: one run, every format a nightly job needs.
    #[arg(long, value_name = "FORMAT=FILE", value_parser = parse_also_write)]
    pub also_write: Vec<(Format, PathBuf)>,
}

fn parse_also_write(s: &str) -> Result<(Format, PathBuf), String> {
    let (format, file) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: use FORMAT=FILE, e.g. html=/reports/azaudit.html"))?;
    let format = Format::from_str(format.trim(), true).map_err(|_| {
        let names: Vec<String> = Format::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        format!("{format:?} is not a format: use one of {}", names.join(", "))
    })?;
    if file.is_empty() {
        return Err(format!("{s:?}: FILE is empty"));
    }
    Ok((format, PathBuf::from(file)))
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s)
        .ok_or_else(|| format!("unknown severity {s:?}: use critical, high, medium, low or info"))
}
