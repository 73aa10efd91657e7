//! The managed-app and API-key model, and the newtypes parsed at the edge: once parsed, a value
//! is valid everywhere.

use std::fmt;
use std::net::Ipv6Addr;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::ids;
pub use crate::kernel::AppId;
use crate::kernel::{refuse, string_newtype, ParseError, TenantId};
use crate::ports::{Row, SqlError};

/// Longest app name, in characters.
pub const MAX_APP_NAME_CHARS: usize = 100;

string_newtype!(
    /// A managed app's display name: trimmed, 1 to 100 characters, no control characters.
    /// Unique case-insensitively (`apps.name` is `COLLATE NOCASE UNIQUE`).
    AppName
);

impl AppName {
    /// Trims and checks length and characters.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim();
        if s.is_empty() {
            return refuse("app name", "must not be empty");
        }
        if s.chars().count() > MAX_APP_NAME_CHARS {
            return refuse("app name", "must be at most 100 characters");
        }
        if s.chars().any(char::is_control) {
            return refuse("app name", "must not contain control characters");
        }
        Ok(AppName(s.to_owned()))
    }
}

/// Longest redirect URI, in bytes.
pub const MAX_URI_LEN: usize = 2048;

/// Longest allowed origin, in bytes.
pub const MAX_ORIGIN_LEN: usize = 300;

/// Most redirect URIs, and most allowed origins, one app may hold.
pub const MAX_URIS: usize = 20;

string_newtype!(
    /// An OAuth redirect URI of an app: absolute `https://` (or `http://` to a loopback host:
    /// `localhost`, `127.0.0.1`, `[::1]`, RFC 8252), no user info, no fragment, printable ASCII
    /// (RFC 3986: anything else percent-encoded), at most 2048 characters. Scheme and host are stored lowercase; path and query exactly as given.
    RedirectUri
);

impl RedirectUri {
    /// Checks the rules above.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        const WHAT: &str = "redirect uri";
        if raw.is_empty() || raw.len() > MAX_URI_LEN {
            return refuse(WHAT, "must be 1 to 2048 characters");
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return refuse(
                WHAT,
                "must be printable ASCII without whitespace (percent-encode anything else)",
            );
        }
        if raw.contains('#') {
            return refuse(WHAT, "must not contain a fragment (#)");
        }
        let (scheme, rest) = split_scheme(raw).ok_or(ParseError {
            what: WHAT,
            reason: "must be an absolute https:// URI",
        })?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let host =
            Authority::parse(authority).map_err(|reason| ParseError { what: WHAT, reason })?;
        if scheme == "http" && !host.is_loopback() {
            return refuse(
                WHAT,
                "must use https (http only for localhost, 127.0.0.1 or [::1])",
            );
        }
        Ok(RedirectUri(format!(
            "{scheme}://{}{tail}",
            host.render(scheme)
        )))
    }
}

/// What [`RedirectUri::parse`] accepts, as a schema. The pattern admits at most four host labels
/// and no IPv6 literal but `[::1]`: a subset of what the parser accepts.
impl PartialSchema for RedirectUri {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_URI_LEN))
            .pattern(Some(r#"^(?:[Hh][Tt][Tt][Pp][Ss]://[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,3}|[Hh][Tt][Tt][Pp]://(?:[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]|127\.0\.0\.1|\[::1\]))(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(?:[/?][!-"$-~]*)?$"#))
            .into()
    }
}

impl ToSchema for RedirectUri {}

string_newtype!(
    /// A browser origin allowed to use the app's browser keys: exactly `scheme://host[:port]`
    /// (no path, not even `/`), `https`, or `http` for a loopback host. Stored lowercase and
    /// without the scheme's default port, as browsers send the `Origin` header.
    AllowedOrigin
);

