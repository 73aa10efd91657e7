//! CBOR (RFC 8949) as WebAuthn uses it: attestation objects, authenticator data extensions and
//! COSE keys. `ciborium` decodes; this module only holds the profile in front of it, because
//! the input is hostile and CTAP2's canonical form is much narrower than CBOR:
//! definite-length maps, arrays, byte and text strings, integers, `true`, `false` and `null`.
//! Indefinite lengths, tags, floats and other simple values are refused, nesting is bounded, and
//! every declared length is checked against the bytes left before `ciborium` sees the input, so
//! a forged length allocates nothing.

use ciborium_ll::{simple, Decoder, Header};

pub use ciborium::Value;

/// Why bytes are not the CBOR WebAuthn expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    /// The input ends inside an item.
    #[error("CBOR ends early")]
    Truncated,
    /// Indefinite length, tag, float, reserved encoding or trailing bytes.
    #[error("unsupported CBOR encoding")]
    Unsupported,
    /// Nested deeper than WebAuthn structures go.
    #[error("CBOR nested too deep")]
    TooDeep,
    /// A text string is not UTF-8.
    #[error("CBOR text is not UTF-8")]
    NotUtf8,
}

/// Deepest nesting accepted: an attestation object is a map holding a map holding arrays.
const MAX_DEPTH: usize = 8;

/// Decodes one item at the start of `input`; returns it and how many bytes it took (COSE keys
/// inside authenticator data are followed by more bytes).
pub fn decode_prefix(input: &[u8]) -> Result<(Value, usize), CborError> {
    let end = item_end(input, 0, 0)?;
    let item = input.get(..end).ok_or(CborError::Truncated)?;
    // The item was checked to be well formed and within the profile, so ciborium can only
    // fail here on something the profile check let through by mistake.
    let value = ciborium::from_reader(item).map_err(|_| CborError::Unsupported)?;
    Ok((value, end))
}

/// Decodes exactly one item that fills `input`.
pub fn decode(input: &[u8]) -> Result<Value, CborError> {
    let (v, used) = decode_prefix(input)?;
    if used != input.len() {
        return Err(CborError::Unsupported);
    }
    Ok(v)
}

/// The member of a CBOR map under a text key (the attestation object's `fmt`, `authData`).
pub fn text_member<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

