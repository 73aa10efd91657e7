//! Reading a request body within [`MAX_BODY_BYTES`] while it arrives. The adapters pass the
//! runtime's body stream through a [`LimitedBody`] and stop at the first chunk past the limit, so
//! neither a declared `Content-Length` above it nor a body without one (`Transfer-Encoding:
//! chunked`) is ever held whole in wasm memory. Such a request reaches core marked
//! [`BodyTooLarge`], with no body, and gets the same 413 as one whose declared length was refused.

use super::{Request, MAX_BODY_BYTES};

/// Marks a request (in its extensions) whose body passed [`MAX_BODY_BYTES`]: the adapter stopped
/// reading it, so the request carries no body and core answers 413.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTooLarge;

/// A request body collected chunk by chunk, at most [`MAX_BODY_BYTES`] of it.
#[derive(Debug, Default)]
pub struct LimitedBody {
    bytes: Vec<u8>,
    too_large: bool,
}

impl LimitedBody {
    /// An empty body. `content_length` is the request's `Content-Length` value, if it has one:
    /// a declared length above the limit makes the body too large before a byte is read. A
    /// value that is not a number is left to the runtime, which frames the body; what arrives is
    /// counted either way.
    pub fn new(content_length: Option<&str>) -> Self {
        let declared = content_length.and_then(|v| v.trim().parse::<u64>().ok());
        LimitedBody {
            bytes: Vec::new(),
            too_large: declared.is_some_and(|n| n > MAX_BODY_BYTES as u64),
        }
    }

    /// Whether the body is past the limit: the adapter stops reading and drops (cancels) the
    /// rest of the runtime's stream.
    pub fn is_too_large(&self) -> bool {
        self.too_large
    }

    /// Appends a chunk as the runtime delivered it. The chunk that crosses the limit is not
    /// kept, and what was kept is freed: the body is too large from then on.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.too_large {
            return;
        }
        if chunk.len() > MAX_BODY_BYTES - self.bytes.len() {
            self.too_large = true;
            self.bytes = Vec::new();
            return;
        }
        self.bytes.extend_from_slice(chunk);
    }

    /// The request `builder` describes (method, URI, headers) with this body; a body past the
    /// limit is left out and the request marked [`BodyTooLarge`].
    pub fn into_request(self, builder: ::http::request::Builder) -> Result<Request, ::http::Error> {
        let builder = if self.too_large {
            builder.extension(BodyTooLarge)
        } else {
            builder
        };
        builder.body(self.bytes)
    }
}

/// Whether core must refuse the request's body as too large (413).
pub(super) fn is_too_large(req: &Request) -> bool {
    req.extensions().get::<BodyTooLarge>().is_some() || req.body().len() > MAX_BODY_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(content_length: Option<&str>, chunks: &[usize]) -> (LimitedBody, usize) {
        let mut body = LimitedBody::new(content_length);
        let mut read = 0;
        for &n in chunks {
            if body.is_too_large() {
                break;
            }
            body.push(&vec![b'x'; n]);
            read += 1;
        }
        (body, read)
    }

    /// A body without a declared length is read up to the limit, no further: the chunk that
    /// crosses it stops the reading and nothing is kept.
    #[test]
    fn chunked_bodies_stop_at_the_limit() {
        let chunk = 64 * 1024;
        let chunks = vec![chunk; 64];
        let (body, read) = collect(None, &chunks);
        assert!(body.is_too_large());
        assert_eq!(
            read,
            MAX_BODY_BYTES / chunk + 1,
            "stopped at the first chunk past it"
        );
        let req = body.into_request(::http::Request::builder()).unwrap();
        assert!(req.body().is_empty());
        assert_eq!(req.extensions().get::<BodyTooLarge>(), Some(&BodyTooLarge));
        assert!(is_too_large(&req));
    }

    /// Exactly the limit is accepted, one byte more is not.
    #[test]
    fn the_limit_itself_is_accepted() {
        let (body, _) = collect(None, &[MAX_BODY_BYTES - 1, 1]);
        assert!(!body.is_too_large());
        let req = body.into_request(::http::Request::builder()).unwrap();
        assert_eq!(req.body().len(), MAX_BODY_BYTES);
        assert!(!is_too_large(&req));
        let (body, _) = collect(None, &[MAX_BODY_BYTES, 1]);
        assert!(body.is_too_large());
    }

    /// A declared length above the limit is refused before a byte is read; a false or
    /// unparsable one does not stop the counting.
    #[test]
    fn declared_lengths() {
        let over = (MAX_BODY_BYTES + 1).to_string();
        let (body, read) = collect(Some(&over), &[1]);
        assert!(body.is_too_large());
        assert_eq!(read, 0);
        let (body, _) = collect(Some("10"), &[MAX_BODY_BYTES, 1]);
        assert!(body.is_too_large());
        let (body, _) = collect(Some("many"), &[5]);
        assert!(!body.is_too_large());
        assert_eq!(
            body.into_request(::http::Request::builder())
                .unwrap()
                .body()
                .len(),
            5
        );
    }
}
