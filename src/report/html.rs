//! One self-contained HTML file a team can mail or publish: summary, gaps, a findings table that
//! sorts and filters, quota pressure and orphan ages drawn as bars, resolved findings, call
//! statistics.
//!
//! Rules: no external asset of any kind (CSS and script are inlined from `html.css` / `html.js`,
//! and a Content-Security-Policy with `default-src 'none'` forbids fetching anything, so the file
//! behaves the same offline, in a mail client or on an intranet); every value from the estate is
//! escaped (names can hold `<`, quotes, anything); the report reads fully without its script
//! (mail clients drop scripts: the script only adds filtering and sorting); the script is
//! allowed by its SHA-256 in the policy, so nothing injected could run even if escaping failed.
//! Pure: renders from the [`AuditResult`] only.

use std::fmt::Write as _;
use std::io::{self, Write};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::AuditResult;
use super::prometheus::{is_orphan_rule, orphan_kind, quota_of};
use crate::findings::Severity;

const CSS: &str = include_str!("html.css");
const JS: &str = include_str!("html.js");

/// Escapes text and attribute values (`&`, `<`, `>`, `"`, `'`).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `sha256-…` of the inline script, for the Content-Security-Policy.
pub fn script_hash() -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(JS.as_bytes()))
    )
}

/// A readable short form of a resource reference: for ARM ids, everything after the provider
/// namespace (`loadBalancers/kubernetes/frontendIPConfigurations/a1b2…`).
pub fn short(resource: &str) -> String {
    let lower = resource.to_ascii_lowercase();
    match lower.rfind("/providers/") {
        Some(i) => {
            let rest = &resource[i + "/providers/".len()..];
            rest.split_once('/').map_or(rest, |(_, r)| r).to_string()
        }
        None => resource.to_string(),
    }
}

/// The last name in a resource reference (`a54ffcaa…` of a frontend id, the node of a `k8s://` one).
fn name_of(resource: &str) -> &str {
    resource
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(resource)
}

