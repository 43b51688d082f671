//! `azaudit-mock`: serve a world over HTTPS on loopback, or generate one.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "azaudit-mock",
    version,
    about = "A fake Azure + Kubernetes on loopback, for azaudit's tests and demo"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a world directory over HTTPS on loopback until SIGINT/SIGTERM.
    Serve {
        /// The world directory (docs/world-format.md).
        #[arg(long)]
        world: PathBuf,
        /// ARM listen address; must be loopback. Other listeners take free ports on the same address.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Written as JSON once every listener is up (endpoints, credentials, file paths).
        #[arg(long)]
        ready_file: PathBuf,
        /// Where the CA, client certificate, token file and kubeconfig are written
        /// (default: a `mock-files` folder beside the ready file).
        #[arg(long)]
        files_dir: Option<PathBuf>,
        /// Items per ARM list page (overrides world.json).
        #[arg(long)]
        page_size: Option<usize>,
        /// Fixed latency per response in milliseconds (overrides world.json).
        #[arg(long)]
        latency_ms: Option<u64>,
        /// Read bucket size per subscription and principal (overrides world.json).
        #[arg(long)]
        reads_bucket: Option<u32>,
        /// Read refill per second (overrides world.json).
        #[arg(long)]
        reads_per_second: Option<f64>,
        /// Extra faults as JSON objects, e.g. '{"kind":"status","status":503,"nth":3}' (repeatable).
        #[arg(long = "fault")]
        faults: Vec<String>,
    },
    /// Write a generated world directory with planted defects and its ground truth
    /// (expected-findings.json, lookalikes.json, README.md).
    Generate(azaudit_mocks::generate::GenerateArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Command::Generate(args) = &cli.command {
        let summary = azaudit_mocks::generate::run(args)?;
        tracing::info!(
            out = %args.out.display(),
            findings = summary.findings.len(),
            lookalikes = summary.lookalikes.len(),
            "world generated"
        );
        return Ok(());
    }
    let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
    match cli.command {
        Command::Generate(_) => unreachable!("handled above"),
        Command::Serve {
            world,
            listen,
            ready_file,
            files_dir,
            page_size,
            latency_ms,
            reads_bucket,
            reads_per_second,
            faults,
        } => rt.block_on(async move {
            let loaded = azaudit_world::World::load(&world)?;
            for p in &loaded.problems {
                tracing::warn!(path = %p.path.display(), "{}", p.reason);
            }
            let mut config = azaudit_mocks::config::MockConfig::from_world_meta(loaded.meta.mock.as_ref())
                .map_err(anyhow::Error::msg)?;
            if let Some(n) = page_size {
                anyhow::ensure!(n > 0, "--page-size must be at least 1");
                config.page_size = n;
            }
            if let Some(n) = latency_ms {
                config.latency_ms = n;
            }
            if let Some(n) = reads_bucket {
                config.throttle.reads_bucket = n;
            }
            if let Some(n) = reads_per_second {
                config.throttle.reads_per_second = n;
            }
            for f in faults {
                config
                    .faults
                    .push(serde_json::from_str(&f).with_context(|| format!("--fault {f}"))?);
            }
            let files_dir = files_dir.unwrap_or_else(|| {
                ready_file
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."))
                    .join("mock-files")
            });
            let mock = azaudit_mocks::start(azaudit_mocks::ServeOptions {
                world: loaded,
                listen,
                files_dir,
                config: Some(config),
            })
            .await?;
            azaudit_world::write_json_atomic(&ready_file, &mock.ready)
                .with_context(|| format!("write ready file {}", ready_file.display()))?;
            tracing::info!(arm = %mock.ready.arm_endpoint, ready_file = %ready_file.display(), "mock serving");
            wait_for_signal().await;
            tracing::info!("shutting down");
            mock.shutdown().await;
            Ok(())
        }),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
