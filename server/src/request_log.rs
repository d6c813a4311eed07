//! Request ids and the span every HTTP request (and so every socket upgrade) runs in.
//!
//! Each request gets an `x-request-id` (a ULID, or the one a proxy already set), returned in
//! the response, and a `request` span carrying it with the method and path (never the query:
//! it may hold `?token=`). Socket and workflow spans opened while handling a request sit inside
//! it, so a JSON log line of a socket names the request that opened it.

use axum::{body::Body, http::Request};
use tower_http::request_id::{MakeRequestId, RequestId};

/// Makes a fresh ULID request id.
#[derive(Clone, Copy, Default)]
pub struct RequestIds;

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        ulid::Ulid::new()
            .to_string()
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

/// The span a request is handled in.
pub fn request_span(request: &Request<Body>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}
