//! Event batches from managed apps: the route's JSON body parsing, then ingestion (validation
//! of every event, the tenant of the batch, the ids, the stored bodies) over the fixed
//! platform, for billing or audit events, with a tenant-bound or an app-wide key, with or
//! without an `Idempotency-Key`.
//!
//! Input: one byte of switches (bit 0 audit, bit 1 app-wide key, bit 2 idempotency key), then
//! the request body.
//!
//! Beyond "no panic": an accepted batch is exactly the events validation accepts, and each
//! stored body reads back as the event it was made from, at the same instant.

#![no_main]

use edgeplane_core::events::ingest::{self, Reporter};
use edgeplane_core::events::model::{self, AuditEvent, BillingEvent, EventFields};
use edgeplane_core::http::{json, Request};
use edgeplane_core::ports::StreamKind;
use edgeplane_core::time::parse_rfc3339;
use edgeplane_fuzz::{block_on, FixedPlatform, NOW_MS, TENANT};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const APP: &str = "6a1f0d3e-2b4c-4d5e-8f90-a1b2c3d4e5f6";

thread_local! {
    static PLATFORM: FixedPlatform = FixedPlatform::new();
}

/// A stored timestamp names the instant validated. Instants before the epoch are left out:
/// the API checks the year as written, so `1970-01-01T00:30:00+01:00` is accepted and stored as
/// a 1969 time, which it would not accept back.
fn same_instant(stored: &str, occurred_at_ms: i64) {
    if occurred_at_ms >= 0 {
        assert_eq!(parse_rfc3339(stored), Some(occurred_at_ms), "{stored}");
    }
}

/// Each validated event's stored body reads back as the same event.
fn bodies_round_trip(kind: StreamKind, body: &Value) {
    let Ok(events) = model::parse_events(kind, body, NOW_MS) else {
        return;
    };
    for (i, e) in events.iter().enumerate() {
        let id = e.id.clone().unwrap_or_else(|| format!("key:{i}"));
        let stored = e
            .body(&id, TENANT, APP)
            .expect("a validated event serialises");
        match &e.fields {
            EventFields::Billing {
                event_type,
                quantity,
                metadata,
            } => {
                let back: BillingEvent = serde_json::from_str(&stored).expect("a billing body");
                assert_eq!(
                    (&back.id, &back.event_type, back.quantity, &back.metadata),
                    (&id, event_type, *quantity, metadata)
                );
                same_instant(&back.timestamp, e.occurred_at_ms);
            }
            EventFields::Audit {
                actor_id,
                event_type,
                resource_id,
                outcome,
                ip,
                metadata,
            } => {
                let back: AuditEvent = serde_json::from_str(&stored).expect("an audit body");
                assert_eq!(
                    (
                        &back.actor_id,
                        &back.event_type,
                        &back.resource_id,
                        &back.outcome
                    ),
                    (actor_id, event_type, resource_id, outcome)
                );
                assert_eq!((back.ip.as_ref(), &back.metadata), (Some(ip), metadata));
                same_instant(&back.timestamp, e.occurred_at_ms);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&switches, body)) = data.split_first() else {
        return;
    };
    let kind = if switches & 1 == 0 {
        StreamKind::Billing
    } else {
        StreamKind::Audit
    };
    let reporter = Reporter {
        app_id: APP.to_owned(),
        tenant_id: (switches & 2 == 0).then(|| TENANT.to_owned()),
    };
    let idempotency_key = (switches & 4 != 0).then_some("retry-7");
    let mut req = Request::new(body.to_vec());
    req.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    let Ok(body) = json::parse_body::<Value>(&req) else {
        return;
    };
    bodies_round_trip(kind, &body);
    let ingested =
        PLATFORM.with(|p| block_on(ingest::ingest(p, kind, &reporter, &body, idempotency_key)));
    if let Ok(out) = ingested {
        let parsed = model::parse_events(kind, &body, NOW_MS).expect("an ingested batch is valid");
        assert_eq!(out.received as usize, parsed.len());
        assert_eq!(out.accepted, out.received);
    }
});
