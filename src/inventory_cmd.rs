//! `azaudit inventory` (counts and call statistics, or the whole inventory as JSON) and
//! `azaudit snapshot` (the collected world written as a world directory).

use std::io::Write;

use anyhow::{Context as _, bail};

use crate::audit::Exit;
use crate::cli::{InventoryArgs, InventoryFormat, SnapshotArgs};
use crate::config::Config;
use crate::inventory::Inventory;
use crate::report::CallStats;

fn config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    match crate::config::locate(path) {
        Some(p) => Ok(crate::config::load(&p)?),
        None => Ok(Config::default()),
    }
}

fn exit_for(inv: &Inventory) -> Exit {
    if inv.is_complete() {
        Exit::Clean
    } else {
        Exit::Incomplete
    }
}

fn write_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Counts per subscription and per cluster, then the call statistics and the gaps.
pub fn render_counts(inv: &Inventory, stats: &CallStats) -> String {
    use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "subscription",
        "LBs",
        "public IPs",
        "NSGs",
        "NICs",
        "VMs",
        "scale sets",
        "VMSS VMs",
        "VNets",
        "usages",
    ]);
    for s in &inv.subscriptions {
        let is = |x: &str| x.eq_ignore_ascii_case(s);
        let vmss_vms = inv
            .vmss_vms
            .iter()
            .filter(|v| {
                azaudit_world::ResourceId::parse(&v.id)
                    .and_then(|p| p.subscription)
                    .is_some_and(|x| is(&x))
            })
            .count();
        t.add_row(vec![
            s.clone(),
            inv.load_balancers
                .iter()
                .filter(|x| is(&x.subscription))
                .count()
                .to_string(),
            inv.public_ips
                .iter()
                .filter(|x| is(&x.subscription))
                .count()
                .to_string(),
            inv.nsgs
                .iter()
                .filter(|x| is(&x.subscription))
                .count()
                .to_string(),
            inv.nics
                .iter()
                .filter(|x| is(&x.subscription))
                .count()
                .to_string(),
            inv.vms.iter().filter(|x| is(&x.subscription)).count().to_string(),
            inv.vmss
                .iter()
                .filter(|x| is(&x.subscription))
                .count()
                .to_string(),
            vmss_vms.to_string(),
            inv.vnets
                .iter()
                .filter(|x| is(&x.subscription))
                .count()
                .to_string(),
            inv.usages
                .iter()
                .filter(|x| is(&x.subscription))
                .count()
                .to_string(),
        ]);
    }
    let mut c = Table::new();
    c.load_preset(UTF8_FULL_CONDENSED);
    c.set_header(vec![
        "cluster",
        "cluster name",
        "subscription",
        "resource group",
        "services",
        "LoadBalancer",
        "nodes",
        "endpoint slices",
        "kube-system pods",
    ]);
    for cl in &inv.clusters {
        c.add_row(vec![
            cl.name.clone(),
            cl.cluster_name_tag.clone(),
            cl.subscription_id.clone().unwrap_or_else(|| "?".into()),
            cl.resource_group.clone().unwrap_or_else(|| "?".into()),
            cl.services.len().to_string(),
            cl.services
                .iter()
                .filter(|s| s.is_load_balancer())
                .count()
                .to_string(),
            cl.nodes.len().to_string(),
            cl.endpoint_slices.len().to_string(),
            cl.pods.len().to_string(),
        ]);
    }
    let mut s = format!("{t}\n{c}\n");
    s.push_str(&format!(
        "ARM: {} request(s), {} page(s), {} retr(y/ies), {} throttled (429), {} cache hit(s), {} bytes; Kubernetes: {} request(s)\n",
        stats.requests, stats.pages, stats.retries, stats.throttled_429, stats.cache_hits, stats.bytes, stats.kubernetes_requests
    ));
    for (sub, n) in &stats.lowest_remaining_reads {
        s.push_str(&format!("lowest remaining ARM reads in {sub}: {n}\n"));
    }
    if inv.gaps.is_empty() {
        s.push_str("complete: every list was read\n");
    } else {
        s.push_str(&format!("INCOMPLETE: {} gap(s)\n", inv.gaps.len()));
        for g in &inv.gaps {
            s.push_str(&format!(
                "  - {}: {}\n",
                serde_json::to_string(&g.scope).unwrap_or_default(),
                g.cause
            ));
        }
    }
    s
}

pub fn run_inventory(args: &InventoryArgs) -> anyhow::Result<Exit> {
    let cfg = config(args.config.as_deref())?;
    let (inv, stats) = match &args.snapshot {
        Some(dir) => {
            let world = azaudit_world::World::load(dir)
                .with_context(|| format!("read snapshot {}", dir.display()))?;
            crate::audit::report_load_problems(&world);
            (
                crate::snapshot::inventory_from_world(&world),
                CallStats::default(),
            )
        }
        None => {
            let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
            let c = rt.block_on(crate::live::collect(&args.auth, &args.live, &cfg))?;
            let started = std::time::Instant::now();
            let inv = crate::snapshot::inventory_from_collection(&c.world, c.arm_converted);
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "inventory converted"
            );
            // Freeing the raw world takes tens of milliseconds on a large estate; the report
            // needs only the inventory, so it is freed beside the output instead of before it.
            crate::live::drop_in_background(c.world);
            (inv, c.stats)
        }
    };
    match args.format {
        InventoryFormat::Table => write_out(&render_counts(&inv, &stats))?,
        InventoryFormat::Json => {
            // Streamed: the inventory of a large estate is never held a second time as JSON.
            #[derive(serde::Serialize)]
            struct Out<'a> {
                inventory: &'a Inventory,
                stats: &'a CallStats,
            }
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let written = serde_json::to_writer_pretty(
                &mut out,
                &Out {
                    inventory: &inv,
                    stats: &stats,
                },
            )
            .map_err(std::io::Error::from)
            .and_then(|_| out.write_all(b"\n"))
            .and_then(|_| out.flush());
            match written {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                r => r.context("write the inventory")?,
            }
        }
    }
    Ok(exit_for(&inv))
}

pub fn run_snapshot(args: &SnapshotArgs) -> anyhow::Result<Exit> {
    if args.out.exists()
        && !args.force
        && std::fs::read_dir(&args.out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} is not empty: choose an empty directory or pass --force",
            args.out.display()
        );
    }
    let cfg = config(args.config.as_deref())?;
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    let mut c = rt.block_on(crate::live::collect(&args.auth, &args.live, &cfg))?;
    c.world.meta.recorded_at = Some(crate::audit::now_rfc3339(None)?);
    c.world
        .write(&args.out)
        .with_context(|| format!("write snapshot to {}", args.out.display()))?;
    let inv = crate::snapshot::inventory_from_collection(&c.world, c.arm_converted.take());
    eprint!("{}", render_counts(&inv, &c.stats));
    eprintln!("snapshot written to {}", args.out.display());
    Ok(exit_for(&inv))
}
