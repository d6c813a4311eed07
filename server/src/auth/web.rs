//! The browser's side of auth: the login link and form, logout, the session cookie, and the
//! guard that sends a signed-out visitor of a page to `/login`.
//!
//! The session cookie is `HttpOnly` (page scripts cannot read it), `SameSite=Strict` (no other
//! site can make the browser send it) and `Secure` when `--public-url` is `https://…`.

use axum::{
    extract::{Form, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;

use super::{cookie, Authn, Caller, TokenKind, SESSION_COOKIE};
use crate::error::LanternError;
use crate::AppState;

/// Where a page's redirect may lead: a path on this server, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

/// Percent-encode a path for use as a query value.
fn encode(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One query parameter, decoded just enough for our own values (paths and tokens).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| decode(value))
    })
}

fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn session_cookie(state: &AppState, value: &str, max_age_secs: u64) -> Option<HeaderValue> {
    let secure = if state.config.public_url_is_https() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .ok()
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Sign `caller` in: a new session, its cookie, and on to `next`.
async fn sign_in(state: &AppState, caller: &Caller, headers: &HeaderMap, next: &str) -> Response {
    if caller.kind != TokenKind::User {
        return see_other("/login?error=agent");
    }
    let value = match state.accounts.start_session(caller).await {
        Ok(value) => value,
        Err(e) => return e.into_response(),
    };
    let cookie = session_cookie(state, &value, state.accounts.session_ttl().as_secs());
    // A redirect chain that another site started does not carry SameSite=Strict cookies, so
    // the user would land on the login page again. When the link was followed from another
    // site, go on from a page of our own instead: that navigation is same-site.
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let response = if cross_site {
        let next = next.replace('"', "%22");
        Html(format!(
            "<!DOCTYPE html><meta http-equiv=\"refresh\" content=\"0;url={next}\">\
             <a href=\"{next}\">Continue to Lantern</a>"
        ))
        .into_response()
    } else {
        see_other(next)
    };
    with_cookie(response, cookie)
}

/// Middleware over the pages (and the pages' server functions):
/// - `GET /login?token=…` (the login link): sign in and go on to `next` or `/`;
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
        let query = request.uri().query();
        if request.method() == Method::GET && query_param(query, "token").is_some() {
            let next = query_param(query, "next");
            return match authn {
                Authn::Caller(caller) => {
                    sign_in(
                        &state,
                        &caller,
                        request.headers(),
                        safe_next(next.as_deref()),
                    )
                    .await
                }
                _ => see_other("/login?error=invalid"),
            };
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

fn clear_cookie(state: &AppState) -> Option<HeaderValue> {
    session_cookie(state, "", 0)
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login` (the login page's form): sign in with a pasted user token.
pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    match state.accounts.by_token(form.token.trim()).await {
        Ok(Some(caller)) => {
            sign_in(&state, &caller, &headers, safe_next(form.next.as_deref())).await
        }
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
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn next_survives_encoding_and_decoding() {
        let target = "/w/wf_1?after=3&x=a b";
        let query = format!("next={}", encode(target));
        assert_eq!(query_param(Some(&query), "next").as_deref(), Some(target));
    }
}
