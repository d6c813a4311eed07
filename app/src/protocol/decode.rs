//! The browser's reader of what the server sends: subscriber frames ([`server_message`]) and
//! the run page's snapshot ([`RunSnapshot`]'s `Deserialize`), read from a parsed
//! [`serde_json::Value`] by hand.
//!
//! Why not the derived `Deserialize` of [`protocol`](crate::protocol)? Events and control frames
//! carry their `type` beside their fields (internally tagged), and serde decodes that by
//! buffering the input and running a decoder compiled once per variant: 25 KB of the gzipped
//! WASM (bench/RESULTS.md). The derived decoders stay the reference — the server validates
//! every input with them — and the tests below check that both read every type alike.
//!
//! Like the derived decoders, this one ignores unknown fields, reads a missing or `null`
//! optional field as absent, and refuses a missing required field, a value of the wrong type
//! and an unknown `type`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    ErrorCode, EventBody, EventKind, FrameKind, InterruptStatus, LoggedEvent, NodeStatus,
    RunSnapshot, SearchHit, ServerFrame, ServerMessage, WorkflowInfo, WorkflowStatus,
};

/// Why a frame or snapshot could not be read: the field that is missing or has the wrong type
/// (`type` for an unknown type, `frame` when the text is not a JSON object).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("missing or invalid `{field}`")]
pub struct DecodeError {
    pub field: &'static str,
}

/// One text frame of a subscriber socket: a control frame (by its `type`) or a logged event.
pub fn server_message(text: &str) -> Result<ServerMessage, DecodeError> {
    let value: Value = serde_json::from_str(text).map_err(|_| invalid("frame"))?;
    let mut fields = Fields::of(value, "frame")?;
    let kind = fields.string("type")?;
    match kind.as_str() {
        FrameKind::HELLO
        | FrameKind::REPLAY_DONE
        | FrameKind::ACK
        | FrameKind::ERROR
        | FrameKind::HEARTBEAT_RESPONSE => {
            control_frame(&kind, &mut fields).map(ServerMessage::Control)
        }
        _ => logged_event(&kind, &mut fields).map(ServerMessage::Event),
    }
}

/// A workflow and its events, as the server serializes a [`RunSnapshot`].
fn run_snapshot(value: Value) -> Result<RunSnapshot, DecodeError> {
    let mut fields = Fields::of(value, "snapshot")?;
    let workflow = workflow_info(Fields::of(fields.take("workflow")?, "workflow")?)?;
    let events = fields.list("events", |event| {
        let mut fields = Fields::of(event, "events")?;
        let kind = fields.string("type")?;
        logged_event(&kind, &mut fields)
    })?;
    Ok(RunSnapshot { workflow, events })
}

