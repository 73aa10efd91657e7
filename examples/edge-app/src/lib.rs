//! A managed app as a Rust Worker, beside Edgeplane: it verifies Edgeplane's access tokens at
//! the edge, reads the tenant's flags over OFREP, and reports billing and audit events, all
//! through a service binding to Edgeplane's Worker (`EDGEPLANE`), with `edgeplane-client`.
//!
//! Routes:
//! - `GET /health`: no token, no call to Edgeplane.
//! - `GET /me`: the caller's claims, on local verification alone.
//! - `GET /features`: the tenant's flags for the caller (OFREP), on local verification.
//! - `POST /projects/{id}/tasks`: a write: the token is also introspected (see [`access`]),
//!   and a billing and an audit event are reported after the response (`ctx.wait_until`).
//!
//! Every refusal is problem+json ([`problem::Problem`]).

#![forbid(unsafe_code)]

mod access;
mod edge;
mod problem;

use std::rc::Rc;

use edgeplane_client::{AuditEvent, BillingEvent};
use serde_json::{json, Map, Value};
use worker::{console_error, event, Context, Env, Method, Request, Response};

use access::Check;
use edge::EdgeApp;
use problem::Problem;

/// Longest task title accepted, in characters.
const MAX_TITLE_CHARS: usize = 200;

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    match serve(&mut req, &env, &ctx).await {
        Ok(response) => Ok(response),
        Err(problem) => problem.response(),
    }
}

async fn serve(req: &mut Request, env: &Env, ctx: &Context) -> Result<Response, Problem> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method();
    match (segments.as_slice(), method) {
        (["health"], Method::Get) => json_response(200, &json!({ "ok": true })),
        (["health"], _) => Err(Problem::MethodNotAllowed("GET")),
        (["me"], Method::Get) => me(&*edge::app(env)?, req).await,
        (["me"], _) => Err(Problem::MethodNotAllowed("GET")),
        (["features"], Method::Get) => features(&*edge::app(env)?, req).await,
        (["features"], _) => Err(Problem::MethodNotAllowed("GET")),
        (["projects", project, "tasks"], Method::Post) if is_id(project) => {
            let project = (*project).to_owned();
            create_task(edge::app(env)?, req, ctx, &project).await
        }
        (["projects", project, "tasks"], _) if is_id(project) => {
            Err(Problem::MethodNotAllowed("POST"))
        }
        _ => Err(Problem::NotFound),
    }
}

/// `GET /me`: who the token says the caller is.
async fn me(app: &EdgeApp, req: &Request) -> Result<Response, Problem> {
    let claims = access::caller(app, req, Check::Local).await?;
    json_response(
        200,
        &json!({
            "sub": claims.sub,
            "tenant_id": claims.tid,
            "role": claims.role,
            "session_id": claims.sid,
            "expires_at": claims.exp,
        }),
    )
}

/// `GET /features`: every flag of the caller's tenant, evaluated for the caller.
async fn features(app: &EdgeApp, req: &Request) -> Result<Response, Problem> {
    let claims = access::caller(app, req, Check::Local).await?;
    let mut context = Map::new();
    context.insert("tenantId".into(), json!(claims.tid));
    context.insert("targetingKey".into(), json!(claims.sub));
    context.insert("role".into(), json!(claims.role));
    let flags = app.flags.evaluate_all(&context).await.map_err(|e| {
        console_error!("flags: {e}");
        Problem::FlagsUnavailable
    })?;
    let values: Map<String, Value> = flags
        .keys()
        .filter_map(|k| Some((k.to_owned(), flags.get(k)?.value.clone()?)))
        .collect();
    json_response(
        200,
        &json!({ "flags": values, "not_modified": flags.not_modified() }),
    )
}

/// `POST /projects/{id}/tasks` with `{"title": "..."}`: creates a task (this example keeps no
/// store: it answers the task) and reports a billing event (`task.created`, quantity 1) and an
/// audit event (`task.create`), sent after the response.
async fn create_task(
    app: Rc<EdgeApp>,
    req: &mut Request,
    ctx: &Context,
    project: &str,
) -> Result<Response, Problem> {
    let claims = access::caller(&app, req, Check::Introspect).await?;
    let title = read_title(req).await?;
    let task_id = new_id();
    let now = js_sys::Date::new_0()
        .to_iso_string()
        .as_string()
        .unwrap_or_default();
    let resource = format!("projects/{project}/tasks/{task_id}");
    let mut metadata = Map::new();
    metadata.insert("project_id".into(), json!(project));
    let billing = BillingEvent {
        id: Some(format!("task-{task_id}")),
        tenant_id: Some(claims.tid.clone()),
        event_type: "task.created".into(),
        quantity: 1,
        timestamp: now.clone(),
        metadata: Some(metadata),
    };
    let audit = AuditEvent {
        id: Some(format!("task-{task_id}")),
        tenant_id: Some(claims.tid.clone()),
        timestamp: now,
        actor_id: claims.sub.clone(),
        event_type: "task.create".into(),
        resource_id: resource,
        outcome: "success".into(),
        ip: client_ip(req),
        metadata: None,
    };
    for queued in [app.billing.report(billing), app.audit.report(audit)] {
        match queued {
            Ok(true) => {}
            Ok(false) => console_error!("event queue full: an event of task {task_id} dropped"),
            Err(e) => {
                console_error!("event of task {task_id} refused: {e}");
                return Err(Problem::Internal);
            }
        }
    }
    let flushing = Rc::clone(&app);
    ctx.wait_until(async move {
        flushing.billing.flush().await;
        flushing.audit.flush().await;
    });
    json_response(
        201,
        &json!({
            "id": task_id,
            "project_id": project,
            "title": title,
            "created_by": claims.sub,
            "tenant_id": claims.tid,
        }),
    )
}

/// The `title` of a `{"title": "..."}` body (1 to 200 characters, no control characters).
async fn read_title(req: &mut Request) -> Result<String, Problem> {
    let invalid = |why: &str| Problem::InvalidBody(why.to_owned());
    let body: Value = req
        .json()
        .await
        .map_err(|_| invalid("The body must be JSON: {\"title\": \"...\"}."))?;
    let title = body
        .get("title")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("`title` must be a string."))?;
    let n = title.chars().count();
    if n == 0 || n > MAX_TITLE_CHARS || title.chars().any(char::is_control) {
        return Err(invalid(
            "`title` must be 1 to 200 characters, no control characters.",
        ));
    }
    Ok(title.to_owned())
}

/// A project id in a path: 1 to 64 of `[A-Za-z0-9_-]`.
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// 128 random bits, as hex.
fn new_id() -> String {
    format!(
        "{:016x}{:016x}",
        edgeplane_client::random_seed(),
        edgeplane_client::random_seed()
    )
}

/// The client's address as Cloudflare gives it, or the unspecified address.
fn client_ip(req: &Request) -> String {
    req.headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .unwrap_or_else(|| "0.0.0.0".into())
}

fn json_response(status: u16, body: &Value) -> Result<Response, Problem> {
    let response = Response::from_json(body).map_err(|e| {
        console_error!("response: {e}");
        Problem::Internal
    })?;
    Ok(response.with_status(status))
}
