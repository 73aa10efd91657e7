//! The audit outbox writer (FR-LOG-003): every state change of the control plane puts one
//! [`AuditRecord`] per fact into `audit_outbox`, in the SAME [`Sql::batch`]
//! as the change, so a change is never committed without its audit record (and a failed change
//! leaves none). A forwarder (a later issue) moves the rows to the audit event log.
//!
//! Refusals the API answers with a conflict are audited too, with outcome `failure`
//! ([`record`], outside any batch since nothing changed).
//!
//! Metadata never holds secrets: [`outbox_insert`] drops any member whose name looks like one
//! (see [`is_secret_name`]) as a last line of defence; callers must not put PII there either.

use serde_json::{Map, Value as Json};

use crate::ids;
use crate::ports::{Clock, Logger, Platform, Sql, SqlError, Stmt};

/// Who acted, as `audit_outbox.actor_type` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorType {
    /// A tenant user (an Edgeplane access token).
    User,
    /// A platform user: operator or auditor (an operator IdP token).
    Operator,
    /// Edgeplane itself (cron jobs, reconcilers).
    System,
}

impl ActorType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::User => "user",
            ActorType::Operator => "operator",
            ActorType::System => "system",
        }
    }
}

/// The authenticated principal a change is attributed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user id (for operators, their platform user id), or a job name for the system.
    pub id: String,
    /// What kind of principal.
    pub actor_type: ActorType,
}

impl Actor {
    /// A platform operator, by platform user id.
    pub fn operator(id: impl Into<String>) -> Self {
        Actor {
            id: id.into(),
            actor_type: ActorType::Operator,
        }
    }

    /// A tenant user, by user id.
    pub fn user(id: impl Into<String>) -> Self {
        Actor {
            id: id.into(),
            actor_type: ActorType::User,
        }
    }

    /// Edgeplane itself; `job` names what acted (e.g. `tenant-purge`), prefixed `system:`.
    pub fn system(job: &str) -> Self {
        Actor {
            id: format!("system:{job}"),
            actor_type: ActorType::System,
        }
    }
}

/// Whether the audited operation took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The change was made.
    Success,
    /// The change was refused (conflict, business rule); nothing changed.
    Failure,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One audit fact, as the spec's Data Model (Audit Logs) names its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// What happened, `noun.verb` (e.g. `tenant.create`, `user.invite`).
    pub action: &'static str,
    /// Who did it ([`Actor::id`]).
    pub actor_id: String,
    /// What kind of principal did it.
    pub actor_type: ActorType,
    /// The tenant concerned, if any.
    pub tenant_id: Option<String>,
    /// What was acted on, `kind:id` (e.g. `tenant:0190...`), or a kind alone when it has no id.
    pub resource: String,
    /// Whether it took effect.
    pub outcome: Outcome,
    /// The correlation id of the request (`X-Request-Id`), if there was one.
    pub request_id: Option<String>,
    /// Details as a JSON object: ids, old and new values. Never secrets or PII.
    pub metadata: Map<String, Json>,
}

impl AuditRecord {
    /// A successful action by `actor` on `resource`, with empty metadata.
    pub fn success(
        action: &'static str,
        actor: &Actor,
        tenant_id: Option<&str>,
        resource: impl Into<String>,
        request_id: Option<&str>,
    ) -> Self {
        AuditRecord {
            action,
            actor_id: actor.id.clone(),
            actor_type: actor.actor_type,
            tenant_id: tenant_id.map(str::to_owned),
            resource: resource.into(),
            outcome: Outcome::Success,
            request_id: request_id.map(str::to_owned),
            metadata: Map::new(),
        }
    }

    /// A refused action by `actor` on `resource`, with empty metadata.
    pub fn failure(
        action: &'static str,
        actor: &Actor,
        tenant_id: Option<&str>,
        resource: impl Into<String>,
        request_id: Option<&str>,
    ) -> Self {
        AuditRecord {
            outcome: Outcome::Failure,
            ..Self::success(action, actor, tenant_id, resource, request_id)
        }
    }

    /// Adds one metadata member.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Json>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// The metadata as stored: secret-looking members removed, at any depth.
    pub fn metadata_json(&self) -> String {
        let mut m = self.metadata.clone();
        scrub(&mut m);
        Json::Object(m).to_string()
    }
}

