//! OFREP evaluation request bodies from managed apps: the route's body parsing, then the bulk
//! and single evaluations of a fixed flag set (every operator, rollouts by the targeting key
//! and by another attribute, a disabled flag) for the context it yields.
//!
//! Beyond "no panic": the bulk body is JSON holding one evaluation per flag, each the same as
//! that flag's single evaluation, and the entity tag of a context is stable.

#![no_main]

use std::sync::LazyLock;

use edgeplane_core::flags::{evaluate, ofrep, Snapshot};
use edgeplane_core::http::fuzzing;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

static SNAPSHOT: LazyLock<Snapshot> = LazyLock::new(|| {
    let flag = |key: &str, ty: &str, value: Value, enabled: bool, rules: Value| {
        json!({"key": key, "type": ty, "value": value, "enabled": enabled, "rules": rules,
               "version": 1})
    };
    let flags = vec![
        flag(
            "banner",
            "json",
            json!({"text": "hi", "n": [1, 2]}),
            false,
            json!([]),
        ),
        flag(
            "beta",
            "boolean",
            json!(false),
            true,
            json!([
                {"conditions": [{"attribute": "email", "op": "ends_with", "values": ["@acme.com"]},
                                {"attribute": "country", "op": "not_in", "values": ["de", "fr"]}],
                 "value": true},
                {"name": "staff", "conditions": [
                    {"attribute": "role", "op": "eq", "values": ["staff", 1, true]},
                    {"attribute": "name", "op": "starts_with", "values": ["a"]},
                    {"attribute": "name", "op": "contains", "values": ["n"]},
                    {"attribute": "team", "op": "neq", "values": ["ops"]}],
                 "value": true}
            ]),
        ),
        flag(
            "checkout-v2",
            "boolean",
            json!(false),
            true,
            json!([{"rollout": {"variants": [
                {"variant": "on", "value": true, "weight": 25},
                {"value": false, "weight": 75}]}}]),
        ),
        flag(
            "new-ui",
            "string",
            json!("classic"),
            true,
            json!([
                {"conditions": [{"attribute": "appVersion", "op": "semver_gte", "values": ["2.3.0"]},
                                {"attribute": "appVersion", "op": "semver_lt", "values": ["3.0.0-rc.1"]}],
                 "value": "blue"},
                {"conditions": [{"attribute": "appVersion", "op": "semver_eq", "values": ["1.0.0"]}],
                 "value": "legacy"},
                {"conditions": [{"attribute": "appVersion", "op": "semver_gt", "values": ["v9.9.9"]}],
                 "value": "future"},
                {"conditions": [{"attribute": "appVersion", "op": "semver_lte", "values": ["0.1.0"]}],
                 "value": "ancient"},
                {"rollout": {"bucket_by": "orgId", "seed": "ui", "variants": [
                    {"variant": "a", "value": "a", "weight": 1},
                    {"variant": "b", "value": "b", "weight": 0},
                    {"variant": "c", "value": "c", "weight": 4294967295u32}]}}
            ]),
        ),
        flag(
            "plan-limits",
            "number",
            json!(10),
            true,
            json!([
                {"conditions": [{"attribute": "seats", "op": "gt", "values": [100]}], "value": 1000},
                {"conditions": [{"attribute": "seats", "op": "lte", "values": ["10.5"]},
                                {"attribute": "seats", "op": "gte", "values": [-1e300]}],
                 "value": 5},
                {"conditions": [{"attribute": "seats", "op": "lt", "values": [0.001]}], "value": 0},
                {"conditions": [{"attribute": "plan", "op": "in", "values": ["pro", 2.5]}],
                 "value": 50}
            ]),
        ),
    ];
    serde_json::from_value(json!({
        "v": 1,
        "tenant_id": "0b5e3c2a-7f4d-4a51-9c1e-2d6f8a9b0c11",
        "version": 7,
        "apps": ["6a1f0d3e-2b4c-4d5e-8f90-a1b2c3d4e5f6"],
        "flags": flags,
    }))
    .expect("the fixed snapshot")
});

fuzz_target!(|data: &[u8]| {
    let Ok(context) = fuzzing::ofrep_context(data) else {
        return;
    };
    let snap = &*SNAPSHOT;
    let etag = ofrep::bulk_etag(snap, &context);
    assert_eq!(etag, ofrep::bulk_etag(snap, &context));
    let body = ofrep::bulk_body(snap, &context).expect("an evaluation serialises");
    let body: Value = serde_json::from_slice(&body).expect("the bulk body is JSON");
    let listed = body["flags"].as_array().expect("a list of evaluations");
    assert_eq!(listed.len(), snap.flags.len());
    for (flag, listed) in snap.flags.iter().zip(listed) {
        let one = ofrep::evaluation(flag.key.as_str(), evaluate(flag, &context));
        let one = serde_json::to_value(one).expect("an evaluation serialises");
        assert_eq!(&one, listed, "{}", flag.key.as_str());
        assert!(snap.flag(flag.key.as_str()).is_some());
    }
});