impl AllowedOrigin {
    /// Checks the rules above.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        const WHAT: &str = "origin";
        if raw.is_empty() || raw.len() > MAX_ORIGIN_LEN {
            return refuse(WHAT, "must be 1 to 300 characters");
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return refuse(WHAT, "must not contain whitespace or control characters");
        }
        let (scheme, authority) = split_scheme(raw).ok_or(ParseError {
            what: WHAT,
            reason: "must be scheme://host[:port] with scheme https",
        })?;
        if authority.contains(['/', '?', '#']) {
            return refuse(
                WHAT,
                "must be exactly scheme://host[:port], without a path, query or fragment",
            );
        }
        let host =
            Authority::parse(authority).map_err(|reason| ParseError { what: WHAT, reason })?;
        if scheme == "http" && !host.is_loopback() {
            return refuse(
                WHAT,
                "must use https (http only for localhost, 127.0.0.1 or [::1])",
            );
        }
        Ok(AllowedOrigin(format!("{scheme}://{}", host.render(scheme))))
    }
}

/// What [`AllowedOrigin::parse`] accepts, as a schema. The pattern admits at most four host
/// labels and no IPv6 literal but `[::1]`: a subset of what the parser accepts.
impl PartialSchema for AllowedOrigin {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_ORIGIN_LEN))
            .examples(["https://app.example.com"])
            .pattern(Some(r#"^(?:[Hh][Tt][Tt][Pp][Ss]://[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,3}|[Hh][Tt][Tt][Pp]://(?:[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]|127\.0\.0\.1|\[::1\]))(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$"#))
            .into()
    }
}

impl ToSchema for AllowedOrigin {}

/// Splits `https://rest` or `http://rest` (scheme in any case) into the lowercase scheme and the
/// rest; `None` for any other scheme or a relative reference.
fn split_scheme(raw: &str) -> Option<(&'static str, &str)> {
    let (scheme, rest) = raw.split_once("://")?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        "https"
    } else if scheme.eq_ignore_ascii_case("http") {
        "http"
    } else {
        return None;
    };
    Some((scheme, rest))
}

/// A URI authority without user info: a DNS name, IPv4 or bracketed IPv6 host, and a port.
struct Authority {
    /// Lowercase host; an IPv6 literal keeps its brackets.
    host: String,
    /// The explicit port, if any.
    port: Option<u16>,
}

impl Authority {
    /// Parses `host[:port]`; the error is the reason, for a [`ParseError`].
    fn parse(authority: &str) -> Result<Self, &'static str> {
        if authority.is_empty() {
            return Err("must name a host");
        }
        if authority.contains('@') {
            return Err("must not contain user information (@)");
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or("has an unclosed IPv6 literal")?;
            if addr.parse::<Ipv6Addr>().is_err() {
                return Err("has an invalid IPv6 literal");
            }
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("has an invalid port")?),
            };
            (format!("[{}]", addr.to_ascii_lowercase()), port)
        } else {
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if !is_dns_name(host) {
                return Err("must have a valid host name");
            }
            (host.to_ascii_lowercase(), port)
        };
        let port = match port {
            None => None,
            Some(p) => {
                if p.is_empty()
                    || p.len() > 5
                    || p.starts_with('0')
                    || !p.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err("has an invalid port");
                }
                match p.parse::<u16>() {
                    Ok(0) | Err(_) => return Err("has an invalid port"),
                    Ok(n) => Some(n),
                }
            }
        };
        Ok(Authority { host, port })
    }

    /// True for the loopback hosts RFC 8252 lets use plain http.
    fn is_loopback(&self) -> bool {
        matches!(self.host.as_str(), "localhost" | "127.0.0.1" | "[::1]")
    }

    /// `host[:port]`, leaving out the scheme's default port.
    fn render(&self, scheme: &str) -> String {
        let default = if scheme == "https" { 443 } else { 80 };
        match self.port {
            Some(p) if p != default => format!("{}:{p}", self.host),
            _ => self.host.clone(),
        }
    }
}

