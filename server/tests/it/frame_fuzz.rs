//! Property tests over what arrives from the network: any text as a subscriber frame, any
//! JSON as a producer event, any sequence of events through the §1 invariants. No input may
//! panic; every input gets a typed answer (a frame, or an error that says why).
//! Bounded: proptest's default 256 cases per property (`PROPTEST_CASES` raises it).

use app::protocol::{AgentEvent, ClientFrame, EventBody};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use server::lifecycle::{Lifecycle, Refusal};

const TYPES: &[&str] = &[
    "workflow_status",
    "node_update",
    "agent_started",
    "agent_thinking",
    "agent_response",
    "tool_executing",
    "tool_update",
    "tool_completed",
    "search_results",
    "agent_completed",
    "final_report",
    "user_input",
    "heartbeat",
    "teleport",
    "",
];
const FIELDS: &[&str] = &[
    "agent",
    "tool",
    "call_id",
    "content",
    "status",
    "node",
    "ok",
    "input",
    "output",
    "error",
    "duration_ms",
    "progress",
    "message",
    "query",
    "results",
    "summary",
    "task",
    "detail",
    "id",
    "client_msg_id",
    "user",
    "correlation_id",
];

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("a".to_owned()),
            Just("c1".to_owned()),
            Just("running".to_owned()),
            Just("completed".to_owned()),
            Just("failed".to_owned()),
            Just("executing".to_owned()),
            ".{0,12}"
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object shaped like an event: a known (or bogus) type and a random subset of known fields.
fn event_like() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(TYPES),
        prop::collection::vec((prop::sample::select(FIELDS), any_json()), 0..8),
    )
        .prop_map(|(kind, fields)| {
            let mut object = Map::new();
            object.insert("type".into(), json!(kind));
            for (name, value) in fields {
                object.insert(name.into(), value);
            }
            Value::Object(object)
        })
}

proptest! {
    #[test]
    fn any_text_as_a_subscriber_frame_parses_or_errors(text in ".{0,200}") {
        let _ = serde_json::from_str::<ClientFrame>(&text);
    }

    #[test]
    fn any_event_like_json_parses_or_errors_with_a_message(value in event_like()) {
        if let Err(e) = serde_json::from_value::<AgentEvent>(value) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn any_event_sequence_keeps_the_invariants(values in prop::collection::vec(event_like(), 0..40)) {
        let mut lifecycle = Lifecycle::default();
        let mut accepted: Vec<EventBody> = Vec::new();
        for value in values {
            let Ok(event) = serde_json::from_value::<AgentEvent>(value) else { continue };
            match lifecycle.admit(event.body, chrono::Utc::now()) {
                Ok((before, body)) => {
                    for body in before.into_iter().chain([body]) {
                        lifecycle.apply(&body);
                        accepted.push(body);
                    }
                }
                Err(Refusal::Conflict(why) | Refusal::BadRequest(why)) => prop_assert!(!why.is_empty()),
            }
        }
        // A finished log has nothing open; otherwise closing what is open leaves nothing open.
        if !lifecycle.is_finished() {
            for closing in lifecycle.closing_events("end") {
                prop_assert!(lifecycle.check(&closing, chrono::Utc::now()).is_ok());
                lifecycle.apply(&closing);
                accepted.push(closing);
            }
        }
        prop_assert!(lifecycle.closing_events("end").is_empty());
        // Pairing holds in the accepted log: each call id completes once per execution.
        let mut open_calls = std::collections::HashSet::new();
        for body in &accepted {
            match body {
                EventBody::ToolExecuting { call_id, .. } => prop_assert!(open_calls.insert(call_id.clone())),
                EventBody::ToolCompleted { call_id, .. } => prop_assert!(open_calls.remove(call_id)),
                _ => {}
            }
        }
        prop_assert!(open_calls.is_empty());
        // Rebuilding from the accepted log gives the same open set (nothing open).
        prop_assert!(Lifecycle::replay(accepted.iter()).closing_events("end").is_empty());
    }
}
