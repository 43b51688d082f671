//! Address prefixes of NSG rules and the sets they denote, with *three-valued* membership: an
//! address is certainly in a set, perhaps in it (a service tag whose ranges we do not have, the
//! peered or on-premises part of `VirtualNetwork`), or certainly not. Pure; no I/O.
//!
//! It must never pretend to know a service tag's ranges: everything it cannot resolve is
//! "perhaps", so the evaluator answers "unknown" rather than "blocked".

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// IP family of a flow; every set is built for one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
    fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
    fn max(self) -> u128 {
        match self {
            Family::V4 => u32::MAX as u128,
            Family::V6 => u128::MAX,
        }
    }
}

fn ip_bits(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(*a) as u128,
        IpAddr::V6(a) => u128::from(*a),
    }
}

/// A CIDR prefix (`10.0.0.0/8`, `fd00::/8`) or a single address (`20.1.2.3`, as NSG rules and
/// `loadBalancerSourceRanges` may carry). Host bits are masked off, as Azure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub family: Family,
    /// First address of the prefix.
    pub first: u128,
    pub len: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.trim().parse::<u8>().ok()?)),
            None => (s, None),
        };
        let ip: IpAddr = addr.trim().parse().ok()?;
        let family = Family::of(&ip);
        let len = len.unwrap_or(family.bits());
        if len > family.bits() {
            return None;
        }
        let host_mask = if len == family.bits() {
            0
        } else {
            family.max() >> len
        };
        Some(Cidr {
            family,
            first: ip_bits(&ip) & !host_mask & family.max(),
            len,
        })
    }

    pub fn last(&self) -> u128 {
        if self.len == self.family.bits() {
            self.first
        } else {
            self.first | (self.family.max() >> self.len)
        }
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        Family::of(ip) == self.family && (self.first..=self.last()).contains(&ip_bits(ip))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip: IpAddr = match self.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(self.first as u32)),
            Family::V6 => IpAddr::V6(std::net::Ipv6Addr::from(self.first)),
        };
        write!(f, "{ip}/{}", self.len)
    }
}

/// A set of addresses of one family: sorted, merged, inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrSet {
    family: Family,
    ranges: Vec<(u128, u128)>,
}

impl AddrSet {
    pub fn empty(family: Family) -> AddrSet {
        AddrSet {
            family,
            ranges: Vec::new(),
        }
    }

    pub fn all(family: Family) -> AddrSet {
        AddrSet {
            family,
            ranges: vec![(0, family.max())],
        }
    }

    /// The prefixes of this family among `cidrs` (others are ignored: a v6 prefix holds no v4
    /// address).
    pub fn of(family: Family, cidrs: impl IntoIterator<Item = Cidr>) -> AddrSet {
        let ranges = cidrs
            .into_iter()
            .filter(|c| c.family == family)
            .map(|c| (c.first, c.last()))
            .collect();
        AddrSet { family, ranges }.normalized()
    }

    fn normalized(mut self) -> AddrSet {
        self.ranges.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(self.ranges.len());
        for (lo, hi) in self.ranges {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        self.ranges = out;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        if Family::of(ip) != self.family {
            return false;
        }
        let x = ip_bits(ip);
        self.ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&x))
    }

    pub fn union(&self, other: &AddrSet) -> AddrSet {
        debug_assert_eq!(self.family, other.family);
        let mut ranges = self.ranges.clone();
        ranges.extend_from_slice(&other.ranges);
        AddrSet {
            family: self.family,
            ranges,
        }
        .normalized()
    }

    pub fn intersects(&self, other: &AddrSet) -> bool {
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            if a.0 <= b.1 && b.0 <= a.1 {
                return true;
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }

    /// `self ⊆ other` (both merged, so each range of `self` must sit inside one of `other`).
    pub fn is_subset(&self, other: &AddrSet) -> bool {
        self.ranges
            .iter()
            .all(|(lo, hi)| other.ranges.iter().any(|(olo, ohi)| olo <= lo && hi <= ohi))
    }

    pub fn difference(&self, other: &AddrSet) -> AddrSet {
        let mut out = Vec::new();
        for &(lo, hi) in &self.ranges {
            let mut cur = lo;
            let mut alive = true;
            for &(olo, ohi) in &other.ranges {
                if ohi < cur || olo > hi {
                    continue;
                }
                if olo > cur {
                    out.push((cur, olo - 1));
                }
                if ohi >= hi {
                    alive = false;
                    break;
                }
                cur = ohi + 1;
            }
            if alive {
                out.push((cur, hi));
            }
        }
        AddrSet {
            family: self.family,
            ranges: out,
        }
        .normalized()
    }
}

