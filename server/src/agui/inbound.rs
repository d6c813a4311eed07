//! An AG-UI agent's run as Lantern events (PROTOCOL.md §8, "In"): a pure fold, event by event.
//!
//! | AG-UI | Lantern |
//! |---|---|
//! | the first `RUN_STARTED` of the workflow | `agent_started` (the agent's registered name) |
//! | `TEXT_MESSAGE_START` / `_CONTENT` / `_END` (and `_CHUNK`) | `text_delta`s closed by `agent_response` (the server joins the text); a message with no content, nothing |
//! | `REASONING_MESSAGE_START` / `_CONTENT` / `_END` (and `_CHUNK`) | `thinking_delta`s closed by `agent_thinking` |
//! | `TOOL_CALL_START` / `_ARGS` / `_END` | `tool_executing` once the arguments are complete (parsed as `input`) |
//! | `TOOL_CALL_RESULT` | `tool_completed` (`output`: the content, as JSON when it parses) |
//! | `STEP_STARTED` / `STEP_FINISHED` | `node_update` `executing` / `completed` |
//! | `RUN_FINISHED` | open messages closed, then `workflow_status` `waiting_input` |
//! | `RUN_FINISHED` with outcome `interrupt` | an `interrupt` per interrupt (reason `tool_call` about a tool call: `tool_approval`), then `waiting_input` |
//! | `RUN_ERROR` | `workflow_status` `failed`, `detail` = its message |
//! | anything else (state, snapshots, activity, raw, custom) | dropped, and counted |
//!
//! What the fold cannot make sense of (content for a message that was never started, a tool
//! call's end with no start) is a [`Malformed`] stream: the workflow fails saying so.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use app::protocol::vocab::reasons;
use app::protocol::{EventBody, NodeStatus, WorkflowStatus};
use serde_json::{json, Value};

use super::events::{Event, Interrupt, Outcome};

/// The reason an agent gives for an approval of a tool call (Pydantic AI's word).
const TOOL_CALL: &str = "tool_call";

/// The stream broke AG-UI's rules in a way Lantern cannot log.
#[derive(Debug, thiserror::Error)]
#[error("malformed AG-UI stream: {0}")]
pub struct Malformed(pub String);

/// How a run ended, for the workflow that runs it.
#[derive(Debug, PartialEq)]
pub enum RunEnd {
    /// Finished; the workflow waits for a follow-up.
    Finished,
    /// Finished for these interrupts (their ids), to be answered in the next run's `resume[]`.
    Interrupted(Vec<String>),
    /// Failed, with the agent's message.
    Failed(String),
}

/// A tool call being streamed.
struct ToolCall {
    name: String,
    args: String,
}

pub struct Inbound {
    /// The agent's registered name: the `agent` of every event it makes.
    agent: String,
    /// `agent_started` went out (at the first run of the workflow).
    started: bool,
    /// Open text (false) and reasoning (true) messages, by id.
    messages: HashMap<String, bool>,
    /// Open messages that have said something. One that never did is closed without a trace:
    /// agents open empty messages (Pydantic AI before a tool call), and an empty answer would
    /// be an empty bubble on the page.
    spoken: HashSet<String>,
    /// The id of the last message opened by a chunk, which later chunks may omit.
    chunk_message: Option<(String, bool)>,
    /// The text of open text messages so far, for [`Inbound::history`].
    texts: HashMap<String, String>,
    tool_calls: HashMap<String, ToolCall>,
    /// Tool calls made and not answered yet: their tool's name and when they were made (for
    /// `duration_ms`).
    called: HashMap<String, (String, Instant)>,
    /// Events dropped for having no Lantern meaning.
    pub dropped: u64,
    /// What the run said, as AG-UI messages in order (assistant texts, assistant tool calls,
    /// tool results): AG-UI agents are stateless, so the next run is sent the conversation so
    /// far.
    pub history: Vec<Value>,
}

impl Inbound {
    /// One per workflow, for all its runs. `started`: the workflow already has its
    /// `agent_started`.
    pub fn new(agent: impl Into<String>, started: bool) -> Self {
        Self {
            agent: agent.into(),
            started,
            messages: HashMap::new(),
            spoken: HashSet::new(),
            chunk_message: None,
            texts: HashMap::new(),
            tool_calls: HashMap::new(),
            called: HashMap::new(),
            dropped: 0,
            history: Vec::new(),
        }
    }

