//! `assistant`: a research assistant on the model server the operator runs
//! (`--llm-base-url`, `--llm-model`; [`crate::llm`]).
//!
//! Each person's message is a turn of up to `--llm-max-steps` model requests: the model's answer
//! streams as `text_delta`s (its reasoning as `thinking_delta`s) closed when the request ends;
//! tool calls it makes become tool rows and run — `search_docs` over the corpus `search` uses
//! (its hits also as `search_results`), `ask_user` as an `interrupt` of reason `input` — their
//! results go back to the model, and the next request follows. Tools named in
//! `--llm-approve-tools` wait for a person's approval (`tool_approval`); a denial is told to the
//! model as the tool's result. The last allowed request offers no tools, so the turn ends with
//! an answer. The conversation is kept for follow-ups; "done" finishes.
//!
//! A cancel drops the request in flight (the model server sees the connection close). A model
//! error fails the workflow with the [`LlmError`] as its `detail`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::protocol::vocab::{kinds, reasons};
use app::protocol::{EventBody, InterruptStatus, SearchHit, WorkflowStatus};
use serde_json::{json, Value};
use tracing::Instrument;

use super::inbox::{Answer, Answered, Inbox, Said};
use super::stream::message_id;
use super::tools::{Outcome, ToolCall};
use super::Builtins;
use crate::error::Result;
use crate::llm::chunks::{Piece, Reply, Usage};
use crate::llm::{LlmError, Model};

const AGENT: &str = kinds::ASSISTANT;
const SEARCH_DOCS: &str = "search_docs";
const ASK_USER: &str = "ask_user";
/// Passages one `search_docs` call returns.
const HITS: usize = 5;

const SYSTEM: &str = "You are Lantern's research assistant. Before answering a question \
about the documents, call search_docs and cite the sources you used by name. When you need \
something only the person knows, call ask_user. Be concise.";

/// The assistant as configured.
pub struct Assistant {
    pub model: Model,
    /// Tools that wait for a person's approval; `None`: all of them.
    approve: Option<HashSet<String>>,
    max_steps: u32,
}

impl Assistant {
    /// `approve`: tool names, or `all`.
    pub fn new(model: Model, approve: &[String], max_steps: u32) -> Self {
        let approve = if approve.iter().any(|t| t.trim() == "all") {
            None
        } else {
            Some(approve.iter().map(|t| t.trim().to_owned()).collect())
        };
        Self {
            model,
            approve,
            max_steps: max_steps.max(1),
        }
    }

    fn needs_approval(&self, tool: &str) -> bool {
        self.approve
            .as_ref()
            .is_none_or(|tools| tools.contains(tool))
    }
}

/// The tools offered to the model, in OpenAI's format.
fn tools() -> Vec<Value> {
    vec![
        json!({"type": "function", "function": {
            "name": SEARCH_DOCS,
            "description": "Search the documents Lantern indexes; returns the best passages with their sources.",
            "parameters": {"type": "object", "properties": {
                "query": {"type": "string", "description": "What to look for"}
            }, "required": ["query"]}
        }}),
        json!({"type": "function", "function": {
            "name": ASK_USER,
            "description": "Ask the person a question and wait for their answer.",
            "parameters": {"type": "object", "properties": {
                "question": {"type": "string", "description": "The question, as the person will read it"}
            }, "required": ["question"]}
        }}),
    ]
}

/// Start the workflow's task. Returns once the task follows the feed, so no message is missed.
pub async fn spawn(
    builtins: Arc<Builtins>,
    assistant: Arc<Assistant>,
    workflow_id: String,
) -> Result<()> {
    let hub = builtins.hub.clone();
    let (feed, _) = hub.feed(&workflow_id, 0).await?;
    let waiting = status(WorkflowStatus::WaitingInput, "ask the assistant something");
    hub.publish_bodies(&workflow_id, vec![waiting]).await?;
    let conversation = Conversation {
        messages: vec![json!({"role": "system", "content": SYSTEM})],
        started: false,
        calls: 0,
    };
    run_task(builtins, assistant, workflow_id, conversation, feed);
    Ok(())
}

