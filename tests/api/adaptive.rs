//! Adaptive authentication (NFR-SEC-006, CON-SEC-008): risk-based step-up of sign-ins from a
//! new device and a new country, the mailed one-time code, impossible travel, the location
//! only from what the runtime vouches for, and a blocked sign-in that answers like a wrong
//! password.
//!
//! Where a request comes from is set the way each runtime learns it: on workerd through
//! Miniflare's `MF-CF-Blob` header, which Miniflare turns into `request.cf` before the Worker
//! runs (Cloudflare's edge never honours it, and Edgeplane never reads it); on Spin through
//! `CF-IPCountry` from the trusted proxy the suite stands in for (`TRUSTED_PROXIES`,
//! `LOCATION_COUNTRY_HEADER`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, introspect, on_own_server, send, str_of, suffix, ApiResponse, Runtime, TestApp,
};
use crate::oidc::{
    authorize_path, claims_of, enc, form, hidden, query_param, world, World, REDIRECT, VERIFIER,
};
use crate::sso::{configure, start_idp, EDGEPLANE_CLIENT};

crate::contract_tests![
    new_device_and_country_is_stepped_up_and_the_same_device_is_not_nfr_sec_006,
    client_headers_do_not_move_the_location_nfr_sec_006,
    blocked_sign_in_answers_like_a_wrong_password_nfr_sec_006,
    sso_from_a_new_device_and_country_is_stepped_up_on_the_login_page_nfr_sec_006,
    sso_is_stepped_up_without_the_idp_s_mfa_and_not_with_it_nfr_sec_006,
    oauth_refresh_grant_from_a_new_country_is_revoked_or_rotates_nfr_sec_006,
    a_step_up_left_unanswered_sets_no_device_cookie_nfr_sec_006,
    notice_link_signs_out_that_session_once_nfr_sec_006,
    an_emailed_code_expires_after_ten_minutes_nfr_sec_006,
];

const PASSWORD: &str = "correct horse battery staple";

/// A tenant whose owner accepted with [`PASSWORD`], signing in from a client address of its
/// own (the rate limits per address are shared with every other test).
struct Owner {
    domain: String,
    email: String,
    addr: String,
}

fn owner(app: &TestApp) -> Result<Owner, String> {
    let op = app.operator_token("operator", "e2e-operator")?;
    let domain = format!("risk-{}", suffix()?);
    let email = format!("owner@{domain}.example");
    let body =
        json!({ "name": "Risk Corp", "domain": domain, "plan": "pro", "owner_email": email });
    let created = send(app, "POST", "/v1/tenants", Some(&op), Some(&body))?.expect_json(201)?;
    let link = str_of(&created["invitation_link"]);
    let token = link
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .ok_or_else(|| format!("no token in the invitation link {link:?}"))?;
    let body = json!({ "token": token, "password": PASSWORD });
    send(app, "POST", "/v1/invitations/accept", None, Some(&body))?.expect_json(200)?;
    Ok(Owner {
        domain,
        email,
        addr: own_addr()?,
    })
}

/// A client address of a test's own.
fn own_addr() -> Result<String, String> {
    let n = u32::from_str_radix(&suffix()?[..4], 16).unwrap_or(7);
    Ok(format!(
        "10.{}.{}.{}",
        100 + n % 100,
        (n >> 8) % 250,
        n % 250 + 1
    ))
}

/// The owner of an OpenID provider client's tenant (whose password is [`PASSWORD`] too).
fn owner_of(w: &World) -> Result<Owner, String> {
    Ok(Owner {
        domain: w.domain.clone(),
        email: w.email.clone(),
        addr: own_addr()?,
    })
}

/// The header naming `o`'s address the way the runtime learns it.
fn from_addr(app: &TestApp, o: &Owner) -> (&'static str, String) {
    match app.runtime {
        Runtime::Workerd => ("cf-connecting-ip", o.addr.clone()),
        Runtime::Spin => ("x-forwarded-for", o.addr.clone()),
    }
}

/// The headers that place a request in `country` as the runtime learns it (`None`: the
/// runtime's default, US on workerd, nowhere on Spin).
fn place(app: &TestApp, country: Option<&str>) -> Vec<(&'static str, String)> {
    match (app.runtime, country) {
        (_, None) => Vec::new(),
        (Runtime::Workerd, Some(c)) => vec![(
            "mf-cf-blob",
            json!({ "country": c, "colo": "FRA", "asn": 3320 }).to_string(),
        )],
        (Runtime::Spin, Some(c)) => vec![("cf-ipcountry", c.to_owned())],
    }
}

