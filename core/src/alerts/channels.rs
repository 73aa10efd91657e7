//! Where alerts go (NFR-MON-002: email, Slack, PagerDuty, and a signed generic webhook), as
//! operators configure them. A channel's whole configuration (address, URL, routing key, signing
//! secret) is sealed under `MASTER_KEY` bound to the channel id, like a tenant's SSO client secret:
//! a Slack incoming-webhook URL is itself a credential. Listing shows a hint only.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::ids;
use crate::kernel::{Email, ErrorKind};
use crate::ports::{Clock, Platform, Random, Secrets, Sql, SqlError, Stmt};
use crate::sso::discovery;
use crate::tokens::master_key::MasterKey;

/// PagerDuty's Events API v2 endpoint, where a `pagerduty` channel posts unless it names another
/// (PagerDuty's EU service region: `https://events.eu.pagerduty.com/v2/enqueue`).
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Most channels a deployment keeps: each costs one outbound request per notification, inside
/// the per-invocation subrequest limit of a scheduled run.
pub const MAX_CHANNELS: usize = 20;

/// Longest URL, routing key, secret or name accepted.
const MAX_FIELD_LEN: usize = 2_048;

/// Shortest webhook signing secret an operator may choose.
const MIN_SECRET_LEN: usize = 16;

/// A channel's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Mail through the Mailer port.
    Email,
    /// A Slack incoming webhook: `POST {"text": ...}`.
    Slack,
    /// PagerDuty Events API v2.
    Pagerduty,
    /// Any HTTPS endpoint, HMAC-SHA256 signed.
    Webhook,
}

impl ChannelKind {
    /// Every kind.
    pub const ALL: [ChannelKind; 4] = [
        ChannelKind::Email,
        ChannelKind::Slack,
        ChannelKind::Pagerduty,
        ChannelKind::Webhook,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Slack => "slack",
            ChannelKind::Pagerduty => "pagerduty",
            ChannelKind::Webhook => "webhook",
        }
    }

    /// The kind of a name.
    pub fn parse(s: &str) -> Option<ChannelKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Why a channel could not be created, listed or removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertChannelError {
    /// A field is invalid: (field, what is wrong).
    #[error("{0} {1}")]
    Invalid(&'static str, String),
    /// A well-formed value a rule refuses: (field, why), e.g. a URL to a private host.
    #[error("{0} {1}")]
    Refused(&'static str, String),
    /// There are already [`MAX_CHANNELS`] channels.
    #[error("at most {MAX_CHANNELS} alert channels can be configured")]
    TooMany,
    /// No channel has this id.
    #[error("no alert channel has this id")]
    NotFound,
    /// `MASTER_KEY` is missing or invalid, or a stored configuration does not open.
    #[error("the master key is unusable: {0}")]
    MasterKey(String),
    /// The database failed.
    #[error("alert channel storage failed: {0}")]
    Storage(String),
}

impl AlertChannelError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            AlertChannelError::Invalid(..) => "alert_channel_invalid",
            AlertChannelError::Refused(..) => "alert_channel_destination_refused",
            AlertChannelError::TooMany => "alert_channels_too_many",
            AlertChannelError::NotFound => "alert_channel_not_found",
            AlertChannelError::MasterKey(_) => "master_key",
            AlertChannelError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            AlertChannelError::Invalid(field, _) => ErrorKind::InvalidField(field),
            AlertChannelError::Refused(field, _) => ErrorKind::RefusedField(field),
            AlertChannelError::TooMany => ErrorKind::Refused,
            AlertChannelError::NotFound => ErrorKind::NotFound,
            AlertChannelError::MasterKey(_) => ErrorKind::Unavailable,
            AlertChannelError::Storage(_) => ErrorKind::Unavailable,
        }
    }
}

crate::kernel::domain_errors!(AlertChannelError);

impl From<SqlError> for AlertChannelError {
    fn from(e: SqlError) -> Self {
        AlertChannelError::Storage(e.to_string())
    }
}

