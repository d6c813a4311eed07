//! A workflow's log as AG-UI 1.0 events (PROTOCOL.md §8, "Out"): a pure fold, event by event,
//! from whatever `seq` a client starts at.
//!
//! AG-UI has runs, and a stream must be valid by its rules (what `@ag-ui/client` verifies):
//! a run starts before anything else and, before it finishes, every step, message and tool
//! call in it has ended. Lantern's log has no runs and a client may start anywhere, so the
//! fold opens what it needs lazily — a run, a message whose start was before the cursor — and
//! closes what AG-UI requires before each `RUN_FINISHED`, re-opening the steps of the agents
//! still at work in the next run. The mapping:
//!
//! | Lantern | AG-UI |
//! |---|---|
//! | `workflow_status` `running` (or any event while no run is open) | `RUN_STARTED` |
//! | `waiting_input`, `completed` | `RUN_FINISHED` |
//! | `cancelled` | `RUN_FINISHED` with outcome `cancelled` |
//! | `failed` | `RUN_ERROR` (`code` `failed`, `message` the detail) |
//! | `interrupt` | `CUSTOM` `interrupt`, then `RUN_FINISHED` with outcome `interrupt` carrying every open interrupt |
//! | `agent_started` / `agent_completed` | `STEP_STARTED` / `STEP_FINISHED` (`stepName` = agent) |
//! | `text_delta` … `agent_response` | `TEXT_MESSAGE_START`, `_CONTENT` per delta, `_END` |
//! | `agent_response` without deltas | the three at once (`messageId` = its id, or `{workflow}-{seq}`) |
//! | `thinking_delta` … `agent_thinking` | `REASONING_START`, `REASONING_MESSAGE_START`, `_CONTENT`, `_END`, `REASONING_END` |
//! | `tool_executing` | `TOOL_CALL_START`, `TOOL_CALL_ARGS` (the input as JSON), `TOOL_CALL_END` |
//! | `tool_completed` | `TOOL_CALL_RESULT` (`content`: the output as JSON, or the error) |
//! | everything else (`user_input`, `interrupt_resolved`, `node_update`, `tool_update`, `search_results`, `final_report`) | `CUSTOM`, `name` = the Lantern type, `value` = the Lantern event |

use std::collections::{BTreeMap, BTreeSet};

use app::protocol::{EventBody, LoggedEvent, WorkflowStatus};
use serde_json::Value;

use super::events::{Event, Interrupt, Outcome};

/// What a message is, once open.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Open {
    Text,
    Reasoning,
}

/// The fold's state: what the client has been told is open in this stream.
pub struct Translator {
    thread_id: String,
    /// The open run's id.
    run: Option<String>,
    /// A caller-chosen id for the next run opened (a `POST /agui/{kind}` run has the id the
    /// client gave).
    next_run_id: Option<String>,
    /// Agents at work (known from this stream), whose steps each run opens.
    agents: BTreeSet<String>,
    /// Steps open in the current run.
    steps: BTreeSet<String>,
    /// Messages open in the current run, by id.
    messages: BTreeMap<String, Open>,
    /// Interrupts asked and not yet answered (known from this stream), by id.
    interrupts: BTreeMap<String, Interrupt>,
    /// A terminal status went out: nothing follows.
    over: bool,
    /// Runs finished (or errored) in this stream so far.
    runs_ended: u64,
}

impl Translator {
    pub fn new(thread_id: impl Into<String>) -> Self {
        Self {
            thread_id: thread_id.into(),
            run: None,
            next_run_id: None,
            agents: BTreeSet::new(),
            steps: BTreeSet::new(),
            messages: BTreeMap::new(),
            interrupts: BTreeMap::new(),
            over: false,
            runs_ended: 0,
        }
    }

    /// The next run this stream opens is called `run_id`.
    pub fn name_next_run(&mut self, run_id: impl Into<String>) {
        self.next_run_id = Some(run_id.into());
    }

    /// Is a run open?
    pub fn in_run(&self) -> bool {
        self.run.is_some()
    }

    /// Has the workflow ended (nothing can follow)?
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// How many runs this stream has ended (finished, interrupted or failed).
    pub fn runs_ended(&self) -> u64 {
        self.runs_ended
    }

