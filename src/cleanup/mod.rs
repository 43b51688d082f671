//! Safe cleanup (issue 7): `azaudit cleanup plan` turns an audit's cleanup-eligible findings into
//! an ordered, reviewable plan; `azaudit cleanup apply` carries it out, re-checking every action
//! live (ARM re-read, Kubernetes listed again) and writing with `If-Match`.
//!
//! Modules: `plan` (what to do and why, pure), `edit` (raw ARM JSON edits and digests, pure),
//! `render` (markdown, `az` script, progress), `log` (the append-only apply log), `engine`
//! (apply, over an abstract estate), `live` (the estate over ARM and the clusters).
//!
//! Exit status: 0 when every action was done or skipped as expected, 1 when an action failed,
//! 3 for usage, configuration and authentication errors (nothing was written).
//!
//! What it must not do: delete anything the rules and the safety rails of `plan` did not
//! single out; write without `If-Match`; retry a refused write (412, lock, in use); let a plan
//! act on a resource that changed since (other than through the plan's own earlier actions);
//! apply without a confirmation or `--yes`.

pub mod edit;
pub mod engine;
pub mod live;
pub mod log;
pub mod plan;
pub mod render;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};

pub use plan::{Action, ActionKind, Plan};

use crate::audit::Exit;
use crate::cli::ReportArgs;
use crate::collect::ClusterHint;
use crate::findings::Severity;
use crate::report::{CallStats, Source};

