//! Which key service a route belongs to, for the request metrics (`crate::metrics`), and the
//! count of each answer.

use ::http::Method;

use crate::metrics::{self, Service};
use crate::ports::{Clock, Platform};

/// The key service of a route (method and path template).
pub(super) fn service_of(method: &Method, template: &str) -> Service {
    match template {
        "/oauth/introspect" => Service::Introspection,
        "/v1/flags" => Service::Ofrep,
        t if t.starts_with("/ofrep/") => Service::Ofrep,
        "/v1/billing/events" | "/v1/audit/events" if method == Method::POST => Service::Ingestion,
        "/oauth/token" | "/v1/auth/login" | "/v1/auth/refresh" | "/v1/auth/mfa/verify" => {
            Service::SignIn
        }
        t if t.starts_with("/oauth/authorize")
            || t.starts_with("/v1/auth/webauthn/login/")
            || t.starts_with("/v1/auth/sso/") =>
        {
            Service::SignIn
        }
        "/v1/health" => Service::Other,
        t if t.starts_with("/v1/") => Service::Admin,
        _ => Service::Other,
    }
}

/// Counts one answer in the isolate's memory (no storage call). Where an instance serves one
/// request (Spin), a recorded answer is written by its own request, so there answers outside the
/// key services (liveness, key sets, documents) are not recorded unless they are 5xx: their
/// share of the writes would be paid by the cheapest routes.
pub(super) fn count<P: Platform>(
    platform: &P,
    method: &Method,
    template: &'static str,
    status: u16,
    duration_ms: i64,
) {
    let service = service_of(method, template);
    let one_request = platform.instance_per_request();
    if one_request && service == Service::Other && status < 500 {
        return;
    }
    let weight = metrics::weight(platform.random(), one_request, status);
    if weight == 0 {
        return;
    }
    let route = format!("{} {}", method.as_str(), template);
    metrics::record(
        &route,
        service,
        status,
        duration_ms,
        platform.clock().now_ms(),
        weight,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fr_sys_005_routes_belong_to_their_key_service() {
        let cases = [
            (Method::POST, "/oauth/introspect", Service::Introspection),
            (Method::POST, "/ofrep/v1/evaluate/flags", Service::Ofrep),
            (
                Method::POST,
                "/ofrep/v1/evaluate/flags/{key}",
                Service::Ofrep,
            ),
            (Method::GET, "/v1/flags", Service::Ofrep),
            (Method::POST, "/v1/billing/events", Service::Ingestion),
            (Method::POST, "/v1/audit/events", Service::Ingestion),
            (Method::GET, "/v1/billing/events", Service::Admin),
            (Method::POST, "/v1/auth/login", Service::SignIn),
            (Method::POST, "/oauth/token", Service::SignIn),
            (Method::POST, "/oauth/authorize/login", Service::SignIn),
            (
                Method::POST,
                "/v1/auth/webauthn/login/verify",
                Service::SignIn,
            ),
            (Method::GET, "/v1/tenants/{id}", Service::Admin),
            (Method::GET, "/health", Service::Other),
            (Method::GET, "/v1/health", Service::Other),
            (Method::GET, "/.well-known/jwks.json", Service::Other),
            (Method::GET, "<unmatched>", Service::Other),
        ];
        for (method, template, want) in cases {
            assert_eq!(service_of(&method, template), want, "{method} {template}");
        }
    }
}
