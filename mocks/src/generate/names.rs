//! Names and ids exactly as cloud-provider-azure (CPA) and ARM spell them, for the generator.
//!
//! Pure functions only: no randomness beyond the `Rng` handed in, no I/O. Every rule here cites
//! `shared/docs/domain.md`; the generator must never invent a naming scheme of its own, or the
//! audit would be tested against names no real cluster produces.

use rand::Rng;

/// A random RFC 4122 version-4 style UUID, lowercase (Kubernetes UIDs and ARM GUIDs look alike).
pub fn uuid(rng: &mut impl Rng) -> String {
    let a: u128 = rng.r#gen();
    let h = format!("{a:032x}");
    // Version nibble 4 and variant 8..b, as real UIDs have.
    let variant = ["8", "9", "a", "b"][(a >> 3) as usize % 4];
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        variant,
        &h[17..20],
        &h[20..32]
    )
}

/// `W/"<guid>"`, the etag shape of Microsoft.Network resources (recorded fixtures).
pub fn etag(rng: &mut impl Rng) -> String {
    format!("W/\"{}\"", uuid(rng))
}

/// The Service base name: `"a"` + UID without dashes, cut to 32 characters
/// (`cloudprovider.DefaultLoadBalancerName`, domain.md §1.1).
pub fn base_name(uid: &str) -> String {
    let mut s = String::from("a");
    s.push_str(&uid.replace('-', ""));
    s.truncate(32);
    s
}

/// `getResourceByIPFamily`: `-IPv6` only for the IPv6 side of a dual-stack Service (§1.3).
pub fn by_family(name: String, dual_stack_ipv6: bool) -> String {
    if dual_stack_ipv6 {
        format!("{name}-IPv6")
    } else {
        name
    }
}

/// Frontend IP configuration name (`getDefaultFrontendIPConfigName`, §1.3): the base name, or for
/// an internal Service with the internal-subnet annotation `<base>-<subnet>` cut to 75 characters
/// with a last character that is not a letter or `_` replaced by `_`.
pub fn fip_name(base: &str, subnet: Option<&str>, dual_stack_ipv6: bool) -> String {
    let name = match subnet {
        None => base.to_string(),
        Some(sn) => {
            let mut n = format!("{base}-{sn}");
            if n.len() > 75 {
                n.truncate(75);
                if n.chars()
                    .last()
                    .is_some_and(|c| !(c.is_ascii_alphabetic() || c == '_'))
                {
                    n.pop();
                    n.push('_');
                }
            }
            n
        }
    };
    by_family(name, dual_stack_ipv6)
}

/// Load-balancing rule (and per-port probe) name (`getLoadBalancerRuleName`, §1.4):
/// `<base>-<PROTO>-<port>`, or `<base>-<subnet>-<PROTO>-<port>` with the subnet segment cut so the
/// whole stays within 75 characters.
pub fn rule_name(base: &str, subnet: Option<&str>, proto: &str, port: u16, dual_stack_ipv6: bool) -> String {
    let plain = format!("{base}-{proto}-{port}");
    let name = match subnet {
        None => plain,
        Some(sn) => {
            let room = 75usize.saturating_sub(plain.len() + 1);
            let seg: String = sn.chars().take(room).collect();
            format!("{base}-{seg}-{proto}-{port}")
        }
    };
    by_family(name, dual_stack_ipv6)
}

/// Generated public IP name `<clusterName>-<base>` (`getPublicIPName`, §1.8).
pub fn pip_name(cluster_name: &str, base: &str, dual_stack_ipv6: bool) -> String {
    let mut n = format!("{cluster_name}-{base}");
    n.truncate(75);
    by_family(n, dual_stack_ipv6)
}

