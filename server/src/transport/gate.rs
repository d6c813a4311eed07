//! What every socket upgrade and every event stream must pass before it opens, in this order
//! (PROTOCOL.md §2, §3): the page's `Origin` (403), the caller's token and its kind (401 /
//! 403), the workflow being the caller's (404, the same answer as for a workflow that does not
//! exist), and the per-address and per-user connection limits (429). Streams count against the
//! same limits as sockets: a connection is a connection.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::{
    http::{
        header::{HOST, ORIGIN},
        HeaderMap,
    },
    response::{IntoResponse, Response},
};

use crate::auth::{Caller, TokenKind};
use crate::error::LanternError;
use crate::limits::OpenSocket;
use crate::metrics::{ConnectionGauge, ConnectionKind};
use crate::{origin, AppState};

/// A connection that passed: who it is, and its places in the connection limits (freed when
/// this is dropped, with the connection).
pub struct Admitted {
    pub caller: Caller,
    _by_address: OpenSocket<IpAddr>,
    _by_user: OpenSocket<String>,
    /// Counted in the open connections until the connection ends.
    _counted: ConnectionGauge,
}

/// What is being opened.
pub struct Opening<'a> {
    /// The token kind it needs.
    pub kind: TokenKind,
    /// The workflow it is about, which must be the caller's; `None` for the user's list.
    pub workflow: Option<&'a str>,
    /// How it is counted.
    pub counted_as: ConnectionKind,
}

/// Run the checks for `opening`.
pub async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    caller: Result<Caller, LanternError>,
    opening: Opening<'_>,
) -> Result<Admitted, Response> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let allowed = state.config.allowed_origins();
    if !origin::allowed(header(ORIGIN), header(HOST), &allowed) {
        let refusal = "this page's origin may not open Lantern sockets or streams";
        return Err(LanternError::Forbidden(refusal.into()).into_response());
    }
    let caller = caller
        .and_then(|c| c.require(opening.kind).map(|()| c))
        .map_err(IntoResponse::into_response)?;
    if let Some(id) = opening.workflow {
        state
            .hub
            .check_owner(id, &caller.user)
            .await
            .map_err(IntoResponse::into_response)?;
    }
    let now = Instant::now();
    let address = origin::client_ip(peer, headers, state.config.trust_forwarded);
    let refused =
        |r: crate::limits::Refusal| LanternError::RateLimited(r.to_string()).into_response();
    let by_address = state.ip_limits.admit(address, now).map_err(refused)?;
    let by_user = state
        .user_limits
        .admit(caller.user.clone(), now)
        .map_err(refused)?;
    let counted = state.hub.metrics().open(opening.counted_as);
    Ok(Admitted {
        caller,
        _by_address: by_address,
        _by_user: by_user,
        _counted: counted,
    })
}

/// The `after` cursor of an upgrade's query, if given; a malformed one is `bad_request` (400).
pub fn after(
    query: &std::collections::HashMap<String, String>,
) -> Result<Option<u64>, LanternError> {
    query
        .get("after")
        .map(|a| a.parse::<u64>())
        .transpose()
        .map_err(|_| LanternError::BadRequest("after must be a non-negative integer".into()))
}
