//! The wire types of `shared/PROTOCOL.md`, one enum per direction. Pure serde, no I/O, so the
//! server, the WASM client and the tests all read and write frames through these types.
//!
//! - [`EventBody`]: what a workflow event says (§1), tagged by `type`.
//! - [`LoggedEvent`]: an event as it sits in the log: `seq`, `ts`, `workflow_id` + the body.
//! - [`AgentEvent`]: an event as a producer sends it, with its optional idempotency `id` (§3).
//! - [`ServerFrame`]: control frames the server sends (`hello`, `replay_done`, `ack`, ...).
//! - [`ServerMessage`]: anything the subscriber socket delivers: a control frame or an event.
//! - [`ClientFrame`]: what a subscriber may send (`user_input`, `heartbeat`).
//! - [`ErrorCode`]: the error codes of §4, with their HTTP statuses.
//!
//! - [`vocab`]: the words of the wire, each written once. [`decode`]: the browser's reader of
//!   what the server sends, by hand instead of these derived decoders (smaller WASM); tests
//!   there hold the two to the same results.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod decode;
pub mod vocab;

pub use vocab::{EventKind, FrameKind};

vocab::wire_words! {
    /// Lifecycle of a workflow, as carried by `workflow_status` events and the workflow object.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum WorkflowStatus {
        Pending = "pending",
        Running = "running",
        WaitingInput = "waiting_input",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl WorkflowStatus {
    /// Terminal statuses end the log: nothing may be appended after them.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

vocab::wire_words! {
    /// Status of one node of a workflow graph (`node_update`); also a CSS class in the step rail.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum NodeStatus {
        Executing = "executing",
        Completed = "completed",
        Failed = "failed",
    }
}

vocab::wire_words! {
    /// How an interrupt ended (`interrupt_resolved`, and the `resolve` frame).
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum InterruptStatus {
        Resolved = "resolved",
        Cancelled = "cancelled",
    }
}

/// One scored hit inside a `search_results` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub title: String,
    pub source: String,
    pub snippet: String,
    pub score: f64,
}

