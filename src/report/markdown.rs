//! Markdown for tickets and wikis: a summary, the gaps, and one table per severity.

use std::io::{self, Write};

use super::AuditResult;
use crate::findings::Severity;

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(r: &AuditResult, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "# azaudit report\n")?;
    writeln!(w, "- Generated: {}", r.generated_at)?;
    writeln!(
        w,
        "- Subscriptions: {}",
        if r.subscriptions.is_empty() {
            "none".into()
        } else {
            r.subscriptions.join(", ")
        }
    )?;
    writeln!(
        w,
        "- Clusters: {}",
        if r.clusters.is_empty() {
            "none".into()
        } else {
            r.clusters.join(", ")
        }
    )?;
    writeln!(
        w,
        "- Result: {}",
        if r.complete() {
            "complete".to_string()
        } else {
            format!("**incomplete** ({} gap(s))", r.gaps.len())
        }
    )?;
    let counts: Vec<String> = Severity::ALL
        .iter()
        .map(|s| format!("{} {}", r.count(*s), s))
        .collect();
    writeln!(w, "- Findings: {} ({})\n", r.findings.len(), counts.join(", "))?;
    if !r.gaps.is_empty() {
        writeln!(w, "## Not audited\n")?;
        writeln!(w, "| scope | cause |\n|---|---|")?;
        for g in &r.gaps {
            writeln!(
                w,
                "| {} | {} |",
                cell(&serde_json::to_string(&g.scope).unwrap_or_default()),
                cell(&g.cause)
            )?;
        }
        writeln!(w)?;
    }
    for sev in Severity::ALL {
        let fs: Vec<_> = r.findings.iter().filter(|f| f.severity == sev).collect();
        if fs.is_empty() {
            continue;
        }
        writeln!(w, "## {} ({})\n", sev.as_str().to_uppercase(), fs.len())?;
        writeln!(
            w,
            "| rule | resource | cluster | finding | remediation |\n|---|---|---|---|---|"
        )?;
        for f in fs {
            // Age and novelty from the state file (`--state`).
            let age = match r.seen(f) {
                Some(s) if s.new_since_last_run => " **(new)**".to_string(),
                Some(s) => format!(" ({} d old)", s.age_days),
                None => String::new(),
            };
            writeln!(
                w,
                "| `{}` | `{}` | {} | {}{} | `{}` |",
                f.rule,
                cell(&f.resource),
                f.cluster.as_deref().unwrap_or(""),
                cell(&f.message),
                age,
                cell(&f.remediation)
            )?;
        }
        writeln!(w)?;
    }
    if r.findings.is_empty() {
        writeln!(w, "No findings.")?;
    }
    if let Some(h) = r.history.as_ref().filter(|h| !h.resolved.is_empty()) {
        writeln!(w, "\n## Resolved since the last run ({})\n", h.resolved.len())?;
        writeln!(
            w,
            "| rule | resource | first seen | last seen |\n|---|---|---|---|"
        )?;
        for x in &h.resolved {
            writeln!(
                w,
                "| `{}` | `{}` | {} | {} |",
                x.rule,
                cell(&x.resource),
                x.first_seen,
                x.last_seen
            )?;
        }
    }
    Ok(())
}
