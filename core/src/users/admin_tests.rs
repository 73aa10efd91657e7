//! Tenant administration on real SQLite with the migrations: paging and its index use, the
//! owner rules, revocation, erasure with a pseudonym, invitations and their expiry.

use futures_executor::block_on;

use super::admin::{
    self, ListUsers, TenantActor, TenantRole, UpdateUser, UserAdminError, UserStatus,
};
use super::invite::{self, Invite, InviteError};
use super::{accept_invitation, AcceptInvitationError};
use crate::ports::{Kv, Sql, Stmt};
use crate::sessions::{session_marker_key, user_marker_key};
use crate::tenants::Email;
use crate::testing::{TestPlatform, START_MS};

const T: &str = "00000000-0000-4000-8000-0000000000aa";
const OTHER: &str = "00000000-0000-4000-8000-0000000000bb";

async fn platform() -> TestPlatform {
    let p = TestPlatform::new().await;
    p.sql
        .exec_raw(&format!(
            "INSERT INTO tenants (id, name, domain, plan, created_at, updated_at)
             VALUES ('{T}', 'Acme', 'acme', 'free', 0, 0), ('{OTHER}', 'Other', 'other', 'free', 0, 0)"
        ))
        .unwrap();
    p
}

fn add_user(p: &TestPlatform, tenant: &str, id: &str, role: &str, status: &str) {
    p.sql
        .exec_raw(&format!(
            "INSERT INTO users (id, tenant_id, email, role, status, password_hash, created_at, updated_at)
             VALUES ('{id}', '{tenant}', '{id}@acme.test', '{role}', '{status}', 'h', 0, 0)"
        ))
        .unwrap();
}

fn add_session(p: &TestPlatform, user: &str, sid: &str) {
    p.sql
        .exec_raw(&format!(
            "INSERT INTO sessions (id, tenant_id, user_id, family_id, refresh_token_hash, created_at, expires_at)
             VALUES ('{sid}', '{T}', '{user}', '{sid}', 'rt-{sid}', 0, {})",
            START_MS * 2
        ))
        .unwrap();
}

fn actor(id: &str, role: TenantRole) -> TenantActor {
    TenantActor {
        user_id: id.to_owned(),
        tenant_id: T.to_owned(),
        role,
    }
}

async fn one(p: &TestPlatform, sql: &'static str, bind: &str) -> Option<String> {
    let rows = p.sql.query(Stmt::new(sql).bind(bind)).await.unwrap();
    rows.first().and_then(|r| r.opt_text("v").unwrap())
}

/// FR-TENANT-004 (10,000 users must page quickly): every list shape walks an index, with no
/// sort step and no OFFSET; the email search is a bound range on `users_tenant_email`.
#[test]
fn list_queries_use_the_tenant_indexes_fr_tenant_004() {
    block_on(async {
        let p = platform().await;
        let cursor_id = crate::crypto::b64url_encode(b"i:u-1");
        let cursor_email = crate::crypto::b64url_encode(b"e:ann@x");
        let cases: Vec<(ListUsers, &str)> = vec![
            (
                ListUsers::default(),
                "USING INDEX users_tenant_id (tenant_id=? AND id>?)",
            ),
            (
                ListUsers {
                    cursor: Some(cursor_id.clone()),
                    role: Some(TenantRole::Admin),
                    ..ListUsers::default()
                },
                "USING INDEX users_tenant_id (tenant_id=? AND id>?)",
            ),
            (
                ListUsers {
                    status: Some(UserStatus::Active),
                    ..ListUsers::default()
                },
                "USING INDEX users_tenant_status (tenant_id=? AND status=? AND id>?)",
            ),
            (
                ListUsers {
                    q: Some("ann".into()),
                    ..ListUsers::default()
                },
                "USING INDEX users_tenant_email (tenant_id=? AND email>? AND email<?)",
            ),
            (
                ListUsers {
                    q: Some("ann".into()),
                    cursor: Some(cursor_email),
                    status: Some(UserStatus::Active),
                    ..ListUsers::default()
                },
                "USING INDEX users_tenant_email (tenant_id=? AND email>? AND email<?)",
            ),
        ];
        for (req, want) in cases {
            let plan = p.sql.explain(admin::list_stmt(T, &req).unwrap()).unwrap();
            assert!(plan.contains(want), "{req:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{req:?}: {plan}");
            assert!(!plan.contains("SCAN"), "{req:?}: {plan}");
        }
    });
}

