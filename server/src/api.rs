//! The JSON HTTP API of PROTOCOL.md §5 (agent ingest is a transport:
//! [`crate::transport::ingest`]). Handlers only extract and delegate to the hub; errors become
//! `{"error":{...}}` bodies via [`LanternError`].
//!
//! Every handler but `/healthz` takes a [`Caller`] (no or a wrong credential: 401), says which
//! kind of token it serves (the other kind: 403), and touches only the caller's own workflows
//! (anyone else's: 404, exactly as for a workflow that does not exist). Writes (create, input,
//! cancel) count against the caller's write rate ([`crate::limits::WriteLimits`]: 429).
//! History pages are bounded by bytes as well as by count, and say where to read on.

use std::collections::HashMap;

use app::protocol::WorkflowInfo;
use axum::{
    extract::{rejection::JsonRejection, Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Caller, TokenKind};
use crate::error::LanternError;
use crate::hub::Answer;
use crate::AppState;

/// Most events one history request returns.
const MAX_HISTORY_PAGE: usize = 1000;
/// Most bytes of event JSON one history page holds (a page holds at least one event).
const MAX_HISTORY_BYTES: usize = 4 * 1024 * 1024;

/// A JSON body, or a `bad_request` error that says what is wrong with it.
pub fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, LanternError> {
    payload.map(|Json(v)| v).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            LanternError::TooLarge(e.body_text())
        } else {
            LanternError::BadRequest(e.body_text())
        }
    })
}

/// Ok when `caller` has a token of `kind` and workflow `id` is theirs.
async fn may_use(
    state: &AppState,
    caller: &Caller,
    kind: TokenKind,
    id: &str,
) -> Result<(), LanternError> {
    caller.require(kind)?;
    state.hub.check_owner(id, &caller.user).await
}

/// As [`may_use`], for a write: it also counts against the caller's write rate.
async fn may_write(state: &AppState, caller: &Caller, id: &str) -> Result<(), LanternError> {
    may_use(state, caller, TokenKind::User, id).await?;
    state.write_limits.check(caller)
}

