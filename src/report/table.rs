//! The terminal report: findings grouped by severity in tables, then a summary line.

use std::io::{self, Write};

use comfy_table::{Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use super::AuditResult;
use crate::findings::Severity;

fn color_of(s: Severity) -> Color {
    match s {
        Severity::Critical => Color::Red,
        Severity::High => Color::DarkRed,
        Severity::Medium => Color::Yellow,
        Severity::Low => Color::Cyan,
        Severity::Info => Color::Grey,
    }
}

/// Shortens an ARM id for display: `…/<type>/<name>[/<sub>/<name>]` after the provider.
fn short(resource: &str) -> String {
    match resource.to_ascii_lowercase().find("/providers/") {
        Some(i) => {
            let rest = &resource[i + "/providers/".len()..];
            let mut parts = rest.splitn(2, '/');
            let _ns = parts.next();
            parts.next().unwrap_or(rest).to_string()
        }
        None => resource.to_string(),
    }
}

fn ansi(s: Severity) -> u8 {
    match s {
        Severity::Critical | Severity::High => 31,
        Severity::Medium => 33,
        Severity::Low => 36,
        Severity::Info => 37,
    }
}

pub fn render(r: &AuditResult, color: bool, w: &mut dyn Write) -> io::Result<()> {
    for sev in Severity::ALL {
        let fs: Vec<_> = r.findings.iter().filter(|f| f.severity == sev).collect();
        if fs.is_empty() {
            continue;
        }
        let title = format!("{} ({})", sev.as_str().to_uppercase(), fs.len());
        if color {
            writeln!(w, "\x1b[1;{}m{title}\x1b[0m", ansi(sev))?;
        } else {
            writeln!(w, "{title}")?;
        }
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(160);
        if !color {
            t.force_no_tty();
        }
        t.set_header(vec!["rule", "resource", "cluster", "finding"]);
        for f in fs {
            let mut rule = Cell::new(f.rule);
            if color {
                rule = rule.fg(color_of(sev));
            }
            t.add_row(vec![
                rule,
                Cell::new(short(&f.resource)),
                Cell::new(f.cluster.as_deref().unwrap_or("-")),
                Cell::new(match r.seen(f) {
                    // Orphan age and novelty from the state file (`--state`).
                    Some(s) if s.new_since_last_run => format!("{} [new]", f.message),
                    Some(s) => format!("{} [{} d old]", f.message, s.age_days),
                    None => f.message.clone(),
                }),
            ]);
        }
        writeln!(w, "{t}")?;
        writeln!(w)?;
    }
    let counts: Vec<String> = Severity::ALL
        .iter()
        .filter(|s| r.count(**s) > 0)
        .map(|s| format!("{} {}", r.count(*s), s))
        .collect();
    writeln!(
        w,
        "{} finding(s){} across {} subscription(s) and {} cluster(s); {} cleanup-eligible.",
        r.findings.len(),
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        },
        r.subscriptions.len(),
        r.clusters.len(),
        r.findings.iter().filter(|f| f.cleanup_eligible).count()
    )?;
    if let Some(h) = &r.history {
        writeln!(
            w,
            "Since the last run ({}): {} new, {} resolved{}.",
            h.previous_run
                .as_deref()
                .unwrap_or("none: first run of this state file"),
            r.new_count(),
            h.resolved.len(),
            if h.held > 0 {
                format!(", {} kept unseen (rule not run or scope incomplete)", h.held)
            } else {
                String::new()
            }
        )?;
        for x in &h.resolved {
            writeln!(
                w,
                "  resolved: {} {} (first seen {})",
                x.rule,
                short(&x.resource),
                x.first_seen
            )?;
        }
    }
    if !r.complete() {
        writeln!(w, "INCOMPLETE: {} part(s) could not be audited:", r.gaps.len())?;
        for g in &r.gaps {
            writeln!(
                w,
                "  - {}: {}",
                serde_json::to_string(&g.scope).unwrap_or_default(),
                g.cause
            )?;
        }
    }
    Ok(())
}