/// FR-TENANT-004: keyset pages cover every user once, filters apply, the search is a
/// case-insensitive prefix, another tenant's users never appear, and the list is audited.
#[test]
fn keyset_pages_filters_and_search_fr_tenant_004() {
    block_on(async {
        let p = platform().await;
        add_user(&p, T, "a-owner", "owner", "active");
        for i in 0..25 {
            let status = if i % 5 == 0 { "disabled" } else { "active" };
            add_user(&p, T, &format!("u-{i:02}"), "user", status);
        }
        add_user(&p, T, "gone", "user", "deleted");
        add_user(&p, OTHER, "z-other", "user", "active");
        let by = actor("a-owner", TenantRole::Owner);
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let req = ListUsers {
                cursor: cursor.clone(),
                limit: Some(7),
                ..ListUsers::default()
            };
            let page = admin::list_users(&p, &by, &req, "r").await.unwrap();
            seen.extend(page.items.iter().map(|u| u.id.clone()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 26, "{seen:?}");
        assert!(!seen.contains(&"gone".to_owned()) && !seen.contains(&"z-other".to_owned()));
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted);

        let disabled = ListUsers {
            status: Some(UserStatus::Disabled),
            ..ListUsers::default()
        };
        assert_eq!(
            admin::list_users(&p, &by, &disabled, "r")
                .await
                .unwrap()
                .items
                .len(),
            5
        );
        let owners = ListUsers {
            role: Some(TenantRole::Owner),
            ..ListUsers::default()
        };
        assert_eq!(
            admin::list_users(&p, &by, &owners, "r")
                .await
                .unwrap()
                .items
                .len(),
            1
        );

        let mut found = Vec::new();
        let mut cursor = None;
        loop {
            let req = ListUsers {
                q: Some("U-1".into()),
                cursor,
                limit: Some(4),
                ..ListUsers::default()
            };
            let page = admin::list_users(&p, &by, &req, "r").await.unwrap();
            found.extend(page.items.iter().map(|u| u.id.clone()));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(
            found,
            (10..20).map(|i| format!("u-{i}")).collect::<Vec<_>>()
        );
        let bad = ListUsers {
            cursor: Some("!!".into()),
            ..ListUsers::default()
        };
        assert_eq!(
            admin::list_users(&p, &by, &bad, "r").await,
            Err(UserAdminError::InvalidCursor)
        );
        let audited = one(
            &p,
            "SELECT count(*) || '' AS v FROM audit_outbox WHERE action = ?1",
            "user.list",
        )
        .await;
        assert!(audited.unwrap().parse::<i64>().unwrap() >= 4);
    });
}

/// FR-TENANT-004, FR-TENANT-006: admins cannot act on owners, only owners grant owner, the last
/// owner cannot be demoted or disabled, and another tenant's user is not found.
#[test]
fn owner_rules_fr_tenant_004_fr_tenant_006() {
    block_on(async {
        let p = platform().await;
        add_user(&p, T, "owner-1", "owner", "active");
        add_user(&p, T, "admin-1", "admin", "active");
        add_user(&p, T, "user-1", "user", "active");
        add_user(&p, OTHER, "stranger", "user", "active");
        let admin_actor = actor("admin-1", TenantRole::Admin);
        let owner_actor = actor("owner-1", TenantRole::Owner);
        let demote = UpdateUser {
            role: Some(TenantRole::User),
            status: None,
        };
        let disable = UpdateUser {
            role: None,
            status: Some(UserStatus::Disabled),
        };
        let promote = UpdateUser {
            role: Some(TenantRole::Owner),
            status: None,
        };

        assert_eq!(
            admin::update_user(&p, &admin_actor, "owner-1", disable, "r").await,
            Err(UserAdminError::Forbidden("target_is_owner"))
        );
        assert_eq!(
            admin::erase_user(&p, &admin_actor, "owner-1", "r").await,
            Err(UserAdminError::Forbidden("target_is_owner"))
        );
        assert_eq!(
            admin::update_user(&p, &admin_actor, "user-1", promote, "r").await,
            Err(UserAdminError::Forbidden("owner_only"))
        );
        assert_eq!(
            admin::update_user(&p, &owner_actor, "owner-1", demote, "r").await,
            Err(UserAdminError::LastOwner)
        );
        assert_eq!(
            admin::update_user(&p, &owner_actor, "owner-1", disable, "r").await,
            Err(UserAdminError::LastOwner)
        );
        assert_eq!(
            admin::erase_user(&p, &owner_actor, "owner-1", "r").await,
            Err(UserAdminError::LastOwner)
        );
        assert_eq!(
            admin::update_user(&p, &owner_actor, "stranger", disable, "r").await,
            Err(UserAdminError::NotFound)
        );
        // A second owner lifts the last-owner rule.
        let u = admin::update_user(&p, &owner_actor, "admin-1", promote, "r")
            .await
            .unwrap();
        assert_eq!(u.role, "owner");
        let u = admin::update_user(&p, &owner_actor, "owner-1", demote, "r")
            .await
            .unwrap();
        assert_eq!(u.role, "user");
        let refusals = one(
            &p,
            "SELECT count(*) || '' AS v FROM audit_outbox WHERE outcome = ?1 AND action IN ('user.update', 'user.delete')",
            "failure",
        )
        .await;
        assert_eq!(refusals.as_deref(), Some("6"));
        // A stale token role does not help: the database says who is admin.
        assert_eq!(
            admin::authorize_admin(&p, T, "user-1").await,
            Err(UserAdminError::Forbidden("not_admin"))
        );
    });
}

/// FR-TENANT-004, FR-TENANT-006: a role change and a disable revoke the sessions in D1 and at the
/// edge; disable writes the user marker, enable removes it.
#[test]
fn role_and_status_changes_revoke_sessions_fr_tenant_004_fr_tenant_006() {
    block_on(async {
        let p = platform().await;
        add_user(&p, T, "owner-1", "owner", "active");
        add_user(&p, T, "user-1", "user", "active");
        add_session(&p, "user-1", "s-1");
        let by = actor("owner-1", TenantRole::Owner);
        let to_admin = UpdateUser {
            role: Some(TenantRole::Admin),
            status: None,
        };
        admin::update_user(&p, &by, "user-1", to_admin, "r")
            .await
            .unwrap();
        assert_eq!(
            one(&p, "SELECT status AS v FROM sessions WHERE id = ?1", "s-1")
                .await
                .as_deref(),
            Some("revoked")
        );
        assert!(p
            .kv
            .get(&session_marker_key("s-1"), None)
            .await
            .unwrap()
            .is_some());

        add_session(&p, "user-1", "s-2");
        let disable = UpdateUser {
            role: None,
            status: Some(UserStatus::Disabled),
        };
        admin::update_user(&p, &by, "user-1", disable, "r")
            .await
            .unwrap();
        assert_eq!(
            one(&p, "SELECT status AS v FROM sessions WHERE id = ?1", "s-2")
                .await
                .as_deref(),
            Some("revoked")
        );
        assert_eq!(
            p.kv.get(&user_marker_key("user-1"), None)
                .await
                .unwrap()
                .as_deref(),
            Some(&b"disabled"[..])
        );
        let enable = UpdateUser {
            role: None,
            status: Some(UserStatus::Active),
        };
        admin::update_user(&p, &by, "user-1", enable, "r")
            .await
            .unwrap();
        assert_eq!(
            p.kv.get(&user_marker_key("user-1"), None).await.unwrap(),
            None
        );
        let actions = p
            .sql
            .query(Stmt::new(
                "SELECT action FROM audit_outbox WHERE resource = 'user:user-1' ORDER BY seq",
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.text("action").unwrap())
            .collect::<Vec<_>>();
        assert_eq!(
            actions,
            [
                "user.role_update",
                "user.status_update",
                "user.status_update"
            ]
        );
    });
}

/// FR-TENANT-002, CON-COMP-001: erasure scrubs personal data and credentials, revokes sessions,
/// keeps the row with a pseudonym so history still resolves, and writes the `deleted` marker.
#[test]
fn erasure_keeps_history_under_a_pseudonym_con_comp_001() {
    block_on(async {
        let p = platform().await;
        add_user(&p, T, "owner-1", "owner", "active");
        add_user(&p, T, "user-1", "user", "active");
        add_session(&p, "user-1", "s-1");
        p.sql
            .exec_raw(
                "INSERT INTO password_history (user_id, password_hash, created_at) VALUES ('user-1', 'h', 0);
                 INSERT INTO audit_outbox (id, occurred_at, tenant_id, actor_id, actor_type, action, resource, outcome)
                 VALUES ('ev-0', 0, '00000000-0000-4000-8000-0000000000aa', 'user-1', 'user', 'session.create', 'session:s-1', 'success');
                 INSERT INTO mail_outbox (to_addr, subject, text_body, html_body, created_at)
                 VALUES ('user-1@acme.test', 's', 't', 'h', 0);
                 INSERT INTO mail_queue (to_addr, subject, text_body, html_body, created_at,
                   next_attempt_at, expires_at)
                 VALUES ('user-1@acme.test', 's', 't', 'h', 0, 0, 9999999999999)",
            )
            .unwrap();
        let by = actor("owner-1", TenantRole::Owner);
        let erased = admin::erase_user(&p, &by, "user-1", "r").await.unwrap();
        assert!(erased.pseudonym.starts_with("erased-") && erased.pseudonym.len() == 19);
        let row = &p
            .sql
            .query(Stmt::new("SELECT * FROM users WHERE id = 'user-1'"))
            .await
            .unwrap()[0];
        assert_eq!(row.text("status").unwrap(), "deleted");
        assert_eq!(row.opt_text("email").unwrap(), None);
        assert_eq!(row.opt_text("password_hash").unwrap(), None);
        assert_eq!(
            row.opt_text("pseudonym").unwrap().as_deref(),
            Some(erased.pseudonym.as_str())
        );
        assert_eq!(
            one(&p, "SELECT status AS v FROM sessions WHERE id = ?1", "s-1")
                .await
                .as_deref(),
            Some("revoked")
        );
        for table in [
            "SELECT count(*) || '' AS v FROM password_history WHERE user_id = ?1",
            "SELECT count(*) || '' AS v FROM mail_outbox WHERE to_addr = ?1 || '@acme.test'",
            "SELECT count(*) || '' AS v FROM mail_queue WHERE to_addr = ?1 || '@acme.test'",
        ] {
            assert_eq!(
                one(&p, table, "user-1").await.as_deref(),
                Some("0"),
                "{table}"
            );
        }
        // The old audit row is still there and resolves, through the users row, to the pseudonym.
        let resolved = one(
            &p,
            "SELECT u.pseudonym AS v FROM audit_outbox a JOIN users u ON u.id = a.actor_id WHERE a.id = ?1",
            "ev-0",
        )
        .await;
        assert_eq!(resolved.as_deref(), Some(erased.pseudonym.as_str()));
        let meta = one(
            &p,
            "SELECT metadata AS v FROM audit_outbox WHERE action = ?1",
            "user.delete",
        )
        .await
        .unwrap();
        assert!(!meta.contains('@'), "{meta}");
        assert_eq!(
            p.kv.get(&user_marker_key("user-1"), None)
                .await
                .unwrap()
                .as_deref(),
            Some(&b"deleted"[..])
        );
        // Again: nothing to do, no error.
        assert!(
            !admin::erase_user(&p, &by, "user-1", "r")
                .await
                .unwrap()
                .changed
        );
    });
}

fn token_of(text: &str) -> String {
    text.split("token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// FR-TENANT-001, FR-TENANT-007: invite (duplicates refused), expiry by the job at a later
/// time, acceptance refused as expired, resend revokes the old token and mails a new one.
#[test]
fn invite_expire_resend_fr_tenant_001_fr_tenant_007() {
    block_on(async {
        let p = platform().await;
        add_user(&p, T, "owner-1", "owner", "active");
        add_user(&p, T, "admin-1", "admin", "active");
        let by = actor("admin-1", TenantRole::Admin);
        let req = Invite {
            email: Email::parse("New@Acme.test").unwrap(),
            role: TenantRole::User,
            expires_in_days: Some(2),
        };
        let inv = invite::invite(
            &p,
            &by,
            &req,
            &crate::http::links_under("https://cp.test"),
            "r",
        )
        .await
        .unwrap();
        assert_eq!(
            (inv.mail, inv.expires_at),
            (invite::MailOutcome::Sent, START_MS + 2 * 86_400_000)
        );
        assert_eq!(
            invite::invite(
                &p,
                &by,
                &req,
                &crate::http::links_under("https://cp.test"),
                "r"
            )
            .await,
            Err(InviteError::Duplicate)
        );
        let owner_req = Invite {
            role: TenantRole::Owner,
            ..req.clone()
        };
        assert_eq!(
            invite::invite(
                &p,
                &by,
                &owner_req,
                &crate::http::links_under("https://cp.test"),
                "r"
            )
            .await,
            Err(InviteError::InvalidRole)
        );
        let mail = p.mailer.messages_to("new@acme.test", 1).await.unwrap();
        assert!(mail[0].mail.html.contains("Acme"));
        let first_token = token_of(&mail[0].mail.text);

        // Not yet due: the job leaves it; two days on it marks it expired.
        assert_eq!(invite::expire_due(&p, START_MS + 1000).await.unwrap(), 0);
        assert_eq!(
            invite::expire_due(&p, START_MS + 2 * 86_400_000)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            accept_invitation(&p, &first_token, "correct horse battery", "r").await,
            Err(AcceptInvitationError::Expired)
        );

        let again = invite::resend(
            &p,
            &by,
            &inv.invitation_id,
            None,
            &crate::http::links_under("https://cp.test"),
            "r",
        )
        .await
        .unwrap();
        assert_eq!(
            again.previous_invitation_id.as_deref(),
            Some(inv.invitation_id.as_str())
        );
        assert_eq!(again.expires_at, START_MS + 7 * 86_400_000);
        let second_token = token_of(
            &p.mailer.messages_to("new@acme.test", 1).await.unwrap()[0]
                .mail
                .text,
        );
        assert_ne!(first_token, second_token);
        // A second resend revokes the second invitation: its token stops working.
        let third = invite::resend(
            &p,
            &by,
            &again.invitation_id,
            None,
            &crate::http::links_under("https://cp.test"),
            "r",
        )
        .await
        .unwrap();
        assert_eq!(
            accept_invitation(&p, &second_token, "correct horse battery", "r").await,
            Err(AcceptInvitationError::NotPending)
        );
        assert_eq!(
            invite::resend(
                &p,
                &by,
                &again.invitation_id,
                None,
                &crate::http::links_under("https://cp.test"),
                "r"
            )
            .await,
            Err(InviteError::NotResendable("invitation_not_resendable"))
        );
        let token = token_of(
            &p.mailer.messages_to("new@acme.test", 1).await.unwrap()[0]
                .mail
                .text,
        );
        let accepted = accept_invitation(&p, &token, "correct horse battery", "r")
            .await
            .unwrap();
        assert_eq!(
            (accepted.user_id, accepted.role.as_str()),
            (third.user_id, "user")
        );
        // Another tenant's invitation id is not found.
        let other = TenantActor {
            tenant_id: OTHER.to_owned(),
            ..by
        };
        assert_eq!(
            invite::resend(
                &p,
                &other,
                &third.invitation_id,
                None,
                &crate::http::links_under("https://cp.test"),
                "r"
            )
            .await,
            Err(InviteError::NotFound)
        );
        let plan = p.sql.explain(invite::expire_due_stmt(START_MS)).unwrap();
        assert!(plan.contains("invitations_pending_expires"), "{plan}");
    });
}

/// FR-OPS-001: a suspension revokes the tenant's sessions in D1 and marks the recent ones at the
/// edge, so their access tokens stay refused after the tenant is activated again.
#[test]
fn suspension_marks_live_sessions_revoked_fr_ops_001() {
    block_on(async {
        let p = platform().await;
        add_user(&p, T, "owner-1", "owner", "active");
        p.sql
            .exec_raw(&format!(
                "INSERT INTO sessions (id, tenant_id, user_id, family_id, refresh_token_hash, created_at, expires_at)
                 VALUES ('s-new', '{T}', 'owner-1', 's-new', 'rt-new', {now}, {exp}),
                        ('s-old', '{T}', 'owner-1', 's-old', 'rt-old', {old}, {exp})",
                now = START_MS - 60_000,
                old = START_MS - 3_600_000,
                exp = START_MS * 2
            ))
            .unwrap();
        let id = crate::tenants::TenantId::parse(T).unwrap();
        let op = crate::audit::Actor::operator("op");
        crate::tenants::suspend(&p, &op, &id, None, "r")
            .await
            .unwrap();
        crate::tenants::activate(&p, &op, &id, "r").await.unwrap();
        assert!(p
            .kv
            .get(&session_marker_key("s-new"), None)
            .await
            .unwrap()
            .is_some());
        // An hour-old session holds no unexpired access token: no marker needed, D1 revoked it.
        assert!(p
            .kv
            .get(&session_marker_key("s-old"), None)
            .await
            .unwrap()
            .is_none());
        for sid in ["s-new", "s-old"] {
            assert_eq!(
                one(&p, "SELECT status AS v FROM sessions WHERE id = ?1", sid)
                    .await
                    .as_deref(),
                Some("revoked")
            );
        }
    });
}
