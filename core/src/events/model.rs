//! What managed apps report, validated field by field (API-BILL, API-LOG): billing events in
//! Edgeplane's own shape or as CloudEvents 1.0 JSON, audit events, single or in a batch of up
//! to [`MAX_BATCH`]. The first bad field rejects the whole batch, naming the event's index.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use crate::ports::StreamKind;
use crate::time::{format_rfc3339, parse_rfc3339};

/// Most events in one request (FR-BILL-002).
pub const MAX_BATCH: usize = 1000;
/// Largest serialised `metadata` object, in bytes.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Largest quantity of one billing event (below 2^53, so JSON numbers stay exact).
pub const MAX_QUANTITY: i64 = 1_000_000_000_000_000;
/// How far ahead of the server clock a timestamp may be (client clock skew).
pub const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;

/// A billing event as stored and exported (FR-BILL-001). Field order is the stored JSON's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingEvent {
    /// The client's event id (deduplication key).
    pub id: String,
    /// The tenant billed.
    pub tenant_id: String,
    /// The app that reported it (from its API key).
    pub app_id: String,
    /// The event type (e.g. `api.call`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// How many units, an integer (report the smallest unit).
    pub quantity: i64,
    /// When it happened, RFC 3339 UTC with milliseconds.
    pub timestamp: String,
    /// Free-form details (CloudEvents `source` lands here).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Json>,
}

/// An audit event as stored and exported (FR-LOG-001, spec Data Model, Audit Logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The event id (deduplication key; the outbox id for Edgeplane's own events).
    pub id: String,
    /// The tenant concerned (`_platform` for platform-wide events).
    pub tenant_id: String,
    /// The app that reported it; absent for Edgeplane's own events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// When it happened, RFC 3339 UTC with milliseconds.
    pub timestamp: String,
    /// Who acted.
    pub actor_id: String,
    /// What happened (the CSV export's `action`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// What was acted on.
    pub resource_id: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The client IP the app saw; absent for Edgeplane's own events (it stores no IPs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Free-form details.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Json>,
}

/// A billing event as a managed app reports it, in Edgeplane's own shape.
// The fields `parse_billing` reads. It reads them one by one (to name the first bad one), so
// this type only declares their schema; a test holds its fields to `BILLING_FIELDS`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BillingEvent)]
pub struct ReportedBillingEvent {
    /// Event id, the deduplication key: 1 to 128 printable ASCII characters without spaces.
    /// Without it the event takes `<Idempotency-Key>:<index>`.
    #[schema(pattern = "^[!-~]{1,128}$")]
    pub id: Option<String>,
    /// Required with an app-wide key; must be the key's tenant otherwise. Null is absent.
    #[schema(pattern = "^[!-~]{1,64}$")]
    pub tenant_id: Option<String>,
    /// The event type (e.g. `api.call`).
    #[serde(rename = "type")]
    #[schema(pattern = "^[A-Za-z0-9._:/-]{1,64}$")]
    pub event_type: String,
    /// How many units, an integer (report the smallest unit).
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub quantity: i64,
    /// When it happened (RFC 3339), at most a day ahead of the server's clock.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Free-form details: at most 4096 bytes as JSON.
    #[schema(schema_with = metadata_schema, required = false)]
    pub metadata: Map<String, Json>,
}

/// An audit event as a managed app reports it.
// The fields `parse_audit` reads. It reads them one by one (to name the first bad one), so this
// type only declares their schema; a test holds its fields to `AUDIT_FIELDS`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AuditEvent)]
pub struct ReportedAuditEvent {
    /// Event id, the deduplication key: 1 to 128 printable ASCII characters without spaces.
    /// Without it the event takes `<Idempotency-Key>:<index>`.
    #[schema(pattern = "^[!-~]{1,128}$")]
    pub id: Option<String>,
    /// Required with an app-wide key; must be the key's tenant otherwise. Null is absent.
    #[schema(pattern = "^[!-~]{1,64}$")]
    pub tenant_id: Option<String>,
    /// When it happened (RFC 3339), at most a day ahead of the server's clock.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Who acted: 1 to 256 characters, no control characters.
    #[schema(pattern = r"^[^\x00-\x1f\x7f-\x9f]{1,256}$")]
    pub actor_id: String,
    /// What happened (the CSV export's `action`).
    #[serde(rename = "type")]
    #[schema(pattern = "^[A-Za-z0-9._:/-]{1,64}$")]
    pub event_type: String,
    /// What was acted on: 1 to 256 characters, no control characters.
    #[schema(pattern = r"^[^\x00-\x1f\x7f-\x9f]{1,256}$")]
    pub resource_id: String,
    /// Whether the action succeeded.
    #[schema(schema_with = audit_outcome_schema)]
    pub outcome: String,
    /// IPv4 or IPv6 address.
    #[schema(schema_with = ip_schema)]
    pub ip: String,
    /// Free-form details: at most 4096 bytes as JSON.
    #[schema(schema_with = metadata_schema, required = false)]
    pub metadata: Map<String, Json>,
}

