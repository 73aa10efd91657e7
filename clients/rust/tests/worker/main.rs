//! The client against the real worker in workerd: access tokens verified and refused, OFREP
//! evaluation with its 304, and the reporter delivering events exactly once through a lost
//! answer. One stack for every test, the tests one after another (one binary, no harness).

// The runner times each test by the wall clock; the code under test takes time as a parameter.
#![allow(clippy::disallowed_methods)]

mod stack;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use edgeplane_client::{
    BillingEvent, Clock as _, DropReason, EventReporter, FlagsClient, Http, HttpError,
    Introspector, NativeHttp, NativeSleep, ReporterOptions, Request, Response, SystemClock,
    TokenError, TokenVerifier,
};
use futures_executor::block_on;
use serde_json::{json, Map, Value};

use stack::{call, str_of, Stack};

type TestFn = fn(&Stack) -> Result<(), String>;

fn main() {
    let tests: &[(&str, TestFn)] = &[
        (
            "a real access token verifies, with its claims",
            real_token_verifies,
        ),
        (
            "tampered, other-key, expired, wrong-audience and wrong-issuer tokens are refused",
            bad_tokens_refused,
        ),
        (
            "an unknown kid refetches the key set at most once per minute",
            unknown_kid_refetch,
        ),
        (
            "introspection sees a logout once the cached answer is a second old",
            introspection_sees_logout,
        ),
        (
            "OFREP evaluates every flag, then answers 304 from the cache",
            ofrep_with_etag,
        ),
        (
            "the reporter delivers every event once through a lost answer",
            reporter_exactly_once,
        ),
        (
            "a refused batch goes to on_drop, not retried",
            reporter_refusal,
        ),
    ];
    let started = std::time::Instant::now();
    let stack = match Stack::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start the stack: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "stack ready at {} in {:.1?}",
        stack.base_url,
        started.elapsed()
    );
    let mut failed = 0;
    for (name, test) in tests {
        let t = std::time::Instant::now();
        match test(&stack) {
            Ok(()) => println!("ok      {name} ({:.1?})", t.elapsed()),
            Err(e) => {
                failed += 1;
                println!("FAILED  {name}: {e}");
            }
        }
    }
    drop(stack);
    println!(
        "{} passed, {failed} failed in {:.1?}",
        tests.len() - failed,
        started.elapsed()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_owned())
    }
}

fn now() -> u64 {
    SystemClock.now_unix_secs()
}

