//! Who is calling, and what they may do (PROTOCOL.md §2, §3, §5, §6).
//!
//! Every request passes [`authenticate`], which looks at its credential and records the
//! outcome ([`Authn`]) in the request's extensions; nothing is refused there. Then:
//! - API handlers and sockets take a [`Caller`] (a missing or wrong credential is 401) and say
//!   which kind they need ([`Caller::require`]: the wrong kind is 403);
//! - pages go through [`web::page_guard`] (no session: redirect to `/login`);
//! - ownership is the hub's [`check_owner`](crate::hub::Hub::check_owner): someone else's
//!   workflow answers exactly like one that does not exist.
//!
//! Credentials, in the order they are looked for: `Authorization: Bearer <token>`,
//! `?token=<token>`, the `lantern_session` cookie. A credential that is present but wrong is
//! not skipped in favour of the next one: the request is unauthenticated.
//!
//! - [`tokens`]: the credential format, hashing, constant-time comparison.
//! - [`accounts`]: users, tokens and sessions (the policy); revocation announcements.
//! - [`store`]: where they are kept ([`store::AccountStore`]: SQLite, or [`redis`]).
//! - [`web`]: login link, login form, logout, the page guard, the session cookie.

pub mod accounts;
#[cfg(test)]
mod contract;
pub mod redis;
pub mod store;
pub mod tokens;
pub mod web;

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts, HeaderMap},
    middleware::Next,
    response::Response,
};

pub use accounts::{Accounts, Caller, TokenKind};

use crate::error::LanternError;

/// Name of the browser session cookie.
pub const SESSION_COOKIE: &str = "lantern_session";

/// What [`authenticate`] found, kept in the request's extensions.
#[derive(Clone, Debug)]
pub enum Authn {
    /// No credential at all.
    Anonymous,
    /// A credential that is malformed, unknown, revoked or expired.
    Invalid,
    Caller(Caller),
}

impl From<Option<Caller>> for Authn {
    /// The outcome of looking up a credential that was present.
    fn from(found: Option<Caller>) -> Self {
        found.map_or(Self::Invalid, Self::Caller)
    }
}

/// Where a request's credential came from.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    Token(std::borrow::Cow<'a, str>),
    Session(&'a str),
}

/// The request's credential, if any (see the module doc for the order).
pub fn credential<'a>(headers: &'a HeaderMap, query: Option<&str>) -> Option<Credential<'a>> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().unwrap_or("");
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "));
        return Some(Credential::Token(
            token.unwrap_or("").trim().to_owned().into(),
        ));
    }
    if let Some(token) = query.and_then(|q| query_param(q, "token")) {
        return Some(Credential::Token(token.into()));
    }
    cookie(headers, SESSION_COOKIE).map(Credential::Session)
}

/// The first value of parameter `name` in a query string, decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .and_then(|c| c.value_raw())
}

/// Middleware: resolve the request's credential and record the outcome ([`Authn`]); for user
/// callers also the [`app::backend::Viewer`] that the pages' server functions read.
pub async fn authenticate(
    State(accounts): State<Arc<Accounts>>,
    mut request: Request,
    next: Next,
) -> Response {
    let found = match credential(request.headers(), request.uri().query()) {
        None => Ok(Authn::Anonymous),
        Some(Credential::Token(token)) => accounts.by_token(&token).await.map(Authn::from),
        Some(Credential::Session(cookie)) => accounts.by_session(cookie).await.map(Authn::from),
    };
    let authn = match found {
        Ok(authn) => authn,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    if let Authn::Caller(caller) = &authn {
        if caller.kind == TokenKind::User {
            request.extensions_mut().insert(app::backend::Viewer {
                user: caller.user.clone(),
            });
        }
    }
    request.extensions_mut().insert(authn);
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = LanternError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Authn>() {
            Some(Authn::Caller(caller)) => Ok(caller.clone()),
            Some(Authn::Invalid) => Err(LanternError::Unauthorized(
                "the token or session is not valid (wrong, revoked or expired)".into(),
            )),
            _ => Err(LanternError::Unauthorized(
                "a token is needed: Authorization: Bearer <token>, ?token=, or sign in".into(),
            )),
        }
    }
}

impl Caller {
    /// Ok when this caller's token is of `kind`; otherwise `forbidden`.
    pub fn require(&self, kind: TokenKind) -> Result<(), LanternError> {
        match (self.kind, kind) {
            (have, want) if have == want => Ok(()),
            (TokenKind::Agent, _) => Err(LanternError::Forbidden(
                "an agent token may only publish events to its user's workflows".into(),
            )),
            (TokenKind::User, _) => Err(LanternError::Forbidden(
                "publishing events needs an agent token (lantern token create --agent)".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    #[test]
    fn bearer_beats_query_beats_cookie() {
        let all = headers(&[
            (header::AUTHORIZATION, "Bearer abc"),
            (header::COOKIE, "lantern_session=s1"),
        ]);
        assert_eq!(
            credential(&all, Some("token=q")),
            Some(Credential::Token("abc".into()))
        );
        let cookie_only = headers(&[(header::COOKIE, "a=1; lantern_session=s1; b=2")]);
        assert_eq!(
            credential(&cookie_only, Some("after=3&token=q")),
            Some(Credential::Token("q".into()))
        );
        assert_eq!(
            credential(&HeaderMap::new(), Some("token=a%5Fb")),
            Some(Credential::Token("a_b".into())),
            "a query value is decoded"
        );
        assert_eq!(
            credential(&cookie_only, Some("after=3")),
            Some(Credential::Session("s1"))
        );
        assert_eq!(credential(&HeaderMap::new(), Some("after=3")), None);
    }

    #[test]
    fn a_malformed_authorization_header_is_a_wrong_credential_not_none() {
        let basic = headers(&[(header::AUTHORIZATION, "Basic dXNlcg==")]);
        assert_eq!(credential(&basic, None), Some(Credential::Token("".into())));
    }
}