/// `metadata` of a reported event: any JSON object, or null.
fn metadata_schema() -> utoipa::openapi::Object {
    let mut o = crate::kernel::schema::free_form_object_or_null();
    o.description = Some(format!(
        "Free-form details: at most {MAX_METADATA_BYTES} bytes as JSON."
    ));
    o
}

/// The outcomes an audit event may report.
const AUDIT_OUTCOMES: [&str; 2] = ["success", "failure"];

fn ip_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let address = |f| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(f)))
    };
    AnyOfBuilder::new()
        .item(address(KnownFormat::Ipv4))
        .item(address(KnownFormat::Ipv6))
        .into()
}

fn audit_outcome_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::string_enum(&AUDIT_OUTCOMES)
}

/// One validated event, before the tenant is resolved and the id settled.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    /// The event id, if the event carried one.
    pub id: Option<String>,
    /// The tenant the event names, if any.
    pub tenant_id: Option<String>,
    /// When it happened (unix ms).
    pub occurred_at_ms: i64,
    /// The kind-specific fields.
    pub fields: EventFields,
}

/// The fields that differ by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum EventFields {
    /// A billing event.
    Billing {
        /// Event type.
        event_type: String,
        /// Units.
        quantity: i64,
        /// Details.
        metadata: Map<String, Json>,
    },
    /// An audit event.
    Audit {
        /// Who acted.
        actor_id: String,
        /// What happened.
        event_type: String,
        /// What was acted on.
        resource_id: String,
        /// `success` or `failure`.
        outcome: String,
        /// Client IP.
        ip: String,
        /// Details.
        metadata: Map<String, Json>,
    },
}

/// Why a request's events were refused: the first bad field, with the event's index in the
/// batch (0 for a single event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index}: {field}: {message}")]
pub struct InvalidEvent {
    /// Position in the batch.
    pub index: usize,
    /// The field, as named in the request (`events` for the envelope).
    pub field: String,
    /// What is wrong, without the value.
    pub message: String,
}

