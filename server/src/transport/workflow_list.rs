//! `GET /sse/workflows`: the signed-in user's workflow list, live, as Server-Sent Events. The
//! home page listens to it instead of polling.
//!
//! Guarantees: the first event is `list` (the whole list, newest first), so nothing that
//! happened before the stream opened is missed — the hub's change feed is subscribed to
//! before the list is read. Then one `workflow` event (a workflow object, §5) per workflow
//! created or whose status changed. A listener that falls behind the change feed gets a fresh
//! `list` instead of the changes it missed. Only the caller's own workflows are ever sent, and
//! the changes of other users cost a listener nothing but a comparison: the hub reads each
//! change once and names its owner ([`ListChange`]).
//!
//! A stream passes the same [`gate`](super::gate) as a socket and counts against the same
//! per-address and per-user limits (and in the stats, as a `stream`). It ends when the server
//! shuts down or the caller's token or session is revoked; the browser's `EventSource` then
//! reconnects by itself and starts again with `list`.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, State},
    http::HeaderMap,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures::{stream, Stream};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::gate::{self, Admitted, Opening};
use crate::auth::{Caller, TokenKind};
use crate::error::LanternError;
use crate::hub::{Hub, ListChange};
use crate::metrics::ConnectionKind;
use crate::AppState;

pub async fn workflows(
    State(state): State<AppState>,
    caller: Result<Caller, LanternError>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let opening = Opening {
        kind: TokenKind::User,
        workflow: None,
        counted_as: ConnectionKind::Stream,
    };
    let admitted = match gate::admit(&state, &headers, peer, caller, opening).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let listener = Listener {
        hub: state.hub.clone(),
        changes: state.hub.list_changes(),
        revocations: state.accounts.revocations(),
        shutdown: state.shutdown.token(),
        admitted,
        send_list: true,
    };
    Sse::new(listener.into_stream())
        .keep_alive(KeepAlive::new().interval(state.config.heartbeat()))
        .into_response()
}

/// One open stream's state.
struct Listener {
    hub: Arc<Hub>,
    changes: broadcast::Receiver<ListChange>,
    revocations: broadcast::Receiver<Arc<str>>,
    shutdown: CancellationToken,
    /// Who is listening, and the stream's places in the connection limits (freed with it).
    admitted: Admitted,
    /// The next event must be the whole list (first event, or after lagging).
    send_list: bool,
}

/// What woke a waiting stream.
enum Wake {
    Change(Result<ListChange, broadcast::error::RecvError>),
    Revoked(Result<Arc<str>, broadcast::error::RecvError>),
}

/// What the stream does next.
enum Next {
    Send(Event),
    /// A change of someone else's, or a revocation of someone else's.
    Skip,
    End,
}

impl Listener {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> {
        stream::unfold(self, |mut listener| async move {
            loop {
                match listener.next().await {
                    Next::Send(event) => return Some((Ok(event), listener)),
                    Next::Skip => continue,
                    Next::End => return None,
                }
            }
        })
    }

    async fn next(&mut self) -> Next {
        if std::mem::take(&mut self.send_list) {
            return self.list().await;
        }
        let woke = tokio::select! {
            change = self.changes.recv() => Wake::Change(change),
            revoked = self.revocations.recv() => Wake::Revoked(revoked),
            () = self.shutdown.cancelled() => return Next::End,
        };
        let caller = &self.admitted.caller;
        match woke {
            Wake::Change(Ok(change)) if *change.owner == *caller.user => {
                self.event("workflow", Ok(&*change.workflow))
            }
            Wake::Change(Ok(_)) => Next::Skip,
            Wake::Change(Err(broadcast::error::RecvError::Lagged(_))) => self.list().await,
            Wake::Change(Err(broadcast::error::RecvError::Closed)) => Next::End,
            Wake::Revoked(Ok(id)) if caller.uses(&id) => Next::End,
            Wake::Revoked(Ok(_)) => Next::Skip,
            // Missed some: end and let the browser reconnect, which checks the credential.
            Wake::Revoked(Err(_)) => Next::End,
        }
    }

    async fn list(&self) -> Next {
        let user = &self.admitted.caller.user;
        let list = self.hub.store().list_workflows(Some(user)).await;
        self.event("list", list)
    }

    fn event<T: serde::Serialize>(&self, name: &str, data: Result<T, LanternError>) -> Next {
        match data.and_then(|d| {
            Event::default()
                .event(name)
                .json_data(d)
                .map_err(|e| LanternError::Storage(e.to_string()))
        }) {
            Ok(event) => Next::Send(event),
            Err(e) => {
                tracing::warn!(error = %e, "workflow list stream ends");
                Next::End
            }
        }
    }
}