    /// The Lantern events `event` makes, appended to `out`; `Some` when it ended the run.
    pub fn event(
        &mut self,
        event: Event,
        out: &mut Vec<EventBody>,
    ) -> Result<Option<RunEnd>, Malformed> {
        let agent = self.agent.clone();
        match event {
            Event::RunStarted { .. } => {
                // What a run left half-streamed does not carry into the next one; tool calls
                // made and not yet answered do (a resumed run may answer them).
                self.messages.clear();
                self.spoken.clear();
                self.chunk_message = None;
                self.texts.clear();
                self.tool_calls.clear();
                if !std::mem::replace(&mut self.started, true) {
                    out.push(EventBody::AgentStarted { agent, task: None });
                }
            }
            Event::TextMessageStart { message_id, .. } => self.open(message_id, false),
            Event::ReasoningMessageStart { message_id, .. } => self.open(message_id, true),
            Event::TextMessageContent { message_id, delta } => {
                self.content(message_id, false, delta, out)?
            }
            Event::ReasoningMessageContent { message_id, delta } => {
                self.content(message_id, true, delta, out)?
            }
            Event::TextMessageEnd { message_id } | Event::ReasoningMessageEnd { message_id } => {
                self.close(&message_id, out)?
            }
            Event::TextMessageChunk {
                message_id, delta, ..
            } => self.chunk(message_id, false, delta, out)?,
            Event::ReasoningMessageChunk { message_id, delta } => {
                self.chunk(message_id, true, delta, out)?
            }
            Event::ReasoningStart { .. } | Event::ReasoningEnd { .. } => {}
            Event::ToolCallStart {
                tool_call_id,
                tool_call_name,
                ..
            } => {
                let call = ToolCall {
                    name: tool_call_name,
                    args: String::new(),
                };
                self.tool_calls.insert(tool_call_id, call);
            }
            Event::ToolCallArgs {
                tool_call_id,
                delta,
            } => match self.tool_calls.get_mut(&tool_call_id) {
                Some(call) => call.args.push_str(&delta),
                None => return Err(unknown("TOOL_CALL_ARGS for tool call", &tool_call_id)),
            },
            Event::ToolCallEnd { tool_call_id } => {
                let Some(call) = self.tool_calls.remove(&tool_call_id) else {
                    return Err(unknown("TOOL_CALL_END for tool call", &tool_call_id));
                };
                let input = if call.args.trim().is_empty() {
                    Value::Object(Default::default())
                } else {
                    serde_json::from_str(&call.args).unwrap_or(Value::String(call.args.clone()))
                };
                self.called
                    .insert(tool_call_id.clone(), (call.name.clone(), Instant::now()));
                self.history.push(json!({
                    "id": format!("{tool_call_id}-call"),
                    "role": "assistant",
                    "toolCalls": [{
                        "id": tool_call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.args},
                    }],
                }));
                out.push(EventBody::ToolExecuting {
                    agent,
                    tool: call.name,
                    call_id: tool_call_id,
                    input,
                });
            }
            Event::ToolCallResult {
                message_id,
                tool_call_id,
                content,
                ..
            } => {
                let Some((tool, at)) = self.called.remove(&tool_call_id) else {
                    return Err(unknown("TOOL_CALL_RESULT for tool call", &tool_call_id));
                };
                self.history.push(json!({
                    "id": message_id,
                    "role": "tool",
                    "toolCallId": tool_call_id,
                    "content": content,
                }));
                let output = serde_json::from_str(&content).unwrap_or(Value::String(content));
                out.push(EventBody::ToolCompleted {
                    agent,
                    tool,
                    call_id: tool_call_id,
                    ok: true,
                    output: Some(output),
                    error: None,
                    duration_ms: at.elapsed().as_millis() as u64,
                });
            }
            Event::StepStarted { step_name } => out.push(EventBody::NodeUpdate {
                node: step_name,
                status: NodeStatus::Executing,
                detail: None,
            }),
            Event::StepFinished { step_name } => out.push(EventBody::NodeUpdate {
                node: step_name,
                status: NodeStatus::Completed,
                detail: None,
            }),
            Event::RunFinished { outcome, .. } => {
                self.close_all(out);
                let end = match outcome {
                    Some(Outcome::Interrupt { interrupts }) => {
                        let ids = interrupts.iter().map(|i| i.id.clone()).collect();
                        for interrupt in interrupts {
                            out.push(self.interrupt(interrupt));
                        }
                        RunEnd::Interrupted(ids)
                    }
                    _ => RunEnd::Finished,
                };
                let detail = match end {
                    RunEnd::Interrupted(_) => "waiting for an answer",
                    _ => "waiting for your next message",
                };
                out.push(status(WorkflowStatus::WaitingInput, Some(detail)));
                return Ok(Some(end));
            }
            Event::RunError { message, .. } => {
                return Ok(Some(RunEnd::Failed(message)));
            }
            Event::Custom { .. } | Event::Unknown => self.dropped += 1,
        }
        Ok(None)
    }

    fn open(&mut self, id: String, reasoning: bool) {
        self.messages.insert(id, reasoning);
    }

    fn content(
        &mut self,
        id: String,
        reasoning: bool,
        delta: String,
        out: &mut Vec<EventBody>,
    ) -> Result<(), Malformed> {
        if self.messages.get(&id) != Some(&reasoning) {
            return Err(unknown("content for message", &id));
        }
        self.spoken.insert(id.clone());
        if reasoning {
            out.push(EventBody::ThinkingDelta {
                agent: self.agent.clone(),
                message_id: id,
                delta,
            });
        } else {
            self.texts.entry(id.clone()).or_default().push_str(&delta);
            out.push(EventBody::TextDelta {
                agent: self.agent.clone(),
                message_id: id,
                delta,
            });
        }
        Ok(())
    }

    fn chunk(
        &mut self,
        id: Option<String>,
        reasoning: bool,
        delta: Option<String>,
        out: &mut Vec<EventBody>,
    ) -> Result<(), Malformed> {
        let id = match (id, &self.chunk_message) {
            (Some(id), _) => id,
            (None, Some((id, r))) if *r == reasoning => id.clone(),
            (None, _) => return Err(Malformed("a first chunk without a messageId".into())),
        };
        if !self.messages.contains_key(&id) {
            if let Some((previous, _)) = self.chunk_message.take() {
                self.close(&previous, out)?;
            }
            self.open(id.clone(), reasoning);
            self.chunk_message = Some((id.clone(), reasoning));
        }
        match delta.filter(|d| !d.is_empty()) {
            Some(delta) => self.content(id, reasoning, delta, out),
            None => Ok(()),
        }
    }

    fn close(&mut self, id: &str, out: &mut Vec<EventBody>) -> Result<(), Malformed> {
        let Some(reasoning) = self.messages.remove(id) else {
            return Err(unknown("end of message", id));
        };
        if self.chunk_message.as_ref().is_some_and(|(c, _)| c == id) {
            self.chunk_message = None;
        }
        if !self.spoken.remove(id) {
            return Ok(());
        }
        if let Some(text) = self.texts.remove(id) {
            let message = json!({"id": id, "role": "assistant", "content": text});
            self.history.push(message);
        }
        let agent = self.agent.clone();
        let message_id = Some(id.to_owned());
        out.push(if reasoning {
            EventBody::AgentThinking {
                agent,
                content: None,
                message_id,
            }
        } else {
            EventBody::AgentResponse {
                agent,
                content: None,
                message_id,
            }
        });
        Ok(())
    }

    /// Close every open message (a run's end closes what it left open).
    fn close_all(&mut self, out: &mut Vec<EventBody>) {
        let mut open: Vec<String> = self.messages.keys().cloned().collect();
        open.sort();
        for id in open {
            let _ = self.close(&id, out);
        }
    }

    fn interrupt(&self, interrupt: Interrupt) -> EventBody {
        // An approval of a tool call is `tool_approval` to Lantern (the card shows the call
        // with Approve / Deny, answering `{"approved": bool}`); Pydantic AI calls it
        // `tool_call`. Other reasons pass as they are (the card is a form from the schema).
        let reason = match (interrupt.reason.as_str(), &interrupt.tool_call_id) {
            (TOOL_CALL, Some(_)) => reasons::TOOL_APPROVAL.to_owned(),
            _ => interrupt.reason.clone(),
        };
        EventBody::Interrupt {
            agent: self.agent.clone(),
            message: interrupt
                .message
                .unwrap_or_else(|| interrupt.reason.clone()),
            interrupt_id: interrupt.id,
            reason,
            call_id: interrupt.tool_call_id,
            response_schema: interrupt.response_schema,
            expires_at: interrupt.expires_at,
        }
    }
}