/// The body of a workflow event (§1). Optional fields are omitted from the JSON when absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    WorkflowStatus {
        status: WorkflowStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    NodeUpdate {
        node: String,
        status: NodeStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    AgentStarted {
        agent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<String>,
    },
    /// Reasoning: whole, or the close of a streamed one (`message_id`). A producer may omit
    /// `content` when closing a streamed message; the log always holds it (the server fills it
    /// with the deltas joined).
    AgentThinking {
        agent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// An answer: whole, or the close of a streamed one, as [`EventBody::AgentThinking`].
    AgentResponse {
        agent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    ToolExecuting {
        agent: String,
        tool: String,
        call_id: String,
        input: Value,
    },
    ToolUpdate {
        agent: String,
        tool: String,
        call_id: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        progress: Option<f64>,
    },
    ToolCompleted {
        agent: String,
        tool: String,
        call_id: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        duration_ms: u64,
    },
    SearchResults {
        query: String,
        results: Vec<SearchHit>,
    },
    AgentCompleted {
        agent: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    FinalReport {
        content: String,
    },
    UserInput {
        content: String,
        user: String,
        client_msg_id: String,
    },
    /// A piece of a streamed answer; the first with a new `message_id` opens the message.
    TextDelta {
        agent: String,
        message_id: String,
        delta: String,
    },
    /// A piece of streamed reasoning.
    ThinkingDelta {
        agent: String,
        message_id: String,
        delta: String,
    },
    /// An agent asks a person something and waits (AG-UI 1.0's interrupt).
    Interrupt {
        agent: String,
        interrupt_id: String,
        /// What kind of question: [`vocab::reasons`] names the ones Lantern draws a card for.
        reason: String,
        message: String,
        /// The tool call the question is about, when it is about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<String>,
        /// A JSON Schema for the answer's `payload`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_schema: Option<Value>,
        /// RFC 3339: answers after it are refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<String>,
    },
    /// An interrupt answered (by a person), withdrawn (by its agent) or closed by the server.
    InterruptResolved {
        interrupt_id: String,
        status: InterruptStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
        /// Who answered; `null` (always written) when the agent or the server closed it.
        #[serde(default)]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
}

impl EventBody {
    /// The `type` of this event. Every variant has a word of its own in [`EventKind`], which
    /// the browser's decoder matches exhaustively: a new event type cannot be forgotten there.
    pub fn event_kind(&self) -> EventKind {
        match self {
            Self::WorkflowStatus { .. } => EventKind::WorkflowStatus,
            Self::NodeUpdate { .. } => EventKind::NodeUpdate,
            Self::AgentStarted { .. } => EventKind::AgentStarted,
            Self::AgentThinking { .. } => EventKind::AgentThinking,
            Self::AgentResponse { .. } => EventKind::AgentResponse,
            Self::ToolExecuting { .. } => EventKind::ToolExecuting,
            Self::ToolUpdate { .. } => EventKind::ToolUpdate,
            Self::ToolCompleted { .. } => EventKind::ToolCompleted,
            Self::SearchResults { .. } => EventKind::SearchResults,
            Self::AgentCompleted { .. } => EventKind::AgentCompleted,
            Self::FinalReport { .. } => EventKind::FinalReport,
            Self::UserInput { .. } => EventKind::UserInput,
            Self::TextDelta { .. } => EventKind::TextDelta,
            Self::ThinkingDelta { .. } => EventKind::ThinkingDelta,
            Self::Interrupt { .. } => EventKind::Interrupt,
            Self::InterruptResolved { .. } => EventKind::InterruptResolved,
        }
    }

    /// The `type` word of this event (the word of [`EventBody::event_kind`]; a match of its
    /// own, as the browser's event rows need only the word).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::WorkflowStatus { .. } => EventKind::WORKFLOW_STATUS,
            Self::NodeUpdate { .. } => EventKind::NODE_UPDATE,
            Self::AgentStarted { .. } => EventKind::AGENT_STARTED,
            Self::AgentThinking { .. } => EventKind::AGENT_THINKING,
            Self::AgentResponse { .. } => EventKind::AGENT_RESPONSE,
            Self::ToolExecuting { .. } => EventKind::TOOL_EXECUTING,
            Self::ToolUpdate { .. } => EventKind::TOOL_UPDATE,
            Self::ToolCompleted { .. } => EventKind::TOOL_COMPLETED,
            Self::SearchResults { .. } => EventKind::SEARCH_RESULTS,
            Self::AgentCompleted { .. } => EventKind::AGENT_COMPLETED,
            Self::FinalReport { .. } => EventKind::FINAL_REPORT,
            Self::UserInput { .. } => EventKind::USER_INPUT,
            Self::TextDelta { .. } => EventKind::TEXT_DELTA,
            Self::ThinkingDelta { .. } => EventKind::THINKING_DELTA,
            Self::Interrupt { .. } => EventKind::INTERRUPT,
            Self::InterruptResolved { .. } => EventKind::INTERRUPT_RESOLVED,
        }
    }

    /// The agent this event belongs to, when it belongs to one.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Self::AgentStarted { agent, .. }
            | Self::AgentThinking { agent, .. }
            | Self::AgentResponse { agent, .. }
            | Self::ToolExecuting { agent, .. }
            | Self::ToolUpdate { agent, .. }
            | Self::ToolCompleted { agent, .. }
            | Self::AgentCompleted { agent, .. }
            | Self::TextDelta { agent, .. }
            | Self::ThinkingDelta { agent, .. }
            | Self::Interrupt { agent, .. } => Some(agent),
            _ => None,
        }
    }
}

/// An event as it sits in the log and as subscribers receive it: flat JSON, with `seq`, `ts`
/// and `workflow_id` beside the body's fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedEvent {
    pub seq: u64,
    /// Server time of the append, RFC 3339 UTC with milliseconds.
    pub ts: String,
    pub workflow_id: String,
    #[serde(flatten)]
    pub body: EventBody,
}

