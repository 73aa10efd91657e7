//! Flag service and snapshot tests on real SQLite with the real migrations (FR-FLAG-001,
//! FR-FLAG-002).

use futures_executor::block_on;
use serde_json::{json, Value};

use super::snapshot::{self, snapshot_key, Published, Snapshot};
use super::*;
use crate::apps::{self, AppId};
use crate::audit::Actor;
use crate::flags;
use crate::ports::{Kv, Sql, Stmt};
use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantId, TenantName};
use crate::testing::{FaultyPlatform, TestPlatform};

const CRM: &str = "00000000-0000-4000-8000-0000000000a1";
const HR: &str = "00000000-0000-4000-8000-0000000000a2";

fn seed(p: &TestPlatform) {
    p.sql
        .exec_raw(
            "INSERT INTO plan_default_flags (plan, key, type, value, enabled, description, updated_at) VALUES
               ('free', 'sso', 'boolean', 'false', 1, 'Single sign-on', 0),
               ('free', 'max_users', 'number', '5', 1, NULL, 0),
               ('pro', 'sso', 'boolean', 'true', 1, 'Single sign-on', 0);
             INSERT INTO apps (id, name, owner_id, status, created_at, updated_at) VALUES
               ('00000000-0000-4000-8000-0000000000a1', 'CRM', 'op-1', 'active', 0, 0),
               ('00000000-0000-4000-8000-0000000000a2', 'HR', 'op-1', 'active', 0, 0);",
        )
        .unwrap();
}

fn op() -> Actor {
    Actor::operator("op-1")
}

async fn tenant<P: crate::ports::Platform>(p: &P, domain: &str) -> TenantId {
    let req = ProvisionTenant {
        name: TenantName::parse(&format!("{domain} Inc")).unwrap(),
        domain: TenantDomain::parse(domain).unwrap(),
        plan: Plan::parse("free").unwrap(),
        owner_email: Email::parse(&format!("owner@{domain}.test")).unwrap(),
        apps: vec![CRM.into()],
    };
    tenants::provision(
        p,
        &op(),
        req,
        None,
        "req-1",
        &crate::http::links_under("https://edgeplane.test"),
    )
    .await
    .unwrap()
    .provisioned
    .tenant
    .id
}

fn def(t: FlagType, value: Value, rules: Value) -> FlagDefinition {
    FlagDefinition::new(t, value, true, None, serde_json::from_value(rules).unwrap()).unwrap()
}

fn key(k: &str) -> FlagKey {
    FlagKey::parse(k).unwrap()
}

async fn kv_snapshot<K: Kv>(kv: &K, t: &TenantId) -> Option<Snapshot> {
    kv.get(&snapshot_key(t), None)
        .await
        .unwrap()
        .map(|b| serde_json::from_slice(&b).unwrap())
}

async fn versions(p: &TestPlatform, t: &TenantId) -> (i64, i64) {
    let rows = p
        .sql
        .query(
            Stmt::new("SELECT flags_version, flags_published_version FROM tenants WHERE id = ?1")
                .bind(t.as_str()),
        )
        .await
        .unwrap();
    (
        rows[0].i64("flags_version").unwrap(),
        rows[0].i64("flags_published_version").unwrap(),
    )
}

/// FR-FLAG-001: provisioning publishes the plan defaults; a set creates, then replaces, each
/// change bumps the set version, is audited with old and new, and reaches KV.
#[test]
fn fr_flag_001_set_versions_audits_and_publishes() {
    block_on(async {
        crate::edge::clear_isolate();
        let p = TestPlatform::new().await;
        seed(&p);
        let t = tenant(&p, "acme").await;
        let snap = kv_snapshot(&p.kv, &t)
            .await
            .expect("published at provisioning");
        let keys: Vec<&str> = snap.flags.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["max_users", "sso"]);
        assert_eq!(snap.apps, vec![AppId::parse(CRM).unwrap()]);

        let created = flags::set_flag(
            &p,
            &op(),
            &t,
            &key("new-checkout"),
            &def(FlagType::Boolean, json!(false), json!([])),
            "req-2",
        )
        .await
        .unwrap();
        assert!(created.created_or_reverted);
        assert_eq!(created.edge, Ok(()));
        let v1 = created.set_version;
        assert_eq!(versions(&p, &t).await, (v1, v1));

        let replaced = flags::set_flag(
            &p,
            &op(),
            &t,
            &key("new-checkout"),
            &def(FlagType::Boolean, json!(true), json!([])),
            "req-3",
        )
        .await
        .unwrap();
        assert!(!replaced.created_or_reverted);
        assert_eq!(replaced.set_version, v1 + 1);
        assert_eq!(replaced.flag.as_ref().unwrap().flag.version, 2);

        let snap = kv_snapshot(&p.kv, &t).await.unwrap();
        assert_eq!(snap.version, v1 + 1);
        assert_eq!(snap.flag("new-checkout").unwrap().value, json!(true));

        let audit = p
            .sql
            .query(Stmt::new(
                "SELECT action, metadata, request_id FROM audit_outbox
                 WHERE action LIKE 'flag.%' ORDER BY seq",
            ))
            .await
            .unwrap();
        assert_eq!(audit.len(), 2);
        assert_eq!(audit[0].text("action").unwrap(), "flag.create");
        assert_eq!(audit[1].text("action").unwrap(), "flag.update");
        let meta: Value = serde_json::from_str(&audit[1].text("metadata").unwrap()).unwrap();
        assert_eq!(meta["old"]["value"], json!(false));
        assert_eq!(meta["new"]["value"], json!(true));
        assert_eq!(audit[1].text("request_id").unwrap(), "req-3");
    });
}

