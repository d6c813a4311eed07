//! `/ws/agent/{id}?after=N`: an external agent's socket (PROTOCOL.md §3).
//!
//! The agent sends events (one per frame, or an array appended all or nothing), each as in §1
//! without `seq`/`ts`/`workflow_id`, with an optional `id`. Each goes through the hub like any
//! producer's; an event with an `id` is acked `{"type":"ack","id":…,"seq":N}` (a retried `id`
//! gets its first `seq` again), a refused one gets an `error` carrying its `id`. The workflow's
//! `user_input` and `interrupt_resolved` events are forwarded to the agent as logged — first
//! those after `after` (default: the inputs nobody has answered yet, i.e. after the last event
//! that is not a person's input or answer), then each new one as it is appended — and so is a
//! terminal `workflow_status` this connection did not publish itself (a person's cancel), so the
//! agent can stop its work. `{"type":"heartbeat","correlation_id":…}` is answered as on the
//! viewer socket.
//!
//! While at least one agent is connected the workflow is attended; when the last one leaves,
//! the hub's grace period starts (`--agent-grace-secs`): no agent back by its end and the
//! workflow is closed and marked `failed`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::Instrument;

use app::protocol::{AgentEvent, ErrorCode, EventBody, EventKind, ServerFrame};
use axum::extract::ws::Utf8Bytes;
use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
        ConnectInfo, Path, Query, State,
    },
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use futures::{FutureExt, StreamExt};
use serde_json::Value;

use super::close;
use super::gate::{self, Admitted, Opening};
use super::ingest;
use super::link::Link;
use crate::auth::{Caller, TokenKind};
use crate::error::LanternError;
use crate::metrics::ConnectionKind;
use crate::store::StoredEvent;
use crate::AppState;

/// Bytes read from an agent's socket at a time.
const AGENT_READ_BUFFER: usize = 16 * 1024;

/// At most this many frames that arrived together are published together.
const MAX_FRAMES_AT_ONCE: usize = 256;

/// The HTTP side: the [`gate`] checks (403 / 401 / 404 / 429), the cursor (400), the upgrade.
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
        kind: TokenKind::Agent,
        workflow: Some(&workflow_id),
        counted_as: ConnectionKind::Agent,
    };
    let admitted = match gate::admit(&state, &headers, peer, caller, opening).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let after = match gate::after(&query) {
        Ok(after) => after,
        Err(e) => return e.into_response(),
    };
    let limit = state.config.agent_frame_bytes.max(1);
    // Made here, inside the request's span, so the socket's log lines name that request.
    let span = tracing::info_span!(
        "socket",
        kind = "agent",
        workflow = %workflow_id,
        user = %admitted.caller.user,
    );
    upgrade
        // tungstenite's default read buffer is 128 KiB, made ready (zero-filled) for every
        // read: an agent streaming a delta per frame paid that per delta (`memset` in a profile
        // of the streaming bench). 16 KiB holds many small frames; a big one is read in pieces.
        .read_buffer_size(AGENT_READ_BUFFER)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            serve(socket, state, admitted, workflow_id, after).instrument(span)
        })
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    // Held until the connection ends: it holds this socket's places in the connection limits.
    admitted: Admitted,
    workflow_id: String,
    after: Option<u64>,
) {
    tracing::debug!(?after, "socket open");
    let (sink, mut stream) = socket.split();
    let (rate, burst) = (state.config.agent_rate, state.config.agent_burst);
    let hub = state.hub.clone();
    let mut revocations = state.accounts.revocations();
    let shutdown = state.shutdown.clone();
    let mut link = Link::new(state, admitted.caller.clone(), rate, burst);
    let writer = tokio::spawn(link.outbox.clone().write_to(sink));
    // Held until the connection ends: while any agent holds one, no grace period runs.
    let started = async {
        let (attended, answered) = hub.agent_connected(&workflow_id).await?;
        let (inputs, _) = hub.feed(&workflow_id, after.unwrap_or(answered)).await?;
        Ok::<_, LanternError>((attended, inputs))
    };
    let (attended, mut inputs) = match started.await {
        Ok(started) => started,
        Err(e) => {
            tracing::error!(error = %e, workflow = %workflow_id, "agent socket");
            link.outbox.close(close::INTERNAL, "internal error");
            super::finish_closing(writer, stream).await;
            return;
        }
    };
    // The seq of a terminal status this connection published: not sent back to it.
    let mut own_end: Option<u64> = None;
    let heartbeat = link.heartbeat();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    while !link.outbox.is_closing() {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(message)) => {
                    let limit = link.state.config.agent_frame_bytes;
                    let mut texts: Vec<Utf8Bytes> = link.on_message(message, limit).into_iter().collect();
                    // Frames that arrived meanwhile are published together (one commit), each
                    // still all or nothing on its own: see `Hub::publish_each`.
                    let mut gone = false;
                    while texts.len() < MAX_FRAMES_AT_ONCE && !link.outbox.is_closing() {
                        match stream.next().now_or_never() {
                            Some(Some(Ok(message))) => texts.extend(link.on_message(message, limit)),
                            Some(Some(Err(e))) => {
                                let (code, reason) = super::read_error_close(&e);
                                link.outbox.close(code, reason);
                                break;
                            }
                            Some(None) => {
                                gone = true;
                                break;
                            }
                            None => break,
                        }
                    }
                    if let Some(end) = on_texts(&link, &workflow_id, &texts).await {
                        own_end = Some(end);
                    }
                    if gone {
                        writer.abort();
                        return;
                    }
                }
                Some(Err(e)) => {
                    let (code, reason) = super::read_error_close(&e);
                    link.outbox.close(code, reason);
                }
                None => {
                    writer.abort();
                    return;
                }
            },
            event = inputs.next(), if link.outbox.has_room() => forward(&link, event, own_end),
            _ = link.outbox.drained(), if !link.outbox.has_room() => {}
            revoked = revocations.recv() => link.on_revocation(revoked).await,
            () = shutdown.begun() => link.shutting_down(),
            _ = ping.tick() => {
                if link.peer_is_dead() {
                    writer.abort();
                    return;
                }
            }
        }
    }
    super::finish_closing(writer, stream).await;
    tracing::debug!("socket closed");
    drop((attended, admitted));
}

