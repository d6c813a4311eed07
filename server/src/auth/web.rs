//! The browser's side of auth: the one-time login link, the login form, logout, the session
//! cookie, and the guard that sends a signed-out visitor of a page to `/login`.
//!
//! - The session cookie is `HttpOnly` (page scripts cannot read it), `SameSite=Strict` (no other
//!   site can make the browser send it) and `Secure` when `--public-url` is `https://…`.
//! - A login link (`/login?code=…`) works once, for a day; the long-lived token never appears in
//!   a URL. Followed from another site, it does not sign in by itself: the page asks "sign in as
//!   NAME?" and a same-origin form does it, so a link someone else sent cannot sign a person in
//!   as that someone (login CSRF).
//! - `next` (where to go after signing in) is only ever a path on this server.
//! - Every state-changing request, these forms included, must come from this server's own pages
//!   ([`crate::origin::same_origin_writes`]).

use axum::{
    extract::{Form, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;

use super::{cookie, query_param, Authn, Caller, TokenKind, SESSION_COOKIE};
use crate::error::LanternError;
use crate::AppState;

/// The link that signs a browser in with one-time login code `code`.
pub fn login_link(base: &str, code: &str) -> String {
    format!("{base}/login?code={code}")
}

/// Where a redirect after signing in may lead: a path (and query) on this server, parsed as a
/// browser would parse it against this server's origin, never anything that leaves it —
/// `//host`, `/\host`, `/<TAB>/host` (browsers drop tabs and newlines) and their kin all resolve
/// to another host and are refused.
fn safe_next(next: Option<&str>) -> String {
    const HERE: &str = "http://lantern.invalid/";
    let Some(next) = next.filter(|n| n.starts_with('/')) else {
        return "/".into();
    };
    let (Ok(base), Ok(here)) = (url::Url::parse(HERE), url::Url::parse(HERE)) else {
        return "/".into();
    };
    match base.join(next) {
        Ok(url) if url.origin() == here.origin() => {
            let mut path = url.path().to_owned();
            if let Some(query) = url.query() {
                path.push('?');
                path.push_str(query);
            }
            path
        }
        _ => "/".into(),
    }
}

/// A path as the value of a query parameter.
fn encode(path: &str) -> String {
    url::form_urlencoded::byte_serialize(path.as_bytes()).collect()
}

fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn session_cookie(state: &AppState, value: &str, max_age_secs: u64) -> Option<HeaderValue> {
    let max_age = i64::try_from(max_age_secs).unwrap_or(i64::MAX);
    let cookie = cookie::Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(state.config.public_url_is_https())
        .max_age(cookie::time::Duration::seconds(max_age));
    HeaderValue::from_str(&cookie.to_string()).ok()
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Was this request made by a page of another site (`Sec-Fetch-Site: cross-site` or
/// `same-site`: a sibling subdomain is another site's page too)?
fn from_another_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site")
}

/// Sign `caller` in: a new session, its cookie, and on to `next`.
async fn sign_in(state: &AppState, caller: &Caller, next: &str) -> Response {
    if caller.kind != TokenKind::User {
        return see_other("/login?error=agent");
    }
    let value = match state.accounts.start_session(caller).await {
        Ok(value) => value,
        Err(e) => return e.into_response(),
    };
    let cookie = session_cookie(state, &value, state.accounts.session_ttl().as_secs());
    with_cookie(see_other(next), cookie)
}

/// The page a login link followed from another site shows: who it would sign in as, and a
/// same-origin form that does it.
fn confirm_sign_in(user: &str, code: &str, next: &str) -> Response {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let (user, code, next) = (escape(user), escape(code), escape(next));
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign in to Lantern</title><main><h1>Sign in to Lantern</h1>\
         <p>A link opened from another site asks to sign this browser in as <b>{user}</b>.</p>\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"code\" value=\"{code}\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <button type=\"submit\" data-testid=\"confirm-sign-in\">Sign in as {user}</button>\
         </form></main></html>"
    ))
    .into_response()
}

/// Middleware over the pages (and the pages' server functions):
/// - `GET /login?code=…` (a login link): sign in and go on to `next` or `/` — after asking,
///   when the link was followed from another site;
/// - `/login` otherwise, and server functions (`/api/…`, which check the viewer themselves):
///   pass;
/// - any other page: a user passes; an agent token is 403; anyone else is sent to
///   `/login?next=<the page>` (and a dead session cookie is cleared).
pub async fn page_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let authn = request
        .extensions()
        .get::<Authn>()
        .cloned()
        .unwrap_or(Authn::Anonymous);
    if path == "/login" {
        let query = request.uri().query().unwrap_or("");
        if let (&Method::GET, Some(code)) = (request.method(), query_param(query, "code")) {
            let next = safe_next(query_param(query, "next").as_deref());
            if from_another_site(request.headers()) {
                return match state.accounts.login_code_user(&code).await {
                    Ok(Some(user)) => confirm_sign_in(&user, &code, &next),
                    Ok(None) => see_other("/login?error=link"),
                    Err(e) => e.into_response(),
                };
            }
            return redeem(&state, &code, &next).await;
        }
        return next.run(request).await;
    }
    if path.starts_with("/api/") {
        return next.run(request).await;
    }
    match authn {
        Authn::Caller(caller) if caller.kind == TokenKind::User => next.run(request).await,
        Authn::Caller(_) => {
            LanternError::Forbidden("agent tokens cannot open pages".into()).into_response()
        }
        Authn::Invalid | Authn::Anonymous => {
            let target = match request.uri().query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            let response = see_other(&format!("/login?next={}", encode(&target)));
            let stale = cookie(request.headers(), SESSION_COOKIE).is_some();
            with_cookie(response, stale.then(|| clear_cookie(&state)).flatten())
        }
    }
}

