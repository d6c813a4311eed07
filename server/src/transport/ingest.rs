//! `POST /api/workflows/{id}/events`: an agent publishing over HTTP (PROTOCOL.md §3) →
//! `{"seqs":[...]}`, all or nothing; and producer JSON → events, the same for this and the
//! agent socket: one event or an array of them, each as in §1 without `seq`, `ts`,
//! `workflow_id`, with an optional `id`. A bad event is named by its index (in an array) and
//! its `id`, if it had one.
//!
//! Whoever publishes, a `user_input` among the events is logged under the publisher's user:
//! an agent cannot put words in another user's mouth. Nor can it answer a person's question:
//! the only `interrupt_resolved` an agent may publish withdraws an open interrupt (`cancelled`,
//! logged with `user: null`); any other is `forbidden`.

use app::protocol::{AgentEvent, EventBody, InterruptStatus};
use axum::{
    extract::{rejection::JsonRejection, Path, State},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Caller, TokenKind};
use crate::error::LanternError;
use crate::hub::Hub;
use crate::AppState;

/// The HTTP side: agent token, ownership, the write rate, the body, then the hub.
pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    payload: Result<Json<OneOrMany>, JsonRejection>,
) -> Response {
    let checked = async {
        caller.require(TokenKind::Agent)?;
        state.hub.check_owner(&id, &caller.user).await?;
        state.write_limits.check(&caller)?;
        Ok::<_, LanternError>(())
    };
    if let Err(e) = checked.await {
        return e.into_response();
    }
    let events = match crate::api::body(payload).map(events) {
        Ok(Ok(events)) => events,
        Ok(Err(refused)) => return refused.error.into_response(),
        Err(e) => return e.into_response(),
    };
    match publish(&state.hub, &caller, &id, events).await {
        Ok(seqs) => Json(json!({ "seqs": seqs })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Publish `events` to workflow `id` on behalf of `caller`: what both agent transports do.
pub async fn publish(
    hub: &Hub,
    caller: &Caller,
    id: &str,
    mut events: Vec<AgentEvent>,
) -> Result<Vec<u64>, LanternError> {
    on_behalf_of(caller, &mut events)?;
    hub.publish(id, events).await
}

/// Publish several requests that arrived together (frames of an agent socket), each all or
/// nothing on its own, in one append when they all pass ([`Hub::publish_each`]); the answers
/// in the requests' order.
pub async fn publish_each(
    hub: &Hub,
    caller: &Caller,
    id: &str,
    requests: Vec<Vec<AgentEvent>>,
) -> Vec<Result<Vec<u64>, LanternError>> {
    let mut answers: Vec<Option<Result<Vec<u64>, LanternError>>> = Vec::new();
    let mut admitted = Vec::with_capacity(requests.len());
    for mut events in requests {
        match on_behalf_of(caller, &mut events) {
            Ok(()) => {
                admitted.push(events);
                answers.push(None);
            }
            Err(e) => answers.push(Some(Err(e))),
        }
    }
    let mut published = hub.publish_each(id, admitted).await.into_iter();
    answers
        .into_iter()
        .map(|answer| {
            answer.unwrap_or_else(|| {
                published
                    .next()
                    .unwrap_or_else(|| Err(LanternError::Storage("an answer went missing".into())))
            })
        })
        .collect()
}

/// What a producer may say, made true of `events`: a `user_input` is logged under the
/// publisher's own user, and an `interrupt_resolved` only withdraws (`forbidden` otherwise).
fn on_behalf_of(caller: &Caller, events: &mut [AgentEvent]) -> Result<(), LanternError> {
    let numbered = events.len() > 1;
    for (index, event) in events.iter_mut().enumerate() {
        match &mut event.body {
            EventBody::UserInput { user, .. } => user.clone_from(&caller.user),
            EventBody::InterruptResolved {
                status: InterruptStatus::Cancelled,
                user,
                client_msg_id,
                ..
            } => {
                *user = None;
                *client_msg_id = None;
            }
            EventBody::InterruptResolved { interrupt_id, .. } => {
                let which = if numbered {
                    format!("event {index} ")
                } else {
                    String::new()
                };
                return Err(LanternError::Forbidden(format!(
                    "{which}(interrupt_resolved): people answer interrupts; an agent may only \
                     withdraw its own ({interrupt_id}) with status cancelled"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// One event or an array of them.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    Many(Vec<Value>),
    One(Value),
}

/// Why a batch was refused, and the `id` of the event at fault, if it had one.
#[derive(Debug)]
pub struct Refused {
    pub error: LanternError,
    pub id: Option<String>,
}

/// The events of a frame of well-formed events (one, or a non-empty array), read straight from
/// its text: no JSON tree is built first, which makes it the quick path for the common frame.
/// `None` for anything else — a control frame, an empty array, an event that does not parse —
/// which [`events`] then reads and explains.
pub fn well_formed_events(text: &str) -> Option<Vec<AgentEvent>> {
    let events = if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<AgentEvent>>(text).ok()?
    } else {
        vec![serde_json::from_str::<AgentEvent>(text).ok()?]
    };
    (!events.is_empty()).then_some(events)
}

/// The events of a batch, or why not one of them may be appended.
pub fn events(batch: OneOrMany) -> Result<Vec<AgentEvent>, Refused> {
    let (values, numbered) = match batch {
        OneOrMany::Many(list) => (list, true),
        OneOrMany::One(one) => (vec![one], false),
    };
    if values.is_empty() {
        return Err(Refused {
            error: LanternError::BadRequest("no events given".into()),
            id: None,
        });
    }
    let mut events = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().enumerate() {
        let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
        match serde_json::from_value::<AgentEvent>(value) {
            Ok(event) => events.push(event),
            Err(e) => {
                let which = if numbered {
                    format!("event {index}: ")
                } else {
                    String::new()
                };
                return Err(Refused {
                    error: LanternError::BadRequest(format!("{which}{e}")),
                    id,
                });
            }
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Vec<AgentEvent>, Refused> {
        events(serde_json::from_value(value).expect("one or many"))
    }

    #[test]
    fn one_event_or_an_array() {
        let one = json!({ "type": "agent_started", "agent": "a", "id": "e1" });
        assert_eq!(parse(one.clone()).expect("one").len(), 1);
        assert_eq!(parse(json!([one.clone(), one])).expect("two").len(), 2);
    }

    #[test]
    fn the_quick_path_reads_what_the_long_one_does_and_leaves_it_the_rest() {
        let frames = [
            json!({ "type": "agent_started", "agent": "a", "id": "e1" }),
            json!([
                { "type": "agent_thinking", "agent": "a", "content": "c" },
                { "type": "tool_executing", "agent": "a", "tool": "t", "call_id": "1",
                  "input": { "q": [1, 2] }, "extra": true }
            ]),
        ];
        for frame in frames {
            let quick = well_formed_events(&frame.to_string()).expect("well formed");
            assert_eq!(quick, parse(frame).expect("valid"));
        }
        for other in [
            json!({ "type": "heartbeat", "correlation_id": "c" }),
            json!([]),
            json!([{ "type": "agent_started", "agent": "a" }, { "type": "teleport" }]),
            json!({ "type": "agent_thinking", "content": "no agent" }),
            json!("text"),
        ] {
            assert_eq!(well_formed_events(&other.to_string()), None, "{other}");
        }
        assert_eq!(well_formed_events("{not json"), None);
    }

    #[test]
    fn a_bad_event_is_named_by_index_and_id() {
        let refused = parse(json!([
            { "type": "agent_started", "agent": "a" },
            { "type": "text_delta", "agent": "a", "message_id": "m", "id": "e2" }
        ]))
        .expect_err("missing delta");
        assert_eq!(refused.id.as_deref(), Some("e2"));
        assert!(
            refused.error.to_string().starts_with("event 1: "),
            "{}",
            refused.error
        );
        assert!(parse(json!([])).is_err());
        assert!(parse(json!({ "type": "teleport" })).is_err());
    }
}
