//! The hash chain of a stream (tamper evidence for FR-LOG-001 and FR-BILL-001): every record
//! carries the hash of the record before it, and its own hash covers that link, so changing,
//! removing or reordering any archived record breaks every later link.
//!
//! # Canonical encoding
//!
//! A record's hash is `SHA-256` over the concatenation of these fields, in this order, each
//! written as `<byte length in decimal ASCII>:<bytes>\n` (a netstring-like framing, so no
//! field's content can be mistaken for a boundary):
//!
//! 1. the constant `edgeplane-event-chain-v1`
//! 2. the stream, `<kind>/<tenant>` (e.g. `billing/0190...`)
//! 3. the sequence number, decimal
//! 4. the event id
//! 5. `occurred_at`, unix ms, decimal
//! 6. `received_at`, unix ms, decimal
//! 7. the previous record's hash, 64 lowercase hex digits ([`GENESIS`] for sequence number 1)
//! 8. the event body, the exact JSON text stored
//!
//! The hash is written as 64 lowercase hex digits. Anyone holding an archive object can
//! recompute it with any SHA-256 tool.

use sha2::{Digest, Sha256};

/// The `prev_hash` of a stream's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields a record's hash covers.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    /// `<kind>/<tenant>`.
    pub stream: &'a str,
    /// Position in the stream.
    pub seq: i64,
    /// Event id.
    pub id: &'a str,
    /// When it happened (unix ms).
    pub occurred_at_ms: i64,
    /// When it was accepted (unix ms).
    pub received_at_ms: i64,
    /// The previous record's hash.
    pub prev_hash: &'a str,
    /// The stored JSON text.
    pub body: &'a str,
}

/// The hash of one record, hex.
pub fn hash(link: &Link<'_>) -> String {
    let mut h = Sha256::new();
    for field in [
        "edgeplane-event-chain-v1".as_bytes(),
        link.stream.as_bytes(),
        link.seq.to_string().as_bytes(),
        link.id.as_bytes(),
        link.occurred_at_ms.to_string().as_bytes(),
        link.received_at_ms.to_string().as_bytes(),
        link.prev_hash.as_bytes(),
        link.body.as_bytes(),
    ] {
        h.update(field.len().to_string().as_bytes());
        h.update(b":");
        h.update(field);
        h.update(b"\n");
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(body: &str) -> Link<'_> {
        Link {
            stream: "audit/t1",
            seq: 1,
            id: "e1",
            occurred_at_ms: 10,
            received_at_ms: 20,
            prev_hash: GENESIS,
            body,
        }
    }

    /// The encoding is pinned: a change to it would break every stored chain.
    #[test]
    fn the_encoding_is_stable() {
        let mut h = Sha256::new();
        h.update(
            b"24:edgeplane-event-chain-v1\n8:audit/t1\n1:1\n2:e1\n2:10\n2:20\n64:0000000000000000000000000000000000000000000000000000000000000000\n2:{}\n",
        );
        assert_eq!(hash(&link("{}")), hex(&h.finalize()));
        assert_eq!(hash(&link("{}")).len(), 64);
    }

    /// Every field is covered, and framing keeps shifted boundaries apart.
    #[test]
    fn every_field_changes_the_hash() {
        let base = hash(&link("{}"));
        let variants = [
            Link {
                stream: "audit/t2",
                ..link("{}")
            },
            Link {
                seq: 2,
                ..link("{}")
            },
            Link {
                id: "e2",
                ..link("{}")
            },
            Link {
                occurred_at_ms: 11,
                ..link("{}")
            },
            Link {
                received_at_ms: 21,
                ..link("{}")
            },
            Link {
                prev_hash: "1",
                ..link("{}")
            },
            link("{ }"),
            Link {
                id: "e1{",
                ..link("}")
            },
        ];
        for v in variants {
            assert_ne!(hash(&v), base, "{v:?}");
        }
    }
}