    /// The AG-UI events logged event `event` makes, appended to `out`.
    pub fn event(&mut self, event: &LoggedEvent, raw: &Value, out: &mut Vec<Event>) {
        if self.over {
            return;
        }
        let seq = event.seq;
        match &event.body {
            EventBody::WorkflowStatus { status, detail } => match status {
                WorkflowStatus::Pending => {}
                WorkflowStatus::Running => self.open_run(seq, out),
                WorkflowStatus::WaitingInput => {
                    if self.run.is_some() {
                        self.finish(out);
                    }
                }
                WorkflowStatus::Completed | WorkflowStatus::Cancelled => {
                    self.open_run(seq, out);
                    self.interrupts.clear();
                    let cancelled = *status == WorkflowStatus::Cancelled;
                    self.finish_as(cancelled.then_some(Outcome::Cancelled), out);
                    self.over = true;
                }
                WorkflowStatus::Failed => {
                    self.open_run(seq, out);
                    let message = detail.clone().unwrap_or_else(|| status.as_str().to_owned());
                    out.push(Event::RunError {
                        message,
                        code: Some(status.as_str().to_owned()),
                    });
                    self.run = None;
                    self.runs_ended += 1;
                    self.over = true;
                }
            },
            EventBody::AgentStarted { agent, .. } => {
                self.open_run(seq, out);
                self.agents.insert(agent.clone());
                if self.steps.insert(agent.clone()) {
                    out.push(Event::StepStarted {
                        step_name: agent.clone(),
                    });
                }
            }
            EventBody::AgentCompleted { agent, .. } => {
                self.open_run(seq, out);
                self.agents.remove(agent);
                if self.steps.remove(agent) {
                    out.push(Event::StepFinished {
                        step_name: agent.clone(),
                    });
                }
            }
            EventBody::TextDelta {
                message_id, delta, ..
            } => {
                self.open_run(seq, out);
                self.open_message(message_id, Open::Text, out);
                if !delta.is_empty() {
                    out.push(Event::TextMessageContent {
                        message_id: message_id.clone(),
                        delta: delta.clone(),
                    });
                }
            }
            EventBody::ThinkingDelta {
                message_id, delta, ..
            } => {
                self.open_run(seq, out);
                self.open_message(message_id, Open::Reasoning, out);
                if !delta.is_empty() {
                    out.push(Event::ReasoningMessageContent {
                        message_id: message_id.clone(),
                        delta: delta.clone(),
                    });
                }
            }
            EventBody::AgentResponse {
                content,
                message_id,
                ..
            } => self.whole_message(seq, Open::Text, message_id, content, out),
            EventBody::AgentThinking {
                content,
                message_id,
                ..
            } => self.whole_message(seq, Open::Reasoning, message_id, content, out),
            EventBody::ToolExecuting {
                tool,
                call_id,
                input,
                ..
            } => {
                self.open_run(seq, out);
                out.push(Event::ToolCallStart {
                    tool_call_id: call_id.clone(),
                    tool_call_name: tool.clone(),
                    parent_message_id: None,
                });
                out.push(Event::ToolCallArgs {
                    tool_call_id: call_id.clone(),
                    delta: input.to_string(),
                });
                out.push(Event::ToolCallEnd {
                    tool_call_id: call_id.clone(),
                });
            }
            EventBody::ToolCompleted {
                call_id,
                ok,
                output,
                error,
                ..
            } => {
                self.open_run(seq, out);
                let content = match (ok, output, error) {
                    (true, Some(output), _) => output.to_string(),
                    (true, None, _) => "null".to_owned(),
                    (false, _, error) => serde_json::json!({
                        "error": error.clone().unwrap_or_else(|| "failed".into())
                    })
                    .to_string(),
                };
                out.push(Event::ToolCallResult {
                    message_id: format!("{call_id}-result"),
                    tool_call_id: call_id.clone(),
                    content,
                    role: Some("tool".into()),
                });
            }
            EventBody::Interrupt {
                interrupt_id,
                reason,
                message,
                call_id,
                response_schema,
                expires_at,
                ..
            } => {
                self.open_run(seq, out);
                self.custom(raw, out);
                self.interrupts.insert(
                    interrupt_id.clone(),
                    Interrupt {
                        id: interrupt_id.clone(),
                        reason: reason.clone(),
                        message: Some(message.clone()),
                        tool_call_id: call_id.clone(),
                        response_schema: response_schema.clone(),
                        expires_at: expires_at.clone(),
                        metadata: None,
                    },
                );
                self.finish(out);
            }
            EventBody::InterruptResolved { interrupt_id, .. } => {
                self.interrupts.remove(interrupt_id);
                self.open_run(seq, out);
                self.custom(raw, out);
            }
            _ => {
                self.open_run(seq, out);
                self.custom(raw, out);
            }
        }
    }

    fn custom(&self, raw: &Value, out: &mut Vec<Event>) {
        let name = raw["type"].as_str().unwrap_or("event").to_owned();
        out.push(Event::Custom {
            name,
            value: raw.clone(),
        });
    }

