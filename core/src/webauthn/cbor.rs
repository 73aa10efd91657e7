//! The subset of CBOR (RFC 8949) that WebAuthn needs: attestation objects and COSE keys use
//! definite-length maps, arrays, byte and text strings and small integers. Hand-written so core
//! gains no dependency (and the wasm no serde-driven decoder): indefinite lengths, tags and
//! floats are refused, and depth and lengths are bounded before anything is allocated.

/// A decoded CBOR item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer, unsigned (major type 0) or negative (major type 1).
    Int(i128),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A text string.
    Text(String),
    /// An array.
    Array(Vec<Value>),
    /// A map, in encoded order.
    Map(Vec<(Value, Value)>),
    /// `true` or `false`.
    Bool(bool),
    /// `null` or `undefined`.
    Null,
}

/// Why bytes are not the CBOR WebAuthn expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    /// The input ends inside an item.
    #[error("CBOR ends early")]
    Truncated,
    /// Indefinite length, tag, float or reserved encoding.
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

impl Value {
    /// The member of a map under an integer key (COSE labels).
    pub fn int_key(&self, key: i128) -> Option<&Value> {
        match self {
            Value::Map(m) => m
                .iter()
                .find(|(k, _)| *k == Value::Int(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The member of a map under a text key.
    pub fn text_key(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m
                .iter()
                .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The bytes of a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The integer.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text of a text string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// Decodes one item at the start of `input`; returns it and how many bytes it took (COSE keys
/// inside authenticator data are followed by more bytes).
pub fn decode_prefix(input: &[u8]) -> Result<(Value, usize), CborError> {
    let mut r = Reader { input, pos: 0 };
    let v = r.item(0)?;
    Ok((v, r.pos))
}

/// Decodes exactly one item that fills `input`.
pub fn decode(input: &[u8]) -> Result<Value, CborError> {
    let (v, used) = decode_prefix(input)?;
    if used != input.len() {
        return Err(CborError::Unsupported);
    }
    Ok(v)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CborError> {
        let end = self.pos.checked_add(n).ok_or(CborError::Truncated)?;
        let s = self.input.get(self.pos..end).ok_or(CborError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn argument(&mut self, info: u8) -> Result<u64, CborError> {
        let n = match info {
            0..=23 => return Ok(u64::from(info)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return Err(CborError::Unsupported),
        };
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// A length that cannot exceed what is left of the input (each element takes a byte at
    /// least), so a forged length allocates nothing.
    fn length(&mut self, info: u8) -> Result<usize, CborError> {
        let n = self.argument(info)?;
        let left = (self.input.len() - self.pos) as u64;
        if n > left {
            return Err(CborError::Truncated);
        }
        usize::try_from(n).map_err(|_| CborError::Truncated)
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::TooDeep);
        }
        let head = *self.take(1)?.first().ok_or(CborError::Truncated)?;
        let (major, info) = (head >> 5, head & 0x1f);
        match major {
            0 => Ok(Value::Int(i128::from(self.argument(info)?))),
            1 => Ok(Value::Int(-1 - i128::from(self.argument(info)?))),
            2 => {
                let n = self.length(info)?;
                Ok(Value::Bytes(self.take(n)?.to_vec()))
            }
            3 => {
                let n = self.length(info)?;
                let bytes = self.take(n)?.to_vec();
                String::from_utf8(bytes)
                    .map(Value::Text)
                    .map_err(|_| CborError::NotUtf8)
            }
            4 => {
                let n = self.length(info)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            5 => {
                let n = self.length(info)?;
                let mut members = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.item(depth + 1)?;
                    let v = self.item(depth + 1)?;
                    members.push((k, v));
                }
                Ok(Value::Map(members))
            }
            7 => match info {
                20 => Ok(Value::Bool(false)),
                21 => Ok(Value::Bool(true)),
                22 | 23 => Ok(Value::Null),
                _ => Err(CborError::Unsupported),
            },
            _ => Err(CborError::Unsupported),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8949 Appendix A examples within the supported subset.
    #[test]
    fn decodes_rfc_8949_examples() {
        let cases: &[(&[u8], Value)] = &[
            (&[0x00], Value::Int(0)),
            (&[0x17], Value::Int(23)),
            (&[0x18, 0x18], Value::Int(24)),
            (&[0x19, 0x03, 0xe8], Value::Int(1000)),
            (
                &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                Value::Int(18_446_744_073_709_551_615),
            ),
            (&[0x20], Value::Int(-1)),
            (&[0x26], Value::Int(-7)),
            (&[0x38, 0x63], Value::Int(-100)),
            (&[0x44, 1, 2, 3, 4], Value::Bytes(vec![1, 2, 3, 4])),
            (&[0x64, 0x49, 0x45, 0x54, 0x46], Value::Text("IETF".into())),
            (&[0xf4], Value::Bool(false)),
            (&[0xf6], Value::Null),
            (
                &[0x83, 0x01, 0x82, 0x02, 0x03, 0x82, 0x04, 0x05],
                Value::Array(vec![
                    Value::Int(1),
                    Value::Array(vec![Value::Int(2), Value::Int(3)]),
                    Value::Array(vec![Value::Int(4), Value::Int(5)]),
                ]),
            ),
            (
                &[0xa2, 0x01, 0x02, 0x03, 0x04],
                Value::Map(vec![
                    (Value::Int(1), Value::Int(2)),
                    (Value::Int(3), Value::Int(4)),
                ]),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(&decode(bytes).unwrap(), want, "{bytes:02x?}");
        }
    }

    #[test]
    fn refuses_what_webauthn_does_not_use() {
        // Indefinite-length byte string, tag, half float, trailing byte, truncation.
        assert_eq!(decode(&[0x5f, 0xff]), Err(CborError::Unsupported));
        assert_eq!(decode(&[0xc1, 0x00]), Err(CborError::Unsupported));
        assert_eq!(decode(&[0xf9, 0x3c, 0x00]), Err(CborError::Unsupported));
        assert_eq!(decode(&[0x00, 0x00]), Err(CborError::Unsupported));
        assert_eq!(decode(&[0x44, 1, 2]), Err(CborError::Truncated));
        // A huge declared length allocates nothing and fails.
        assert_eq!(
            decode(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(CborError::Truncated)
        );
        assert_eq!(decode(&[0x62, 0xff, 0xfe]), Err(CborError::NotUtf8));
        let deep = [0x81u8; 20];
        assert_eq!(decode(&deep), Err(CborError::TooDeep));
        let (v, used) = decode_prefix(&[0x01, 0xaa]).unwrap();
        assert_eq!((v, used), (Value::Int(1), 1));
    }

    proptest::proptest! {
        /// Any input decodes or fails cleanly, never panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
