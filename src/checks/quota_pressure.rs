//! `quota-pressure`: a load balancer, NSG or regional network quota at 80 % or more of its limit.
//! Source: the guide's FrontendIPConfigurations quota section; limits in [`crate::limits`].
//!
//! - Regional: every row of the network usages API, except per-resource rows (`…PerLoadBalancer`
//!   and friends carry a limit, not a meaningful current value), rows whose limit is 0 or less
//!   (a feature the subscription cannot use, not pressure), and rows at their limit by design
//!   (`NetworkWatchers`: one per region).
//! - Per LB: frontends, rules (load-balancing + inbound NAT), the largest backend pool, and for
//!   Standard also outbound rules and IP configurations over all pools; Basic limits for Basic
//!   LBs; the region's per-resource usages row replaces the table value when it has one; the
//!   provider's `maximumLoadBalancerRuleCount` where the provider enforces it.
//! - Per NSG: rules, source and destination address prefixes over all rules (counted as
//!   cloud-provider-azure counts them before refusing to write the NSG).
//!
//! One finding per resource, at the severity of its worst quota; evidence names every quota over
//! the threshold. Counts come from the resources themselves, so no listing gap can inflate them.

use serde::Serialize;

use super::context::{ClusterView, key};
use super::{Context, Rule, RuleInfo};
use crate::conventions;
use crate::findings::{Finding, Severity};
use crate::inventory::{BackendPool, LoadBalancer, Nsg, Sku, Usage};
use crate::limits::{self, Limit, SkuClass};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "quota-pressure",
        title: "Load balancer, NSG or regional network quota nearly exhausted",
        default_severity: Severity::Medium,
        rationale: "When a limit is reached the cloud provider cannot add a frontend, rule, NSG rule or public IP: new LoadBalancer Services stay pending and changes to existing ones fail, usually during an incident or a rollout.",
        remediation: "Free what is unused (orphaned frontends, rules, NSG rules and public IPs: see the other findings), spread Services over more load balancers, or request a higher quota (Azure portal → Quotas → Networking).",
        source: "Service 删除后 Azure 公网 IP 未自动删除 (FrontendIPConfiguations Quota)",
        cleanup: false,
    },
    check,
};