fn respond<T: serde::Serialize>(result: Result<T, LanternError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub struct CreateWorkflow {
    kind: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

/// `POST /api/workflows`: create (and start, for built-in kinds) a workflow → 201 + the object.
pub async fn create_workflow(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<CreateWorkflow>, JsonRejection>,
) -> Response {
    let checked = caller
        .require(TokenKind::User)
        .and_then(|()| state.write_limits.check(&caller));
    let request = match checked.and_then(|()| body(payload)) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let started = crate::workflows::start(
        &state.builtins,
        &request.kind,
        request.title,
        request.input.as_ref(),
        &caller.user,
        None,
    );
    match started.await {
        Ok(info) => (StatusCode::CREATED, Json(info)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/workflows`: the caller's workflows, newest first.
pub async fn list_workflows(State(state): State<AppState>, caller: Caller) -> Response {
    if let Err(e) = caller.require(TokenKind::User) {
        return e.into_response();
    }
    respond(
        state
            .hub
            .store()
            .list_workflows(Some(&caller.user))
            .await
            .map(|w| json!({ "workflows": w })),
    )
}

/// `GET /api/workflows/{id}`.
pub async fn get_workflow(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let found = async {
        may_use(&state, &caller, TokenKind::User, &id).await?;
        state
            .hub
            .store()
            .workflow(&id)
            .await?
            .ok_or(LanternError::WorkflowNotFound(id.clone()))
    };
    respond::<WorkflowInfo>(found.await)
}

fn number(query: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, LanternError> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            LanternError::BadRequest(format!("{name} must be a non-negative integer"))
        }),
    }
}

/// `GET /api/workflows/{id}/events?after=N&limit=M` →
/// `{"events":[...],"last_seq":N,"next_after":M|null}`. A page holds at most `limit` (≤ 1,000)
/// events and about 4 MiB of them; `next_after` is where to read on when the page stopped
/// before the log's end, and `null` when it reached it.
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (after, limit) = match (
        number(&query, "after", 0),
        number(&query, "limit", MAX_HISTORY_PAGE as u64),
    ) {
        (Ok(a), Ok(l)) => (a, (l as usize).min(MAX_HISTORY_PAGE)),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let store = state.hub.store();
    let result = async {
        may_use(&state, &caller, TokenKind::User, &id).await?;
        let info = store
            .workflow(&id)
            .await?
            .ok_or_else(|| LanternError::WorkflowNotFound(id.clone()))?;
        let events = store.read(&id, after, limit, MAX_HISTORY_BYTES).await?;
        Ok::<_, LanternError>((events, info.last_seq))
    }
    .await;
    match result {
        Ok((events, last_seq)) => history_body(&events, last_seq),
        Err(e) => e.into_response(),
    }
}

/// `{"events":[...],"last_seq":N,"next_after":M|null}`, built from the stored JSON of each
/// event as it is (the events were serialized once, at append; they are not parsed and
/// serialized again).
fn history_body(events: &[std::sync::Arc<crate::store::StoredEvent>], last_seq: u64) -> Response {
    let size = events.iter().map(|e| e.json.len() + 1).sum::<usize>() + 64;
    let mut body = String::with_capacity(size);
    body.push_str("{\"events\":[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(event.json.as_str());
    }
    body.push_str("],\"last_seq\":");
    body.push_str(&last_seq.to_string());
    body.push_str(",\"next_after\":");
    match events.last().map(|e| e.seq()).filter(|&seq| seq < last_seq) {
        Some(seq) => body.push_str(&seq.to_string()),
        None => body.push_str("null"),
    }
    body.push('}');
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct UserInput {
    content: String,
    client_msg_id: String,
}

/// `POST /api/workflows/{id}/input` → `{"seq":N}`; a repeated `client_msg_id` gets its seq again.
pub async fn input(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    payload: Result<Json<UserInput>, JsonRejection>,
) -> Response {
    if let Err(e) = may_write(&state, &caller, &id).await {
        return e.into_response();
    }
    let request = match body(payload) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let result = state
        .hub
        .submit_input(&id, &caller.user, request.content, request.client_msg_id)
        .await;
    respond(result.map(|seq| json!({ "seq": seq })))
}

/// `POST /api/workflows/{id}/interrupts/{interrupt_id}` `{"status","payload"?,"client_msg_id"}`
/// → `{"seq":N}`: a person answers an interrupt over HTTP, as with the `resolve` frame (a second
/// answer is `conflict` 409; a repeated `client_msg_id` gets its seq again).
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, interrupt_id)): Path<(String, String)>,
    payload: Result<Json<Answer>, JsonRejection>,
) -> Response {
    if let Err(e) = may_write(&state, &caller, &id).await {
        return e.into_response();
    }
    let mut answer = match body(payload) {
        Ok(answer) => answer,
        Err(e) => return e.into_response(),
    };
    answer.interrupt_id = interrupt_id;
    let result = state.hub.resolve(&id, &caller.user, answer).await;
    respond(result.map(|seq| json!({ "seq": seq })))
}

/// `POST /api/workflows/{id}/cancel` → `{"seq":N}` of the `cancelled` status.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = may_write(&state, &caller, &id).await {
        return e.into_response();
    }
    respond(state.hub.cancel(&id).await.map(|seq| json!({ "seq": seq })))
}

/// `GET /api/v1/websocket/stats`: what is connected and what has flowed, as numbers.
pub async fn stats(State(state): State<AppState>, caller: Caller) -> Response {
    use crate::metrics::ConnectionKind::{Agent, Stream, Subscriber};
    if let Err(e) = caller.require(TokenKind::User) {
        return e.into_response();
    }
    let metrics = state.hub.metrics();
    let (subscribers, agents) = (metrics.connections(Subscriber), metrics.connections(Agent));
    let streams = metrics.connections(Stream);
    Json(json!({
        "connections": subscribers + agents + streams,
        "subscriber_connections": subscribers,
        "agent_connections": agents,
        "stream_connections": streams,
        "unique_users": state.user_limits.keys_open(),
        "active_workflows": state.hub.active_workflows(),
        "events_appended": metrics.events_appended.get(),
        "events_delivered": metrics.events_delivered.get(),
        "replays": metrics.replays.get(),
        "slow_consumer_closes": metrics.slow_consumer_closes.get(),
        "rate_limit_closes": metrics.rate_limit_closes.get(),
        "dead_peer_closes": metrics.dead_peer_closes.get(),
    }))
    .into_response()
}

/// `GET /metrics`: the same and more, in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>, caller: Caller) -> Response {
    if let Err(e) = caller.require(TokenKind::User) {
        return e.into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.hub.metrics().prometheus_text(),
    )
        .into_response()
}

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `POST /api/test/disconnect`: drop every subscriber socket (only with `LANTERN_TEST_HOOKS=1`,
/// and only for a signed-in user).
pub async fn test_disconnect(State(state): State<AppState>, caller: Caller) -> Response {
    if let Err(e) = caller.require(TokenKind::User) {
        return e.into_response();
    }
    state.hub.disconnect_all();
    StatusCode::NO_CONTENT.into_response()
}