/// Pass a logged event on to the agent if it is for the agent: a person's input, an answer to
/// (or the closing of) an interrupt, or the workflow's end that the agent did not publish
/// (`own_end`).
fn forward(
    link: &Link,
    event: crate::error::Result<Option<Arc<StoredEvent>>>,
    own_end: Option<u64>,
) {
    match event {
        Ok(Some(event)) if is_for_the_agent(&event, own_end) => {
            link.push(Message::Text(event.json.clone()))
        }
        Ok(Some(_)) => {}
        Ok(None) => link.outbox.close(close::GOING_AWAY, "server shutting down"),
        Err(e) => {
            tracing::error!(error = %e, "agent input feed failed");
            link.outbox.close(close::INTERNAL, "internal error");
        }
    }
}

fn is_for_the_agent(event: &StoredEvent, own_end: Option<u64>) -> bool {
    match event.kind() {
        EventKind::USER_INPUT | EventKind::INTERRUPT_RESOLVED => true,
        // Status events are few: parsed to see whether this one ends the workflow.
        EventKind::WORKFLOW_STATUS if own_end != Some(event.seq()) => matches!(
            event.event().map(|e| e.body),
            Ok(EventBody::WorkflowStatus { status, .. }) if status.is_terminal()
        ),
        _ => false,
    }
}

/// Text frames from the agent, in the order they came: heartbeats (answered), bad frames (an
/// `error` each), and requests to append (one per frame, each all or nothing, published
/// together). Returns the `seq` of a terminal status they appended.
async fn on_texts(link: &Link, workflow_id: &str, texts: &[Utf8Bytes]) -> Option<u64> {
    let mut requests = Vec::with_capacity(texts.len());
    for text in texts {
        // Most frames are well-formed events, read straight from the text; the rest (a
        // heartbeat, a bad frame) go the long way, which answers the heartbeat or says what is
        // wrong.
        let events = match ingest::well_formed_events(text.as_str()) {
            Some(events) => events,
            None => match events_or_reply(link, text.as_str()) {
                Some(events) => events,
                None => continue,
            },
        };
        requests.push(events);
    }
    if requests.is_empty() {
        return None;
    }
    let asked: Vec<(Vec<Option<String>>, Option<usize>)> = requests
        .iter()
        .map(|events| {
            let ids = events.iter().map(|e| e.id.clone()).collect();
            let ends = events.iter().position(|e| {
                matches!(&e.body, EventBody::WorkflowStatus { status, .. } if status.is_terminal())
            });
            (ids, ends)
        })
        .collect();
    let answers = ingest::publish_each(&link.state.hub, &link.caller, workflow_id, requests).await;
    let mut own_end = None;
    for ((ids, ends), answer) in asked.into_iter().zip(answers) {
        match answer {
            Ok(seqs) => {
                if let Some(end) = ends.and_then(|at| seqs.get(at).copied()) {
                    own_end = Some(end);
                }
                for (id, seq) in ids.into_iter().zip(seqs) {
                    if let Some(id) = id {
                        link.send(&ServerFrame::Ack {
                            client_msg_id: None,
                            id: Some(id),
                            seq,
                        });
                    }
                }
            }
            // Refused whole. A single event's error carries its id; a batch's message names
            // the index of the event at fault.
            Err(e) => {
                let id = if ids.len() == 1 { ids[0].clone() } else { None };
                link.error_from(&e, id);
            }
        }
    }
    own_end
}

/// A frame that is not well-formed events: a heartbeat is answered, and anything wrong with
/// the frame gets an `error` (`None` then); events that do parse this way are returned.
fn events_or_reply(link: &Link, text: &str) -> Option<Vec<AgentEvent>> {
    let batch: ingest::OneOrMany = match serde_json::from_str(text) {
        Ok(batch) => batch,
        Err(e) => {
            let message = format!("invalid frame: {e}");
            link.error(ErrorCode::BadRequest, &message, None);
            return None;
        }
    };
    if let ingest::OneOrMany::One(frame) = &batch {
        if frame.get("type").and_then(Value::as_str) == Some("heartbeat") {
            let correlation_id = frame
                .get("correlation_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            link.send(&ServerFrame::HeartbeatResponse { correlation_id });
            return None;
        }
    }
    match ingest::events(batch) {
        Ok(events) => Some(events),
        Err(refused) => {
            link.error_from(&refused.error, refused.id);
            None
        }
    }
}
