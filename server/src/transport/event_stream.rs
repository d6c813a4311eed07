//! What both workflow event streams (PROTOCOL.md §7 [`super::sse`], §8 [`super::agui`]) do the
//! same way: the [`gate`] checks before the stream starts, the cursor (`Last-Event-ID` wins
//! over `after`), following the workflow through a [`Subscription`] (the one fan-out path the
//! subscriber socket also uses), a keep-alive comment every `heartbeat_ms`, and the end of the
//! stream — a reader too slow for its outbox, the caller's revoked credential, the server
//! stopping. What the stream *says* is its [`Render`]: the transport file is only that.
//!
//! The appender queues each live event on the stream's own [`Outbox`] as a shared pointer (no
//! copy); the stream's task renders it when the reader takes more, several events per write.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use app::protocol::WorkflowInfo;
use axum::{
    body::{Body, Bytes},
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
};
use futures::stream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::gate::{self, Admitted, Opening};
use super::link;
use super::outbox::{Frame, Outbox, WriteNow};
use crate::auth::{Caller, TokenKind};
use crate::error::LanternError;
use crate::hub::{Catchup, LiveViewer, Subscription};
use crate::metrics::{ConnectionKind, Metrics};
use crate::store::StoredEvent;
use crate::AppState;

/// How a stream writes what it follows. Each method appends complete SSE messages to `out`.
pub trait Render: Send + 'static {
    /// The stream opens on `workflow` (as it was when the backlog was read).
    fn open(&mut self, workflow: &WorkflowInfo, heartbeat_ms: u64, out: &mut String);
    /// The next logged event, in `seq` order, each once.
    fn event(&mut self, event: &StoredEvent, out: &mut String);
    /// Every event that existed when the stream opened has been written.
    fn replay_done(&mut self, last_seq: u64, out: &mut String);
    /// The stream has said all it will: end it (an AG-UI run's reply ends with its run).
    fn done(&self) -> bool {
        false
    }
}

/// One SSE message: `event:` when named, `id:` when given, then `data:` (one line: our JSON
/// never holds a raw newline).
pub fn message(out: &mut String, event: Option<&str>, id: Option<u64>, data: &str) {
    use std::fmt::Write;
    if let Some(event) = event {
        let _ = writeln!(out, "event: {event}");
    }
    if let Some(id) = id {
        let _ = writeln!(out, "id: {id}");
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
}

/// Where a stream starts: after the `Last-Event-ID` the client sends back (as `EventSource`
/// does by itself when it reconnects), else after `?after=`, else from the start. Either being
/// malformed is `bad_request`.
pub fn cursor(headers: &HeaderMap, query: &HashMap<String, String>) -> Result<u64, LanternError> {
    match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                LanternError::BadRequest("Last-Event-ID must be a non-negative integer".into())
            }),
        None => Ok(gate::after(query)?.unwrap_or(0)),
    }
}

/// A request to follow a workflow as an event stream.
pub struct Request {
    pub state: AppState,
    pub caller: Result<Caller, LanternError>,
    pub workflow_id: String,
    pub query: HashMap<String, String>,
    pub peer: SocketAddr,
    pub headers: HeaderMap,
}

/// Answer `request` with a stream rendered by `render`, or with the HTTP error the gate or the
/// cursor gave (401, 403, 404, 429, 400) before any stream starts.
pub async fn follow(request: Request, render: impl Render) -> Response {
    let Request {
        state,
        caller,
        workflow_id,
        query,
        peer,
        headers,
    } = request;
    let opening = Opening {
        kind: TokenKind::User,
        workflow: Some(&workflow_id),
        counted_as: ConnectionKind::Stream,
    };
    let admitted = match gate::admit(&state, &headers, peer, caller, opening).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let after = match cursor(&headers, &query) {
        Ok(after) => after,
        Err(e) => return e.into_response(),
    };
    let outbox = Outbox::new(state.config.queue_bytes);
    let metrics = state.hub.metrics().clone();
    let viewer = Arc::new(StreamViewer {
        outbox: outbox.clone(),
        metrics: metrics.clone(),
    });
    let (subscription, workflow) =
        match Subscription::start(&state.hub, &workflow_id, after, viewer).await {
            Ok(started) => started,
            Err(e) => return e.into_response(),
        };
    let heartbeat = state.config.heartbeat();
    let mut keep_alive =
        tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = Stream {
        render,
        subscription,
        outbox,
        metrics,
        revocations: state.accounts.revocations(),
        shutdown: state.shutdown.token(),
        keep_alive,
        admitted,
        opening: Some((workflow, heartbeat.as_millis() as u64, after)),
        ended: false,
    };
    let body = Body::from_stream(stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next().await?;
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(chunk)),
            stream,
        ))
    }));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell a proxy such as nginx not to hold the stream back in its buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// What an event stream's outbox holds.
