//! The storage of adaptive authentication: the decisions (`sign_in_attempts`), the users'
//! known devices (`known_devices`), what the rules read back (the baseline and the rate
//! limiter's counts), the new-sign-in notice, and the owners' list of risky sign-ins.

use maud::html;
use serde::Serialize;
use utoipa::ToSchema;

use super::revoke;
use super::rules::{Assessment, Observed, PastSignIn, RiskLevel, Signal};
use super::{policy, RiskAction, RiskPolicy, SignInContext};
use crate::mail::queue;
use crate::ports::{Mail, Platform, Sql, SqlError, Stmt};
use crate::sessions::SessionUser;
use crate::throttle;
use crate::time::format_utc_minute;

/// How long decisions are kept (and so how far back the baseline reaches): 90 days.
pub const ATTEMPT_RETENTION_MS: i64 = 90 * 24 * 3_600_000;

/// Completed sign-ins the rules compare with, newest first.
const BASELINE_ROWS: i64 = 50;

/// How long a notice waits in the mail queue before it is dropped unsent: a day.
const NOTICE_TTL_MS: i64 = 24 * 3_600_000;

/// What [`observe`] read: the tenant's policy, the rules' input, and the user's email (for a
/// notice written in the decision's own batch).
pub(super) struct Observation {
    pub policy: RiskPolicy,
    pub observed: Observed,
    pub email: Option<String>,
}

/// Reads what the rules need, in one statement (a sign-in waits for each round trip): the
/// tenant's policy, the user's recent completed sign-ins, whether the device is known, the
/// failures counting on the account and from the address, and the user's email.
pub(super) async fn observe<P: Platform>(
    p: &P,
    user: &SessionUser,
    ctx: &SignInContext,
    account: Option<&str>,
    now: i64,
) -> Result<Observation, SqlError> {
    let device_hash = ctx.device_hash();
    let none = (String::new(), String::new());
    let (acc_from, acc_to) = account
        .map(|a| throttle::key_range(throttle::LOGIN_PER_ACCOUNT, a))
        .unwrap_or_else(|| none.clone());
    let (cli_from, cli_to) = ctx
        .client
        .as_deref()
        .map(|c| throttle::key_range(throttle::LOGIN_PER_CLIENT, c))
        .unwrap_or(none);
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT EXISTS (SELECT 1 FROM known_devices WHERE user_id = ?1 AND device_hash = ?2)
                          AS known,
                        (SELECT COALESCE(SUM(count), 0) FROM rate_limits
                          WHERE key > ?3 AND key < ?4 AND expires_at > ?7) AS account_failures,
                        (SELECT COALESCE(SUM(count), 0) FROM rate_limits
                          WHERE key > ?5 AND key < ?6 AND expires_at > ?7) AS client_failures,
                        (SELECT policy FROM risk_policies WHERE tenant_id = ?8) AS policy,
                        (SELECT email FROM users WHERE id = ?1 AND tenant_id = ?8) AS email,
                        (SELECT json_group_array(json_array(created_at, device_hash, country))
                           FROM (SELECT created_at, device_hash, country FROM sign_in_attempts
                                 WHERE user_id = ?1 AND outcome = 'success' AND created_at > ?9
                                 ORDER BY created_at DESC LIMIT ?10)) AS history",
            )
            .bind(user.user_id.as_str())
            .bind(device_hash.as_deref().unwrap_or(""))
            .bind(acc_from)
            .bind(acc_to)
            .bind(cli_from)
            .bind(cli_to)
            .bind(now)
            .bind(user.tenant_id.as_str())
            .bind(now - ATTEMPT_RETENTION_MS)
            .bind(BASELINE_ROWS),
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| SqlError::Other("the risk observation returned no row".into()))?;
    Ok(Observation {
        policy: policy::parse(row.opt_text("policy")?.as_deref()),
        observed: Observed {
            now_ms: now,
            device_known: device_hash.is_some() && row.i64("known")? == 1,
            device_hash,
            country: ctx.location.country.clone(),
            history: parse_history(&row.opt_text("history")?.unwrap_or_default()),
            account_failures: row.i64("account_failures")?,
            client_failures: row.i64("client_failures")?,
        },
        email: row.opt_text("email")?,
    })
}

