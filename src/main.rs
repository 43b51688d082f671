//! `azaudit`: parse → run → exit status. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

use azaudit::audit::Exit;
use azaudit::cli::{Cli, Command, LogFormat};

fn init_logging(g: &azaudit::cli::GlobalArgs) {
    let level = if g.quiet {
        "error"
    } else {
        match g.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AZAUDIT_LOG").unwrap_or_else(|_| level.into());
    let b = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match g.log_format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.without_time().with_target(false).init(),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Error as u8 } else { 0 });
        }
    };
    init_logging(&cli.global);
    azaudit::live::QUIET.store(cli.global.quiet, std::sync::atomic::Ordering::Relaxed);
    let result = match &cli.command {
        Command::Audit(a) => azaudit::audit::run(a, cli.global.color),
        Command::Demo(r) => azaudit::demo::run(r, cli.global.color),
        Command::Inventory(a) => azaudit::inventory_cmd::run_inventory(a),
        Command::Snapshot(a) => azaudit::inventory_cmd::run_snapshot(a),
        Command::Doctor(d) => azaudit::doctor::run(d, cli.global.color),
        Command::Cleanup(c) => azaudit::cleanup::run(c),
        Command::Rules { format } => azaudit::rules_doc::print(*format).map(|_| Exit::Clean),
    };
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            eprintln!("azaudit: error: {e:#}");
            ExitCode::from(Exit::Error as u8)
        }
    }
}