/// Where the item starting at `pos` ends, after checking it against the profile.
fn item_end(input: &[u8], pos: usize, depth: usize) -> Result<usize, CborError> {
    if depth > MAX_DEPTH {
        return Err(CborError::TooDeep);
    }
    let rest = input.get(pos..).ok_or(CborError::Truncated)?;
    let mut decoder = Decoder::from(rest);
    let header = decoder.pull().map_err(|e| match e {
        ciborium_ll::Error::Io(_) => CborError::Truncated,
        ciborium_ll::Error::Syntax(_) => CborError::Unsupported,
    })?;
    let head_len = decoder.offset();
    let pos = pos + head_len;
    let left = input.len() - pos;
    // Each element of an array or map takes one byte at least.
    let fits = |n: usize| {
        if n > left {
            Err(CborError::Truncated)
        } else {
            Ok(n)
        }
    };
    match header {
        Header::Positive(_) | Header::Negative(_) => Ok(pos),
        // One-byte simple values only: `0xf8 0x14` is not a well-formed `false`.
        Header::Simple(simple::FALSE | simple::TRUE | simple::NULL | simple::UNDEFINED)
            if head_len == 1 =>
        {
            Ok(pos)
        }
        Header::Bytes(Some(n)) => Ok(pos + fits(n)?),
        Header::Text(Some(n)) => {
            let end = pos + fits(n)?;
            std::str::from_utf8(&input[pos..end]).map_err(|_| CborError::NotUtf8)?;
            Ok(end)
        }
        Header::Array(Some(n)) => {
            (0..fits(n)?).try_fold(pos, |at, _| item_end(input, at, depth + 1))
        }
        Header::Map(Some(n)) => (0..fits(n)?).try_fold(pos, |at, _| {
            let key_end = item_end(input, at, depth + 1)?;
            item_end(input, key_end, depth + 1)
        }),
        _ => Err(CborError::Unsupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(i: i128) -> Value {
        Value::Integer(i.try_into().unwrap())
    }

    /// RFC 8949 Appendix A examples within the supported subset.
    #[test]
    fn decodes_rfc_8949_examples() {
        let cases: &[(&[u8], Value)] = &[
            (&[0x00], int(0)),
            (&[0x17], int(23)),
            (&[0x18, 0x18], int(24)),
            (&[0x19, 0x03, 0xe8], int(1000)),
            (
                &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                int(18_446_744_073_709_551_615),
            ),
            (&[0x20], int(-1)),
            (&[0x26], int(-7)),
            (&[0x38, 0x63], int(-100)),
            (
                &[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                int(-18_446_744_073_709_551_616),
            ),
            (&[0x44, 1, 2, 3, 4], Value::Bytes(vec![1, 2, 3, 4])),
            (&[0x64, 0x49, 0x45, 0x54, 0x46], Value::Text("IETF".into())),
            (&[0xf4], Value::Bool(false)),
            (&[0xf5], Value::Bool(true)),
            (&[0xf6], Value::Null),
            (&[0xf7], Value::Null),
            (
                &[0x83, 0x01, 0x82, 0x02, 0x03, 0x82, 0x04, 0x05],
                Value::Array(vec![
                    int(1),
                    Value::Array(vec![int(2), int(3)]),
                    Value::Array(vec![int(4), int(5)]),
                ]),
            ),
            (
                &[0xa2, 0x01, 0x02, 0x03, 0x04],
                Value::Map(vec![(int(1), int(2)), (int(3), int(4))]),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(&decode(bytes).unwrap(), want, "{bytes:02x?}");
        }
    }

    #[test]
    fn refuses_what_webauthn_does_not_use() {
        use CborError::*;
        let cases: &[(&str, &[u8], CborError)] = &[
            (
                "indefinite byte string",
                &[0x5f, 0x41, 0x00, 0xff],
                Unsupported,
            ),
            (
                "indefinite text string",
                &[0x7f, 0x61, 0x61, 0xff],
                Unsupported,
            ),
            ("indefinite array", &[0x9f, 0x01, 0xff], Unsupported),
            ("indefinite map", &[0xbf, 0x01, 0x02, 0xff], Unsupported),
            ("lone break", &[0xff], Unsupported),
            ("tag", &[0xc1, 0x00], Unsupported),
            ("bignum tag", &[0xc2, 0x41, 0x01], Unsupported),
            ("half float", &[0xf9, 0x3c, 0x00], Unsupported),
            ("single float", &[0xfa, 0x47, 0xc3, 0x50, 0x00], Unsupported),
            ("double float", &[0xfb, 0, 0, 0, 0, 0, 0, 0, 0], Unsupported),
            ("simple value 16", &[0xf0], Unsupported),
            ("two-byte false", &[0xf8, 0x14], Unsupported),
            ("two-byte simple value", &[0xf8, 0xff], Unsupported),
            ("reserved additional info", &[0x1c], Unsupported),
            ("indefinite integer", &[0x1f], Unsupported),
            ("trailing byte", &[0x00, 0x00], Unsupported),
            ("empty input", &[], Truncated),
            ("truncated argument", &[0x19, 0x03], Truncated),
            ("truncated byte string", &[0x44, 1, 2], Truncated),
            ("truncated text string", &[0x63, 0x61, 0x62], Truncated),
            ("truncated array", &[0x82, 0x01], Truncated),
            ("truncated map value", &[0xa1, 0x01], Truncated),
            (
                "huge array length",
                &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                Truncated,
            ),
            (
                "huge byte string length",
                &[0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00],
                Truncated,
            ),
            (
                "huge map length",
                &[0xba, 0xff, 0xff, 0xff, 0xff, 0x01],
                Truncated,
            ),
            ("text not UTF-8", &[0x62, 0xff, 0xfe], NotUtf8),
            ("map key not UTF-8", &[0xa1, 0x61, 0xc3, 0x01], NotUtf8),
            ("too deep", &[0x81; 20], TooDeep),
        ];
        for (what, bytes, want) in cases {
            assert_eq!(decode(bytes), Err(*want), "{what}: {bytes:02x?}");
        }
    }

    #[test]
    fn nesting_up_to_the_limit_decodes() {
        let mut bytes = vec![0x81u8; MAX_DEPTH];
        bytes.push(0x00);
        assert!(decode(&bytes).is_ok());
        let mut bytes = vec![0x81u8; MAX_DEPTH + 1];
        bytes.push(0x00);
        assert_eq!(decode(&bytes), Err(CborError::TooDeep));
    }

    #[test]
    fn a_prefix_reports_what_it_used() {
        let (v, used) = decode_prefix(&[0x01, 0xaa]).unwrap();
        assert_eq!((v, used), (int(1), 1));
        let (v, used) = decode_prefix(&[0xa1, 0x01, 0x42, 7, 8, 0xff, 0xff]).unwrap();
        assert_eq!(used, 5);
        assert_eq!(v, Value::Map(vec![(int(1), Value::Bytes(vec![7, 8]))]));
    }

    #[test]
    fn text_members_are_found_by_key() {
        let map = decode(&[0xa2, 0x61, 0x61, 0x01, 0x01, 0x02]).unwrap();
        assert_eq!(text_member(&map, "a"), Some(&int(1)));
        assert_eq!(text_member(&map, "b"), None);
        assert_eq!(text_member(&int(1), "a"), None);
    }

    proptest::proptest! {
        /// Any input decodes or fails cleanly, never panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode(&bytes);
        }

        /// Whatever the profile accepts, ciborium decodes: the check and the decoder agree.
        #[test]
        fn accepted_prefixes_decode(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            if item_end(&bytes, 0, 0).is_ok() {
                proptest::prop_assert!(decode_prefix(&bytes).is_ok());
            }
        }
    }
}
