//! `/ws/workflow/{id}?after=N`: a viewer's socket (PROTOCOL.md §2).
//!
//! `hello` → every logged event with `seq > after` → `replay_done` → live events, in `seq`
//! order, each once. The backlog is pulled only while the outbox has room (a big backlog never
//! fills memory); live events are pushed as they come, and a reader that lets its outbox
//! overflow is closed with 4008 and resumes with `after`. Client frames: `user_input` (appended
//! and acked), `heartbeat` (answered); anything else gets an `error` frame and the connection
//! stays open. The server pings every `heartbeat_ms` and drops a peer that missed two.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::Instrument;

use app::protocol::{ClientFrame, ErrorCode, ServerFrame};
use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
        ConnectInfo, Path, Query, State,
    },
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use futures::stream::SplitStream;
use futures::StreamExt;

use super::close;
use super::gate::{self, Admitted};
use super::link::{self, Link};
use super::outbox::Outbox;
use crate::auth::{Caller, TokenKind};
use crate::error::LanternError;
use crate::hub::{Feed, LiveGuard, LiveViewer};
use crate::metrics::Metrics;
use crate::store::StoredEvent;
use crate::AppState;

/// The HTTP side: the [`gate`] checks (403 / 401 / 404 / 429), the cursor (400), then the
/// upgrade.
pub async fn upgrade(
    State(state): State<AppState>,
    caller: Result<Caller, LanternError>,
    Path(workflow_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let admitted = match gate::admit(
        &state,
        &headers,
        peer,
        caller,
        TokenKind::User,
        &workflow_id,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let after = match gate::after(&query) {
        Ok(after) => after.unwrap_or(0),
        Err(e) => return e.into_response(),
    };
    let (feed, info) = match state.hub.feed(&workflow_id, after).await {
        Ok(started) => started,
        Err(e) => return e.into_response(),
    };
    let limit = state.config.client_frame_bytes;
    // Made here, inside the request's span, so the socket's log lines name that request.
    let span = tracing::info_span!(
        "socket",
        kind = "subscriber",
        workflow = %workflow_id,
        user = %admitted.caller.user,
    );
    let accepted = Box::new(Accepted {
        state,
        admitted,
        feed,
        info,
        after,
    });
    upgrade
        // Idle sockets cost their read buffer; the default 128 KiB dominates memory per socket.
        // A viewer sends only small frames (inputs, heartbeats), so 512 bytes is plenty.
        .read_buffer_size(512)
        .write_buffer_size(16 * 1024)
        .max_message_size(limit.max(1))
        .max_frame_size(limit.max(1))
        .on_upgrade(move |socket| serve(socket, accepted).instrument(span))
}

/// Per-connection state the main loop needs.
struct Connection {
    link: Link,
    workflow_id: String,
    replay_done_sent: bool,
    /// The `after` the backlog started from (a replay of nothing is not counted).
    replayed_from: u64,
    /// Where this connection's events come from until it has caught up; `None` once live.
    feed: Option<Feed>,
    /// Set once caught up: the appender queues new events on the outbox itself
    /// ([`OutboxViewer`]), so a live event wakes only the writer task, not this one.
    live: Option<LiveGuard>,
}

/// A caught-up viewer's outbox as the appender sees it.
struct OutboxViewer {
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
}

impl LiveViewer for OutboxViewer {
    fn deliver(&self, event: &Arc<StoredEvent>) -> bool {
        let message = Message::Text(event.json.clone());
        if !link::push_or_close(&self.outbox, &self.metrics, message) {
            return false;
        }
        delivered(&self.metrics, event);
        true
    }
}

/// Count a delivery, and time it from the commit.
fn delivered(metrics: &Metrics, event: &StoredEvent) {
    metrics.events_delivered.inc();
    if let Some(appended) = event.appended_at {
        metrics
            .fanout_seconds
            .observe(appended.elapsed().as_secs_f64());
    }
}

/// The next event of `feed`, or never when there is none (the connection is live).
async fn next_event(feed: &mut Option<Feed>) -> crate::error::Result<Option<Arc<StoredEvent>>> {
    match feed {
        Some(feed) => feed.next().await,
        None => std::future::pending().await,
    }
}

/// What the socket takes over from its request, in one box: axum's upgrade task keeps its
/// callback's captures for the socket's whole life, so they should be one pointer.
struct Accepted {
    state: AppState,
    admitted: Admitted,
    feed: Feed,
    info: app::protocol::WorkflowInfo,
    after: u64,
}

/// Set the connection up, then run it. The setup is not part of the returned future: an async
/// fn keeps its arguments for as long as it runs, so the request's values (and the socket
/// before its split) would stay in every idle socket's memory beside what the loop uses.
fn serve(socket: WebSocket, accepted: Box<Accepted>) -> impl std::future::Future<Output = ()> {
    let Accepted {
        state,
        admitted,
        feed,
        info,
        after,
    } = *accepted;
    let (sink, stream) = socket.split();
    let (rate, burst) = (state.config.client_rate, state.config.client_burst);
    let revocations = state.accounts.revocations();
    let disconnect = state.hub.disconnect_signal();
    let shutdown = state.hub.shutdown_signal();
    let mut conn = Connection {
        link: Link::new(state, admitted.caller.clone(), rate, burst),
        workflow_id: info.id.clone(),
        replay_done_sent: false,
        replayed_from: after,
        feed: Some(feed),
        live: None,
    };
    let writer = tokio::spawn(conn.link.outbox.clone().write_to(sink));
    let heartbeat = conn.link.heartbeat();
    conn.link.send(&ServerFrame::Hello {
        workflow_id: info.id,
        last_seq: info.last_seq,
        status: info.status,
        heartbeat_ms: heartbeat.as_millis() as u64,
    });
    if after > info.last_seq {
        conn.link.outbox.close(
            close::CURSOR_AHEAD,
            "cursor ahead of the log; resume with after=0",
        );
    }
    conn.caught_up();
    let ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let session = Session {
        conn,
        stream,
        writer,
        revocations,
        disconnect,
        shutdown,
        ping,
        admitted,
    };
    Box::new(session).run()
}

/// A set-up connection: what its loop waits on.
struct Session {
    conn: Connection,
    stream: SplitStream<WebSocket>,
    writer: tokio::task::JoinHandle<()>,
    revocations: tokio::sync::broadcast::Receiver<Arc<str>>,
    /// Changes when every viewer socket must drop its connection
    /// ([`Hub::disconnect_signal`](crate::hub::Hub::disconnect_signal)).
    disconnect: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    ping: tokio::time::Interval,
    /// Held until the connection ends: it holds this socket's places in the connection limits.
    admitted: Admitted,
}

impl Session {
    /// Boxed: an async fn moves a by-value argument into its own locals, so an unboxed session
    /// would sit in the future twice, as argument and as local.
    async fn run(mut self: Box<Self>) {
        tracing::debug!(after = self.conn.replayed_from, "socket open");
        let conn = &mut self.conn;
        while !conn.link.outbox.is_closing() {
            // While replaying, pull from the store only as fast as the peer reads.
            let replaying = conn.feed.as_ref().is_some_and(|f| !f.backlog_done());
            let paused = replaying && !conn.link.outbox.has_room();
            tokio::select! {
                _ = self.disconnect.changed() => {
                    // Drop the TCP connection with no close frame, as a network fault would.
                    self.writer.abort();
                    return;
                }
                frame = self.stream.next() => match frame {
                    // Boxed: a client's frame (a heartbeat, an input) is rare, and its future
                    // is the largest this loop awaits; inline, every idle socket would carry
                    // its size.
                    Some(Ok(message)) => Box::pin(conn.on_message(message)).await,
                    Some(Err(e)) => {
                        let (code, reason) = super::read_error_close(&e);
                        conn.link.outbox.close(code, reason);
                    }
                    None => {
                        // The peer is gone: nothing more can be written.
                        self.writer.abort();
                        return;
                    }
                },
                event = next_event(&mut conn.feed), if !paused => conn.on_event(event),
                () = conn.link.outbox.closed() => {}
                revoked = self.revocations.recv() => conn.link.on_revocation(revoked).await,
                () = super::shutdown_begun(&mut self.shutdown) => conn.link.shutting_down(),
                _ = conn.link.outbox.drained(), if paused => {}
                _ = self.ping.tick() => {
                    if conn.link.peer_is_dead() {
                        // It stopped answering: no close handshake to wait for.
                        self.writer.abort();
                        return;
                    }
                }
            }
        }
        // Off the live list before the closing handshake: nothing more is queued.
        drop(conn.live.take());
        super::finish_closing(self.writer, self.stream).await;
        tracing::debug!("socket closed");
        drop(self.admitted);
    }
}

impl Connection {
    /// After the hello and after each event from the feed: once the backlog is out, say so
    /// (`replay_done`), then hand the connection to the appender if it has every event
    /// appended so far (else the feed goes on, and this runs again after its next event).
    fn caught_up(&mut self) {
        let Some(feed) = self.feed.take() else { return };
        if !feed.backlog_done() {
            self.feed = Some(feed);
            return;
        }
        if !self.replay_done_sent {
            self.replay_done_sent = true;
            if feed.cursor() > self.replayed_from {
                self.link.state.hub.metrics().replays.inc();
            }
            self.link.send(&ServerFrame::ReplayDone {
                last_seq: feed.cursor(),
            });
        }
        if self.link.outbox.is_closing() {
            self.feed = Some(feed);
            return;
        }
        let viewer = Arc::new(OutboxViewer {
            outbox: self.link.outbox.clone(),
            metrics: self.link.state.hub.metrics().clone(),
        });
        match feed.go_live(viewer) {
            Ok(live) => self.live = Some(live),
            Err(feed) => self.feed = Some(feed),
        }
    }

    fn on_event(&mut self, event: crate::error::Result<Option<Arc<StoredEvent>>>) {
        match event {
            Ok(Some(event)) => {
                self.link.push(Message::Text(event.json.clone()));
                delivered(self.link.state.hub.metrics(), &event);
                self.caught_up();
            }
            Ok(None) => self
                .link
                .outbox
                .close(close::GOING_AWAY, "server shutting down"),
            Err(e) => {
                tracing::error!(error = %e, workflow = %self.workflow_id, "feed failed");
                self.link.outbox.close(close::INTERNAL, "internal error");
            }
        }
    }

    async fn on_message(&mut self, message: Message) {
        let limit = self.link.state.config.client_frame_bytes;
        if let Some(text) = self.link.on_message(message, limit) {
            self.on_text(text.as_str()).await;
        }
    }

    async fn on_text(&mut self, text: &str) {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                let message = format!("invalid frame: {e}");
                return self.link.error(ErrorCode::BadRequest, &message, None);
            }
        };
        match frame {
            ClientFrame::Heartbeat { correlation_id } => self
                .link
                .send(&ServerFrame::HeartbeatResponse { correlation_id }),
            ClientFrame::UserInput {
                content,
                client_msg_id,
            } => {
                let link = &self.link;
                let result = link
                    .state
                    .hub
                    .submit_input(
                        &self.workflow_id,
                        &link.caller.user,
                        content,
                        client_msg_id.clone(),
                    )
                    .await;
                match result {
                    Ok(seq) => link.send(&ServerFrame::Ack {
                        client_msg_id: Some(client_msg_id),
                        id: None,
                        seq,
                    }),
                    Err(e) => link.error_from(&e, None),
                }
            }
        }
    }
}