pub enum Item {
    Event(Arc<StoredEvent>),
    /// The stream must end (the reader was too slow), saying why in a comment.
    Close(String),
}

impl Frame for Item {
    /// Never written past the queue: the response body takes items as it is polled.
    type Sink = std::convert::Infallible;

    fn size(&self) -> usize {
        match self {
            Item::Event(event) => event.json.len(),
            Item::Close(_) => 16,
        }
    }

    fn close(_code: u16, reason: &str) -> Self {
        Item::Close(reason.to_owned())
    }

    fn is_close(&self) -> bool {
        matches!(self, Item::Close(_))
    }

    fn write_now(self, sink: &mut Self::Sink) -> WriteNow<Self> {
        match *sink {}
    }
}

/// A caught-up stream as the appender sees it.
struct StreamViewer {
    outbox: Arc<Outbox<Item>>,
    metrics: Arc<Metrics>,
}

impl LiveViewer for StreamViewer {
    fn deliver(&self, event: &Arc<StoredEvent>) -> bool {
        link::push_or_close(&self.outbox, &self.metrics, Item::Event(event.clone()))
    }
}

/// One open stream.
struct Stream<R> {
    render: R,
    subscription: Subscription,
    outbox: Arc<Outbox<Item>>,
    metrics: Arc<Metrics>,
    revocations: broadcast::Receiver<Arc<str>>,
    shutdown: CancellationToken,
    keep_alive: tokio::time::Interval,
    /// Who is reading, and the stream's places in the connection limits (freed with it).
    admitted: Admitted,
    /// What the first chunk says: the workflow, the heartbeat, and the cursor it starts from.
    opening: Option<(WorkflowInfo, u64, u64)>,
    /// The last chunk went out; the next poll ends the body.
    ended: bool,
}

impl<R: Render> Stream<R> {
    /// The next chunk of the body, or `None` when the stream is over.
    async fn next(&mut self) -> Option<String> {
        if self.ended {
            return None;
        }
        let mut out = String::new();
        if let Some((workflow, heartbeat_ms, after)) = self.opening.take() {
            self.render.open(&workflow, heartbeat_ms, &mut out);
            if after > workflow.last_seq {
                // The client holds events this log does not (its data was reset): it must
                // start again from 0, which a plain reconnect with Last-Event-ID would not do.
                let data = serde_json::json!({"last_seq": workflow.last_seq}).to_string();
                message(&mut out, Some("reset"), None, &data);
                self.ended = true;
            }
            return Some(out);
        }
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return self.end(": server shutting down"),
                revoked = self.revocations.recv() => match revoked {
                    Ok(id) if !self.admitted.caller.uses(&id) => continue,
                    // Revoked, or some revocations were missed: end; a reconnect is checked.
                    _ => return self.end(": credential revoked"),
                },
                next = self.subscription.next() => match next {
                    Ok(Some(Catchup::Event(event))) => {
                        self.write(&event, &mut out);
                        return Some(out);
                    }
                    Ok(Some(Catchup::ReplayDone { last_seq })) => {
                        self.render.replay_done(last_seq, &mut out);
                        return Some(out);
                    }
                    Ok(None) => return self.end(": server shutting down"),
                    Err(e) => {
                        tracing::error!(error = %e, "event stream: catching up failed");
                        return self.end(": internal error");
                    }
                },
                items = self.outbox.take_all() => {
                    for item in items {
                        match item {
                            Item::Event(event) => {
                                self.write(&event, &mut out);
                                if self.ended {
                                    break;
                                }
                            }
                            Item::Close(reason) => {
                                out.push_str(": ");
                                out.push_str(&reason);
                                out.push_str("\n\n");
                                self.ended = true;
                                break;
                            }
                        }
                    }
                    return Some(out);
                }
                _ = self.keep_alive.tick() => return Some(": keep-alive\n\n".to_owned()),
            }
        }
    }

    /// Render one event; the stream ends after it when the render has said all it will.
    fn write(&mut self, event: &StoredEvent, out: &mut String) {
        self.render.event(event, out);
        super::subscriber::delivered(&self.metrics, event);
        if self.render.done() {
            self.ended = true;
            self.subscription.stop();
        }
    }

    /// A last comment saying why, then the end of the body.
    fn end(&mut self, why: &str) -> Option<String> {
        self.ended = true;
        self.subscription.stop();
        Some(format!("{why}\n\n"))
    }
}