/// `POST /v1/auth/login` from `device` with `extra` headers.
fn login_with(
    app: &TestApp,
    o: &Owner,
    password: &str,
    device: &str,
    extra: &[(&'static str, String)],
) -> Result<ApiResponse, String> {
    let body = json!({ "tenant": o.domain, "email": o.email, "password": password });
    let addr = from_addr(app, o);
    let mut headers: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("edgeplane-device", device),
        (addr.0, addr.1.as_str()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    app.request(
        "POST",
        "/v1/auth/login",
        &headers,
        Some(body.to_string().into_bytes()),
    )
}

fn login_at(
    app: &TestApp,
    o: &Owner,
    device: &str,
    country: Option<&str>,
) -> Result<ApiResponse, String> {
    login_with(app, o, PASSWORD, device, &place(app, country))
}

/// The one-time code of the sign-in code mail to `to`.
fn mailed_code(app: &TestApp, to: &str) -> Result<String, String> {
    let mail = app.dev_mail_with(to, "Your sign-in code")?;
    let text = mail["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|m| str_of(&m["subject"]) == "Your sign-in code")
        })
        .map(|m| str_of(&m["text"]))
        .ok_or_else(|| format!("no code mail to {to}: {mail}"))?;
    text.split_whitespace()
        .find(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
        .ok_or_else(|| format!("no code in the mail: {text}"))
}

fn verify(app: &TestApp, o: &Owner, token: &str, code: &str) -> Result<ApiResponse, String> {
    let body = json!({ "mfa_token": token, "code": code });
    let addr = from_addr(app, o);
    app.request(
        "POST",
        "/v1/auth/mfa/verify",
        &[
            ("content-type", "application/json"),
            (addr.0, addr.1.as_str()),
        ],
        Some(body.to_string().into_bytes()),
    )
}

/// NFR-SEC-006 acceptance: the first sign-in from a new device and a new country is stepped up
/// (the owner has no second factor: a mailed code, single use); the same device again is not;
/// the sign-in, an impossible trip from the first one's country, is flagged in the owner's
/// list of risky sign-ins.
fn new_device_and_country_is_stepped_up_and_the_same_device_is_not_nfr_sec_006(
    app: &TestApp,
) -> Result<(), String> {
    let o = owner(app)?;
    let (laptop, phone) = ("laptop-0000000000000001", "phone-00000000000000002");
    login_at(app, &o, laptop, Some("US"))?.expect_json(200)?;
    let resp = login_at(app, &o, phone, Some("AU"))?;
    let p = assert_problem(&resp, 401, "mfa-required")?;
    ensure_eq!(str_of(&p["factor"]), "email_code", "{p}");
    let token = str_of(&p["mfa_token"]);
    let code = mailed_code(app, &o.email)?;
    let wrong = if code == "00000000" {
        "00000001"
    } else {
        "00000000"
    };
    assert_problem(&verify(app, &o, &token, wrong)?, 401, "invalid-credentials")?;
    let tokens = verify(app, &o, &token, &code)?.expect_json(200)?;
    let again = verify(app, &o, &token, &code)?;
    ensure_eq!(
        again.status,
        401,
        "a code is single use: {}",
        again.excerpt()
    );

    // The phone in Australia is known now: no step-up.
    let owner_tokens = login_at(app, &o, phone, Some("AU"))?.expect_json(200)?;
    let bearer = str_of(&owner_tokens["access_token"]);
    ensure!(!str_of(&tokens["access_token"]).is_empty(), "{tokens}");

    let risky =
        send(app, "GET", "/v1/tenant/risky-sign-ins", Some(&bearer), None)?.expect_json(200)?;
    let items = risky["items"].as_array().cloned().unwrap_or_default();
    ensure_eq!(items.len(), 1, "one risky sign-in: {risky}");
    let signals: Vec<String> = items[0]["signals"]
        .as_array()
        .map(|a| a.iter().map(str_of).collect())
        .unwrap_or_default();
    ensure_eq!(
        signals,
        vec!["new_device", "new_country", "impossible_travel"],
        "{risky}"
    );
    ensure_eq!(str_of(&items[0]["level"]), "high", "{risky}");
    ensure_eq!(str_of(&items[0]["outcome"]), "success", "{risky}");
    ensure_eq!(str_of(&items[0]["country"]), "AU", "{risky}");
    ensure_eq!(str_of(&items[0]["email"]), o.email, "{risky}");
    ensure!(
        !risky.to_string().contains(&o.addr),
        "no address in the list: {risky}"
    );
    // Filtered by level; low-risk sign-ins are never listed.
    for (level, count) in [("high", 1), ("medium", 0)] {
        let path = format!("/v1/tenant/risky-sign-ins?level={level}");
        let only = send(app, "GET", &path, Some(&bearer), None)?.expect_json(200)?;
        let n = only["items"].as_array().map_or(0, Vec::len);
        ensure_eq!(n, count, "{level}: {only}");
    }
    let low = send(
        app,
        "GET",
        "/v1/tenant/risky-sign-ins?level=low",
        Some(&bearer),
        None,
    )?;
    assert_problem(&low, 400, "invalid-input")?;

    let devices = send(app, "GET", "/v1/me/devices", Some(&bearer), None)?.expect_json(200)?;
    let list = devices["items"].as_array().cloned().unwrap_or_default();
    ensure_eq!(list.len(), 2, "{devices}");
    let id = str_of(&list[1]["id"]);
    let path = format!("/v1/me/devices/{id}");
    send(app, "DELETE", &path, Some(&bearer), None)?.expect_status(204)?;
    let gone = send(app, "DELETE", &path, Some(&bearer), None)?;
    assert_problem(&gone, 404, "not-found")?;
    Ok(())
}

/// NFR-SEC-006: a country header a client writes itself (`CF-IPCountry` on workerd, where only
/// `request.cf` counts; `X-Forwarded-For`; Miniflare's header on Spin) does not move the
/// sign-in, while the runtime's own location does.
fn client_headers_do_not_move_the_location_nfr_sec_006(app: &TestApp) -> Result<(), String> {
    let o = owner(app)?;
    let laptop = "laptop-0000000000000003";
    login_at(app, &o, laptop, Some("US"))?.expect_json(200)?;
    let spoofed: Vec<(&'static str, String)> = match app.runtime {
        Runtime::Workerd => vec![
            ("cf-ipcountry", "AU".into()),
            ("x-forwarded-for", "1.1.1.1".into()),
        ],
        Runtime::Spin => vec![
            (
                "mf-cf-blob",
                json!({ "country": "AU", "colo": "SYD", "asn": 13335 }).to_string(),
            ),
            ("x-vercel-ip-country", "AU".into()),
        ],
    };
    let mut with_us = place(app, Some("US"));
    with_us.extend(spoofed.iter().cloned());
    login_with(app, &o, PASSWORD, laptop, &with_us)?.expect_json(200)?;
    // The runtime's own location does move it: Australia minutes after the US.
    let resp = login_at(app, &o, laptop, Some("AU"))?;
    assert_problem(&resp, 401, "mfa-required")?;
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The parts of a problem answer a client can compare: status and every member but the
/// request's own id.
fn shape(resp: &ApiResponse) -> Result<(u16, Value), String> {
    let mut v = resp.json()?;
    if let Some(m) = v.as_object_mut() {
        m.remove("instance");
        m.remove("request_id");
    }
    Ok((resp.status, v))
}

/// NFR-SEC-006, CON-SEC-009: under a policy that blocks risky sign-ins, a blocked sign-in (the
/// right password) gets the same answer as a wrong password, in about the same time (both pay
/// for one argon2id computation), so a block tells nothing about the password.
fn blocked_sign_in_answers_like_a_wrong_password_nfr_sec_006(app: &TestApp) -> Result<(), String> {
    let o = owner(app)?;
    let laptop = "laptop-0000000000000004";
    let tokens = login_at(app, &o, laptop, Some("US"))?.expect_json(200)?;
    let bearer = str_of(&tokens["access_token"]);
    let policy = json!({ "low": "allow", "medium": "block", "high": "block" });
    let set = send(
        app,
        "PUT",
        "/v1/tenant/risk-policy",
        Some(&bearer),
        Some(&policy),
    )?
    .expect_json(200)?;
    ensure_eq!(str_of(&set["medium"]), "block", "{set}");
    let read = send(app, "GET", "/v1/tenant/risk-policy", Some(&bearer), None)?.expect_json(200)?;
    ensure_eq!(read, set, "the policy as stored");

    let (mut blocked_times, mut wrong_times) = (Vec::new(), Vec::new());
    let here = place(app, Some("US"));
    let abroad = place(app, Some("JP"));
    for i in 0..4 {
        let started = Instant::now();
        let wrong = login_with(app, &o, "not the password at all", laptop, &here)?;
        wrong_times.push(started.elapsed());
        let started = Instant::now();
        let blocked = login_with(app, &o, PASSWORD, &format!("stolen-{i:0>17}"), &abroad)?;
        blocked_times.push(started.elapsed());
        assert_problem(&wrong, 401, "invalid-credentials")?;
        ensure_eq!(
            shape(&blocked)?,
            shape(&wrong)?,
            "a block answers like a wrong password"
        );
    }
    let (blocked, wrong) = (median(blocked_times), median(wrong_times));
    ensure!(
        blocked * 2 >= wrong && wrong * 2 >= blocked,
        "blocked sign-in answered in {blocked:?}, wrong password in {wrong:?}: timing tells them apart"
    );
    eprintln!(
        "[{}] login p50: blocked {blocked:?}, wrong password {wrong:?}",
        app.runtime.name()
    );
    // The same device from home still signs in.
    login_at(app, &o, laptop, Some("US"))?.expect_json(200)?;
    Ok(())
}

/// A browser's cookies (name, value), as the latest `Set-Cookie` of each name left them.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn keep(&mut self, resp: &ApiResponse) {
        for (k, v) in set_cookies(resp) {
            self.0.retain(|(name, _)| *name != k);
            self.0.push((k, v));
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join("; ")
    }
}

fn set_cookies(resp: &ApiResponse) -> Vec<(String, String)> {
    resp.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The device cookie's name on the suite's plain-http loopback origin.
const DEVICE_COOKIE: &str = "ep_device";

/// A request of `o`'s browser with cookies `jar` from `country` (a form body when given); the
/// answer's cookies go into the jar.
fn browse(
    app: &TestApp,
    o: &Owner,
    jar: &mut Jar,
    method: &str,
    path: &str,
    country: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<ApiResponse, String> {
    let addr = from_addr(app, o);
    let at = place(app, country);
    let cookie = jar.header();
    let mut headers: Vec<(&str, &str)> = vec![(addr.0, addr.1.as_str())];
    headers.extend(at.iter().map(|(k, v)| (*k, v.as_str())));
    if !cookie.is_empty() {
        headers.push(("cookie", cookie.as_str()));
    }
    if body.is_some() {
        headers.push(("content-type", "application/x-www-form-urlencoded"));
    }
    let resp = app.request(method, path, &headers, body)?;
    jar.keep(&resp);
    Ok(resp)
}

/// The login page for `w`'s client and tenant: its flow id and CSRF token.
fn open_login_page(
    app: &TestApp,
    o: &Owner,
    w: &World,
    jar: &mut Jar,
    country: Option<&str>,
) -> Result<(String, String), String> {
    let path = authorize_path(&w.client_id, &[("tenant", w.domain.as_str())]);
    let page = browse(app, o, jar, "GET", &path, country, None)?;
    ensure_eq!(page.status, 200, "login page: {}", page.excerpt());
    let html = page.text();
    Ok((hidden(&html, "flow")?, hidden(&html, "csrf")?))
}

/// The login page's password step from `country`: its answer, and the flow's fields.
fn password_step(
    app: &TestApp,
    o: &Owner,
    w: &World,
    jar: &mut Jar,
    country: Option<&str>,
) -> Result<(ApiResponse, String, String), String> {
    let (flow, csrf) = open_login_page(app, o, w, jar, country)?;
    let body = form(&[
        ("flow", &flow),
        ("csrf", &csrf),
        ("email", &o.email),
        ("password", PASSWORD),
    ]);
    let resp = browse(
        app,
        o,
        jar,
        "POST",
        "/oauth/authorize/login",
        country,
        Some(body),
    )?;
    Ok((resp, flow, csrf))
}

/// The login page's "Continue with your company SSO" through `idp` signing in as `o`, from
/// `country`: the callback's answer.
fn sso_from_login_page(
    app: &TestApp,
    o: &Owner,
    w: &World,
    jar: &mut Jar,
    country: Option<&str>,
) -> Result<ApiResponse, String> {
    let (flow, _) = open_login_page(app, o, w, jar, country)?;
    let start = format!(
        "/v1/auth/sso/start?tenant={}&login_flow={}",
        enc(&w.domain),
        enc(&flow)
    );
    let resp = browse(app, o, jar, "GET", &start, country, None)?;
    ensure_eq!(resp.status, 302, "SSO start: {}", resp.excerpt());
    let callback =
        crate::sso::authorize(app, resp.header("location").unwrap_or_default(), &o.email)?;
    browse(app, o, jar, "GET", &callback, country, None)
}

/// A sign-in's redirect to the client: its code.
fn code_of(resp: &ApiResponse) -> Result<String, String> {
    let location = resp.header("location").unwrap_or_default();
    ensure!(
        location.starts_with(&format!("{REDIRECT}?code=")),
        "to the client with a code: {location}"
    );
    query_param(location, "code").ok_or_else(|| format!("no code in {location}"))
}

/// `POST /oauth/token` for the public client `w` from `country`.
fn token_grant(
    app: &TestApp,
    o: &Owner,
    w: &World,
    fields: &[(&str, &str)],
    country: Option<&str>,
) -> Result<ApiResponse, String> {
    let mut all = vec![("client_id", w.client_id.as_str())];
    all.extend_from_slice(fields);
    let body = form(&all);
    let addr = from_addr(app, o);
    let at = place(app, country);
    let mut headers: Vec<(&str, &str)> = vec![
        (addr.0, addr.1.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    headers.extend(at.iter().map(|(k, v)| (*k, v.as_str())));
    app.request("POST", "/oauth/token", &headers, Some(body))
}

/// The code exchanged by the client: its tokens.
fn exchange(app: &TestApp, o: &Owner, w: &World, code: &str) -> Result<Value, String> {
    token_grant(
        app,
        o,
        w,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Some("US"),
    )?
    .expect_json(200)
}

/// NFR-SEC-006 with FR-AUTH-003: an SSO sign-in started on the login page, from a new device
/// in a new country, without the IdP's MFA, lands on the page's step-up (the owner has no
/// second factor: the mailed code); answered, it goes on to the client's redirect exactly as a
/// password sign-in does (`amr` sso and email), and only then does the browser get its device
/// cookie; that browser's next SSO sign-in is not stepped up.
fn sso_from_a_new_device_and_country_is_stepped_up_on_the_login_page_nfr_sec_006(
    app: &TestApp,
) -> Result<(), String> {
    let idp = start_idp(app, &[])?;
    let w = world(app)?;
    let o = owner_of(&w)?;
    let tokens = login_at(app, &o, "laptop-0000000000000011", Some("US"))?.expect_json(200)?;
    let bearer = str_of(&tokens["access_token"]);
    configure(app, &bearer, &idp.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;

    let mut jar = Jar::default();
    let resp = sso_from_login_page(app, &o, &w, &mut jar, Some("AU"))?;
    ensure_eq!(resp.status, 200, "the step-up page: {}", resp.excerpt());
    let html = resp.text();
    ensure!(
        html.contains("action=\"/oauth/authorize/mfa\""),
        "the second-factor step: {html}"
    );
    ensure!(
        jar.get(DEVICE_COOKIE).is_none(),
        "no device cookie before the step-up"
    );
    let (flow, csrf) = (hidden(&html, "flow")?, hidden(&html, "csrf")?);
    let mfa_token = hidden(&html, "mfa_token")?;
    let code = mailed_code(app, &o.email)?;
    let body = form(&[
        ("flow", &flow),
        ("csrf", &csrf),
        ("mfa_token", &mfa_token),
        ("code", &code),
    ]);
    let done = browse(
        app,
        &o,
        &mut jar,
        "POST",
        "/oauth/authorize/mfa",
        Some("AU"),
        Some(body),
    )?;
    ensure_eq!(done.status, 303, "on to the client: {}", done.excerpt());
    let location = done.header("location").unwrap_or_default().to_owned();
    ensure!(
        query_param(&location, "state").as_deref() == Some("s<t>a\"te"),
        "the client's state: {location}"
    );
    ensure!(
        jar.get(DEVICE_COOKIE).is_some(),
        "the device cookie once the sign-in completed"
    );
    let tokens = exchange(app, &o, &w, &code_of(&done)?)?;
    let claims = claims_of(&str_of(&tokens["id_token"]))?;
    let amr: Vec<String> = claims["amr"]
        .as_array()
        .map(|a| a.iter().map(str_of).collect())
        .unwrap_or_default();
    ensure_eq!(amr, vec!["sso", "email"], "{claims}");

    // The browser and its country are known now: straight back to the client.
    let again = sso_from_login_page(app, &o, &w, &mut jar, Some("AU"))?;
    ensure_eq!(again.status, 302, "not stepped up: {}", again.excerpt());
    code_of(&again)?;
    Ok(())
}

/// The IdP's authorization URL of an SSO sign-in of `o` (not from the login page), followed
/// through the IdP: the callback's answer from `country`.
fn sso_api_sign_in(app: &TestApp, o: &Owner, country: Option<&str>) -> Result<ApiResponse, String> {
    let resp = app.get(&format!("/v1/auth/sso/start?tenant={}", o.domain))?;
    ensure_eq!(resp.status, 302, "SSO start: {}", resp.excerpt());
    let callback =
        crate::sso::authorize(app, resp.header("location").unwrap_or_default(), &o.email)?;
    let addr = from_addr(app, o);
    let at = place(app, country);
    let mut headers: Vec<(&str, &str)> = vec![(addr.0, addr.1.as_str())];
    headers.extend(at.iter().map(|(k, v)| (*k, v.as_str())));
    app.get_with(&callback, &headers)
}

/// NFR-SEC-006 with FR-AUTH-003: without the IdP's own MFA, an SSO sign-in from a new device in
/// a new country gets the step-up of `/v1/auth/login` (401 `mfa-required`, a mailed code for
/// `/v1/auth/mfa/verify`, which then answers the tokens); an IdP whose ID token's `amr` says
/// `mfa` is trusted, so the next one, from elsewhere again, signs in at once.
fn sso_is_stepped_up_without_the_idp_s_mfa_and_not_with_it_nfr_sec_006(
    app: &TestApp,
) -> Result<(), String> {
    let plain = start_idp(app, &[])?;
    let with_mfa = start_idp(app, &["--amr", "pwd,mfa"])?;
    let o = owner(app)?;
    let tokens = login_at(app, &o, "laptop-0000000000000012", Some("US"))?.expect_json(200)?;
    let bearer = str_of(&tokens["access_token"]);
    configure(app, &bearer, &plain.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;

    let resp = sso_api_sign_in(app, &o, Some("AU"))?;
    let p = assert_problem(&resp, 401, "mfa-required")?;
    ensure_eq!(str_of(&p["factor"]), "email_code", "{p}");
    let code = mailed_code(app, &o.email)?;
    let signed_in = verify(app, &o, &str_of(&p["mfa_token"]), &code)?.expect_json(200)?;
    ensure!(
        !str_of(&signed_in["access_token"]).is_empty(),
        "{signed_in}"
    );

    configure(app, &bearer, &with_mfa.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;
    let v = sso_api_sign_in(app, &o, Some("JP"))?.expect_json(200)?;
    ensure!(!str_of(&v["access_token"]).is_empty(), "{v}");
    Ok(())
}

/// A sign-in on the login page from the US, completed at once, its code exchanged: the
/// client's refresh token.
fn app_refresh_token(app: &TestApp, o: &Owner, w: &World) -> Result<String, String> {
    let mut jar = Jar::default();
    let (resp, _, _) = password_step(app, o, w, &mut jar, Some("US"))?;
    ensure_eq!(resp.status, 303, "signed in: {}", resp.excerpt());
    let tokens = exchange(app, o, w, &code_of(&resp)?)?;
    Ok(str_of(&tokens["refresh_token"]))
}

fn refresh_grant(
    app: &TestApp,
    o: &Owner,
    w: &World,
    token: &str,
    country: Option<&str>,
) -> Result<ApiResponse, String> {
    token_grant(
        app,
        o,
        w,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
        country,
    )
}

/// NFR-SEC-006: the OpenID provider's refresh grant goes through the risk check of
/// `/v1/auth/refresh`: a use from a country none of the owner's sign-ins came from revokes the
/// session under the default policy (`revoke`), answered as RFC 6749 `invalid_grant`, and
/// rotates under a policy that allows it.
fn oauth_refresh_grant_from_a_new_country_is_revoked_or_rotates_nfr_sec_006(
    app: &TestApp,
) -> Result<(), String> {
    let w = world(app)?;
    let o = owner_of(&w)?;
    let tokens = login_at(app, &o, "laptop-0000000000000013", Some("US"))?.expect_json(200)?;
    let bearer = str_of(&tokens["access_token"]);

    let token = app_refresh_token(app, &o, &w)?;
    let home = refresh_grant(app, &o, &w, &token, Some("US"))?.expect_json(200)?;
    let rotated = str_of(&home["refresh_token"]);
    let resp = refresh_grant(app, &o, &w, &rotated, Some("BR"))?;
    ensure_eq!(resp.status, 400, "revoked: {}", resp.excerpt());
    let v = resp.json()?;
    ensure_eq!(str_of(&v["error"]), "invalid_grant", "{v}");
    let resp = refresh_grant(app, &o, &w, &rotated, Some("US"))?;
    ensure_eq!(resp.status, 400, "the session is gone: {}", resp.excerpt());

    let policy = json!({ "low": "allow", "medium": "email_code", "high": "email_code",
                         "refresh_new_country": "allow" });
    send(
        app,
        "PUT",
        "/v1/tenant/risk-policy",
        Some(&bearer),
        Some(&policy),
    )?
    .expect_json(200)?;
    let token = app_refresh_token(app, &o, &w)?;
    let v = refresh_grant(app, &o, &w, &token, Some("BR"))?.expect_json(200)?;
    ensure!(
        !str_of(&v["refresh_token"]).is_empty() && str_of(&v["refresh_token"]) != token,
        "rotated: {v}"
    );
    Ok(())
}

/// NFR-SEC-006: the right password of a sign-in held for a step-up that is never answered sets
/// no device cookie and makes no device known: the same browser's next sign-in is from a new
/// device still.
fn a_step_up_left_unanswered_sets_no_device_cookie_nfr_sec_006(
    app: &TestApp,
) -> Result<(), String> {
    let w = world(app)?;
    let o = owner_of(&w)?;
    let tokens = login_at(app, &o, "laptop-0000000000000014", Some("US"))?.expect_json(200)?;
    let bearer = str_of(&tokens["access_token"]);

    let mut jar = Jar::default();
    for attempt in 1..=2 {
        let (resp, _, _) = password_step(app, &o, &w, &mut jar, Some("AU"))?;
        ensure_eq!(resp.status, 200, "stepped up: {}", resp.excerpt());
        ensure!(
            resp.text().contains("action=\"/oauth/authorize/mfa\""),
            "the second-factor step"
        );
        ensure!(
            set_cookies(&resp).iter().all(|(k, _)| k != DEVICE_COOKIE),
            "attempt {attempt}: no device cookie before the step-up"
        );
    }
    let risky =
        send(app, "GET", "/v1/tenant/risky-sign-ins", Some(&bearer), None)?.expect_json(200)?;
    let items = risky["items"].as_array().cloned().unwrap_or_default();
    ensure_eq!(items.len(), 2, "{risky}");
    for item in &items {
        ensure_eq!(str_of(&item["outcome"]), "challenged", "{risky}");
        ensure!(
            item["signals"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x == "new_device")),
            "a new device each time: {risky}"
        );
    }
    let devices = send(app, "GET", "/v1/me/devices", Some(&bearer), None)?.expect_json(200)?;
    let list = devices["items"].as_array().cloned().unwrap_or_default();
    ensure_eq!(list.len(), 1, "only the laptop is known: {devices}");
    Ok(())
}

/// The path of the page a new-sign-in notice links to.
const REVOKE_PATH: &str = "/account/sign-ins/revoke";

/// The path and query of the sign-out link in the newest new-sign-in notice to `to`.
fn notice_link(app: &TestApp, to: &str) -> Result<String, String> {
    let mail = app.dev_mail_with(to, "New sign-in to your account")?;
    let text = mail["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|m| str_of(&m["subject"]) == "New sign-in to your account")
        })
        .map(|m| str_of(&m["text"]))
        .ok_or_else(|| format!("no notice to {to}: {mail}"))?;
    text.split_whitespace()
        .find_map(|w| w.find(REVOKE_PATH).map(|i| w[i..].to_owned()))
        .ok_or_else(|| format!("no sign-out link in the notice: {text}"))
}

/// `POST` of the link page's form with `token`.
fn post_revoke(app: &TestApp, token: &str) -> Result<ApiResponse, String> {
    app.request(
        "POST",
        REVOKE_PATH,
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(format!("token={token}").into_bytes()),
    )
}

/// An app-wide key with `token:introspect`.
fn introspection_key(app: &TestApp) -> Result<String, String> {
    let op = app.operator_token("operator", "e2e-operator")?;
    let body = json!({ "name": format!("Risk introspector {}", suffix()?) });
    let created = send(app, "POST", "/v1/apps", Some(&op), Some(&body))?.expect_json(201)?;
    let keys = format!("/v1/apps/{}/keys", str_of(&created["id"]));
    let scopes = json!({ "scopes": ["token:introspect"] });
    let key = send(app, "POST", &keys, Some(&op), Some(&scopes))?.expect_json(201)?;
    Ok(str_of(&key["secret"]))
}

/// Checks that `resp` is a page of the link with the login page's headers.
fn expect_page(resp: &ApiResponse, status: u16, says: &str) -> Result<String, String> {
    ensure_eq!(resp.status, status, "{}", resp.excerpt());
    let media = resp.media_type();
    ensure_eq!(media.as_deref(), Some("text/html"), "{}", resp.excerpt());
    let csp = resp.header("content-security-policy").unwrap_or_default();
    ensure!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "CSP: {csp}"
    );
    ensure_eq!(resp.header("x-frame-options"), Some("DENY"), "framing");
    ensure_eq!(resp.header("cache-control"), Some("no-store"), "caching");
    let body = resp.text();
    ensure!(body.contains(says), "expected {says:?} in {body}");
    Ok(body)
}

/// NFR-SEC-006: the notice of a sign-in from a new device links to a page that signs out that
/// session. Opening it (a mail scanner would) changes nothing and the session still works;
/// its button revokes the session: its refresh token fails and its access token is inactive
/// at introspection at once; a second post, or a token of the wrong shape, gets the page
/// saying the link is no longer valid.
fn notice_link_signs_out_that_session_once_nfr_sec_006(app: &TestApp) -> Result<(), String> {
    let o = owner(app)?;
    let key = introspection_key(app)?;
    login_at(app, &o, "laptop-0000000000000005", Some("US"))?.expect_json(200)?;
    let tokens = login_at(app, &o, "laptop-0000000000000006", Some("US"))?.expect_json(200)?;
    let (access, refresh) = (
        str_of(&tokens["access_token"]),
        str_of(&tokens["refresh_token"]),
    );
    let link = notice_link(app, &o.email)?;
    let token = link
        .split_once("?token=")
        .map(|(_, t)| t.to_owned())
        .ok_or_else(|| format!("no token in {link}"))?;
    ensure_eq!(token.len(), 43, "a 256-bit token: {link}");

    for _ in 0..2 {
        let page = expect_page(&app.get(&link)?, 200, "Sign out that session")?;
        ensure!(
            page.contains("method=\"post\"") && page.contains(&token),
            "the page's form posts the token: {page}"
        );
        ensure!(!page.contains("<script"), "no script: {page}");
    }
    let v = introspect(app, &key, &access)?;
    ensure_eq!(
        v["active"].as_bool(),
        Some(true),
        "still active after GET: {v}"
    );

    expect_page(&post_revoke(app, &token)?, 200, "signed out")?;
    let v = introspect(app, &key, &access)?;
    ensure_eq!(
        v,
        json!({ "active": false }),
        "inactive at once after the sign-out"
    );
    let body = json!({ "refresh_token": refresh });
    let resp = send(app, "POST", "/v1/auth/refresh", None, Some(&body))?;
    assert_problem(&resp, 401, "invalid-credentials")?;

    let spent = expect_page(&post_revoke(app, &token)?, 404, "no longer valid")?;
    let spent_get = expect_page(&app.get(&link)?, 404, "no longer valid")?;
    ensure_eq!(
        spent_get,
        spent,
        "GET and POST of a spent link answer alike"
    );
    let path = format!("{REVOKE_PATH}?token=abc");
    let malformed = expect_page(&app.get(&path)?, 404, "no longer valid")?;
    ensure_eq!(
        malformed,
        spent,
        "a malformed token answers like a spent one"
    );
    let unknown = "A".repeat(43);
    let unknown = expect_page(&post_revoke(app, &unknown)?, 404, "no longer valid")?;
    ensure_eq!(unknown, spent, "an unknown token answers like a spent one");
    Ok(())
}

/// `PUT /__dev/clock`: core's clock reads `offset_ms` ahead from now on (0 resets it).
fn set_clock(app: &TestApp, offset_ms: i64) -> Result<ApiResponse, String> {
    let body = json!({ "offset_ms": offset_ms });
    app.request(
        "PUT",
        "/__dev/clock",
        &[("content-type", "application/json")],
        Some(body.to_string().into_bytes()),
    )
}

/// NFR-SEC-006: the mailed one-time code of a step-up is valid ten minutes. Eleven minutes
/// later the right code is refused exactly like an unknown sign-in token, nothing is signed in
/// and the device stays unknown (the next sign-in from it is stepped up again). Time moves on
/// a server of its own (`PUT /__dev/clock`, which needs fault injection, on Spin across
/// instances); without that setting the route does not exist.
fn an_emailed_code_expires_after_ten_minutes_nfr_sec_006(app: &TestApp) -> Result<(), String> {
    assert_problem(&set_clock(app, 11 * 60 * 1000)?, 404, "not-found")?;
    on_own_server(
        app.runtime,
        &[("EDGEPLANE_FAULT_INJECTION", "on")],
        emailed_code_expires,
    )
}

fn emailed_code_expires(app: &TestApp) -> Result<(), String> {
    let o = owner(app)?;
    let (laptop, phone) = ("laptop-0000000000000011", "phone-00000000000000012");
    login_at(app, &o, laptop, Some("US"))?.expect_json(200)?;
    let p = assert_problem(&login_at(app, &o, phone, Some("AU"))?, 401, "mfa-required")?;
    ensure_eq!(str_of(&p["factor"]), "email_code", "{p}");
    ensure_eq!(p["expires_in"], json!(600), "valid ten minutes: {p}");
    let token = str_of(&p["mfa_token"]);
    let code = mailed_code(app, &o.email)?;

    set_clock(app, 11 * 60 * 1000)?.expect_json(200)?;
    let late = verify(app, &o, &token, &code);
    let unknown = verify(app, &o, "no-such-sign-in-token", &code);
    let again = login_at(app, &o, phone, Some("AU"));
    set_clock(app, 0)?.expect_json(200)?;
    let (late, unknown, again) = (late?, unknown?, again?);

    let refused = assert_problem(&late, 401, "invalid-credentials")?;
    let like = assert_problem(&unknown, 401, "invalid-credentials")?;
    ensure_eq!(refused["detail"], like["detail"], "{refused} vs {like}");
    ensure!(
        !late.text().contains("access_token"),
        "nothing signed in: {}",
        late.excerpt()
    );
    let p = assert_problem(&again, 401, "mfa-required")?;
    ensure_eq!(
        str_of(&p["factor"]),
        "email_code",
        "the phone is still unknown: {p}"
    );
    Ok(())
}
