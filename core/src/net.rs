//! Outbound destinations: whether the host of a URL that someone other than the operator chose
//! (a tenant's SSO issuer and the endpoints its discovery document names) is on the public
//! internet. The worker fetches such URLs itself, so without this check a tenant owner could make
//! it reach loopback, the cloud metadata address or a private network (server-side request
//! forgery).
//!
//! Core cannot resolve names (the ports have no DNS), so a host is judged by its form: an IP
//! literal by its range, a name by its suffix. A public name whose DNS answers with a private
//! address is beyond this check; what the runtime lets the deployment reach (Spin's
//! `allowed_outbound_hosts`, the network a Worker runs in) is the layer below it.
//!
//! IP literals are recognised the way WHATWG URL parsers (Workers' `fetch`) read them: a host
//! whose last label is a number is IPv4 in decimal, octal or hex, in one to four parts
//! (`2130706433`, `0x7f.1`, `0177.0.0.1` all mean 127.0.0.1). Anything but ASCII letters,
//! digits, `-` and `.` is refused, since a parser would percent-decode or IDNA-map it into
//! something else (`127.0.0.%31`, full-width digits).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Top-level labels that name private or local networks, never the public internet:
/// RFC 6761 (`localhost`), RFC 6762 (`local`, and the private TLDs of its appendix G), ICANN's
/// reserved `internal`, `arpa` (reverse-lookup names and RFC 8375's `home.arpa`).
const PRIVATE_TLDS: &[&str] = &[
    "localhost",
    "localdomain",
    "local",
    "internal",
    "intranet",
    "private",
    "corp",
    "home",
    "lan",
    "arpa",
];

/// IPv4 ranges that are not public unicast (RFC 6890 and its updates): (network, prefix length).
const NON_PUBLIC_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", incl. the unspecified address
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared address space (carrier-grade NAT)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, incl. the cloud metadata address 169.254.169.254
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, incl. broadcast 255.255.255.255
];

/// Special-purpose blocks inside IPv6 global unicast (2000::/3) that are not public hosts:
/// (first two 16-bit groups as one number, prefix length).
const NON_PUBLIC_V6_IN_GLOBAL: &[(u32, u32)] = &[
    (0x2001_0000, 23), // IETF protocol assignments (Teredo, benchmarking, ORCHID)
    (0x2001_0db8, 32), // documentation
    (0x2002_0000, 16), // 6to4: an embedded IPv4 address of any range
    (0x3fff_0000, 20), // documentation (RFC 9637)
];

/// Whether `host` (a URL's host: lowercase or not, IPv6 in brackets, no port) names a machine on
/// the public internet as far as its form tells. `false` for IP literals outside public unicast
/// (including IPv4-mapped and other IPv4-embedding IPv6 forms), for names under
/// private top-level labels (`localhost`, `local`, `internal`, `arpa`, ...) or without a dot, and
/// for anything that is not a plain ASCII host.
pub fn is_public_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        return inner
            .strip_suffix(']')
            .and_then(|v6| v6.parse::<Ipv6Addr>().ok())
            .is_some_and(is_public_v6);
    }
    let host = host.to_ascii_lowercase();
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return false;
    }
    // `localhost.` is `localhost`: one trailing dot only makes the name absolute.
    let name = host.strip_suffix('.').unwrap_or(&host);
    let labels: Vec<&str> = name.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return false;
    }
    match labels.last() {
        // A parser reads this host as IPv4, or refuses it: never as a name.
        Some(last) if ends_in_number(last) => parse_ipv4(&labels).is_some_and(is_public_v4),
        Some(tld) => labels.len() >= 2 && !PRIVATE_TLDS.contains(tld),
        None => false,
    }
}