fn rank(s: Severity) -> u8 {
    match s {
        Severity::Info => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

fn source_text(r: &AuditResult) -> String {
    match &r.source {
        super::Source::Live => "live estate".into(),
        super::Source::Snapshot { path } => format!("snapshot {path}"),
        super::Source::Demo => "demo world".into(),
    }
}

fn head(o: &mut String, r: &AuditResult) {
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src '{}'; img-src data:; base-uri 'none'; form-action 'none'\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"generator\" content=\"azaudit {}\">\n\
         <title>azaudit report {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        script_hash(),
        env!("CARGO_PKG_VERSION"),
        esc(&r.generated_at),
    );
}

fn header(o: &mut String, r: &AuditResult) {
    let badge = if r.complete() {
        "<span class=\"badge complete\">complete</span>".to_string()
    } else {
        format!(
            "<span class=\"badge incomplete\">incomplete: {} not audited</span>",
            plural(r.gaps.len(), "part", "parts")
        )
    };
    let _ = write!(
        o,
        "<header>\n<h1>azaudit report</h1>{badge}\n<p class=\"meta\">Generated {} from the {} &middot; {} &middot; {} &middot; {}</p>\n</header>\n",
        esc(&r.generated_at),
        esc(&source_text(r)),
        esc(&plural(r.subscriptions.len(), "subscription", "subscriptions")),
        esc(&plural(r.clusters.len(), "cluster", "clusters")),
        esc(&plural(r.rules.len(), "rule", "rules")),
    );
}

fn cards(o: &mut String, r: &AuditResult) {
    o.push_str("<section class=\"cards\" id=\"summary\" aria-label=\"Summary\">\n");
    let card = |o: &mut String, class: &str, n: usize, label: &str| {
        let _ = writeln!(
            o,
            "<div class=\"card {class}\"><div class=\"n\">{n}</div><div class=\"l\">{}</div></div>",
            esc(label)
        );
    };
    card(o, "neutral", r.findings.len(), "findings");
    for s in Severity::ALL {
        card(o, s.as_str(), r.count(s), s.as_str());
    }
    card(
        o,
        "neutral",
        r.findings.iter().filter(|f| f.cleanup_eligible).count(),
        "cleanup-eligible",
    );
    if let Some(h) = &r.history {
        card(o, "low", r.new_count(), "new since last run");
        card(o, "neutral", h.resolved.len(), "resolved");
    }
    o.push_str("</section>\n");
}

fn gaps(o: &mut String, r: &AuditResult) {
    if r.gaps.is_empty() {
        return;
    }
    o.push_str(
        "<section id=\"gaps\">\n<h2>Not audited</h2>\n<p class=\"muted\">These lists could not be read. Rules that need them reported nothing for that scope: a missing finding here proves nothing.</p>\n<table>\n<thead><tr><th>scope</th><th>cause</th></tr></thead>\n<tbody>\n",
    );
    for g in &r.gaps {
        let _ = writeln!(
            o,
            "<tr><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(&serde_json::to_string(&g.scope).unwrap_or_default()),
            esc(&g.cause)
        );
    }
    o.push_str("</tbody>\n</table>\n</section>\n");
}

fn findings(o: &mut String, r: &AuditResult) {
    let _ = write!(
        o,
        "<section id=\"findings\">\n<h2>Findings ({})</h2>\n<div class=\"controls\">\n\
         <input type=\"search\" id=\"f-text\" placeholder=\"Filter by rule, resource, cluster or text\" aria-label=\"Filter\">\n\
         <select id=\"f-sev\" aria-label=\"Severity\"><option value=\"\">All severities</option>",
        r.findings.len()
    );
    for s in Severity::ALL {
        let _ = write!(o, "<option value=\"{0}\">{0}</option>", s.as_str());
    }
    o.push_str("</select>\n<select id=\"f-rule\" aria-label=\"Rule\"><option value=\"\">All rules</option>");
    let mut rules: Vec<&str> = r.findings.iter().map(|f| f.rule).collect();
    rules.sort_unstable();
    rules.dedup();
    for rule in rules {
        let _ = write!(o, "<option value=\"{0}\">{0}</option>", esc(rule));
    }
    o.push_str("</select>\n");
    if r.history.is_some() {
        o.push_str("<label><input type=\"checkbox\" id=\"f-new\"> new since last run only</label>\n");
    }
    o.push_str(
        "<span id=\"f-count\"></span>\n</div>\n<table id=\"findings-table\">\n<thead><tr>\
         <th data-key=\"severity\" data-sort=\"num\">Severity</th><th data-key=\"rule\" data-sort=\"text\">Rule</th>\
         <th data-key=\"resource\" data-sort=\"text\">Resource</th><th data-key=\"cluster\" data-sort=\"text\">Cluster</th>\
         <th data-key=\"age\" data-sort=\"num\" class=\"num\">Age</th><th>Finding</th></tr></thead>\n<tbody>\n",
    );
    for (i, f) in r.findings.iter().enumerate() {
        let seen = r.seen(f);
        let is_new = seen.is_some_and(|s| s.new_since_last_run);
        let text = format!(
            "{} {} {} {}",
            f.rule,
            f.resource,
            f.cluster.as_deref().unwrap_or(""),
            f.message
        )
        .to_lowercase();
        let cluster = f.cluster.as_deref().unwrap_or("");
        let age = match seen {
            Some(s) => format!(
                "{} d{}",
                s.age_days,
                if is_new {
                    "<span class=\"badge new\">new</span>"
                } else {
                    ""
                }
            ),
            None => "<span class=\"muted\">&ndash;</span>".into(),
        };
        let downgraded = seen
            .and_then(|s| s.downgraded_from)
            .map(|d| {
                format!(
                    "<div class=\"muted\">Shown as info: younger than --min-age {} (rule severity {}); held back from cleanup.</div>",
                    esc(r.history.as_ref().and_then(|h| h.min_age.as_deref()).unwrap_or("")),
                    d.as_str()
                )
            })
            .unwrap_or_default();
        let evidence = serde_json::to_string_pretty(&f.evidence).unwrap_or_default();
        let _ = writeln!(
            o,
            "<tr data-i=\"{i}\" data-sev=\"{sev}\" data-rule=\"{rule}\" data-new=\"{new}\" data-text=\"{text}\">\
             <td data-v=\"{rank}\"><span class=\"sev {sev}\">{sev}</span></td>\
             <td data-v=\"{rule}\"><code>{rule}</code></td>\
             <td class=\"res mono\" data-v=\"{res_lower}\" title=\"{res}\">{short}</td>\
             <td data-v=\"{cluster}\">{cluster}</td>\
             <td class=\"num\" data-v=\"{age_v}\">{age}</td>\
             <td class=\"msg\">{msg}{downgraded}<details><summary>evidence and fix</summary>{first}<pre>{rem}</pre><pre>{evidence}</pre><div class=\"mono muted\">{res}</div></details></td></tr>",
            sev = f.severity.as_str(),
            rank = rank(f.severity),
            rule = esc(f.rule),
            new = if is_new { "1" } else { "0" },
            text = esc(&text),
            res = esc(&f.resource),
            res_lower = esc(&f.resource.to_lowercase()),
            short = esc(&short(&f.resource)),
            cluster = esc(cluster),
            age_v = seen.map_or(-1, |s| i64::try_from(s.age_days).unwrap_or(i64::MAX)),
            msg = esc(&f.message),
            first = f
                .first_seen
                .as_deref()
                .map(|t| format!("<div class=\"muted\">First seen {}</div>", esc(t)))
                .unwrap_or_default(),
            rem = esc(&f.remediation),
            evidence = esc(&evidence),
        );
    }
    o.push_str("</tbody>\n</table>\n");
    let _ = writeln!(
        o,
        "<div class=\"empty\" id=\"f-none\"{}>{}</div>",
        if r.findings.is_empty() { "" } else { " hidden" },
        if r.findings.is_empty() {
            "No findings."
        } else {
            "No finding matches the filter."
        }
    );
    o.push_str("</section>\n");
}

fn bar_class(ratio: f64) -> &'static str {
    // The quota-pressure thresholds (rule catalogue): medium at 80 %, high at 95 %, critical at the limit.
    if ratio >= 1.0 {
        "critical"
    } else if ratio >= 0.95 {
        "high"
    } else if ratio >= 0.8 {
        "medium"
    } else {
        "low"
    }
}

