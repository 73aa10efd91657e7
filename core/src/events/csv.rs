//! The auditor's CSV export format (FR-LOG-002): RFC 4180 records whose cells cannot run as
//! spreadsheet formulas. A business rule of the audit export, kept out of the HTTP layer so
//! that a unit test can pin it without a request.

use serde_json::Value as Json;

use super::archive::ArchivedRecord;
use super::model::AuditEvent;
use crate::time::format_rfc3339;

/// The audit CSV export's columns, in order.
pub const HEADER: &[&str] = &[
    "tenant_id",
    "seq",
    "event_id",
    "timestamp",
    "received_at",
    "actor_id",
    "action",
    "resource_id",
    "outcome",
    "ip",
    "app_id",
    "metadata",
    "hash",
];

/// One CSV cell (RFC 4180): quoted when it holds a comma, quote, CR or LF, quotes doubled.
/// A cell a spreadsheet would read as a formula is prefixed with `'` first (OWASP CSV
/// injection): one whose first character after any leading whitespace is `=`, `+`, `-` or `@`
/// (importers trim leading blanks before deciding, so ` =1+1` is as live as `=1+1`), and one
/// whose leading whitespace holds a tab or CR (some importers start a new cell or a formula
/// there).
pub fn cell(v: &str) -> String {
    let neutral = if starts_formula(v) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if neutral.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// Whether a spreadsheet could take `v` for a formula (see [`cell`]).
fn starts_formula(v: &str) -> bool {
    let rest = v.trim_start_matches(is_leading_blank);
    let lead = &v[..v.len() - rest.len()];
    lead.contains(['\t', '\r']) || rest.starts_with(['=', '+', '-', '@'])
}

/// Characters a spreadsheet may drop before the first visible one: Unicode whitespace (space,
/// tab, CR, LF, no-break and ideographic spaces) and the invisible zero-width space, word
/// joiner and byte-order mark, which are not whitespace to Rust but show as nothing.
fn is_leading_blank(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200b}' | '\u{2060}' | '\u{feff}')
}

/// Appends one CSV record (cells joined by `,`, ended by CRLF as RFC 4180 asks).
pub fn row(out: &mut String, cells: &[&str]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&cell(c));
    }
    out.push_str("\r\n");
}

/// Appends the header record.
pub fn header(out: &mut String) {
    row(out, HEADER);
}

/// The records of a CSV text, the reader of what [`row`] writes (RFC 4180): a quoted cell may
/// hold commas, doubled quotes and line breaks; a record ends with CRLF or LF, and a final line
/// break ends the last record rather than starting an empty one. Cells keep the `'` that
/// [`cell`] put before a formula; [`unneutralised`] takes it off.
pub fn records(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    // Whether the record under way has begun: a line break after nothing ends no record.
    let mut begun = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => record.push(std::mem::take(&mut cell)),
            ('\r', false) if chars.peek() == Some(&'\n') => continue,
            ('\n', false) => {
                record.push(std::mem::take(&mut cell));
                out.push(std::mem::take(&mut record));
                begun = false;
                continue;
            }
            _ => cell.push(c),
        }
        begun = true;
    }
    if begun {
        record.push(cell);
        out.push(record);
    }
    out
}

/// A cell as it was before [`cell`] made it safe for spreadsheets: without the `'` put before a
/// formula. (A value that itself began with `'` and then a formula character reads back without
/// its `'`: the export cannot tell the two apart.)
pub fn unneutralised(v: &str) -> &str {
    match v.strip_prefix('\'') {
        Some(rest) if starts_formula(rest) => rest,
        _ => v,
    }
}