/// True for member names that may carry a secret (`token`, `password`, `secret`, `hash`,
/// `credential`, `api_key`...): such members never reach the outbox.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "token",
        "password",
        "secret",
        "hash",
        "credential",
        "api_key",
        "apikey",
        "private",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// Removes secret-looking members from an object and the objects inside it.
fn scrub(m: &mut Map<String, Json>) {
    m.retain(|k, _| !is_secret_name(k));
    for v in m.values_mut() {
        scrub_value(v);
    }
}

/// [`scrub`] through arrays and objects.
fn scrub_value(v: &mut Json) {
    match v {
        Json::Object(m) => scrub(m),
        Json::Array(items) => items.iter_mut().for_each(scrub_value),
        _ => {}
    }
}

/// `INSERT INTO audit_outbox (...)` with the columns in the order [`bind_row`] binds them, for
/// `concat!` into a statement whose row is guarded by a condition of its own
/// (`SELECT ?1, ..., ?10 WHERE ...`): the SQL stays a literal.
#[macro_export]
macro_rules! audit_outbox_columns {
    () => {
        "INSERT INTO audit_outbox (id, occurred_at, tenant_id, actor_id, actor_type, action,
           resource, outcome, request_id, metadata)"
    };
}

/// Binds one outbox row (event id `id`, `now_ms`, then `record`) to the next ten parameters of
/// `stmt`, in the order of [`audit_outbox_columns!`](crate::audit_outbox_columns): the one place that knows what a row holds.
pub fn bind_row(stmt: Stmt, record: &AuditRecord, id: &str, now_ms: i64) -> Stmt {
    stmt.bind(id)
        .bind(now_ms)
        .bind(record.tenant_id.as_deref())
        .bind(&record.actor_id)
        .bind(record.actor_type.as_str())
        .bind(record.action)
        .bind(&record.resource)
        .bind(record.outcome.as_str())
        .bind(record.request_id.as_deref())
        .bind(record.metadata_json())
}

/// The INSERT of one outbox row with event id `id` at `now_ms`, for the batch of the change.
pub fn outbox_insert(record: &AuditRecord, id: &str, now_ms: i64) -> Stmt {
    let sql = concat!(
        crate::audit_outbox_columns!(),
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    );
    bind_row(Stmt::new(sql), record, id, now_ms)
}

/// Like [`outbox_insert`], but the row is written only if the `tenants` row `tenant_id` still
/// has `version` when the statement runs. Placed in a batch BEFORE the statement that bumps that
/// version, it is written exactly when that guarded update applies (optimistic concurrency:
/// a concurrent writer that won leaves no stray record of ours).
pub fn outbox_insert_if_tenant_version(
    record: &AuditRecord,
    id: &str,
    now_ms: i64,
    tenant_id: &str,
    version: i64,
) -> Stmt {
    let sql = concat!(
        crate::audit_outbox_columns!(),
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
         WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?11 AND version = ?12)"
    );
    bind_row(Stmt::new(sql), record, id, now_ms)
        .bind(tenant_id)
        .bind(version)
}

/// Like [`outbox_insert`] with a statement of the caller's:
/// `concat!(audit_outbox_columns!(), " SELECT ?1, …, ?10 WHERE …")`, whose condition uses
/// parameters from `?11` on, bound by the caller on the returned statement. In a batch after a
/// conditional write, such a condition records exactly the writes that applied.
pub fn outbox_insert_where(record: &AuditRecord, id: &str, now_ms: i64, sql: &'static str) -> Stmt {
    bind_row(Stmt::new(sql), record, id, now_ms)
}

/// A fresh event id for an outbox row: time-ordered, from the Clock and Random ports.
pub fn new_event_id<P: Platform>(p: &P) -> String {
    ids::new_ordered_id(p.clock(), p.random())
}

/// Writes one record on its own (refusals: nothing else changed, so there is no batch to join).
pub async fn record<P: Platform>(p: &P, record: &AuditRecord) -> Result<(), SqlError> {
    let id = new_event_id(p);
    let now = p.clock().now_ms();
    p.sql().execute(outbox_insert(record, &id, now)).await?;
    Ok(())
}