fn status(status: WorkflowStatus, detail: Option<&str>) -> EventBody {
    EventBody::WorkflowStatus {
        status,
        detail: detail.map(str::to_owned),
    }
}

fn unknown(what: &str, id: &str) -> Malformed {
    Malformed(format!("{what} {id:?}, which was never started"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(inbound: &mut Inbound, events: Value) -> (Vec<Value>, Option<RunEnd>) {
        let mut out = Vec::new();
        let mut end = None;
        for event in events.as_array().expect("array") {
            let event: Event = serde_json::from_value(event.clone()).expect("an AG-UI event");
            end = inbound.event(event, &mut out).expect("well formed");
        }
        let out = out
            .iter()
            .map(|b| serde_json::to_value(b).expect("json"))
            .collect();
        (out, end)
    }

    #[test]
    fn text_tools_and_steps_become_lantern_events_and_the_run_waits_for_input() {
        let mut inbound = Inbound::new("helper", false);
        let (out, end) = run(
            &mut inbound,
            json!([
                {"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
                {"type": "STEP_STARTED", "stepName": "plan"},
                {"type": "TOOL_CALL_START", "toolCallId": "c1", "toolCallName": "lookup"},
                {"type": "TOOL_CALL_ARGS", "toolCallId": "c1", "delta": "{\"q\":"},
                {"type": "TOOL_CALL_ARGS", "toolCallId": "c1", "delta": "\"x\"}"},
                {"type": "TOOL_CALL_END", "toolCallId": "c1"},
                {"type": "TOOL_CALL_RESULT", "messageId": "r1", "toolCallId": "c1", "content": "{\"n\":1}"},
                {"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
                {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "Hi"},
                {"type": "TEXT_MESSAGE_END", "messageId": "m1"},
                {"type": "STATE_SNAPSHOT", "snapshot": {}},
                {"type": "STEP_FINISHED", "stepName": "plan"},
                {"type": "RUN_FINISHED", "threadId": "t", "runId": "r"}
            ]),
        );
        let kinds: Vec<&str> = out
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect();
        assert_eq!(
            kinds,
            [
                "agent_started",
                "node_update",
                "tool_executing",
                "tool_completed",
                "text_delta",
                "agent_response",
                "node_update",
                "workflow_status",
            ]
        );
        assert_eq!(out[2]["input"], json!({"q": "x"}));
        assert_eq!(out[3]["output"], json!({"n": 1}));
        assert_eq!(
            out[5],
            json!({"type": "agent_response", "agent": "helper", "message_id": "m1"})
        );
        assert_eq!(out[7]["status"], "waiting_input");
        assert_eq!(end, Some(RunEnd::Finished));
        assert_eq!(inbound.dropped, 1);
        assert_eq!(
            inbound.history,
            [
                json!({"id": "c1-call", "role": "assistant", "toolCalls": [{"id": "c1",
                  "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]}),
                json!({"id": "r1", "role": "tool", "toolCallId": "c1", "content": "{\"n\":1}"}),
                json!({"id": "m1", "role": "assistant", "content": "Hi"}),
            ]
        );
    }

    #[test]
    fn an_interrupt_outcome_asks_each_question_and_a_run_error_fails() {
        let mut inbound = Inbound::new("helper", true);
        let (out, end) = run(
            &mut inbound,
            json!([
                {"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
                {"type": "REASONING_MESSAGE_CHUNK", "messageId": "th", "delta": "hmm"},
                {"type": "RUN_FINISHED", "threadId": "t", "runId": "r", "outcome": {"type": "interrupt",
                  "interrupts": [{"id": "i1", "reason": "tool_approval", "toolCallId": "c9"}]}}
            ]),
        );
        let kinds: Vec<&str> = out
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect();
        assert_eq!(
            kinds,
            [
                "thinking_delta",
                "agent_thinking",
                "interrupt",
                "workflow_status"
            ]
        );
        assert_eq!(out[2]["call_id"], "c9");
        assert_eq!(out[2]["message"], "tool_approval");
        assert_eq!(end, Some(RunEnd::Interrupted(vec!["i1".into()])));

        let (_, end) = run(
            &mut inbound,
            json!([{"type": "RUN_ERROR", "message": "model exploded"}]),
        );
        assert_eq!(end, Some(RunEnd::Failed("model exploded".into())));
    }

    #[test]
    fn an_empty_message_leaves_no_trace_and_a_tool_call_approval_is_a_tool_approval() {
        let mut inbound = Inbound::new("helper", true);
        let (out, _) = run(
            &mut inbound,
            json!([
                {"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
                {"type": "TEXT_MESSAGE_START", "messageId": "empty", "role": "assistant"},
                {"type": "TEXT_MESSAGE_END", "messageId": "empty"},
                {"type": "TOOL_CALL_START", "toolCallId": "c1", "toolCallName": "deploy", "parentMessageId": "empty"},
                {"type": "TOOL_CALL_END", "toolCallId": "c1"},
                {"type": "RUN_FINISHED", "threadId": "t", "runId": "r", "outcome": {"type": "interrupt",
                  "interrupts": [{"id": "i1", "reason": "tool_call", "toolCallId": "c1", "message": "Deploy?"}]}}
            ]),
        );
        let kinds: Vec<&str> = out
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect();
        assert_eq!(kinds, ["tool_executing", "interrupt", "workflow_status"]);
        assert_eq!(out[0]["input"], json!({}));
        assert_eq!(out[1]["reason"], "tool_approval");
        assert_eq!(out[1]["message"], "Deploy?");
        assert_eq!(
            inbound.history.len(),
            1,
            "only the tool call: {:?}",
            inbound.history
        );
    }

    #[test]
    fn content_for_a_message_never_started_is_malformed() {
        let mut inbound = Inbound::new("helper", true);
        let event: Event = serde_json::from_value(
            json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": "nope", "delta": "x"}),
        )
        .expect("event");
        let err = inbound
            .event(event, &mut Vec::new())
            .expect_err("malformed");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