impl InvalidEvent {
    fn new(index: usize, field: &str, message: impl Into<String>) -> Self {
        InvalidEvent {
            index,
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Splits a request body into its events: `{events: [...]}`, a JSON array (a CloudEvents
/// batch), or one event object.
pub fn envelope(body: &Json) -> Result<&[Json], InvalidEvent> {
    let list = match body {
        Json::Array(list) => list.as_slice(),
        Json::Object(obj) => match obj.get("events") {
            Some(Json::Array(list)) if obj.len() == 1 => list.as_slice(),
            Some(_) if obj.len() == 1 => {
                return Err(InvalidEvent::new(0, "events", "must be an array of events"))
            }
            _ => std::slice::from_ref(body),
        },
        _ => {
            return Err(InvalidEvent::new(
                0,
                "events",
                "the body must be an event, an array of events or {\"events\": [...]}",
            ))
        }
    };
    if list.is_empty() {
        return Err(InvalidEvent::new(
            0,
            "events",
            "must hold at least one event",
        ));
    }
    if list.len() > MAX_BATCH {
        return Err(InvalidEvent::new(
            MAX_BATCH,
            "events",
            format!("at most {MAX_BATCH} events per request"),
        ));
    }
    Ok(list)
}

/// Validates every event of a request of `kind` at time `now_ms`; the first bad field rejects
/// them all.
pub fn parse_events(
    kind: StreamKind,
    body: &Json,
    now_ms: i64,
) -> Result<Vec<ParsedEvent>, InvalidEvent> {
    envelope(body)?
        .iter()
        .enumerate()
        .map(|(i, e)| match kind {
            StreamKind::Billing => parse_billing(i, e, now_ms),
            StreamKind::Audit => parse_audit(i, e, now_ms),
        })
        .collect()
}

/// Reads the fields of one event object, refusing unknown ones.
struct Fields<'a> {
    index: usize,
    obj: &'a Map<String, Json>,
}

impl<'a> Fields<'a> {
    fn new(index: usize, v: &'a Json, known: &[&str]) -> Result<Self, InvalidEvent> {
        let Json::Object(obj) = v else {
            return Err(InvalidEvent::new(index, "event", "must be a JSON object"));
        };
        if let Some(unknown) = obj.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(InvalidEvent::new(index, unknown, "is not a known field"));
        }
        Ok(Fields { index, obj })
    }

    fn err(&self, field: &str, message: impl Into<String>) -> InvalidEvent {
        InvalidEvent::new(self.index, field, message)
    }

    fn opt_str(&self, field: &str) -> Result<Option<&'a str>, InvalidEvent> {
        match self.obj.get(field) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(field, "must be a string")),
        }
    }

    fn str(&self, field: &str) -> Result<&'a str, InvalidEvent> {
        self.opt_str(field)?
            .ok_or_else(|| self.err(field, "is required"))
    }

    /// A token: 1 to `max` printable ASCII characters without spaces.
    fn token(&self, field: &str, max: usize) -> Result<Option<String>, InvalidEvent> {
        let Some(s) = self.opt_str(field)? else {
            return Ok(None);
        };
        if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(self.err(
                field,
                format!("must be 1 to {max} printable ASCII characters without spaces"),
            ));
        }
        Ok(Some(s.to_owned()))
    }

    fn required_token(&self, field: &str, max: usize) -> Result<String, InvalidEvent> {
        self.token(field, max)?
            .ok_or_else(|| self.err(field, "is required"))
    }

    /// Free text: 1 to `max` characters, none of them a control character (the schema's
    /// `maxLength` counts characters too).
    fn text(&self, field: &str, max: usize) -> Result<String, InvalidEvent> {
        let s = self.str(field)?;
        if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
            return Err(self.err(
                field,
                format!("must be 1 to {max} characters without control characters"),
            ));
        }
        Ok(s.to_owned())
    }

    fn event_type(&self, field: &str) -> Result<String, InvalidEvent> {
        let s = self.str(field)?;
        let ok = (1..=64).contains(&s.len())
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/')
            });
        if !ok {
            return Err(self.err(field, "must be 1 to 64 of A-Z a-z 0-9 . _ - : /"));
        }
        Ok(s.to_owned())
    }

    fn timestamp(&self, field: &str, now_ms: i64) -> Result<i64, InvalidEvent> {
        let ms = parse_rfc3339(self.str(field)?)
            .ok_or_else(|| self.err(field, "must be an RFC 3339 date-time"))?;
        if ms > now_ms.saturating_add(MAX_FUTURE_MS) {
            return Err(self.err(field, "is more than a day in the future"));
        }
        Ok(ms)
    }

    fn metadata(&self, field: &str) -> Result<Map<String, Json>, InvalidEvent> {
        match self.obj.get(field) {
            None | Some(Json::Null) => Ok(Map::new()),
            Some(Json::Object(m)) => {
                let size = serde_json::to_vec(m).map_or(usize::MAX, |v| v.len());
                if size > MAX_METADATA_BYTES {
                    return Err(self.err(
                        field,
                        format!("must serialise to at most {MAX_METADATA_BYTES} bytes"),
                    ));
                }
                Ok(m.clone())
            }
            Some(_) => Err(self.err(field, "must be a JSON object")),
        }
    }
}

/// A quantity: an integer from 0 to [`MAX_QUANTITY`].
fn quantity(f: &Fields<'_>, field: &str, v: Option<&Json>) -> Result<i64, InvalidEvent> {
    let n = match v {
        Some(Json::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64)),
        None | Some(Json::Null) => return Err(f.err(field, "is required")),
        Some(_) => None,
    };
    match n {
        Some(n) if (0..=MAX_QUANTITY).contains(&n) => Ok(n),
        _ => Err(f.err(
            field,
            format!("must be an integer from 0 to {MAX_QUANTITY}"),
        )),
    }
}

const BILLING_FIELDS: &[&str] = &[
    "id",
    "tenant_id",
    "type",
    "quantity",
    "timestamp",
    "metadata",
];

const CLOUDEVENT_FIELDS: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
];

