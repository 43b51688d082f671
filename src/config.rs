//! `azaudit.toml`: severity overrides, rules turned off, suppressions (with a reason and an
//! optional expiry), and cluster definitions.
//!
//! Two stages: the raw TOML (with spans) → a validated [`Config`]. Validation reports every
//! problem at once, each with file and line, so a broken config is fixed in one pass.
//!
//! ```toml
//! [severity]
//! unattached-public-ip = "medium"
//!
//! [rules]
//! disable = ["dns-label-conflict"]
//!
//! [[suppress]]
//! rule = "orphaned-public-ip"
//! resource = "/subscriptions/*/resourceGroups/rg-dr/providers/Microsoft.Network/publicIPAddresses/*"
//! reason = "DR addresses are kept on purpose (CHG-1234)"
//! expires = "2027-03-31"
//!
//! [[cluster]]
//! context = "k8s-east"
//! cluster_name = "k8s-east"
//! subscription = "6d3f9a52-..."
//! resource_group = "rg-k8s-east"
//! ```

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::checks;
use crate::collect::ClusterHint;
use crate::findings::{Finding, Severity};

pub const FILE_NAME: &str = "azaudit.toml";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    severity: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    rules: RawRules,
    #[serde(default)]
    suppress: Vec<Spanned<RawSuppression>>,
    #[serde(default)]
    cluster: Vec<Spanned<RawCluster>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    disable: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuppression {
    rule: Spanned<String>,
    resource: Spanned<String>,
    reason: Option<Spanned<String>>,
    expires: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    context: Spanned<String>,
    cluster_name: Option<String>,
    subscription: Option<String>,
    resource_group: Option<String>,
    cloud_config: Option<PathBuf>,
}

/// A validated suppression.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    pub rule: String,
    /// Exact resource (case-insensitive) or a pattern with `*` wildcards.
    pub resource: String,
    pub reason: String,
    /// `YYYY-MM-DD`; the suppression stops applying after that day.
    pub expires: Option<time::Date>,
    /// `file:line` for messages.
    pub location: String,
}

/// The validated configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub path: Option<PathBuf>,
    pub severity: BTreeMap<String, Severity>,
    pub disabled: Vec<String>,
    pub suppressions: Vec<Suppression>,
    pub clusters: Vec<ClusterHint>,
}

/// Every problem of a config file, with file and line.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in {}:\n{}", .problems.len(), .path.display(), .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

fn line_of(text: &str, span: &Range<usize>) -> usize {
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

/// Finds the config: `--config` (must exist), else `./azaudit.toml`, else
/// `$XDG_CONFIG_HOME/azaudit/azaudit.toml` (`~/.config/...`).
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let cwd = PathBuf::from(FILE_NAME);
    if cwd.is_file() {
        return Some(cwd);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let p = base.join("azaudit").join(FILE_NAME);
    p.is_file().then_some(p)
}

/// Loads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        problems: vec![format!("cannot read: {e}")],
    })?;
    parse(&text, path)
}

