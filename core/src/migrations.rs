//! The schema migrations in `d1-migrations/`, embedded, and the runner that applies them where
//! wrangler does not (Spin, native tests). The runner keeps wrangler's own tracking table, so a
//! database migrated by either knows what the other applied.

use std::collections::BTreeSet;

use crate::ports::{Sql, SqlError, Stmt};

/// One migration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The file name, as wrangler records it in `d1_migrations.name` (e.g. `0001_init.sql`).
    pub name: &'static str,
    /// The file content (see the style rules in its header).
    pub sql: &'static str,
}

/// Every migration, in the order they apply.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_init.sql",
        sql: include_str!("../../d1-migrations/0001_init.sql"),
    },
    Migration {
        name: "0002_flags.sql",
        sql: include_str!("../../d1-migrations/0002_flags.sql"),
    },
    Migration {
        name: "0003_auth.sql",
        sql: include_str!("../../d1-migrations/0003_auth.sql"),
    },
    Migration {
        name: "0004_events.sql",
        sql: include_str!("../../d1-migrations/0004_events.sql"),
    },
    Migration {
        name: "0005_tenant_admin.sql",
        sql: include_str!("../../d1-migrations/0005_tenant_admin.sql"),
    },
    Migration {
        name: "0006_oidc_provider.sql",
        sql: include_str!("../../d1-migrations/0006_oidc_provider.sql"),
    },
    Migration {
        name: "0007_archive_anchors.sql",
        sql: include_str!("../../d1-migrations/0007_archive_anchors.sql"),
    },
    Migration {
        name: "0008_mail_queue.sql",
        sql: include_str!("../../d1-migrations/0008_mail_queue.sql"),
    },
    Migration {
        name: "0009_console.sql",
        sql: include_str!("../../d1-migrations/0009_console.sql"),
    },
    Migration {
        name: "0010_request_metrics.sql",
        sql: include_str!("../../d1-migrations/0010_request_metrics.sql"),
    },
    Migration {
        name: "0011_alerts.sql",
        sql: include_str!("../../d1-migrations/0011_alerts.sql"),
    },
    Migration {
        name: "0012_app_health.sql",
        sql: include_str!("../../d1-migrations/0012_app_health.sql"),
    },
    Migration {
        name: "0013_journeys.sql",
        sql: include_str!("../../d1-migrations/0013_journeys.sql"),
    },
    Migration {
        name: "0014_anomalies.sql",
        sql: include_str!("../../d1-migrations/0014_anomalies.sql"),
    },
    Migration {
        name: "0015_adaptive_auth.sql",
        sql: include_str!("../../d1-migrations/0015_adaptive_auth.sql"),
    },
    Migration {
        name: "0016_sign_in_revoke.sql",
        sql: include_str!("../../d1-migrations/0016_sign_in_revoke.sql"),
    },
];

/// wrangler's tracking table, with wrangler's DDL (`wrangler d1 migrations apply`).
const TRACKING_TABLE: &str = "CREATE TABLE IF NOT EXISTS d1_migrations(
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT UNIQUE,
		applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
)";

/// Why the migrations could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MigrateError {
    /// The tracking table could not be created or read.
    #[error("cannot read the migration history: {0}")]
    History(#[source] SqlError),
    /// A migration failed; it was rolled back as a whole.
    #[error("migration {name} failed: {source}")]
    Failed {
        /// The migration file name.
        name: &'static str,
        /// What the database said.
        #[source]
        source: SqlError,
    },
}

impl MigrateError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            MigrateError::History(_) => "migration-history",
            MigrateError::Failed { .. } => "migration-failed",
        }
    }
}