/// Addresses that are not on the public internet. `Internet` (the service tag) is the public
/// address space outside the virtual network ("Virtual network service tags", learn.microsoft.com
/// /azure/virtual-network/service-tags-overview); peered networks and on-premises ranges behind a
/// gateway, which `VirtualNetwork` also covers, are almost always drawn from these.
/// The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) are deliberately
/// *not* listed: examples and test worlds use them as stand-ins for public office addresses.
const NON_PUBLIC_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/3",
];
const NON_PUBLIC_V6: &[&str] = &["::/127", "fc00::/7", "fe80::/10", "ff00::/8"];

/// Private / non-routable addresses of a family.
pub fn non_public(family: Family) -> AddrSet {
    let list = match family {
        Family::V4 => NON_PUBLIC_V4,
        Family::V6 => NON_PUBLIC_V6,
    };
    AddrSet::of(family, list.iter().filter_map(|s| Cidr::parse(s)))
}

pub fn public(family: Family) -> AddrSet {
    AddrSet::all(family).difference(&non_public(family))
}

/// Public addresses that can be internet clients: [`public`] without 168.63.129.16, the
/// platform's virtual address (never an internet client; leaving it out keeps
/// `AllowAzureLoadBalancerInBound` from looking like a partial allow of internet traffic). Other
/// service tags are public Azure ranges, so they live in here too.
pub fn internet(family: Family) -> AddrSet {
    public(family).difference(&AddrSet::of(family, Cidr::parse(AZURE_LB_IPV4)))
}

/// The platform's virtual IP from which the load balancer's health probes come: what the
/// `AzureLoadBalancer` tag means for IPv4 (learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16).
pub const AZURE_LB_IPV4: &str = "168.63.129.16/32";

/// One entry of `sourceAddressPrefix(es)` / `destinationAddressPrefix(es)`, or an allowed source
/// of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressPrefix {
    /// `*` (also `Any`, as the portal shows it).
    Any,
    Cidr(Cidr),
    Internet,
    VirtualNetwork,
    AzureLoadBalancer,
    /// Any other service tag (`AzureFrontDoor.Backend`, `Storage.WestEurope`, ...): public Azure
    /// ranges we do not have.
    Tag(String),
}

impl AddressPrefix {
    pub fn parse(s: &str) -> AddressPrefix {
        let t = s.trim();
        if t == "*" || t.eq_ignore_ascii_case("any") {
            return AddressPrefix::Any;
        }
        if let Some(c) = Cidr::parse(t) {
            return AddressPrefix::Cidr(c);
        }
        // Classic deployments spelled the default tags in capitals with underscores.
        match t.to_ascii_lowercase().as_str() {
            "internet" => AddressPrefix::Internet,
            "virtualnetwork" | "virtual_network" => AddressPrefix::VirtualNetwork,
            "azureloadbalancer" | "azure_loadbalancer" => AddressPrefix::AzureLoadBalancer,
            _ => AddressPrefix::Tag(t.to_string()),
        }
    }

    /// Service tags compare by name (case-insensitively); `None` for `*` and CIDRs.
    fn tag_name(&self) -> Option<String> {
        match self {
            AddressPrefix::Internet => Some("internet".into()),
            AddressPrefix::VirtualNetwork => Some("virtualnetwork".into()),
            AddressPrefix::AzureLoadBalancer => Some("azureloadbalancer".into()),
            AddressPrefix::Tag(t) => Some(t.to_ascii_lowercase()),
            AddressPrefix::Any | AddressPrefix::Cidr(_) => None,
        }
    }
}

