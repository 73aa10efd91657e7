//! Where a sign-in comes from, for the risk check (NFR-SEC-006): the device and the location,
//! only as far as something vouches for them.
//!
//! - Location. Workers: `request.cf` (country, colo, ASN), which the adapter reads from the
//!   runtime and hands over as a request extension ([`Location`]); no header is read, so a
//!   client's own `CF-IPCountry` or `X-Forwarded-For` moves nothing. Spin: the header named by
//!   `LOCATION_COUNTRY_HEADER` (e.g. `CF-IPCountry` behind Cloudflare), read only when the
//!   peer is one of `TRUSTED_PROXIES` (see the `client_addr` module); unset, Spin knows no
//!   location.
//! - Device. API clients may name their device in the `Edgeplane-Device` header (an opaque id
//!   of 16 to 128 letters, digits, `-`, `_` or `.`, chosen and kept by the client). The
//!   universal login page keeps a long-lived, signed `__Host-ep_device` cookie (`Secure`,
//!   `HttpOnly`, `SameSite=Lax`; without the prefix and `Secure` on a loopback development
//!   server over plain http), whose id is signed with a key derived from `MASTER_KEY`.

use ::http::{header, HeaderValue};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::client_addr;
use super::{Ctx, Request};
use crate::crypto;
use crate::ports::{Platform, Secrets};
use crate::risk::{Location, SignInContext};
use crate::tokens::master_key::MASTER_KEY_SECRET;

/// The header an API client names its device in.
pub const DEVICE_HEADER: &str = "edgeplane-device";

/// The device cookie's name without the `__Host-` prefix.
const DEVICE_COOKIE: &str = "ep_device";

/// How long the device cookie lives: 400 days, the most browsers keep a cookie.
const DEVICE_COOKIE_MAX_AGE_SECS: i64 = 400 * 24 * 3600;

/// The sign-in context of an API request: the device header, the location, the address.
pub(super) fn api_context<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> SignInContext {
    let device = header(req, DEVICE_HEADER).filter(|d| is_device_id(d));
    context(ctx, req, device.map(str::to_owned))
}

/// The sign-in context of a request with `device` as its device id.
pub(super) fn context<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    device: Option<String>,
) -> SignInContext {
    SignInContext {
        device,
        device_label: Some(device_label(header(req, "user-agent").unwrap_or(""))),
        location: location(
            ctx.platform.backends().runtime,
            ctx.platform.secrets().get("TRUSTED_PROXIES").as_deref(),
            ctx.platform
                .secrets()
                .get("LOCATION_COUNTRY_HEADER")
                .as_deref(),
            req,
        ),
        client: super::callers::client_address(ctx, req),
        links_base: super::tenants::link_base(ctx, req).ok(),
    }
}

/// The location the runtime vouches for (see the module documentation).
pub fn location(
    runtime: &str,
    trusted_proxies: Option<&str>,
    country_header: Option<&str>,
    req: &Request,
) -> Location {
    match runtime {
        "spin" => {
            let Some(name) = country_header.filter(|n| !n.trim().is_empty()) else {
                return Location::default();
            };
            if !client_addr::peer_is_trusted(trusted_proxies, req) {
                return Location::default();
            }
            Location::parse(header(req, name.trim()), None, None)
        }
        // Workers and native tests: only what the runtime attached to the request.
        _ => req
            .extensions()
            .get::<Location>()
            .cloned()
            .unwrap_or_default(),
    }
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 512)
}