/// After a restart: take up again each `assistant` workflow that was not finished, its
/// conversation rebuilt from its log. One that was in the middle of an answer has that answer
/// cut short: what it left open is closed (the text so far kept, tool calls failed, questions
/// withdrawn) and it waits for the person's next message, saying why. Returns how many were
/// taken up.
pub async fn resume_waiting(builtins: &Arc<Builtins>) -> Result<usize> {
    let Some(assistant) = builtins.assistant.clone() else {
        return Ok(0);
    };
    let hub = &builtins.hub;
    let mut resumed = 0;
    for info in hub.store().list_workflows(None).await? {
        if info.kind != AGENT || !resumable(info.status) {
            continue;
        }
        let events = log_of(builtins, &info.id).await?;
        let closes = Conversation::closes(&events);
        let mid_answer = info.status == WorkflowStatus::Running || !closes.is_empty();
        let events = if mid_answer {
            let mut bodies = closes;
            bodies.push(status(
                WorkflowStatus::WaitingInput,
                "the server restarted while the assistant was answering: that answer stops \
                 here; send a message to go on",
            ));
            hub.publish_bodies(&info.id, bodies).await?;
            log_of(builtins, &info.id).await?
        } else {
            events
        };
        let conversation = Conversation::from_log(&events);
        let (feed, _) = hub.feed(&info.id, events.len() as u64).await?;
        run_task(
            builtins.clone(),
            assistant.clone(),
            info.id,
            conversation,
            feed,
        );
        resumed += 1;
    }
    Ok(resumed)
}

/// Which statuses of an `assistant` workflow a restart takes up again.
pub fn resumable(status: WorkflowStatus) -> bool {
    matches!(
        status,
        WorkflowStatus::WaitingInput | WorkflowStatus::Running
    )
}

/// Workflow `id`'s whole log.
async fn log_of(builtins: &Builtins, id: &str) -> Result<Vec<EventBody>> {
    let store = builtins.hub.store();
    let mut events = Vec::new();
    loop {
        let page = store.read(id, events.len() as u64, 1000, 4 << 20).await?;
        if page.is_empty() {
            return Ok(events);
        }
        for stored in &page {
            events.push(stored.event()?.body);
        }
    }
}

fn run_task(
    builtins: Arc<Builtins>,
    assistant: Arc<Assistant>,
    workflow_id: String,
    conversation: Conversation,
    feed: crate::hub::Feed,
) {
    let span = tracing::info_span!("workflow", id = %workflow_id, kind = AGENT);
    let idle = builtins.idle;
    let Conversation {
        messages,
        started,
        calls,
    } = conversation;
    let turns = Turns {
        builtins,
        assistant,
        id: workflow_id,
        messages,
        started,
        calls,
    };
    let task = async move {
        if let Err(e) = turns.run(Inbox::new(feed), idle).await {
            // A conflict here means the workflow was cancelled under us: nothing to report.
            tracing::debug!(error = %e, "assistant workflow stopped");
        }
    };
    tokio::spawn(task.instrument(span));
}

/// What a conversation needs to go on: its messages in OpenAI's format, whether the assistant
/// has started, how many tool calls it made.
#[derive(Debug, PartialEq)]
pub struct Conversation {
    pub messages: Vec<Value>,
    pub started: bool,
    pub calls: u64,
}

impl Conversation {
    /// The conversation a workflow's log holds: the person's messages, the answers, the tool
    /// calls and their results, in order.
    pub fn from_log(events: &[EventBody]) -> Self {
        let mut messages = vec![json!({"role": "system", "content": SYSTEM})];
        let (mut started, mut calls) = (false, 0u64);
        for body in events {
            match body {
                EventBody::AgentStarted { agent, .. } if agent == AGENT => started = true,
                EventBody::UserInput { content, .. } => {
                    messages.push(json!({"role": "user", "content": content}));
                }
                EventBody::AgentResponse {
                    agent,
                    content: Some(content),
                    ..
                } if agent == AGENT => {
                    messages.push(json!({"role": "assistant", "content": content}));
                }
                EventBody::ToolExecuting {
                    agent,
                    tool,
                    call_id,
                    input,
                } if agent == AGENT => {
                    calls += 1;
                    let call = json!({"id": call_id, "type": "function",
                        "function": {"name": tool, "arguments": input.to_string()}});
                    messages
                        .push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
                }
                EventBody::ToolCompleted {
                    agent,
                    call_id,
                    output,
                    error,
                    ..
                } if agent == AGENT => {
                    let content = match (output, error) {
                        (Some(output), _) => output.to_string(),
                        (None, Some(error)) => format!("The tool failed: {error}."),
                        (None, None) => String::new(),
                    };
                    messages
                        .push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
                }
                _ => {}
            }
        }
        Self {
            messages,
            started,
            calls,
        }
    }

