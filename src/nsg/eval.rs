//! Evaluation of one inbound flow against one NSG: rules in priority order, the first rule that
//! takes the whole flow decides (learn.microsoft.com/azure/virtual-network/network-security-groups-overview,
//! "Security rules": "rules are processed in priority order ... once traffic matches a rule,
//! processing stops").
//!
//! A Service's allowed source is a *range* of clients, not one packet, so a rule can take all of
//! it, none, some (a narrower prefix, a restricted source port) or an unknown part (a service tag
//! we cannot resolve). Only a rule that takes all of it decides; anything of the opposite access
//! before it turns the answer into "partial" or "unknown", never into "blocked".

use std::net::IpAddr;

use serde::Serialize;

use super::addr::{AddressPrefix, Env, Family, Relation, destination_matches, relation};
use crate::inventory::{Nsg, SecurityRule};

/// Transport protocol of a Service port, as NSG rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Protocol {
    Tcp,
    Udp,
    /// Only a `*` rule admits SCTP (NSG protocols are Tcp, Udp, Icmp, Esp, Ah, `*`; the
    /// provider maps SCTP Services to `*`, `securitygroup.ProtocolFromKubernetes`).
    Sctp,
}

impl Protocol {
    /// `spec.ports[].protocol` (`TCP` when absent).
    pub fn from_kubernetes(s: &str) -> Option<Protocol> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" | "" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
    /// The `--protocol` value `az network nsg rule create` takes for this flow.
    pub fn az_value(self) -> &'static str {
        match self {
            Protocol::Tcp => "Tcp",
            Protocol::Udp => "Udp",
            Protocol::Sctp => "*",
        }
    }
}

/// One inbound flow: any client of `source`, any source port, to `destination:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub protocol: Protocol,
    pub port: u32,
    pub destination: IpAddr,
    pub source: AddressPrefix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Access {
    Allow,
    Deny,
}

/// The rule a verdict names, for evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub id: String,
    pub name: String,
    pub priority: Option<u32>,
    /// `None` when the rule's access is neither `Allow` nor `Deny`.
    pub access: Option<Access>,
    /// A default rule (listed in `defaultSecurityRules`, or assumed because the NSG was read
    /// without them).
    pub default: bool,
}

impl RuleRef {
    fn of(r: &SecurityRule) -> RuleRef {
        RuleRef {
            id: r.id.clone(),
            name: r.name.clone(),
            priority: r.priority,
            access: access(r),
            default: r.is_default,
        }
    }
}

/// What an NSG does with a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The whole flow is allowed, by this rule.
    Allowed(RuleRef),
    /// The whole flow is denied, by this rule, and no rule before it allows any part of it.
    Blocked(RuleRef),
    /// Certainly some of the flow is decided by `exceptions` (higher priority, opposite access),
    /// the rest by `deciding`.
    Partial {
        deciding: RuleRef,
        exceptions: Vec<RuleRef>,
    },
    /// Rules we cannot fully evaluate (unresolved tags, application security groups, missing
    /// fields) might decide part of the flow the other way; or no rule takes the whole flow.
    Unknown {
        deciding: Option<RuleRef>,
        uncertain: Vec<RuleRef>,
    },
}

impl Verdict {
    pub fn is_blocked(&self) -> bool {
        matches!(self, Verdict::Blocked(_))
    }
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allowed(_))
    }
}

fn access(r: &SecurityRule) -> Option<Access> {
    if r.access.eq_ignore_ascii_case("Allow") {
        Some(Access::Allow)
    } else if r.access.eq_ignore_ascii_case("Deny") {
        Some(Access::Deny)
    } else {
        None
    }
}

/// `Some(true)`/`Some(false)` when the rule's protocol certainly does / does not admit the flow.
fn protocol_matches(rule: &str, p: Protocol) -> Option<bool> {
    let r = rule.trim();
    if r == "*" || r.eq_ignore_ascii_case("any") {
        return Some(true);
    }
    match r.to_ascii_lowercase().as_str() {
        "tcp" => Some(p == Protocol::Tcp),
        "udp" => Some(p == Protocol::Udp),
        "icmp" | "esp" | "ah" => Some(false),
        _ => None,
    }
}

/// A port range entry: `*`, `443`, `8000-8999`.
fn port_range(s: &str) -> Option<(u32, u32)> {
    let s = s.trim();
    if s == "*" {
        return Some((0, 65535));
    }
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b && b <= 65535).then_some((a, b))
        }
        None => s.parse().ok().filter(|p| *p <= 65535).map(|p| (p, p)),
    }
}

/// Whether `destinationPortRange(s)` take the port: unknown when an entry cannot be read and
/// no readable entry matches, or when the rule lists none.
fn port_matches(ranges: &[String], port: u32) -> Option<bool> {
    if ranges.is_empty() {
        return None;
    }
    let mut unreadable = false;
    for r in ranges {
        match port_range(r) {
            Some((a, b)) if (a..=b).contains(&port) => return Some(true),
            Some(_) => {}
            None => unreadable = true,
        }
    }
    if unreadable { None } else { Some(false) }
}

