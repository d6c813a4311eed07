//! Cross-site guards. A page of another origin — another site, a sibling subdomain, another
//! port of this host — must not be able to act with the user's cookies:
//! - a socket upgrade or event stream whose `Origin` is neither this server's own (same host
//!   and port as the request's `Host`) nor in the configured allow-list is refused with 403
//!   before it opens ([`allowed`], in [`crate::transport::gate`]);
//! - every state-changing request (any method but GET, HEAD, OPTIONS: forms, server functions,
//!   login and logout, the API's writes) passes [`same_origin_writes`]: a foreign `Origin`, or
//!   no `Origin` but `Sec-Fetch-Site` saying another site's page sent it, is 403.
//!
//! Programs send neither header and are judged by their token alone (a cookie cannot ride
//! along with a request another site's page did not make).

use axum::{
    extract::{Request, State},
    http::{
        header::{HOST, ORIGIN},
        Method,
    },
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::LanternError;
use crate::AppState;

/// Middleware: refuse a state-changing request that a page of another origin made.
pub async fn same_origin_writes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let fetched_from = header("sec-fetch-site");
    let foreign = match header(ORIGIN.as_str()) {
        Some(origin) => {
            let host = header(HOST.as_str());
            !allowed(Some(origin), host, &state.config.allowed_origins())
        }
        None => matches!(fetched_from, Some("cross-site" | "same-site")),
    };
    if foreign {
        let refusal = "a page of another origin may not change anything here";
        return LanternError::Forbidden(refusal.into()).into_response();
    }
    next.run(request).await
}

/// Is an upgrade with this `Origin` (if any) allowed, given the request's `Host`?
pub fn allowed(origin: Option<&str>, host: Option<&str>, allow_list: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    let origin = origin.trim().trim_end_matches('/');
    if allow_list
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    host.is_some_and(|host| authority.eq_ignore_ascii_case(host.trim()))
}

/// The client's address: the TCP peer, or, with `trust_forwarded` (only behind a proxy that
/// sets it), the last address in `X-Forwarded-For`, which that proxy appended.
pub fn client_ip(
    peer: std::net::SocketAddr,
    headers: &axum::http::HeaderMap,
    trust_forwarded: bool,
) -> std::net::IpAddr {
    let forwarded = trust_forwarded
        .then(|| headers.get("x-forwarded-for")?.to_str().ok())
        .flatten()
        .and_then(|list| list.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok());
    forwarded.unwrap_or(peer.ip())
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn forwarded_addresses_count_only_when_trusted() {
        let peer: std::net::SocketAddr = "10.0.0.1:5000".parse().expect("addr");
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "1.2.3.4, 5.6.7.8".parse().expect("header"),
        );
        assert_eq!(
            super::client_ip(peer, &headers, false).to_string(),
            "10.0.0.1"
        );
        assert_eq!(
            super::client_ip(peer, &headers, true).to_string(),
            "5.6.7.8"
        );
    }

    #[test]
    fn no_origin_is_left_to_the_token() {
        assert!(allowed(None, Some("127.0.0.1:3000"), &[]));
    }

    #[test]
    fn own_origin_is_allowed_other_sites_are_not() {
        assert!(allowed(
            Some("http://127.0.0.1:3000"),
            Some("127.0.0.1:3000"),
            &[]
        ));
        assert!(allowed(
            Some("https://Lantern.example"),
            Some("lantern.example"),
            &[]
        ));
        assert!(!allowed(
            Some("http://evil.example"),
            Some("127.0.0.1:3000"),
            &[]
        ));
        assert!(!allowed(
            Some("http://127.0.0.1:3001"),
            Some("127.0.0.1:3000"),
            &[]
        ));
        assert!(!allowed(Some("null"), Some("127.0.0.1:3000"), &[]));
        assert!(!allowed(Some("http://127.0.0.1:3000"), None, &[]));
    }

    #[test]
    fn the_allow_list_admits_named_origins() {
        let list = vec!["https://app.example.com".to_owned()];
        assert!(allowed(
            Some("https://app.example.com"),
            Some("internal:3000"),
            &list
        ));
        assert!(!allowed(
            Some("https://other.example.com"),
            Some("internal:3000"),
            &list
        ));
    }
}
