//! `GET /sse/workflow/{id}?after=N`: a viewer's stream over Server-Sent Events (PROTOCOL.md
//! §7), for clients that cannot or would rather not open a WebSocket (`EventSource`, curl).
//!
//! It carries exactly what the subscriber socket carries: `event: hello`, then each logged
//! event as one message with `id: <seq>` and the event's JSON as `data` (the same bytes the
//! socket sends), `event: replay_done` once, then live events. Everything else — the gate,
//! `Last-Event-ID` resume, keep-alive, the cut-off of a slow reader, `event: reset` for a cursor
//! ahead of the log — is `event_stream.rs`'s, shared with the AG-UI stream.

use std::collections::HashMap;
use std::net::SocketAddr;

use app::protocol::{ServerFrame, WorkflowInfo};
use axum::{
    extract::{ConnectInfo, Path, Query, State},
    http::HeaderMap,
    response::Response,
};

use super::event_stream::{self, message, Render, Request};
use crate::auth::Caller;
use crate::error::LanternError;
use crate::store::StoredEvent;
use crate::AppState;

pub async fn workflow(
    State(state): State<AppState>,
    caller: Result<Caller, LanternError>,
    Path(workflow_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let request = Request {
        state,
        caller,
        workflow_id,
        query,
        peer,
        headers,
    };
    event_stream::follow(request, Lantern).await
}

/// Lantern's own events, as they are.
struct Lantern;

impl Render for Lantern {
    fn open(&mut self, workflow: &WorkflowInfo, heartbeat_ms: u64, out: &mut String) {
        let hello = ServerFrame::Hello {
            workflow_id: workflow.id.clone(),
            last_seq: workflow.last_seq,
            status: workflow.status,
            heartbeat_ms,
        };
        message(out, Some("hello"), None, &frame(&hello));
    }

    fn event(&mut self, event: &StoredEvent, out: &mut String) {
        message(out, None, Some(event.seq()), event.json.as_str());
    }

    fn replay_done(&mut self, last_seq: u64, out: &mut String) {
        message(
            out,
            Some("replay_done"),
            None,
            &frame(&ServerFrame::ReplayDone { last_seq }),
        );
    }
}

fn frame(frame: &ServerFrame) -> String {
    // Serializing our own frame types cannot fail.
    serde_json::to_string(frame).unwrap_or_default()
}