/// Whether `sourcePortRange(s)` take every client port. ARM requires the field; when a world
/// omits it, it is read as `*`.
fn all_source_ports(ranges: &[String]) -> Option<bool> {
    if ranges.is_empty() {
        return Some(true);
    }
    let mut spans = Vec::new();
    for r in ranges {
        spans.push(port_range(r)?);
    }
    spans.sort_unstable();
    let mut next = 0u32;
    for (a, b) in spans {
        if a > next {
            return Some(false);
        }
        next = next.max(b + 1);
    }
    Some(next > 65535)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applies {
    No,
    Full,
    Partial,
    Unknown,
}

fn applies(r: &SecurityRule, flow: &Flow, env: &Env) -> Applies {
    let direction = if r.direction.eq_ignore_ascii_case("Inbound") {
        Some(true)
    } else if r.direction.eq_ignore_ascii_case("Outbound") {
        Some(false)
    } else {
        None
    };
    let family = Family::of(&flow.destination);
    let src: Vec<AddressPrefix> = r
        .source_prefixes
        .iter()
        .map(|s| AddressPrefix::parse(s))
        .collect();
    let dst: Vec<AddressPrefix> = r
        .destination_prefixes
        .iter()
        .map(|s| AddressPrefix::parse(s))
        .collect();
    let certain = [
        direction,
        protocol_matches(&r.protocol, flow.protocol),
        port_matches(&r.destination_ports, flow.port),
        destination_matches(&dst, &flow.destination, env),
    ];
    let source = relation(&src, &flow.source, family, env);
    if certain.contains(&Some(false)) || source == Relation::Disjoint {
        return Applies::No;
    }
    let sports = all_source_ports(&r.source_ports);
    if certain.contains(&None) || source == Relation::Unknown || sports.is_none() || access(r).is_none() {
        return Applies::Unknown;
    }
    if source == Relation::Overlaps || sports == Some(false) {
        return Applies::Partial;
    }
    Applies::Full
}

/// The inbound default rules every NSG has (`AllowVnetInBound` 65000,
/// `AllowAzureLoadBalancerInBound` 65001, `DenyAllInBound` 65500; "Default security rules",
/// network-security-groups-overview). Used when the inventory lists none for an NSG.
pub fn default_inbound_rules(nsg_id: &str) -> Vec<SecurityRule> {
    let mk = |name: &str, priority: u32, access: &str, src: &str, dst: &str| SecurityRule {
        id: format!("{nsg_id}/defaultSecurityRules/{name}"),
        name: name.to_string(),
        priority: Some(priority),
        direction: "Inbound".into(),
        access: access.into(),
        protocol: "*".into(),
        source_prefixes: vec![src.into()],
        source_ports: vec!["*".into()],
        destination_prefixes: vec![dst.into()],
        destination_ports: vec!["*".into()],
        is_default: true,
    };
    vec![
        mk(
            "AllowVnetInBound",
            65000,
            "Allow",
            "VirtualNetwork",
            "VirtualNetwork",
        ),
        mk(
            "AllowAzureLoadBalancerInBound",
            65001,
            "Allow",
            "AzureLoadBalancer",
            "*",
        ),
        mk("DenyAllInBound", 65500, "Deny", "*", "*"),
    ]
}

/// The NSG's inbound-relevant rules in evaluation order: custom and default rules by priority;
/// a rule without a priority first (its place is unknown, so it can only make the answer
/// uncertain).
pub fn ordered_rules(nsg: &Nsg) -> Vec<SecurityRule> {
    let mut rules: Vec<SecurityRule> = nsg.rules.clone();
    let has_inbound_defaults = nsg
        .default_rules
        .iter()
        .any(|r| r.direction.eq_ignore_ascii_case("Inbound"));
    if has_inbound_defaults {
        rules.extend(nsg.default_rules.iter().cloned());
    } else {
        rules.extend(default_inbound_rules(&nsg.id));
    }
    rules.retain(|r| !r.direction.eq_ignore_ascii_case("Outbound"));
    rules.sort_by_key(|r| r.priority.unwrap_or(0));
    rules
}

/// Evaluates one flow against one NSG.
pub fn evaluate(nsg: &Nsg, flow: &Flow, env: &Env) -> Verdict {
    evaluate_ordered(&ordered_rules(nsg), flow, env)
}

/// Evaluates one flow against rules already in evaluation order ([`ordered_rules`]).
pub fn evaluate_ordered(rules: &[SecurityRule], flow: &Flow, env: &Env) -> Verdict {
    let mut partial: Vec<RuleRef> = Vec::new();
    let mut unknown: Vec<RuleRef> = Vec::new();
    for r in rules {
        let mut a = applies(r, flow, env);
        if r.priority.is_none() && a != Applies::No {
            a = Applies::Unknown;
        }
        match a {
            Applies::No => {}
            Applies::Partial => partial.push(RuleRef::of(r)),
            Applies::Unknown => unknown.push(RuleRef::of(r)),
            Applies::Full => {
                let deciding = RuleRef::of(r);
                let acc = deciding.access;
                let opposite =
                    |v: Vec<RuleRef>| -> Vec<RuleRef> { v.into_iter().filter(|x| x.access != acc).collect() };
                let unknown = opposite(unknown);
                let partial = opposite(partial);
                if !unknown.is_empty() {
                    let mut uncertain = unknown;
                    uncertain.extend(partial);
                    return Verdict::Unknown {
                        deciding: Some(deciding),
                        uncertain,
                    };
                }
                if !partial.is_empty() {
                    return Verdict::Partial {
                        deciding,
                        exceptions: partial,
                    };
                }
                return match acc {
                    Some(Access::Allow) => Verdict::Allowed(deciding),
                    Some(Access::Deny) => Verdict::Blocked(deciding),
                    // `applies` never returns Full for a rule of unknown access.
                    None => Verdict::Unknown {
                        deciding: Some(deciding),
                        uncertain: Vec::new(),
                    },
                };
            }
        }
    }
    let mut uncertain = unknown;
    uncertain.extend(partial);
    Verdict::Unknown {
        deciding: None,
        uncertain,
    }
}
