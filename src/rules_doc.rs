//! `azaudit rules` and `docs/rules.md`, both generated from the rule registry.

use std::io::Write;

use crate::checks::registry;
use crate::cli::RulesFormat;

/// The rule reference in Markdown (`docs/rules.md`; a test keeps the file current).
pub fn markdown() -> String {
    let mut s = String::from(
        "# Rules\n\n<!-- Generated from the rule registry (src/checks/). Do not edit: run `azaudit rules --format markdown > docs/rules.md`. -->\n\n",
    );
    s.push_str("| id | default severity | cleanup | title | source |\n|---|---|---|---|---|\n");
    let all: Vec<&crate::checks::RuleInfo> = registry()
        .iter()
        .map(|r| &r.info)
        .chain(crate::checks::META_RULES)
        .collect();
    for i in &all {
        s.push_str(&format!(
            "| [`{}`](#{}) | {} | {} | {} | {} |\n",
            i.id,
            i.id,
            i.default_severity,
            if i.cleanup { "eligible" } else { "no" },
            i.title,
            i.source
        ));
    }
    for i in &all {
        s.push_str(&format!(
            "\n## {}\n\n**{}** — default severity `{}`{}.\n\n{}\n\n**Remediation.** {}\n\n**Source.** {}\n",
            i.id,
            i.title,
            i.default_severity,
            if i.cleanup { ", cleanup-eligible" } else { "" },
            i.rationale,
            i.remediation,
            i.source
        ));
    }
    s
}

pub fn print(format: RulesFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let text = match format {
        RulesFormat::Markdown => markdown(),
        RulesFormat::Json => {
            let v: Vec<_> = registry()
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.info.id, "title": r.info.title, "default_severity": r.info.default_severity,
                        "rationale": r.info.rationale, "remediation": r.info.remediation,
                        "source": r.info.source, "cleanup_eligible": r.info.cleanup,
                    })
                })
                .collect();
            serde_json::to_string_pretty(&v)? + "\n"
        }
        RulesFormat::Table => {
            let mut t = comfy_table::Table::new();
            t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            t.set_header(vec!["id", "severity", "cleanup", "title"]);
            for r in registry() {
                t.add_row(vec![
                    r.info.id.to_string(),
                    r.info.default_severity.to_string(),
                    if r.info.cleanup {
                        "eligible".into()
                    } else {
                        "-".into()
                    },
                    r.info.title.to_string(),
                ]);
            }
            format!("{t}\n")
        }
    };
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_rules_md_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == super::markdown(),
            "docs/rules.md is stale: run `cargo run -- rules --format markdown > docs/rules.md`"
        );
    }
}