/// The baseline from its JSON (`[[created_at, device_hash, country], ...]`), newest first.
fn parse_history(json: &str) -> Vec<PastSignIn> {
    type Entry = (i64, Option<String>, Option<String>);
    let mut out: Vec<PastSignIn> = serde_json::from_str::<Vec<Entry>>(json)
        .unwrap_or_default()
        .into_iter()
        .map(|(at_ms, device_hash, country)| PastSignIn {
            at_ms,
            device_hash,
            country,
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.at_ms));
    out
}

/// The INSERT of one decision.
#[allow(clippy::too_many_arguments)]
pub(super) fn attempt_insert(
    id: &str,
    user: &SessionUser,
    ctx: &SignInContext,
    method: &str,
    a: &Assessment,
    action: RiskAction,
    outcome: &str,
    now: i64,
) -> Stmt {
    let signals: Vec<&str> = a.signals.iter().map(|s| s.as_str()).collect();
    Stmt::new(
        "INSERT INTO sign_in_attempts (id, tenant_id, user_id, created_at, method, device_hash,
           device_label, country, colo, asn, client_hash, score, level, action, signals, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )
    .bind(id)
    .bind(user.tenant_id.as_str())
    .bind(user.user_id.as_str())
    .bind(now)
    .bind(method)
    .bind(ctx.device_hash())
    .bind(ctx.device_label.as_deref())
    .bind(ctx.location.country.as_deref())
    .bind(ctx.location.colo.as_deref())
    .bind(ctx.location.asn)
    .bind(ctx.client_hash())
    .bind(i64::from(a.score))
    .bind(a.level.as_str())
    .bind(action.as_str())
    .bind(serde_json::to_string(&signals).unwrap_or_else(|_| "[]".into()))
    .bind(outcome)
}

/// The statement making the device of attempt `attempt_id` known to its user (or seen again),
/// if the attempt named one; `id` is the new row's id.
pub(super) fn device_upsert(id: &str, attempt_id: &str, now: i64) -> Stmt {
    Stmt::new(
        "INSERT INTO known_devices (id, tenant_id, user_id, device_hash, label, created_at,
           last_seen_at)
         SELECT ?1, tenant_id, user_id, device_hash, COALESCE(device_label, 'Unknown device'),
                ?3, ?3
         FROM sign_in_attempts WHERE id = ?2 AND device_hash IS NOT NULL
         ON CONFLICT (user_id, device_hash) DO UPDATE SET last_seen_at = ?3",
    )
    .bind(id)
    .bind(attempt_id)
    .bind(now)
}

/// What a new-sign-in notice tells: who, when, from what and where.
pub(super) struct NoticeFacts<'a> {
    pub attempt_id: &'a str,
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub email: &'a str,
    pub at_ms: i64,
    pub country: Option<&'a str>,
    pub device_label: Option<&'a str>,
}

/// The statements queueing the new-sign-in notice of `facts` (and storing its sign-out link's
/// token, hashed, when there is a base for links: `links_base`, else `PUBLIC_BASE_URL`), for
/// the caller's batch; they must follow the attempt's own row.
pub(super) fn notice_stmts<P: Platform>(
    p: &P,
    facts: &NoticeFacts<'_>,
    links_base: Option<&str>,
    now: i64,
) -> Vec<Stmt> {
    let base = links_base
        .map(str::to_owned)
        .or_else(|| crate::tenants::configured_base_url(p));
    let mut stmts = Vec::new();
    let link = base.map(|base| {
        let (token, insert) =
            revoke::mint(p, facts.attempt_id, facts.tenant_id, facts.user_id, now);
        stmts.push(insert);
        revoke::revoke_link(&base, &token)
    });
    let mail = notice_mail(facts, link.as_deref());
    stmts.push(queue::enqueue(&mail, now, now + NOTICE_TTL_MS));
    stmts
}