/// A DNS host name (or dotted IPv4): labels of `a-z`, `0-9`, `-` (any case), 1 to 63 each, not
/// starting or ending with `-`, at most 253 in all.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Parses a list of raw values with `parse`, dropping duplicates (first occurrence kept) and
/// refusing more than [`MAX_URIS`]. On refusal returns the index of the offending item.
pub fn parse_list<T: PartialEq>(
    raw: &[String],
    parse: impl Fn(&str) -> Result<T, ParseError>,
) -> Result<Vec<T>, (Option<usize>, ParseError)> {
    let mut out: Vec<T> = Vec::with_capacity(raw.len());
    for (i, item) in raw.iter().enumerate() {
        let v = parse(item).map_err(|e| (Some(i), e))?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.len() > MAX_URIS {
        return Err((
            None,
            ParseError {
                what: "list",
                reason: "must hold at most 20 entries",
            },
        ));
    }
    Ok(out)
}

/// Whether an app may be used (FR-SYS-003).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppStatus {
    /// Its keys are accepted.
    Active,
    /// Every key of the app is refused.
    Disabled,
}

impl AppStatus {
    /// The stored (and API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Active => "active",
            AppStatus::Disabled => "disabled",
        }
    }

    /// Parses [`AppStatus::as_str`] back (exact, lowercase).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "active" => Ok(AppStatus::Active),
            "disabled" => Ok(AppStatus::Disabled),
            _ => refuse("status", "must be active or disabled"),
        }
    }
}

/// A managed application (spec Data Model, Managed Applications).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct App {
    /// Its id, generated at registration.
    #[schema(value_type = String, format = "uuid")]
    pub id: AppId,
    /// Unique display name.
    #[schema(value_type = String, max_length = 100)]
    pub name: AppName,
    /// The platform user who registered it.
    pub owner_id: String,
    /// Whether its keys are accepted.
    #[schema(inline)]
    pub status: AppStatus,
    /// OAuth redirect URIs (for the OIDC provider).
    #[schema(value_type = Vec<String>)]
    pub redirect_uris: Vec<RedirectUri>,
    /// Browser origins allowed to use its browser keys.
    #[schema(value_type = Vec<String>)]
    pub allowed_origins: Vec<AllowedOrigin>,
    /// Registration time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
    /// Optimistic-concurrency version, bumped by every change.
    pub version: i64,
}

/// The columns [`App::from_row`] reads, as a literal for `concat!` into SELECT lists.
macro_rules! app_columns {
    () => {
        "id, name, owner_id, status, redirect_uris, allowed_origins, created_at, updated_at, version"
    };
}
pub(crate) use app_columns;

/// A `SqlError` for a stored value that does not parse.
fn bad_row(table: &str, e: &ParseError) -> SqlError {
    SqlError::Decode(format!("{table} row: {}: {e}", e.what))
}

/// A JSON array of strings from a TEXT column, each parsed.
fn json_list<T>(
    row: &Row,
    col: &str,
    parse: impl Fn(&str) -> Result<T, ParseError>,
) -> Result<Vec<T>, SqlError> {
    let raw: Vec<String> = serde_json::from_str(&row.text(col)?)
        .map_err(|e| SqlError::Decode(format!("column {col}: {e}")))?;
    raw.iter()
        .map(|s| parse(s).map_err(|e| bad_row(col, &e)))
        .collect()
}

impl App {
    /// An app from a row selecting [`app_columns!`].
    pub(crate) fn from_row(row: &Row) -> Result<Self, SqlError> {
        Ok(App {
            id: AppId::parse(&row.text("id")?).map_err(|e| bad_row("apps", &e))?,
            name: AppName::parse(&row.text("name")?).map_err(|e| bad_row("apps", &e))?,
            owner_id: row.text("owner_id")?,
            status: AppStatus::parse(&row.text("status")?).map_err(|e| bad_row("apps", &e))?,
            redirect_uris: json_list(row, "redirect_uris", RedirectUri::parse)?,
            allowed_origins: json_list(row, "allowed_origins", AllowedOrigin::parse)?,
            created_at: row.i64("created_at")?,
            updated_at: row.i64("updated_at")?,
            version: row.i64("version")?,
        })
    }
}

