//! The invariants of PROTOCOL.md §1, checked before anything is appended, whoever produced it:
//! tools paired by `call_id`, agents paired, streamed messages (one agent and one kind each,
//! nothing after their close, ids never reused), interrupts (unique ids, answered at most once,
//! not after `expires_at`), nothing after a terminal `workflow_status` — which first closes
//! whatever is open. Pure logic: the hub keeps one [`Lifecycle`] per live workflow.
//!
//! Streamed text is the hottest path, so nothing here is proportional to the workflow's size per
//! event: a delta is one map lookup and one `push_str`. [`Lifecycle::apply`] changes the state in
//! place and returns an [`Undo`], so a batch that is refused part-way (or whose append fails) is
//! taken back without ever cloning the state.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use app::protocol::{EventBody, InterruptStatus, WorkflowStatus};
use chrono::{DateTime, Utc};

/// Why an event may not be appended next; the hub maps these to protocol error codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It would break an invariant of §1 (`conflict`).
    Conflict(String),
    /// It is malformed whatever the state (`bad_request`).
    BadRequest(String),
}

/// Text or reasoning: a streamed message is one or the other for its whole life. The one place
/// that knows which event types stream and close each (built-ins stream through it too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Thinking,
}

impl MessageKind {
    fn delta_word(self) -> &'static str {
        match self {
            Self::Text => "text_delta",
            Self::Thinking => "thinking_delta",
        }
    }

    /// A piece of a message of this kind.
    pub fn delta(self, agent: String, message_id: String, delta: String) -> EventBody {
        match self {
            Self::Text => EventBody::TextDelta {
                agent,
                message_id,
                delta,
            },
            Self::Thinking => EventBody::ThinkingDelta {
                agent,
                message_id,
                delta,
            },
        }
    }

    /// The close of a message of this kind (or a whole one): `content` `None` is filled in.
    pub fn close(
        self,
        agent: String,
        content: Option<String>,
        message_id: Option<String>,
    ) -> EventBody {
        match self {
            Self::Text => EventBody::AgentResponse {
                agent,
                content,
                message_id,
            },
            Self::Thinking => EventBody::AgentThinking {
                agent,
                content,
                message_id,
            },
        }
    }
}

/// A streamed message between its first delta and its close.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenMessage {
    agent: String,
    kind: MessageKind,
    /// The deltas joined so far: what the close is filled with when it omits `content`, and what
    /// a terminal status closes it with.
    text: String,
    /// Opening order, so a terminal status closes messages in the order they began.
    opened: u64,
}

/// An interrupt nobody has answered yet.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenInterrupt {
    expires_at: Option<DateTime<Utc>>,
    opened: u64,
}

/// What is open in a workflow right now, and which ids are spent.
#[derive(Clone, Debug, Default)]
pub struct Lifecycle {
    /// Open tool calls: `call_id` → (agent, tool). Ordered, so auto-closing is deterministic.
    open_tools: BTreeMap<String, (String, String)>,
    open_agents: BTreeSet<String>,
    open_messages: HashMap<String, OpenMessage>,
    /// Ids of closed messages: a closed id is never reused.
    closed_messages: HashSet<String>,
    open_interrupts: HashMap<String, OpenInterrupt>,
    /// Every interrupt id ever opened (interrupt ids are workflow-unique).
    interrupt_ids: HashSet<String>,
    /// Counts openings of messages and interrupts, for their `opened` order.
    openings: u64,
    /// Set once a terminal status was appended; then every append is refused.
    finished: Option<WorkflowStatus>,
}

/// How to take back one [`Lifecycle::apply`].
#[derive(Debug)]
pub enum Undo {
    Nothing,
    ToolOpened(String),
    ToolClosed(String, (String, String)),
    AgentOpened(String),
    AgentClosed(String),
    MessageOpened(String),
    /// The message's text was this long before.
    MessageGrew(String, usize),
    /// Closed: it was open (`Some`) or a whole message given an id (`None`).
    MessageClosed(String, Option<OpenMessage>),
    InterruptOpened(String),
    InterruptClosed(String, OpenInterrupt),
    Finished,
}