/// Use login code `code` and sign in, or back to the login page saying the link is spent.
async fn redeem(state: &AppState, code: &str, next: &str) -> Response {
    match state.accounts.redeem_login_code(code).await {
        Ok(Some(caller)) => sign_in(state, &caller, next).await,
        Ok(None) => see_other("/login?error=link"),
        Err(e) => e.into_response(),
    }
}

fn clear_cookie(state: &AppState) -> Option<HeaderValue> {
    session_cookie(state, "", 0)
}

#[derive(Deserialize)]
pub struct LoginForm {
    /// A pasted user token (the login page's form)…
    #[serde(default)]
    token: Option<String>,
    /// …or a login code (the confirmation of a link followed from another site).
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: sign in with a pasted user token, or a login code.
pub async fn login_form(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(form.next.as_deref());
    if let Some(code) = form.code.as_deref() {
        return redeem(&state, code.trim(), &next).await;
    }
    let token = form.token.as_deref().unwrap_or("").trim();
    match state.accounts.by_token(token).await {
        Ok(Some(caller)) => sign_in(&state, &caller, &next).await,
        Ok(None) => see_other("/login?error=invalid"),
        Err(e) => e.into_response(),
    }
}

/// `POST /logout`: end this browser's session (its sockets close), clear the cookie.
pub async fn logout(State(state): State<AppState>, request: Request) -> Response {
    if let Some(Authn::Caller(Caller {
        session_id: Some(session),
        ..
    })) = request.extensions().get::<Authn>()
    {
        if let Err(e) = state.accounts.end_session(session).await {
            return e.into_response();
        }
    }
    with_cookie(see_other("/login"), clear_cookie(&state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_this_server() {
        assert_eq!(safe_next(Some("/w/wf_1")), "/w/wf_1");
        assert_eq!(safe_next(Some("/w/wf_1?after=3")), "/w/wf_1?after=3");
        for away in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\\/evil.example",
            "\t//evil.example",
            "evil.example",
        ] {
            assert_eq!(safe_next(Some(away)), "/", "{away:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn next_survives_encoding_and_decoding() {
        let target = "/w/wf_1?after=3&x=a b";
        let query = format!("next={}", encode(target));
        assert_eq!(query_param(&query, "next").as_deref(), Some(target));
    }
}