/// What an operator submits for a new channel. Which fields apply depends on `kind`.
#[derive(Debug, Clone, Default)]
pub struct NewChannel {
    /// `email`, `slack`, `pagerduty` or `webhook`.
    pub kind: String,
    /// A label; defaults to the kind.
    pub name: Option<String>,
    /// `email`: the address.
    pub to: Option<String>,
    /// `slack`, `webhook`: where to post; `pagerduty`: another Events API endpoint.
    pub url: Option<String>,
    /// `pagerduty`: the integration's routing key.
    pub routing_key: Option<String>,
    /// `webhook`: the signing secret; generated when absent.
    pub secret: Option<String>,
}

/// A channel's sealed configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConfig {
    /// `email`: the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Where to post (`pagerduty`: the Events API endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `pagerduty`: the routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    /// `webhook`: the HMAC-SHA256 key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A channel as listed: never its address, URL, key or secret, only a hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = AlertChannel)]
pub struct ChannelView {
    /// The channel id.
    #[schema(format = "uuid")]
    pub id: String,
    /// Its kind.
    #[schema(inline)]
    pub kind: ChannelKind,
    /// Its label.
    pub name: String,
    /// Enough to recognise the destination, not to use it: a masked address, a URL's origin
    /// and last characters, a routing key's last characters.
    pub hint: String,
    /// The operator who created it.
    pub created_by: String,
    /// Creation, unix ms.
    pub created_at: i64,
}

/// A channel just created, with the webhook signing secret Edgeplane generated (shown this once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedChannel {
    /// The channel.
    pub view: ChannelView,
    /// The generated webhook secret, if one was generated.
    pub generated_secret: Option<String>,
}

/// A stored channel with its configuration opened, for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The channel as listed.
    pub view: ChannelView,
    /// Its configuration.
    pub config: ChannelConfig,
}

/// The associated data a channel's configuration is sealed with.
fn seal_context(id: &str) -> String {
    format!("alert-channel:{id}")
}

/// Checks `input` against its kind's rules (`development`: loopback http allowed) and returns the
/// kind, the name and the configuration to seal (a webhook's secret still absent when none was
/// given).
pub fn validate(
    input: &NewChannel,
    development: bool,
) -> Result<(ChannelKind, String, ChannelConfig), AlertChannelError> {
    let kind = ChannelKind::parse(&input.kind).ok_or_else(|| {
        AlertChannelError::Invalid(
            "kind",
            "must be email, slack, pagerduty or webhook".to_owned(),
        )
    })?;
    let name = match &input.name {
        Some(n) => {
            let n = n.trim();
            if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
                return Err(invalid("name", "must be 1 to 100 printable characters"));
            }
            n.to_owned()
        }
        None => kind.as_str().to_owned(),
    };
    let allowed: &[&str] = match kind {
        ChannelKind::Email => &["to"],
        ChannelKind::Slack => &["url"],
        ChannelKind::Pagerduty => &["routing_key", "url"],
        ChannelKind::Webhook => &["url", "secret"],
    };
    for (field, value) in [
        ("to", &input.to),
        ("url", &input.url),
        ("routing_key", &input.routing_key),
        ("secret", &input.secret),
    ] {
        if value.is_some() && !allowed.contains(&field) {
            return Err(invalid(
                field,
                &format!("does not apply to a {} channel", kind.as_str()),
            ));
        }
    }
    let mut config = ChannelConfig::default();
    match kind {
        ChannelKind::Email => {
            let to = required("to", &input.to)?;
            let email = Email::parse(to).map_err(|_| invalid("to", "must be an email address"))?;
            config.to = Some(email.as_str().to_owned());
        }
        ChannelKind::Slack => {
            config.url = Some(url("url", required("url", &input.url)?, development)?)
        }
        ChannelKind::Pagerduty => {
            let key = required("routing_key", &input.routing_key)?;
            if key.len() > 128 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "routing_key",
                    "must be 1 to 128 letters and digits",
                ));
            }
            config.routing_key = Some(key.to_owned());
            config.url = Some(match &input.url {
                Some(u) => url("url", u, development)?,
                None => PAGERDUTY_EVENTS_URL.to_owned(),
            });
        }
        ChannelKind::Webhook => {
            config.url = Some(url("url", required("url", &input.url)?, development)?);
            if let Some(secret) = &input.secret {
                if secret.len() < MIN_SECRET_LEN
                    || secret.len() > 256
                    || !secret.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(invalid(
                        "secret",
                        "must be 16 to 256 printable ASCII characters without spaces",
                    ));
                }
                config.secret = Some(secret.clone());
            }
        }
    }
    Ok((kind, name, config))
}