/// A JSON array of the values' text, for a TEXT column.
pub(crate) fn to_json_list<T: AsRef<str>>(items: &[T]) -> String {
    serde_json::Value::from(items.iter().map(|s| s.as_ref()).collect::<Vec<_>>()).to_string()
}

impl AsRef<str> for RedirectUri {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for AllowedOrigin {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------

/// What an API key may do (DESIGN, API-key scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Scope {
    /// Read the tenant's feature flags (OFREP, `GET /v1/flags`).
    FlagsRead,
    /// Report billing events.
    BillWrite,
    /// Export billing events.
    BillRead,
    /// Report audit events.
    LogWrite,
    /// Introspect user tokens (RFC 7662).
    TokenIntrospect,
}

impl Scope {
    /// Every scope, in canonical order.
    pub const ALL: [Scope; 5] = [
        Scope::FlagsRead,
        Scope::BillWrite,
        Scope::BillRead,
        Scope::LogWrite,
        Scope::TokenIntrospect,
    ];

    /// The scope's name (`flags:read`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::FlagsRead => "flags:read",
            Scope::BillWrite => "bill:write",
            Scope::BillRead => "bill:read",
            Scope::LogWrite => "log:write",
            Scope::TokenIntrospect => "token:introspect",
        }
    }

    /// Parses a scope name (exact).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or(ParseError {
                what: "scope",
                reason:
                    "must be one of flags:read, bill:write, bill:read, log:write, token:introspect",
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Scope {
    type Error = ParseError;
    fn try_from(raw: String) -> Result<Self, ParseError> {
        Scope::parse(&raw)
    }
}

impl From<Scope> for &'static str {
    fn from(s: Scope) -> &'static str {
        s.as_str()
    }
}

/// A scope name: one of [`Scope::ALL`].
impl PartialSchema for Scope {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Scope::ALL.map(Scope::as_str)))
            .into()
    }
}

impl ToSchema for Scope {}

/// The scope names, in canonical order (the JSON of a [`ScopeSet`]).
impl PartialSchema for ScopeSet {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new().items(Scope::schema()).into()
    }
}

impl ToSchema for ScopeSet {}

/// A key's scopes: non-empty, without duplicates, in canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Scope>", into = "Vec<Scope>")]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// Parses scope names, dropping duplicates; refuses an empty list or an unknown name.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, ParseError> {
        let scopes = raw
            .iter()
            .map(|s| Scope::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ParseError {
                what: "scopes",
                reason: e.reason,
            })?;
        ScopeSet::try_from(scopes)
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// The scopes, in canonical order.
    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }

    /// The scope names, for a JSON column or audit metadata.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.as_str()).collect()
    }
}

impl TryFrom<Vec<Scope>> for ScopeSet {
    type Error = ParseError;
    fn try_from(mut scopes: Vec<Scope>) -> Result<Self, ParseError> {
        scopes.sort_unstable();
        scopes.dedup();
        if scopes.is_empty() {
            return refuse("scopes", "must hold at least one scope");
        }
        Ok(ScopeSet(scopes))
    }
}

impl From<ScopeSet> for Vec<Scope> {
    fn from(s: ScopeSet) -> Vec<Scope> {
        s.0
    }
}

/// Where a key may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// A confidential server-side key.
    Server,
    /// A publishable key for browsers: tenant-bound, `flags:read` only, limited to the app's
    /// allowed origins.
    Browser,
}

impl KeyKind {
    /// The stored (and API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Server => "server",
            KeyKind::Browser => "browser",
        }
    }

    /// Parses [`KeyKind::as_str`] back (exact, lowercase).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "server" => Ok(KeyKind::Server),
            "browser" => Ok(KeyKind::Browser),
            _ => refuse("kind", "must be server or browser"),
        }
    }
}

