//! `azaudit demo`: serves the embedded demo world with the built-in mock on loopback and audits
//! it over HTTPS through exactly the path a live audit takes — the same flags, a real client
//! secret flow against the mock's Entra ID, the ARM request policy, kube-rs against the mock's
//! API servers — then prints the report.
//!
//! Nothing leaves loopback: the mock binds 127.0.0.1 only, every endpoint is given explicitly,
//! the loopback-only guard is on, and the response cache is off (the user's cache stays clean).

use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;

use crate::audit::{Exit, build_result, finish, load_config};
use crate::cli::{ColorChoice, ReportArgs};
use crate::collect::ClusterHint;
use crate::report::Source;

/// The live flags, parsed exactly as a user's would be.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct DemoFlags {
    #[command(flatten)]
    auth: crate::auth::AuthArgs,
    #[command(flatten)]
    live: crate::live::LiveArgs,
}

pub fn run(args: &ReportArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let mut cfg = load_config(args)?;
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    let files = tempfile::tempdir().context("temporary directory for the mock's files")?;
    let world = azaudit_mocks::demo::world();
    // The clusters as an operator would describe them in azaudit.toml.
    for c in &world.meta.clusters {
        if !cfg.clusters.iter().any(|h| h.context == c.name) {
            cfg.clusters.push(ClusterHint {
                context: c.name.clone(),
                cluster_name_tag: c.cluster_name_tag.clone(),
                ..Default::default()
            });
        }
    }
    let result = rt.block_on(async {
        let mock = azaudit_mocks::start(azaudit_mocks::ServeOptions {
            world,
            listen: "127.0.0.1:0".parse().expect("static address"),
            files_dir: files.path().to_path_buf(),
            config: None,
        })
        .await
        .context("start the demo mock")?;
        let r = &mock.ready;
        eprintln!(
            "azaudit demo: serving the demo world on {} (ARM) and {} Kubernetes API server(s), loopback only",
            r.arm_endpoint,
            r.k8s_endpoints.len()
        );
        let flags = DemoFlags::try_parse_from([
            "--auth",
            "service-principal",
            "--tenant-id",
            &r.tenant_id,
            "--client-id",
            &r.client_id,
            // `=` form: generated secrets may start with '-'.
            &format!("--client-secret={}", r.client_secret),
            "--arm-endpoint",
            &r.arm_endpoint,
            "--authority-host",
            &r.authority_host,
            "--ca-file",
            &r.ca_file,
            "--loopback-only",
            "--kubeconfig",
            &r.kubeconfig,
            "--all-contexts",
            "--no-cache",
        ])
        .context("demo flags")?;
        let collected = crate::live::collect(&flags.auth, &flags.live, &cfg).await;
        mock.shutdown().await;
        collected
    })?;
    let inv = crate::snapshot::inventory_from_collection(&result.world, result.arm_converted);
    let report = build_result(&inv, Source::Demo, args, &cfg, result.stats, started)?;
    finish(report, args, color)
}
