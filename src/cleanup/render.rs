//! Plans for people: `--format markdown` (for review, e.g. in a pull request) and
//! `--format az-script` (a bash script of `az` commands, each preceded by its preconditions as
//! comments, for teams that run changes themselves). And the apply's progress lines and summary.
//!
//! Pure: renders into strings. The script only deletes what the plan names, in plan order, and
//! says plainly that it does not re-check anything (`azaudit cleanup apply` does).

use std::fmt::Write as _;

use serde_json::Value;

use super::engine::{ApplyReport, Outcome};
use super::plan::{Action, ActionKind, Plan};

fn short(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// `name (in <parent name>)` for sub-resources, else the name.
fn label(a: &Action) -> String {
    match &a.parent {
        Some(p) => format!("{} (in {})", short(&a.resource), short(p)),
        None => short(&a.resource).to_string(),
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn evidence_line(k: &str, v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("`{k}`: {}", md_escape(&text))
}

/// The plan as Markdown.
pub fn markdown(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# azaudit cleanup plan `{}`\n", plan.plan_id);
    let _ = writeln!(
        s,
        "Created {} by {} from {}. Tenant `{}`; subscriptions {}; clusters {}.",
        plan.created_at,
        plan.generator,
        plan.source,
        plan.tenant_id.as_deref().unwrap_or("unknown"),
        if plan.subscriptions.is_empty() {
            "none".to_string()
        } else {
            plan.subscriptions
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        if plan.clusters.is_empty() {
            "none".to_string()
        } else {
            plan.clusters
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if let Some(m) = &plan.min_age {
        let _ = writeln!(s, "Only findings first seen at least {m} ago are planned.");
    }
    if !plan.audit_complete {
        let _ = writeln!(
            s,
            "\n> The audit behind this plan was incomplete: what it could not see is not planned."
        );
    }
    let _ = writeln!(
        s,
        "\n**{} action(s).** Apply with `azaudit cleanup apply <plan.json>`: every action is re-read and re-checked live (Kubernetes listed again) just before its write, and written with `If-Match`.\n",
        plan.actions.len()
    );
    if !plan.actions.is_empty() {
        s.push_str("| # | action | resource | cluster | finding |\n|---|---|---|---|---|\n");
        for a in &plan.actions {
            let _ = writeln!(
                s,
                "| {} | {} | `{}` | {} | {}: {} |",
                a.order,
                a.kind,
                md_escape(&label(a)),
                a.cluster.as_deref().unwrap_or(""),
                a.finding.rule,
                md_escape(&a.finding.message)
            );
        }
        for a in &plan.actions {
            let _ = writeln!(s, "\n## {}. {} `{}`\n", a.order, a.kind, md_escape(&label(a)));
            let _ = writeln!(s, "- Resource: `{}`", a.resource);
            if let Some(p) = &a.parent {
                let pe = plan.parent(p).and_then(|x| x.etag.clone()).unwrap_or_default();
                let _ = writeln!(s, "- Written as: PUT of `{p}` (ETag as audited `{pe}`)");
            } else {
                let _ = writeln!(
                    s,
                    "- Written as: DELETE (ETag as audited `{}`)",
                    a.etag.as_deref().unwrap_or("")
                );
            }
            if a.removes.len() > 1 {
                let _ = writeln!(
                    s,
                    "- Removes: {}",
                    a.removes
                        .iter()
                        .map(|r| format!("`{}`", short(r)))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if !a.destinations.is_empty() {
                let _ = writeln!(s, "- Destinations removed: {}", a.destinations.join(", "));
            }
            let _ = writeln!(
                s,
                "- Finding: **{}** ({}): {}",
                a.finding.rule,
                a.finding.severity,
                md_escape(&a.finding.message)
            );
            if let Some(f) = &a.finding.first_seen {
                let _ = writeln!(s, "- First seen: {f}");
            }
            if !a.finding.evidence.is_empty() {
                s.push_str("- Evidence:\n");
                for (k, v) in &a.finding.evidence {
                    let _ = writeln!(s, "  - {}", evidence_line(k, v));
                }
            }
            s.push_str("- Preconditions:\n");
            for p in &a.preconditions {
                let _ = writeln!(s, "  - {}", md_escape(p));
            }
        }
    }
    if !plan.not_planned.is_empty() {
        s.push_str("\n## Not planned\n\n| rule | resource | why |\n|---|---|---|\n");
        for n in &plan.not_planned {
            let _ = writeln!(s, "| {} | `{}` | {} |", n.rule, n.resource, md_escape(&n.reason));
        }
    }
    s
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The `az` commands for one action.
fn az_commands(a: &Action) -> Vec<String> {
    let by_kind = |id: &str| -> Option<String> {
        let (coll, _) = super::edit::collection_and_name(id)?;
        let c = coll.to_ascii_lowercase();
        Some(match c.as_str() {
            "loadbalancingrules" => format!("az network lb rule delete --ids {}", q(id)),
            "probes" => format!("az network lb probe delete --ids {}", q(id)),
            "frontendipconfigurations" => format!("az network lb frontend-ip delete --ids {}", q(id)),
            "securityrules" => format!("az network nsg rule delete --ids {}", q(id)),
            _ => return None,
        })
    };
    match a.kind {
        ActionKind::DeletePublicIp => vec![format!("az network public-ip delete --ids {}", q(&a.resource))],
        ActionKind::RemoveFrontend => {
            // Rules first, then probes, then the frontend: what ARM accepts one at a time.
            let mut ids: Vec<&String> = a.removes.iter().collect();
            ids.sort_by_key(|id| {
                let c = super::edit::collection_and_name(id)
                    .map(|(c, _)| c.to_ascii_lowercase())
                    .unwrap_or_default();
                match c.as_str() {
                    "loadbalancingrules" => 0,
                    "probes" => 1,
                    _ => 2,
                }
            });
            ids.into_iter().filter_map(|id| by_kind(id)).collect()
        }
        ActionKind::DeleteLbRule | ActionKind::DeleteProbe | ActionKind::DeleteNsgRule => {
            by_kind(&a.resource).into_iter().collect()
        }
        ActionKind::RemoveNsgDestinations => {
            let audited: Vec<String> = a
                .finding
                .evidence
                .get("destinations")
                .and_then(Value::as_array)
                .map(|x| x.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            let kept: Vec<String> = audited
                .into_iter()
                .filter(|d| !a.destinations.contains(d))
                .map(|d| q(&d))
                .collect();
            vec![format!(
                "az network nsg rule update --ids {} --destination-address-prefixes {}",
                q(&a.resource),
                kept.join(" ")
            )]
        }
    }
}

/// The plan as a bash script of `az` commands.
pub fn az_script(plan: &Plan) -> String {
    let mut s = String::new();
    s.push_str("#!/usr/bin/env bash\n");
    let _ = writeln!(
        s,
        "# azaudit cleanup plan {} ({} action(s)), created {} by {} from {}.",
        plan.plan_id,
        plan.actions.len(),
        plan.created_at,
        plan.generator,
        plan.source
    );
    s.push_str("#\n# This script does NOT check anything: before each command, check its preconditions\n");
    s.push_str("# yourself (they are written above it). `azaudit cleanup apply <plan.json>` checks them\n");
    s.push_str("# live, writes with If-Match, and logs every step.\n");
    s.push_str("set -euo pipefail\n");
    for a in &plan.actions {
        let _ = writeln!(
            s,
            "\n# --- {}/{}: {} {} ---",
            a.order,
            plan.actions.len(),
            a.kind,
            label(a)
        );
        let _ = writeln!(
            s,
            "# finding: {} ({}): {}",
            a.finding.rule,
            a.finding.severity,
            a.finding.message.replace('\n', " ")
        );
        if let Some(e) = &a.etag {
            let _ = writeln!(s, "# ETag as audited: {e}");
        }
        s.push_str("# preconditions:\n");
        for p in &a.preconditions {
            let _ = writeln!(s, "#   - {}", p.replace('\n', " "));
        }
        for c in az_commands(a) {
            let _ = writeln!(s, "{c}");
        }
    }
    if !plan.not_planned.is_empty() {
        s.push_str("\n# Not planned:\n");
        for n in &plan.not_planned {
            let _ = writeln!(
                s,
                "#   {} {}: {}",
                n.rule,
                n.resource,
                n.reason.replace('\n', " ")
            );
        }
    }
    s
}

/// One progress line of an apply.
pub fn progress_line(a: &Action, total: usize, o: &Outcome) -> String {
    format!(
        "[{:>w$}/{total}] {:<23} {}: {} — {}",
        a.order,
        a.kind.as_str(),
        label(a),
        o.label(),
        o.detail(),
        w = total.to_string().len()
    )
}

/// The summary after an apply.
pub fn summary(r: &ApplyReport) -> String {
    let mut s = format!(
        "{}{} done, {} already done, {} skipped, {} failed",
        if r.dry_run { "dry run: " } else { "" },
        if r.dry_run {
            r.count("would apply")
        } else {
            r.count("done")
        },
        r.count("already done"),
        r.count("skipped"),
        r.count("FAILED")
    );
    if r.dry_run {
        s = s.replacen(" done,", " would be applied,", 1);
    }
    if let Some(n) = r.stopped_at {
        let _ = write!(
            s,
            "; stopped after action {n} failed (fix it and run the apply again, or pass --keep-going)"
        );
    }
    s.push('\n');
    s
}
