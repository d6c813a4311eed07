//! AG-UI 1.0 out (PROTOCOL.md §8), side by side with the other viewer transports:
//!
//! - `GET /api/workflows/{id}/agui?after=N`: any workflow as AG-UI events over SSE, for any
//!   AG-UI client (CopilotKit, `@ag-ui/client`). Valid from wherever it starts; the last AG-UI
//!   event made from logged event `seq` carries `id: seq`, so `Last-Event-ID` resumes it. It
//!   ends after the workflow's end (its last run's `RUN_FINISHED` or `RUN_ERROR`).
//! - `POST /agui/{kind}`: an AG-UI agent endpoint (what `HttpAgent` calls). The `RunAgentInput`'s
//!   `threadId` is the workflow: new ones are created with that id, the caller's own are
//!   continued; the last user message is the run's input and `resume[]` answers interrupts.
//!   The reply is that run, as AG-UI events, ending with it.
//!
//! The mapping is [`crate::agui::out`]'s (a pure fold); the stream itself — gate, cursor,
//! following, keep-alive, slow readers — is `event_stream.rs`'s.

use std::collections::HashMap;
use std::net::SocketAddr;

use app::protocol::{InterruptStatus, WorkflowInfo};
use axum::{
    extract::{rejection::JsonRejection, ConnectInfo, Path, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::Value;

use super::event_stream::{self, message, Render, Request};
use crate::agui::out::Translator;
use crate::auth::{Caller, TokenKind};
use crate::error::LanternError;
use crate::hub::Answer;
use crate::store::StoredEvent;
use crate::AppState;

/// `GET /api/workflows/{id}/agui`.
pub async fn follow(
    State(state): State<AppState>,
    caller: Result<Caller, LanternError>,
    Path(workflow_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let render = AgUi {
        translator: Translator::new(workflow_id.clone()),
        one_run: false,
    };
    let request = Request {
        state,
        caller,
        workflow_id,
        query,
        peer,
        headers,
    };
    event_stream::follow(request, render).await
}

/// Writes logged events as AG-UI events.
struct AgUi {
    translator: Translator,
    /// The reply to one run (`POST /agui/{kind}`): done when that run ends.
    one_run: bool,
}

impl Render for AgUi {
    fn open(&mut self, _: &WorkflowInfo, _: u64, _: &mut String) {}

    fn event(&mut self, event: &StoredEvent, out: &mut String) {
        let raw: Value = match serde_json::from_str(event.json.as_str()) {
            Ok(raw) => raw,
            Err(_) => return,
        };
        let Ok(logged) = serde_json::from_value(raw.clone()) else {
            return;
        };
        let mut events = Vec::new();
        self.translator.event(&logged, &raw, &mut events);
        let last = events.len().saturating_sub(1);
        for (i, agui) in events.iter().enumerate() {
            // Serializing our own event types cannot fail.
            let data = serde_json::to_string(agui).unwrap_or_default();
            let id = (i == last).then(|| event.seq());
            message(out, None, id, &data);
        }
    }

    fn replay_done(&mut self, _: u64, _: &mut String) {}

    fn done(&self) -> bool {
        // Nothing follows a workflow's end; a run's reply ends with its run.
        self.translator.is_over() || (self.one_run && self.translator.runs_ended() > 0)
    }
}

/// AG-UI's `RunAgentInput`, the parts Lantern reads (the rest — tools, context, state,
/// forwarded props — is accepted and not used).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunAgentInput {
    pub thread_id: String,
    pub run_id: String,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub resume: Vec<Resume>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub id: String,
    pub role: String,
    #[serde(default)]
    pub content: Option<Value>,
}

/// An answer to an interrupt, in a run's `resume[]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resume {
    pub interrupt_id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub payload: Option<Value>,
}

/// The text of a message's `content` (a string, or AG-UI's list of parts, of which the text
/// parts are joined).
fn text_of(content: &Option<Value>) -> Option<String> {
    match content {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Array(parts)) => Some(
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
        ),
        _ => None,
    }
}

/// A thread id Lantern takes as a workflow id: 1–100 of `A-Z a-z 0-9 _ -`.
fn valid_thread_id(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `POST /agui/{kind}`: one AG-UI run on the workflow named by `threadId`.
pub async fn run(
    State(state): State<AppState>,
    caller: Result<Caller, LanternError>,
    Path(kind): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    payload: Result<Json<RunAgentInput>, JsonRejection>,
) -> Response {
    let caller = match caller {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    match start_run(&state, &caller, &kind, payload).await {
        Ok((input, cursor)) => {
            let mut translator = Translator::new(input.thread_id.clone());
            translator.name_next_run(input.run_id);
            let render = AgUi {
                translator,
                one_run: true,
            };
            let query = HashMap::from([("after".to_owned(), cursor.to_string())]);
            let request = Request {
                state,
                workflow_id: input.thread_id,
                caller: Ok(caller),
                query,
                peer,
                headers,
            };
            event_stream::follow(request, render).await
        }
        Err(e) => e.into_response(),
    }
}

/// Check the caller and the input, then start or continue the thread's workflow: create it
/// (a new thread), answer `resume[]`, send the last user message. Returns the input and the
/// `seq` the run's events follow: the run is what comes after the input that started it.
async fn start_run(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    payload: Result<Json<RunAgentInput>, JsonRejection>,
) -> Result<(RunAgentInput, u64), LanternError> {
    caller.require(TokenKind::User)?;
    state.write_limits.check(caller)?;
    let input = crate::api::body(payload)?;
    if !valid_thread_id(&input.thread_id) {
        return Err(LanternError::BadRequest(
            "threadId must be 1-100 characters of A-Z a-z 0-9 _ -".into(),
        ));
    }
    let user = &caller.user;
    let id = &input.thread_id;
    let last_user = input
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| text_of(&m.content).map(|text| (m.id.clone(), text)));
    let mut first = None;
    match state.hub.store().owner(id).await? {
        Some(owner) if owner != *user => return Err(LanternError::WorkflowNotFound(id.clone())),
        Some(_) => {}
        None => {
            let text = last_user
                .as_ref()
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            let start_input = serde_json::json!({ "query": text });
            let builtins = &state.builtins;
            let some_id = Some(id.clone());
            crate::workflows::start(builtins, kind, None, Some(&start_input), user, some_id)
                .await?;
            if !builtins.takes_input(kind) {
                // Its input was its start: the run is the whole workflow.
                return Ok((input, 0));
            }
            crate::workflows::ready_for_input(&state.hub, id).await?;
        }
    }
    for answer in &input.resume {
        let status = match answer.status.as_deref() {
            Some("cancelled") => InterruptStatus::Cancelled,
            _ => InterruptStatus::Resolved,
        };
        let answer = Answer {
            client_msg_id: format!("{}-{}", input.run_id, answer.interrupt_id),
            interrupt_id: answer.interrupt_id.clone(),
            status,
            payload: answer.payload.clone(),
        };
        let seq = state.hub.resolve(id, user, answer).await?;
        first = first.or(Some(seq));
    }
    if input.resume.is_empty() {
        if let Some((message_id, text)) = last_user {
            // The message's own id makes a retried run idempotent.
            let client_msg_id = if message_id.is_empty() {
                input.run_id.clone()
            } else {
                message_id
            };
            let seq = state
                .hub
                .submit_input(id, user, text, client_msg_id)
                .await?;
            first = Some(seq);
        }
    }
    let Some(first) = first else {
        return Err(LanternError::BadRequest(
            "a run needs a user message or resume[] answers".into(),
        ));
    };
    Ok((input, first - 1))
}