fn segment(token: &str, i: usize) -> Result<Value, String> {
    let part = token.split('.').nth(i).ok_or("no such segment")?;
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn access_token(stack: &Stack) -> Result<String, String> {
    str_of(&stack.sign_in()?["access_token"])
}

/// Verifies and expects `code`.
fn refused(
    verifier: &TokenVerifier<NativeHttp>,
    token: &str,
    at: u64,
    code: &str,
) -> Result<(), String> {
    match block_on(verifier.verify(token, at)) {
        Err(e) if e.code() == code => Ok(()),
        Err(e) => Err(format!("refused as {} ({e}), expected {code}", e.code())),
        Ok(_) => Err(format!("verified, expected {code}")),
    }
}

fn real_token_verifies(stack: &Stack) -> Result<(), String> {
    let token = access_token(stack)?;
    // The issuer as a base URL may end in a slash; `iss` never does.
    let verifier = TokenVerifier::new(&format!("{}/", stack.base_url), "edgeplane");
    let claims = block_on(verifier.verify(&token, now())).map_err(|e| e.to_string())?;
    check(claims.iss == stack.base_url, "iss")?;
    check(claims.aud == "edgeplane", "aud")?;
    check(claims.tid == stack.tenant_id, "tid")?;
    check(claims.role == "owner", "role")?;
    check(
        !claims.sub.is_empty() && !claims.sid.is_empty() && !claims.jti.is_empty(),
        "sub, sid, jti",
    )?;
    check(claims.exp > now() && claims.iat <= now() + 30, "exp, iat")?;
    check(
        segment(&token, 0)?["typ"] == "at+jwt",
        "the server's typ is at+jwt",
    )
}

fn introspection_sees_logout(stack: &Stack) -> Result<(), String> {
    let token = access_token(stack)?;
    let introspector = Introspector::new(&stack.base_url, &stack.api_key);
    let t0 = SystemClock.now_unix_millis();
    let first = block_on(introspector.introspect(&token, t0)).map_err(|e| e.to_string())?;
    check(first.active && !first.cached, "active, from Edgeplane")?;
    check(first.sid.as_deref().is_some_and(|s| !s.is_empty()), "sid")?;
    call(
        "POST",
        &format!("{}/v1/auth/logout", stack.base_url),
        Some(&token),
        None,
        204,
    )?;
    // Within the second the answer is the cached one, however revoked the session is now.
    let cached = block_on(introspector.introspect(&token, t0 + 999)).map_err(|e| e.to_string())?;
    check(
        cached.active && cached.cached,
        "the cached answer within 1 s",
    )?;
    let after = block_on(introspector.introspect(&token, t0 + 1000)).map_err(|e| e.to_string())?;
    check(
        !after.active && !after.cached,
        "inactive once the answer is 1 s old",
    )?;
    let bad_key = Introspector::new(&stack.base_url, "ep_test_nope_nope");
    match block_on(bad_key.introspect(&token, t0)) {
        Err(edgeplane_client::IntrospectError::Status { status: 401, .. }) => Ok(()),
        other => Err(format!("a bad key: {other:?}")),
    }
}

fn bad_tokens_refused(stack: &Stack) -> Result<(), String> {
    let token = access_token(stack)?;
    let header = segment(&token, 0)?;
    let claims = segment(&token, 1)?;
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    let verifier = TokenVerifier::new(&stack.base_url, "edgeplane");
    let t = now();

    // Tampered: the real signature over other claims.
    let mut admin = claims.clone();
    admin["role"] = json!("admin");
    let [h, _, s] =
        <[&str; 3]>::try_from(token.split('.').collect::<Vec<_>>()).map_err(|_| "segments")?;
    refused(
        &verifier,
        &format!("{h}.{}.{s}", b64(&admin)),
        t,
        "signature",
    )?;

    // Signed with another Ed25519 key, under the published kid and under one of its own.
    let other = SigningKey::from_bytes(&[7u8; 32]);
    let forge = |header: &Value| {
        let input = format!("{}.{}", b64(header), b64(&claims));
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(other.sign(input.as_bytes()).to_bytes())
        )
    };
    refused(&verifier, &forge(&header), t, "signature")?;
    let mut own_kid = header.clone();
    own_kid["kid"] = json!("forged-key");
    refused(&verifier, &forge(&own_kid), t, "unknown_key")?;

    // alg none, and HS256 keyed with the public key: refused before any key is used.
    let mut none = header.clone();
    none["alg"] = json!("none");
    refused(
        &verifier,
        &format!("{}.{}.", b64(&none), b64(&claims)),
        t,
        "algorithm",
    )?;
    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    refused(
        &verifier,
        &format!("{}.{}.{s}", b64(&hs), b64(&claims)),
        t,
        "algorithm",
    )?;

    // Expired, by the clock parameter: 30 s of tolerance, not 31.
    refused(&verifier, &token, exp + 31, "expired")?;
    block_on(verifier.verify(&token, exp + 29))
        .map_err(|e| format!("within the tolerance: {e}"))?;
    let strict = TokenVerifier::new(&stack.base_url, "edgeplane").clock_tolerance_secs(0);
    refused(&strict, &token, exp, "expired")?;

    // Another audience, another issuer.
    refused(
        &TokenVerifier::new(&stack.base_url, &stack.app_id),
        &token,
        t,
        "audience",
    )?;
    let elsewhere = TokenVerifier::new("https://other.example", "edgeplane")
        .jwks_url(&stack.url("/.well-known/jwks.json"));
    refused(&elsewhere, &token, t, "issuer")?;
    refused(&verifier, "not a token", t, "malformed")
}

/// Counts the requests it passes on.
struct Counting<H> {
    inner: H,
    sent: Cell<usize>,
    statuses: RefCell<Vec<u16>>,
}

impl<H> Counting<H> {
    fn new(inner: H) -> Self {
        Self {
            inner,
            sent: Cell::new(0),
            statuses: RefCell::new(Vec::new()),
        }
    }
}

impl<H: Http> Http for Counting<H> {
    async fn send(&self, req: Request) -> Result<Response, HttpError> {
        self.sent.set(self.sent.get() + 1);
        let resp = self.inner.send(req).await?;
        self.statuses.borrow_mut().push(resp.status);
        Ok(resp)
    }
}

