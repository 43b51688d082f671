//! `azaudit audit` and `azaudit demo`: inventory → checks → report → exit status.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::checks::{self, Context};
use crate::cli::{AuditArgs, ColorChoice, ReportArgs};
use crate::config::Config;
use crate::findings;
use crate::inventory::Inventory;
use crate::report::{self, AuditResult, CallStats, Format, Source};

/// Process exit status (README, `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Clean = 0,
    Findings = 1,
    Incomplete = 2,
    Error = 3,
}

/// Loads the config file (`--config`, or found in the usual places); none is fine.
pub fn load_config(args: &ReportArgs) -> anyhow::Result<Config> {
    match crate::config::locate(args.config.as_deref()) {
        Some(p) => Ok(crate::config::load(&p)?),
        None => Ok(Config::default()),
    }
}

/// Resolves `--only` / `--skip` (and the config's disabled rules) against the registry; unknown
/// ids are usage errors.
pub fn selected_rules(args: &ReportArgs, cfg: &Config) -> anyhow::Result<Vec<&'static str>> {
    for id in args.only.iter().chain(&args.skip) {
        if checks::find(id).is_none() {
            let known: Vec<_> = checks::registry().iter().map(|r| r.info.id).collect();
            bail!("unknown rule {id:?}; known rules: {}", known.join(", "));
        }
    }
    Ok(checks::registry()
        .iter()
        .map(|r| r.info.id)
        .filter(|id| args.only.is_empty() || args.only.iter().any(|o| o == id))
        .filter(|id| !args.skip.iter().any(|s| s == id))
        .filter(|id| args.only.iter().any(|o| o == id) || !cfg.disabled.iter().any(|d| d == id))
        .collect())
}

/// Runs the checks over an inventory.
pub fn evaluate(inv: &Inventory, rules: &[&'static str], stats: &CallStats) -> Vec<findings::Finding> {
    let ctx = Context::new(inv).with_stats(stats);
    let mut f = checks::run(&ctx, Some(rules));
    findings::sort(&mut f);
    f
}

pub fn now_rfc3339(override_: Option<&str>) -> anyhow::Result<String> {
    use time::format_description::well_known::Rfc3339;
    match override_ {
        Some(s) => {
            time::OffsetDateTime::parse(s, &Rfc3339)
                .with_context(|| format!("--now {s:?} is not RFC 3339"))?;
            Ok(s.to_string())
        }
        None => Ok(time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)?
            .format(&Rfc3339)?),
    }
}

pub fn build_result(
    inv: &Inventory,
    source: Source,
    args: &ReportArgs,
    cfg: &Config,
    stats: CallStats,
    started: Instant,
) -> anyhow::Result<AuditResult> {
    let rules = selected_rules(args, cfg)?;
    let generated_at = now_rfc3339(args.now.as_deref())?;
    let today =
        time::OffsetDateTime::parse(&generated_at, &time::format_description::well_known::Rfc3339)?.date();
    let (mut findings, suppressed) = crate::config::apply(cfg, evaluate(inv, &rules, &stats), today, &rules);
    findings::sort(&mut findings);
    Ok(AuditResult {
        generated_at,
        source,
        subscriptions: inv.subscriptions.clone(),
        clusters: inv.clusters.iter().map(|c| c.name.clone()).collect(),
        gaps: inv.gaps.clone(),
        findings,
        stats,
        duration_ms: started.elapsed().as_millis() as u64,
        rules,
        suppressed,
        history: None,
    })
}

/// Exit status from the totals: incomplete beats findings.
pub fn exit_for(r: &AuditResult, fail_on: findings::Severity) -> Exit {
    if !r.complete() {
        Exit::Incomplete
    } else if r.findings.iter().any(|f| f.severity >= fail_on) {
        Exit::Findings
    } else {
        Exit::Clean
    }
}

/// Renders to stdout or `--output` (atomically). A closed stdout (`| head`) is not an error.
pub fn emit(r: &AuditResult, args: &ReportArgs, color: ColorChoice) -> anyhow::Result<()> {
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let format = args
        .format
        .unwrap_or(if to_terminal { Format::Table } else { Format::Json });
    let color = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    // Extra formats first: if one cannot be written, the main output (often what a scraper
    // reads) is not replaced by a run that then fails.
    for (fmt, path) in &args.also_write {
        let mut buf = Vec::new();
        report::render(r, *fmt, false, &mut buf)?;
        azaudit_world::write_atomic(path, &buf).with_context(|| format!("write {}", path.display()))?;
    }
    let mut buf = Vec::new();
    report::render(r, format, color, &mut buf)?;
    match &args.output {
        Some(path) => {
            azaudit_world::write_atomic(path, &buf).with_context(|| format!("write {}", path.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&buf).and_then(|_| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                r => r?,
            }
        }
    }
    Ok(())
}

/// The end of every audit: merge the state file (`--state`, under its lock), render, then commit
/// the state only once the report is out (a report that failed to be written must not swallow
/// the one listing of resolved findings), and derive the exit status from the final severities.
pub fn finish(mut result: AuditResult, args: &ReportArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    let session = match &args.state {
        Some(path) => Some(crate::state::Session::begin(path, &mut result, args.min_age)?),
        None => None,
    };
    emit(&result, args, color)?;
    if let Some(s) = session {
        s.commit()?;
    }
    Ok(exit_for(&result, args.fail_on))
}

/// Load problems on stderr: lost data as warnings (each becomes a gap), duplicate ids once as a
/// summary (world-format.md: "the loader says so once"), details at debug level.
pub fn report_load_problems(world: &azaudit_world::World) {
    let mut duplicates = 0;
    for p in &world.problems {
        if p.lost_data {
            tracing::warn!(path = %p.path.display(), "{}", p.reason);
        } else {
            duplicates += 1;
            tracing::debug!(path = %p.path.display(), "{}", p.reason);
        }
    }
    if duplicates > 0 {
        tracing::info!(
            "{duplicates} resource id(s) appear in more than one file; the file that sorts last wins (-vv lists them)"
        );
    }
}

/// `azaudit audit`.
pub fn run(args: &AuditArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let cfg = load_config(&args.report)?;
    // Usage errors first: an unknown rule id must not cost a collection.
    selected_rules(&args.report, &cfg)?;
    let (inv, source, stats) = match &args.snapshot {
        Some(dir) => {
            let world = azaudit_world::World::load(dir)
                .with_context(|| format!("read snapshot {}", dir.display()))?;
            report_load_problems(&world);
            let source = Source::Snapshot {
                path: dir.display().to_string(),
            };
            (
                crate::snapshot::inventory_from_world(&world),
                source,
                CallStats::default(),
            )
        }
        None => {
            let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
            let c = rt.block_on(crate::live::collect(&args.auth, &args.live, &cfg))?;
            let inv = crate::snapshot::inventory_from_collection(&c.world, c.arm_converted);
            // The report needs only the inventory: free the raw world beside it.
            crate::live::drop_in_background(c.world);
            (inv, Source::Live, c.stats)
        }
    };
    let result = build_result(&inv, source, &args.report, &cfg, stats, started)?;
    finish(result, &args.report, color)
}