/// One billing event, in Edgeplane's shape or as a CloudEvent (it has `specversion`).
fn parse_billing(index: usize, v: &Json, now_ms: i64) -> Result<ParsedEvent, InvalidEvent> {
    if v.get("specversion").is_some() {
        return parse_cloudevent(index, v, now_ms);
    }
    let f = Fields::new(index, v, BILLING_FIELDS)?;
    Ok(ParsedEvent {
        id: f.token("id", 128)?,
        tenant_id: f.token("tenant_id", 64)?,
        occurred_at_ms: f.timestamp("timestamp", now_ms)?,
        fields: EventFields::Billing {
            event_type: f.event_type("type")?,
            quantity: quantity(&f, "quantity", f.obj.get("quantity"))?,
            metadata: f.metadata("metadata")?,
        },
    })
}

/// A CloudEvents 1.0 billing event (OpenMeter's shape): `subject` names the tenant,
/// `data.quantity` (or `data.value`) the units; `source` is kept in the metadata. Extension
/// attributes are refused, like any unknown field.
fn parse_cloudevent(index: usize, v: &Json, now_ms: i64) -> Result<ParsedEvent, InvalidEvent> {
    let f = Fields::new(index, v, CLOUDEVENT_FIELDS)?;
    if f.str("specversion")? != "1.0" {
        return Err(f.err("specversion", "must be \"1.0\""));
    }
    let source = f.text("source", 256)?;
    let data = match f.obj.get("data") {
        Some(Json::Object(d)) => d,
        Some(_) => return Err(f.err("data", "must be a JSON object")),
        None => return Err(f.err("data", "is required")),
    };
    let (qfield, qvalue) = match (data.get("quantity"), data.get("value")) {
        (Some(q), _) => ("data.quantity", Some(q)),
        (None, v) => ("data.value", v),
    };
    let mut metadata = Map::new();
    metadata.insert("source".into(), source.into());
    Ok(ParsedEvent {
        id: Some(f.required_token("id", 128)?),
        tenant_id: f.token("subject", 64)?,
        occurred_at_ms: f.timestamp("time", now_ms)?,
        fields: EventFields::Billing {
            event_type: f.event_type("type")?,
            quantity: quantity(&f, qfield, qvalue)?,
            metadata,
        },
    })
}

const AUDIT_FIELDS: &[&str] = &[
    "id",
    "tenant_id",
    "timestamp",
    "actor_id",
    "type",
    "resource_id",
    "outcome",
    "ip",
    "metadata",
];

/// One audit event (API-LOG: timestamp, actor, type, resource, outcome, IP).
fn parse_audit(index: usize, v: &Json, now_ms: i64) -> Result<ParsedEvent, InvalidEvent> {
    let f = Fields::new(index, v, AUDIT_FIELDS)?;
    let outcome = f.str("outcome")?;
    if !AUDIT_OUTCOMES.contains(&outcome) {
        return Err(f.err("outcome", "must be success or failure"));
    }
    let ip = f
        .str("ip")?
        .parse::<IpAddr>()
        .map_err(|_| f.err("ip", "must be an IPv4 or IPv6 address"))?;
    Ok(ParsedEvent {
        id: f.token("id", 128)?,
        tenant_id: f.token("tenant_id", 64)?,
        occurred_at_ms: f.timestamp("timestamp", now_ms)?,
        fields: EventFields::Audit {
            actor_id: f.text("actor_id", 256)?,
            event_type: f.event_type("type")?,
            resource_id: f.text("resource_id", 256)?,
            outcome: outcome.to_owned(),
            ip: ip.to_string(),
            metadata: f.metadata("metadata")?,
        },
    })
}