/// Removing an overridden plan flag reverts it to the plan default; removing a flag without a
/// default deletes it; an unknown key is FlagNotFound; a plan change keeps the override.
#[test]
fn remove_reverts_to_the_plan_default() {
    block_on(async {
        crate::edge::clear_isolate();
        let p = TestPlatform::new().await;
        seed(&p);
        let t = tenant(&p, "acme").await;
        flags::set_flag(
            &p,
            &op(),
            &t,
            &key("sso"),
            &def(FlagType::Boolean, json!(true), json!([])),
            "r",
        )
        .await
        .unwrap();
        let set = flags::list_flags(&p, &t).await.unwrap();
        let sso = set
            .flags
            .iter()
            .find(|f| f.flag.key.as_str() == "sso")
            .unwrap();
        assert!(sso.overridden);

        let reverted = flags::remove_flag(&p, &op(), &t, &key("sso"), "r")
            .await
            .unwrap();
        assert!(reverted.created_or_reverted);
        let back = reverted.flag.unwrap();
        assert_eq!(
            (back.flag.value.clone(), back.overridden),
            (json!(false), false)
        );
        assert_eq!(
            kv_snapshot(&p.kv, &t)
                .await
                .unwrap()
                .flag("sso")
                .unwrap()
                .value,
            json!(false)
        );

        flags::set_flag(
            &p,
            &op(),
            &t,
            &key("beta"),
            &def(FlagType::String, json!("x"), json!([])),
            "r",
        )
        .await
        .unwrap();
        let gone = flags::remove_flag(&p, &op(), &t, &key("beta"), "r")
            .await
            .unwrap();
        assert!(gone.flag.is_none() && !gone.created_or_reverted);
        assert!(kv_snapshot(&p.kv, &t).await.unwrap().flag("beta").is_none());
        assert!(matches!(
            flags::remove_flag(&p, &op(), &t, &key("beta"), "r").await,
            Err(RemoveFlagError::FlagNotFound { .. })
        ));
    });
}

/// A tenant pending deletion refuses changes; a purged one is gone; an unknown one not found.
#[test]
fn changes_follow_the_tenant_lifecycle() {
    block_on(async {
        crate::edge::clear_isolate();
        let p = TestPlatform::new().await;
        seed(&p);
        let t = tenant(&p, "acme").await;
        let d = def(FlagType::Boolean, json!(true), json!([]));
        p.sql
            .execute(
                Stmt::new(
                    "UPDATE tenants SET status = 'pending_deletion', purge_after = 1 WHERE id = ?1",
                )
                .bind(t.as_str()),
            )
            .await
            .unwrap();
        assert!(matches!(
            flags::set_flag(&p, &op(), &t, &key("x"), &d, "r").await,
            Err(SetFlagError::TenantPendingDeletion { .. })
        ));
        p.sql
            .execute(
                Stmt::new("UPDATE tenants SET status = 'deleted', domain = NULL WHERE id = ?1")
                    .bind(t.as_str()),
            )
            .await
            .unwrap();
        assert!(matches!(
            flags::set_flag(&p, &op(), &t, &key("x"), &d, "r").await,
            Err(SetFlagError::TenantGone { .. })
        ));
        assert!(matches!(
            flags::list_flags(&p, &t).await,
            Err(ListFlagsError::TenantGone { .. })
        ));
        // Publishing a purged tenant removes its snapshot.
        assert_eq!(snapshot::publish(&p, &t).await, Ok(Published::Removed));
        assert!(kv_snapshot(&p.kv, &t).await.is_none());
        let other = TenantId::parse("00000000-0000-4000-8000-000000000000").unwrap();
        assert!(matches!(
            flags::list_flags(&p, &other).await,
            Err(ListFlagsError::TenantNotFound { .. })
        ));
    });
}

