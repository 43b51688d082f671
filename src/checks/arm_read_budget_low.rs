//! `arm-read-budget-low`: during this audit ARM reported a remaining read budget below
//! [`LOW_REMAINING_READS`] for a subscription, or throttled the audit (HTTP 429). The cluster's
//! cloud provider reads through the same subscription budget (per subscription, per principal,
//! plus a global limit 15× that; domain.md §5.1), so it is likely throttled too — which is what
//! the guide's "Azure ARM API 调用请求过多" section describes.
//!
//! It reads only the run's call statistics (`Context::stats`); it never concludes from a world:
//! an offline audit has no statistics and this rule emits nothing.

use std::collections::BTreeMap;

use super::{Context, Rule, RuleInfo};
use crate::findings::{Finding, Severity};

/// Below this many remaining subscription reads (`x-ms-ratelimit-remaining-subscription-reads`),
/// the budget is called low. Subscription reads are a token bucket of 250 refilled at 25/s
/// (domain.md §5.1, learn.microsoft.com "request-limits-and-throttling"); below 100 more than
/// 60 % of the bucket is gone. 100 is also where cloud-provider-azure's `armbalancer` reacts to a
/// draining budget (`pkg/azclient/utils/armbalancer`).
pub const LOW_REMAINING_READS: u64 = 100;

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "arm-read-budget-low",
        title: "ARM read budget low or exhausted during the audit",
        default_severity: Severity::Medium,
        rationale: "Azure Resource Manager throttles reads per subscription and principal (a bucket of 250 refilled at 25 per second, and a global limit across principals). When the audit sees the budget drained or gets 429 answers, the cloud provider in that subscription is most likely throttled too: Services stay <pending> and node/pool updates stall.",
        remediation: "Find who spends the budget (az monitor activity-log list --status Failed, the cloud-controller-manager's 429 errors); on the cluster enable the provider's caches and rate limits (cloudProviderRateLimit, useInstanceMetadata: true), and run audits less often or with a lower --max-rps.",
        source: "Azure ARM API 调用请求过多",
        cleanup: false,
    },
    check,
};

/// What the run's statistics say about one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Budget {
    /// Lowest remaining reads seen for the subscription, if ARM reported any.
    pub lowest_remaining: Option<u64>,
    /// 429 answers of the whole run (the counters are not kept per subscription).
    pub throttled_429: u64,
}

impl Budget {
    pub fn is_low(&self) -> bool {
        self.lowest_remaining.is_some_and(|r| r < LOW_REMAINING_READS) || self.throttled_429 > 0
    }

    /// One sentence for messages and evidence.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = self.lowest_remaining.filter(|r| *r < LOW_REMAINING_READS) {
            parts.push(format!(
                "ARM reported only {r} remaining subscription reads (threshold {LOW_REMAINING_READS})"
            ));
        }
        if self.throttled_429 > 0 {
            parts.push(format!(
                "ARM throttled this audit {} time(s) with HTTP 429",
                self.throttled_429
            ));
        }
        parts.join("; ")
    }
}