string_newtype!(
    /// An API key's id (the `KID` embedded in the key, not secret): 32 lowercase hex digits (a
    /// time-ordered UUID without hyphens).
    KeyId
);

impl KeyId {
    /// Checks the form (exact: lowercase, no hyphens).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.len() == 32
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(KeyId(raw.to_owned()))
        } else {
            refuse("key id", "must be 32 lowercase hex digits")
        }
    }

    /// A fresh time-ordered key id from the Clock and Random ports.
    pub(crate) fn generate<P: crate::ports::Platform>(p: &P) -> Result<Self, SqlError> {
        let id: String = ids::new_ordered_id(p.clock(), p.random())
            .chars()
            .filter(|c| *c != '-')
            .collect();
        KeyId::parse(&id).map_err(|e| SqlError::Other(format!("generated key id: {e}")))
    }
}

/// Longest key label, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 100;

string_newtype!(
    /// An optional label of an API key (`billing worker`): trimmed, 1 to 100 characters, no
    /// control characters.
    KeyName
);

impl KeyName {
    /// Trims and checks length and characters.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > MAX_KEY_NAME_CHARS {
            return refuse("key name", "must be 1 to 100 characters");
        }
        if s.chars().any(char::is_control) {
            return refuse("key name", "must not contain control characters");
        }
        Ok(KeyName(s.to_owned()))
    }
}

/// A key's state at a given instant, derived from its timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Accepted (if its app is active).
    Active,
    /// Past its `expires_at`.
    Expired,
    /// Revoked by an operator.
    Revoked,
}

/// An API key as listed: everything but the secret and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    /// The key id, visible in the key itself.
    #[schema(value_type = String, pattern = "^[0-9a-f]{32}$")]
    pub id: KeyId,
    /// The app it belongs to.
    #[schema(value_type = String, format = "uuid")]
    pub app_id: AppId,
    /// The tenant the key is bound to; null for an app-wide key.
    #[schema(value_type = Option<String>, format = "uuid", required = true)]
    pub tenant_id: Option<TenantId>,
    /// Server or browser key.
    #[schema(inline)]
    pub kind: KeyKind,
    /// Optional label.
    #[schema(value_type = Option<String>, required = true)]
    pub name: Option<KeyName>,
    /// The non-secret start of the key, `ep_<env>_<id>`, to recognise it.
    pub prefix: String,
    /// What it may do.
    #[schema(inline)]
    pub scopes: ScopeSet,
    /// Issue time (unix ms).
    pub created_at: i64,
    /// When it stops working (unix ms); null never.
    #[schema(required = true)]
    pub expires_at: Option<i64>,
    /// When it was revoked (unix ms).
    #[schema(required = true)]
    pub revoked_at: Option<i64>,
    /// Last use (unix ms), to within the hour the key's record stays cached at the edge.
    pub last_used_at: Option<i64>,
}

/// The columns [`ApiKey::from_row`] reads (never `key_hash`), for `concat!` into SELECT lists.
macro_rules! key_columns {
    () => {
        "id, app_id, tenant_id, kind, name, prefix, scopes, created_at, expires_at, revoked_at,
         last_used_at"
    };
}
pub(crate) use key_columns;

impl ApiKey {
    /// A key from a row selecting [`key_columns!`].
    pub(crate) fn from_row(row: &Row) -> Result<Self, SqlError> {
        let bad = |e: ParseError| bad_row("api_keys", &e);
        let scopes: Vec<String> = serde_json::from_str(&row.text("scopes")?)
            .map_err(|e| SqlError::Decode(format!("column scopes: {e}")))?;
        Ok(ApiKey {
            id: KeyId::parse(&row.text("id")?).map_err(bad)?,
            app_id: AppId::parse(&row.text("app_id")?).map_err(bad)?,
            tenant_id: row
                .opt_text("tenant_id")?
                .map(|t| TenantId::parse(&t))
                .transpose()
                .map_err(bad)?,
            kind: KeyKind::parse(&row.text("kind")?).map_err(bad)?,
            name: row
                .opt_text("name")?
                .map(|n| KeyName::parse(&n))
                .transpose()
                .map_err(bad)?,
            prefix: row.text("prefix")?,
            scopes: ScopeSet::parse(&scopes).map_err(bad)?,
            created_at: row.i64("created_at")?,
            expires_at: row.opt_i64("expires_at")?,
            revoked_at: row.opt_i64("revoked_at")?,
            last_used_at: row.opt_i64("last_used_at")?,
        })
    }