/// Parses and validates config text; `path` is used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let err = |problems| ConfigError {
        path: path.to_path_buf(),
        problems,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, &s)).unwrap_or(0);
        err(vec![format!("{file}:{line}: {}", e.message())])
    })?;
    let mut problems = Vec::new();
    let mut cfg = Config {
        path: Some(path.to_path_buf()),
        ..Default::default()
    };
    let known = |id: &str| checks::find(id).is_some();
    let unknown_rule = |id: &str| {
        let ids: Vec<_> = checks::registry().iter().map(|r| r.info.id).collect();
        format!("unknown rule {id:?} (known: {})", ids.join(", "))
    };
    for (rule, sev) in &raw.severity {
        let line = line_of(text, &rule.span());
        if !known(rule.get_ref()) {
            problems.push(format!(
                "{file}:{line}: [severity] {}",
                unknown_rule(rule.get_ref())
            ));
        }
        match Severity::parse(sev.get_ref()) {
            Some(s) => {
                cfg.severity.insert(rule.get_ref().clone(), s);
            }
            None => problems.push(format!(
                "{file}:{}: [severity] {:?} is not a severity (critical, high, medium, low, info)",
                line_of(text, &sev.span()),
                sev.get_ref()
            )),
        }
    }
    for r in &raw.rules.disable {
        if known(r.get_ref()) {
            cfg.disabled.push(r.get_ref().clone());
        } else {
            problems.push(format!(
                "{file}:{}: [rules] disable: {}",
                line_of(text, &r.span()),
                unknown_rule(r.get_ref())
            ));
        }
    }
    for s in &raw.suppress {
        let line = line_of(text, &s.span());
        let s = s.get_ref();
        if !known(s.rule.get_ref()) {
            problems.push(format!(
                "{file}:{line}: [[suppress]] {}",
                unknown_rule(s.rule.get_ref())
            ));
        }
        let reason = s
            .reason
            .as_ref()
            .map(|r| r.get_ref().trim().to_string())
            .unwrap_or_default();
        if reason.is_empty() {
            problems.push(format!(
                "{file}:{line}: [[suppress]] needs a `reason` saying why the finding is accepted"
            ));
        }
        if s.resource.get_ref().trim().is_empty() {
            problems.push(format!(
                "{file}:{line}: [[suppress]] needs a `resource` (an id, or a pattern with *)"
            ));
        }
        let expires = match &s.expires {
            None => None,
            Some(e) => match time::Date::parse(
                e.get_ref(),
                time::macros::format_description!("[year]-[month]-[day]"),
            ) {
                Ok(d) => Some(d),
                Err(_) => {
                    problems.push(format!(
                        "{file}:{}: [[suppress]] expires {:?} is not a date (YYYY-MM-DD)",
                        line_of(text, &e.span()),
                        e.get_ref()
                    ));
                    None
                }
            },
        };
        cfg.suppressions.push(Suppression {
            rule: s.rule.get_ref().clone(),
            resource: s.resource.get_ref().clone(),
            reason,
            expires,
            location: format!("{file}:{line}"),
        });
    }
    for c in &raw.cluster {
        let line = line_of(text, &c.span());
        let c = c.get_ref();
        if c.context.get_ref().trim().is_empty() {
            problems.push(format!("{file}:{line}: [[cluster]] needs a `context`"));
        }
        if cfg.clusters.iter().any(|h| &h.context == c.context.get_ref()) {
            problems.push(format!(
                "{file}:{line}: [[cluster]] context {:?} is defined twice",
                c.context.get_ref()
            ));
        }
        cfg.clusters.push(ClusterHint {
            context: c.context.get_ref().clone(),
            cluster_name_tag: c.cluster_name.clone(),
            subscription_id: c.subscription.clone(),
            resource_group: c.resource_group.clone(),
            cloud_config_file: c.cloud_config.clone(),
        });
    }
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(err(problems))
    }
}

/// `*` matches any run of characters; comparison is case-insensitive (ARM ids are).
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let t = text.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !t.starts_with(part) {
                return false;
            }
            pos = part.len();
        } else if i == parts.len() - 1 {
            return t.len() >= pos + part.len() && t[pos..].ends_with(part);
        } else if let Some(found) = t[pos..].find(part) {
            pos += found + part.len();
        } else {
            return false;
        }
    }
    true
}

/// A finding held back by a suppression, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppressed {
    pub finding: Finding,
    pub reason: String,
    pub location: String,
}

