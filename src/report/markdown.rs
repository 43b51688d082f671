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
            writeln!(
                w,
                "| `{}` | `{}` | {} | {} | `{}` |",
                f.rule,
                cell(&f.resource),
                f.cluster.as_deref().unwrap_or(""),
                cell(&f.message),
                cell(&f.remediation)
            )?;
        }
        writeln!(w)?;
    }
    if r.findings.is_empty() {
        writeln!(w, "No findings.")?;
    }
    Ok(())
}