/// The budget of one subscription in this run, `None` for offline audits.
pub(super) fn budget(ctx: &Context, subscription: &str) -> Option<Budget> {
    let stats = ctx.stats?;
    let lowest_remaining = stats
        .lowest_remaining_reads
        .iter()
        .filter(|(s, _)| s.eq_ignore_ascii_case(subscription))
        .map(|(_, r)| *r)
        .min();
    Some(Budget {
        lowest_remaining,
        throttled_429: stats.throttled_429,
    })
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    let Some(stats) = ctx.stats else { return };
    // Every subscription the run touched: the audited ones and any ARM reported a budget for,
    // each once (ids compared case-insensitively), in a stable order.
    let mut subs: BTreeMap<String, String> = BTreeMap::new();
    for s in ctx
        .inv
        .subscriptions
        .iter()
        .chain(stats.lowest_remaining_reads.keys())
    {
        subs.entry(s.to_ascii_lowercase()).or_insert_with(|| s.clone());
    }
    let several = subs.len() > 1;
    for sub in subs.values() {
        let Some(b) = budget(ctx, sub) else { continue };
        if !b.is_low() {
            continue;
        }
        let clusters: Vec<&str> = ctx
            .clusters
            .iter()
            .filter(|c| c.subscription().is_some_and(|s| s.eq_ignore_ascii_case(sub)))
            .map(|c| c.name())
            .collect();
        let mut message = format!("{} in subscription {sub}", b.describe());
        if b.throttled_429 > 0 && several {
            // The 429 count is run-wide: say so rather than pretend it is this subscription's.
            message.push_str(" (the 429 count covers every subscription of the run)");
        }
        if clusters.is_empty() {
            message.push_str(": anything else reading ARM there is likely throttled too.");
        } else {
            message.push_str(&format!(
                ": the cloud provider of {} is likely throttled too.",
                clusters.join(", ")
            ));
        }
        let mut f = Finding::new(
            RULE.info.id,
            RULE.info.default_severity,
            format!("/subscriptions/{sub}"),
            message,
        )
        .subscription(sub)
        .evidence("lowest_remaining_reads", b.lowest_remaining)
        .evidence("threshold", LOW_REMAINING_READS)
        .evidence("throttled_429_in_run", b.throttled_429)
        .evidence("clusters", &clusters)
        .remediation(format!(
            "az monitor activity-log list --subscription {sub} --offset 1h --status Failed -o table; \
             then reduce readers (kubectl -n kube-system logs -l component=cloud-controller-manager | grep -i 429), enable cloudProviderRateLimit and useInstanceMetadata in azure.json, and re-run azaudit with a lower --max-rps."
        ));
        if let [one] = clusters.as_slice() {
            f = f.cluster(one);
        }
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::*;
    use crate::report::CallStats;

    fn stats(reads: &[(&str, u64)], throttled: u64) -> CallStats {
        CallStats {
            throttled_429: throttled,
            lowest_remaining_reads: reads.iter().map(|(s, r)| (s.to_string(), *r)).collect(),
            ..CallStats::default()
        }
    }

    fn run_with(stats: &CallStats, two_subs: bool) -> Vec<Finding> {
        let mut w = WorldBuilder::new();
        if two_subs {
            w = w.subscription(SUB2);
        }
        let inv = w.inventory();
        let ctx = Context::new(&inv).with_stats(stats);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        out
    }

    #[test]
    fn low_remaining_reads_is_reported_per_subscription() {
        let out = run_with(&stats(&[(SUB, 42), (SUB2, 240)], 0), true);
        assert_eq!(resources(&out), vec![format!("/subscriptions/{SUB}")]);
        assert_eq!(out[0].cluster.as_deref(), Some(CLUSTER));
        assert_eq!(out[0].evidence["lowest_remaining_reads"], 42);
        assert_eq!(out[0].evidence["threshold"], LOW_REMAINING_READS);
        assert!(out[0].message.contains("42"), "{}", out[0].message);
    }

    #[test]
    fn subscription_ids_compare_case_insensitively() {
        let upper = SUB.to_ascii_uppercase();
        let out = run_with(&stats(&[(upper.as_str(), 3)], 0), false);
        assert_eq!(out.len(), 1, "one finding, not one per spelling: {out:?}");
    }

    #[test]
    fn a_429_is_reported_even_with_a_healthy_header() {
        let out = run_with(&stats(&[(SUB, 249)], 2), false);
        assert_eq!(resources(&out), vec![format!("/subscriptions/{SUB}")]);
        assert_eq!(out[0].evidence["throttled_429_in_run"], 2);
        // With several subscriptions the run-wide 429 count is said to be run-wide.
        let out = run_with(&stats(&[], 1), true);
        assert_eq!(out.len(), 2);
        assert!(
            out.iter()
                .all(|f| f.message.contains("every subscription of the run"))
        );
    }

    #[test]
    fn threshold_is_exclusive_and_healthy_runs_are_quiet() {
        assert!(run_with(&stats(&[(SUB, LOW_REMAINING_READS)], 0), false).is_empty());
        assert_eq!(
            run_with(&stats(&[(SUB, LOW_REMAINING_READS - 1)], 0), false).len(),
            1
        );
        assert!(run_with(&CallStats::default(), true).is_empty());
    }

    #[test]
    fn offline_audits_have_no_statistics_and_emit_nothing() {
        let inv = WorldBuilder::new().inventory();
        assert!(run(&inv, check).is_empty());
    }
}