impl fmt::Display for AddressPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressPrefix::Any => f.write_str("*"),
            AddressPrefix::Cidr(c) if c.len == c.family.bits() => {
                // A single address prints without its /32 or /128.
                let s = c.to_string();
                f.write_str(s.split('/').next().unwrap_or(&s))
            }
            AddressPrefix::Cidr(c) => write!(f, "{c}"),
            AddressPrefix::Internet => f.write_str("Internet"),
            AddressPrefix::VirtualNetwork => f.write_str("VirtualNetwork"),
            AddressPrefix::AzureLoadBalancer => f.write_str("AzureLoadBalancer"),
            AddressPrefix::Tag(t) => f.write_str(t),
        }
    }
}

/// What the evaluator knows about the network around the NSG.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// Address space of the VNet the protected subnet/NIC is in; `None` when unknown.
    pub vnet_prefixes: Option<Vec<Cidr>>,
}

/// Which side of the comparison a prefix is on: a Service's allowed source is taken at face
/// value (`VirtualNetwork` = the VNet's prefixes, as the brief asks), a rule's prefix is
/// widened to everything it might cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Flow,
    Rule,
}

/// A prefix resolved for one family: certainly-in and perhaps-in addresses (disjoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub certain: AddrSet,
    pub maybe: AddrSet,
}

impl Resolved {
    fn new(certain: AddrSet, maybe: AddrSet) -> Resolved {
        let maybe = maybe.difference(&certain);
        Resolved { certain, maybe }
    }
}

pub fn resolve(p: &AddressPrefix, family: Family, env: &Env, role: Role) -> Resolved {
    let none = AddrSet::empty(family);
    let vnet = env
        .vnet_prefixes
        .as_ref()
        .map(|v| AddrSet::of(family, v.iter().copied()));
    match p {
        AddressPrefix::Any => Resolved::new(AddrSet::all(family), none),
        AddressPrefix::Cidr(c) => Resolved::new(AddrSet::of(family, [*c]), none),
        AddressPrefix::Internet => {
            let public = internet(family);
            match &vnet {
                Some(v) => Resolved::new(public.difference(v), none),
                None => Resolved::new(public, none),
            }
        }
        AddressPrefix::VirtualNetwork => {
            let private = non_public(family);
            match (vnet, role) {
                (Some(v), Role::Flow) => Resolved::new(v, none),
                (Some(v), Role::Rule) => {
                    let maybe = private.difference(&v);
                    Resolved::new(v, maybe)
                }
                (None, _) => Resolved::new(none, private),
            }
        }
        AddressPrefix::AzureLoadBalancer => match family {
            Family::V4 => Resolved::new(
                AddrSet::of(family, Cidr::parse(AZURE_LB_IPV4)),
                AddrSet::empty(family),
            ),
            // The IPv6 probe source is not documented as plainly: leave it "perhaps" within
            // link-local, where it lives if anywhere.
            Family::V6 => Resolved::new(none, AddrSet::of(family, Cidr::parse("fe80::/10"))),
        },
        AddressPrefix::Tag(_) => Resolved::new(none, internet(family)),
    }
}

/// How a rule's prefix list relates to a flow's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Every address of the source is covered by the rule.
    Covers,
    /// No address of the source is covered.
    Disjoint,
    /// Certainly some but not all.
    Overlaps,
    /// Cannot tell (an unresolved service tag, an application security group).
    Unknown,
}

/// Relation of a rule's prefixes (`rule`, unparsed entries already parsed) to one source.
/// An empty `rule` list (a rule that names application security groups instead) is `Unknown`.
pub fn relation(rule: &[AddressPrefix], source: &AddressPrefix, family: Family, env: &Env) -> Relation {
    if rule.is_empty() {
        return Relation::Unknown;
    }
    // The same service tag on both sides covers it, whatever its ranges are.
    if let Some(t) = source.tag_name()
        && rule.iter().any(|r| r.tag_name().as_deref() == Some(t.as_str()))
    {
        return Relation::Covers;
    }
    let s = resolve(source, family, env, Role::Flow);
    let mut r_certain = AddrSet::empty(family);
    let mut r_maybe = AddrSet::empty(family);
    for p in rule {
        let x = resolve(p, family, env, Role::Rule);
        r_certain = r_certain.union(&x.certain);
        r_maybe = r_maybe.union(&x.maybe);
    }
    let r_maybe = r_maybe.difference(&r_certain);
    let r_out = AddrSet::all(family).difference(&r_certain.union(&r_maybe));
    let s_all = s.certain.union(&s.maybe);
    if s_all.is_empty() {
        return Relation::Disjoint;
    }
    if s_all.is_subset(&r_certain) {
        Relation::Covers
    } else if !s_all.intersects(&r_certain) && !s_all.intersects(&r_maybe) {
        Relation::Disjoint
    } else if s.certain.intersects(&r_certain) && s.certain.intersects(&r_out) {
        Relation::Overlaps
    } else {
        Relation::Unknown
    }
}

