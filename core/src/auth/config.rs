//! Operator sign-in configuration, read from the Secrets port on each request (secrets and vars
//! are cheap to read and may change between deployments of the same isolate's code).
//!
//! | name | meaning |
//! |---|---|
//! | `OPERATOR_ISSUER` | the IdP's issuer URL, exactly as in its tokens' `iss`; absent: operator sign-in is off |
//! | `OPERATOR_AUDIENCE` | the audience Edgeplane's tokens carry (`aud`); required with the issuer |
//! | `OPERATOR_ROLE_CLAIM` | the claim holding `operator`/`auditor` (string or array), default `roles` |
//! | `OPERATOR_DEV_JWKS` | development only: the issuer's key set inline (see below) |
//!
//! The development issuer cannot be enabled by accident in a deployment: an inline key set is
//! used only when `EDGEPLANE_ENV` is `development` (never true in `wrangler.toml` or spin.toml
//! defaults) AND the issuer is an `http://` URL of a loopback host, which no real IdP is. In any
//! other case `OPERATOR_DEV_JWKS` is ignored (and the caller logs that once). Outside development
//! the issuer must be `https://`.

use crate::ports::Secrets;

/// The issuer URL variable.
pub const ISSUER_VAR: &str = "OPERATOR_ISSUER";
/// The audience variable.
pub const AUDIENCE_VAR: &str = "OPERATOR_AUDIENCE";
/// The role claim variable.
pub const ROLE_CLAIM_VAR: &str = "OPERATOR_ROLE_CLAIM";
/// The inline development key set variable.
pub const DEV_JWKS_VAR: &str = "OPERATOR_DEV_JWKS";
/// The deployment kind variable (`development` or `production`).
pub const ENV_VAR: &str = "EDGEPLANE_ENV";
/// The role claim when none is configured.
pub const DEFAULT_ROLE_CLAIM: &str = "roles";

/// Longest issuer or audience accepted (they are compared to claims and used in KV keys).
const MAX_SETTING_LEN: usize = 512;

/// Operator sign-in settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorAuthConfig {
    /// The issuer, compared to `iss` exactly.
    pub issuer: String,
    /// The audience `aud` must contain.
    pub audience: String,
    /// The claim naming the platform role.
    pub role_claim: String,
    /// True when the issuer is a loopback `http://` URL and `EDGEPLANE_ENV=development`: only
    /// then may keys come inline or from a plain-http `jwks_uri` on a loopback host.
    pub development_issuer: bool,
    /// The inline key set, only ever set when `development_issuer` is.
    pub dev_jwks: Option<String>,
}

/// Why operator sign-in is off. `Missing` is the normal state of a deployment without an IdP;
/// `Invalid` is a misconfiguration worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigProblem {
    /// A required variable is unset.
    Missing(&'static str),
    /// A variable is set to something unusable: (variable, what is wrong).
    Invalid(&'static str, &'static str),
}

/// What [`load`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The settings.
    pub config: OperatorAuthConfig,
    /// `OPERATOR_DEV_JWKS` was set but does not apply here, so it was ignored.
    pub dev_jwks_ignored: bool,
}

/// Reads and validates the settings.
pub fn load<S: Secrets + ?Sized>(secrets: &S) -> Result<Loaded, ConfigProblem> {
    let issuer = secrets
        .get(ISSUER_VAR)
        .ok_or(ConfigProblem::Missing(ISSUER_VAR))?;
    let audience = secrets
        .get(AUDIENCE_VAR)
        .ok_or(ConfigProblem::Missing(AUDIENCE_VAR))?;
    let role_claim = secrets
        .get(ROLE_CLAIM_VAR)
        .unwrap_or_else(|| DEFAULT_ROLE_CLAIM.to_owned());
    let development = secrets.get(ENV_VAR).as_deref() == Some("development");

    if issuer.len() > MAX_SETTING_LEN || issuer.contains(['?', '#']) {
        return Err(ConfigProblem::Invalid(
            ISSUER_VAR,
            "must be a URL without query or fragment, at most 512 characters",
        ));
    }
    let origin = Origin::parse(&issuer).ok_or(ConfigProblem::Invalid(
        ISSUER_VAR,
        "must be an absolute https:// URL",
    ))?;
    let development_issuer = development && !origin.https && origin.is_loopback();
    if !origin.https && !development_issuer {
        return Err(ConfigProblem::Invalid(
            ISSUER_VAR,
            "must be https:// (http:// only to a loopback host with EDGEPLANE_ENV=development)",
        ));
    }
    if audience.len() > MAX_SETTING_LEN || role_claim.len() > MAX_SETTING_LEN {
        return Err(ConfigProblem::Invalid(
            AUDIENCE_VAR,
            "audience and role claim must be at most 512 characters",
        ));
    }

    let dev_jwks = secrets.get(DEV_JWKS_VAR);
    let dev_jwks_ignored = dev_jwks.is_some() && !development_issuer;
    Ok(Loaded {
        config: OperatorAuthConfig {
            issuer,
            audience,
            role_claim,
            development_issuer,
            dev_jwks: dev_jwks.filter(|_| development_issuer),
        },
        dev_jwks_ignored,
    })
}

