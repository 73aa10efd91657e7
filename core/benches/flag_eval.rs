//! Time spent inside the OFREP bulk handler per request, natively: evaluating every flag of a
//! snapshot for one context and serializing the body, plus the ETag hash. The same flag sets as
//! `bench/flags.mjs` (5 and 100 flags). Prints figures for bench/RESULTS.md; asserts nothing.
//!
//!   cargo bench -p edgeplane-core --bench flag_eval

// A benchmark measures wall time: the workspace bans `Instant::now` for core's sake (the Clock
// port), not for a native benchmark binary.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use edgeplane_core::apps::AppId;
use edgeplane_core::flags::model::{Flag, FlagKey, FlagType};
use edgeplane_core::flags::{ofrep, Context, Snapshot};
use edgeplane_core::tenants::TenantId;
use serde_json::{json, Value};

fn flag(i: usize, size: usize) -> Flag {
    let (t, value, rules) = match i % 4 {
        0 => (FlagType::Boolean, json!(true), json!([])),
        1 => (FlagType::String, json!(format!("value-{i}")), json!([])),
        2 => (
            FlagType::Boolean,
            json!(false),
            json!([{"name": "staff", "conditions": [{"attribute": "email", "op": "ends_with", "values": ["@shop.example"]}], "value": true}]),
        ),
        _ => (
            FlagType::Boolean,
            json!(false),
            json!([{"rollout": {"variants": [{"variant": "on", "value": true, "weight": 20}, {"variant": "off", "value": false, "weight": 80}]}}]),
        ),
    };
    Flag {
        key: FlagKey::parse(&format!("f{size}-{i:03}")).unwrap(),
        flag_type: t,
        value,
        enabled: true,
        rules: serde_json::from_value(rules).unwrap(),
        version: 1,
    }
}

fn snapshot(size: usize) -> Snapshot {
    Snapshot {
        v: 1,
        tenant_id: TenantId::parse("01a20179-e1ad-7a7c-bb37-06da8fbc0daf").unwrap(),
        version: 7,
        apps: vec![AppId::parse("01a20179-e1ad-7a7c-bb37-06da8fbc0dae").unwrap()],
        flags: (0..size).map(|i| flag(i, size)).collect(),
    }
}

fn main() {
    let ctx: Context = match json!({"targetingKey": "user-42", "email": "ana@shop.example"}) {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    println!("OFREP bulk handler work per request (evaluate + serialize + ETag), native, release");
    println!(
        "{:>6} {:>10} {:>10} {:>10} {:>8}",
        "flags", "mean", "p50", "p99", "bytes"
    );
    for size in [5usize, 100] {
        let snap = snapshot(size);
        let iterations = if size <= 5 { 200_000 } else { 20_000 };
        let mut samples = Vec::with_capacity(iterations);
        let mut bytes = 0;
        for _ in 0..iterations / 10 {
            black_box(ofrep::bulk_body(&snap, &ctx).unwrap());
        }
        let start = Instant::now();
        for _ in 0..iterations {
            let t = Instant::now();
            let tag = ofrep::bulk_etag(black_box(&snap), black_box(&ctx));
            let body = ofrep::bulk_body(black_box(&snap), black_box(&ctx)).unwrap();
            bytes = body.len();
            black_box((tag, body));
            samples.push(t.elapsed().as_nanos() as u64);
        }
        let mean = start.elapsed().as_nanos() as u64 / iterations as u64;
        samples.sort_unstable();
        let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
        let us = |ns: u64| format!("{:.2} µs", ns as f64 / 1000.0);
        println!(
            "{size:>6} {:>10} {:>10} {:>10} {bytes:>8}",
            us(mean),
            us(pct(0.50)),
            us(pct(0.99))
        );
    }
}