    /// What the assistant left open in a log (a restart cut it short): the closes of its
    /// streamed messages (the server fills in the text so far), its questions withdrawn
    /// (`cancelled`, by nobody), its tool calls failed.
    pub fn closes(events: &[EventBody]) -> Vec<EventBody> {
        use std::collections::BTreeMap;
        let why = "the server restarted";
        let mut messages = BTreeMap::new();
        let mut asked = Vec::new();
        let mut tools = BTreeMap::new();
        for body in events {
            match body {
                EventBody::TextDelta { message_id, .. } => {
                    messages.insert(message_id.clone(), false);
                }
                EventBody::ThinkingDelta { message_id, .. } => {
                    messages.insert(message_id.clone(), true);
                }
                EventBody::AgentResponse {
                    message_id: Some(id),
                    ..
                }
                | EventBody::AgentThinking {
                    message_id: Some(id),
                    ..
                } => {
                    messages.remove(id);
                }
                EventBody::Interrupt { interrupt_id, .. } => asked.push(interrupt_id.clone()),
                EventBody::InterruptResolved { interrupt_id, .. } => {
                    asked.retain(|id| id != interrupt_id);
                }
                EventBody::ToolExecuting { tool, call_id, .. } => {
                    tools.insert(call_id.clone(), tool.clone());
                }
                EventBody::ToolCompleted { call_id, .. } => {
                    tools.remove(call_id);
                }
                _ => {}
            }
        }
        let messages = messages.into_iter().map(|(id, thinking)| {
            let (agent, message_id) = (AGENT.to_owned(), Some(id));
            match thinking {
                true => EventBody::AgentThinking {
                    agent,
                    content: None,
                    message_id,
                },
                false => EventBody::AgentResponse {
                    agent,
                    content: None,
                    message_id,
                },
            }
        });
        let asked = asked
            .into_iter()
            .map(|interrupt_id| EventBody::InterruptResolved {
                interrupt_id,
                status: InterruptStatus::Cancelled,
                payload: None,
                user: None,
                client_msg_id: None,
            });
        let tools = tools
            .into_iter()
            .map(|(call_id, tool)| EventBody::ToolCompleted {
                agent: AGENT.into(),
                tool,
                call_id,
                ok: false,
                output: None,
                error: Some(why.into()),
                duration_ms: 0,
            });
        messages.chain(asked).chain(tools).collect()
    }
}

struct Turns {
    builtins: Arc<Builtins>,
    assistant: Arc<Assistant>,
    id: String,
    /// The conversation in OpenAI's format, sent whole with each request.
    messages: Vec<Value>,
    /// `agent_started` went out.
    started: bool,
    /// Tool calls made so far: Lantern's call ids are the model's, made unique with this.
    calls: u64,
}

/// What came of a step or a turn.
enum Step {
    /// The model answered without calling a tool: the turn is over.
    Answered(Option<Usage>),
    /// It called tools, which ran: ask again.
    Again(Option<Usage>),
    /// The workflow ended (cancelled, failed, idle) under it.
    Over,
}

impl Turns {
    async fn publish(&self, bodies: Vec<EventBody>) -> Result<()> {
        self.builtins.hub.publish_bodies(&self.id, bodies).await?;
        Ok(())
    }