/// Whether a rule's destination prefixes take in one address: `Some(true)` certainly,
/// `Some(false)` certainly not, `None` unknown.
pub fn destination_matches(rule: &[AddressPrefix], dest: &IpAddr, env: &Env) -> Option<bool> {
    if rule.is_empty() {
        return None;
    }
    let family = Family::of(dest);
    let mut unknown = false;
    for p in rule {
        // `Internet` as a destination of an inbound rule: whether a public frontend address
        // counts is not documented, so it is never taken as a certain match or miss.
        let r = match p {
            AddressPrefix::Internet => Resolved::new(AddrSet::empty(family), public(family)),
            _ => resolve(p, family, env, Role::Rule),
        };
        if r.certain.contains(dest) {
            return Some(true);
        }
        if r.maybe.contains(dest) {
            unknown = true;
        }
    }
    if unknown { None } else { Some(false) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AddressPrefix {
        AddressPrefix::parse(s)
    }
    fn env() -> Env {
        Env {
            vnet_prefixes: Some(vec![Cidr::parse("10.1.0.0/16").unwrap()]),
        }
    }

    #[test]
    fn cidrs_parse_mask_and_print() {
        let c = Cidr::parse("10.1.2.3/16").unwrap();
        assert_eq!(c.to_string(), "10.1.0.0/16");
        assert!(c.contains(&"10.1.255.255".parse().unwrap()));
        assert!(!c.contains(&"10.2.0.0".parse().unwrap()));
        assert_eq!(Cidr::parse("20.1.2.3").unwrap().len, 32);
        assert_eq!(Cidr::parse("2603:1020::1").unwrap().len, 128);
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains(&"fd12::1".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("Internet").is_none());
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains(&"8.8.8.8".parse().unwrap())
        );
        assert_eq!(p("*"), AddressPrefix::Any);
        assert_eq!(p("INTERNET"), AddressPrefix::Internet);
        assert_eq!(
            p("AzureFrontDoor.Backend"),
            AddressPrefix::Tag("AzureFrontDoor.Backend".into())
        );
        assert_eq!(p("20.1.2.3/32").to_string(), "20.1.2.3");
    }

    #[test]
    fn set_operations() {
        let a = AddrSet::of(
            Family::V4,
            [
                Cidr::parse("10.0.0.0/9").unwrap(),
                Cidr::parse("10.128.0.0/9").unwrap(),
            ],
        );
        let b = AddrSet::of(Family::V4, [Cidr::parse("10.0.0.0/8").unwrap()]);
        assert_eq!(a, b, "adjacent halves merge");
        let hole = b.difference(&AddrSet::of(Family::V4, [Cidr::parse("10.5.0.0/16").unwrap()]));
        assert!(!hole.contains(&"10.5.1.1".parse().unwrap()));
        assert!(hole.contains(&"10.6.1.1".parse().unwrap()));
        assert!(!b.is_subset(&hole) && hole.is_subset(&b));
        assert!(public(Family::V4).contains(&"198.51.100.7".parse().unwrap()));
        assert!(!public(Family::V4).contains(&"192.168.1.1".parse().unwrap()));
        assert!(!public(Family::V6).contains(&"fd00::1".parse().unwrap()));
    }

    #[test]
    fn relations() {
        let e = env();
        let v4 = Family::V4;
        use Relation::*;
        let cases: &[(&[&str], &str, Relation)] = &[
            (&["*"], "Internet", Covers),
            (&["Internet"], "Internet", Covers),
            (&["Internet"], "198.51.100.0/24", Covers),
            (&["Internet"], "10.1.0.0/24", Disjoint),
            (&["Internet"], "VirtualNetwork", Disjoint),
            (&["VirtualNetwork"], "Internet", Disjoint),
            (&["VirtualNetwork"], "10.1.2.0/24", Covers),
            // A private range outside the VNet may be peered or on-premises: unknown.
            (&["VirtualNetwork"], "192.168.0.0/24", Unknown),
            (&["VirtualNetwork"], "198.51.100.0/24", Disjoint),
            (&["198.51.100.0/24"], "Internet", Overlaps),
            (
                &["198.51.100.0/25", "198.51.100.128/25"],
                "198.51.100.0/24",
                Covers,
            ),
            (&["198.51.100.0/25"], "198.51.100.0/24", Overlaps),
            (&["203.0.113.0/24"], "198.51.100.0/24", Disjoint),
            (&["fd00::/8"], "198.51.100.0/24", Disjoint),
            (&["AzureFrontDoor.Backend"], "AzureFrontDoor.Backend", Covers),
            (&["azurefrontdoor.backend"], "AzureFrontDoor.Backend", Covers),
            (&["Internet"], "AzureFrontDoor.Backend", Covers),
            (&["AzureCloud"], "AzureFrontDoor.Backend", Unknown),
            (&["198.51.100.0/24"], "AzureFrontDoor.Backend", Unknown),
            (&["10.0.0.0/8"], "AzureFrontDoor.Backend", Disjoint),
            (&["AzureFrontDoor.Backend"], "Internet", Unknown),
            (&["AzureLoadBalancer"], "Internet", Disjoint),
            (&["AzureLoadBalancer"], "VirtualNetwork", Disjoint),
            (&["10.1.0.0/16"], "VirtualNetwork", Covers),
            (&["10.1.0.0/17"], "VirtualNetwork", Overlaps),
            (&[], "Internet", Unknown),
        ];
        for (rule, src, want) in cases {
            let rule: Vec<_> = rule.iter().map(|s| p(s)).collect();
            assert_eq!(
                relation(&rule, &p(src), v4, &e),
                *want,
                "rule {rule:?} vs source {src}"
            );
        }
        // Without the VNet's prefixes, VirtualNetwork cannot be compared with a CIDR.
        let none = Env::default();
        assert_eq!(
            relation(&[p("10.1.0.0/16")], &p("VirtualNetwork"), v4, &none),
            Unknown
        );
        assert_eq!(
            relation(&[p("VirtualNetwork")], &p("VirtualNetwork"), v4, &none),
            Covers
        );
        // IPv6 flows: Internet covers a public v6 range, a v4 prefix covers nothing.
        assert_eq!(
            relation(&[p("Internet")], &p("2001:db8::/32"), Family::V6, &e),
            Covers
        );
        assert_eq!(
            relation(&[p("0.0.0.0/0")], &p("Internet"), Family::V6, &e),
            Disjoint
        );
    }

    #[test]
    fn destinations() {
        let e = env();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(destination_matches(&[p("*")], &ip("20.1.2.3"), &e), Some(true));
        assert_eq!(
            destination_matches(&[p("20.1.2.3")], &ip("20.1.2.3"), &e),
            Some(true)
        );
        assert_eq!(
            destination_matches(&[p("20.1.2.4")], &ip("20.1.2.3"), &e),
            Some(false)
        );
        assert_eq!(
            destination_matches(&[p("VirtualNetwork")], &ip("10.1.0.5"), &e),
            Some(true)
        );
        assert_eq!(
            destination_matches(&[p("VirtualNetwork")], &ip("20.1.2.3"), &e),
            Some(false)
        );
        assert_eq!(destination_matches(&[p("Internet")], &ip("20.1.2.3"), &e), None);
        assert_eq!(
            destination_matches(&[p("Sql.WestEurope")], &ip("20.1.2.3"), &e),
            None
        );
        assert_eq!(destination_matches(&[], &ip("20.1.2.3"), &e), None);
        assert_eq!(
            destination_matches(&[p("2603:1020::/32")], &ip("20.1.2.3"), &e),
            Some(false)
        );
    }
}