/// FR-FLAG-002: a lost KV write leaves the change in D1 (acknowledged) with `edge` pending; the
/// reconciler republishes it, after which nothing lags.
#[test]
fn fr_flag_002_reconciler_repairs_a_failed_snapshot_write() {
    block_on(async {
        crate::edge::clear_isolate();
        let inner = TestPlatform::new().await;
        seed(&inner);
        let p = FaultyPlatform::over(inner);
        let t = tenant(&p, "acme").await;
        p.kv.fail.set(true);
        let change = flags::set_flag(
            &p,
            &op(),
            &t,
            &key("dark-mode"),
            &def(FlagType::Boolean, json!(true), json!([])),
            "r",
        )
        .await
        .unwrap();
        assert!(change.edge.is_err());
        assert!(kv_snapshot(&p.kv, &t)
            .await
            .unwrap()
            .flag("dark-mode")
            .is_none());
        let (v, published) = versions(&p.inner, &t).await;
        assert!(published < v);

        // While KV still fails, the reconciler reports the error and keeps the lag.
        let (done, errors) = snapshot::reconcile(&p, 50).await.unwrap();
        assert_eq!((done, errors.len()), (0, 1));

        p.kv.fail.set(false);
        let (done, errors) = snapshot::reconcile(&p, 50).await.unwrap();
        assert_eq!((done, errors.len()), (1, 0));
        assert_eq!(versions(&p.inner, &t).await, (v, v));
        assert_eq!(
            kv_snapshot(&p.kv, &t)
                .await
                .unwrap()
                .flag("dark-mode")
                .unwrap()
                .value,
            json!(true)
        );
        assert_eq!(snapshot::reconcile(&p, 50).await.unwrap(), (0, vec![]));
    });
}

/// The hot path: a warm isolate reads neither D1 nor KV; the writer's own isolate sees its
/// change at once; a KV miss is rebuilt from D1 and published.
#[test]
fn load_serves_from_the_isolate_and_refills_from_d1() {
    block_on(async {
        crate::edge::clear_isolate();
        let inner = TestPlatform::new().await;
        seed(&inner);
        let p = FaultyPlatform::over(inner);
        let t = tenant(&p, "acme").await;
        let first = snapshot::load(&p, &t).await.unwrap().unwrap();
        p.take_statements();
        let reads = p.kv.reads.get();
        let again = snapshot::load(&p, &t).await.unwrap().unwrap();
        assert_eq!(first, again);
        assert_eq!((p.take_statements(), p.kv.reads.get()), (0, reads));

        flags::set_flag(
            &p,
            &op(),
            &t,
            &key("max_users"),
            &def(FlagType::Number, json!(10), json!([])),
            "r",
        )
        .await
        .unwrap();
        let after = snapshot::load(&p, &t).await.unwrap().unwrap();
        assert_eq!(after.flag("max_users").unwrap().value, json!(10));

        // Lost from KV (and from this isolate): rebuilt from D1 and put back.
        p.kv.inner.delete(&snapshot_key(&t)).await.unwrap();
        snapshot::forget(&t);
        let rebuilt = snapshot::load(&p, &t).await.unwrap().unwrap();
        assert_eq!(rebuilt.version, after.version);
        assert!(kv_snapshot(&p.kv, &t).await.is_some());

        // While the change may still be propagating, a second later the isolate reads the
        // change epoch and the snapshot again; once settled, only the epoch, once a second.
        p.inner.clock.advance(crate::edge::PROPAGATION_MS);
        let reads = p.kv.reads.get();
        snapshot::load(&p, &t).await.unwrap().unwrap();
        assert_eq!(p.kv.reads.get(), reads + 2);
        p.inner.clock.advance(crate::edge::FRESHNESS_MS);
        snapshot::load(&p, &t).await.unwrap().unwrap();
        snapshot::load(&p, &t).await.unwrap().unwrap();
        assert_eq!(p.kv.reads.get(), reads + 3);

        let unknown = TenantId::parse("00000000-0000-4000-8000-000000000000").unwrap();
        assert_eq!(snapshot::load(&p, &unknown).await.unwrap(), None);
    });
}

