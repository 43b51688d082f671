//! A network security group evaluator: does this NSG (or this chain of NSGs) let a Service's
//! clients reach its port? Pure functions over inventory types; no I/O, no Azure calls.
//!
//! What it models (learn.microsoft.com/azure/virtual-network/network-security-groups-overview and
//! .../service-tags-overview):
//! - rules in priority order, lowest number first, the first rule that takes the flow decides;
//!   the inbound default rules (`AllowVnetInBound` 65000, `AllowAzureLoadBalancerInBound` 65001,
//!   `DenyAllInBound` 65500) are assumed when the inventory lacks them;
//! - protocols `*`, `Tcp`, `Udp` (`Icmp`, `Esp`, `Ah` never match a Service port);
//! - port ranges `80-90`, lists, `*`; source port restrictions;
//! - prefixes as CIDR or single addresses, IPv4 and IPv6; `*`; service tags `Internet` (public
//!   space outside the VNet), `VirtualNetwork` (the VNet's prefixes; peered and on-premises ranges
//!   are unknown), `AzureLoadBalancer` (168.63.129.16), other tags as unknown public ranges;
//! - inbound traffic crosses the subnet's NSG, then the NIC's; it passes only if every NSG on the
//!   path allows it.
//!
//! What it must not do: conclude "blocked" from anything it could not read or resolve. A rule it
//! cannot fully evaluate (an unresolved tag, application security groups, an unreadable port)
//! makes the answer unknown, and a rule that takes only part of the clients makes it partial.

mod addr;
mod eval;

pub use addr::{AddrSet, AddressPrefix, Cidr, Env, Family, Relation, destination_matches, relation};
pub use eval::{
    Access, Flow, Protocol, RuleRef, Verdict, default_inbound_rules, evaluate, evaluate_ordered,
    ordered_rules,
};

use serde::Serialize;

use crate::inventory::Nsg;

/// Where an NSG sits on the path to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HopRole {
    /// The NSG of the node's subnet (evaluated first for inbound traffic).
    Subnet,
    /// The NSG of the node's network interface.
    Nic,
    /// The cluster's NSG (`securityGroupName`), used when the node's subnet and NIC are unknown:
    /// the provider writes its rules there because that is where traffic is filtered.
    Cluster,
}

/// One NSG on the path; `nsg: None` means an NSG is (or may be) there but was not read.
#[derive(Debug, Clone)]
pub struct Hop<'a> {
    pub role: HopRole,
    pub nsg: Option<&'a Nsg>,
    /// Why the NSG is unknown, for evidence.
    pub note: Option<String>,
}

/// What the whole path does with a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathVerdict {
    /// Every NSG on the path is known and allows the whole flow.
    Allowed,
    /// A known NSG denies the whole flow (whatever the others do).
    Blocked {
        role: HopRole,
        nsg_id: String,
        nsg_name: String,
        rule: RuleRef,
    },
    /// Neither: a partial or unknown verdict, or an NSG that could not be read.
    Undetermined,
}

