//! `/ws/workflow/{id}?after=N`: a viewer's socket (PROTOCOL.md §2).
//!
//! `hello` → every logged event with `seq > after` → `replay_done` → live events, in `seq`
//! order, each once. The backlog is pulled only while the outbox has room (a big backlog never
//! fills memory); live events are pushed as they come, and a reader that lets its outbox
//! overflow is closed with 4008 and resumes with `after`. Client frames: `user_input` and
//! `resolve` (appended and acked), `heartbeat` (answered); anything else gets an `error` frame and the connection
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
use super::gate::{self, Admitted, Opening};
use super::link::{self, Link};
use super::outbox::Outbox;
use crate::auth::{Caller, TokenKind};
use crate::error::LanternError;
use crate::hub::Answer;
use crate::hub::{Catchup, LiveViewer, Subscription};
use crate::metrics::{ConnectionKind, Metrics};
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
    let opening = Opening {
        kind: TokenKind::User,
        workflow: Some(&workflow_id),
        counted_as: ConnectionKind::Subscriber,
    };
    let admitted = match gate::admit(&state, &headers, peer, caller, opening).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let after = match gate::after(&query) {
        Ok(after) => after.unwrap_or(0),
        Err(e) => return e.into_response(),
    };
    let outbox = Outbox::new(state.config.queue_bytes);
    let viewer = Arc::new(OutboxViewer {
        outbox: outbox.clone(),
        metrics: state.hub.metrics().clone(),
    });
    let (subscription, info) =
        match Subscription::start(&state.hub, &workflow_id, after, viewer).await {
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
        outbox,
        subscription,
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
        .on_upgrade(move |socket| serve(socket, accepted, span))
}

/// Per-connection state the main loop needs.
struct Connection {
    link: Link,
    workflow_id: String,
    /// Where events come from until caught up; then the appender queues them on the outbox
    /// itself ([`OutboxViewer`]), so a live event wakes only the writer task, not this one.
    subscription: Subscription,
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
pub(super) fn delivered(metrics: &Metrics, event: &StoredEvent) {
    metrics.events_delivered.inc();
    if let Some(appended) = event.appended_at {
        metrics
            .fanout_seconds
            .observe(appended.elapsed().as_secs_f64());
    }
}

/// What the socket takes over from its request, in one box: axum's upgrade task keeps its
/// callback's captures for the socket's whole life, so they should be one pointer.
struct Accepted {
    state: AppState,
    admitted: Admitted,
    outbox: Arc<Outbox>,
    subscription: Subscription,
    info: app::protocol::WorkflowInfo,
    after: u64,
}

/// Set the connection up, then run it. The setup is not part of the returned future: an async
/// fn keeps its arguments for as long as it runs, so the request's values (and the socket
/// before its split) would stay in every idle socket's memory beside what the loop uses.
fn serve(
    socket: WebSocket,
    accepted: Box<Accepted>,
    span: tracing::Span,
) -> impl std::future::Future<Output = ()> {
    let entered = span.enter();
    let Accepted {
        state,
        admitted,
        outbox,
        subscription,
        info,
        after,
    } = *accepted;
    let (sink, stream) = socket.split();
    let (rate, burst) = (state.config.client_rate, state.config.client_burst);
    let revocations = state.accounts.revocations();
    let disconnect = state.hub.disconnect_signal();
    let shutdown = state.shutdown.token();
    let conn = Connection {
        link: Link::with_outbox(state, admitted.caller.clone(), rate, burst, outbox),
        workflow_id: info.id.clone(),
        subscription,
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
    tracing::debug!(after, "socket open");
    drop(entered);
    Box::new(session).run().instrument(span)
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
    /// Cancelled when the server begins to stop ([`crate::shutdown::Shutdown`]).
    shutdown: tokio_util::sync::CancellationToken,
    ping: tokio::time::Interval,
    /// Held until the connection ends: it holds this socket's places in the connection limits.
    admitted: Admitted,
}

impl Session {
    /// Boxed: an async fn moves a by-value argument into its own locals, so an unboxed session
    /// would sit in the future twice, as argument and as local.
    async fn run(mut self: Box<Self>) {
        let conn = &mut self.conn;
        while !conn.link.outbox.is_closing() {
            // While replaying, pull from the store only as fast as the peer reads.
            let paused = conn.subscription.replaying() && !conn.link.outbox.has_room();
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
                next = conn.subscription.next(), if !paused => conn.on_catchup(next),
                () = conn.link.outbox.closed() => {}
                revoked = self.revocations.recv() => conn.link.on_revocation(revoked).await,
                () = self.shutdown.cancelled() => conn.link.shutting_down(),
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
        conn.subscription.stop();
        super::finish_closing(self.writer, self.stream).await;
        tracing::debug!("socket closed");
        drop(self.admitted);
    }
}

impl Connection {
    /// Send what catching up produced: the next event of the backlog, or `replay_done`.
    fn on_catchup(&mut self, next: crate::error::Result<Option<Catchup>>) {
        match next {
            Ok(Some(Catchup::Event(event))) => {
                self.link.push(Message::Text(event.json.clone()));
                delivered(self.link.state.hub.metrics(), &event);
            }
            Ok(Some(Catchup::ReplayDone { last_seq })) => {
                self.link.send(&ServerFrame::ReplayDone { last_seq })
            }
            Ok(None) => self
                .link
                .outbox
                .close(close::GOING_AWAY, "server shutting down"),
            Err(e) => {
                tracing::error!(error = %e, workflow = %self.workflow_id, "catching up failed");
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
                self.acked(result, client_msg_id);
            }
            ClientFrame::Resolve {
                interrupt_id,
                status,
                payload,
                client_msg_id,
            } => {
                let link = &self.link;
                let answer = Answer {
                    interrupt_id,
                    status,
                    payload,
                    client_msg_id: client_msg_id.clone(),
                };
                let result = link
                    .state
                    .hub
                    .resolve(&self.workflow_id, &link.caller.user, answer)
                    .await;
                self.acked(result, client_msg_id);
            }
        }
    }

    /// Ack what a person sent by its `client_msg_id`, or say why it was refused.
    fn acked(&self, result: crate::error::Result<u64>, client_msg_id: String) {
        match result {
            Ok(seq) => self.link.send(&ServerFrame::Ack {
                client_msg_id: Some(client_msg_id),
                id: None,
                seq,
            }),
            Err(e) => self.link.error_from(&e, None),
        }
    }
}