/// Current consolidated NSG allow rule (`GenerateAllowSecurityRuleName`,
/// CPA:pkg/provider/securitygroup/securityrule.go): `k8s-azure-lb_allow_<IPv4|IPv6>_<md5hex>` of
/// `"<Protocol>_<sorted sources joined ,>_<ports sorted as strings joined ,>"`.
pub fn nsg_allow_rule_name(protocol: &str, ipv6: bool, sources: &[&str], ports: &[u16]) -> String {
    let mut srcs: Vec<&str> = sources.to_vec();
    srcs.sort_unstable();
    let ports = sorted_port_strings(ports);
    let v = format!("{protocol}_{}_{}", srcs.join(","), ports.join(","));
    format!(
        "k8s-azure-lb_allow_{}_{}",
        if ipv6 { "IPv6" } else { "IPv4" },
        md5_hex(v.as_bytes())
    )
}

/// Ports as the provider writes `destinationPortRanges`: decimal strings sorted as strings
/// (`NormalizeDestinationPortRanges`), so `443` sorts before `80`.
pub fn sorted_port_strings(ports: &[u16]) -> Vec<String> {
    let mut v: Vec<String> = ports.iter().map(u16::to_string).collect();
    v.sort();
    v.dedup();
    v
}

/// Legacy (before v1.29) per-Service NSG rule name `<base>-<PROTO>-<port>-<source>`
/// (`CPA@v1.28.0 getSecurityRuleName`, §1.7).
pub fn legacy_nsg_rule_name(base: &str, proto: &str, port: u16, source: &str) -> String {
    let safe = source.replace('/', "_").replace(':', ".");
    format!("{base}-{proto}-{port}-{safe}")
}

/// MD5 (RFC 1321) as lowercase hex. Only used to name NSG rules the way the provider does
/// (`crypto/md5` there); not for anything that needs a secure hash.
pub fn md5_hex(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
        5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15,
        21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    // K[i] = floor(abs(sin(i + 1)) * 2^32), RFC 1321 §3.4, written out so no libm is involved.
    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
        0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
        0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
        0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
        0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
        0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
        0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    let (mut a0, mut b0, mut c0, mut d0) = (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(K[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `/subscriptions/<s>/resourceGroups/<rg>`.
pub fn rg_id(sub: &str, rg: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}")
}

/// `/subscriptions/<s>/resourceGroups/<rg>/providers/<ns/type>/<name>`.
pub fn res_id(sub: &str, rg: &str, ty: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{ty}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn md5_matches_rfc1321_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn provider_names() {
        let uid = "3d654cb4-4770-4508-bc7b-1db1dacaec0f";
        let base = base_name(uid);
        assert_eq!(base, "a3d654cb447704508bc7b1db1dacaec0");
        assert_eq!(
            rule_name(&base, None, "TCP", 443, false),
            format!("{base}-TCP-443")
        );
        assert_eq!(
            rule_name(&base, None, "TCP", 443, true),
            format!("{base}-TCP-443-IPv6")
        );
        assert_eq!(
            rule_name(&base, Some("ilb"), "TCP", 80, false),
            format!("{base}-ilb-TCP-80")
        );
        assert_eq!(pip_name("kubernetes", &base, false), format!("kubernetes-{base}"));
        assert_eq!(
            fip_name(&base, Some("ilb-subnet"), false),
            format!("{base}-ilb-subnet")
        );
        let long = "s".repeat(60);
        let f = fip_name(&base, Some(&long), false);
        assert_eq!(f.len(), 75);
        let f = fip_name(&base, Some(&format!("{}9x", "s".repeat(41))), false);
        assert!(f.ends_with('_') && f.len() == 75);
        assert_eq!(
            legacy_nsg_rule_name(&base, "TCP", 80, "Internet"),
            format!("{base}-TCP-80-Internet")
        );
        assert_eq!(
            legacy_nsg_rule_name(&base, "TCP", 443, "10.0.0.0/8"),
            format!("{base}-TCP-443-10.0.0.0_8")
        );
        // Ports sort as strings: "443" < "80".
        assert_eq!(
            nsg_allow_rule_name("Tcp", false, &["Internet"], &[80, 443]),
            format!("k8s-azure-lb_allow_IPv4_{}", md5_hex(b"Tcp_Internet_443,80"))
        );
    }

    #[test]
    fn uuids_look_like_uids() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let u = uuid(&mut rng);
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
        assert_eq!(&u[14..15], "4");
        assert_eq!(base_name(&u).len(), 32);
    }
}