    async fn run(mut self, mut inbox: Inbox, idle: Option<Duration>) -> Result<()> {
        loop {
            let message = match inbox.next_message_within(idle).await? {
                Said::Message(message) if Said::is_finish(&message) => {
                    return self
                        .publish(vec![
                            EventBody::AgentCompleted {
                                agent: AGENT.into(),
                                ok: true,
                                summary: None,
                            },
                            status(WorkflowStatus::Completed, "finished by the user"),
                        ])
                        .await;
                }
                Said::Message(message) => message,
                Said::Nothing(waited) => return self.publish(vec![Said::idle_end(waited)]).await,
                Said::Ended => return Ok(()),
            };
            if !std::mem::replace(&mut self.started, true) {
                let task = format!("Answer with {}", self.assistant.model.name);
                self.publish(vec![EventBody::AgentStarted {
                    agent: AGENT.into(),
                    task: Some(task),
                }])
                .await?;
            }
            self.messages
                .push(json!({"role": "user", "content": message}));
            let mut used = Usage::default();
            let max_steps = self.assistant.max_steps;
            for step in 1..=max_steps {
                // The last step offers no tools: the turn ends with an answer.
                let offer = step < max_steps;
                match self.step(&mut inbox, idle, offer).await? {
                    Step::Answered(usage) => {
                        add(&mut used, usage);
                        break;
                    }
                    Step::Again(usage) => add(&mut used, usage),
                    Step::Over => return Ok(()),
                }
            }
            let mut waiting = String::from("waiting for your next message");
            if used != Usage::default() {
                waiting.push_str(&format!(
                    " · {} tokens in, {} out",
                    used.prompt_tokens, used.completion_tokens
                ));
            }
            self.publish(vec![status(WorkflowStatus::WaitingInput, &waiting)])
                .await?;
        }
    }

