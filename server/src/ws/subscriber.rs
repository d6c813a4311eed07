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
use std::time::{Duration, Instant};

use app::protocol::{ClientFrame, ErrorCode, ServerFrame};
use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
        ConnectInfo, Path, Query, State,
    },
    http::{
        header::{HOST, ORIGIN},
        HeaderMap, HeaderValue,
    },
    response::{IntoResponse, Response},
};
use futures::StreamExt;

use super::outbox::Outbox;
use crate::auth::{Caller, TokenKind};
use crate::error::LanternError;
use crate::hub::Feed;
use crate::limits::{FrameLimiter, Verdict};
use crate::origin;
use crate::AppState;

/// How long a closing connection may take to send what it has queued.
const CLOSE_GRACE: Duration = Duration::from_secs(30);

/// How long a closing connection waits for the peer to answer its close frame.
const CLOSE_ANSWER_WAIT: Duration = Duration::from_secs(5);

/// Close codes of PROTOCOL.md §4 used here.
mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const TOO_LARGE: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const UNAUTHORIZED: u16 = 4001;
    pub const TOO_SLOW: u16 = 4008;
    pub const CURSOR_AHEAD: u16 = 4009;
    pub const RATE_LIMITED: u16 = 4029;
}

/// The HTTP side, in this order: the Origin (403), the caller (401, or 403 for an agent
/// token), the workflow (404, also when it is someone else's), the cursor (400), the
/// per-address and per-user limits (429); then the upgrade.
pub async fn upgrade(
    State(state): State<AppState>,
    caller: Result<Caller, LanternError>,
    Path(workflow_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if !origin::allowed(header(ORIGIN), header(HOST), &state.config.allowed_origins) {
        return LanternError::Forbidden("this page's origin may not open Lantern sockets".into())
            .into_response();
    }
    let caller = match caller.and_then(|c| c.require(TokenKind::User).map(|()| c)) {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = state.hub.check_owner(&workflow_id, &caller.user).await {
        return e.into_response();
    }
    let after = match query.get("after").map(|a| a.parse::<u64>()) {
        None => 0,
        Some(Ok(after)) => after,
        Some(Err(_)) => {
            let e = LanternError::BadRequest("after must be a non-negative integer".into());
            return e.into_response();
        }
    };
    let feed = match state.hub.feed(&workflow_id, after).await {
        Ok((feed, info)) => (feed, info),
        Err(e) => return e.into_response(),
    };
    let client_ip = crate::origin::client_ip(peer, &headers, state.config.trust_forwarded);
    let admitted = match (
        state.ip_limits.admit(client_ip, Instant::now()),
        state.user_limits.admit(caller.user.clone(), Instant::now()),
    ) {
        (Ok(by_ip), Ok(by_user)) => (by_ip, by_user),
        (Err(refusal), _) | (_, Err(refusal)) => {
            return LanternError::RateLimited(refusal.to_string()).into_response()
        }
    };
    let limit = state.config.client_frame_bytes;
    upgrade
        // Idle sockets cost their read buffer; the default 128 KiB dominates memory per socket.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(limit.max(1))
        .max_frame_size(limit.max(1))
        .on_upgrade(move |socket| async move {
            serve(socket, state, caller, feed, after).await;
            drop(admitted);
        })
}

/// Per-connection state the main loop needs.
struct Connection {
    state: AppState,
    /// Who is connected: named in their inputs; its credential's revocation closes us.
    caller: Caller,
    workflow_id: String,
    outbox: Arc<Outbox>,
    replay_done_sent: bool,
    last_pong: Instant,
    limiter: FrameLimiter,
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    caller: Caller,
    (mut feed, info): (Feed, app::protocol::WorkflowInfo),
    after: u64,
) {
    let (sink, mut stream) = socket.split();
    let outbox = Outbox::new(state.config.queue_bytes);
    let writer = tokio::spawn(outbox.clone().write_to(sink));
    let heartbeat = Duration::from_millis(state.config.heartbeat_ms.max(1));
    let limiter = FrameLimiter::new(
        state.config.client_rate,
        state.config.client_burst,
        Instant::now(),
    );
    let mut revocations = state.accounts.revocations();
    let mut conn = Connection {
        caller,
        workflow_id: info.id.clone(),
        state,
        outbox,
        replay_done_sent: false,
        last_pong: Instant::now(),
        limiter,
    };
    conn.send(&ServerFrame::Hello {
        workflow_id: info.id.clone(),
        last_seq: info.last_seq,
        status: info.status,
        heartbeat_ms: heartbeat.as_millis() as u64,
    });
    if after > info.last_seq {
        conn.outbox.close(
            close::CURSOR_AHEAD,
            "cursor ahead of the log; resume with after=0",
        );
    }
    conn.maybe_replay_done(&feed);
    let mut disconnect = conn.state.hub.disconnect_signal();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    while !conn.outbox.is_closing() {
        // While replaying, pull from the store only as fast as the peer reads.
        let paused = !feed.backlog_done() && !conn.outbox.has_room();
        tokio::select! {
            _ = disconnect.changed() => {
                // Drop the TCP connection with no close frame, as a network fault would.
                writer.abort();
                return;
            }
            frame = stream.next() => match frame {
                Some(Ok(message)) => conn.on_message(message).await,
                Some(Err(e)) => {
                    let too_large = e.to_string().contains("too long");
                    let code = if too_large { close::TOO_LARGE } else { close::INTERNAL };
                    conn.outbox.close(code, if too_large { "frame too large" } else { "read error" });
                }
                None => {
                    // The peer is gone: nothing more can be written.
                    writer.abort();
                    return;
                }
            },
            event = feed.next(), if !paused => conn.on_event(event, &feed),
            revoked = revocations.recv() => conn.on_revocation(revoked).await,
            _ = conn.outbox.drained(), if paused => {}
            _ = ping.tick() => {
                if conn.peer_is_dead(heartbeat) {
                    // It stopped answering: no close handshake to wait for.
                    writer.abort();
                    return;
                }
            }
        }
    }
    // Closing handshake. Let the writer send what is queued (the close frame last), but not
    // forever: a peer that does not read would hold the task and its queue. Then keep reading,
    // and discarding, until the peer answers the close: closing the TCP connection while its
    // frames are still unread would make the kernel reset it, and a reset can destroy our close
    // frame before the peer reads it.
    let stop_writer = writer.abort_handle();
    if tokio::time::timeout(CLOSE_GRACE, writer).await.is_err() {
        stop_writer.abort();
        return;
    }
    let answered = async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_ANSWER_WAIT, answered).await;
}

impl Connection {
    /// Queue a control frame; an overflowing outbox closes the connection with 4008.
    fn send(&self, frame: &ServerFrame) {
        let text = serde_json::to_string(frame).unwrap_or_default();
        self.push(Message::Text(text.into()));
    }

    fn push(&self, message: Message) {
        if self.outbox.push(message).is_err() {
            self.outbox
                .close(close::TOO_SLOW, "too slow; resume with after");
        }
    }

    fn maybe_replay_done(&mut self, feed: &Feed) {
        if !self.replay_done_sent && feed.backlog_done() {
            self.replay_done_sent = true;
            self.send(&ServerFrame::ReplayDone {
                last_seq: feed.cursor(),
            });
        }
    }

    fn on_event(
        &mut self,
        event: crate::error::Result<Option<Arc<crate::store::StoredEvent>>>,
        feed: &Feed,
    ) {
        match event {
            Ok(Some(event)) => {
                self.push(Message::Text(event.json.clone()));
                self.maybe_replay_done(feed);
            }
            Ok(None) => self.outbox.close(close::GOING_AWAY, "server shutting down"),
            Err(e) => {
                tracing::error!(error = %e, workflow = %self.workflow_id, "feed failed");
                self.outbox.close(close::INTERNAL, "internal error");
            }
        }
    }

    /// A ping is due: true when the peer missed the last two, else the ping is queued.
    fn peer_is_dead(&mut self, heartbeat: Duration) -> bool {
        if self.last_pong.elapsed() > heartbeat * 2 + heartbeat / 2 {
            return true;
        }
        self.push(Message::Ping(Default::default()));
        false
    }

    /// Apply the frame rate limit; false when the frame must not be processed.
    fn within_rate(&mut self) -> bool {
        match self.limiter.check(Instant::now()) {
            Verdict::Allow => true,
            Verdict::LimitAndWarn => {
                let config = &self.state.config;
                let message = format!(
                    "too many frames: at most {} per second in bursts of {}; frames over it are dropped, and a client that keeps on is disconnected (4029)",
                    config.client_rate, config.client_burst
                );
                self.error(ErrorCode::RateLimited, &message);
                false
            }
            Verdict::Limit => false,
            Verdict::Close => {
                self.outbox.close(close::RATE_LIMITED, "rate limited");
                false
            }
        }
    }

    async fn on_message(&mut self, message: Message) {
        if matches!(message, Message::Text(_) | Message::Binary(_)) && !self.within_rate() {
            return;
        }
        match message {
            Message::Text(text) => self.on_text(text.as_str()).await,
            Message::Binary(_) => self.error(
                ErrorCode::BadRequest,
                "binary frames are not accepted; send JSON text",
            ),
            Message::Pong(_) => self.last_pong = Instant::now(),
            // A ping is answered by the WebSocket layer itself; it still shows the peer is alive.
            Message::Ping(_) => self.last_pong = Instant::now(),
            Message::Close(_) => self.outbox.close(close::NORMAL, "bye"),
        }
    }

    async fn on_text(&mut self, text: &str) {
        self.last_pong = Instant::now();
        if text.len() > self.state.config.client_frame_bytes {
            self.outbox.close(close::TOO_LARGE, "frame too large");
            return;
        }
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => return self.error(ErrorCode::BadRequest, &format!("invalid frame: {e}")),
        };
        match frame {
            ClientFrame::Heartbeat { correlation_id } => {
                self.send(&ServerFrame::HeartbeatResponse { correlation_id })
            }
            ClientFrame::UserInput {
                content,
                client_msg_id,
            } => {
                let hub = &self.state.hub;
                let result = hub
                    .submit_input(
                        &self.workflow_id,
                        &self.caller.user,
                        content,
                        client_msg_id.clone(),
                    )
                    .await;
                match result {
                    Ok(seq) => self.send(&ServerFrame::Ack {
                        client_msg_id: Some(client_msg_id),
                        id: None,
                        seq,
                    }),
                    Err(e) => self.error_from(&e),
                }
            }
        }
    }

    /// A token or session was revoked: close with 4001 if it was ours. A receiver that fell
    /// behind the announcements asks the accounts instead.
    async fn on_revocation(
        &mut self,
        revoked: Result<Arc<str>, tokio::sync::broadcast::error::RecvError>,
    ) {
        let ours = match revoked {
            Ok(id) => self.caller.uses(&id),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => !matches!(
                self.state.accounts.still_valid(&self.caller).await,
                Ok(true)
            ),
            // The accounts are gone: the server is stopping; other branches end the loop.
            Err(tokio::sync::broadcast::error::RecvError::Closed) => false,
        };
        if ours {
            self.outbox
                .close(close::UNAUTHORIZED, "the token or session was revoked");
        }
    }

    fn error_from(&self, e: &LanternError) {
        self.error(e.code(), &e.to_string());
    }

    fn error(&self, code: ErrorCode, message: &str) {
        self.send(&ServerFrame::Error {
            code,
            message: message.to_owned(),
            id: None,
        });
    }
}
