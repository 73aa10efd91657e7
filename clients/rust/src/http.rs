//! The HTTP seam: the one trait every network call of the client goes through, so the client
//! runs wherever something can send a request (ureq natively, `worker::Fetch` in a Worker, a
//! test double that loses answers).

use std::fmt;

/// An HTTP method the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// A request to send: method, absolute URL, headers (lower-case names) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The absolute URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json(self, body: Vec<u8>) -> Self {
        let mut req = self.header("content-type", "application/json");
        req.body = body;
        req
    }
}

/// An answer, whatever its status: statuses are the caller's to judge, not errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// No answer came: the connection failed, timed out or was lost. The request may or may not
/// have reached the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// What went wrong, for logs.
    pub message: String,
}

impl HttpError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no HTTP answer: {}", self.message)
    }
}

impl std::error::Error for HttpError {}

/// Sends one request and resolves to its answer.
///
/// Contract: resolves to `Ok` for every answer the server gave, whatever its status (a 4xx or
/// 5xx is an answer, not an error), without following redirects; to `Err` only when no answer
/// came. No `Send` bound: a Worker's fetch future is not `Send`, and the client runs on one
/// thread.
#[allow(async_fn_in_trait)] // Deliberately without a `Send` bound (see above).
pub trait Http {
    /// Sends `req`; see the trait's contract.
    async fn send(&self, req: Request) -> Result<Response, HttpError>;
}

impl<H: Http + ?Sized> Http for &H {
    async fn send(&self, req: Request) -> Result<Response, HttpError> {
        (**self).send(req).await
    }
}

impl<H: Http + ?Sized> Http for std::rc::Rc<H> {
    async fn send(&self, req: Request) -> Result<Response, HttpError> {
        (**self).send(req).await
    }
}

#[cfg(feature = "native")]
pub use native::NativeHttp;

#[cfg(feature = "native")]
mod native {
    use std::time::Duration;

    use futures_channel::oneshot;

    use super::{Http, HttpError, Method, Request, Response};

    /// The native seam: ureq 3 (rustls for `https`), each request run on a thread of its own
    /// and awaited through a oneshot channel, so any executor (or `block_on`) can drive it.
    #[derive(Clone)]
    pub struct NativeHttp {
        agent: ureq::Agent,
    }

    impl Default for NativeHttp {
        fn default() -> Self {
            Self::new(Duration::from_secs(30))
        }
    }

    impl std::fmt::Debug for NativeHttp {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("NativeHttp")
        }
    }

    impl NativeHttp {
        /// A client whose requests give up after `timeout` in all.
        pub fn new(timeout: Duration) -> Self {
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(timeout))
                .max_redirects(0)
                .build()
                .into();
            Self { agent }
        }
    }

    impl Http for NativeHttp {
        async fn send(&self, req: Request) -> Result<Response, HttpError> {
            let agent = self.agent.clone();
            let (tx, rx) = oneshot::channel();
            std::thread::Builder::new()
                .name("edgeplane-http".into())
                .spawn(move || {
                    // The receiver may be gone (the future was dropped): nothing to tell.
                    let _ = tx.send(blocking(&agent, req));
                })
                .map_err(|e| HttpError::new(format!("cannot start the request thread: {e}")))?;
            rx.await
                .map_err(|_| HttpError::new("the request thread ended without an answer"))?
        }
    }

    fn blocking(agent: &ureq::Agent, req: Request) -> Result<Response, HttpError> {
        let mut builder = ureq::http::Request::builder()
            .method(req.method.as_str())
            .uri(&req.url);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(req.body)
            .map_err(|e| HttpError::new(format!("invalid request: {e}")))?;
        let mut resp = agent
            .run(request)
            .map_err(|e| HttpError::new(e.to_string()))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = if req_has_no_body(req.method, status) {
            Vec::new()
        } else {
            resp.body_mut()
                .with_config()
                .limit(16 * 1024 * 1024)
                .read_to_vec()
                .map_err(|e| HttpError::new(format!("reading the body: {e}")))?
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn req_has_no_body(_method: Method, status: u16) -> bool {
        status == 204 || status == 304
    }
}
