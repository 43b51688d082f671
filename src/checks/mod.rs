//! WHAT WE CONCLUDE: one file per rule, pure functions over the inventory, one registry.
//!
//! A check never does I/O and never concludes from data the inventory lacks: where a listing it
//! needs is incomplete (a gap), it emits nothing for that scope.

pub mod context;
mod nodes;

mod aks_tunnel_unhealthy;
mod arm_read_budget_low;
mod basic_sku_retired;
mod cloud_config_invalid;
mod dns_label_conflict;
mod empty_backend_pool;
mod lb_health_probe_mismatch;
mod node_instance_not_found;
mod node_missing_from_backend_pool;
mod node_not_registered;
mod nsg_blocks_service_port;
mod orphaned_lb_frontend;
mod orphaned_lb_rule;
mod orphaned_nsg_rule;
mod orphaned_public_ip;
mod quota_pressure;
mod service_pending_load_balancer;
mod service_pip_resource_group_mismatch;
mod service_without_ready_endpoints;
mod stale_backend_pool_member;
mod unattached_public_ip;
mod virtual_node_not_excluded;

#[cfg(test)]
pub(crate) mod net_testutil;
#[cfg(test)]
pub(crate) mod testutil;

pub use context::Context;

use crate::findings::{Finding, Severity};

/// What a rule is, for `azaudit rules`, `docs/rules.md` and the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    /// Stable kebab-case id, never renamed or reused.
    pub id: &'static str,
    pub title: &'static str,
    pub default_severity: Severity,
    /// Why it matters.
    pub rationale: &'static str,
    /// What to do, in the troubleshooting guide's style.
    pub remediation: &'static str,
    /// The section of the troubleshooting guide (or other source) it comes from.
    pub source: &'static str,
    /// Whether `cleanup plan` may act on its findings.
    pub cleanup: bool,
}

/// A rule: its description and its check.
pub struct Rule {
    pub info: RuleInfo,
    pub check: fn(&Context, &mut Vec<Finding>),
}

/// Every rule, in catalogue order.
pub fn registry() -> &'static [Rule] {
    static RULES: &[Rule] = &[
        orphaned_public_ip::RULE,
        unattached_public_ip::RULE,
        orphaned_lb_frontend::RULE,
        orphaned_lb_rule::RULE,
        orphaned_nsg_rule::RULE,
        empty_backend_pool::RULE,
        node_missing_from_backend_pool::RULE,
        stale_backend_pool_member::RULE,
        node_not_registered::RULE,
        node_instance_not_found::RULE,
        virtual_node_not_excluded::RULE,
        service_pending_load_balancer::RULE,
        service_pip_resource_group_mismatch::RULE,
        service_without_ready_endpoints::RULE,
        nsg_blocks_service_port::RULE,
        lb_health_probe_mismatch::RULE,
        dns_label_conflict::RULE,
        quota_pressure::RULE,
        basic_sku_retired::RULE,
        cloud_config_invalid::RULE,
        arm_read_budget_low::RULE,
        aks_tunnel_unhealthy::RULE,
    ];
    RULES
}

/// The meta rule for suppressions in `azaudit.toml` that expired or matched nothing; its
/// findings come from `config::apply`, not from a check over the inventory.
pub const STALE_SUPPRESSION: &str = "stale-suppression";

/// Rules whose findings come from the run itself rather than the inventory.
pub const META_RULES: &[RuleInfo] = &[RuleInfo {
    id: STALE_SUPPRESSION,
    title: "Suppression that expired or matched nothing",
    default_severity: Severity::Low,
    rationale: "A suppression hides a finding on purpose; one that expired or no longer matches anything is a decision nobody is reviewing.",
    remediation: "Edit azaudit.toml: extend the expiry after reviewing the finding, or delete the entry.",
    source: "azaudit.toml",
    cleanup: false,
}];

pub fn find(id: &str) -> Option<&'static Rule> {
    registry().iter().find(|r| r.info.id == id)
}

/// Runs the selected rules (all when `selected` is `None`) and returns their raw findings
/// (default severities, unsorted).
pub fn run(ctx: &Context, selected: Option<&[&str]>) -> Vec<Finding> {
    let mut out = Vec::new();
    for rule in registry() {
        if selected.is_some_and(|s| !s.contains(&rule.info.id)) {
            continue;
        }
        let start = out.len();
        (rule.check)(ctx, &mut out);
        for f in &mut out[start..] {
            debug_assert_eq!(f.rule, rule.info.id, "a check emitted another rule's id");
            if f.remediation.is_empty() {
                f.remediation = rule.info.remediation.to_string();
            }
        }
    }
    // One finding per (rule, resource): a resource seen through two clusters is reported once.
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|f| seen.insert(f.key()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_kebab_case_and_documented() {
        let mut ids = std::collections::BTreeSet::new();
        for r in registry() {
            assert!(ids.insert(r.info.id), "duplicate id {}", r.info.id);
            assert!(
                r.info.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{} is not kebab-case",
                r.info.id
            );
            assert!(
                !r.info.title.is_empty() && !r.info.rationale.is_empty() && !r.info.remediation.is_empty()
            );
            assert!(!r.info.source.is_empty());
        }
    }
}