    /// Open a run if none is, with the steps of the agents still at work.
    fn open_run(&mut self, seq: u64, out: &mut Vec<Event>) {
        if self.run.is_some() {
            return;
        }
        let run_id = self
            .next_run_id
            .take()
            .unwrap_or_else(|| format!("{}-{seq}", self.thread_id));
        out.push(Event::RunStarted {
            thread_id: self.thread_id.clone(),
            run_id: run_id.clone(),
        });
        self.run = Some(run_id);
        for agent in &self.agents {
            self.steps.insert(agent.clone());
            out.push(Event::StepStarted {
                step_name: agent.clone(),
            });
        }
    }

    fn open_message(&mut self, id: &str, kind: Open, out: &mut Vec<Event>) {
        if self.messages.contains_key(id) {
            return;
        }
        self.messages.insert(id.to_owned(), kind);
        let message_id = id.to_owned();
        match kind {
            Open::Text => out.push(Event::TextMessageStart {
                message_id,
                role: "assistant".into(),
            }),
            Open::Reasoning => {
                out.push(Event::ReasoningStart {
                    message_id: message_id.clone(),
                });
                out.push(Event::ReasoningMessageStart {
                    message_id,
                    role: "reasoning".into(),
                });
            }
        }
    }

    fn end_message(id: &str, kind: Open, out: &mut Vec<Event>) {
        let message_id = id.to_owned();
        match kind {
            Open::Text => out.push(Event::TextMessageEnd { message_id }),
            Open::Reasoning => {
                out.push(Event::ReasoningMessageEnd {
                    message_id: message_id.clone(),
                });
                out.push(Event::ReasoningEnd { message_id });
            }
        }
    }

    /// A closing `agent_response` / `agent_thinking`: ends its streamed message, or is the
    /// whole message when none of it was streamed in this stream.
    fn whole_message(
        &mut self,
        seq: u64,
        kind: Open,
        message_id: &Option<String>,
        content: &Option<String>,
        out: &mut Vec<Event>,
    ) {
        self.open_run(seq, out);
        let id = message_id
            .clone()
            .unwrap_or_else(|| format!("{}-{seq}", self.thread_id));
        if let Some(open) = self.messages.remove(&id) {
            return Self::end_message(&id, open, out);
        }
        self.open_message(&id, kind, out);
        self.messages.remove(&id);
        if let Some(text) = content.as_ref().filter(|t| !t.is_empty()) {
            out.push(match kind {
                Open::Text => Event::TextMessageContent {
                    message_id: id.clone(),
                    delta: text.clone(),
                },
                Open::Reasoning => Event::ReasoningMessageContent {
                    message_id: id.clone(),
                    delta: text.clone(),
                },
            });
        }
        Self::end_message(&id, kind, out);
    }

    /// End what AG-UI requires ended, then `RUN_FINISHED`: an `interrupt` outcome while
    /// interrupts are open, else success.
    fn finish(&mut self, out: &mut Vec<Event>) {
        let interrupts: Vec<Interrupt> = self.interrupts.values().cloned().collect();
        let outcome = (!interrupts.is_empty()).then_some(Outcome::Interrupt { interrupts });
        self.finish_as(outcome, out);
    }