impl Lifecycle {
    /// Rebuild from a log, e.g. after a restart.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a EventBody>) -> Self {
        let mut lifecycle = Self::default();
        for body in events {
            lifecycle.apply(body);
        }
        lifecycle
    }

    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    /// Is `body` allowed next, at time `now`? `Err` says why not.
    pub fn check(&self, body: &EventBody, now: DateTime<Utc>) -> Result<(), Refusal> {
        use Refusal::{BadRequest, Conflict};
        if let Some(status) = self.finished {
            return Err(Conflict(format!(
                "the workflow is {} (finished); nothing can be appended",
                status.as_str()
            )));
        }
        match body {
            EventBody::ToolExecuting { call_id, .. } if self.open_tools.contains_key(call_id) => {
                Err(Conflict(format!(
                    "tool call {call_id} is already executing"
                )))
            }
            EventBody::ToolUpdate { call_id, .. } | EventBody::ToolCompleted { call_id, .. }
                if !self.open_tools.contains_key(call_id) =>
            {
                Err(Conflict(format!("no tool call {call_id} is executing")))
            }
            EventBody::AgentStarted { agent, .. } if self.open_agents.contains(agent) => {
                Err(Conflict(format!("agent {agent} is already running")))
            }
            EventBody::AgentCompleted { agent, .. } if !self.open_agents.contains(agent) => {
                Err(Conflict(format!("agent {agent} is not running")))
            }
            EventBody::TextDelta {
                agent,
                message_id,
                delta,
            } => self.check_delta(agent, message_id, delta, MessageKind::Text),
            EventBody::ThinkingDelta {
                agent,
                message_id,
                delta,
            } => self.check_delta(agent, message_id, delta, MessageKind::Thinking),
            EventBody::AgentResponse {
                agent,
                content,
                message_id,
            } => self.check_close(agent, content, message_id, MessageKind::Text),
            EventBody::AgentThinking {
                agent,
                content,
                message_id,
            } => self.check_close(agent, content, message_id, MessageKind::Thinking),
            EventBody::Interrupt {
                interrupt_id,
                expires_at,
                ..
            } => {
                if interrupt_id.is_empty() {
                    return Err(BadRequest("interrupt_id must not be empty".into()));
                }
                if let Some(at) = expires_at {
                    parse_time(at).map_err(|_| {
                        BadRequest(format!("expires_at {at:?} is not an RFC 3339 time"))
                    })?;
                }
                if self.interrupt_ids.contains(interrupt_id) {
                    return Err(Conflict(format!(
                        "interrupt {interrupt_id} exists already; interrupt ids are not reused"
                    )));
                }
                Ok(())
            }
            EventBody::InterruptResolved {
                interrupt_id, user, ..
            } => {
                let Some(open) = self.open_interrupts.get(interrupt_id) else {
                    return Err(Conflict(if self.interrupt_ids.contains(interrupt_id) {
                        format!("interrupt {interrupt_id} was answered already")
                    } else {
                        format!("no interrupt {interrupt_id} is open")
                    }));
                };
                // A person's answer must come in time; its agent may withdraw it whenever.
                match open.expires_at {
                    Some(at) if user.is_some() && now > at => Err(Conflict(format!(
                        "interrupt {interrupt_id} expired at {}",
                        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    ))),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn check_delta(
        &self,
        agent: &str,
        message_id: &str,
        delta: &str,
        kind: MessageKind,
    ) -> Result<(), Refusal> {
        if delta.is_empty() {
            return Err(Refusal::BadRequest("a delta must not be empty".into()));
        }
        if message_id.is_empty() {
            return Err(Refusal::BadRequest("message_id must not be empty".into()));
        }
        if self.closed_messages.contains(message_id) {
            return Err(Refusal::Conflict(format!(
                "message {message_id} is closed; nothing can be added to it"
            )));
        }
        match self.open_messages.get(message_id) {
            Some(open) => open.same_stream(message_id, agent, kind),
            None => Ok(()),
        }
    }

    fn check_close(
        &self,
        agent: &str,
        content: &Option<String>,
        message_id: &Option<String>,
        kind: MessageKind,
    ) -> Result<(), Refusal> {
        let Some(message_id) = message_id else {
            return match content {
                Some(_) => Ok(()),
                None => Err(Refusal::BadRequest(
                    "content is required (it may be left out only to close a streamed message)"
                        .into(),
                )),
            };
        };
        if self.closed_messages.contains(message_id) {
            return Err(Refusal::Conflict(format!(
                "message {message_id} is closed already; message ids are not reused"
            )));
        }
        match self.open_messages.get(message_id) {
            Some(open) => open.same_stream(message_id, agent, kind),
            None if content.is_none() => Err(Refusal::BadRequest(format!(
                "content is required: nothing was streamed as message {message_id}"
            ))),
            None => Ok(()),
        }
    }

    /// Admit `body` as the next event at time `now`: `Err` says why it may not be appended;
    /// `Ok` holds the events to append before it (for a terminal `workflow_status`, the closing
    /// of everything still open, so the invariants hold) and the event itself as it is to be
    /// logged (a streamed message's close with its `content` filled in when it was left out).
    /// Apply the returned events, then the event.
    pub fn admit(
        &self,
        body: EventBody,
        now: DateTime<Utc>,
    ) -> Result<(Vec<EventBody>, EventBody), Refusal> {
        self.check(&body, now)?;
        let body = match body {
            EventBody::WorkflowStatus { status, .. } if status.is_terminal() => {
                let closing = self.closing_events(&format!("workflow {}", status.as_str()));
                return Ok((closing, body));
            }
            EventBody::AgentResponse {
                agent,
                content: None,
                message_id: Some(id),
            } => EventBody::AgentResponse {
                content: Some(self.text_of(&id)),
                agent,
                message_id: Some(id),
            },
            EventBody::AgentThinking {
                agent,
                content: None,
                message_id: Some(id),
            } => EventBody::AgentThinking {
                content: Some(self.text_of(&id)),
                agent,
                message_id: Some(id),
            },
            body => body,
        };
        Ok((Vec::new(), body))
    }

    fn text_of(&self, message_id: &str) -> String {
        self.open_messages
            .get(message_id)
            .map(|open| open.text.clone())
            .unwrap_or_default()
    }

    /// Record `body` as appended (it passed [`check`](Self::check)); the [`Undo`] takes it back.
    pub fn apply(&mut self, body: &EventBody) -> Undo {
        match body {
            EventBody::ToolExecuting {
                agent,
                tool,
                call_id,
                ..
            } => {
                self.open_tools
                    .insert(call_id.clone(), (agent.clone(), tool.clone()));
                Undo::ToolOpened(call_id.clone())
            }
            EventBody::ToolCompleted { call_id, .. } => match self.open_tools.remove(call_id) {
                Some(open) => Undo::ToolClosed(call_id.clone(), open),
                None => Undo::Nothing,
            },
            EventBody::AgentStarted { agent, .. } => {
                self.open_agents.insert(agent.clone());
                Undo::AgentOpened(agent.clone())
            }
            EventBody::AgentCompleted { agent, .. } => {
                if self.open_agents.remove(agent) {
                    Undo::AgentClosed(agent.clone())
                } else {
                    Undo::Nothing
                }
            }
            EventBody::TextDelta {
                agent,
                message_id,
                delta,
            } => self.grow(agent, message_id, delta, MessageKind::Text),
            EventBody::ThinkingDelta {
                agent,
                message_id,
                delta,
            } => self.grow(agent, message_id, delta, MessageKind::Thinking),
            EventBody::AgentResponse {
                message_id: Some(id),
                ..
            }
            | EventBody::AgentThinking {
                message_id: Some(id),
                ..
            } => {
                let open = self.open_messages.remove(id);
                self.closed_messages.insert(id.clone());
                Undo::MessageClosed(id.clone(), open)
            }
            EventBody::Interrupt {
                interrupt_id,
                expires_at,
                ..
            } => {
                self.openings += 1;
                let open = OpenInterrupt {
                    expires_at: expires_at.as_deref().and_then(|at| parse_time(at).ok()),
                    opened: self.openings,
                };
                self.open_interrupts.insert(interrupt_id.clone(), open);
                self.interrupt_ids.insert(interrupt_id.clone());
                Undo::InterruptOpened(interrupt_id.clone())
            }
            EventBody::InterruptResolved { interrupt_id, .. } => {
                match self.open_interrupts.remove(interrupt_id) {
                    Some(open) => Undo::InterruptClosed(interrupt_id.clone(), open),
                    None => Undo::Nothing,
                }
            }
            EventBody::WorkflowStatus { status, .. } if status.is_terminal() => {
                self.finished = Some(*status);
                Undo::Finished
            }
            _ => Undo::Nothing,
        }
    }

    fn grow(&mut self, agent: &str, message_id: &str, delta: &str, kind: MessageKind) -> Undo {
        if let Some(open) = self.open_messages.get_mut(message_id) {
            let before = open.text.len();
            open.text.push_str(delta);
            return Undo::MessageGrew(message_id.to_owned(), before);
        }
        self.openings += 1;
        let open = OpenMessage {
            agent: agent.to_owned(),
            kind,
            text: delta.to_owned(),
            opened: self.openings,
        };
        self.open_messages.insert(message_id.to_owned(), open);
        Undo::MessageOpened(message_id.to_owned())
    }

    /// Take back one [`apply`](Self::apply); undos must be taken in reverse order.
    pub fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Nothing => {}
            Undo::ToolOpened(call_id) => {
                self.open_tools.remove(&call_id);
            }
            Undo::ToolClosed(call_id, open) => {
                self.open_tools.insert(call_id, open);
            }
            Undo::AgentOpened(agent) => {
                self.open_agents.remove(&agent);
            }
            Undo::AgentClosed(agent) => {
                self.open_agents.insert(agent);
            }
            Undo::MessageOpened(id) => {
                self.open_messages.remove(&id);
            }
            Undo::MessageGrew(id, len) => {
                if let Some(open) = self.open_messages.get_mut(&id) {
                    open.text.truncate(len);
                }
            }
            Undo::MessageClosed(id, open) => {
                self.closed_messages.remove(&id);
                if let Some(open) = open {
                    self.open_messages.insert(id, open);
                }
            }
            Undo::InterruptOpened(id) => {
                self.open_interrupts.remove(&id);
                self.interrupt_ids.remove(&id);
            }
            Undo::InterruptClosed(id, open) => {
                self.open_interrupts.insert(id, open);
            }
            Undo::Finished => self.finished = None,
        }
    }

    /// The events that close whatever is open, in the order of §1: streamed messages (with the
    /// text so far), interrupts (`cancelled`, by nobody), tools (`ok: false`), then agents.
    /// Appended before a terminal status.
    pub fn closing_events(&self, why: &str) -> Vec<EventBody> {
        let mut messages: Vec<(&String, &OpenMessage)> = self.open_messages.iter().collect();
        messages.sort_by_key(|(_, open)| open.opened);
        let messages = messages.into_iter().map(|(id, open)| {
            open.kind.close(
                open.agent.clone(),
                Some(open.text.clone()),
                Some(id.clone()),
            )
        });
        let mut interrupts: Vec<(&String, &OpenInterrupt)> = self.open_interrupts.iter().collect();
        interrupts.sort_by_key(|(_, open)| open.opened);
        let interrupts = interrupts
            .into_iter()
            .map(|(id, _)| EventBody::InterruptResolved {
                interrupt_id: id.clone(),
                status: InterruptStatus::Cancelled,
                payload: None,
                user: None,
                client_msg_id: None,
            });
        let tools =
            self.open_tools
                .iter()
                .map(|(call_id, (agent, tool))| EventBody::ToolCompleted {
                    agent: agent.clone(),
                    tool: tool.clone(),
                    call_id: call_id.clone(),
                    ok: false,
                    output: None,
                    error: Some(why.to_owned()),
                    duration_ms: 0,
                });
        let agents = self
            .open_agents
            .iter()
            .map(|agent| EventBody::AgentCompleted {
                agent: agent.clone(),
                ok: false,
                summary: Some(why.to_owned()),
            });
        messages
            .chain(interrupts)
            .chain(tools)
            .chain(agents)
            .collect()
    }
}

impl OpenMessage {
    /// A delta or close for message `id` must come from its agent and be of its kind.
    fn same_stream(&self, id: &str, agent: &str, kind: MessageKind) -> Result<(), Refusal> {
        if self.agent != agent {
            return Err(Refusal::Conflict(format!(
                "message {id} belongs to agent {}",
                self.agent
            )));
        }
        if self.kind != kind {
            return Err(Refusal::Conflict(format!(
                "message {id} is streamed with {}",
                self.kind.delta_word()
            )));
        }
        Ok(())
    }
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn exec(call: &str) -> EventBody {
        EventBody::ToolExecuting {
            agent: "a".into(),
            tool: "t".into(),
            call_id: call.into(),
            input: json!({}),
        }
    }

    fn done(call: &str) -> EventBody {
        EventBody::ToolCompleted {
            agent: "a".into(),
            tool: "t".into(),
            call_id: call.into(),
            ok: true,
            output: None,
            error: None,
            duration_ms: 1,
        }
    }

    fn status(s: WorkflowStatus) -> EventBody {
        EventBody::WorkflowStatus {
            status: s,
            detail: None,
        }
    }

    fn start(agent: &str) -> EventBody {
        EventBody::AgentStarted {
            agent: agent.into(),
            task: None,
        }
    }

    fn delta(agent: &str, id: &str, text: &str) -> EventBody {
        EventBody::TextDelta {
            agent: agent.into(),
            message_id: id.into(),
            delta: text.into(),
        }
    }

    fn thinking_delta(id: &str, text: &str) -> EventBody {
        EventBody::ThinkingDelta {
            agent: "a".into(),
            message_id: id.into(),
            delta: text.into(),
        }
    }

    fn close(agent: &str, id: &str, content: Option<&str>) -> EventBody {
        EventBody::AgentResponse {
            agent: agent.into(),
            content: content.map(str::to_owned),
            message_id: Some(id.into()),
        }
    }

    fn ask(id: &str, expires_at: Option<&str>) -> EventBody {
        EventBody::Interrupt {
            agent: "a".into(),
            interrupt_id: id.into(),
            reason: "input".into(),
            message: "?".into(),
            call_id: None,
            response_schema: None,
            expires_at: expires_at.map(str::to_owned),
        }
    }

    fn answer(id: &str, user: Option<&str>) -> EventBody {
        EventBody::InterruptResolved {
            interrupt_id: id.into(),
            status: InterruptStatus::Resolved,
            payload: None,
            user: user.map(str::to_owned),
            client_msg_id: None,
        }
    }

    /// Admit and apply `body`; returns it as logged.
    fn accept(l: &mut Lifecycle, body: EventBody) -> EventBody {
        let (before, body) = l.admit(body, now()).expect("allowed");
        for event in &before {
            l.apply(event);
        }
        l.apply(&body);
        body
    }

    fn conflict(l: &Lifecycle, body: EventBody) -> String {
        match l.check(&body, now()) {
            Err(Refusal::Conflict(why)) => why,
            other => panic!("{body:?}: expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn tools_must_be_paired_by_call_id() {
        let mut l = Lifecycle::default();
        conflict(&l, done("c1"));
        accept(&mut l, exec("c1"));
        conflict(&l, exec("c1"));
        accept(&mut l, done("c1"));
        conflict(&l, done("c1"));
    }

    #[test]
    fn agents_must_be_paired() {
        let mut l = Lifecycle::default();
        let stop = EventBody::AgentCompleted {
            agent: "a".into(),
            ok: true,
            summary: None,
        };
        conflict(&l, stop.clone());
        accept(&mut l, start("a"));
        conflict(&l, start("a"));
        accept(&mut l, stop);
    }

    #[test]
    fn nothing_after_a_terminal_status() {
        let mut l = Lifecycle::default();
        accept(&mut l, status(WorkflowStatus::Running));
        accept(&mut l, status(WorkflowStatus::Completed));
        assert!(l.is_finished());
        conflict(&l, status(WorkflowStatus::Running));
        conflict(
            &l,
            EventBody::FinalReport {
                content: "x".into(),
            },
        );
    }

    #[test]
    fn a_close_without_content_is_filled_with_the_deltas_joined_in_order() {
        let mut l = Lifecycle::default();
        for piece in ["Hel", "lo, ", "world"] {
            accept(&mut l, delta("a", "m1", piece));
        }
        let logged = accept(&mut l, close("a", "m1", None));
        assert_eq!(logged, close("a", "m1", Some("Hello, world")));
        // Given content is the final word.
        accept(&mut l, delta("a", "m2", "draft"));
        let logged = accept(&mut l, close("a", "m2", Some("final")));
        assert_eq!(logged, close("a", "m2", Some("final")));
    }

    #[test]
    fn reasoning_streams_the_same_way_and_is_its_own_kind() {
        let mut l = Lifecycle::default();
        accept(&mut l, thinking_delta("r1", "so "));
        accept(&mut l, thinking_delta("r1", "then"));
        conflict(&l, delta("a", "r1", "x"));
        conflict(&l, close("a", "r1", None));
        let logged = accept(
            &mut l,
            EventBody::AgentThinking {
                agent: "a".into(),
                content: None,
                message_id: Some("r1".into()),
            },
        );
        assert!(
            matches!(logged, EventBody::AgentThinking { content: Some(c), .. } if c == "so then")
        );
    }

    #[test]
    fn a_message_belongs_to_one_agent_and_is_closed_for_good() {
        let mut l = Lifecycle::default();
        accept(&mut l, delta("a", "m1", "x"));
        let why = conflict(&l, delta("b", "m1", "y"));
        assert!(why.contains("belongs to agent a"), "{why}");
        conflict(&l, close("b", "m1", None));
        accept(&mut l, close("a", "m1", None));
        conflict(&l, delta("a", "m1", "more"));
        conflict(&l, close("a", "m1", Some("again")));
        // A whole message given an id spends that id too.
        accept(&mut l, close("a", "m2", Some("whole")));
        conflict(&l, delta("a", "m2", "x"));
    }

    #[test]
    fn malformed_messages_are_bad_requests() {
        let l = Lifecycle::default();
        let bad = |body: EventBody| {
            assert!(
                matches!(l.check(&body, now()), Err(Refusal::BadRequest(_))),
                "{body:?}"
            )
        };
        bad(delta("a", "m1", ""));
        bad(close("a", "never-streamed", None));
        bad(EventBody::AgentResponse {
            agent: "a".into(),
            content: None,
            message_id: None,
        });
        bad(ask("i1", Some("next tuesday")));
    }

    #[test]
    fn an_interrupt_is_answered_at_most_once_and_its_id_never_reused() {
        let mut l = Lifecycle::default();
        conflict(&l, answer("i1", Some("u")));
        accept(&mut l, ask("i1", None));
        conflict(&l, ask("i1", None));
        accept(&mut l, answer("i1", Some("u")));
        let why = conflict(&l, answer("i1", Some("v")));
        assert!(why.contains("answered already"), "{why}");
        conflict(&l, ask("i1", None));
    }

    #[test]
    fn a_late_answer_is_refused_but_the_agent_may_still_withdraw() {
        let mut l = Lifecycle::default();
        accept(&mut l, ask("i1", Some("2020-01-01T00:00:00.000Z")));
        let why = conflict(&l, answer("i1", Some("u")));
        assert!(why.contains("expired"), "{why}");
        let withdrawn = EventBody::InterruptResolved {
            interrupt_id: "i1".into(),
            status: InterruptStatus::Cancelled,
            payload: None,
            user: None,
            client_msg_id: None,
        };
        accept(&mut l, withdrawn);
        accept(&mut l, ask("i2", Some("2999-01-01T00:00:00Z")));
        accept(&mut l, answer("i2", Some("u")));
    }

    #[test]
    fn a_terminal_status_closes_messages_then_interrupts_then_tools_then_agents() {
        let mut l = Lifecycle::default();
        accept(&mut l, start("a"));
        accept(&mut l, exec("c2"));
        accept(&mut l, exec("c1"));
        accept(&mut l, delta("a", "m2", "second "));
        accept(&mut l, thinking_delta("r1", "hm"));
        accept(&mut l, delta("a", "m2", "half"));
        accept(&mut l, ask("i1", None));
        let (before, _) = l
            .admit(status(WorkflowStatus::Cancelled), now())
            .expect("admitted");
        let kinds: Vec<_> = before.iter().map(EventBody::kind).collect();
        assert_eq!(
            kinds,
            [
                "agent_response",
                "agent_thinking",
                "interrupt_resolved",
                "tool_completed",
                "tool_completed",
                "agent_completed"
            ]
        );
        assert_eq!(before[0], close("a", "m2", Some("second half")));
        assert!(matches!(
            &before[2],
            EventBody::InterruptResolved {
                status: InterruptStatus::Cancelled,
                user: None,
                ..
            }
        ));
        for body in &before {
            l.check(body, now()).expect("each closing event is allowed");
            l.apply(body);
        }
        assert!(l.closing_events("x").is_empty());
    }

    #[test]
    fn replay_rebuilds_the_open_set() {
        let log = [exec("c1"), done("c1"), exec("c2"), delta("a", "m", "x")];
        let l = Lifecycle::replay(log.iter());
        assert!(l.check(&done("c2"), now()).is_ok());
        assert!(l.check(&done("c1"), now()).is_err());
        assert_eq!(l.text_of("m"), "x");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Events over a few agents, ids and calls, so that collisions are frequent.
        fn any_event() -> impl Strategy<Value = EventBody> {
            let agent = prop::sample::select(vec!["a", "b"]);
            let id = prop::sample::select(vec!["m1", "m2", "m3"]);
            let call = prop::sample::select(vec!["c1", "c2"]);
            let text = prop::sample::select(vec!["", "x", "yz"]);
            prop_oneof![
                (agent.clone(), id.clone(), text.clone()).prop_map(|(a, m, t)| delta(a, m, t)),
                (id.clone(), text).prop_map(|(m, t)| thinking_delta(m, t)),
                (agent.clone(), id.clone(), any::<bool>()).prop_map(|(a, m, c)| close(
                    a,
                    m,
                    c.then_some("given")
                )),
                id.clone().prop_map(|i| ask(i, None)),
                (id, any::<bool>()).prop_map(|(i, person)| answer(i, person.then_some("u"))),
                call.clone().prop_map(exec),
                call.prop_map(done),
                agent.prop_map(start),
                Just(status(WorkflowStatus::Failed)),
            ]
        }

        proptest! {
            /// Whatever producers send, the log that the lifecycle admits keeps every invariant
            /// of §1, and a refused event changes nothing.
            #[test]
            fn the_admitted_log_keeps_every_invariant(events in prop::collection::vec(any_event(), 0..60)) {
                let mut l = Lifecycle::default();
                let mut log: Vec<EventBody> = Vec::new();
                for body in events {
                    let (before, body) = match l.admit(body, now()) {
                        Ok(admitted) => admitted,
                        Err(_) => continue,
                    };
                    for event in before.into_iter().chain([body]) {
                        l.apply(&event);
                        log.push(event);
                    }
                }
                check_invariants(&log);
            }

            /// Applying events and undoing them in reverse leaves the state as it was.
            #[test]
            fn undo_takes_back_what_apply_did(events in prop::collection::vec(any_event(), 0..40), cut in 0usize..40) {
                let mut l = Lifecycle::default();
                let mut admitted = Vec::new();
                for body in events {
                    if let Ok((before, body)) = l.admit(body, now()) {
                        for event in before.into_iter().chain([body]) {
                            l.apply(&event);
                            admitted.push(event);
                        }
                    }
                }
                let cut = cut.min(admitted.len());
                let mut state = Lifecycle::replay(admitted[..cut].iter());
                let undos: Vec<Undo> = admitted[cut..].iter().map(|e| state.apply(e)).collect();
                for undo in undos.into_iter().rev() {
                    state.undo(undo);
                }
                let expected = Lifecycle::replay(admitted[..cut].iter());
                prop_assert_eq!(format!("{:?}", sorted(&state)), format!("{:?}", sorted(&expected)));
            }
        }

        /// The state with its hash sets and maps in a stable order, to compare two states.
        fn sorted(l: &Lifecycle) -> impl std::fmt::Debug {
            let mut messages: Vec<_> = l.open_messages.iter().collect();
            messages.sort_by(|a, b| a.0.cmp(b.0));
            let mut closed: Vec<_> = l.closed_messages.iter().collect();
            closed.sort();
            let mut interrupts: Vec<_> = l.open_interrupts.iter().collect();
            interrupts.sort_by(|a, b| a.0.cmp(b.0));
            let mut ids: Vec<_> = l.interrupt_ids.iter().collect();
            ids.sort();
            (
                l.open_tools.clone(),
                l.open_agents.clone(),
                format!(
                    "{messages:?} {closed:?} {interrupts:?} {ids:?} {:?}",
                    l.finished
                ),
            )
        }

        /// §1's invariants, read off a log.
        fn check_invariants(log: &[EventBody]) {
            let mut open_tools = HashSet::new();
            let mut open_agents = HashSet::new();
            let mut streams: HashMap<&str, (&str, &str)> = HashMap::new();
            let mut text: HashMap<&str, String> = HashMap::new();
            let mut closed = HashSet::new();
            let mut asked = HashSet::new();
            let mut answered = HashSet::new();
            let mut finished = false;
            for body in log {
                assert!(!finished, "nothing after a terminal status: {body:?}");
                match body {
                    EventBody::ToolExecuting { call_id, .. } => {
                        assert!(open_tools.insert(call_id.as_str()))
                    }
                    EventBody::ToolCompleted { call_id, .. } => {
                        assert!(open_tools.remove(call_id.as_str()))
                    }
                    EventBody::AgentStarted { agent, .. } => {
                        assert!(open_agents.insert(agent.as_str()))
                    }
                    EventBody::AgentCompleted { agent, .. } => {
                        assert!(open_agents.remove(agent.as_str()))
                    }
                    EventBody::TextDelta {
                        agent,
                        message_id,
                        delta,
                    }
                    | EventBody::ThinkingDelta {
                        agent,
                        message_id,
                        delta,
                    } => {
                        assert!(!delta.is_empty());
                        assert!(!closed.contains(message_id.as_str()), "delta after close");
                        let stream = streams
                            .entry(message_id)
                            .or_insert((agent.as_str(), body.kind()));
                        assert_eq!(
                            *stream,
                            (agent.as_str(), body.kind()),
                            "one agent, one kind"
                        );
                        text.entry(message_id).or_default().push_str(delta);
                    }
                    EventBody::AgentResponse {
                        agent,
                        content,
                        message_id,
                    }
                    | EventBody::AgentThinking {
                        agent,
                        content,
                        message_id,
                    } => {
                        let content = content.as_deref().expect("the log always holds content");
                        if let Some(id) = message_id {
                            assert!(closed.insert(id.as_str()), "closed once: {id}");
                            if let Some((owner, kind)) = streams.get(id.as_str()) {
                                assert_eq!(*owner, agent.as_str());
                                let expected = if *kind == "text_delta" {
                                    "agent_response"
                                } else {
                                    "agent_thinking"
                                };
                                assert_eq!(body.kind(), expected);
                                if content != "given" {
                                    assert_eq!(content, text[id.as_str()]);
                                }
                            }
                        }
                    }
                    EventBody::Interrupt { interrupt_id, .. } => {
                        assert!(asked.insert(interrupt_id.as_str()), "unique interrupt id")
                    }
                    EventBody::InterruptResolved { interrupt_id, .. } => {
                        assert!(asked.contains(interrupt_id.as_str()));
                        assert!(answered.insert(interrupt_id.as_str()), "answered once");
                    }
                    EventBody::WorkflowStatus { status, .. } if status.is_terminal() => {
                        assert!(open_tools.is_empty() && open_agents.is_empty());
                        assert_eq!(asked.len(), answered.len(), "every interrupt closed");
                        for id in streams.keys() {
                            assert!(closed.contains(id), "message {id} closed before the end");
                        }
                        finished = true;
                    }
                    _ => {}
                }
            }
        }
    }
}
