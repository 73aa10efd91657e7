//! [`SpinHttp`]: core's `HttpClient` port over `spin_sdk::http::send`
//! (`wasi:http/outgoing-handler`). Spin refuses any destination that the component's
//! `allowed_outbound_hosts` in spin.toml does not grant; that refusal is [`FetchError::Refused`].

use edgeplane_core::ports::{FetchError, HttpClient, OutboundRequest, OutboundResponse};
use spin_sdk::http::{send, ErrorCode, Response, SendError};

/// Outbound HTTP through the host. `wasi:http` does not follow redirects, as the port requires.
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
        let response: Response = send(request).await.map_err(classify)?;
        let headers = response
            .headers()
            .map(|(name, value)| {
                let value = value.as_str().unwrap_or_default().to_owned();
                (name.to_ascii_lowercase(), value)
            })
            .collect();
        Ok(OutboundResponse {
            status: *response.status(),
            headers,
            body: response.into_body(),
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