/// The snapshot lists the tenant's apps: enabling and disabling an app republishes it.
#[test]
fn the_snapshot_follows_the_tenant_apps() {
    block_on(async {
        crate::edge::clear_isolate();
        let p = TestPlatform::new().await;
        seed(&p);
        let t = tenant(&p, "acme").await;
        let hr = AppId::parse(HR).unwrap();
        apps::enable_for_tenant(&p, &op(), &t, &hr, "r")
            .await
            .unwrap();
        let snap = kv_snapshot(&p.kv, &t).await.unwrap();
        assert!(snap.serves_app(&hr));
        apps::disable_for_tenant(&p, &op(), &t, &hr, "r")
            .await
            .unwrap();
        let later = kv_snapshot(&p.kv, &t).await.unwrap();
        assert!(!later.serves_app(&hr));
        assert!(later.version > snap.version);
        let (v, published) = versions(&p, &t).await;
        assert_eq!(v, published);
    });
}

/// Definitions are checked field by field, naming the path of the bad field.
#[test]
fn definitions_are_checked() {
    let bad: &[(FlagType, Value, Value, &str)] = &[
        (FlagType::Boolean, json!("yes"), json!([]), "value"),
        (
            FlagType::Number,
            json!(1),
            json!([{"value": "x"}]),
            "rules[0].value",
        ),
        (FlagType::Boolean, json!(true), json!([{}]), "rules[0]"),
        (
            FlagType::Boolean,
            json!(true),
            json!([{"value": true, "rollout": {"variants": [{"value": true, "weight": 1}]}}]),
            "rules[0]",
        ),
        (
            FlagType::Boolean,
            json!(true),
            json!([{"conditions": [{"attribute": "a", "op": "eq", "values": []}], "value": true}]),
            "rules[0].conditions[0].values",
        ),
        (
            FlagType::Boolean,
            json!(true),
            json!([{"conditions": [{"attribute": "a", "op": "gt", "values": ["x"]}], "value": true}]),
            "rules[0].conditions[0].values[0]",
        ),
        (
            FlagType::Boolean,
            json!(true),
            json!([{"conditions": [{"attribute": "v", "op": "semver_gt", "values": ["1.0"]}], "value": true}]),
            "rules[0].conditions[0].values[0]",
        ),
        (
            FlagType::Boolean,
            json!(true),
            json!([{"conditions": [{"attribute": "a", "op": "eq", "values": [{"x": 1}]}], "value": true}]),
            "rules[0].conditions[0].values[0]",
        ),
        (
            FlagType::Boolean,
            json!(true),
            json!([{"rollout": {"variants": [{"value": true, "weight": 0}]}}]),
            "rules[0].rollout.variants",
        ),
        (
            FlagType::String,
            json!("a"),
            json!([{"rollout": {"variants": [{"value": 1, "weight": 1}]}}]),
            "rules[0].rollout.variants[0].value",
        ),
    ];
    for (t, value, rules, field) in bad {
        let rules = serde_json::from_value(rules.clone()).unwrap();
        let err = FlagDefinition::new(*t, value.clone(), true, None, rules).unwrap_err();
        assert_eq!(err.field, *field, "{err}");
    }
    for k in ["", "-x", "a b", "ü", &"k".repeat(129)] {
        assert!(FlagKey::parse(k).is_err(), "{k}");
    }
    for k in ["a", "new-checkout", "team.beta_2", &"k".repeat(128)] {
        assert!(FlagKey::parse(k).is_ok(), "{k}");
    }
}

