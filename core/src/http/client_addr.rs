//! The client's address for the sign-in rate limits (ERR-RATE-429): only what the runtime
//! vouches for. A header the client can set itself would let it pick a fresh address for
//! every guess and never meet the per-client limit.
//!
//! - Workers: `CF-Connecting-IP`, which Cloudflare sets on every request it forwards to a
//!   Worker (a client's own value is replaced). `X-Forwarded-For` is ignored.
//! - Spin: the peer Spin reports (`spin-client-addr`, set by Spin itself). When that peer is one
//!   of the proxies listed in `TRUSTED_PROXIES` (comma-separated IP addresses), the client is
//!   the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy: entries to its
//!   left were written by the client. A request from a trusted proxy without `X-Forwarded-For`
//!   (the proxy's own) has no client address. `CF-Connecting-IP` is ignored.
//!
//! The address is used only hashed.

use std::net::{IpAddr, SocketAddr};

use super::Request;

/// Longest header value read for an address.
const MAX_HEADER: usize = 512;

/// The client's address on `runtime` (`workers`, `spin`, `native`), with the `TRUSTED_PROXIES`
/// setting; `None` when the runtime vouches for none.
pub fn client_address(
    runtime: &str,
    trusted_proxies: Option<&str>,
    req: &Request,
) -> Option<String> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= MAX_HEADER)
    };
    match runtime {
        "workers" => header("cf-connecting-ip")
            .and_then(|v| v.parse::<IpAddr>().ok())
            .map(|ip| ip.to_string()),
        "spin" => {
            let peer = header("spin-client-addr").and_then(parse_peer)?;
            let trusted = parse_list(trusted_proxies.unwrap_or(""));
            if !trusted.contains(&peer) {
                return Some(peer.to_string());
            }
            let forwarded = header("x-forwarded-for")?;
            let mut hops = forwarded.split(',').map(str::trim);
            // From the right: the first hop that is not a trusted proxy is the one the last
            // trusted proxy saw; an unparsable hop ends the walk (it was written by someone
            // untrusted, so nothing left of it can be believed either).
            let mut last = None;
            for hop in hops.by_ref().rev() {
                let ip = hop.parse::<IpAddr>().ok()?;
                if !trusted.contains(&ip) {
                    return Some(ip.to_string());
                }
                last = Some(ip);
            }
            last.map(|ip| ip.to_string())
        }
        _ => None,
    }
}

/// Whether the Spin peer of `req` (`spin-client-addr`) is one of `trusted_proxies`: only then
/// is a header a proxy writes believed.
pub fn peer_is_trusted(trusted_proxies: Option<&str>, req: &Request) -> bool {
    req.headers()
        .get("spin-client-addr")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_peer(v.trim()))
        .is_some_and(|peer| parse_list(trusted_proxies.unwrap_or("")).contains(&peer))
}

/// `ip:port`, `[v6]:port` or a bare address.
fn parse_peer(v: &str) -> Option<IpAddr> {
    v.parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| v.parse::<IpAddr>())
        .ok()
}

fn parse_list(v: &str) -> Vec<IpAddr> {
    v.split(',')
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        let mut b = ::http::Request::builder().uri("/v1/auth/login");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Vec::new()).unwrap()
    }

    /// runtime, TRUSTED_PROXIES, request headers, the client address expected.
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        &'a [(&'a str, &'a str)],
        Option<&'a str>,
    );

    /// ERR-RATE-429: each runtime believes only what it vouches for.
    #[test]
    fn err_rate_429_client_address_comes_from_the_runtime_not_the_client() {
        let cases: &[Case<'_>] = &[
            // Workers: Cloudflare's header, never X-Forwarded-For.
            (
                "workers",
                None,
                &[("cf-connecting-ip", "203.0.113.7")],
                Some("203.0.113.7"),
            ),
            ("workers", None, &[("x-forwarded-for", "203.0.113.7")], None),
            (
                "workers",
                None,
                &[
                    ("cf-connecting-ip", "2001:db8::1"),
                    ("x-forwarded-for", "198.51.100.1"),
                ],
                Some("2001:db8::1"),
            ),
            (
                "workers",
                None,
                &[("cf-connecting-ip", "not an address")],
                None,
            ),
            // Spin without trusted proxies: the peer, whatever the headers say.
            (
                "spin",
                None,
                &[
                    ("spin-client-addr", "192.0.2.10:51234"),
                    ("x-forwarded-for", "203.0.113.7"),
                    ("cf-connecting-ip", "203.0.113.8"),
                ],
                Some("192.0.2.10"),
            ),
            (
                "spin",
                None,
                &[("spin-client-addr", "[2001:db8::2]:443")],
                Some("2001:db8::2"),
            ),
            // Spin behind a trusted proxy: the rightmost untrusted hop.
            (
                "spin",
                Some("10.0.0.1, 10.0.0.2"),
                &[
                    ("spin-client-addr", "10.0.0.1:40000"),
                    ("x-forwarded-for", "198.51.100.99, 203.0.113.7, 10.0.0.2"),
                ],
                Some("203.0.113.7"),
            ),
            // A peer that is not a trusted proxy is the client, X-Forwarded-For or not.
            (
                "spin",
                Some("10.0.0.1"),
                &[
                    ("spin-client-addr", "192.0.2.10:1"),
                    ("x-forwarded-for", "203.0.113.7"),
                ],
                Some("192.0.2.10"),
            ),
            // The proxy's own request: no client address.
            (
                "spin",
                Some("10.0.0.1"),
                &[("spin-client-addr", "10.0.0.1:1")],
                None,
            ),
            // Garbage written by the client ends the walk.
            (
                "spin",
                Some("10.0.0.1"),
                &[
                    ("spin-client-addr", "10.0.0.1:1"),
                    ("x-forwarded-for", "203.0.113.7, junk"),
                ],
                None,
            ),
            ("spin", None, &[("x-forwarded-for", "203.0.113.7")], None),
            ("native", None, &[("cf-connecting-ip", "203.0.113.7")], None),
        ];
        for (runtime, trusted, headers, want) in cases {
            assert_eq!(
                client_address(runtime, *trusted, &req(headers)).as_deref(),
                *want,
                "{runtime} {trusted:?} {headers:?}"
            );
        }
    }
}
