//! [`SpinHttp`]: core's `HttpClient` port over `spin_sdk::http::send`
//! (`wasi:http/outgoing-handler`). Spin refuses any destination that the component's
//! `allowed_outbound_hosts` in spin.toml does not grant; that refusal is [`FetchError::Refused`].

use edgeplane_core::ports::{FetchError, HttpClient, OutboundRequest, OutboundResponse};
use futures_util::StreamExt;
use spin_sdk::http::{send, ErrorCode, IncomingResponse, SendError};

/// Outbound HTTP through the host. `wasi:http` does not follow redirects, as the port requires.
/// The body is streamed and reading stops past the request's `max_body_bytes`: dropping the
/// response then cancels the rest.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpinHttp;

impl HttpClient for SpinHttp {
    async fn fetch(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        let mut builder = http::Request::builder().method(req.method).uri(&req.url);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(req.body)
            .map_err(|e| FetchError::Refused(format!("invalid request: {e}")))?;
        let response: IncomingResponse = send(request).await.map_err(classify)?;
        let headers: Vec<(String, String)> = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| {
                let value = String::from_utf8(value).unwrap_or_default();
                (name.to_ascii_lowercase(), value)
            })
            .collect();
        let limit = req.max_body_bytes;
        let declared = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(FetchError::TooLarge(limit));
        }
        let mut body = Vec::new();
        let mut stream = response.take_body_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                FetchError::Other(format!(
                    "reading the response body: {}",
                    e.to_debug_string()
                ))
            })?;
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse {
            status: response.status(),
            headers,
            body,
        })
    }
}

/// Sorts a send failure into the port's errors.
fn classify(e: SendError) -> FetchError {
    match e {
        SendError::Http(code) => match code {
            ErrorCode::HttpRequestDenied
            | ErrorCode::HttpRequestUriInvalid
            | ErrorCode::HttpRequestMethodInvalid
            | ErrorCode::DestinationIpProhibited => FetchError::Refused(format!("{code:?}")),
            ErrorCode::DnsTimeout
            | ErrorCode::DnsError(_)
            | ErrorCode::DestinationNotFound
            | ErrorCode::DestinationUnavailable
            | ErrorCode::DestinationIpUnroutable
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTerminated
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::ConnectionLimitReached
            | ErrorCode::TlsProtocolError
            | ErrorCode::TlsCertificateError
            | ErrorCode::TlsAlertReceived(_) => FetchError::Unavailable(format!("{code:?}")),
            other => FetchError::Other(format!("{other:?}")),
        },
        SendError::RequestConversion(e) => FetchError::Refused(format!("invalid request: {e}")),
        SendError::Io(e) => FetchError::Unavailable(format!("sending the request body: {e}")),
        SendError::ResponseConversion(e) => FetchError::Other(format!("reading the response: {e}")),
    }
}
