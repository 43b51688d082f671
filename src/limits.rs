//! The one table of Azure limits the audit compares against, each with its source, and the
//! thresholds of `quota-pressure`. Pure data; no I/O.
//!
//! Limits that differ per subscription (public IPs, NSGs per region, ...) are never hard-coded:
//! they come from the network usages API (`domain.md` §4.2–4.3). Only per-resource limits that the
//! usages API does not report per resource are here. When a region's usages list carries a
//! per-resource row (`FrontendIPConfigurationPerLoadBalancer`, ...), its `limit` replaces the
//! table value for Standard load balancers in that region (see [`usage_override`]).

use crate::findings::Severity;

/// What a limit is counted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    LoadBalancer,
    NetworkSecurityGroup,
}

/// Load balancer SKU class a limit applies to (NSG limits have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkuClass {
    Standard,
    Basic,
    Any,
}

/// One limit with its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Quota name used in findings (`evidence.quota`); stable.
    pub quota: &'static str,
    /// What is counted, for messages.
    pub what: &'static str,
    pub scope: Scope,
    pub sku: SkuClass,
    pub value: u64,
    pub source: &'static str,
}

const LB_LIMITS_DOC: &str = "MicrosoftDocs/azure-docs includes/load-balancer-limits.md (ms.date 06/30/2026), \
learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits#load-balancer";
const VNET_LIMITS_DOC: &str = "MicrosoftDocs/azure-docs includes/azure-virtual-network-limits.md, \
learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits#azure-resource-manager-virtual-networking-limits; \
enforced by cloud-provider-azure as MaxSecurityRulesPerGroup / MaxSecurityRule{Source,Destination}IPsPerGroup (pkg/provider/securitygroup/securitygroup.go)";

pub const LB_FRONTENDS_STANDARD: Limit = Limit {
    quota: "FrontendIPConfigurationsPerLoadBalancer",
    what: "frontend IP configurations",
    scope: Scope::LoadBalancer,
    sku: SkuClass::Standard,
    value: 600,
    source: LB_LIMITS_DOC,
};
pub const LB_FRONTENDS_BASIC: Limit = Limit {
    value: 200,
    sku: SkuClass::Basic,
    ..LB_FRONTENDS_STANDARD
};
pub const LB_RULES_STANDARD: Limit = Limit {
    quota: "RulesPerLoadBalancer",
    what: "rules (load-balancing + inbound NAT)",
    scope: Scope::LoadBalancer,
    sku: SkuClass::Standard,
    value: 1500,
    source: LB_LIMITS_DOC,
};
pub const LB_RULES_BASIC: Limit = Limit {
    value: 250,
    sku: SkuClass::Basic,
    ..LB_RULES_STANDARD
};
pub const LB_POOL_SIZE_STANDARD: Limit = Limit {
    quota: "BackendPoolSize",
    what: "members of one backend pool",
    scope: Scope::LoadBalancer,
    sku: SkuClass::Standard,
    value: 5000,
    source: LB_LIMITS_DOC,
};
pub const LB_POOL_SIZE_BASIC: Limit = Limit {
    value: 300,
    sku: SkuClass::Basic,
    ..LB_POOL_SIZE_STANDARD
};
pub const LB_OUTBOUND_RULES_STANDARD: Limit = Limit {
    quota: "OutboundRulesPerLoadBalancer",
    what: "outbound rules",
    scope: Scope::LoadBalancer,
    sku: SkuClass::Standard,
    value: 600,
    source: LB_LIMITS_DOC,
};
pub const LB_IP_CONFIGURATIONS_STANDARD: Limit = Limit {
    quota: "IPConfigurationsPerLoadBalancer",
    what: "backend IP configurations across all pools",
    scope: Scope::LoadBalancer,
    sku: SkuClass::Standard,
    value: 20_000,
    source: LB_LIMITS_DOC,
};
pub const NSG_RULES: Limit = Limit {
    quota: "SecurityRulesPerNetworkSecurityGroup",
    what: "security rules",
    scope: Scope::NetworkSecurityGroup,
    sku: SkuClass::Any,
    value: 1000,
    source: VNET_LIMITS_DOC,
};
pub const NSG_SOURCE_ADDRESSES: Limit = Limit {
    quota: "SourceAddressesPerNetworkSecurityGroup",
    what: "source address prefixes over all rules",
    scope: Scope::NetworkSecurityGroup,
    sku: SkuClass::Any,
    value: 4000,
    source: VNET_LIMITS_DOC,
};
pub const NSG_DESTINATION_ADDRESSES: Limit = Limit {
    quota: "DestinationAddressesPerNetworkSecurityGroup",
    what: "destination address prefixes over all rules",
    ..NSG_SOURCE_ADDRESSES
};

/// Every per-resource limit, for documentation and tests.
pub const TABLE: &[Limit] = &[
    LB_FRONTENDS_STANDARD,
    LB_FRONTENDS_BASIC,
    LB_RULES_STANDARD,
    LB_RULES_BASIC,
    LB_POOL_SIZE_STANDARD,
    LB_POOL_SIZE_BASIC,
    LB_OUTBOUND_RULES_STANDARD,
    LB_IP_CONFIGURATIONS_STANDARD,
    NSG_RULES,
    NSG_SOURCE_ADDRESSES,
    NSG_DESTINATION_ADDRESSES,
];