/// The scheme and host of an absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `https://` rather than `http://`.
    pub https: bool,
    /// The host, lowercase, IPv6 in brackets, without the port.
    pub host: String,
}

impl Origin {
    /// Parses `http://` and `https://` URLs with a non-empty host and no user info; `None` for
    /// anything else (other schemes, relative URLs, spaces or control characters).
    pub fn parse(url: &str) -> Option<Origin> {
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            (false, url.strip_prefix("http://")?)
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let host = if authority.starts_with('[') {
            // [v6]:port
            let end = authority.find(']')?;
            let port = &authority[end + 1..];
            if !(port.is_empty() || valid_port(port.strip_prefix(':')?)) {
                return None;
            }
            &authority[..=end]
        } else {
            match authority.split_once(':') {
                Some((host, port)) if valid_port(port) => host,
                Some(_) => return None,
                None => authority,
            }
        };
        if host.is_empty() {
            return None;
        }
        Some(Origin {
            https,
            host: host.to_ascii_lowercase(),
        })
    }

    /// Whether the host is this machine: `localhost`, `127.0.0.1` or `[::1]`.
    pub fn is_loopback(&self) -> bool {
        matches!(self.host.as_str(), "localhost" | "127.0.0.1" | "[::1]")
    }
}

/// A decimal port number.
fn valid_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MapSecrets;

    fn secrets(pairs: &[(&str, &str)]) -> MapSecrets {
        let s = MapSecrets::default();
        for (k, v) in pairs {
            s.set(k, v);
        }
        s
    }

    #[test]
    fn origins_are_parsed_strictly() {
        let o = Origin::parse("https://IdP.example.com:8443/realms/x").unwrap();
        assert!(o.https && o.host == "idp.example.com" && !o.is_loopback());
        for loopback in [
            "http://127.0.0.1:8787/dev-issuer",
            "http://localhost",
            "http://[::1]:9000/x",
        ] {
            assert!(Origin::parse(loopback).unwrap().is_loopback(), "{loopback}");
        }
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "https://user@host",
            "https://host:port",
            "https://host:99999",
            "//host",
            "https://ho st",
            "https://[::1",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
        // A loopback-looking name that is not loopback.
        assert!(!Origin::parse("http://127.0.0.1.evil.example/")
            .unwrap()
            .is_loopback());
    }

    #[test]
    fn fr_sys_004_issuer_and_audience_are_required() {
        assert_eq!(
            load(&secrets(&[])).unwrap_err(),
            ConfigProblem::Missing(ISSUER_VAR)
        );
        assert_eq!(
            load(&secrets(&[(ISSUER_VAR, "https://idp.example.com")])).unwrap_err(),
            ConfigProblem::Missing(AUDIENCE_VAR)
        );
        let loaded = load(&secrets(&[
            (ISSUER_VAR, "https://idp.example.com"),
            (AUDIENCE_VAR, "edgeplane"),
        ]))
        .unwrap();
        assert_eq!(loaded.config.role_claim, DEFAULT_ROLE_CLAIM);
        assert!(!loaded.config.development_issuer);
    }

    #[test]
    fn fr_sys_004_plain_http_issuers_only_on_loopback_in_development() {
        for (env, issuer) in [
            ("production", "http://127.0.0.1:8787/dev-issuer"),
            ("development", "http://idp.example.com"),
            ("development", "ftp://idp.example.com"),
            ("development", "https://idp.example.com?x=1"),
        ] {
            let err = load(&secrets(&[
                (ENV_VAR, env),
                (ISSUER_VAR, issuer),
                (AUDIENCE_VAR, "edgeplane"),
            ]))
            .unwrap_err();
            assert!(
                matches!(err, ConfigProblem::Invalid(ISSUER_VAR, _)),
                "{env} {issuer}"
            );
        }
    }

    #[test]
    fn fr_sys_004_dev_jwks_applies_only_to_a_loopback_issuer_in_development() {
        let jwks = r#"{"keys":[]}"#;
        let cases = [
            // (env, issuer, applies)
            (
                Some("development"),
                "http://127.0.0.1:8787/dev-issuer",
                true,
            ),
            (
                Some("development"),
                "http://localhost:8787/dev-issuer",
                true,
            ),
            (Some("production"), "https://idp.example.com", false),
            (None, "https://idp.example.com", false),
            (Some("development"), "https://idp.example.com", false),
            // https on loopback is not the development issuer either.
            (
                Some("development"),
                "https://127.0.0.1:8787/dev-issuer",
                false,
            ),
            (Some("Development"), "https://idp.example.com", false),
        ];
        for (env, issuer, applies) in cases {
            let s = secrets(&[
                (ISSUER_VAR, issuer),
                (AUDIENCE_VAR, "edgeplane"),
                (DEV_JWKS_VAR, jwks),
            ]);
            if let Some(env) = env {
                s.set(ENV_VAR, env);
            }
            let loaded = load(&s).unwrap();
            assert_eq!(
                loaded.config.dev_jwks.is_some(),
                applies,
                "{env:?} {issuer}"
            );
            assert_eq!(
                loaded.config.development_issuer, applies,
                "{env:?} {issuer}"
            );
            assert_eq!(loaded.dev_jwks_ignored, !applies, "{env:?} {issuer}");
        }
    }
}