/// An event as a producer (agent socket, HTTP ingest) sends it: no `seq`, `ts`, `workflow_id`;
/// an optional `id` makes retries idempotent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub body: EventBody,
}

vocab::wire_words! {
    /// The error codes of `error` frames and HTTP error bodies (§4).
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ErrorCode {
        BadRequest = "bad_request",
        Unauthorized = "unauthorized",
        Forbidden = "forbidden",
        NotFound = "not_found",
        Conflict = "conflict",
        TooLarge = "too_large",
        RateLimited = "rate_limited",
        Internal = "internal",
    }
}

impl ErrorCode {
    /// The HTTP status that goes with this code (§5).
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::TooLarge => 413,
            Self::RateLimited => 429,
            Self::Internal => 500,
        }
    }
}

/// Control frames the server sends. They are not logged and carry no `seq`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Hello {
        workflow_id: String,
        last_seq: u64,
        status: WorkflowStatus,
        heartbeat_ms: u64,
    },
    ReplayDone {
        last_seq: u64,
    },
    /// Acknowledges a `user_input` (by `client_msg_id`) or an agent event (by `id`).
    Ack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        seq: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
        /// The `id` of the agent event that was refused, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// Answers a client's `heartbeat` (the server itself pings at the WebSocket level).
    HeartbeatResponse {
        correlation_id: String,
    },
}

impl ServerFrame {
    /// The `type` of this frame.
    pub fn frame_kind(&self) -> FrameKind {
        match self {
            Self::Hello { .. } => FrameKind::Hello,
            Self::ReplayDone { .. } => FrameKind::ReplayDone,
            Self::Ack { .. } => FrameKind::Ack,
            Self::Error { .. } => FrameKind::Error,
            Self::HeartbeatResponse { .. } => FrameKind::HeartbeatResponse,
        }
    }
}

/// Anything a subscriber socket delivers: a control frame, or a logged event. The browser
/// reads these with [`decode::server_message`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerMessage {
    Control(ServerFrame),
    Event(LoggedEvent),
}

/// Frames a subscriber (browser or other viewer) sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    UserInput {
        content: String,
        client_msg_id: String,
    },
    /// Answer an open interrupt (§2); appended as `interrupt_resolved` with the caller as
    /// `user`.
    Resolve {
        interrupt_id: String,
        status: InterruptStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
        client_msg_id: String,
    },
    Heartbeat {
        correlation_id: String,
    },
}

/// The workflow object of the HTTP API (§5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowInfo {
    pub id: String,
    pub kind: String,
    pub title: Option<String>,
    pub status: WorkflowStatus,
    pub last_seq: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A workflow and its log so far: what the run page is rendered from on the server, and what
/// its socket resumes after.
/// Its `Deserialize` is written by hand in [`decode`], for the browser's sake.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSnapshot {
    pub workflow: WorkflowInfo,
    /// Every event up to the snapshot's moment, in `seq` order.
    pub events: Vec<LoggedEvent>,
}