fn invalid(field: &'static str, why: &str) -> AlertChannelError {
    AlertChannelError::Invalid(field, why.to_owned())
}

/// A field the kind needs: present and not blank.
fn required<'a>(
    field: &'static str,
    value: &'a Option<String>,
) -> Result<&'a str, AlertChannelError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() && v.len() <= MAX_FIELD_LEN => Ok(v),
        Some(v) if !v.is_empty() => Err(invalid(field, "is too long")),
        _ => Err(invalid(field, "is required for this kind")),
    }
}

/// A destination URL: `https://` to a public host, or in development a loopback host over http
/// too (the rule of tenant SSO issuers: `discovery::destination`). A well-formed URL naming
/// another destination is refused by that rule (422), not as malformed.
fn url(field: &'static str, raw: &str, development: bool) -> Result<String, AlertChannelError> {
    let refused = |why: &str| AlertChannelError::Refused(field, why.to_owned());
    if raw.len() > MAX_FIELD_LEN || raw.contains('#') || raw.chars().any(char::is_whitespace) {
        return Err(refused(
            "must be a URL without fragment or spaces, at most 2048 characters",
        ));
    }
    discovery::destination(raw, development).map_err(refused)?;
    Ok(raw.to_owned())
}

/// What listing shows of a configuration.
pub fn hint(kind: ChannelKind, config: &ChannelConfig) -> String {
    let tail = |s: &str| {
        let chars: Vec<char> = s.chars().collect();
        chars[chars.len().saturating_sub(4)..]
            .iter()
            .collect::<String>()
    };
    match kind {
        ChannelKind::Email => {
            let to = config.to.as_deref().unwrap_or_default();
            match to.split_once('@') {
                Some((local, domain)) => {
                    format!("{}***@{domain}", local.chars().next().unwrap_or('*'))
                }
                None => "***".to_owned(),
            }
        }
        ChannelKind::Slack | ChannelKind::Webhook => {
            let url = config.url.as_deref().unwrap_or_default();
            let origin = discovery::origin_of(url).unwrap_or_default();
            format!("{origin}/…{}", tail(url))
        }
        ChannelKind::Pagerduty => {
            let key = config.routing_key.as_deref().unwrap_or_default();
            let url = config.url.as_deref().unwrap_or(PAGERDUTY_EVENTS_URL);
            let origin = discovery::origin_of(url).unwrap_or_default();
            format!("routing key …{} via {origin}", tail(key))
        }
    }
}

/// A fresh webhook signing secret: `whsec_` and 32 random bytes in hex.
fn new_secret<R: Random + ?Sized>(random: &R) -> String {
    let mut bytes = [0u8; 32];
    random.fill(&mut bytes);
    format!("whsec_{}", crypto::hex(&bytes))
}

