//! The audit archive's CSV writer on arbitrary cells and audit events (structured input from
//! `arbitrary`): rows of any strings, then a header and one event row as the export writes them.
//!
//! Properties, read back with an RFC 4180 reader of this file's own: the output is exactly
//! the rows written, each with its number of fields; every field reads back as the cell
//! written, or as that cell behind a `'`; and no field a spreadsheet could run as a formula
//! reads back without that `'`.

#![no_main]

use arbitrary::Arbitrary;
use edgeplane_core::events::archive::ArchivedRecord;
use edgeplane_core::events::csv;
use edgeplane_core::events::model::AuditEvent;
use libfuzzer_sys::fuzz_target;

/// What a reporter controls in an audit event, and the record's numbers.
#[derive(Arbitrary, Debug)]
struct Event {
    id: String,
    tenant_id: String,
    app_id: Option<String>,
    timestamp: String,
    actor_id: String,
    event_type: String,
    resource_id: String,
    outcome: String,
    ip: Option<String>,
    metadata: Vec<(String, String)>,
    seq: i64,
    received_at: i64,
    hash: String,
}

#[derive(Arbitrary, Debug)]
struct Input {
    rows: Vec<Vec<String>>,
    event: Event,
}

/// Records of RFC 4180 text (CRLF-ended records, `"`-quoted fields with `""` for a quote);
/// `None` if the text is not such records.
fn read_records(text: &str) -> Option<Vec<Vec<String>>> {
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let mut fields = Vec::new();
        loop {
            let mut field = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next()? {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        '"' => break,
                        c => field.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if matches!(c, ',' | '\r' | '\n' | '"') {
                        break;
                    }
                    field.push(c);
                    chars.next();
                }
            }
            fields.push(field);
            match chars.next()? {
                ',' => continue,
                '\r' if chars.next()? == '\n' => break,
                _ => return None,
            }
        }
        records.push(fields);
    }
    Some(records)
}

/// Whether a spreadsheet could run `field` as a formula: its first visible character is one
/// that starts a formula, or a tab or CR comes before it (FR-LOG-002).
fn live_formula(field: &str) -> bool {
    let blank = |c: char| c.is_whitespace() || matches!(c, '\u{200b}' | '\u{2060}' | '\u{feff}');
    let visible = field.trim_start_matches(blank);
    let lead = &field[..field.len() - visible.len()];
    lead.contains(['\t', '\r']) || visible.starts_with(['=', '+', '-', '@'])
}

/// One cell read back: the cell, or the cell behind a `'`, and never a live formula.
fn check_field(written: &str, read: &str) {
    if read != written {
        assert_eq!(
            read.strip_prefix('\''),
            Some(written),
            "{written:?} read as {read:?}"
        );
    }
    assert!(
        read.starts_with('\'') || !live_formula(read),
        "{written:?} reads back as a live formula {read:?}"
    );
}

fuzz_target!(|input: Input| {
    let mut out = String::new();
    for cells in &input.rows {
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        csv::row(&mut out, &cells);
    }
    let records = read_records(&out).expect("the writer's output is RFC 4180 records");
    assert_eq!(records.len(), input.rows.len());
    for (written, read) in input.rows.iter().zip(&records) {
        // No cells still make a record: one empty field.
        let want = written.len().max(1);
        assert_eq!(read.len(), want, "{written:?} read as {read:?}");
        for (w, r) in written.iter().zip(read) {
            check_field(w, r);
        }
    }

    let e = input.event;
    let event = AuditEvent {
        id: e.id,
        tenant_id: e.tenant_id,
        app_id: e.app_id,
        timestamp: e.timestamp,
        actor_id: e.actor_id,
        event_type: e.event_type,
        resource_id: e.resource_id,
        outcome: e.outcome,
        ip: e.ip,
        metadata: e.metadata.into_iter().map(|(k, v)| (k, v.into())).collect(),
    };
    let record = ArchivedRecord {
        seq: e.seq,
        id: event.id.clone(),
        occurred_at: 0,
        received_at: e.received_at,
        prev_hash: String::new(),
        hash: e.hash,
        body: String::new(),
    };
    let mut export = String::new();
    csv::header(&mut export);
    csv::audit_row(&mut export, &record, &event);
    let records = read_records(&export).expect("the export is RFC 4180 records");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0], csv::HEADER);
    assert_eq!(records[1].len(), csv::HEADER.len());
    for (written, read) in [&event.tenant_id, &event.actor_id, &event.resource_id]
        .into_iter()
        .zip([&records[1][0], &records[1][5], &records[1][7]])
    {
        check_field(written, read);
    }
    for field in &records[1] {
        assert!(field.starts_with('\'') || !live_formula(field), "{field:?}");
    }
});