/// Appends the record of one archived audit event (`e` is `r`'s body, parsed), in the columns
/// of [`HEADER`].
pub fn audit_row(out: &mut String, r: &ArchivedRecord, e: &AuditEvent) {
    let metadata = if e.metadata.is_empty() {
        String::new()
    } else {
        Json::Object(e.metadata.clone()).to_string()
    };
    row(
        out,
        &[
            &e.tenant_id,
            &r.seq.to_string(),
            &e.id,
            &e.timestamp,
            &format_rfc3339(r.received_at),
            &e.actor_id,
            &e.event_type,
            &e.resource_id,
            &e.outcome,
            e.ip.as_deref().unwrap_or(""),
            e.app_id.as_deref().unwrap_or(""),
            &metadata,
            &r.hash,
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FR-LOG-002: RFC 4180 quoting and formula-injection neutralisation.
    #[test]
    fn csv_cells_are_quoted_and_neutralised() {
        let cases = [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@cmd", "'@cmd"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            (
                "=HYPERLINK(\"x\",\"y\")",
                "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"",
            ),
            ("", ""),
            ("a=b", "a=b"),
            // Leading whitespace does not hide a formula: spreadsheets trim it on import.
            (" =1+1", "' =1+1"),
            ("   +1", "'   +1"),
            (" -1", "' -1"),
            ("  @cmd", "'  @cmd"),
            ("\u{a0}=1", "'\u{a0}=1"),
            ("\u{3000}@x", "'\u{3000}@x"),
            ("\n=1", "\"'\n=1\""),
            (" \t=1", "' \t=1"),
            // Tab and CR anywhere in the leading whitespace start a formula in some importers.
            (" \tx", "' \tx"),
            ("  \rx", "\"'  \rx\""),
            ("\t", "'\t"),
            // Whitespace before plain text, or inside a cell, changes nothing.
            (" plain", " plain"),
            ("   ", "   "),
            ("a =b", "a =b"),
            (" a,b", "\" a,b\""),
            ("\u{feff}=1", "'\u{feff}=1"),
            ("\u{200b}-1", "'\u{200b}-1"),
        ];
        for (input, want) in cases {
            assert_eq!(cell(input), want, "{input:?}");
        }
        let mut line = String::new();
        row(&mut line, &["a", "=b", "c,d"]);
        assert_eq!(line, "a,'=b,\"c,d\"\r\n");
    }

    /// FR-LOG-002: the reader takes back what the writer wrote, quoted line breaks, commas and
    /// quotes included, and the formula prefix comes off with `unneutralised`.
    #[test]
    fn records_read_back_what_rows_wrote() {
        let mut text = String::new();
        header(&mut text);
        row(
            &mut text,
            &["a,b", "say \"hi\"", "two\r\nlines", "=1+1", ""],
        );
        row(&mut text, &["last"]);
        let read = records(&text);
        assert_eq!(read.len(), 3);
        assert_eq!(read[0], HEADER);
        assert_eq!(read[1], ["a,b", "say \"hi\"", "two\r\nlines", "'=1+1", ""]);
        assert_eq!(unneutralised(&read[1][3]), "=1+1");
        assert_eq!(read[2], ["last"]);
        // LF line ends and no final line break read the same.
        assert_eq!(
            records("a,b\nc,\"d\ne\""),
            [vec!["a", "b"], vec!["c", "d\ne"]]
        );
        assert!(records("").is_empty());
        assert_eq!(unneutralised("'plain"), "'plain");
    }

    proptest::proptest! {
        /// Any record written and read back is the same cells, each as [`cell`] neutralised it.
        #[test]
        fn any_record_round_trips(cells in proptest::collection::vec(".{0,12}", 1..6)) {
            // The one ambiguity `unneutralised` documents.
            proptest::prop_assume!(cells
                .iter()
                .all(|c| !c.strip_prefix('\'').is_some_and(starts_formula)));
            let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
            let mut text = String::new();
            row(&mut text, &refs);
            row(&mut text, &refs);
            let read = records(&text);
            proptest::prop_assert_eq!(read.len(), 2);
            proptest::prop_assert_eq!(read[0].len(), cells.len());
            for (got, want) in read[0].iter().zip(&cells) {
                proptest::prop_assert_eq!(unneutralised(got), want.as_str());
            }
            proptest::prop_assert_eq!(&read[0], &read[1]);
        }
    }

    /// FR-LOG-002: a reporter-controlled field is neutralised in the exported row, and the
    /// row keeps the header's columns.
    #[test]
    fn audit_rows_neutralise_what_reporters_send() {
        let e: AuditEvent = serde_json::from_value(serde_json::json!({
            "id": "a1", "tenant_id": "t1", "app_id": "app1",
            "timestamp": "2026-01-01T00:00:00.000Z", "actor_id": " =cmd|' /C calc'!A0",
            "type": "doc.read", "resource_id": "@x", "outcome": "success", "ip": "192.0.2.1",
            "metadata": {"k": "v"}
        }))
        .unwrap();
        let r = ArchivedRecord {
            seq: 7,
            id: "a1".into(),
            occurred_at: 0,
            received_at: 0,
            prev_hash: String::new(),
            hash: "h".into(),
            body: String::new(),
        };
        let mut out = String::new();
        header(&mut out);
        audit_row(&mut out, &r, &e);
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines[0].split(',').count(), HEADER.len());
        assert_eq!(
            lines[1],
            "t1,7,a1,2026-01-01T00:00:00.000Z,1970-01-01T00:00:00.000Z,' =cmd|' /C calc'!A0,\
             doc.read,'@x,success,192.0.2.1,app1,\"{\"\"k\"\":\"\"v\"\"}\",h"
        );
    }
}