/// `POST /v1/alerts/channels` (operators): validates, seals the configuration, stores the channel
/// and audits `alert_channel.create` in one batch. A webhook without a secret gets a generated
/// one, returned this once.
pub async fn create<P: Platform>(
    p: &P,
    actor: &Actor,
    input: &NewChannel,
    request_id: &str,
) -> Result<CreatedChannel, AlertChannelError> {
    let development =
        p.secrets().get(crate::auth::config::ENV_VAR).as_deref() == Some("development");
    let (kind, name, mut config) = validate(input, development)?;
    let master =
        MasterKey::load(p.secrets()).map_err(|e| AlertChannelError::MasterKey(e.to_string()))?;
    if count(p).await? >= MAX_CHANNELS as i64 {
        return Err(AlertChannelError::TooMany);
    }
    let generated_secret = if kind == ChannelKind::Webhook && config.secret.is_none() {
        let secret = new_secret(p.random());
        config.secret = Some(secret.clone());
        Some(secret)
    } else {
        None
    };
    let id = ids::new_id(p.random());
    let now = p.clock().now_ms();
    let plain =
        serde_json::to_vec(&config).map_err(|e| AlertChannelError::Storage(e.to_string()))?;
    let sealed = master.seal(p.random(), &seal_context(&id), &plain);
    let view = ChannelView {
        id: id.clone(),
        kind,
        name,
        hint: hint(kind, &config),
        created_by: actor.id.clone(),
        created_at: now,
    };
    let record = AuditRecord::success(
        "alert_channel.create",
        actor,
        None,
        format!("alert_channel:{id}"),
        Some(request_id),
    )
    .with("kind", kind.as_str())
    .with("name", view.name.as_str())
    .with("hint", view.hint.as_str());
    p.sql()
        .batch(vec![
            Stmt::new(
                "INSERT INTO alert_channels (id, kind, name, config_enc, hint, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(id.as_str())
            .bind(kind.as_str())
            .bind(view.name.as_str())
            .bind(sealed)
            .bind(view.hint.as_str())
            .bind(view.created_by.as_str())
            .bind(now),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(CreatedChannel {
        view,
        generated_secret,
    })
}

async fn count<P: Platform>(p: &P) -> Result<i64, SqlError> {
    let rows = p
        .sql()
        .query(Stmt::new("SELECT COUNT(*) AS n FROM alert_channels"))
        .await?;
    rows.first().map_or(Ok(0), |r| r.i64("n"))
}

/// The stored rows, oldest first: each view and its sealed configuration.
async fn rows<P: Platform>(p: &P) -> Result<Vec<(ChannelView, String)>, AlertChannelError> {
    let rows = p
        .sql()
        .query(Stmt::new(
            "SELECT id, kind, name, config_enc, hint, created_by, created_at
             FROM alert_channels ORDER BY created_at, id",
        ))
        .await?;
    rows.iter()
        .map(|r| {
            let kind = r.text("kind")?;
            let view = ChannelView {
                id: r.text("id")?,
                kind: ChannelKind::parse(&kind)
                    .ok_or_else(|| SqlError::Other(format!("alert_channels.kind {kind:?}")))?,
                name: r.text("name")?,
                hint: r.text("hint")?,
                created_by: r.text("created_by")?,
                created_at: r.i64("created_at")?,
            };
            Ok((view, r.text("config_enc")?))
        })
        .collect::<Result<_, SqlError>>()
        .map_err(AlertChannelError::from)
}

/// `GET /v1/alerts/channels` (operators, auditors): every channel, oldest first, hints only.
pub async fn list<P: Platform>(p: &P) -> Result<Vec<ChannelView>, AlertChannelError> {
    Ok(rows(p).await?.into_iter().map(|(v, _)| v).collect())
}

/// Every channel with its configuration opened, for delivery. A channel whose configuration
/// does not open (the master key changed) is returned apart, by id, for the log.
pub async fn load_all<P: Platform>(
    p: &P,
) -> Result<(Vec<Channel>, Vec<String>), AlertChannelError> {
    let stored = rows(p).await?;
    if stored.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let master =
        MasterKey::load(p.secrets()).map_err(|e| AlertChannelError::MasterKey(e.to_string()))?;
    let mut channels = Vec::new();
    let mut unusable = Vec::new();
    for (view, sealed) in stored {
        let opened = master
            .open(&seal_context(&view.id), &sealed)
            .ok()
            .and_then(|plain| serde_json::from_slice::<ChannelConfig>(&plain).ok());
        match opened {
            Some(config) => channels.push(Channel { view, config }),
            None => unusable.push(view.id),
        }
    }
    Ok((channels, unusable))
}

/// `DELETE /v1/alerts/channels/{id}` (operators): removes the channel and what it was told,
/// audited in the same batch.
pub async fn delete<P: Platform>(
    p: &P,
    actor: &Actor,
    id: &str,
    request_id: &str,
) -> Result<(), AlertChannelError> {
    let found = p
        .sql()
        .query(Stmt::new("SELECT kind, name FROM alert_channels WHERE id = ?1").bind(id))
        .await?;
    let Some(row) = found.first() else {
        return Err(AlertChannelError::NotFound);
    };
    let now = p.clock().now_ms();
    let record = AuditRecord::success(
        "alert_channel.delete",
        actor,
        None,
        format!("alert_channel:{id}"),
        Some(request_id),
    )
    .with("kind", row.text("kind")?)
    .with("name", row.text("name")?);
    p.sql()
        .batch(vec![
            Stmt::new("DELETE FROM alert_deliveries WHERE channel_id = ?1").bind(id),
            Stmt::new("DELETE FROM alert_channels WHERE id = ?1").bind(id),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(())
}