fn unknown_kid_refetch(stack: &Stack) -> Result<(), String> {
    let token = access_token(stack)?;
    let seam = Counting::new(NativeHttp::default());
    let verifier = TokenVerifier::with_http(&seam, &stack.base_url, "edgeplane");
    let t = now();
    block_on(verifier.verify(&token, t)).map_err(|e| e.to_string())?;
    check(seam.sent.get() == 1, "the first token fetches the key set")?;
    block_on(verifier.verify(&token, t)).map_err(|e| e.to_string())?;
    check(seam.sent.get() == 1, "a known kid is served from the cache")?;
    let mut header = segment(&token, 0)?;
    header["kid"] = json!("unknown");
    let mut parts = token.split('.');
    let (_, p, s) = (
        parts.next(),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let forged = format!("{}.{p}.{s}", b64(&header));
    let expect = |at: u64, fetches: usize| -> Result<(), String> {
        match block_on(verifier.verify(&forged, at)) {
            Err(TokenError::UnknownKey) => check(
                seam.sent.get() == fetches,
                &format!("{} fetches, expected {fetches}", seam.sent.get()),
            ),
            other => Err(format!("{other:?}")),
        }
    };
    expect(t + 10, 1)?;
    expect(t + 59, 1)?;
    expect(t + 61, 2)?;
    expect(t + 62, 2)
}

fn ofrep_with_etag(stack: &Stack) -> Result<(), String> {
    let put = |key: &str, body: Value| -> Result<(), String> {
        let url = stack.url(&format!("/v1/tenants/{}/flags/{key}", stack.tenant_id));
        call(
            "PUT",
            &url,
            Some(&stack.operator_token),
            Some(body.clone()),
            201,
        )
        .or_else(|_| call("PUT", &url, Some(&stack.operator_token), Some(body), 200))
        .map(|_| ())
    };
    put(
        "rs-checkout",
        json!({"type": "boolean", "value": false,
               "rules": [{"conditions": [{"attribute": "email", "op": "ends_with", "values": ["@acme.example"]}], "value": true}]}),
    )?;
    put("rs-banner", json!({"type": "string", "value": "hello"}))?;
    put("rs-limit", json!({"type": "number", "value": 42}))?;

    let seam = Counting::new(NativeHttp::default());
    let flags = FlagsClient::with_http(&seam, &stack.base_url, &stack.api_key);
    let context = |email: &str| -> Map<String, Value> {
        let v = json!({"tenantId": stack.tenant_id, "targetingKey": "user-1", "email": email});
        v.as_object().cloned().unwrap_or_default()
    };
    let first =
        block_on(flags.evaluate_all(&context("ana@acme.example"))).map_err(|e| e.to_string())?;
    check(!first.not_modified(), "the first answer is fresh")?;
    check(first.bool_flag("rs-checkout", false), "rule match")?;
    check(first.string_flag("rs-banner", "") == "hello", "string flag")?;
    check(first.number_flag("rs-limit", 0.0) == 42.0, "number flag")?;
    check(
        first.bool_flag("no-such-flag", true),
        "a missing flag gives the default",
    )?;
    check(
        first.string_flag("rs-checkout", "d") == "d",
        "a flag of another type gives the default",
    )?;

    let second =
        block_on(flags.evaluate_all(&context("ana@acme.example"))).map_err(|e| e.to_string())?;
    check(second.not_modified(), "the second answer is the cache's")?;
    check(second.bool_flag("rs-checkout", false), "the cached value")?;
    let other = block_on(flags.evaluate_all(&context("bob@elsewhere.example")))
        .map_err(|e| e.to_string())?;
    check(
        !other.bool_flag("rs-checkout", true),
        "another context evaluates afresh",
    )?;
    let statuses = seam.statuses.borrow().clone();
    check(
        statuses == [200, 304, 200],
        &format!("statuses {statuses:?}"),
    )?;

    let bad = FlagsClient::with_http(&seam, &stack.base_url, "ep_dev_nokey_secret");
    match block_on(bad.evaluate_all(&context("x@y.example"))) {
        Err(edgeplane_client::FlagsError::Status { status: 401, .. }) => Ok(()),
        other => Err(format!("a bad key: {other:?}")),
    }
}

/// Records each event POST's Idempotency-Key, and loses the answer to the first one: the
/// server got the request and stored the batch, the reporter sees a network error.
struct LoseFirstAnswer {
    inner: NativeHttp,
    keys: RefCell<Vec<String>>,
}

impl Http for LoseFirstAnswer {
    async fn send(&self, req: Request) -> Result<Response, HttpError> {
        let key = req
            .headers
            .iter()
            .find(|(n, _)| n == "idempotency-key")
            .map(|(_, v)| v.clone());
        let first = self.keys.borrow().is_empty();
        if let Some(k) = key {
            self.keys.borrow_mut().push(k);
        }
        let resp = self.inner.send(req).await?;
        if first {
            return Err(HttpError::new(format!(
                "the test lost the answer ({})",
                resp.status
            )));
        }
        Ok(resp)
    }
}

/// Every billing event of `tenant`, through the export's pages.
fn exported(stack: &Stack, tenant: &str) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = stack.url(&format!(
            "/v1/billing/events?tenant={tenant}&limit=1000{cursor}"
        ));
        let page = call("GET", &url, Some(&stack.api_key), None, 200)?;
        let got = page["items"].as_array().cloned().unwrap_or_default();
        let done = got.is_empty() || page["next_cursor"].is_null();
        items.extend(got);
        if done {
            return Ok(items);
        }
        cursor = format!("&cursor={}", str_of(&page["next_cursor"])?);
    }
}