/// Queues the new-sign-in notice of a completed attempt when it came from a new device or a
/// new country and the tenant's policy asks for notices (see [`notice_stmts`]): for a
/// challenged sign-in that passed its step-up, whose facts are read back from its row.
pub(super) async fn notify<P: Platform>(
    p: &P,
    attempt_id: &str,
    links_base: Option<&str>,
    now: i64,
) -> Result<(), SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT a.tenant_id, a.user_id, a.signals, a.country, a.device_label,
                        a.created_at, u.email
                 FROM sign_in_attempts a JOIN users u ON u.id = a.user_id
                 WHERE a.id = ?1 AND a.outcome = 'success'",
            )
            .bind(attempt_id),
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(());
    };
    let signals = row.text("signals")?;
    let new = |s: Signal| signals.contains(&format!("\"{}\"", s.as_str()));
    if !new(Signal::NewDevice) && !new(Signal::NewCountry) {
        return Ok(());
    }
    let tenant_id = row.text("tenant_id")?;
    if !policy::load(p, &tenant_id).await?.notify_new_sign_in {
        return Ok(());
    }
    let (user_id, email) = (row.text("user_id")?, row.text("email")?);
    let (country, device_label) = (row.opt_text("country")?, row.opt_text("device_label")?);
    let facts = NoticeFacts {
        attempt_id,
        tenant_id: &tenant_id,
        user_id: &user_id,
        email: &email,
        at_ms: row.i64("created_at")?,
        country: country.as_deref(),
        device_label: device_label.as_deref(),
    };
    p.sql()
        .batch(notice_stmts(p, &facts, links_base, now))
        .await?;
    Ok(())
}

/// The notice of a sign-in from a new device or country: when, from what and where, and what
/// to do if it was not the user: sign out that session through `link` when there is one, and
/// reset the password.
fn notice_mail(facts: &NoticeFacts<'_>, link: Option<&str>) -> Mail {
    let when = format_utc_minute(facts.at_ms);
    let device = facts.device_label.unwrap_or("an unnamed device");
    let place = facts
        .country
        .map_or_else(|| "an unknown place".to_owned(), |c| format!("country {c}"));
    let sign_out = link.map_or_else(String::new, |l| {
        format!(
            "If it was not you, sign out that session now (the link works once, for 7 days):\n\
             {l}\n\n"
        )
    });
    Mail {
        to: facts.email.to_owned(),
        subject: "New sign-in to your account".into(),
        text: format!(
            "Your account was signed in to on {when} from {device} in {place}.\n\n\
             If it was you, there is nothing to do.\n\n{sign_out}\
             If it was not you, also reset your password now: that ends every session and \
             forgets every device. You can also review and remove your devices \
             (GET /v1/me/devices).\n"
        ),
        html: html! {
            p { "Your account was signed in to on " (when) " from " (device) " in " (place) "." }
            p { "If it was you, there is nothing to do." }
            @if let Some(link) = link {
                p { "If it was not you, " a href=(link) { "sign out that session" } " now (the link works once, for 7 days)." }
            }
            p { "If it was not you, also reset your password now: that ends every session and forgets every device." }
        }
        .into_string(),
    }
}

/// A device a user signed in from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KnownDevice {
    /// The device's id in this list (not the device identifier, which is never shown).
    pub id: String,
    /// A coarse label from its user agent, e.g. "Firefox on Linux".
    pub label: String,
    /// First sign-in from it (unix ms).
    pub created_at: i64,
    /// Latest sign-in from it (unix ms).
    pub last_seen_at: i64,
}

/// The user's known devices, most recently seen first.
pub async fn list_devices<P: Platform>(p: &P, user_id: &str) -> Result<Vec<KnownDevice>, SqlError> {
    p.sql()
        .query(
            Stmt::new(
                "SELECT id, label, created_at, last_seen_at FROM known_devices
                 WHERE user_id = ?1 ORDER BY last_seen_at DESC, id LIMIT 200",
            )
            .bind(user_id),
        )
        .await?
        .iter()
        .map(|r| {
            Ok(KnownDevice {
                id: r.text("id")?,
                label: r.text("label")?,
                created_at: r.i64("created_at")?,
                last_seen_at: r.i64("last_seen_at")?,
            })
        })
        .collect()
}