fn quota(o: &mut String, r: &AuditResult) {
    o.push_str("<section id=\"quota\">\n<h2>Quota pressure</h2>\n");
    let mut rows: Vec<_> = r
        .findings
        .iter()
        .filter_map(|f| quota_of(f).map(|q| (f, q)))
        .collect();
    rows.sort_by(|a, b| b.1.3.total_cmp(&a.1.3));
    if rows.is_empty() {
        let why = if r.rules.contains(&"quota-pressure") {
            "No quota is at 80 % or more of its limit."
        } else {
            "The quota-pressure rule did not run."
        };
        let _ = writeln!(o, "<p class=\"muted\">{why}</p>");
    } else {
        o.push_str("<div class=\"bars\">\n");
        for (f, (name, current, limit, ratio)) in rows {
            let label = format!("{} · {}", short(&f.resource), name);
            let value = match (current, limit) {
                (Some(c), Some(l)) => format!("{} / {} ({:.0} %)", fmt_num(c), fmt_num(l), ratio * 100.0),
                _ => format!("{:.0} %", ratio * 100.0),
            };
            let _ = writeln!(
                o,
                "<div class=\"name mono\" title=\"{}\">{}</div><div class=\"bar\"><span class=\"fill {}\" style=\"width:{:.1}%\"></span></div><div class=\"v\">{}</div>",
                esc(&f.resource),
                esc(&label),
                bar_class(ratio),
                (ratio * 100.0).clamp(0.0, 100.0),
                esc(&value)
            );
        }
        o.push_str(
            "</div>\n<p class=\"legend\">Amber from 80 %, red from 95 %, dark red at the limit.</p>\n",
        );
    }
    o.push_str("</section>\n");
}