/// One quota over the threshold.
#[derive(Debug, Clone, Serialize)]
struct Hit {
    quota: String,
    what: String,
    current: f64,
    limit: f64,
    ratio: f64,
    limit_source: String,
    /// The backend pool, for pool-size quotas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<String>,
    #[serde(skip)]
    severity: Severity,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn percent(ratio: f64) -> String {
    format!("{:.0} %", (ratio * 100.0).floor())
}

fn hit(
    quota: &str,
    what: &str,
    current: f64,
    limit: f64,
    limit_source: String,
    pool: Option<String>,
) -> Option<Hit> {
    let (severity, ratio) = limits::pressure(current, limit)?;
    Some(Hit {
        quota: quota.to_string(),
        what: what.to_string(),
        current,
        limit,
        ratio: round2(ratio),
        limit_source,
        pool,
        severity,
    })
}

fn norm_location(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The limit for a resource in its region: the usages row's `limit` when the region reports
/// one (> 0), else the table.
fn effective(ctx: &Context, table: Limit, subscription: &str, location: Option<&str>) -> (f64, String) {
    let row = location.and_then(|loc| {
        ctx.inv.usages.iter().find(|u| {
            u.subscription.eq_ignore_ascii_case(subscription)
                && norm_location(&u.location) == norm_location(loc)
                && limits::usage_override(&u.name).is_some_and(|l| l.quota == table.quota)
                && u.limit > 0.0
        })
    });
    match row {
        Some(u) => (
            u.limit,
            format!("network usages API row {} ({})", u.name, u.location),
        ),
        None => (table.value as f64, table.source.to_string()),
    }
}

/// Members of a pool: NIC / VMSS IP configurations plus IP-only addresses.
fn pool_size(p: &BackendPool) -> usize {
    p.member_ip_config_ids().len()
        + p.addresses
            .iter()
            .filter(|a| a.nic_ip_config_id.is_none() && a.ip_address.is_some())
            .count()
}

/// `maximumLoadBalancerRuleCount` applies when the provider selects among LBs: Basic SKU or a
/// Service with `azure-load-balancer-mode` (see [`limits::PROVIDER_MAX_LB_RULES_DEFAULT`]).
fn provider_rule_cap(cv: &ClusterView, lb: &LoadBalancer) -> Option<f64> {
    let basic = lb.sku == Sku::Basic
        || cv
            .config_str("loadBalancerSku")
            .is_some_and(|s| s.eq_ignore_ascii_case("basic"));
    let mode = cv.lb_services.iter().any(|s| {
        s.annotation(conventions::ANN_LB_MODE)
            .is_some_and(|v| !v.trim().is_empty())
    });
    if !basic && !mode {
        return None;
    }
    let configured = cv
        .config_str(limits::PROVIDER_MAX_LB_RULES_KEY)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0);
    Some(configured.unwrap_or(limits::PROVIDER_MAX_LB_RULES_DEFAULT as f64))
}

fn lb_hits(ctx: &Context, lb: &LoadBalancer, owner: Option<&ClusterView>) -> Vec<Hit> {
    let class = match &lb.sku {
        Sku::Basic => SkuClass::Basic,
        // Unknown SKU: Standard's larger limits, so that a guess never raises a finding.
        Sku::Standard | Sku::Unknown => SkuClass::Standard,
        // Gateway load balancers have other limits.
        Sku::Other(_) => return Vec::new(),
    };
    let pick = |std: Limit, basic: Limit| if class == SkuClass::Basic { basic } else { std };
    let limit_of = |l: Limit| -> (f64, String) {
        if class == SkuClass::Standard {
            effective(ctx, l, &lb.subscription, lb.location.as_deref())
        } else {
            (l.value as f64, l.source.to_string())
        }
    };
    let mut out = Vec::new();
    let mut add = |l: Limit, current: usize, pool: Option<String>| {
        let (limit, src) = limit_of(l);
        out.extend(hit(l.quota, l.what, current as f64, limit, src, pool));
    };
    add(
        pick(limits::LB_FRONTENDS_STANDARD, limits::LB_FRONTENDS_BASIC),
        lb.frontends.len(),
        None,
    );
    add(
        pick(limits::LB_RULES_STANDARD, limits::LB_RULES_BASIC),
        lb.rules.len() + lb.inbound_nat_rule_count,
        None,
    );
    if let Some(biggest) = lb.pools.iter().max_by_key(|p| pool_size(p)) {
        add(
            pick(limits::LB_POOL_SIZE_STANDARD, limits::LB_POOL_SIZE_BASIC),
            pool_size(biggest),
            Some(biggest.name.clone()),
        );
    }
    if class == SkuClass::Standard {
        add(limits::LB_OUTBOUND_RULES_STANDARD, lb.outbound_rule_count, None);
        add(
            limits::LB_IP_CONFIGURATIONS_STANDARD,
            lb.pools.iter().map(pool_size).sum(),
            None,
        );
    }
    if let Some(cv) = owner
        && let Some(cap) = provider_rule_cap(cv, lb)
    {
        out.extend(hit(
            limits::PROVIDER_MAX_LB_RULES_KEY,
            "load-balancing rules (cloud-provider-azure's own cap when it selects a load balancer)",
            lb.rules.len() as f64,
            cap,
            format!(
                "{} of cluster {} ({})",
                limits::PROVIDER_MAX_LB_RULES_KEY,
                cv.name(),
                limits::PROVIDER_MAX_LB_RULES_SOURCE
            ),
            None,
        ));
    }
    out
}

fn nsg_hits(ctx: &Context, nsg: &Nsg) -> Vec<Hit> {
    let mut out = Vec::new();
    let (limit, src) = effective(ctx, limits::NSG_RULES, &nsg.subscription, nsg.location.as_deref());
    out.extend(hit(
        limits::NSG_RULES.quota,
        limits::NSG_RULES.what,
        nsg.rules.len() as f64,
        limit,
        src,
        None,
    ));
    let sources: usize = nsg.rules.iter().map(|r| r.source_prefixes.len()).sum();
    let dests: usize = nsg.rules.iter().map(|r| r.destination_prefixes.len()).sum();
    for (l, n) in [
        (limits::NSG_SOURCE_ADDRESSES, sources),
        (limits::NSG_DESTINATION_ADDRESSES, dests),
    ] {
        out.extend(hit(
            l.quota,
            l.what,
            n as f64,
            l.value as f64,
            l.source.to_string(),
            None,
        ));
    }
    out
}

fn worst(hits: &[Hit]) -> Option<&Hit> {
    hits.iter().max_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.ratio.partial_cmp(&b.ratio).unwrap_or(std::cmp::Ordering::Equal))
    })
}