impl ParsedEvent {
    /// The stored JSON body once the id, tenant and app are settled.
    pub fn body(&self, id: &str, tenant_id: &str, app_id: &str) -> Result<String, String> {
        let timestamp = format_rfc3339(self.occurred_at_ms);
        let r = match &self.fields {
            EventFields::Billing {
                event_type,
                quantity,
                metadata,
            } => serde_json::to_string(&BillingEvent {
                id: id.to_owned(),
                tenant_id: tenant_id.to_owned(),
                app_id: app_id.to_owned(),
                event_type: event_type.clone(),
                quantity: *quantity,
                timestamp,
                metadata: metadata.clone(),
            }),
            EventFields::Audit {
                actor_id,
                event_type,
                resource_id,
                outcome,
                ip,
                metadata,
            } => serde_json::to_string(&AuditEvent {
                id: id.to_owned(),
                tenant_id: tenant_id.to_owned(),
                app_id: Some(app_id.to_owned()),
                timestamp,
                actor_id: actor_id.clone(),
                event_type: event_type.clone(),
                resource_id: resource_id.clone(),
                outcome: outcome.clone(),
                ip: Some(ip.clone()),
                metadata: metadata.clone(),
            }),
        };
        r.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::START_MS;

    fn billing() -> Json {
        json!({"id": "e1", "type": "api.call", "quantity": 3, "timestamp": "2026-01-01T00:00:00Z"})
    }

    fn audit() -> Json {
        json!({"id": "a1", "timestamp": "2026-01-01T00:00:00Z", "actor_id": "user:1",
               "type": "doc.delete", "resource_id": "doc:9", "outcome": "success", "ip": "10.0.0.1"})
    }

    fn with(mut v: Json, field: &str, value: Json) -> Json {
        match value {
            Json::Null => v.as_object_mut().unwrap().remove(field),
            value => v.as_object_mut().unwrap().insert(field.into(), value),
        };
        v
    }

    /// API-BILL / FR-BILL-002: every field is checked and the error names it.
    #[test]
    fn billing_fields_are_validated() {
        let cases: &[(&str, Json, &str)] = &[
            ("id", json!(""), "id"),
            ("id", json!("a b"), "id"),
            ("id", json!(7), "id"),
            ("type", Json::Null, "type"),
            ("type", json!("bad type"), "type"),
            ("quantity", json!(-1), "quantity"),
            ("quantity", json!(1.5), "quantity"),
            ("quantity", json!("3"), "quantity"),
            ("quantity", json!(MAX_QUANTITY + 1), "quantity"),
            ("quantity", Json::Null, "quantity"),
            ("timestamp", json!("yesterday"), "timestamp"),
            ("timestamp", json!("2026-01-03T00:00:01Z"), "timestamp"),
            ("timestamp", Json::Null, "timestamp"),
            ("metadata", json!([1]), "metadata"),
            (
                "metadata",
                json!({"x": "y".repeat(MAX_METADATA_BYTES)}),
                "metadata",
            ),
            ("tenant_id", json!("x".repeat(65)), "tenant_id"),
            ("extra", json!(1), "extra"),
        ];
        for (field, value, named) in cases {
            let e = parse_events(
                StreamKind::Billing,
                &with(billing(), field, value.clone()),
                START_MS,
            )
            .unwrap_err();
            assert_eq!((e.index, e.field.as_str()), (0, *named), "{field}={value}");
        }
        let ok = parse_events(StreamKind::Billing, &billing(), START_MS).unwrap();
        assert_eq!(ok[0].occurred_at_ms, START_MS);
        assert_eq!(ok[0].id.as_deref(), Some("e1"));
    }

    /// API-LOG / FR-LOG-001: the audit fields the spec names are required and checked.
    #[test]
    fn audit_fields_are_validated() {
        for field in [
            "timestamp",
            "actor_id",
            "type",
            "resource_id",
            "outcome",
            "ip",
        ] {
            let e = parse_events(
                StreamKind::Audit,
                &with(audit(), field, Json::Null),
                START_MS,
            )
            .unwrap_err();
            assert_eq!(e.field, field);
            assert_eq!(e.message, "is required");
        }
        for (field, value) in [
            ("outcome", json!("maybe")),
            ("ip", json!("10.0.0.256")),
            ("actor_id", json!("a\nb")),
            ("resource_id", json!("")),
        ] {
            let e = parse_events(StreamKind::Audit, &with(audit(), field, value), START_MS)
                .unwrap_err();
            assert_eq!(e.field, field);
        }
        let ok = parse_events(
            StreamKind::Audit,
            &with(audit(), "ip", json!("::1")),
            START_MS,
        );
        assert!(ok.is_ok());
    }

    /// One bad event rejects the batch and its index is named.
    #[test]
    fn a_batch_names_the_bad_index() {
        let batch =
            json!({"events": [billing(), billing(), with(billing(), "quantity", json!(-5))]});
        let e = parse_events(StreamKind::Billing, &batch, START_MS).unwrap_err();
        assert_eq!((e.index, e.field.as_str()), (2, "quantity"));
        let too_many = json!({"events": vec![billing(); MAX_BATCH + 1]});
        assert_eq!(
            parse_events(StreamKind::Billing, &too_many, START_MS)
                .unwrap_err()
                .field,
            "events"
        );
        let full = json!({"events": vec![billing(); MAX_BATCH]});
        assert_eq!(
            parse_events(StreamKind::Billing, &full, START_MS)
                .unwrap()
                .len(),
            MAX_BATCH
        );
        for bad in [
            json!({"events": []}),
            json!({"events": 3}),
            json!(3),
            json!([]),
        ] {
            assert_eq!(
                parse_events(StreamKind::Billing, &bad, START_MS)
                    .unwrap_err()
                    .field,
                "events"
            );
        }
    }

    /// CloudEvents 1.0 JSON (OpenMeter's format) maps onto billing events.
    #[test]
    fn cloudevents_are_accepted() {
        let ce = json!({"specversion": "1.0", "id": "ce-1", "source": "svc/api", "type": "tokens",
                        "subject": "t1", "time": "2026-01-01T00:00:00Z", "data": {"value": 42}});
        let batch = json!([ce.clone(), with(ce.clone(), "data", json!({"quantity": 7}))]);
        let parsed = parse_events(StreamKind::Billing, &batch, START_MS).unwrap();
        assert_eq!(parsed[0].tenant_id.as_deref(), Some("t1"));
        match &parsed[1].fields {
            EventFields::Billing {
                quantity, metadata, ..
            } => {
                assert_eq!(*quantity, 7);
                assert_eq!(metadata["source"], "svc/api");
            }
            other => panic!("{other:?}"),
        }
        for (field, value, named) in [
            ("specversion", json!("0.3"), "specversion"),
            ("data", json!({}), "data.value"),
            ("id", Json::Null, "id"),
            ("time", json!("now"), "time"),
            ("source", json!(""), "source"),
        ] {
            let e = parse_events(
                StreamKind::Billing,
                &with(ce.clone(), field, value),
                START_MS,
            )
            .unwrap_err();
            assert_eq!(e.field, named);
        }
    }

    #[test]
    fn bodies_have_a_fixed_shape() {
        let p = &parse_events(StreamKind::Billing, &billing(), START_MS).unwrap()[0];
        assert_eq!(
            p.body("e1", "t1", "app1").unwrap(),
            r#"{"id":"e1","tenant_id":"t1","app_id":"app1","type":"api.call","quantity":3,"timestamp":"2026-01-01T00:00:00.000Z"}"#
        );
    }

    /// FR-LOG-001: a metadata number reads back from the stored body as it was validated, so an
    /// export shows what the archive holds. This integer has no exact f64: the body stores the
    /// nearest one, `5.1111111111111115e59`, which must read back as itself.
    #[test]
    fn stored_metadata_numbers_read_back_unchanged() {
        let request = r#"{"timestamp": "2026-01-01T00:00:00Z", "actor_id": "u", "type": "x",
            "resource_id": "r", "outcome": "success", "ip": "192.0.2.1",
            "metadata": {"n": 511111111111111111111111111111111111111111111111111111111111}}"#;
        let body: Json = serde_json::from_str(request).unwrap();
        let p = &parse_events(StreamKind::Audit, &body, START_MS).unwrap()[0];
        let EventFields::Audit { metadata, .. } = &p.fields else {
            panic!("an audit event");
        };
        assert_eq!(metadata["n"].as_f64(), Some(5.111_111_111_111_111_5e59));
        let stored: AuditEvent =
            serde_json::from_str(&p.body("a1", "t1", "app1").unwrap()).unwrap();
        assert_eq!(&stored.metadata, metadata);
    }

    /// The documented event fields are the ones the parsers know.
    #[test]
    fn reported_event_schemas_name_the_fields_the_parsers_read() {
        use utoipa::openapi::{schema::Schema, RefOr};
        use utoipa::PartialSchema;
        fn properties(schema: RefOr<Schema>) -> Vec<String> {
            let RefOr::T(Schema::Object(object)) = schema else {
                panic!("an object schema");
            };
            let mut names: Vec<String> = object.properties.keys().cloned().collect();
            names.sort();
            names
        }
        fn sorted(fields: &[&str]) -> Vec<String> {
            let mut names: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
            names.sort();
            names
        }
        assert_eq!(
            properties(ReportedBillingEvent::schema()),
            sorted(BILLING_FIELDS)
        );
        assert_eq!(
            properties(ReportedAuditEvent::schema()),
            sorted(AUDIT_FIELDS)
        );
    }
}