fn usage(tenant: &str, n: u64) -> BillingEvent {
    BillingEvent {
        id: None,
        tenant_id: Some(tenant.to_owned()),
        event_type: "api.call".into(),
        quantity: n,
        timestamp: "2026-12-06T12:00:00Z".into(),
        metadata: Some(json!({"n": n}).as_object().cloned().unwrap_or_default()),
    }
}

fn reporter_exactly_once(stack: &Stack) -> Result<(), String> {
    const N: u64 = 25;
    let (tenant, _) = stack.provision_tenant("rs-events")?;
    let seam = LoseFirstAnswer {
        inner: NativeHttp::default(),
        keys: RefCell::new(Vec::new()),
    };
    let dropped = std::rc::Rc::new(Cell::new(0usize));
    let counter = dropped.clone();
    let options = ReporterOptions {
        max_batch: 10,
        base_delay: Duration::from_millis(20),
        ..ReporterOptions::default()
    };
    let reporter =
        EventReporter::with_seams(&seam, NativeSleep, &stack.base_url, &stack.api_key, options)
            .on_drop(move |events: &[BillingEvent], _| counter.set(counter.get() + events.len()));
    for n in 1..=N {
        check(
            reporter
                .report(usage(&tenant, n))
                .map_err(|e| e.to_string())?,
            "queued",
        )?;
    }
    check(reporter.pending() == N as usize, "all pending")?;
    block_on(reporter.flush());
    check(reporter.pending() == 0, "nothing pending after flush")?;
    check(dropped.get() == 0, "nothing dropped")?;

    // Three batches (10, 10, 5); the first sent twice under one key.
    let keys = seam.keys.borrow().clone();
    check(
        keys.len() == 4,
        &format!("{} posts, expected 4", keys.len()),
    )?;
    check(
        keys[0] == keys[1],
        "the retry reuses the batch's Idempotency-Key",
    )?;
    check(
        keys.iter().collect::<HashSet<_>>().len() == 3,
        "one key per batch",
    )?;

    let items = exported(stack, &tenant)?;
    let mut quantities: Vec<u64> = items
        .iter()
        .filter_map(|e| e["quantity"].as_u64())
        .collect();
    quantities.sort_unstable();
    check(
        quantities == (1..=N).collect::<Vec<_>>(),
        &format!("exported quantities {quantities:?}"),
    )
}

fn reporter_refusal(stack: &Stack) -> Result<(), String> {
    let reasons = std::rc::Rc::new(RefCell::new(Vec::new()));
    let seen = reasons.clone();
    let reporter: EventReporter<BillingEvent, _, _> =
        EventReporter::new(&stack.base_url, "ep_dev_nokey_secret").on_drop(
            move |events: &[BillingEvent], why: &DropReason| {
                seen.borrow_mut().push((events.len(), why.clone()))
            },
        );
    reporter
        .report(usage(&stack.tenant_id, 1))
        .map_err(|e| e.to_string())?;
    reporter
        .report(usage(&stack.tenant_id, 2))
        .map_err(|e| e.to_string())?;
    block_on(reporter.flush());
    let got = reasons.borrow().clone();
    match got.as_slice() {
        [(2, DropReason::Rejected { status: 401, .. })] => {}
        other => return Err(format!("drops {other:?}")),
    }
    let mut bad = usage(&stack.tenant_id, 1);
    bad.event_type = "no spaces".into();
    match reporter.report(bad) {
        Err(e) if e.field == "type" => Ok(()),
        other => Err(format!("an invalid event: {other:?}")),
    }
}