/// `azaudit cleanup ...`
#[derive(Subcommand, Debug)]
pub enum CleanupCommand {
    /// Audit (live, or a snapshot with --snapshot) and write the cleanup plan: for each
    /// cleanup-eligible finding, the action that removes it, in a safe order, with the ETag it
    /// was planned against, the evidence, and its preconditions. Writes nothing to Azure.
    Plan(PlanArgs),
    /// Carry out a plan: show it, ask for confirmation (--yes for cron), then for each action
    /// re-read the resource, re-check it live (Kubernetes included), and write with If-Match,
    /// logging every step. Exit 0 when everything was done or skipped as expected, 1 when an
    /// action failed, 3 for usage, configuration or authentication errors.
    Apply(ApplyArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// The plan file `cleanup apply` reads.
    Json,
    /// For review (a pull request, a change ticket).
    Markdown,
    /// A bash script of `az` commands with the preconditions as comments.
    AzScript,
}

#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// Plan from a world directory (`azaudit snapshot`, or built by hand) instead of a live audit.
    #[arg(long, value_name = "DIR")]
    pub snapshot: Option<PathBuf>,
    /// Write the plan to FILE (atomically) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Json)]
    pub format: PlanFormat,
    /// Also write the same plan in FORMAT to FILE (repeatable), e.g. `--also-write
    /// markdown=plan.md`: the review copy of exactly the plan that will be applied.
    #[arg(long, value_name = "FORMAT=FILE", value_parser = parse_also_write)]
    pub also_write: Vec<(PlanFormat, PathBuf)>,
    /// Also plan the deletion of this untagged, unattached public IP (an `unattached-public-ip`
    /// finding: created by a person, not by the cloud provider). Repeatable. Nothing
    /// user-created is ever planned otherwise.
    #[arg(long, value_name = "RESOURCE_ID")]
    pub include_user_created: Vec<String>,
    /// State file of the nightly audits (`azaudit audit --state`): gives each finding its age.
    /// Read only; the plan never writes it.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// With --state: plan nothing first seen less than AGE ago (e.g. 7d, 36h).
    #[arg(long, value_name = "AGE", requires = "state", value_parser = crate::state::parse_age)]
    pub min_age: Option<std::time::Duration>,
    /// Config file (default: ./azaudit.toml, then $XDG_CONFIG_HOME/azaudit/azaudit.toml):
    /// clusters, disabled rules, suppressions.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Timestamp of the plan (RFC 3339), for reproducible plans.
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub now: Option<String>,
    #[command(flatten)]
    pub live: crate::live::LiveArgs,
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyFormat {
    /// One line per action as it happens, then a summary.
    Text,
    /// One JSON document with every action's outcome, at the end.
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct ApplyArgs {
    /// The plan file (from `azaudit cleanup plan --out`).
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// Do not ask for confirmation (for cron). Without a terminal, apply refuses to run without it.
    #[arg(long)]
    pub yes: bool,
    /// Do everything (re-read, re-check, build each write) except the writes; no log is written.
    #[arg(long)]
    pub dry_run: bool,
    /// Go on after an unexpected failure (by default the apply stops at the first one; a lock or
    /// an in-use refusal never stops it).
    #[arg(long)]
    pub keep_going: bool,
    /// The append-only apply log (JSON lines; default: PLAN with `.log.jsonl` appended). A rerun
    /// reads it and goes on where the last run stopped.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ApplyFormat::Text)]
    pub format: ApplyFormat,
    /// Config file (clusters, as for `cleanup plan`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub live: crate::live::LiveArgs,
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,
}

fn parse_also_write(s: &str) -> Result<(PlanFormat, PathBuf), String> {
    let (format, file) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: use FORMAT=FILE, e.g. markdown=plan.md"))?;
    let format = PlanFormat::from_str(format.trim(), true)
        .map_err(|_| format!("{format:?} is not a plan format: use json, markdown or az-script"))?;
    if file.is_empty() {
        return Err(format!("{s:?}: FILE is empty"));
    }
    Ok((format, PathBuf::from(file)))
}

pub fn run(cmd: &CleanupCommand) -> anyhow::Result<Exit> {
    match cmd {
        CleanupCommand::Plan(a) => run_plan(a),
        CleanupCommand::Apply(a) => run_apply(a),
    }
}

fn render(plan: &Plan, format: PlanFormat) -> anyhow::Result<Vec<u8>> {
    Ok(match format {
        PlanFormat::Json => {
            let mut v = serde_json::to_vec_pretty(plan)?;
            v.push(b'\n');
            v
        }
        PlanFormat::Markdown => render::markdown(plan).into_bytes(),
        PlanFormat::AzScript => render::az_script(plan).into_bytes(),
    })
}

fn write_out(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(p) => azaudit_world::write_atomic(p, bytes).with_context(|| format!("write {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(bytes).and_then(|_| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => Ok(r?),
            }
        }
    }
}

/// `azaudit cleanup plan`.
pub fn run_plan(args: &PlanArgs) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let report_args = ReportArgs {
        format: None,
        output: None,
        fail_on: Severity::High,
        only: Vec::new(),
        // Only the rules cleanup acts on run (the config's disabled rules stay disabled).
        skip: crate::checks::registry()
            .iter()
            .map(|r| r.info.id.to_string())
            .filter(|id| !plan::CLEANUP_RULES.contains(&id.as_str()) && id != plan::USER_CREATED_RULE)
            .collect(),
        config: args.config.clone(),
        now: args.now.clone(),
        state: None,
        min_age: None,
        also_write: Vec::new(),
    };
    let cfg = crate::audit::load_config(&report_args)?;
    let (world, arm_converted, source, stats, plan_source) = match &args.snapshot {
        Some(dir) => {
            let world = azaudit_world::World::load(dir)
                .with_context(|| format!("read snapshot {}", dir.display()))?;
            crate::audit::report_load_problems(&world);
            (
                world,
                None,
                Source::Snapshot {
                    path: dir.display().to_string(),
                },
                CallStats::default(),
                format!("snapshot:{}", dir.display()),
            )
        }
        None => {
            let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
            let c = rt.block_on(crate::live::collect(&args.auth, &args.live, &cfg))?;
            (
                c.world,
                c.arm_converted,
                Source::Live,
                c.stats,
                "live".to_string(),
            )
        }
    };
    let inv = crate::snapshot::inventory_from_collection(&world, arm_converted);
    let mut result = crate::audit::build_result(&inv, source, &report_args, &cfg, stats, started)?;
    if let Some(path) = &args.state {
        // Read only: the ages come from the nightly audits; planning is not an audit run.
        let prev = crate::state::load(path)?;
        crate::state::merge(prev, &mut result, args.min_age, &path.display().to_string())?;
    }
    for g in &result.gaps {
        tracing::warn!(
            "the audit is incomplete, nothing is planned where it could not see: {}",
            g.cause
        );
    }
    let opts = plan::PlanOptions {
        include_user_created: args.include_user_created.clone(),
        min_age: args.min_age,
        source: plan_source,
    };
    let plan = plan::build(&world, &inv, &result, &opts);
    for (format, path) in &args.also_write {
        write_out(Some(path), &render(&plan, *format)?)?;
    }
    write_out(args.out.as_deref(), &render(&plan, args.format)?)?;
    eprintln!(
        "cleanup plan {}: {} action(s), {} finding(s) not planned{}",
        plan.plan_id,
        plan.actions.len(),
        plan.not_planned.len(),
        args.out
            .as_ref()
            .map(|p| format!(", written to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(Exit::Clean)
}

fn default_log(plan: &Path) -> PathBuf {
    let mut s = plan.as_os_str().to_os_string();
    s.push(".log.jsonl");
    PathBuf::from(s)
}

/// Shows the plan and asks. `Ok(false)`: the user said no.
fn confirm(plan: &Plan, log: Option<&Path>) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "refusing to apply without confirmation: stdin is not a terminal. Pass --yes to apply unattended (e.g. from cron), or --dry-run to see what would happen"
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Cleanup plan {} ({} action(s), created {}):",
        plan.plan_id,
        plan.actions.len(),
        plan.created_at
    )?;
    for a in &plan.actions {
        writeln!(out, "  {:>3}. {:<23} {}", a.order, a.kind.as_str(), a.resource)?;
    }
    if let Some(l) = log {
        writeln!(out, "Every step is logged to {}.", l.display())?;
    }
    write!(
        out,
        "Each action is re-checked live before its write. Apply these {} action(s)? Type 'yes' to continue: ",
        plan.actions.len()
    )?;
    out.flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(matches!(line.trim().to_ascii_lowercase().as_str(), "yes" | "y"))
}

/// `azaudit cleanup apply`.
pub fn run_apply(args: &ApplyArgs) -> anyhow::Result<Exit> {
    let bytes =
        std::fs::read(&args.plan).with_context(|| format!("read the plan {}", args.plan.display()))?;
    let plan = Plan::from_json(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not a usable plan: {e}", args.plan.display()))?;
    let log_path = args.log.clone().unwrap_or_else(|| default_log(&args.plan));
    if plan.actions.is_empty() {
        println!("The plan has no actions: nothing to do.");
        return Ok(Exit::Clean);
    }
    if !args.dry_run && !args.yes && !confirm(&plan, Some(&log_path))? {
        println!("Not applied.");
        return Ok(Exit::Clean);
    }

    // Re-check with the view the plan was made with: its clusters and subscriptions, unless the
    // flags say otherwise.
    let mut live = args.live.clone();
    let k = &live.kube;
    if k.contexts.is_empty() && !k.all_contexts && !k.in_cluster && !k.no_kubernetes {
        live.kube.contexts = plan.clusters.clone();
    }
    if live.subscriptions.is_empty() {
        live.subscriptions = plan.subscriptions.clone();
    }
    let report_args = ReportArgs {
        format: None,
        output: None,
        fail_on: Severity::High,
        only: Vec::new(),
        skip: Vec::new(),
        config: args.config.clone(),
        now: None,
        state: None,
        min_age: None,
        also_write: Vec::new(),
    };
    let mut cfg = crate::audit::load_config(&report_args)?;
    for c in &plan.cluster_details {
        if !cfg.clusters.iter().any(|h| h.context == c.name) {
            cfg.clusters.push(ClusterHint {
                context: c.name.clone(),
                cluster_name_tag: c.cluster_name_tag.clone(),
                subscription_id: c.subscription_id.clone(),
                resource_group: c.resource_group.clone(),
                cloud_config_file: None,
            });
        }
    }

    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    let collected = rt.block_on(crate::live::collect(&args.auth, &live, &cfg))?;
    if let (Some(want), Some(have)) = (&plan.tenant_id, &collected.identity.tenant_id)
        && !want.eq_ignore_ascii_case(have)
    {
        bail!(
            "the plan was made for tenant {want}, but the credential belongs to tenant {have}: nothing was applied. Use a credential of the plan's tenant"
        );
    }
    let targets = rt
        .block_on(crate::kube::targets(&live.kube))
        .context("reach the plan's clusters")?;
    let estate = live::LiveEstate {
        arm: collected.arm.clone(),
        targets,
        collected: Mutex::new(Some(collected.world)),
    };
    let mut log = if args.dry_run {
        None
    } else {
        let (log, prior) = log::ApplyLog::open(&log_path)?;
        let done_before = prior
            .iter()
            .filter(|e| e.plan_id == plan.plan_id && e.event == Some(log::Event::Done))
            .count();
        if done_before > 0 {
            eprintln!(
                "{}: {done_before} action(s) of this plan were done by earlier runs; they are re-checked and skipped",
                log_path.display()
            );
        }
        Some(log)
    };
    let total = plan.actions.len();
    let text = args.format == ApplyFormat::Text;
    let mut progress = |a: &Action, o: &engine::Outcome| {
        if text {
            println!("{}", render::progress_line(a, total, o));
        }
    };
    let opts = engine::ApplyOptions {
        dry_run: args.dry_run,
        keep_going: args.keep_going,
        config: cfg.clone(),
    };
    let report = rt.block_on(engine::apply(&plan, &estate, log.as_mut(), &opts, &mut progress))?;
    if text {
        print!("{}", render::summary(&report));
        if !args.dry_run {
            println!("log: {}", log_path.display());
        }
    } else {
        let mut v = serde_json::to_value(&report)?;
        if !args.dry_run {
            v["log"] = serde_json::json!(log_path.display().to_string());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(if report.failed() {
        Exit::Findings
    } else {
        Exit::Clean
    })
}