/// [`record`] for refusals, where the refusal itself is the answer: a failure to write the
/// record is logged (without the metadata) instead of hiding the refusal.
pub async fn record_refusal<P: Platform>(p: &P, rec: &AuditRecord) {
    if let Err(e) = record(p, rec).await {
        let line = serde_json::json!({
            "level": "error",
            "msg": "audit outbox write failed",
            "action": rec.action,
            "request_id": rec.request_id,
            "error": e.to_string(),
        });
        p.logger().line(&line.to_string());
    }
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;
    use serde_json::json;

    use super::*;
    use crate::testing::{TestPlatform, START_MS};

    /// FR-LOG-003: an outbox row carries every field of the record, metadata as JSON.
    #[test]
    fn fr_log_003_outbox_row_has_every_field() {
        block_on(async {
            let p = TestPlatform::new().await;
            let rec = AuditRecord::success(
                "tenant.create",
                &Actor::operator("op-1"),
                Some("t-1"),
                "tenant:t-1",
                Some("req-1"),
            )
            .with("plan", "pro");
            p.sql
                .execute(outbox_insert(&rec, "ev-1", START_MS))
                .await
                .unwrap();
            let rows = p
                .sql
                .query(Stmt::new("SELECT * FROM audit_outbox"))
                .await
                .unwrap();
            assert_eq!(rows.len(), 1);
            let r = &rows[0];
            assert_eq!(r.text("id").unwrap(), "ev-1");
            assert_eq!(r.i64("occurred_at").unwrap(), START_MS);
            assert_eq!(r.text("tenant_id").unwrap(), "t-1");
            assert_eq!(r.text("actor_id").unwrap(), "op-1");
            assert_eq!(r.text("actor_type").unwrap(), "operator");
            assert_eq!(r.text("action").unwrap(), "tenant.create");
            assert_eq!(r.text("resource").unwrap(), "tenant:t-1");
            assert_eq!(r.text("outcome").unwrap(), "success");
            assert_eq!(r.text("request_id").unwrap(), "req-1");
            assert_eq!(r.text("metadata").unwrap(), r#"{"plan":"pro"}"#);
            assert_eq!(r.opt_i64("forwarded_at").unwrap(), None);
        });
    }

    /// FR-LOG-003: secrets never reach the outbox, even if a caller slips one in.
    #[test]
    fn fr_log_003_metadata_drops_secret_members() {
        let rec = AuditRecord::failure("x.y", &Actor::system("job"), None, "x", None)
            .with("invitation_token", "abc")
            .with("password", "hunter2")
            .with(
                "nested",
                json!({"client_secret": "s", "ok": 1, "list": [{"key_hash": "h"}]}),
            )
            .with("user_id", "u-1");
        let stored: Json = serde_json::from_str(&rec.metadata_json()).unwrap();
        assert_eq!(
            stored,
            json!({"nested": {"ok": 1, "list": [{}]}, "user_id": "u-1"})
        );
        assert_eq!(rec.actor_id, "system:job");
        assert_eq!(rec.outcome, Outcome::Failure);
    }

    /// The guarded insert writes only while the tenant still has the expected version.
    #[test]
    fn guarded_insert_follows_the_tenant_version() {
        block_on(async {
            let p = TestPlatform::new().await;
            p.sql
                .exec_raw(
                    "INSERT INTO tenants (id, name, domain, plan, created_at, updated_at, version)
                     VALUES ('t-1', 'Acme', 'acme', 'free', 0, 0, 3)",
                )
                .unwrap();
            let rec = AuditRecord::success(
                "tenant.update",
                &Actor::operator("op"),
                Some("t-1"),
                "tenant:t-1",
                None,
            );
            let n = p
                .sql
                .execute(outbox_insert_if_tenant_version(&rec, "a", 1, "t-1", 2))
                .await
                .unwrap();
            assert_eq!(n, 0);
            let n = p
                .sql
                .execute(outbox_insert_if_tenant_version(&rec, "b", 1, "t-1", 3))
                .await
                .unwrap();
            assert_eq!(n, 1);
            record(&p, &rec).await.unwrap();
            let rows = p
                .sql
                .query(Stmt::new("SELECT id FROM audit_outbox ORDER BY seq"))
                .await
                .unwrap();
            assert_eq!(rows.len(), 2);
            assert_eq!(rows[0].text("id").unwrap(), "b");
        });
    }
}