/// Evaluates a flow along a path (subnet NSG, then NIC NSG). `verdict_of` evaluates one NSG, so
/// callers can memoise.
pub fn evaluate_path(hops: &[Hop], mut verdict_of: impl FnMut(&Nsg) -> Verdict) -> PathVerdict {
    let mut all_allowed = true;
    let mut ordered: Vec<&Hop> = hops.iter().collect();
    ordered.sort_by_key(|h| h.role);
    for h in ordered {
        match h.nsg {
            Some(nsg) => match verdict_of(nsg) {
                Verdict::Blocked(rule) => {
                    return PathVerdict::Blocked {
                        role: h.role,
                        nsg_id: nsg.id.clone(),
                        nsg_name: nsg.name.clone(),
                        rule,
                    };
                }
                Verdict::Allowed(_) => {}
                _ => all_allowed = false,
            },
            None => all_allowed = false,
        }
    }
    if all_allowed {
        PathVerdict::Allowed
    } else {
        PathVerdict::Undetermined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::SecurityRule;
    use std::net::IpAddr;

    /// `name priority access proto src dst ports [sports]`, lists comma-separated.
    fn rule(spec: &str) -> SecurityRule {
        let f: Vec<&str> = spec.split_whitespace().collect();
        let list = |s: &str| -> Vec<String> {
            if s == "-" {
                Vec::new()
            } else {
                s.split(',').map(str::to_string).collect()
            }
        };
        SecurityRule {
            id: format!("/nsg/securityRules/{}", f[0]),
            name: f[0].into(),
            priority: f[1].parse().ok(),
            direction: "Inbound".into(),
            access: f[2].into(),
            protocol: f[3].into(),
            source_prefixes: list(f[4]),
            destination_prefixes: list(f[5]),
            destination_ports: list(f[6]),
            source_ports: f.get(7).map(|s| list(s)).unwrap_or_else(|| vec!["*".into()]),
            is_default: false,
        }
    }

    fn nsg(rules: &[&str]) -> Nsg {
        Nsg {
            id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n"
                .into(),
            name: "n".into(),
            subscription: "s".into(),
            resource_group: "rg".into(),
            location: None,
            etag: None,
            rules: rules.iter().map(|s| rule(s)).collect(),
            default_rules: Vec::new(),
            subnet_ids: Vec::new(),
            nic_ids: Vec::new(),
        }
    }

    fn flow(proto: Protocol, port: u32, dest: &str, src: &str) -> Flow {
        Flow {
            protocol: proto,
            port,
            destination: dest.parse::<IpAddr>().unwrap(),
            source: AddressPrefix::parse(src),
        }
    }

    fn env() -> Env {
        Env {
            vnet_prefixes: Some(vec![Cidr::parse("10.1.0.0/16").unwrap()]),
        }
    }

    /// Expected outcome: `allow:<rule>`, `block:<rule>`, `partial`, `unknown`.
    fn outcome(v: &Verdict) -> String {
        match v {
            Verdict::Allowed(r) => format!("allow:{}", r.name),
            Verdict::Blocked(r) => format!("block:{}", r.name),
            Verdict::Partial { .. } => "partial".into(),
            Verdict::Unknown { .. } => "unknown".into(),
        }
    }

    use Protocol::*;
    const PIP: &str = "20.1.2.3";

    #[test]
    fn table() {
        #[allow(clippy::type_complexity)]
        let cases: &[(&str, &[&str], Flow, &str)] = &[
            (
                "a deny above an allow",
                &[
                    "deny8443 400 Deny Tcp Internet * 8443",
                    "allow 505 Allow Tcp Internet 20.1.2.3 8443",
                ],
                flow(Tcp, 8443, PIP, "Internet"),
                "block:deny8443",
            ),
            (
                "an allow above a deny",
                &[
                    "deny 600 Deny Tcp Internet * 8443",
                    "allow 505 Allow Tcp Internet 20.1.2.3 8443",
                ],
                flow(Tcp, 8443, PIP, "Internet"),
                "allow:allow",
            ),
            (
                "nothing allows a public flow",
                &[],
                flow(Tcp, 443, PIP, "Internet"),
                "block:DenyAllInBound",
            ),
            (
                "the VNet reaches an internal IP by default",
                &[],
                flow(Tcp, 5432, "10.1.0.100", "VirtualNetwork"),
                "allow:AllowVnetInBound",
            ),
            (
                "an allow for the wrong destination IP",
                &["allow 500 Allow Tcp Internet 20.1.2.4 443"],
                flow(Tcp, 443, PIP, "Internet"),
                "block:DenyAllInBound",
            ),
            (
                "an allow for the wrong port",
                &["allow 500 Allow Tcp Internet 20.1.2.3 80"],
                flow(Tcp, 443, PIP, "Internet"),
                "block:DenyAllInBound",
            ),
            (
                "overlapping ranges: wide deny first",
                &[
                    "deny 100 Deny Tcp * * 8000-8999",
                    "allow 200 Allow Tcp Internet * 8443",
                ],
                flow(Tcp, 8443, PIP, "Internet"),
                "block:deny",
            ),
            (
                "overlapping ranges: wide allow first",
                &[
                    "allow 100 Allow Tcp Internet * 8000-9000",
                    "deny 200 Deny Tcp * * 8443",
                ],
                flow(Tcp, 8443, PIP, "Internet"),
                "allow:allow",
            ),
            (
                "a range that ends below the port",
                &["allow 100 Allow Tcp Internet * 8000-8442"],
                flow(Tcp, 8443, PIP, "Internet"),
                "block:DenyAllInBound",
            ),
            (
                "a port list",
                &["allow 500 Allow Tcp Internet 20.1.2.3 443,80"],
                flow(Tcp, 80, PIP, "Internet"),
                "allow:allow",
            ),
            (
                "a port outside the list",
                &["allow 500 Allow Tcp Internet 20.1.2.3 443,80"],
                flow(Tcp, 8080, PIP, "Internet"),
                "block:DenyAllInBound",
            ),
            (
                "* ports",
                &["allow 500 Allow Tcp Internet 20.1.2.3 *"],
                flow(Tcp, 8080, PIP, "Internet"),
                "allow:allow",
            ),
            (
                "UDP rule, TCP port",
                &["allow 500 Allow Udp Internet * 443"],
                flow(Tcp, 443, PIP, "Internet"),
                "block:DenyAllInBound",
            ),
            (
                "UDP rule, UDP port",
                &["allow 500 Allow Udp Internet * 5060"],
                flow(Udp, 5060, PIP, "Internet"),
                "allow:allow",
            ),
            (
                "* protocol",
                &["allow 500 Allow * Internet * 443"],
                flow(Udp, 443, PIP, "Internet"),
                "allow:allow",
            ),
            (
                "ICMP never admits a port",
                &["allow 500 Allow Icmp Internet * *"],
                flow(Tcp, 443, PIP, "Internet"),
                "block:DenyAllInBound",
            ),
            (
                "SCTP needs *",
                &["allow 500 Allow Tcp Internet * 9000"],
                flow(Sctp, 9000, PIP, "Internet"),
                "block:DenyAllInBound",
            ),
            (
                "SCTP with *",
                &["allow 500 Allow * Internet * 9000"],
                flow(Sctp, 9000, PIP, "Internet"),
                "allow:allow",
            ),
            (
                "CIDR source allowed",
                &["allow 505 Allow Tcp 198.51.100.0/24 20.1.2.3 443"],
                flow(Tcp, 443, PIP, "198.51.100.0/24"),
                "allow:allow",
            ),
            (
                "a narrower source from the same range",
                &["allow 505 Allow Tcp 198.51.100.0/25 20.1.2.3 443"],
                flow(Tcp, 443, PIP, "198.51.100.0/24"),
                "partial",
            ),
            (
                "another office's range",
                &["allow 505 Allow Tcp 203.0.113.0/24 20.1.2.3 443"],
                flow(Tcp, 443, PIP, "198.51.100.0/24"),
                "block:DenyAllInBound",
            ),
            (
                "single-IP source and destination with /32",
                &["allow 505 Allow Tcp 198.51.100.7/32 20.1.2.3/32 443"],
                flow(Tcp, 443, PIP, "198.51.100.7"),
                "allow:allow",
            ),
            (
                "a source list covering the range in two halves",
                &["allow 505 Allow Tcp 198.51.100.0/25,198.51.100.128/25 * 443"],
                flow(Tcp, 443, PIP, "198.51.100.0/24"),
                "allow:allow",
            ),
            (
                "Internet covers a public CIDR source",
                &["allow 505 Allow Tcp Internet * 443"],
                flow(Tcp, 443, PIP, "198.51.100.0/24"),
                "allow:allow",
            ),
            (
                "a source range that allows only part of Internet",
                &["allow 505 Allow Tcp 198.51.100.0/24 * 443"],
                flow(Tcp, 443, PIP, "Internet"),
                "partial",
            ),
            (
                "a partial deny above a full allow",
                &[
                    "deny 100 Deny Tcp 198.51.100.0/24 * 443",
                    "allow 200 Allow Tcp Internet * 443",
                ],
                flow(Tcp, 443, PIP, "Internet"),
                "partial",
            ),
            (
                "a partial deny then a full deny",
                &[
                    "deny 100 Deny Tcp 198.51.100.0/24 * 443",
                    "deny2 200 Deny Tcp * * 443",
                ],
                flow(Tcp, 443, PIP, "Internet"),
                "block:deny2",
            ),
            (
                "IPv6 destination allowed from Internet",
                &["allow 501 Allow Tcp Internet 2603:1020:206:7::1c 443"],
                flow(Tcp, 443, "2603:1020:206:7::1c", "Internet"),
                "allow:allow",
            ),
            (
                "IPv6 flow, IPv4-only allow",
                &["allow 500 Allow Tcp Internet 20.1.2.3 443"],
                flow(Tcp, 443, "2603:1020:206:7::1c", "Internet"),
                "block:DenyAllInBound",
            ),
            (
                "IPv6 CIDR source",
                &["allow 500 Allow Tcp 2001:db8::/32 * 443"],
                flow(Tcp, 443, "2603:1020:206:7::1c", "2001:db8:1::/48"),
                "allow:allow",
            ),
            (
                "an unresolvable tag allows before the deny",
                &["afd 500 Allow Tcp AzureCloud * 443"],
                flow(Tcp, 443, PIP, "Internet"),
                "unknown",
            ),
            (
                "an unresolvable tag denies before the allow",
                &[
                    "afd 100 Deny Tcp AzureCloud * 443",
                    "allow 500 Allow Tcp Internet * 443",
                ],
                flow(Tcp, 443, PIP, "Internet"),
                "unknown",
            ),
            (
                "the Service's own service tag",
                &["afd 501 Allow Tcp AzureFrontDoor.Backend 20.1.2.3 443"],
                flow(Tcp, 443, PIP, "AzureFrontDoor.Backend"),
                "allow:afd",
            ),
            (
                "a service tag blocked by an Internet deny",
                &[
                    "deny 100 Deny Tcp Internet * 443",
                    "afd 501 Allow Tcp AzureFrontDoor.Backend 20.1.2.3 443",
                ],
                flow(Tcp, 443, PIP, "AzureFrontDoor.Backend"),
                "block:deny",
            ),
            (
                "a service tag against a CIDR allow",
                &["allow 500 Allow Tcp 198.51.100.0/24 * 443"],
                flow(Tcp, 443, PIP, "AzureFrontDoor.Backend"),
                "unknown",
            ),
            (
                "application security groups (no prefixes)",
                &["asg 500 Allow Tcp - - 443"],
                flow(Tcp, 443, PIP, "Internet"),
                "unknown",
            ),
            (
                "a rule without a priority",
                &["odd x Allow Tcp Internet * 443"],
                flow(Tcp, 443, PIP, "Internet"),
                "unknown",
            ),
            (
                "an unreadable port entry",
                &["odd 100 Allow Tcp Internet * http"],
                flow(Tcp, 443, PIP, "Internet"),
                "unknown",
            ),
            (
                "a source-port restricted allow",
                &["allow 100 Allow Tcp Internet * 443 1024-65535"],
                flow(Tcp, 443, PIP, "Internet"),
                "partial",
            ),
            (
                "source ports given as two spans covering all",
                &["allow 100 Allow Tcp Internet * 443 0-1023,1024-65535"],
                flow(Tcp, 443, PIP, "Internet"),
                "allow:allow",
            ),
            (
                "VirtualNetwork destination is not a public IP",
                &["allow 100 Allow Tcp Internet VirtualNetwork 443"],
                flow(Tcp, 443, PIP, "Internet"),
                "block:DenyAllInBound",
            ),
            (
                "an internal Service denied from its VNet",
                &["deny 100 Deny Tcp 10.1.0.0/16 * 5432"],
                flow(Tcp, 5432, "10.1.0.100", "VirtualNetwork"),
                "block:deny",
            ),
            (
                "an Internet deny does not touch VNet clients",
                &["deny 100 Deny Tcp Internet * 5432"],
                flow(Tcp, 5432, "10.1.0.100", "VirtualNetwork"),
                "allow:AllowVnetInBound",
            ),
            (
                "an on-premises range to an internal IP",
                &[],
                flow(Tcp, 5432, "10.1.0.100", "192.168.10.0/24"),
                "unknown",
            ),
            (
                "a deny from the probe address only",
                &[
                    "deny 100 Deny * AzureLoadBalancer * *",
                    "allow 200 Allow Tcp Internet * 443",
                ],
                flow(Tcp, 443, PIP, "Internet"),
                "allow:allow",
            ),
        ];
        let e = env();
        for (what, rules, f, want) in cases {
            let got = outcome(&evaluate(&nsg(rules), f, &e));
            assert_eq!(&got, want, "{what}");
        }
    }

    #[test]
    fn listed_default_rules_are_used_and_outbound_rules_ignored() {
        let mut n = nsg(&["out 100 Deny * * * *"]);
        n.rules[0].direction = "Outbound".into();
        let mut defaults = default_inbound_rules(&n.id);
        // A listed default set that (unrealistically) ends in an allow shows the listed set wins.
        defaults[2].access = "Allow".into();
        n.default_rules = defaults;
        let v = evaluate(&n, &flow(Tcp, 443, PIP, "Internet"), &env());
        assert_eq!(outcome(&v), "allow:DenyAllInBound");
        match v {
            Verdict::Allowed(r) => {
                assert!(r.default);
                assert_eq!(r.priority, Some(65500));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths_need_every_nsg() {
        let allow = nsg(&["allow 500 Allow Tcp Internet * 443"]);
        let deny = nsg(&["deny 100 Deny Tcp Internet * 443"]);
        let e = env();
        let f = flow(Tcp, 443, PIP, "Internet");
        let hop = |role, n: Option<&'static Nsg>| Hop {
            role,
            nsg: n,
            note: None,
        };
        let leak = |n: Nsg| -> &'static Nsg { Box::leak(Box::new(n)) };
        let (allow, deny) = (leak(allow), leak(deny));
        let run = |hops: &[Hop]| evaluate_path(hops, |n| evaluate(n, &f, &e));
        assert_eq!(
            run(&[hop(HopRole::Subnet, Some(allow)), hop(HopRole::Nic, Some(allow))]),
            PathVerdict::Allowed
        );
        match run(&[hop(HopRole::Nic, Some(deny)), hop(HopRole::Subnet, Some(allow))]) {
            PathVerdict::Blocked { role, rule, .. } => {
                assert_eq!(role, HopRole::Nic);
                assert_eq!(rule.name, "deny");
            }
            other => panic!("{other:?}"),
        }
        // The subnet blocks: an unknown NIC NSG cannot let the traffic back in.
        assert!(matches!(
            run(&[hop(HopRole::Subnet, Some(deny)), hop(HopRole::Nic, None)]),
            PathVerdict::Blocked {
                role: HopRole::Subnet,
                ..
            }
        ));
        // The subnet allows, the NIC NSG is unknown: undetermined, not allowed.
        assert_eq!(
            run(&[hop(HopRole::Subnet, Some(allow)), hop(HopRole::Nic, None)]),
            PathVerdict::Undetermined
        );
        // No NSG at all on the path: nothing filters.
        assert_eq!(run(&[]), PathVerdict::Allowed);
    }
}