fn describe(hits: &[Hit]) -> String {
    hits.iter()
        .map(|h| {
            format!(
                "{} of {} {}{} ({})",
                h.current,
                h.limit,
                h.what,
                h.pool
                    .as_ref()
                    .map(|p| format!(" in pool {p}"))
                    .unwrap_or_default(),
                percent(h.ratio)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn resource_finding(id: &str, subscription: &str, message: String, hits: &[Hit]) -> Option<Finding> {
    let w = worst(hits)?;
    Some(
        Finding::new(RULE.info.id, w.severity, id, message)
            .subscription(subscription)
            .evidence("quota", &w.quota)
            .evidence("current", w.current)
            .evidence("limit", w.limit)
            .evidence("ratio", w.ratio)
            .evidence("limit_source", &w.limit_source)
            .evidence("quotas", hits),
    )
}

fn lb_remediation(lb: &LoadBalancer, hits: &[Hit]) -> String {
    let (rg, name) = (&lb.resource_group, &lb.name);
    let mut steps = Vec::new();
    for h in hits {
        let s = match h.quota.as_str() {
            "FrontendIPConfigurationsPerLoadBalancer" => format!(
                "az network lb frontend-ip list -g {rg} --lb-name {name} -o table; remove frontends of deleted Services (azaudit audit --only orphaned-lb-frontend) or place new Services on another load balancer (multipleStandardLoadBalancerConfigurations in the cloud config)"
            ),
            "RulesPerLoadBalancer" | "maximumLoadBalancerRuleCount" => format!(
                "az network lb rule list -g {rg} --lb-name {name} -o table; remove rules of deleted Services and ports (azaudit audit --only orphaned-lb-rule,orphaned-lb-frontend){}",
                if h.quota == "maximumLoadBalancerRuleCount" {
                    format!(
                        ", or raise {} in the cloud config",
                        limits::PROVIDER_MAX_LB_RULES_KEY
                    )
                } else {
                    String::new()
                }
            ),
            "BackendPoolSize" | "IPConfigurationsPerLoadBalancer" => format!(
                "az network lb address-pool list -g {rg} --lb-name {name} -o table; remove stale members (azaudit audit --only stale-backend-pool-member) or split the nodes over several load balancers (multipleStandardLoadBalancerConfigurations)"
            ),
            "OutboundRulesPerLoadBalancer" => {
                format!(
                    "az network lb outbound-rule list -g {rg} --lb-name {name} -o table; remove unused outbound rules"
                )
            }
            _ => continue,
        };
        if !steps.contains(&s) {
            steps.push(s);
        }
    }
    if lb.sku == Sku::Basic {
        steps.push("Basic limits are far lower than Standard's and Basic is retired: upgrade the load balancer to Standard (see basic-sku-retired)".into());
    }
    steps.join(" | ")
}

fn nsg_remediation(nsg: &Nsg) -> String {
    format!(
        "az network nsg rule list -g {} --nsg-name {} -o table; remove stale rules and destinations (azaudit audit --only orphaned-nsg-rule); cloud-provider-azure before v1.29 writes one rule per Service, port and source range, later versions consolidate them, so upgrading the provider shrinks the NSG",
        nsg.resource_group, nsg.name
    )
}

fn usage_remediation(u: &Usage) -> String {
    let scope = format!(
        "/subscriptions/{}/providers/Microsoft.Network/locations/{}",
        u.subscription, u.location
    );
    let free = if u.name.to_ascii_lowercase().contains("publicip") {
        "free unused addresses (azaudit audit --only orphaned-public-ip,unattached-public-ip), or "
    } else {
        "free what is unused, or "
    };
    format!(
        "az network list-usages --location {} --subscription {} -o table; {free}request a higher limit: az quota update --scope {scope} --resource-name {} --limit-object value=<new limit> (or Azure portal → Quotas → Networking)",
        u.location, u.subscription, u.name
    )
}

fn sku_name(s: &Sku) -> &str {
    match s {
        Sku::Basic => "Basic",
        Sku::Standard => "Standard",
        Sku::Other(o) => o,
        Sku::Unknown => "unknown",
    }
}

fn owner_of_lb<'c, 'a>(ctx: &'c Context<'a>, lb: &LoadBalancer) -> Option<&'c ClusterView<'a>> {
    ctx.clusters
        .iter()
        .find(|cv| cv.managed_lbs.iter().any(|m| key(&m.id) == key(&lb.id)))
}

fn owner_of_nsg<'c, 'a>(ctx: &'c Context<'a>, nsg: &Nsg) -> Option<&'c ClusterView<'a>> {
    ctx.clusters
        .iter()
        .find(|cv| cv.nsgs.iter().any(|m| key(&m.id) == key(&nsg.id)))
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for u in &ctx.inv.usages {
        if limits::is_per_resource_usage(&u.name)
            || limits::USAGE_AT_LIMIT_BY_DESIGN
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&u.name))
        {
            continue;
        }
        let what = u.localized_name.clone().unwrap_or_else(|| u.name.clone());
        let Some(h) = hit(
            &u.name,
            &what,
            u.current,
            u.limit,
            "network usages API".into(),
            None,
        ) else {
            continue;
        };
        let message = format!(
            "{} of {} {} are used in {} of subscription {} ({}): at the limit, new resources of this kind (and the Services that need them) fail.",
            h.current,
            h.limit,
            what,
            u.location,
            u.subscription,
            percent(h.ratio)
        );
        let hits = [h];
        if let Some(f) = resource_finding(&u.id, &u.subscription, message, &hits) {
            out.push(
                f.evidence("location", &u.location)
                    .remediation(usage_remediation(u)),
            );
        }
    }
    for lb in &ctx.inv.load_balancers {
        let owner = owner_of_lb(ctx, lb);
        let hits = lb_hits(ctx, lb, owner);
        let message = format!(
            "Load balancer {} ({} SKU) uses {}: when a limit is reached, LoadBalancer Services on it stay pending or fail to update.",
            lb.name,
            sku_name(&lb.sku),
            describe(&hits)
        );
        if let Some(mut f) = resource_finding(&lb.id, &lb.subscription, message, &hits) {
            if let Some(cv) = owner {
                f = f.cluster(cv.name());
            }
            out.push(f.remediation(lb_remediation(lb, &hits)));
        }
    }
    for nsg in &ctx.inv.nsgs {
        let hits = nsg_hits(ctx, nsg);
        let message = format!(
            "Network security group {} uses {}: when a limit is reached, the cloud provider can no longer open ports for new LoadBalancer Services.",
            nsg.name,
            describe(&hits)
        );
        if let Some(mut f) = resource_finding(&nsg.id, &nsg.subscription, message, &hits) {
            if let Some(cv) = owner_of_nsg(ctx, nsg) {
                f = f.cluster(cv.name());
            }
            out.push(f.remediation(nsg_remediation(nsg)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::net_testutil::*;
    use super::*;
    use serde_json::{Value, json};

    fn run(files: Vec<(&str, Value)>) -> Vec<Finding> {
        let inv = inventory(files);
        let ctx = Context::new(&inv);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        out
    }

    fn lb(name: &str, sku: &str, frontends: usize, rules: usize, nat: usize, pool_members: usize) -> Value {
        let id = arm_id(&format!("Microsoft.Network/loadBalancers/{name}"));
        let fes: Vec<Value> = (0..frontends)
            .map(|i| json!({"name": format!("fe{i}"), "id": format!("{id}/frontendIPConfigurations/fe{i}"), "properties": {}}))
            .collect();
        let rs: Vec<Value> = (0..rules)
            .map(|i| json!({"name": format!("r{i}"), "id": format!("{id}/loadBalancingRules/r{i}"), "properties": {"protocol": "Tcp", "frontendPort": i, "backendPort": i}}))
            .collect();
        let nats: Vec<Value> = (0..nat)
            .map(|i| json!({"name": format!("nat{i}"), "id": format!("{id}/inboundNatRules/nat{i}"), "properties": {}}))
            .collect();
        let members: Vec<Value> = (0..pool_members)
            .map(|i| json!({"id": arm_id(&format!("Microsoft.Network/networkInterfaces/n{i}/ipConfigurations/ipconfig1"))}))
            .collect();
        json!({
            "id": id, "name": name, "type": "Microsoft.Network/loadBalancers", "location": "westeurope",
            "sku": {"name": sku},
            "properties": {
                "frontendIPConfigurations": fes, "loadBalancingRules": rs, "inboundNatRules": nats,
                "backendAddressPools": [{"name": name, "id": format!("{id}/backendAddressPools/{name}"), "properties": {"backendIPConfigurations": members}}]
            }
        })
    }

    #[test]
    fn regional_rows_by_threshold_and_the_rows_that_are_never_pressure() {
        let out = run(vec![(
            "arm/usages.json",
            page(vec![
                usage("westeurope", "PublicIPAddresses", 25.0, 30.0),
                usage("westeurope", "StaticPublicIPAddresses", 29.0, 30.0),
                usage("westeurope", "LoadBalancers", 1000.0, 1000.0),
                usage("westeurope", "NetworkInterfaces", 12.0, 65536.0),
                // Never pressure: one per region by design, a per-resource row, a zero limit.
                usage("westeurope", "NetworkWatchers", 1.0, 1.0),
                usage("westeurope", "InboundRulesPerLoadBalancer", 1500.0, 1500.0),
                usage("westeurope", "SubnetsPerVirtualNetwork", 0.0, 3000.0),
                usage("westeurope", "PrivateLinkServices", 0.0, 0.0),
                usage("westeurope", "ApplicationGateways", 2.0, 0.0),
            ]),
        )]);
        let got: Vec<(String, Severity)> = out
            .iter()
            .map(|f| {
                (
                    f.resource.rsplit('/').next().unwrap_or("").to_string(),
                    f.severity,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("LoadBalancers".to_string(), Severity::Critical),
                ("PublicIPAddresses".to_string(), Severity::Medium),
                ("StaticPublicIPAddresses".to_string(), Severity::High),
            ]
        );
        let f = &out[1];
        assert_eq!(
            f.resource,
            format!(
                "/subscriptions/{SUB}/providers/Microsoft.Network/locations/westeurope/usages/PublicIPAddresses"
            )
        );
        assert_eq!(f.evidence["quota"], "PublicIPAddresses");
        assert_eq!(f.evidence["current"], 25.0);
        assert_eq!(f.evidence["limit"], 30.0);
        assert_eq!(f.evidence["ratio"], 0.83);
        assert!(
            f.message.contains("25 of 30") && f.message.contains("83 %"),
            "{}",
            f.message
        );
        assert!(f.remediation.contains("orphaned-public-ip") && f.remediation.contains("az quota update"));
        assert_eq!(f.subscription.as_deref(), Some(SUB));
    }

    #[test]
    fn load_balancers_by_sku() {
        let out = run(vec![(
            "arm/lbs.json",
            page(vec![
                // Standard: 590/600 frontends → high.
                lb("std-full", "Standard", 590, 0, 0, 3),
                // Standard, quiet: 300 frontends, 1000 rules, 3000 members.
                lb("std-quiet", "Standard", 300, 1000, 0, 3000),
                // Basic: 200 rules + 50 NAT = 250 of 250 → critical; 170/200 frontends → medium.
                lb("basic-full", "Basic", 170, 200, 50, 10),
                // The same counts on Standard are fine.
                lb("std-same", "Standard", 170, 200, 50, 10),
                // Basic pool: 250 of 300 members → medium.
                lb("basic-pool", "Basic", 1, 1, 0, 250),
            ]),
        )]);
        let got: Vec<(String, Severity)> = out
            .iter()
            .map(|f| {
                (
                    f.resource.rsplit('/').next().unwrap_or("").to_string(),
                    f.severity,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("basic-full".to_string(), Severity::Critical),
                ("basic-pool".to_string(), Severity::Medium),
                ("std-full".to_string(), Severity::High),
            ]
        );
        let basic = &out[0];
        assert_eq!(basic.evidence["quota"], "RulesPerLoadBalancer");
        assert_eq!(basic.evidence["current"], 250.0);
        assert_eq!(basic.evidence["limit"], 250.0);
        let quotas: Vec<&str> = basic.evidence["quotas"]
            .as_array()
            .map(|a| a.iter().filter_map(|q| q["quota"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            quotas,
            ["FrontendIPConfigurationsPerLoadBalancer", "RulesPerLoadBalancer"]
        );
        assert!(
            basic
                .remediation
                .contains("az network lb rule list -g rg-c1 --lb-name basic-full")
        );
        assert!(!out[1].evidence.contains_key("pool"));
        assert_eq!(out[1].evidence["quotas"][0]["pool"], "basic-pool");
    }

    #[test]
    fn a_regional_per_resource_row_replaces_the_table_limit() {
        let out = run(vec![
            (
                "arm/lbs.json",
                page(vec![lb("kubernetes", "Standard", 170, 0, 0, 1)]),
            ),
            (
                "arm/usages.json",
                page(vec![usage(
                    "westeurope",
                    "FrontendIPConfigurationPerLoadBalancer",
                    0.0,
                    200.0,
                )]),
            ),
        ]);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].evidence["limit"], 200.0);
        assert!(
            out[0].evidence["limit_source"]
                .as_str()
                .unwrap_or("")
                .contains("usages API")
        );
        // A zero limit in the row is ignored, the table applies.
        let out = run(vec![
            (
                "arm/lbs.json",
                page(vec![lb("kubernetes", "Standard", 170, 0, 0, 1)]),
            ),
            (
                "arm/usages.json",
                page(vec![usage(
                    "westeurope",
                    "FrontendIPConfigurationPerLoadBalancer",
                    0.0,
                    0.0,
                )]),
            ),
        ]);
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn the_providers_rule_cap_applies_only_where_it_selects_load_balancers() {
        let cfg = |sku: &str| json!({"resourceGroup": RG, "subscriptionId": SUB, "loadBalancerSku": sku, "maximumLoadBalancerRuleCount": 100});
        let svc = lb_service("a", "b", &[("TCP", 80, 30080)], &["20.1.2.3"], &[], &[]);
        // Standard, no mode annotation: 90 rules is nothing against 1,500.
        let out = run(vec![
            ("world.json", world_json("c1")),
            ("k8s/c1/azure.json", cfg("standard")),
            ("k8s/c1/services.json", k8s_list(vec![svc.clone()])),
            ("arm/lbs.json", page(vec![lb("c1", "Standard", 1, 90, 0, 1)])),
        ]);
        assert!(out.is_empty(), "{out:#?}");
        // A Service with azure-load-balancer-mode: the provider's cap of 100 binds.
        let moded = lb_service(
            "a",
            "b",
            &[("TCP", 80, 30080)],
            &["20.1.2.3"],
            &[(conventions::ANN_LB_MODE, "__auto__")],
            &[],
        );
        let out = run(vec![
            ("world.json", world_json("c1")),
            ("k8s/c1/azure.json", cfg("standard")),
            ("k8s/c1/services.json", k8s_list(vec![moded])),
            ("arm/lbs.json", page(vec![lb("c1", "Standard", 1, 90, 0, 1)])),
        ]);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].evidence["quota"], "maximumLoadBalancerRuleCount");
        assert_eq!(out[0].evidence["limit"], 100.0);
        assert_eq!(out[0].cluster.as_deref(), Some("c1"));
        assert!(out[0].remediation.contains("raise maximumLoadBalancerRuleCount"));
    }

    #[test]
    fn nsgs_by_rules_and_addresses() {
        let nid = nsg_id("big");
        let many_rules: Vec<Value> = (0..960)
            .map(|i| {
                nsg_rule(
                    &nid,
                    &format!("r{i}"),
                    100 + i,
                    "Allow",
                    "Tcp",
                    "Internet",
                    "20.1.2.3",
                    "443",
                )
            })
            .collect();
        let dests: Vec<String> = (0..3900)
            .map(|i| format!("20.{}.{}.1", i / 250, i % 250))
            .collect();
        let wide = nsg_rule(
            &nsg_id("wide"),
            "k8s-azure-lb_allow_IPv4_x",
            500,
            "Allow",
            "Tcp",
            "Internet",
            &dests.join(","),
            "443",
        );
        let out = run(vec![(
            "arm/nsgs.json",
            page(vec![
                nsg("big", many_rules, &[], &[]),
                nsg("wide", vec![wide], &[], &[]),
                nsg(
                    "small",
                    vec![nsg_rule(
                        &nsg_id("small"),
                        "a",
                        100,
                        "Allow",
                        "Tcp",
                        "*",
                        "*",
                        "22",
                    )],
                    &[],
                    &[],
                ),
            ]),
        )]);
        let got: Vec<(String, Severity, String)> = out
            .iter()
            .map(|f| {
                (
                    f.resource.rsplit('/').next().unwrap_or("").to_string(),
                    f.severity,
                    f.evidence["quota"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "big".to_string(),
                    Severity::High,
                    "SecurityRulesPerNetworkSecurityGroup".to_string()
                ),
                (
                    "wide".to_string(),
                    Severity::High,
                    "DestinationAddressesPerNetworkSecurityGroup".to_string()
                ),
            ]
        );
        assert!(
            out[0]
                .remediation
                .contains("az network nsg rule list -g rg-c1 --nsg-name big")
        );
    }
}