    /// One model request and the tool calls it made.
    async fn step(
        &mut self,
        inbox: &mut Inbox,
        idle: Option<Duration>,
        offer: bool,
    ) -> Result<Step> {
        self.publish(vec![status(
            WorkflowStatus::Running,
            "the assistant is answering",
        )])
        .await?;
        let reply = tokio::select! {
            reply = self.stream_reply(offer) => reply?,
            // Cancelled (or failed by the server): dropping the request closes it.
            ended = inbox.ended() => {
                ended?;
                return Ok(Step::Over);
            }
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                tracing::warn!(%error, "the model failed");
                let detail = format!("assistant: {error}");
                self.publish(vec![status(WorkflowStatus::Failed, &detail)])
                    .await?;
                return Ok(Step::Over);
            }
        };
        let usage = reply.usage;
        if reply.tool_calls.is_empty() {
            self.messages
                .push(json!({"role": "assistant", "content": reply.text}));
            return Ok(Step::Answered(usage));
        }
        let calls: Vec<Value> = reply
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        let content = (!reply.text.is_empty()).then_some(reply.text.clone());
        self.messages
            .push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
        for call in reply.tool_calls {
            let Some(result) = self
                .run_tool(inbox, idle, &call.id, &call.name, call.input())
                .await?
            else {
                return Ok(Step::Over);
            };
            self.messages
                .push(json!({"role": "tool", "tool_call_id": call.id, "content": result}));
        }
        Ok(Step::Again(usage))
    }

    /// Ask the model and stream its answer into the log; the whole reply, or why it failed.
    async fn stream_reply(&self, offer: bool) -> Result<std::result::Result<Reply, LlmError>> {
        let tools = if offer { tools() } else { Vec::new() };
        let mut completion = match self.assistant.model.complete(&self.messages, &tools).await {
            Ok(completion) => completion,
            Err(error) => return Ok(Err(error)),
        };
        // The message ids of this reply's text and reasoning, made when they first show.
        let (mut text, mut thought) = (None::<String>, None::<String>);
        let outcome = loop {
            let pieces = match completion.next().await {
                Ok(Some(pieces)) => pieces,
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            };
            let bodies = pieces
                .into_iter()
                .map(|piece| match piece {
                    Piece::Text(delta) => EventBody::TextDelta {
                        agent: AGENT.into(),
                        message_id: text.get_or_insert_with(message_id).clone(),
                        delta,
                    },
                    Piece::Reasoning(delta) => EventBody::ThinkingDelta {
                        agent: AGENT.into(),
                        message_id: thought.get_or_insert_with(message_id).clone(),
                        delta,
                    },
                })
                .collect();
            self.publish(bodies).await?;
        };
        // Close what was streamed (the hub fills in the text); on an error, the failed status
        // that follows closes them with the text so far.
        if outcome.is_ok() {
            let mut closes = Vec::new();
            if let Some(id) = thought {
                closes.push(EventBody::AgentThinking {
                    agent: AGENT.into(),
                    content: None,
                    message_id: Some(id),
                });
            }
            if let Some(id) = text {
                closes.push(EventBody::AgentResponse {
                    agent: AGENT.into(),
                    content: None,
                    message_id: Some(id),
                });
            }
            if !closes.is_empty() {
                self.publish(closes).await?;
            }
        }
        Ok(outcome.map(|()| completion.finish()))
    }

    /// Run one tool call (asking first when it needs approval); what to tell the model, or
    /// `None` when the workflow ended meanwhile.
    async fn run_tool(
        &mut self,
        inbox: &mut Inbox,
        idle: Option<Duration>,
        model_call_id: &str,
        tool: &str,
        input: Value,
    ) -> Result<Option<String>> {
        self.calls += 1;
        // The model's ids need only be unique within one reply; Lantern's, in the workflow.
        let call_id = format!("{model_call_id}-{}", self.calls);
        let builtins = self.builtins.clone();
        let call = ToolCall {
            hub: &builtins.hub,
            workflow_id: &self.id,
            agent: AGENT,
            tool,
            call_id: call_id.clone(),
            timeout: builtins.tool_timeout,
        };
        call.start(input.clone()).await?;
        let started = Instant::now();
        if self.assistant.needs_approval(tool) {
            let question = format!("Run {tool} with {input}?");
            let schema = json!({"type": "object", "properties": {"approved": {"type": "boolean"}}, "required": ["approved"]});
            let asked = self
                .ask(
                    inbox,
                    idle,
                    reasons::TOOL_APPROVAL,
                    &question,
                    &call_id,
                    schema,
                )
                .await?;
            let Some(answer) = asked else {
                return Ok(None);
            };
            let approved = answer.status == InterruptStatus::Resolved
                && answer.payload.as_ref().and_then(|p| p.get("approved")) == Some(&json!(true));
            if !approved {
                let who = answer.user.unwrap_or_else(|| "nobody".into());
                let error = format!("denied by {who}");
                self.close_call(tool, &call_id, Err(error.clone()), started)
                    .await?;
                return Ok(Some(format!(
                    "The person did not allow this tool call ({error})."
                )));
            }
        }
        match tool {
            SEARCH_DOCS => {
                let query = input
                    .get("query")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let corpus = builtins.corpus.clone();
                let searched = query.clone();
                let work = move || {
                    let hits = corpus.search(&searched, HITS).map_err(|e| e.to_string())?;
                    let hits: Vec<Value> = hits
                        .iter()
                        .map(|h| json!({"title": h.title, "source": h.source, "snippet": h.snippet, "score": h.score}))
                        .collect();
                    Ok(Value::Array(hits))
                };
                match call.run(inbox, work).await? {
                    Outcome::Done(hits) => {
                        let results: Vec<SearchHit> =
                            serde_json::from_value(hits.clone()).unwrap_or_default();
                        self.publish(vec![EventBody::SearchResults { query, results }])
                            .await?;
                        Ok(Some(hits.to_string()))
                    }
                    Outcome::Failed(error) => Ok(Some(format!("The search failed: {error}"))),
                    Outcome::WorkflowEnded => Ok(None),
                }
            }
            ASK_USER => {
                let question = input
                    .get("question")
                    .and_then(Value::as_str)
                    .unwrap_or("The assistant has a question.")
                    .to_owned();
                let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]});
                let asked = self
                    .ask(inbox, idle, reasons::INPUT, &question, &call_id, schema)
                    .await?;
                let Some(answer) = asked else {
                    return Ok(None);
                };
                let said = answer
                    .payload
                    .as_ref()
                    .and_then(|p| p.get("answer"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let result = match (answer.status, said) {
                    (InterruptStatus::Resolved, Some(said)) => Ok(json!({ "answer": said })),
                    _ => Err("the person did not answer".to_owned()),
                };
                let told = match &result {
                    Ok(said) => said.to_string(),
                    Err(error) => format!("No answer: {error}."),
                };
                self.close_call(tool, &call_id, result, started).await?;
                Ok(Some(told))
            }
            other => {
                let error = format!("there is no tool named {other:?}");
                self.close_call(tool, &call_id, Err(error.clone()), started)
                    .await?;
                Ok(Some(format!("Error: {error}.")))
            }
        }
    }

    /// An interrupt about call `call_id`, and its answer; `None` when the workflow ended (or
    /// went idle) while it waited.
    async fn ask(
        &self,
        inbox: &mut Inbox,
        idle: Option<Duration>,
        reason: &str,
        message: &str,
        call_id: &str,
        schema: Value,
    ) -> Result<Option<Answer>> {
        let interrupt_id = format!("ask-{call_id}");
        self.publish(vec![
            EventBody::Interrupt {
                agent: AGENT.into(),
                interrupt_id: interrupt_id.clone(),
                reason: reason.into(),
                message: message.into(),
                call_id: Some(call_id.into()),
                response_schema: Some(schema),
                expires_at: None,
            },
            status(WorkflowStatus::WaitingInput, "waiting for your answer"),
        ])
        .await?;
        match inbox.answer_within(&interrupt_id, idle).await? {
            Answered::Answer(answer) => {
                self.publish(vec![status(
                    WorkflowStatus::Running,
                    "the assistant is answering",
                )])
                .await?;
                Ok(Some(answer))
            }
            Answered::Ended => Ok(None),
            Answered::Nothing(waited) => {
                self.publish(vec![Said::idle_end(waited)]).await?;
                Ok(None)
            }
        }
    }

    async fn close_call(
        &self,
        tool: &str,
        call_id: &str,
        result: std::result::Result<Value, String>,
        started: Instant,
    ) -> Result<()> {
        let (ok, output, error) = match result {
            Ok(output) => (true, Some(output), None),
            Err(error) => (false, None, Some(error)),
        };
        self.publish(vec![EventBody::ToolCompleted {
            agent: AGENT.into(),
            tool: tool.into(),
            call_id: call_id.into(),
            ok,
            output,
            error,
            duration_ms: started.elapsed().as_millis() as u64,
        }])
        .await
    }
}