/// Longest `user_input` content accepted, in bytes (§2).
pub const MAX_INPUT_BYTES: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parses `text`, checks it becomes `expected`, and that serializing gives the same JSON back.
    fn round_trip<T>(text: &str, expected: T)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        let parsed: T = serde_json::from_str(text).expect("parses");
        assert_eq!(parsed, expected);
        let back: Value = serde_json::to_value(&parsed).expect("serializes");
        let original: Value = serde_json::from_str(text).expect("valid json");
        assert_eq!(back, original);
    }

    #[test]
    fn logged_event_example_from_protocol_round_trips() {
        // PROTOCOL.md §1's example, with its `{...}` output filled in.
        let text = r#"{"seq": 7, "ts": "2026-11-21T23:59:01.123Z", "workflow_id": "wf_01J", "type": "tool_completed",
            "agent": "searcher", "tool": "search", "call_id": "c1", "ok": true, "output": {"hits": 3}, "duration_ms": 12}"#;
        round_trip(
            text,
            LoggedEvent {
                seq: 7,
                ts: "2026-11-21T23:59:01.123Z".into(),
                workflow_id: "wf_01J".into(),
                body: EventBody::ToolCompleted {
                    agent: "searcher".into(),
                    tool: "search".into(),
                    call_id: "c1".into(),
                    ok: true,
                    output: Some(json!({"hits": 3})),
                    error: None,
                    duration_ms: 12,
                },
            },
        );
    }

    #[test]
    fn every_event_type_round_trips() {
        let cases = [
            r#"{"type":"workflow_status","status":"waiting_input","detail":"say something"}"#,
            r#"{"type":"workflow_status","status":"cancelled"}"#,
            r#"{"type":"node_update","node":"search","status":"executing"}"#,
            r#"{"type":"agent_started","agent":"searcher","task":"find docs"}"#,
            r#"{"type":"agent_thinking","agent":"searcher","content":"hmm"}"#,
            r#"{"type":"agent_response","agent":"searcher","content":"here"}"#,
            r#"{"type":"tool_executing","agent":"a","tool":"search","call_id":"c1","input":{"q":"x"}}"#,
            r#"{"type":"tool_update","agent":"a","tool":"search","call_id":"c1","message":"half","progress":0.5}"#,
            r#"{"type":"tool_completed","agent":"a","tool":"search","call_id":"c1","ok":false,"error":"boom","duration_ms":3}"#,
            r#"{"type":"search_results","query":"q","results":[{"title":"T","source":"s.md","snippet":"...","score":1.5}]}"#,
            r#"{"type":"agent_completed","agent":"a","ok":true,"summary":"done"}"#,
            r#"{"type":"final_report","content":"**Report**"}"#,
            r#"{"type":"user_input","content":"hi","user":"admin","client_msg_id":"m1"}"#,
            r#"{"type":"agent_response","agent":"a","content":"whole","message_id":"m1"}"#,
            r#"{"type":"agent_response","agent":"a","message_id":"m1"}"#,
            r#"{"type":"text_delta","agent":"a","message_id":"m1","delta":"He"}"#,
            r#"{"type":"thinking_delta","agent":"a","message_id":"r1","delta":"so"}"#,
            r#"{"type":"interrupt","agent":"a","interrupt_id":"i1","reason":"tool_approval","message":"Run it?","call_id":"c1","response_schema":{"type":"object"},"expires_at":"2026-12-02T10:00:00.000Z"}"#,
            r#"{"type":"interrupt","agent":"a","interrupt_id":"i2","reason":"input","message":"Name?"}"#,
            r#"{"type":"interrupt_resolved","interrupt_id":"i1","status":"resolved","payload":{"approved":true},"user":"admin","client_msg_id":"m2"}"#,
            r#"{"type":"interrupt_resolved","interrupt_id":"i2","status":"cancelled","user":null}"#,
        ];
        for text in cases {
            let body: EventBody =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let back = serde_json::to_value(&body).expect("serializes");
            assert_eq!(
                back,
                serde_json::from_str::<Value>(text).expect("json"),
                "{text}"
            );
            assert_eq!(back["type"], body.kind());
        }
    }

    #[test]
    fn unknown_extra_fields_are_dropped() {
        let text = r#"{"type":"final_report","content":"x","secret":"not echoed"}"#;
        let body: EventBody = serde_json::from_str(text).expect("parses");
        let back = serde_json::to_value(&body).expect("serializes");
        assert_eq!(back, json!({"type":"final_report","content":"x"}));
    }

    #[test]
    fn missing_field_and_unknown_type_are_errors() {
        assert!(serde_json::from_str::<EventBody>(r#"{"type":"agent_thinking"}"#).is_err());
        assert!(serde_json::from_str::<EventBody>(
            r#"{"type":"text_delta","agent":"a","delta":"x"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<EventBody>(r#"{"type":"teleport","agent":"a"}"#).is_err());
        assert!(serde_json::from_str::<EventBody>(
            r#"{"type":"workflow_status","status":"asleep"}"#
        )
        .is_err());
    }

    #[test]
    fn agent_event_keeps_its_id() {
        round_trip(
            r#"{"id":"e-1","type":"agent_started","agent":"a"}"#,
            AgentEvent {
                id: Some("e-1".into()),
                body: EventBody::AgentStarted {
                    agent: "a".into(),
                    task: None,
                },
            },
        );
    }

    #[test]
    fn control_frames_from_protocol_round_trip() {
        round_trip(
            r#"{"type":"hello","workflow_id":"wf_1","last_seq":42,"status":"running","heartbeat_ms":15000}"#,
            ServerFrame::Hello {
                workflow_id: "wf_1".into(),
                last_seq: 42,
                status: WorkflowStatus::Running,
                heartbeat_ms: 15000,
            },
        );
        round_trip(
            r#"{"type":"replay_done","last_seq":9}"#,
            ServerFrame::ReplayDone { last_seq: 9 },
        );
        round_trip(
            r#"{"type":"ack","client_msg_id":"m1","seq":5}"#,
            ServerFrame::Ack {
                client_msg_id: Some("m1".into()),
                id: None,
                seq: 5,
            },
        );
        round_trip(
            r#"{"type":"ack","id":"e-1","seq":6}"#,
            ServerFrame::Ack {
                client_msg_id: None,
                id: Some("e-1".into()),
                seq: 6,
            },
        );
        round_trip(
            r#"{"type":"error","code":"bad_request","message":"nope"}"#,
            ServerFrame::Error {
                code: ErrorCode::BadRequest,
                message: "nope".into(),
                id: None,
            },
        );
        round_trip(
            r#"{"type":"heartbeat_response","correlation_id":"h1"}"#,
            ServerFrame::HeartbeatResponse {
                correlation_id: "h1".into(),
            },
        );
    }

    #[test]
    fn client_frames_from_protocol_round_trip() {
        round_trip(
            r#"{"type":"user_input","content":"...","client_msg_id":"3f1c"}"#,
            ClientFrame::UserInput {
                content: "...".into(),
                client_msg_id: "3f1c".into(),
            },
        );
        round_trip(
            r#"{"type":"resolve","interrupt_id":"i1","status":"resolved","payload":{"approved":true},"client_msg_id":"m9"}"#,
            ClientFrame::Resolve {
                interrupt_id: "i1".into(),
                status: InterruptStatus::Resolved,
                payload: Some(json!({"approved": true})),
                client_msg_id: "m9".into(),
            },
        );
        round_trip(
            r#"{"type":"heartbeat","correlation_id":"h7"}"#,
            ClientFrame::Heartbeat {
                correlation_id: "h7".into(),
            },
        );
    }

    #[test]
    fn server_message_tells_events_from_control_frames() {
        let hello: ServerMessage = serde_json::from_str(
            r#"{"type":"hello","workflow_id":"w","last_seq":0,"status":"pending","heartbeat_ms":1}"#,
        )
        .expect("parses");
        assert!(matches!(
            hello,
            ServerMessage::Control(ServerFrame::Hello { .. })
        ));
        let event: ServerMessage = serde_json::from_str(
            r#"{"seq":1,"ts":"t","workflow_id":"w","type":"final_report","content":"x"}"#,
        )
        .expect("parses");
        assert!(matches!(
            event,
            ServerMessage::Event(LoggedEvent { seq: 1, .. })
        ));
    }

    #[test]
    fn wire_words_are_what_serde_writes() {
        for status in WorkflowStatus::ALL {
            assert_eq!(json!(status), status.as_str());
        }
        for status in NodeStatus::ALL {
            assert_eq!(json!(status), status.as_str());
        }
        for status in InterruptStatus::ALL {
            assert_eq!(json!(status), status.as_str());
        }
        for code in ErrorCode::ALL {
            assert_eq!(json!(code), code.as_str());
        }
    }

    #[test]
    fn error_codes_map_to_http_statuses() {
        assert_eq!(ErrorCode::Conflict.http_status(), 409);
        assert_eq!(ErrorCode::TooLarge.http_status(), 413);
        assert_eq!(
            serde_json::to_value(ErrorCode::RateLimited).expect("ser"),
            json!("rate_limited")
        );
    }
}