/// A tenant's snapshot stays under the KV value limit: at most 1,000 flags of at most 16 KiB.
#[test]
fn flag_count_and_size_are_bounded() {
    block_on(async {
        let p = TestPlatform::new().await;
        seed(&p);
        let t = tenant(&p, "acme").await;
        // The two plan defaults plus 998 more make 1,000.
        for i in 0..998 {
            p.sql
                .execute(
                    Stmt::new(
                        "INSERT INTO feature_flags (id, tenant_id, key, type, value, created_at, updated_at)
                         VALUES (?1, ?2, ?3, 'boolean', 'true', 0, 0)",
                    )
                    .bind(format!("bulk-{i}"))
                    .bind(t.as_str())
                    .bind(format!("bulk-{i}")),
                )
                .await
                .unwrap();
        }
        let d = def(FlagType::Boolean, json!(true), json!([]));
        assert!(matches!(
            flags::set_flag(&p, &op(), &t, &key("one-more"), &d, "r").await,
            Err(SetFlagError::TooManyFlags { max: 1000 })
        ));
        // Replacing an existing flag is not adding one.
        assert!(flags::set_flag(&p, &op(), &t, &key("bulk-1"), &d, "r")
            .await
            .is_ok());
    });
    let values: Vec<Value> = (0..500)
        .map(|i| json!(format!("user-{i:05}@example.com")))
        .collect();
    // Two rules of 500 addresses each: about 25 KiB of rules.
    let rule = json!({"conditions": [{"attribute": "email", "op": "in", "values": values}], "value": true});
    let rules = json!([rule.clone(), rule]);
    let result = FlagDefinition::new(
        FlagType::Boolean,
        json!(false),
        true,
        None,
        serde_json::from_value(rules).unwrap(),
    );
    assert!(
        matches!(&result, Err(e) if e.field == "rules"),
        "a 25 KiB definition is refused"
    );
}

/// FR-FLAG-001, FR-TENANT-003: a plan default reaches the plan's tenants that do not override
/// it (updated or added, versions bumped, snapshots republished), and its removal takes the
/// followers' flags away; overrides and other plans stay as they are.
#[test]
fn plan_defaults_reach_the_plans_tenants() {
    block_on(async {
        let p = TestPlatform::new().await;
        seed(&p);
        let a = tenant(&p, "acme").await;
        let b = tenant(&p, "beta").await;
        // b overrides max_users; a follows the plan.
        flags::set_flag(
            &p,
            &op(),
            &b,
            &key("max_users"),
            &def(FlagType::Number, json!(99), json!([])),
            "r",
        )
        .await
        .unwrap();
        let free = Plan::parse("free").unwrap();
        let change = flags::set_plan_flag(
            &p,
            &op(),
            &free,
            &key("max_users"),
            FlagType::Number,
            &json!(10),
            true,
            None,
            "r",
        )
        .await
        .unwrap();
        assert_eq!(change.tenants_changed, 1);
        assert_eq!(change.tenants_published, 1);
        let value = |s: Snapshot, k: &str| s.flag(k).map(|f| f.value.clone());
        assert_eq!(
            value(kv_snapshot(&p.kv, &a).await.unwrap(), "max_users"),
            Some(json!(10))
        );
        assert_eq!(
            value(kv_snapshot(&p.kv, &b).await.unwrap(), "max_users"),
            Some(json!(99))
        );

        // A new default is added to every tenant of the plan.
        let added = flags::set_plan_flag(
            &p,
            &op(),
            &free,
            &key("audit_export"),
            FlagType::Boolean,
            &json!(true),
            true,
            Some("Export"),
            "r",
        )
        .await
        .unwrap();
        assert_eq!(added.tenants_changed, 2);
        for t in [&a, &b] {
            assert_eq!(
                value(kv_snapshot(&p.kv, t).await.unwrap(), "audit_export"),
                Some(json!(true))
            );
            let (v, published) = versions(&p, t).await;
            assert_eq!(v, published);
        }
        let listed = flags::list_plan_flags(&p, &free).await.unwrap();
        assert_eq!(listed.len(), 3);

        let removed = flags::remove_plan_flag(&p, &op(), &free, &key("max_users"), "r")
            .await
            .unwrap();
        assert_eq!(removed.tenants_changed, 1);
        assert_eq!(
            value(kv_snapshot(&p.kv, &a).await.unwrap(), "max_users"),
            None
        );
        assert_eq!(
            value(kv_snapshot(&p.kv, &b).await.unwrap(), "max_users"),
            Some(json!(99))
        );
        assert!(matches!(
            flags::remove_plan_flag(&p, &op(), &free, &key("max_users"), "r").await,
            Err(PlanFlagError::FlagNotFound { .. })
        ));
        assert!(matches!(
            flags::list_plan_flags(&p, &Plan::parse("platinum").unwrap()).await,
            Err(PlanFlagError::PlanNotFound { .. })
        ));
        let audit = p
            .sql
            .query(Stmt::new(
                "SELECT COUNT(*) AS n FROM audit_outbox WHERE action LIKE 'plan_flag.%'",
            ))
            .await
            .unwrap();
        assert_eq!(audit[0].i64("n").unwrap(), 3);
    });
}