/// WHATWG's "ends in a number" test on the last label: decimal digits, or `0x` and hex digits.
fn ends_in_number(last: &str) -> bool {
    last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The netmask of a prefix length (0 to 32).
fn mask(len: u32) -> u32 {
    u32::MAX.checked_shl(32 - len).unwrap_or(0)
}

/// Whether an IPv4 address is public unicast.
fn is_public_v4(addr: Ipv4Addr) -> bool {
    let bits = u32::from(addr);
    !NON_PUBLIC_V4
        .iter()
        .any(|(net, len)| bits & mask(*len) == u32::from_be_bytes(*net))
}

/// Whether an IPv6 address is public unicast: inside global unicast 2000::/3 and outside its
/// special blocks. Loopback, unspecified, IPv4-mapped and -compatible, NAT64, unique-local,
/// link-local, site-local and multicast addresses all lie outside 2000::/3.
fn is_public_v6(addr: Ipv6Addr) -> bool {
    let [a, b, ..] = addr.segments();
    let head = (u32::from(a) << 16) | u32::from(b);
    a & 0xe000 == 0x2000
        && !NON_PUBLIC_V6_IN_GLOBAL
            .iter()
            .any(|(net, len)| head & mask(*len) == *net)
}

/// One part of a WHATWG IPv4 address: `0x` hex (possibly empty), `0`-prefixed octal, or decimal.
/// `None` if it is not a number or does not fit in 32 bits (no valid address part does).
fn ipv4_part(part: &str) -> Option<u32> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x") {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return Some(0);
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// The IPv4 address WHATWG's parser makes of these labels (1 to 4 numbers, the last filling the
/// remaining bytes), or `None` where it would refuse the URL.
fn parse_ipv4(labels: &[&str]) -> Option<Ipv4Addr> {
    let (last, leading) = labels.split_last()?;
    if leading.len() > 3 {
        return None;
    }
    let mut addr: u32 = 0;
    for (i, part) in leading.iter().enumerate() {
        let n = ipv4_part(part)?;
        if n > 255 {
            return None;
        }
        addr |= n << (8 * (3 - i));
    }
    let n = ipv4_part(last)?;
    // The last part fills the bytes the others left: 4 bytes alone, 1 byte after three.
    let room = 32 - 8 * leading.len() as u32;
    if room < 32 && n >= 1u32 << room {
        return None;
    }
    Some(Ipv4Addr::from(addr | n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_literals_are_read_as_url_parsers_read_them() {
        let parse = |h: &str| parse_ipv4(&h.split('.').collect::<Vec<_>>());
        for (host, want) in [
            ("127.0.0.1", Some([127, 0, 0, 1])),
            ("2130706433", Some([127, 0, 0, 1])),
            ("0x7f000001", Some([127, 0, 0, 1])),
            ("0177.0.0.1", Some([127, 0, 0, 1])),
            ("127.1", Some([127, 0, 0, 1])),
            ("0x7f.0x1", Some([127, 0, 0, 1])),
            ("169.254.43518", Some([169, 254, 169, 254])),
            ("0x", Some([0, 0, 0, 0])),
            ("256.0.0.1", None),
            ("1.2.3.4.5", None),
            ("09.0.0.1", None),
            ("1.2.3.256", None),
            ("4294967296", None),
        ] {
            assert_eq!(parse(host), want.map(Ipv4Addr::from), "{host}");
        }
    }

    #[test]
    fn hosts_are_public_or_not_by_their_form() {
        for host in [
            "idp.example.com",
            "IdP.Example.COM",
            "8.8.8.8",
            "172.32.0.1",
            "[2606:4700::1111]",
            "[2001:4860::8888]",
            "0x.example.com",
            "1.example.com",
        ] {
            assert!(is_public_host(host), "{host}");
        }
        for host in [
            "",
            "localhost",
            "intranet",
            "a.localhost",
            "nas.local",
            "metadata.google.internal",
            "router.home.arpa",
            "1.0.0.127.in-addr.arpa",
            "a..example.com",
            "127.0.0.%31",
            "exa_mple.com",
            "１２７.0.0.1",
            "10.0.0.1",
            "100.100.100.200",
            "[::1]",
            "[::ffff:8.8.8.8]",
            "[::8.8.8.8]",
            "[2002:7f00:1::]",
            "[2001::1]",
            "[3fff::1]",
            "[fec0::1]",
            "[::1",
            "[zz::1]",
            "1.2.3.4.5",
            "example.123",
        ] {
            assert!(!is_public_host(host), "{host}");
        }
    }
}