    /// The key's state at `now_ms`: revoked wins over expired.
    pub fn status(&self, now_ms: i64) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now_ms) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fr_sys_001_app_ids_and_names() {
        let id = AppId::parse(" 0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B ").unwrap();
        assert_eq!(id.as_str(), "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        assert_eq!(AppId::parse("app-crm").unwrap_err().what, "app id");
        assert_eq!(AppName::parse("  CRM ").unwrap().as_str(), "CRM");
        assert!(AppName::parse(&"é".repeat(100)).is_ok());
        assert!(AppName::parse(&"é".repeat(101)).is_err());
        assert!(AppName::parse("  ").is_err());
        assert!(AppName::parse("a\tb").is_err());
    }

    #[test]
    fn fr_sys_003_redirect_uris_are_absolute_https_without_fragments() {
        for (raw, want) in [
            ("https://app.example.com/cb", "https://app.example.com/cb"),
            (
                "HTTPS://App.Example.COM/Cb?x=Y",
                "https://app.example.com/Cb?x=Y",
            ),
            (
                "https://app.example.com:443/cb",
                "https://app.example.com/cb",
            ),
            (
                "https://app.example.com:8443",
                "https://app.example.com:8443",
            ),
            (
                "http://localhost:3000/callback",
                "http://localhost:3000/callback",
            ),
            ("http://127.0.0.1/cb", "http://127.0.0.1/cb"),
            ("http://[::1]:8080/cb", "http://[::1]:8080/cb"),
            ("https://10.0.0.1/cb", "https://10.0.0.1/cb"),
        ] {
            assert_eq!(RedirectUri::parse(raw).unwrap().as_str(), want, "{raw}");
        }
        for (raw, reason) in [
            ("", "must be 1 to 2048 characters"),
            ("/relative/cb", "must be an absolute https:// URI"),
            ("app.example.com/cb", "must be an absolute https:// URI"),
            (
                "ftp://app.example.com/cb",
                "must be an absolute https:// URI",
            ),
            ("javascript://alert(1)", "must be an absolute https:// URI"),
            (
                "http://app.example.com/cb",
                "must use https (http only for localhost, 127.0.0.1 or [::1])",
            ),
            (
                "https://app.example.com/cb#frag",
                "must not contain a fragment (#)",
            ),
            (
                "https://user:pw@app.example.com/cb",
                "must not contain user information (@)",
            ),
            ("https:///cb", "must name a host"),
            (
                "https://app example.com/cb",
                "must be printable ASCII without whitespace (percent-encode anything else)",
            ),
            ("https://app.example.com:0/cb", "has an invalid port"),
            ("https://app.example.com:99999/cb", "has an invalid port"),
            ("https://app.example.com:/cb", "has an invalid port"),
            ("https://-app.example.com/cb", "must have a valid host name"),
            ("https://app..example.com/cb", "must have a valid host name"),
            ("https://[::zz]/cb", "has an invalid IPv6 literal"),
        ] {
            assert_eq!(RedirectUri::parse(raw).unwrap_err().reason, reason, "{raw}");
        }
        let long = format!("https://a.example/{}", "p".repeat(2048));
        assert!(RedirectUri::parse(&long).is_err());
    }

    #[test]
    fn fr_sys_003_origins_are_exactly_scheme_host_port() {
        for (raw, want) in [
            ("https://app.example.com", "https://app.example.com"),
            ("https://App.Example.com:443", "https://app.example.com"),
            (
                "https://app.example.com:8443",
                "https://app.example.com:8443",
            ),
            ("http://localhost:3000", "http://localhost:3000"),
        ] {
            assert_eq!(AllowedOrigin::parse(raw).unwrap().as_str(), want, "{raw}");
        }
        for raw in [
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://app.example.com?x",
            "https://app.example.com#x",
            "http://app.example.com",
            "app.example.com",
            "*",
            "https://*.example.com",
            "null",
        ] {
            assert!(AllowedOrigin::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn lists_are_deduplicated_bounded_and_name_the_bad_item() {
        let raw = vec![
            "https://a.example/cb".to_owned(),
            "HTTPS://A.EXAMPLE/cb".to_owned(),
            "https://b.example/cb".to_owned(),
        ];
        let got = parse_list(&raw, RedirectUri::parse).unwrap();
        assert_eq!(got.len(), 2);
        let bad = vec![
            "https://a.example/cb".to_owned(),
            "http://b.example".to_owned(),
        ];
        assert_eq!(parse_list(&bad, RedirectUri::parse).unwrap_err().0, Some(1));
        let many: Vec<String> = (0..21).map(|i| format!("https://h{i}.example")).collect();
        assert_eq!(parse_list(&many, AllowedOrigin::parse).unwrap_err().0, None);
    }

    #[test]
    fn fr_sys_002_scopes_are_known_non_empty_and_deduplicated() {
        let s = ScopeSet::parse(&["log:write", "flags:read", "log:write"]).unwrap();
        assert_eq!(s.names(), ["flags:read", "log:write"]);
        assert!(s.contains(Scope::FlagsRead) && !s.contains(Scope::BillRead));
        let e = ScopeSet::parse::<&str>(&[]).unwrap_err();
        assert_eq!(
            (e.what, e.reason),
            ("scopes", "must hold at least one scope")
        );
        assert_eq!(
            ScopeSet::parse(&["flags:write"]).unwrap_err().what,
            "scopes"
        );
        assert!(ScopeSet::parse(&["FLAGS:READ"]).is_err());
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Ok(s));
        }
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"["flags:read","log:write"]"#);
        assert_eq!(serde_json::from_str::<ScopeSet>(&json).unwrap(), s);
        assert!(serde_json::from_str::<ScopeSet>("[]").is_err());
    }

    #[test]
    fn key_ids_kinds_and_status() {
        assert!(KeyId::parse("0190a1b2c3d47e5f8a9b0c1d2e3f4a5b").is_ok());
        for bad in [
            "0190A1B2C3D47E5F8A9B0C1D2E3F4A5B",
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "0190a1b2c3d47e5f8a9b0c1d2e3f4a5",
            "",
        ] {
            assert!(KeyId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(KeyKind::parse("browser"), Ok(KeyKind::Browser));
        assert!(KeyKind::parse("Browser").is_err());
        assert_eq!(AppStatus::parse("disabled"), Ok(AppStatus::Disabled));
        assert!(AppStatus::parse("suspended").is_err());
        let key = ApiKey {
            id: KeyId::parse("0190a1b2c3d47e5f8a9b0c1d2e3f4a5b").unwrap(),
            app_id: AppId::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap(),
            tenant_id: None,
            kind: KeyKind::Server,
            name: None,
            prefix: "ep_live_x".into(),
            scopes: ScopeSet::parse(&["flags:read"]).unwrap(),
            created_at: 0,
            expires_at: Some(10),
            revoked_at: None,
            last_used_at: None,
        };
        assert_eq!(key.status(9), KeyStatus::Active);
        assert_eq!(key.status(10), KeyStatus::Expired);
        let revoked = ApiKey {
            revoked_at: Some(5),
            ..key
        };
        assert_eq!(revoked.status(9), KeyStatus::Revoked);
    }
}