fn ages(o: &mut String, r: &AuditResult) {
    o.push_str("<section id=\"ages\">\n<h2>Orphan ages</h2>\n");
    let Some(h) = &r.history else {
        o.push_str("<p class=\"muted\">Run nightly with <code>--state FILE</code> to track how long each orphan has existed.</p>\n</section>\n");
        return;
    };
    let mut rows: Vec<_> = r
        .findings
        .iter()
        .filter(|f| is_orphan_rule(f.rule))
        .filter_map(|f| r.seen(f).map(|s| (f, s)))
        .collect();
    rows.sort_by(|a, b| {
        b.1.age_days
            .cmp(&a.1.age_days)
            .then_with(|| a.0.resource.cmp(&b.0.resource))
    });
    if rows.is_empty() {
        o.push_str("<p class=\"muted\">No orphans.</p>\n</section>\n");
        return;
    }
    let min_age_days = h
        .min_age
        .as_deref()
        .and_then(|m| crate::state::parse_age(m).ok())
        .map(|d| d.as_secs() as f64 / 86_400.0);
    let max = rows
        .iter()
        .map(|(_, s)| s.age_days as f64)
        .fold(min_age_days.unwrap_or(0.0), f64::max)
        .max(1.0);
    o.push_str("<div class=\"bars\">\n");
    for (f, s) in rows {
        let mark = min_age_days
            .map(|m| {
                format!(
                    "<span class=\"mark\" style=\"left:{:.1}%\" title=\"--min-age\"></span>",
                    m / max * 100.0
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "<div class=\"name mono\" title=\"{}\">{}</div><div class=\"bar\"><span class=\"fill {}\" style=\"width:{:.1}%\"></span>{mark}</div><div class=\"v\">{} d</div>",
            esc(&f.resource),
            esc(&format!("{} {}", orphan_kind(f.rule), name_of(&f.resource))),
            f.severity.as_str(),
            (s.age_days as f64 / max * 100.0).clamp(0.0, 100.0),
            s.age_days
        );
    }
    o.push_str("</div>\n");
    let legend = match &h.min_age {
        Some(m) => format!(
            "Days since first seen. The black mark is --min-age {}: younger orphans are reported as info and held back from cleanup.",
            esc(m)
        ),
        None => "Days since first seen by a run with this state file.".into(),
    };
    let _ = writeln!(o, "<p class=\"legend\">{legend}</p>\n</section>");
}

fn resolved(o: &mut String, r: &AuditResult) {
    let Some(h) = &r.history else { return };
    let _ = write!(
        o,
        "<section id=\"resolved\">\n<h2>Resolved since the last run ({})</h2>\n",
        h.resolved.len()
    );
    if h.resolved.is_empty() {
        o.push_str("<p class=\"muted\">Nothing was resolved.</p>\n");
    } else {
        o.push_str("<table>\n<thead><tr><th>Severity</th><th>Rule</th><th>Resource</th><th>Cluster</th><th>First seen</th><th>Last seen</th></tr></thead>\n<tbody>\n");
        for x in &h.resolved {
            let _ = writeln!(
                o,
                "<tr><td><span class=\"sev {0}\">{0}</span></td><td><code>{1}</code></td><td class=\"res mono\" title=\"{2}\">{3}</td><td>{4}</td><td>{5}</td><td>{6}</td></tr>",
                x.severity.as_str(),
                esc(&x.rule),
                esc(&x.resource),
                esc(&short(&x.resource)),
                esc(x.cluster.as_deref().unwrap_or("")),
                esc(&x.first_seen),
                esc(&x.last_seen)
            );
        }
        o.push_str("</tbody>\n</table>\n");
    }
    if h.held > 0 {
        let _ = writeln!(
            o,
            "<p class=\"muted\">{} from earlier runs not found now but kept: their rule did not run or their scope was not audited completely.</p>",
            plural(h.held, "finding", "findings")
        );
    }
    o.push_str("</section>\n");
}

fn stats(o: &mut String, r: &AuditResult) {
    let s = &r.stats;
    o.push_str("<section id=\"calls\">\n<h2>Calls</h2>\n<table class=\"kv\">\n<tbody>\n");
    for (label, v) in [
        ("ARM requests", s.requests),
        ("ARM pages", s.pages),
        ("retries", s.retries),
        ("throttled (429)", s.throttled_429),
        ("cache hits", s.cache_hits),
        ("Kubernetes requests", s.kubernetes_requests),
    ] {
        let _ = writeln!(o, "<tr><td>{label}</td><td class=\"num\">{v}</td></tr>");
    }
    o.push_str("</tbody>\n</table>\n");
    if !s.lowest_remaining_reads.is_empty() {
        o.push_str("<p class=\"muted\">Lowest remaining ARM reads: ");
        let parts: Vec<String> = s
            .lowest_remaining_reads
            .iter()
            .map(|(sub, n)| format!("<span class=\"mono\">{}</span> {n}", esc(sub)))
            .collect();
        o.push_str(&parts.join(" &middot; "));
        o.push_str("</p>\n");
    }
    o.push_str("</section>\n");
}

fn footer(o: &mut String, r: &AuditResult) {
    let state = r
        .history
        .as_ref()
        .map(|h| {
            format!(
                " State file <span class=\"mono\">{}</span>{}.",
                esc(&h.path),
                h.previous_run
                    .as_deref()
                    .map(|p| format!(", previous run {}", esc(p)))
                    .unwrap_or_else(|| ", first run".into())
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "<footer>azaudit {} &middot; audit took {:.1} s &middot; rules: {}.{state}</footer>",
        env!("CARGO_PKG_VERSION"),
        r.duration_ms as f64 / 1000.0,
        esc(&r.rules.join(", "))
    );
}

pub fn render(r: &AuditResult, w: &mut dyn Write) -> io::Result<()> {
    let mut o = String::with_capacity(64 * 1024);
    head(&mut o, r);
    header(&mut o, r);
    cards(&mut o, r);
    gaps(&mut o, r);
    findings(&mut o, r);
    o.push_str("<div class=\"grid2\">\n");
    quota(&mut o, r);
    ages(&mut o, r);
    o.push_str("</div>\n");
    resolved(&mut o, r);
    stats(&mut o, r);
    footer(&mut o, r);
    let _ = write!(o, "<script>{JS}</script>\n</body>\n</html>\n");
    w.write_all(o.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_shortens() {
        assert_eq!(
            esc("<script>\"a\"&'b'"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;"
        );
        assert_eq!(
            short(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/k/frontendIPConfigurations/a1"
            ),
            "loadBalancers/k/frontendIPConfigurations/a1"
        );
        assert_eq!(short("k8s://c/nodes/n"), "k8s://c/nodes/n");
        assert!(script_hash().starts_with("sha256-") && script_hash().len() == 7 + 44);
    }
}