/// cloud-provider-azure's own cap on load-balancing rules per LB (`maximumLoadBalancerRuleCount`,
/// default `consts.DefaultMaximumLoadBalancerRuleCount` = 250). The provider checks it only in
/// `selectLoadBalancer` (`CPA:pkg/provider/azure_loadbalancer.go`), i.e. when it chooses among
/// several LBs: Basic SKU clusters and Services with `azure-load-balancer-mode`. It counts
/// `loadBalancingRules` only.
pub const PROVIDER_MAX_LB_RULES_DEFAULT: u64 = 250;
pub const PROVIDER_MAX_LB_RULES_KEY: &str = "maximumLoadBalancerRuleCount";
pub const PROVIDER_MAX_LB_RULES_SOURCE: &str = "cloud-provider-azure consts.DefaultMaximumLoadBalancerRuleCount; enforced in selectLoadBalancer (pkg/provider/azure_loadbalancer.go)";

/// Per-resource rows of the network usages API and the table limit they replace for a Standard
/// LB / any NSG in their region. Their `currentValue` is not a per-resource count (it is 0 in
/// the spec example and in real responses), so only their `limit` is used.
pub fn usage_override(usage_name: &str) -> Option<Limit> {
    let map: &[(&str, Limit)] = &[
        ("FrontendIPConfigurationPerLoadBalancer", LB_FRONTENDS_STANDARD),
        ("InboundRulesPerLoadBalancer", LB_RULES_STANDARD),
        ("OutboundRulesPerLoadBalancer", LB_OUTBOUND_RULES_STANDARD),
        ("SecurityRulesPerNetworkSecurityGroup", NSG_RULES),
    ];
    map.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(usage_name))
        .map(|(_, l)| *l)
}

/// A usages row that reports a per-resource limit (`…PerLoadBalancer`, `…PerVirtualNetwork`,
/// `…PerNetworkSecurityGroup`, `RouteFiltersPerExpressRouteBgpPeering`): "Per" followed by a
/// capital, as every such name in the spec example (`UsageList.json`) is built.
pub fn is_per_resource_usage(name: &str) -> bool {
    let b = name.as_bytes();
    (0..b.len().saturating_sub(3))
        .any(|i| b[i] == b'P' && b[i + 1] == b'e' && b[i + 2] == b'r' && b[i + 3].is_ascii_uppercase())
}

/// Regional rows that are at their limit by design and never a problem: Network Watcher is
/// enabled as one instance per subscription and region (learn.microsoft.com/azure/network-watcher/
/// network-watcher-create) and its usages row has limit 1, so `1 of 1` is the normal state.
pub const USAGE_AT_LIMIT_BY_DESIGN: &[&str] = &["NetworkWatchers"];

/// Severity thresholds (rule catalogue, `quota-pressure`): medium at 80 %, high at 95 %,
/// critical at the limit.
pub const MEDIUM_RATIO: f64 = 0.80;
pub const HIGH_RATIO: f64 = 0.95;
pub const CRITICAL_RATIO: f64 = 1.0;

/// Severity for `current` of `limit`; `None` below the medium threshold or for a limit that is
/// not a limit (0 or negative: a row for a feature the subscription cannot use at all).
pub fn pressure(current: f64, limit: f64) -> Option<(Severity, f64)> {
    if limit.is_nan() || limit <= 0.0 || !current.is_finite() || current < 0.0 {
        return None;
    }
    let ratio = current / limit;
    let sev = if ratio >= CRITICAL_RATIO {
        Severity::Critical
    } else if ratio >= HIGH_RATIO {
        Severity::High
    } else if ratio >= MEDIUM_RATIO {
        Severity::Medium
    } else {
        return None;
    };
    Some((sev, ratio))
}

// Basic limits are never larger than Standard ones (checked at compile time).
const _: () = assert!(LB_FRONTENDS_BASIC.value < LB_FRONTENDS_STANDARD.value);
const _: () = assert!(LB_RULES_BASIC.value < LB_RULES_STANDARD.value);
const _: () = assert!(LB_POOL_SIZE_BASIC.value < LB_POOL_SIZE_STANDARD.value);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(pressure(25.0, 30.0).map(|p| p.0), Some(Severity::Medium));
        assert_eq!(pressure(23.0, 30.0), None);
        assert_eq!(pressure(95.0, 100.0).map(|p| p.0), Some(Severity::High));
        assert_eq!(pressure(100.0, 100.0).map(|p| p.0), Some(Severity::Critical));
        assert_eq!(pressure(120.0, 100.0).map(|p| p.0), Some(Severity::Critical));
        assert_eq!(pressure(0.0, 0.0), None);
        assert_eq!(pressure(3.0, 0.0), None, "a zero limit is not pressure");
        assert_eq!(pressure(3.0, -1.0), None);
        assert_eq!(pressure(f64::NAN, 10.0), None);
    }

    #[test]
    fn per_resource_rows() {
        for n in [
            "InboundRulesPerLoadBalancer",
            "outboundRulesPerLoadBalancer",
            "SubnetsPerVirtualNetwork",
            "SecurityRulesPerNetworkSecurityGroup",
            "RouteFiltersPerExpressRouteBgpPeering",
            "SecondaryIPConfigurationsPerNetworkInterface",
        ] {
            assert!(is_per_resource_usage(n), "{n}");
        }
        for n in [
            "PublicIPAddresses",
            "PeeringsCount",
            "NetworkWatchers",
            "PacketCaptures",
            "StandardPublicIPAddresses",
        ] {
            assert!(!is_per_resource_usage(n), "{n}");
        }
        assert_eq!(
            usage_override("outboundRulesPerLoadBalancer"),
            Some(LB_OUTBOUND_RULES_STANDARD)
        );
        assert_eq!(usage_override("PublicIPAddresses"), None);
    }

    #[test]
    fn table_is_sourced_and_consistent() {
        for l in TABLE {
            assert!(
                l.value > 0 && !l.source.is_empty() && !l.quota.is_empty(),
                "{l:?}"
            );
        }
    }
}