/// Removes one of the user's known devices: its next sign-in counts as a new device. False if
/// the user has no such device (another user's device is not theirs).
pub async fn remove_device<P: Platform>(p: &P, user_id: &str, id: &str) -> Result<bool, SqlError> {
    let n = p
        .sql()
        .execute(
            Stmt::new("DELETE FROM known_devices WHERE id = ?1 AND user_id = ?2")
                .bind(id)
                .bind(user_id),
        )
        .await?;
    Ok(n == 1)
}

/// A sign-in the rules found risky (medium or high), for the tenant's owners and admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RiskySignIn {
    /// The decision's id.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The user's email (`null` once the user was erased).
    pub email: Option<String>,
    /// When (unix ms).
    pub created_at: i64,
    /// `password`, `passkey`, `sso` or `refresh`.
    pub method: String,
    /// `medium` or `high`.
    pub level: String,
    /// The weighted sum of the signals.
    pub score: i64,
    /// The signals that fired.
    pub signals: Vec<String>,
    /// What the policy required: `allow`, `second_factor`, `email_code` or `block`.
    pub action: String,
    /// `success`, `challenged` (step-up not passed), `blocked` or `revoked`.
    pub outcome: String,
    /// The country the runtime vouched for, if any.
    pub country: Option<String>,
    /// The edge location, if known.
    pub colo: Option<String>,
    /// The network (ASN), if known.
    pub asn: Option<i64>,
    /// The coarse label of the device, e.g. "Firefox on Linux" (never its identifier).
    pub device_label: Option<String>,
}

/// The tenant's medium- and high-risk sign-ins, newest first, at most `limit`; only those of
/// `level` when it is given (a low level lists nothing: low-risk sign-ins are not listed).
pub async fn risky_sign_ins<P: Platform>(
    p: &P,
    tenant_id: &str,
    level: Option<RiskLevel>,
    limit: u32,
) -> Result<Vec<RiskySignIn>, SqlError> {
    p.sql()
        .query(
            Stmt::new(
                "SELECT a.id, a.user_id, u.email, a.created_at, a.method, a.level, a.score,
                        a.signals, a.action, a.outcome, a.country, a.colo, a.asn, a.device_label
                 FROM sign_in_attempts a
                 LEFT JOIN users u ON u.id = a.user_id AND u.tenant_id = a.tenant_id
                 WHERE a.tenant_id = ?1 AND a.level != 'low' AND (?3 IS NULL OR a.level = ?3)
                 ORDER BY a.created_at DESC, a.id DESC LIMIT ?2",
            )
            .bind(tenant_id)
            .bind(i64::from(limit))
            .bind(level.map(RiskLevel::as_str)),
        )
        .await?
        .iter()
        .map(|r| {
            Ok(RiskySignIn {
                id: r.text("id")?,
                user_id: r.text("user_id")?,
                email: r.opt_text("email")?,
                created_at: r.i64("created_at")?,
                method: r.text("method")?,
                level: r.text("level")?,
                score: r.i64("score")?,
                signals: serde_json::from_str(&r.text("signals")?).unwrap_or_default(),
                action: r.text("action")?,
                outcome: r.text("outcome")?,
                country: r.opt_text("country")?,
                colo: r.opt_text("colo")?,
                asn: r.opt_i64("asn")?,
                device_label: r.opt_text("device_label")?,
            })
        })
        .collect()
}

/// Deletes decisions older than [`ATTEMPT_RETENTION_MS`] and the notice links past their
/// expiry; returns how many rows went.
pub async fn prune<P: Platform>(p: &P, now: i64) -> Result<u64, SqlError> {
    let n = p
        .sql()
        .execute(
            Stmt::new("DELETE FROM sign_in_attempts WHERE created_at <= ?1")
                .bind(now - ATTEMPT_RETENTION_MS),
        )
        .await?;
    Ok(n + revoke::prune(p, now).await?)
}