/// Applies overrides and suppressions. Expired and unused suppressions become findings of the
/// `stale-suppression` meta rule, so they are not forgotten.
pub fn apply(
    cfg: &Config,
    findings: Vec<Finding>,
    today: time::Date,
    rules_ran: &[&str],
) -> (Vec<Finding>, Vec<Suppressed>) {
    let mut kept = Vec::new();
    let mut suppressed = Vec::new();
    let mut used = vec![false; cfg.suppressions.len()];
    for mut f in findings {
        if let Some(s) = cfg.severity.get(f.rule) {
            f.severity = *s;
        }
        let hit = cfg.suppressions.iter().enumerate().find(|(_, s)| {
            s.rule == f.rule
                && s.expires.is_none_or(|d| today <= d)
                && pattern_matches(&s.resource, &f.resource)
        });
        match hit {
            Some((i, s)) => {
                used[i] = true;
                suppressed.push(Suppressed {
                    finding: f,
                    reason: s.reason.clone(),
                    location: s.location.clone(),
                });
            }
            None => kept.push(f),
        }
    }
    for (s, used) in cfg.suppressions.iter().zip(used) {
        let expired = s.expires.is_some_and(|d| today > d);
        if !expired && (used || !rules_ran.contains(&s.rule.as_str())) {
            continue;
        }
        let msg = if expired {
            format!(
                "Suppression of {} for {} expired on {}: review it, then remove or extend it.",
                s.rule,
                s.resource,
                s.expires.map(|d| d.to_string()).unwrap_or_default()
            )
        } else {
            format!(
                "Suppression of {} for {} matched nothing in this run: remove it if the finding is gone.",
                s.rule, s.resource
            )
        };
        kept.push(
            Finding::new(
                crate::checks::STALE_SUPPRESSION,
                Severity::Low,
                format!("file://{}", s.location),
                msg,
            )
            .evidence("rule", &s.rule)
            .evidence("resource_pattern", &s.resource)
            .evidence("reason", &s.reason)
            .evidence("expired", expired)
            .remediation(format!(
                "Edit {} and remove or update this [[suppress]] entry.",
                s.location
            )),
        );
    }
    (kept, suppressed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(text, Path::new("azaudit.toml"))
    }

    #[test]
    fn reports_every_problem_with_lines() {
        let e = p(r#"
[severity]
orphaned-public-ip = "urgent"
no-such-rule = "low"

[rules]
disable = ["nope"]

[[suppress]]
rule = "orphaned-public-ip"
resource = "/x"
expires = "someday"
"#)
        .unwrap_err();
        let all = e.to_string();
        assert_eq!(e.problems.len(), 5, "{all}");
        assert!(
            all.contains("azaudit.toml:3:") && all.contains("\"urgent\" is not a severity"),
            "{all}"
        );
        assert!(
            all.contains("azaudit.toml:4:") && all.contains("unknown rule \"no-such-rule\""),
            "{all}"
        );
        assert!(all.contains("azaudit.toml:7:"), "{all}");
        assert!(all.contains("needs a `reason`"), "{all}");
        assert!(all.contains("is not a date"), "{all}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = p("[severity]\norphaned-public-ip = \n").unwrap_err();
        assert!(e.to_string().contains("azaudit.toml:2"), "{e}");
        let e = p("[severty]\n").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches(
            "/subscriptions/*/publicIPAddresses/pip-*",
            "/SUBSCRIPTIONS/s1/publicipaddresses/pip-dr"
        ));
        assert!(!pattern_matches(
            "/subscriptions/*/pip-*",
            "/subscriptions/s1/other"
        ));
        assert!(pattern_matches("exact", "EXACT"));
        assert!(!pattern_matches("exact", "exactly"));
        assert!(pattern_matches("*", "anything"));
    }

    #[test]
    fn overrides_suppressions_and_stale_ones() {
        let cfg = p(r#"
[severity]
unattached-public-ip = "medium"

[[suppress]]
rule = "orphaned-public-ip"
resource = "/subscriptions/*/keep-*"
reason = "kept for DR"

[[suppress]]
rule = "orphaned-public-ip"
resource = "/old"
reason = "was needed"
expires = "2026-01-01"

[[suppress]]
rule = "orphaned-lb-frontend"
resource = "/never"
reason = "nothing matches"
"#)
        .unwrap();
        let findings = vec![
            Finding::new("unattached-public-ip", Severity::Low, "/a", ""),
            Finding::new(
                "orphaned-public-ip",
                Severity::High,
                "/subscriptions/s/keep-1",
                "",
            ),
            Finding::new("orphaned-public-ip", Severity::High, "/old", ""),
        ];
        let today = time::macros::date!(2026 - 11 - 27);
        let ran = [
            "unattached-public-ip",
            "orphaned-public-ip",
            "orphaned-lb-frontend",
        ];
        let (kept, suppressed) = apply(&cfg, findings, today, &ran);
        assert_eq!(suppressed.len(), 1);
        assert_eq!(suppressed[0].reason, "kept for DR");
        assert_eq!(
            kept.iter().find(|f| f.resource == "/a").unwrap().severity,
            Severity::Medium
        );
        assert!(
            kept.iter().any(|f| f.resource == "/old"),
            "expired suppression no longer applies"
        );
        let stale: Vec<_> = kept
            .iter()
            .filter(|f| f.rule == crate::checks::STALE_SUPPRESSION)
            .collect();
        assert_eq!(stale.len(), 2, "expired + unused");
        assert!(stale.iter().any(|f| f.message.contains("expired")));
        assert!(stale.iter().any(|f| f.message.contains("matched nothing")));
    }
}