fn add(total: &mut Usage, usage: Option<Usage>) {
    if let Some(usage) = usage {
        total.prompt_tokens += usage.prompt_tokens;
        total.completion_tokens += usage.completion_tokens;
    }
}

fn status(status: WorkflowStatus, detail: &str) -> EventBody {
    EventBody::WorkflowStatus {
        status,
        detail: Some(detail.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> EventBody {
        serde_json::from_value(value).expect("an event body")
    }

    #[test]
    fn a_log_gives_back_the_conversation_and_what_a_restart_left_open() {
        let log = [
            json!({"type": "user_input", "content": "hi", "user": "ann", "client_msg_id": "1"}),
            json!({"type": "agent_started", "agent": "assistant"}),
            json!({"type": "text_delta", "agent": "assistant", "message_id": "m", "delta": "x"}),
            json!({"type": "tool_executing", "agent": "assistant", "tool": "search_docs",
                   "call_id": "c-1", "input": {"query": "q"}}),
            json!({"type": "tool_completed", "agent": "assistant", "tool": "search_docs",
                   "call_id": "c-1", "ok": true, "output": [1], "duration_ms": 1}),
            json!({"type": "agent_response", "agent": "assistant", "message_id": "m", "content": "Hello"}),
        ];
        let events: Vec<EventBody> = log.into_iter().map(body).collect();
        let conversation = Conversation::from_log(&events);
        assert!(Conversation::closes(&events).is_empty());
        assert!(conversation.started);
        assert_eq!(conversation.calls, 1);
        let roles: Vec<&str> = conversation
            .messages
            .iter()
            .map(|m| m["role"].as_str().expect("role"))
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "assistant"]);
        assert_eq!(
            conversation.messages[2]["tool_calls"][0]["function"]["arguments"],
            "{\"query\":\"q\"}"
        );
        assert_eq!(conversation.messages[3]["content"], "[1]");
        assert_eq!(conversation.messages[4]["content"], "Hello");

        let cut = Conversation::closes(&events[..4]);
        let kinds: Vec<&str> = cut.iter().map(|b| b.kind()).collect();
        assert_eq!(kinds, ["agent_response", "tool_completed"]);
    }
}
