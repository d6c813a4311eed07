//! `GET /sse/workflows`: the signed-in user's workflow list, live, as Server-Sent Events. The
//! home page listens to it instead of polling.
//!
//! Guarantees: the first event is `list` (the whole list, newest first), so nothing that
//! happened before the stream opened is missed — the hub's change feed is subscribed to
//! before the list is read. Then one `workflow` event (a workflow object, §5) per workflow
//! created or whose status changed. A listener that falls behind the change feed gets a fresh
//! `list` instead of the changes it missed. Only the caller's own workflows are ever sent.
//! The stream ends when the server shuts down or the caller's token or session is revoked;
//! the browser's `EventSource` then reconnects by itself and starts again with `list`.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::State,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures::{stream, Stream};
use tokio::sync::{broadcast, watch};

use crate::auth::{Caller, TokenKind};
use crate::error::LanternError;
use crate::hub::Hub;
use crate::AppState;

/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub async fn workflows(State(state): State<AppState>, caller: Caller) -> Response {
    if let Err(e) = caller.require(TokenKind::User) {
        return e.into_response();
    }
    let listener = Listener {
        hub: state.hub.clone(),
        changes: state.hub.list_changes(),
        revocations: state.accounts.revocations(),
        shutdown: state.hub.shutdown_signal(),
        caller,
        send_list: true,
    };
    Sse::new(listener.into_stream())
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// One open stream's state.
struct Listener {
    hub: Arc<Hub>,
    changes: broadcast::Receiver<Arc<str>>,
    revocations: broadcast::Receiver<Arc<str>>,
    shutdown: watch::Receiver<bool>,
    caller: Caller,
    /// The next event must be the whole list (first event, or after lagging).
    send_list: bool,
}

/// What woke a waiting stream.
enum Wake {
    Change(Result<Arc<str>, broadcast::error::RecvError>),
    Revoked(Result<Arc<str>, broadcast::error::RecvError>),
}

/// What the stream does next.
enum Next {
    Send(Event),
    /// A change the caller may not see, or a revocation of someone else's.
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
            _ = self.shutdown.wait_for(|stopping| *stopping) => return Next::End,
        };
        match woke {
            Wake::Change(Ok(id)) => self.workflow(&id).await,
            Wake::Change(Err(broadcast::error::RecvError::Lagged(_))) => self.list().await,
            Wake::Change(Err(broadcast::error::RecvError::Closed)) => Next::End,
            Wake::Revoked(Ok(id)) if self.caller.uses(&id) => Next::End,
            Wake::Revoked(Ok(_)) => Next::Skip,
            // Missed some: end and let the browser reconnect, which checks the credential.
            Wake::Revoked(Err(_)) => Next::End,
        }
    }

    async fn list(&self) -> Next {
        let list = self
            .hub
            .store()
            .list_workflows(Some(&self.caller.user))
            .await;
        self.event("list", list)
    }

    async fn workflow(&self, id: &str) -> Next {
        if self.hub.check_owner(id, &self.caller.user).await.is_err() {
            return Next::Skip;
        }
        match self.hub.store().workflow(id).await {
            Ok(Some(info)) => self.event("workflow", Ok(info)),
            Ok(None) => Next::Skip,
            Err(e) => self.event::<()>("workflow", Err(e)),
        }
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