/// Splits a migration file into its statements, without the terminating `;`, dropping comment
/// lines before each statement and chunks holding only comments or blanks.
///
/// Relies on the file style rules: comments are whole `--` lines, and a `;` only ever ends a
/// statement. Comment lines inside a statement stay (SQLite ignores them).
pub fn statements(sql: &'static str) -> Vec<&'static str> {
    sql.split(';')
        .map(strip_leading_comments)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The chunk without its leading blank and `--` lines and its trailing whitespace.
fn strip_leading_comments(chunk: &'static str) -> &'static str {
    let mut rest = chunk.trim_start();
    while rest.starts_with("--") {
        rest = match rest.find('\n') {
            Some(end) => rest[end + 1..].trim_start(),
            None => "",
        };
    }
    rest.trim_end()
}

/// Applies the migrations not yet recorded in `d1_migrations`, each in one atomic batch together
/// with its tracking row, and returns the names applied (empty when up to date).
///
/// `applied_at` is written from `now_ms` in the format of wrangler's `CURRENT_TIMESTAMP`
/// default. If another instance applies the same migration concurrently, the loser's batch
/// fails, finds the migration recorded, and skips it.
pub async fn apply<S: Sql>(sql: &S, now_ms: i64) -> Result<Vec<&'static str>, MigrateError> {
    sql.execute(Stmt::new(TRACKING_TABLE))
        .await
        .map_err(MigrateError::History)?;
    let applied = applied_names(sql).await?;
    let mut done = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(m.name)) {
        let mut batch: Vec<Stmt> = statements(migration.sql)
            .into_iter()
            .map(Stmt::new)
            .collect();
        batch.push(
            Stmt::new("INSERT INTO d1_migrations (name, applied_at) VALUES (?1, datetime(?2 / 1000, 'unixepoch'))")
                .bind(migration.name)
                .bind(now_ms),
        );
        if let Err(source) = sql.batch(batch).await {
            if applied_names(sql).await?.contains(migration.name) {
                continue;
            }
            return Err(MigrateError::Failed {
                name: migration.name,
                source,
            });
        }
        done.push(migration.name);
    }
    Ok(done)
}

/// The names recorded in the tracking table.
async fn applied_names<S: Sql>(sql: &S) -> Result<BTreeSet<String>, MigrateError> {
    let rows = sql
        .query(Stmt::new("SELECT name FROM d1_migrations"))
        .await
        .map_err(MigrateError::History)?;
    rows.iter()
        .map(|row| row.text("name"))
        .collect::<Result<_, _>>()
        .map_err(MigrateError::History)
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::testing::{NativeSql, START_MS};

    #[test]
    fn splitter_returns_statements_without_comments_or_semicolons() {
        let sql = "-- header\n-- more\n\nCREATE TABLE a (\n  -- inside\n  x INTEGER\n);\n\n-- between\nINSERT INTO a VALUES (1);\n-- trailing only\n";
        assert_eq!(
            statements(sql),
            vec![
                "CREATE TABLE a (\n  -- inside\n  x INTEGER\n)",
                "INSERT INTO a VALUES (1)"
            ]
        );
    }

    #[test]
    fn splitter_handles_empty_and_comment_only_input() {
        assert!(statements("").is_empty());
        assert!(statements("-- nothing here\n\n-- at all").is_empty());
        assert!(statements("\n  \n;\n;").is_empty());
    }

    #[test]
    fn splitter_keeps_a_last_statement_without_semicolon() {
        assert_eq!(
            statements("SELECT 1;\nSELECT 2"),
            vec!["SELECT 1", "SELECT 2"]
        );
    }

    #[test]
    fn splitter_handles_crlf_line_ends() {
        assert_eq!(
            statements("-- c\r\nSELECT 1;\r\n-- d\r\nSELECT 2;\r\n"),
            vec!["SELECT 1", "SELECT 2"]
        );
    }

    /// The rules in the header of every migration file, which the splitters rely on.
    #[test]
    fn migration_files_follow_the_style_rules() {
        for m in MIGRATIONS {
            assert!(
                m.name.ends_with(".sql") && m.name[..4].chars().all(|c| c.is_ascii_digit()),
                "{}",
                m.name
            );
            for (n, line) in m.sql.lines().enumerate() {
                let at = format!("{}:{}", m.name, n + 1);
                let trimmed = line.trim();
                if trimmed.starts_with("--") {
                    assert!(
                        !line.contains([';', '\'', '"']),
                        "{at}: quote or semicolon in a comment"
                    );
                    continue;
                }
                assert!(!line.contains("--"), "{at}: comment after code");
                if let Some(i) = line.find(';') {
                    assert_eq!(
                        i,
                        line.trim_end().len() - 1,
                        "{at}: semicolon not at the end of the line"
                    );
                }
                let upper = trimmed.to_ascii_uppercase();
                for word in upper.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
                    assert!(
                        ![
                            "BEGIN",
                            "COMMIT",
                            "ROLLBACK",
                            "TRIGGER",
                            "PRAGMA",
                            "CASE",
                            "TRANSACTION"
                        ]
                        .contains(&word),
                        "{at}: {word} is not allowed"
                    );
                }
            }
        }
    }

    #[test]
    fn apply_creates_every_table_and_records_the_migration() {
        block_on(async {
            let sql = NativeSql::memory();
            let names: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
            assert_eq!(apply(&sql, START_MS).await.unwrap(), names);

            let rows = sql
                .query(Stmt::new(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                ))
                .await
                .unwrap();
            let tables: BTreeSet<String> = rows.iter().map(|r| r.text("name").unwrap()).collect();
            for table in [
                "api_keys",
                "apps",
                "archive_index",
                "event_streams",
                "audit_outbox",
                "auth_flows",
                "d1_migrations",
                "feature_flags",
                "idempotency_keys",
                "invitations",
                "mail_outbox",
                "mail_queue",
                "mfa_recovery_codes",
                "password_history",
                "password_policies",
                "password_reset_tokens",
                "plan_default_flags",
                "plans",
                "roles",
                "sessions",
                "signing_keys",
                "sso_configs",
                "tenant_apps",
                "tenants",
                "users",
                "webauthn_credentials",
            ] {
                assert!(tables.contains(table), "missing table {table}");
            }

            let recorded = sql
                .query(Stmt::new(
                    "SELECT name, applied_at FROM d1_migrations ORDER BY id",
                ))
                .await
                .unwrap();
            assert_eq!(recorded.len(), MIGRATIONS.len());
            assert_eq!(recorded[0].text("name").unwrap(), "0001_init.sql");
            // START_MS is 2026-01-01T00:00:00Z, in CURRENT_TIMESTAMP's format.
            assert_eq!(
                recorded[0].text("applied_at").unwrap(),
                "2026-01-01 00:00:00"
            );

            let roles = sql
                .query(Stmt::new("SELECT name FROM roles ORDER BY name"))
                .await
                .unwrap();
            let roles: Vec<String> = roles.iter().map(|r| r.text("name").unwrap()).collect();
            assert_eq!(roles, ["admin", "auditor", "operator", "owner", "user"]);
        });
    }

    #[test]
    fn apply_twice_is_a_no_op_the_second_time() {
        block_on(async {
            let sql = NativeSql::memory();
            assert_eq!(apply(&sql, START_MS).await.unwrap().len(), MIGRATIONS.len());
            assert!(apply(&sql, START_MS + 1000).await.unwrap().is_empty());
            let n = sql
                .query(Stmt::new("SELECT COUNT(*) AS n FROM d1_migrations"))
                .await
                .unwrap();
            assert_eq!(n[0].i64("n").unwrap(), MIGRATIONS.len() as i64);
        });
    }

    #[test]
    fn apply_skips_a_migration_recorded_by_wrangler() {
        block_on(async {
            let sql = NativeSql::memory();
            sql.execute(Stmt::new(TRACKING_TABLE)).await.unwrap();
            for m in MIGRATIONS {
                sql.execute(Stmt::new("INSERT INTO d1_migrations (name) VALUES (?1)").bind(m.name))
                    .await
                    .unwrap();
            }
            assert!(apply(&sql, START_MS).await.unwrap().is_empty());
        });
    }

    #[test]
    fn a_failing_migration_leaves_nothing_behind() {
        block_on(async {
            let sql = NativeSql::memory();
            // A table the migration wants to create already exists: its batch fails as a whole.
            sql.execute(Stmt::new("CREATE TABLE mail_outbox (x INTEGER)"))
                .await
                .unwrap();
            let err = apply(&sql, START_MS).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    MigrateError::Failed {
                        name: "0001_init.sql",
                        ..
                    }
                ),
                "{err:?}"
            );
            assert_eq!(err.code(), "migration-failed");
            let rows = sql
                .query(Stmt::new(
                    "SELECT name FROM sqlite_master WHERE name IN ('tenants', 'roles')",
                ))
                .await
                .unwrap();
            assert!(rows.is_empty());
            let n = sql
                .query(Stmt::new("SELECT COUNT(*) AS n FROM d1_migrations"))
                .await
                .unwrap();
            assert_eq!(n[0].i64("n").unwrap(), 0);
        });
    }

    async fn migrated() -> NativeSql {
        let sql = NativeSql::memory();
        apply(&sql, START_MS).await.unwrap();
        sql
    }

    fn tenant(id: &'static str, domain: &'static str) -> Stmt {
        Stmt::new(
            "INSERT INTO tenants (id, name, domain, plan, created_at, updated_at) VALUES (?1, ?2, ?3, 'free', ?4, ?4)",
        )
        .bind(id)
        .bind(domain)
        .bind(domain)
        .bind(START_MS)
    }

    fn user(id: &'static str, tenant: &'static str, email: &'static str) -> Stmt {
        Stmt::new(
            "INSERT INTO users (id, tenant_id, email, role, created_at, updated_at) VALUES (?1, ?2, ?3, 'user', ?4, ?4)",
        )
        .bind(id)
        .bind(tenant)
        .bind(email)
        .bind(START_MS)
    }

    #[test]
    fn foreign_keys_are_enforced() {
        block_on(async {
            let sql = migrated().await;
            let err = sql
                .execute(user("u1", "no-such-tenant", "a@example.com"))
                .await
                .unwrap_err();
            assert!(matches!(err, SqlError::Constraint(_)), "{err:?}");
            let err = sql
                .execute(
                    Stmt::new("INSERT INTO tenants (id, name, domain, plan, created_at, updated_at) VALUES ('t', 'T', 't', 'gold', 0, 0)"),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, SqlError::Constraint(_)),
                "unknown plan: {err:?}"
            );
        });
    }

    /// FR-OPS-002: purging a tenant row removes its children.
    #[test]
    fn deleting_a_tenant_cascades_to_its_data() {
        block_on(async {
            let sql = migrated().await;
            sql.batch(vec![
                tenant("t1", "acme"),
                tenant("t2", "globex"),
                user("u1", "t1", "a@acme.test"),
                user("u2", "t2", "b@globex.test"),
                Stmt::new(
                    "INSERT INTO sessions (id, tenant_id, user_id, family_id, refresh_token_hash, created_at, expires_at) VALUES ('s1', 't1', 'u1', 'f1', 'h1', 0, 1)",
                ),
                Stmt::new(
                    "INSERT INTO feature_flags (id, tenant_id, key, type, value, created_at, updated_at) VALUES ('f1', 't1', 'beta', 'boolean', 'true', 0, 0)",
                ),
            ])
            .await
            .unwrap();
            assert_eq!(
                sql.execute(Stmt::new("DELETE FROM tenants WHERE id = 't1'"))
                    .await
                    .unwrap(),
                1
            );
            let counts = sql
                .query(Stmt::new(
                    "SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM sessions) AS sessions, (SELECT COUNT(*) FROM feature_flags) AS flags",
                ))
                .await
                .unwrap();
            assert_eq!(
                counts[0].i64("users").unwrap(),
                1,
                "only the other tenant user is left"
            );
            assert_eq!(counts[0].i64("sessions").unwrap(), 0);
            assert_eq!(counts[0].i64("flags").unwrap(), 0);
        });
    }

    #[test]
    fn constraints_guard_the_model() {
        block_on(async {
            let sql = migrated().await;
            sql.batch(vec![tenant("t1", "acme"), user("u1", "t1", "a@acme.test")])
                .await
                .unwrap();
            let refused = [
                // Domains and emails are unique, case-insensitively.
                tenant("t2", "ACME"),
                user("u2", "t1", "A@acme.test"),
                // A tenant user cannot hold a platform role, nor a platform user a tenant role.
                Stmt::new("INSERT INTO users (id, tenant_id, email, role, created_at, updated_at) VALUES ('u3', 't1', 'c@acme.test', 'operator', 0, 0)"),
                Stmt::new("INSERT INTO users (id, email, role, external_issuer, external_subject, created_at, updated_at) VALUES ('u4', 'o@x.test', 'admin', 'https://idp', 'sub', 0, 0)"),
                // A platform user comes from the external IdP.
                Stmt::new("INSERT INTO users (id, email, role, created_at, updated_at) VALUES ('u5', 'o@x.test', 'operator', 0, 0)"),
                // Unknown status.
                Stmt::new("UPDATE tenants SET status = 'frozen' WHERE id = 't1'"),
                // A flag value must match its type and be JSON.
                Stmt::new("INSERT INTO feature_flags (id, tenant_id, key, type, value, created_at, updated_at) VALUES ('f1', 't1', 'k', 'boolean', '\"yes\"', 0, 0)"),
                Stmt::new("INSERT INTO feature_flags (id, tenant_id, key, type, value, created_at, updated_at) VALUES ('f2', 't1', 'k', 'string', 'not json', 0, 0)"),
                // Audit actor types are an enumeration.
                Stmt::new("INSERT INTO audit_outbox (id, occurred_at, actor_id, actor_type, action, resource, outcome) VALUES ('e1', 0, 'a', 'robot', 'x', 'y', 'success')"),
            ];
            for stmt in refused {
                let sql_text = stmt.sql;
                let err = sql.execute(stmt).await.unwrap_err();
                assert!(
                    matches!(err, SqlError::Constraint(_)),
                    "{sql_text}: {err:?}"
                );
            }
        });
    }

    #[test]
    fn platform_users_are_unique_by_external_identity() {
        block_on(async {
            let sql = migrated().await;
            let op = |id: &'static str| {
                Stmt::new("INSERT INTO users (id, role, external_issuer, external_subject, created_at, updated_at) VALUES (?1, 'operator', 'https://idp.test', 'sub-1', 0, 0)")
                    .bind(id)
            };
            sql.execute(op("o1")).await.unwrap();
            assert!(matches!(
                sql.execute(op("o2")).await,
                Err(SqlError::Constraint(_))
            ));
        });
    }

    #[test]
    fn only_one_signing_key_is_active() {
        block_on(async {
            let sql = migrated().await;
            let key = |kid: &'static str| {
                Stmt::new("INSERT INTO signing_keys (kid, public_jwk, private_key_enc, status, created_at) VALUES (?1, '{}', 'enc', 'active', 0)")
                    .bind(kid)
            };
            sql.execute(key("k1")).await.unwrap();
            assert!(matches!(
                sql.execute(key("k2")).await,
                Err(SqlError::Constraint(_))
            ));
            // Rotation: demote, then insert, in one batch.
            sql.batch(vec![
                Stmt::new("UPDATE signing_keys SET status = 'previous' WHERE status = 'active'"),
                key("k2"),
            ])
            .await
            .unwrap();
        });
    }

    /// The hot paths are served by an index, not a table scan.
    #[test]
    fn hot_paths_use_indexes() {
        block_on(async {
            let sql = migrated().await;
            let cases = [
                (
                    Stmt::new("SELECT id FROM tenants WHERE status = ?1 AND (created_at, id) > (?2, ?3) ORDER BY created_at, id LIMIT 50")
                        .bind("active")
                        .bind(0)
                        .bind(""),
                    "tenants_status_created",
                ),
                (Stmt::new("SELECT id FROM tenants WHERE name LIKE ?1 ORDER BY name LIMIT 50").bind("acm%"), "tenants_name"),
                (Stmt::new("SELECT id FROM tenants WHERE domain LIKE ?1 LIMIT 50").bind("acm%"), "tenants_domain"),
                (Stmt::new("SELECT id FROM tenants WHERE domain = ?1").bind("acme"), "tenants_domain"),
                (Stmt::new("SELECT id FROM users WHERE tenant_id = ?1 AND email = ?2").bind("t").bind("a@b.c"), "users_tenant_email"),
                (
                    Stmt::new("SELECT id FROM users WHERE tenant_id = ?1 AND status = ?2 AND id > ?3 ORDER BY id LIMIT 50")
                        .bind("t")
                        .bind("active")
                        .bind(""),
                    "users_tenant_status",
                ),
                (
                    Stmt::new("SELECT id FROM users WHERE tenant_id IS NULL AND external_issuer = ?1 AND external_subject = ?2")
                        .bind("i")
                        .bind("s"),
                    // Either external-identity index answers it.
                    "USING INDEX users_",
                ),
                (Stmt::new("UPDATE sessions SET status = 'revoked' WHERE user_id = ?1 AND status = 'active'").bind("u"), "sessions_user"),
                (Stmt::new("SELECT id FROM api_keys WHERE app_id = ?1 ORDER BY created_at").bind("a"), "api_keys_app"),
                (Stmt::new("SELECT key FROM feature_flags WHERE tenant_id = ?1").bind("t"), "sqlite_autoindex_feature_flags_2"),
                (Stmt::new("SELECT id FROM invitations WHERE tenant_id = ?1 AND status = ?2").bind("t").bind("pending"), "invitations_"),
                (Stmt::new("SELECT seq FROM audit_outbox WHERE forwarded_at IS NULL ORDER BY seq LIMIT 100"), "audit_outbox_unforwarded"),
                (
                    Stmt::new("SELECT key FROM archive_index WHERE kind = ?1 AND tenant_id = ?2 AND period_start >= ?3")
                        .bind("audit")
                        .bind("t")
                        .bind(0),
                    "archive_index_period",
                ),
            ];
            for (stmt, index) in cases {
                let query = stmt.sql;
                let plan = sql.explain(stmt).unwrap_or_else(|e| panic!("{query}: {e}"));
                assert!(
                    plan.contains(index),
                    "{query}\nexpected {index}, plan:\n{plan}"
                );
                let full_scan = plan
                    .lines()
                    .any(|l| l.contains("SCAN") && !l.contains("INDEX"));
                assert!(!full_scan, "{query}\nscans a table:\n{plan}");
            }
        });
    }
}