/// The browser reads island props (the run page's snapshot) through this; see the module doc.
impl<'de> Deserialize<'de> for RunSnapshot {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        run_snapshot(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

fn workflow_info(mut f: Fields) -> Result<WorkflowInfo, DecodeError> {
    Ok(WorkflowInfo {
        id: f.string("id")?,
        kind: f.string("kind")?,
        title: f.optional_string("title")?,
        status: f.word("status", WorkflowStatus::from_word)?,
        last_seq: f.u64("last_seq")?,
        created_at: f.string("created_at")?,
        updated_at: f.string("updated_at")?,
    })
}

fn search_hit(hit: Value) -> Result<SearchHit, DecodeError> {
    let mut f = Fields::of(hit, "results")?;
    Ok(SearchHit {
        title: f.string("title")?,
        source: f.string("source")?,
        snippet: f.string("snippet")?,
        score: f.take("score")?.as_f64().ok_or(invalid("score"))?,
    })
}

fn logged_event(kind: &str, fields: &mut Fields) -> Result<LoggedEvent, DecodeError> {
    Ok(LoggedEvent {
        seq: fields.u64("seq")?,
        ts: fields.string("ts")?,
        workflow_id: fields.string("workflow_id")?,
        body: event_body(kind, fields)?,
    })
}

/// The body of an event of type `kind`: a match on the words themselves, the smallest code.
/// Every [`EventKind`] must have an arm: the test `the_browser_reads_every_event_type_of_the_protocol`
/// decodes a sample of each.
fn event_body(kind: &str, f: &mut Fields) -> Result<EventBody, DecodeError> {
    Ok(match kind {
        EventKind::WORKFLOW_STATUS => EventBody::WorkflowStatus {
            status: f.word("status", WorkflowStatus::from_word)?,
            detail: f.optional_string("detail")?,
        },
        EventKind::NODE_UPDATE => EventBody::NodeUpdate {
            node: f.string("node")?,
            status: f.word("status", NodeStatus::from_word)?,
            detail: f.optional_string("detail")?,
        },
        EventKind::AGENT_STARTED => EventBody::AgentStarted {
            agent: f.string("agent")?,
            task: f.optional_string("task")?,
        },
        EventKind::AGENT_THINKING => EventBody::AgentThinking {
            agent: f.string("agent")?,
            content: f.optional_string("content")?,
            message_id: f.optional_string("message_id")?,
        },
        EventKind::AGENT_RESPONSE => EventBody::AgentResponse {
            agent: f.string("agent")?,
            content: f.optional_string("content")?,
            message_id: f.optional_string("message_id")?,
        },
        EventKind::TOOL_EXECUTING => EventBody::ToolExecuting {
            agent: f.string("agent")?,
            tool: f.string("tool")?,
            call_id: f.string("call_id")?,
            input: f.take("input")?,
        },
        EventKind::TOOL_UPDATE => EventBody::ToolUpdate {
            agent: f.string("agent")?,
            tool: f.string("tool")?,
            call_id: f.string("call_id")?,
            message: f.string("message")?,
            progress: f.optional_f64("progress")?,
        },
        EventKind::TOOL_COMPLETED => EventBody::ToolCompleted {
            agent: f.string("agent")?,
            tool: f.string("tool")?,
            call_id: f.string("call_id")?,
            ok: f.bool("ok")?,
            output: f.optional_value("output"),
            error: f.optional_string("error")?,
            duration_ms: f.u64("duration_ms")?,
        },
        EventKind::SEARCH_RESULTS => EventBody::SearchResults {
            query: f.string("query")?,
            results: f.list("results", search_hit)?,
        },
        EventKind::AGENT_COMPLETED => EventBody::AgentCompleted {
            agent: f.string("agent")?,
            ok: f.bool("ok")?,
            summary: f.optional_string("summary")?,
        },
        EventKind::FINAL_REPORT => EventBody::FinalReport {
            content: f.string("content")?,
        },
        EventKind::USER_INPUT => EventBody::UserInput {
            content: f.string("content")?,
            user: f.string("user")?,
            client_msg_id: f.string("client_msg_id")?,
        },
        EventKind::TEXT_DELTA => EventBody::TextDelta {
            agent: f.string("agent")?,
            message_id: f.string("message_id")?,
            delta: f.string("delta")?,
        },
        EventKind::THINKING_DELTA => EventBody::ThinkingDelta {
            agent: f.string("agent")?,
            message_id: f.string("message_id")?,
            delta: f.string("delta")?,
        },
        EventKind::INTERRUPT => EventBody::Interrupt {
            agent: f.string("agent")?,
            interrupt_id: f.string("interrupt_id")?,
            reason: f.string("reason")?,
            message: f.string("message")?,
            call_id: f.optional_string("call_id")?,
            response_schema: f.optional_value("response_schema"),
            expires_at: f.optional_string("expires_at")?,
        },
        EventKind::INTERRUPT_RESOLVED => EventBody::InterruptResolved {
            interrupt_id: f.string("interrupt_id")?,
            status: f.word("status", InterruptStatus::from_word)?,
            payload: f.optional_value("payload"),
            user: f.optional_string("user")?,
            client_msg_id: f.optional_string("client_msg_id")?,
        },
        _ => return Err(invalid("type")),
    })
}

fn control_frame(kind: &str, f: &mut Fields) -> Result<ServerFrame, DecodeError> {
    Ok(match kind {
        FrameKind::HELLO => ServerFrame::Hello {
            workflow_id: f.string("workflow_id")?,
            last_seq: f.u64("last_seq")?,
            status: f.word("status", WorkflowStatus::from_word)?,
            heartbeat_ms: f.u64("heartbeat_ms")?,
        },
        FrameKind::REPLAY_DONE => ServerFrame::ReplayDone {
            last_seq: f.u64("last_seq")?,
        },
        FrameKind::ACK => ServerFrame::Ack {
            client_msg_id: f.optional_string("client_msg_id")?,
            id: f.optional_string("id")?,
            seq: f.u64("seq")?,
        },
        FrameKind::ERROR => ServerFrame::Error {
            code: f.word("code", ErrorCode::from_word)?,
            message: f.string("message")?,
            id: f.optional_string("id")?,
        },
        FrameKind::HEARTBEAT_RESPONSE => ServerFrame::HeartbeatResponse {
            correlation_id: f.string("correlation_id")?,
        },
        _ => return Err(invalid("type")),
    })
}

fn invalid(field: &'static str) -> DecodeError {
    DecodeError { field }
}

/// The fields of one JSON object, taken out one by one.
struct Fields(Map<String, Value>);

impl Fields {
    fn of(value: Value, what: &'static str) -> Result<Self, DecodeError> {
        match value {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(invalid(what)),
        }
    }

    /// A required field of any JSON type.
    fn take(&mut self, field: &'static str) -> Result<Value, DecodeError> {
        self.0.remove(field).ok_or(invalid(field))
    }

    /// An optional field: absent and `null` are both `None`.
    fn optional_value(&mut self, field: &'static str) -> Option<Value> {
        self.0.remove(field).filter(|value| !value.is_null())
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        match self.take(field)? {
            Value::String(text) => Ok(text),
            _ => Err(invalid(field)),
        }
    }

    fn optional_string(&mut self, field: &'static str) -> Result<Option<String>, DecodeError> {
        match self.optional_value(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(invalid(field)),
        }
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.take(field)?.as_u64().ok_or(invalid(field))
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        self.take(field)?.as_bool().ok_or(invalid(field))
    }

    fn optional_f64(&mut self, field: &'static str) -> Result<Option<f64>, DecodeError> {
        match self.optional_value(field) {
            None => Ok(None),
            Some(value) => value.as_f64().map(Some).ok_or(invalid(field)),
        }
    }

    /// A wire word (a status, an error code), read by `from_word`.
    fn word<T>(
        &mut self,
        field: &'static str,
        from_word: fn(&str) -> Option<T>,
    ) -> Result<T, DecodeError> {
        from_word(&self.string(field)?).ok_or(invalid(field))
    }

    /// An array, each item read by `item`.
    fn list<T>(
        &mut self,
        field: &'static str,
        item: fn(Value) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        match self.take(field)? {
            Value::Array(items) => items.into_iter().map(item).collect(),
            _ => Err(invalid(field)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event type and control frame of PROTOCOL.md, with optional fields present and
    /// absent, unknown fields and `null`s.
    const FRAMES: [&str; 26] = [
        r#"{"type":"hello","workflow_id":"w","last_seq":3,"status":"running","heartbeat_ms":15000}"#,
        r#"{"type":"replay_done","last_seq":3}"#,
        r#"{"type":"ack","client_msg_id":"m1","seq":4}"#,
        r#"{"type":"ack","id":"e-1","seq":5,"extra":true}"#,
        r#"{"type":"error","code":"too_large","message":"frame too large"}"#,
        r#"{"type":"error","code":"bad_request","message":"no","id":"e-2"}"#,
        r#"{"type":"heartbeat_response","correlation_id":"h1"}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"workflow_status","status":"waiting_input","detail":"say"}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"node_update","node":"n","status":"failed","detail":null}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"agent_started","agent":"a"}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"agent_thinking","agent":"a","content":"hmm"}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"agent_response","agent":"a","content":"here"}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"tool_executing","agent":"a","tool":"t","call_id":"c","input":{"q":[1,2.5]}}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"tool_update","agent":"a","tool":"t","call_id":"c","message":"m","progress":0.5}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"tool_completed","agent":"a","tool":"t","call_id":"c","ok":true,"output":{"hits":3},"duration_ms":12}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"tool_completed","agent":"a","tool":"t","call_id":"c","ok":false,"error":"boom","duration_ms":3}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"search_results","query":"q","results":[{"title":"T","source":"s","snippet":"x","score":1.5}]}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"agent_completed","agent":"a","ok":true,"summary":"done"}"#,
        r#"{"seq":1,"ts":"t","workflow_id":"w","type":"final_report","content":"**R**","secret":"dropped"}"#,
        r#"{"seq":2,"ts":"t","workflow_id":"w","type":"user_input","content":"hi","user":"u","client_msg_id":"m1"}"#,
        r#"{"seq":3,"ts":"t","workflow_id":"w","type":"text_delta","agent":"a","message_id":"m","delta":"He"}"#,
        r#"{"seq":4,"ts":"t","workflow_id":"w","type":"agent_response","agent":"a","message_id":"m","content":"Hello"}"#,
        r#"{"seq":5,"ts":"t","workflow_id":"w","type":"thinking_delta","agent":"a","message_id":"r","delta":"so"}"#,
        r#"{"seq":6,"ts":"t","workflow_id":"w","type":"interrupt","agent":"a","interrupt_id":"i","reason":"tool_approval","message":"ok?","call_id":"c","response_schema":{"type":"object"},"expires_at":null}"#,
        r#"{"seq":7,"ts":"t","workflow_id":"w","type":"interrupt_resolved","interrupt_id":"i","status":"resolved","payload":{"approved":false},"user":"u","client_msg_id":"m2"}"#,
        r#"{"seq":8,"ts":"t","workflow_id":"w","type":"interrupt_resolved","interrupt_id":"j","status":"cancelled","user":null}"#,
    ];

    #[test]
    fn reads_every_frame_as_the_derived_decoder_does() {
        for text in FRAMES {
            let derived: ServerMessage = serde_json::from_str(text).expect(text);
            assert_eq!(server_message(text), Ok(derived), "{text}");
        }
    }

    #[test]
    fn refuses_what_the_derived_decoder_refuses() {
        let cases = [
            ("", "frame"),
            ("[1]", "frame"),
            (r#"{"seq":1}"#, "type"),
            (r#"{"type":"hello","workflow_id":"w"}"#, "last_seq"),
            (
                r#"{"type":"teleport","seq":1,"ts":"t","workflow_id":"w"}"#,
                "type",
            ),
            (r#"{"type":"final_report","content":"no seq"}"#, "seq"),
            (
                r#"{"seq":-1,"ts":"t","workflow_id":"w","type":"final_report","content":"x"}"#,
                "seq",
            ),
            (
                r#"{"seq":1,"ts":"t","workflow_id":"w","type":"agent_thinking","content":"c"}"#,
                "agent",
            ),
            (
                r#"{"seq":1,"ts":"t","workflow_id":"w","type":"text_delta","agent":"a","message_id":"m"}"#,
                "delta",
            ),
            (
                r#"{"seq":1,"ts":"t","workflow_id":"w","type":"interrupt_resolved","interrupt_id":"i","status":"maybe","user":null}"#,
                "status",
            ),
            (
                r#"{"seq":1,"ts":"t","workflow_id":"w","type":"agent_started","agent":"a","task":7}"#,
                "task",
            ),
            (
                r#"{"seq":1,"ts":"t","workflow_id":"w","type":"workflow_status","status":"asleep"}"#,
                "status",
            ),
            (
                r#"{"seq":1,"ts":"t","workflow_id":"w","type":"tool_executing","agent":"a","tool":"t","call_id":"c"}"#,
                "input",
            ),
            (r#"{"type":"error","code":"oops","message":"m"}"#, "code"),
        ];
        for (text, field) in cases {
            assert_eq!(server_message(text), Err(invalid(field)), "{text}");
            assert!(
                serde_json::from_str::<ServerMessage>(text).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn snapshots_round_trip() {
        let events: Vec<&str> = FRAMES
            .iter()
            .copied()
            .filter(|f| f.starts_with(r#"{"seq""#))
            .collect();
        let workflow = r#"{"id":"w","kind":"echo","title":null,"status":"waiting_input",
            "last_seq":2,"created_at":"c","updated_at":"u"}"#;
        let text = format!(
            r#"{{"workflow":{workflow},"events":[{}]}}"#,
            events.join(",")
        );
        let snapshot: RunSnapshot = serde_json::from_str(&text).expect("parses");
        let derived: WorkflowInfo = serde_json::from_str(workflow).expect("derived");
        assert_eq!(snapshot.workflow, derived);
        assert_eq!(snapshot.events.len(), events.len());
        for (event, text) in snapshot.events.iter().zip(&events) {
            assert_eq!(
                *event,
                serde_json::from_str::<LoggedEvent>(text).expect("derived")
            );
        }
        let again = serde_json::to_string(&snapshot).expect("serializes");
        assert_eq!(
            serde_json::from_str::<RunSnapshot>(&again).expect("parses"),
            snapshot
        );
        for (good, bad) in [("agent_thinking", "teleport"), ("waiting_input", "asleep")] {
            let bad = text.replace(good, bad);
            assert!(serde_json::from_str::<RunSnapshot>(&bad).is_err(), "{bad}");
        }
    }

    /// One event of `kind` with its optional fields set. A new event type must get a sample
    /// here (the match is exhaustive), and is then read by the browser's decoder or the test
    /// below fails.
    fn sample(kind: EventKind) -> EventBody {
        let (agent, s) = ("a".to_owned(), |t: &str| t.to_owned());
        match kind {
            EventKind::WorkflowStatus => EventBody::WorkflowStatus {
                status: WorkflowStatus::WaitingInput,
                detail: Some(s("d")),
            },
            EventKind::NodeUpdate => EventBody::NodeUpdate {
                node: s("n"),
                status: NodeStatus::Failed,
                detail: Some(s("d")),
            },
            EventKind::AgentStarted => EventBody::AgentStarted {
                agent,
                task: Some(s("t")),
            },
            EventKind::AgentThinking => EventBody::AgentThinking {
                agent,
                content: Some(s("c")),
                message_id: Some(s("m")),
            },
            EventKind::AgentResponse => EventBody::AgentResponse {
                agent,
                content: Some(s("c")),
                message_id: Some(s("m")),
            },
            EventKind::ToolExecuting => EventBody::ToolExecuting {
                agent,
                tool: s("t"),
                call_id: s("c"),
                input: serde_json::json!({ "q": [1, 2.5] }),
            },
            EventKind::ToolUpdate => EventBody::ToolUpdate {
                agent,
                tool: s("t"),
                call_id: s("c"),
                message: s("m"),
                progress: Some(0.5),
            },
            EventKind::ToolCompleted => EventBody::ToolCompleted {
                agent,
                tool: s("t"),
                call_id: s("c"),
                ok: false,
                output: Some(serde_json::json!({ "n": 1 })),
                error: Some(s("e")),
                duration_ms: 3,
            },
            EventKind::SearchResults => EventBody::SearchResults {
                query: s("q"),
                results: vec![SearchHit {
                    title: s("T"),
                    source: s("s"),
                    snippet: s("x"),
                    score: 1.5,
                }],
            },
            EventKind::AgentCompleted => EventBody::AgentCompleted {
                agent,
                ok: true,
                summary: Some(s("s")),
            },
            EventKind::FinalReport => EventBody::FinalReport { content: s("r") },
            EventKind::UserInput => EventBody::UserInput {
                content: s("c"),
                user: s("u"),
                client_msg_id: s("m"),
            },
            EventKind::TextDelta => EventBody::TextDelta {
                agent,
                message_id: s("m"),
                delta: s("d"),
            },
            EventKind::ThinkingDelta => EventBody::ThinkingDelta {
                agent,
                message_id: s("m"),
                delta: s("d"),
            },
            EventKind::Interrupt => EventBody::Interrupt {
                agent,
                interrupt_id: s("i"),
                reason: s("input"),
                message: s("m"),
                call_id: Some(s("c")),
                response_schema: Some(serde_json::json!({ "type": "string" })),
                expires_at: Some(s("2026-12-02T10:00:00.000Z")),
            },
            EventKind::InterruptResolved => EventBody::InterruptResolved {
                interrupt_id: s("i"),
                status: InterruptStatus::Resolved,
                payload: Some(serde_json::json!({ "v": 1 })),
                user: Some(s("u")),
                client_msg_id: Some(s("m")),
            },
        }
    }

    #[test]
    fn the_browser_reads_every_event_type_of_the_protocol() {
        for &kind in EventKind::ALL {
            let body = sample(kind);
            assert_eq!(body.event_kind(), kind);
            assert_eq!(body.kind(), kind.as_str());
            let event = LoggedEvent {
                seq: 1,
                ts: "t".into(),
                workflow_id: "w".into(),
                body,
            };
            let text = serde_json::to_string(&event).expect("serializes");
            assert_eq!(
                server_message(&text),
                Ok(ServerMessage::Event(event)),
                "{text}"
            );
        }
    }

    #[test]
    fn every_control_frame_type_is_a_frame_not_an_event() {
        let frames = [
            ServerFrame::Hello {
                workflow_id: "w".into(),
                last_seq: 1,
                status: WorkflowStatus::Running,
                heartbeat_ms: 1,
            },
            ServerFrame::ReplayDone { last_seq: 1 },
            ServerFrame::Ack {
                client_msg_id: Some("m".into()),
                id: None,
                seq: 1,
            },
            ServerFrame::Error {
                code: ErrorCode::Conflict,
                message: "m".into(),
                id: Some("e".into()),
            },
            ServerFrame::HeartbeatResponse {
                correlation_id: "h".into(),
            },
        ];
        let kinds: Vec<FrameKind> = frames.iter().map(ServerFrame::frame_kind).collect();
        assert_eq!(kinds, FrameKind::ALL, "a sample of every frame type");
        for frame in frames {
            let text = serde_json::to_string(&frame).expect("serializes");
            assert_eq!(
                server_message(&text),
                Ok(ServerMessage::Control(frame)),
                "{text}"
            );
        }
    }
}