/// A device id a client may choose: 16 to 128 of `A-Za-z0-9-_.`.
fn is_device_id(v: &str) -> bool {
    (16..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A coarse label from a user agent, e.g. "Firefox on Linux": what a user recognises in their
/// device list, and nothing more of the user agent is kept.
pub fn device_label(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map_or("Unknown client", |(_, name)| name);
    let os = [
        ("iPhone", "iOS"),
        ("iPad", "iOS"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    match os {
        Some(os) => format!("{browser} on {os}"),
        None => browser.to_owned(),
    }
}

/// The key signing device cookies, derived from the master key; `None` without one (no
/// device cookie then: every browser sign-in is from an unnamed device).
fn cookie_key<P: Platform>(p: &P) -> Option<Hmac<Sha256>> {
    let master = p.secrets().get(MASTER_KEY_SECRET)?;
    let key = crypto::sha256_hex(format!("edgeplane device cookie|{master}").as_bytes());
    Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok()
}

fn sign(mut mac: Hmac<Sha256>, id: &str) -> String {
    mac.update(id.as_bytes());
    crypto::b64url_encode(&mac.finalize().into_bytes())
}

/// The device cookie's name for this request: `__Host-` over https.
fn cookie_name(https: bool) -> String {
    if https {
        format!("__Host-{DEVICE_COOKIE}")
    } else {
        DEVICE_COOKIE.to_owned()
    }
}

/// The device id of the login page's signed cookie, if present and its signature holds.
pub(super) fn cookie_device<P: Platform>(p: &P, req: &Request, https: bool) -> Option<String> {
    let name = cookie_name(https);
    let value = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())?;
    let (id, sig) = value.split_once('.')?;
    let expected = sign(cookie_key(p)?, id);
    (is_device_id(id) && crate::oidc::ct_eq(sig.as_bytes(), expected.as_bytes()))
        .then(|| id.to_owned())
}

/// A fresh device id for a browser without a (valid) device cookie.
pub(super) fn new_device<P: Platform>(p: &P) -> String {
    crypto::random_token(p.random())
}

/// The fresh device id of a browser without a (valid) device cookie in the login flow
/// `flow_id`: the same at every step of the flow, so the cookie set once the sign-in completes
/// (after a step-up, at a later request) names the device the risk check recorded, and nothing
/// of it is stored in clear in between. Derived under the cookie key from the flow's id, a
/// secret of the browser; random without a master key (no cookie is set then).
pub(super) fn flow_device<P: Platform>(p: &P, flow_id: &str) -> String {
    match cookie_key(p) {
        Some(key) => sign(key, &format!("fresh device|{flow_id}")),
        None => new_device(p),
    }
}

/// The `Set-Cookie` value of the device cookie for `id`; `None` without a master key.
pub(super) fn device_cookie<P: Platform>(p: &P, id: &str, https: bool) -> Option<HeaderValue> {
    let value = format!("{id}.{}", sign(cookie_key(p)?, id));
    let name = cookie_name(https);
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={DEVICE_COOKIE_MAX_AGE_SECS}; HttpOnly; SameSite=Lax{secure}"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)], ext: Option<Location>) -> Request {
        let mut b = ::http::Request::builder().uri("/v1/auth/login");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(l) = ext {
            b = b.extension(l);
        }
        b.body(Vec::new()).unwrap()
    }

    fn de() -> Location {
        Location::parse(Some("de"), Some("fra"), Some(3320))
    }

    /// NFR-SEC-006: a location comes only from what the runtime vouches for.
    #[test]
    fn nfr_sec_006_location_comes_from_the_runtime_never_from_a_client_header() {
        let spoof = [("cf-ipcountry", "AU"), ("x-forwarded-for", "1.2.3.4")];
        // Workers: request.cf as the adapter attached it; the client's headers change nothing.
        let got = location("workers", None, None, &req(&spoof, Some(de())));
        assert_eq!(got, de());
        assert_eq!(got.country.as_deref(), Some("DE"));
        assert_eq!(
            location("workers", None, None, &req(&spoof, None)),
            Location::default()
        );
        // Spin: the configured header, from a trusted proxy only.
        let from_proxy = [
            ("spin-client-addr", "10.0.0.1:4000"),
            ("cf-ipcountry", "AU"),
        ];
        let got = location(
            "spin",
            Some("10.0.0.1"),
            Some("CF-IPCountry"),
            &req(&from_proxy, None),
        );
        assert_eq!(got.country.as_deref(), Some("AU"));
        let direct = [
            ("spin-client-addr", "192.0.2.7:4000"),
            ("cf-ipcountry", "AU"),
        ];
        let got = location(
            "spin",
            Some("10.0.0.1"),
            Some("CF-IPCountry"),
            &req(&direct, None),
        );
        assert_eq!(got, Location::default());
        // Not configured: no location, whoever sends the header.
        let got = location("spin", Some("10.0.0.1"), None, &req(&from_proxy, None));
        assert_eq!(got, Location::default());
        // A Workers-style extension means nothing on Spin.
        let got = location("spin", None, None, &req(&direct, Some(de())));
        assert_eq!(got, Location::default());
    }

    /// NFR-SEC-006: the device cookie is `__Host-`, `Secure`, `HttpOnly`, `SameSite=Lax` over
    /// https, and only a value signed under this deployment's master key names a device.
    #[test]
    fn nfr_sec_006_the_device_cookie_is_signed_and_host_only() {
        use base64::Engine as _;
        let p = futures_executor::block_on(crate::testing::TestPlatform::new());
        p.secrets.set(
            MASTER_KEY_SECRET,
            &base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        );
        let id = new_device(&p);
        let set = device_cookie(&p, &id, true).unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with("__Host-ep_device="), "{set}");
        for attr in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
            assert!(set.contains(attr), "{set}");
        }
        let value = set.split(';').next().unwrap().split_once('=').unwrap().1;
        let with = |cookie: &str| req(&[("cookie", cookie)], None);
        let sent = format!("__Host-ep_device={value}");
        assert_eq!(cookie_device(&p, &with(&sent), true), Some(id.clone()));
        // Over plain http (loopback development) the name has no prefix and no Secure.
        let plain = device_cookie(&p, &id, false).unwrap();
        assert!(!plain.to_str().unwrap().contains("Secure"));
        assert_eq!(cookie_device(&p, &with(&sent), false), None);
        // A forged or re-signed value names nothing.
        let forged = format!(
            "__Host-ep_device=0123456789abcdefXYZ.{}",
            &value[value.len() - 43..]
        );
        assert_eq!(cookie_device(&p, &with(&forged), true), None);
        p.secrets.set(
            MASTER_KEY_SECRET,
            &base64::engine::general_purpose::STANDARD.encode([8u8; 32]),
        );
        assert_eq!(cookie_device(&p, &with(&sent), true), None);
    }

    #[test]
    fn device_labels_are_coarse() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(device_label(firefox), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        assert_eq!(device_label(chrome), "Chrome on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device_label(safari), "Safari on iOS");
        assert_eq!(device_label(""), "Unknown client");
        assert!(is_device_id("0123456789abcdef"));
        assert!(!is_device_id("short"));
        assert!(!is_device_id("0123456789abcdef;x"));
    }
}