    fn finish_as(&mut self, outcome: Option<Outcome>, out: &mut Vec<Event>) {
        let Some(run_id) = self.run.take() else {
            return;
        };
        for (id, kind) in std::mem::take(&mut self.messages) {
            Self::end_message(&id, kind, out);
        }
        for step_name in std::mem::take(&mut self.steps) {
            out.push(Event::StepFinished { step_name });
        }
        self.runs_ended += 1;
        out.push(Event::RunFinished {
            thread_id: self.thread_id.clone(),
            run_id,
            result: None,
            outcome,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The AG-UI events of `log` (Lantern events as JSON, seq from 1), from `after` on.
    fn translate(log: &[Value], after: usize) -> Vec<Value> {
        let mut translator = Translator::new("wf");
        let mut out = Vec::new();
        for (i, body) in log.iter().enumerate().skip(after) {
            let mut raw = body.clone();
            raw["seq"] = json!(i + 1);
            raw["ts"] = json!("2026-12-02T00:00:00.000Z");
            raw["workflow_id"] = json!("wf");
            let logged: LoggedEvent = serde_json::from_value(raw.clone()).expect("event");
            translator.event(&logged, &raw, &mut out);
        }
        out.iter()
            .map(|e| serde_json::to_value(e).expect("json"))
            .collect()
    }

    fn types(events: &[Value]) -> Vec<&str> {
        events
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect()
    }

    fn answer_log() -> Vec<Value> {
        vec![
            json!({"type": "workflow_status", "status": "running"}),
            json!({"type": "agent_started", "agent": "a"}),
            json!({"type": "text_delta", "agent": "a", "message_id": "m", "delta": "Hel"}),
            json!({"type": "text_delta", "agent": "a", "message_id": "m", "delta": "lo"}),
            json!({"type": "agent_response", "agent": "a", "message_id": "m", "content": "Hello"}),
            json!({"type": "agent_completed", "agent": "a", "ok": true}),
            json!({"type": "workflow_status", "status": "completed"}),
        ]
    }

    #[test]
    fn a_streamed_answer_is_one_text_message_inside_a_step_inside_a_run() {
        let events = translate(&answer_log(), 0);
        assert_eq!(
            types(&events),
            [
                "RUN_STARTED",
                "STEP_STARTED",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "STEP_FINISHED",
                "RUN_FINISHED",
            ]
        );
        assert_eq!(
            events[0],
            json!({"type": "RUN_STARTED", "threadId": "wf", "runId": "wf-1"})
        );
        assert_eq!(events[3]["delta"], "Hel");
        assert_eq!(events[2]["role"], "assistant");
    }

    #[test]
    fn started_mid_message_it_opens_the_run_and_the_message_it_joins() {
        let events = translate(&answer_log(), 3);
        assert_eq!(
            types(&events),
            [
                "RUN_STARTED",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "RUN_FINISHED",
            ]
        );
        assert_eq!(events[2]["delta"], "lo");
    }

    #[test]
    fn an_interrupt_finishes_the_run_closing_what_is_open_and_the_answer_starts_the_next() {
        let log = vec![
            json!({"type": "workflow_status", "status": "running"}),
            json!({"type": "agent_started", "agent": "a"}),
            json!({"type": "thinking_delta", "agent": "a", "message_id": "t", "delta": "hmm"}),
            json!({"type": "interrupt", "agent": "a", "interrupt_id": "i1",
                   "reason": "tool_approval", "message": "Run it?", "call_id": "c1"}),
            json!({"type": "interrupt_resolved", "interrupt_id": "i1", "status": "resolved",
                   "payload": {"approved": true}, "user": "admin"}),
            json!({"type": "workflow_status", "status": "cancelled"}),
        ];
        let events = translate(&log, 0);
        assert_eq!(
            types(&events),
            [
                "RUN_STARTED",
                "STEP_STARTED",
                "REASONING_START",
                "REASONING_MESSAGE_START",
                "REASONING_MESSAGE_CONTENT",
                "CUSTOM",
                "REASONING_MESSAGE_END",
                "REASONING_END",
                "STEP_FINISHED",
                "RUN_FINISHED",
                "RUN_STARTED",
                "STEP_STARTED",
                "CUSTOM",
                "STEP_FINISHED",
                "RUN_FINISHED",
            ]
        );
        assert_eq!(
            events[9]["outcome"],
            json!({"type": "interrupt", "interrupts": [{"id": "i1", "reason": "tool_approval",
                   "message": "Run it?", "toolCallId": "c1"}]})
        );
        assert_eq!(events[5]["name"], "interrupt");
        assert_eq!(events[12]["name"], "interrupt_resolved");
        assert_eq!(events[14]["outcome"], json!({"type": "cancelled"}));
    }

    #[test]
    fn a_tool_call_is_started_argued_and_ended_at_once_and_its_result_follows() {
        let log = vec![
            json!({"type": "tool_executing", "agent": "a", "tool": "t", "call_id": "c",
                   "input": {"q": 1}}),
            json!({"type": "tool_completed", "agent": "a", "tool": "t", "call_id": "c",
                   "ok": true, "output": {"n": 2}, "duration_ms": 3}),
            json!({"type": "workflow_status", "status": "failed", "detail": "boom"}),
        ];
        let events = translate(&log, 0);
        assert_eq!(
            types(&events),
            [
                "RUN_STARTED",
                "TOOL_CALL_START",
                "TOOL_CALL_ARGS",
                "TOOL_CALL_END",
                "TOOL_CALL_RESULT",
                "RUN_ERROR",
            ]
        );
        assert_eq!(events[2]["delta"], r#"{"q":1}"#);
        assert_eq!(events[4]["content"], r#"{"n":2}"#);
        assert_eq!(
            events[5],
            json!({"type": "RUN_ERROR", "message": "boom", "code": "failed"})
        );
    }

    #[test]
    fn a_whole_response_is_a_message_of_its_own_and_other_events_are_custom() {
        let log = vec![
            json!({"type": "user_input", "content": "hi", "user": "u", "client_msg_id": "x"}),
            json!({"type": "agent_response", "agent": "a", "content": "Hello"}),
            json!({"type": "workflow_status", "status": "waiting_input"}),
        ];
        let events = translate(&log, 0);
        assert_eq!(
            types(&events),
            [
                "RUN_STARTED",
                "CUSTOM",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "RUN_FINISHED",
            ]
        );
        assert_eq!(events[1]["value"]["content"], "hi");
        assert_eq!(events[2]["messageId"], "wf-2");
    }
}
