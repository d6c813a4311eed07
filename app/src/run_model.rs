//! The run page's picture of one workflow, folded from its log one event at a time: the graph's
//! steps, one card per agent run with its tool calls, the search results, the reports and the
//! user's inputs, streamed answers and reasoning, and the questions agents ask (interrupts).
//! Pure Rust (no signals, no DOM), so it is unit-tested on the host; the page keeps one in a
//! signal and [`RunModel::apply`]s each new event, never re-reading the log.
//!
//! Streamed text is the hot path (hundreds of deltas a second): a `text_delta` appends to the
//! open message's `String` (O(delta)), and [`RunModel::apply`] says so ([`Change::Text`]), so
//! the page can tell the views that draw streamed text and leave every other view alone.

use std::collections::HashMap;

use serde_json::Value;

use crate::protocol::{
    EventBody, InterruptStatus, LoggedEvent, NodeStatus, SearchHit, WorkflowStatus,
};
use crate::time::parse_ts_ms;

/// How many thoughts a card keeps: it shows the stream's tail, the log keeps them all.
pub const THOUGHTS_KEPT: usize = 20;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunModel {
    /// The newest `workflow_status`, if any arrived.
    pub status: Option<WorkflowStatus>,
    /// The `detail` of that status (e.g. why it failed).
    pub status_detail: Option<String>,
    /// When the workflow reached a terminal status (ms since the epoch): the clock stops there.
    pub finished_at_ms: Option<f64>,
    /// The graph's nodes in the order they first appeared, each with its latest status.
    pub steps: Vec<Step>,
    /// One card per `agent_started` (an agent started twice gets two cards), in start order.
    pub agents: Vec<AgentCard>,
    pub results: Vec<Results>,
    pub reports: Vec<Report>,
    /// The user's inputs as the log holds them (delivered).
    pub inputs: Vec<SentInput>,
    /// How many events were folded in, and the last one's `seq`.
    pub events: usize,
    pub last_seq: u64,
    /// Where each tool call lives: `call_id` → (card, row). Why: updates find their row in
    /// O(1) however many calls a run makes.
    tool_rows: HashMap<String, (usize, usize)>,
    /// The card each agent name's events go to: its latest start.
    open_cards: HashMap<String, usize>,
    /// The questions agents asked, in the order they were asked.
    pub interrupts: Vec<Interrupt>,
    /// `interrupt_id` → index in `interrupts`.
    interrupt_index: HashMap<String, usize>,
    /// Streamed messages not closed yet: `message_id` → the card that shows it. Why: a delta
    /// finds its message in O(1), and one that no longer shows (a newer message of the same
    /// kind replaced it on its card) is recognised and skipped.
    open_messages: HashMap<String, usize>,
}

/// What an event changed, for the page: [`Change::Text`] when it only appended to a streamed
/// message that is already drawn (only the views of streamed text need to look), else
/// [`Change::Structure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Text,
    Structure,
}

/// An answer or a reasoning of an agent, whole (no `message_id`) or streamed.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Counts the card's messages of this kind from 1: a view drawn for message `number`
    /// knows it was replaced when the number changes.
    pub number: usize,
    pub message_id: Option<String>,
    /// The text so far; once closed, the closing event's `content` (the final word).
    pub text: String,
    /// Deltas may still come.
    pub open: bool,
    /// The `seq` of the event that closed it (or of the whole message).
    pub seq: Option<u64>,
}

impl Message {
    /// Whether this message was streamed (its final text is Markdown, rendered once closed).
    pub fn streamed(&self) -> bool {
        self.message_id.is_some()
    }
}

/// A question an agent asked a person (an `interrupt`), and its answer once the log holds one.
#[derive(Clone, Debug, PartialEq)]
pub struct Interrupt {
    pub seq: u64,
    pub agent: String,
    pub interrupt_id: String,
    pub reason: String,
    pub message: String,
    /// The tool call it is about, when it names one.
    pub call_id: Option<String>,
    pub response_schema: Option<Value>,
    /// When answers stop being accepted (ms since the epoch), when it says.
    pub expires_at_ms: Option<f64>,
    /// `expires_at` as sent, for people.
    pub expires_at: Option<String>,
    pub answer: Option<InterruptAnswer>,
}

/// How an interrupt ended (`interrupt_resolved`).
#[derive(Clone, Debug, PartialEq)]
pub struct InterruptAnswer {
    pub seq: u64,
    pub status: InterruptStatus,
    pub payload: Option<Value>,
    /// Who answered; `None` when the agent withdrew it or the server closed it.
    pub user: Option<String>,
    pub client_msg_id: Option<String>,
}

impl Interrupt {
    /// Unanswered, but past its `expires_at` at `now_ms`: the server refuses answers now.
    pub fn is_expired(&self, now_ms: f64) -> bool {
        self.answer.is_none() && self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub node: String,
    pub status: NodeStatus,
    pub detail: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    Running,
    Done,
    Failed,
}

impl Progress {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AgentCard {
    pub agent: String,
    pub task: Option<String>,
    pub progress: Progress,
    /// The latest thoughts, oldest first (at most [`THOUGHTS_KEPT`]).
    pub thoughts: Vec<String>,
    /// How many `agent_thinking` events there were in all.
    pub thought_count: usize,
    /// The latest streamed reasoning (`thinking_delta`s, closed by `agent_thinking` with its
    /// `message_id`); whole thoughts go to `thoughts`.
    pub reasoning: Option<Message>,
    /// The latest answer: whole, or streamed (`text_delta`s closed by `agent_response`).
    pub response: Option<Message>,
    pub summary: Option<String>,
    pub started_at_ms: Option<f64>,
    /// Set when the agent completed: from its start to its `agent_completed`.
    pub duration_ms: Option<f64>,
    pub tools: Vec<ToolRow>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolRow {
    pub call_id: String,
    pub tool: String,
    pub input: Value,
    pub progress: Progress,
    /// The latest `tool_update` message and fraction (0–1), while it runs.
    pub message: Option<String>,
    pub fraction: Option<f64>,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
    /// The open interrupt that asks whether this call may run, while it waits.
    pub awaiting: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    pub seq: u64,
    pub query: String,
    pub hits: Vec<SearchHit>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub seq: u64,
    pub markdown: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SentInput {
    pub seq: u64,
    pub user: String,
    pub content: String,
    pub client_msg_id: String,
}

impl RunModel {
    pub fn from_events(events: &[LoggedEvent]) -> Self {
        let mut model = Self::default();
        for event in events {
            model.apply(event);
        }
        model
    }

    /// Fold in the next event of the log; says whether it only added streamed text.
    pub fn apply(&mut self, event: &LoggedEvent) -> Change {
        self.events += 1;
        self.last_seq = event.seq;
        let at = parse_ts_ms(&event.ts);
        match &event.body {
            EventBody::TextDelta {
                agent,
                message_id,
                delta,
            } => return self.delta(agent, message_id, delta, Kind::Text, at),
            EventBody::ThinkingDelta {
                agent,
                message_id,
                delta,
            } => return self.delta(agent, message_id, delta, Kind::Thinking, at),
            EventBody::AgentThinking {
                agent,
                content,
                message_id: Some(message_id),
            } => self.close(
                agent,
                message_id,
                content.as_deref(),
                Kind::Thinking,
                event.seq,
                at,
            ),
            EventBody::AgentResponse {
                agent,
                content,
                message_id: Some(message_id),
            } => self.close(
                agent,
                message_id,
                content.as_deref(),
                Kind::Text,
                event.seq,
                at,
            ),
            EventBody::WorkflowStatus { status, detail } => {
                self.status = Some(*status);
                self.status_detail = detail.clone();
                if status.is_terminal() {
                    self.finished_at_ms = at;
                }
            }
            EventBody::NodeUpdate {
                node,
                status,
                detail,
            } => self.step(node, *status, detail.clone()),
            EventBody::AgentStarted { agent, task } => self.start_agent(agent, task.clone(), at),
            EventBody::AgentThinking { agent, content, .. } => {
                let card = self.card(agent, at);
                card.thought_count += 1;
                if card.thoughts.len() == THOUGHTS_KEPT {
                    card.thoughts.remove(0);
                }
                card.thoughts.push(content.clone().unwrap_or_default());
            }
            EventBody::AgentResponse { agent, content, .. } => {
                let card = self.card(agent, at);
                card.response = Some(Message {
                    number: card.response.as_ref().map_or(1, |m| m.number + 1),
                    message_id: None,
                    text: content.clone().unwrap_or_default(),
                    open: false,
                    seq: Some(event.seq),
                });
            }
            EventBody::Interrupt {
                agent,
                interrupt_id,
                reason,
                message,
                call_id,
                response_schema,
                expires_at,
            } => {
                if let Some(row) = call_id.as_deref().and_then(|c| self.tool(c)) {
                    row.awaiting = Some(interrupt_id.clone());
                }
                self.interrupt_index
                    .insert(interrupt_id.clone(), self.interrupts.len());
                self.interrupts.push(Interrupt {
                    seq: event.seq,
                    agent: agent.clone(),
                    interrupt_id: interrupt_id.clone(),
                    reason: reason.clone(),
                    message: message.clone(),
                    call_id: call_id.clone(),
                    response_schema: response_schema.clone(),
                    expires_at_ms: expires_at.as_deref().and_then(parse_ts_ms),
                    expires_at: expires_at.clone(),
                    answer: None,
                });
            }
            EventBody::InterruptResolved {
                interrupt_id,
                status,
                payload,
                user,
                client_msg_id,
            } => {
                let Some(&index) = self.interrupt_index.get(interrupt_id) else {
                    return Change::Structure;
                };
                let asked = &mut self.interrupts[index];
                asked.answer = Some(InterruptAnswer {
                    seq: event.seq,
                    status: *status,
                    payload: payload.clone(),
                    user: user.clone(),
                    client_msg_id: client_msg_id.clone(),
                });
                let call_id = asked.call_id.clone();
                if let Some(row) = call_id.as_deref().and_then(|c| self.tool(c)) {
                    if row.awaiting.as_deref() == Some(interrupt_id) {
                        row.awaiting = None;
                    }
                }
            }
            EventBody::ToolExecuting {
                agent,
                tool,
                call_id,
                input,
            } => self.start_tool(agent, tool, call_id, input, at),
            EventBody::ToolUpdate {
                call_id,
                message,
                progress,
                ..
            } => {
                if let Some(row) = self.tool(call_id) {
                    row.message = Some(message.clone());
                    row.fraction = progress.map(|p| p.clamp(0.0, 1.0));
                }
            }
            EventBody::ToolCompleted {
                call_id,
                ok,
                output,
                error,
                duration_ms,
                ..
            } => {
                if let Some(row) = self.tool(call_id) {
                    row.progress = if *ok {
                        Progress::Done
                    } else {
                        Progress::Failed
                    };
                    row.output = output.clone();
                    row.error = error.clone();
                    row.duration_ms = Some(*duration_ms);
                    row.awaiting = None;
                }
            }
            EventBody::SearchResults { query, results } => self.results.push(Results {
                seq: event.seq,
                query: query.clone(),
                hits: results.clone(),
            }),
            EventBody::AgentCompleted { agent, ok, summary } => {
                let card = self.card(agent, at);
                card.progress = if *ok {
                    Progress::Done
                } else {
                    Progress::Failed
                };
                card.summary = summary.clone();
                card.duration_ms = card.started_at_ms.zip(at).map(|(from, to)| to - from);
            }
            EventBody::FinalReport { content } => self.reports.push(Report {
                seq: event.seq,
                markdown: content.clone(),
            }),
            EventBody::UserInput {
                content,
                user,
                client_msg_id,
            } => self.inputs.push(SentInput {
                seq: event.seq,
                user: user.clone(),
                content: content.clone(),
                client_msg_id: client_msg_id.clone(),
            }),
        }
        Change::Structure
    }

    /// The tool call `call_id`, wherever it is drawn.
    pub fn tool_call(&self, call_id: &str) -> Option<&ToolRow> {
        let &(card, row) = self.tool_rows.get(call_id)?;
        self.agents.get(card)?.tools.get(row)
    }

    /// A piece of streamed text: appended to its open message (O(delta)), or the first piece
    /// of a new one, which replaces the card's message of that kind.
    fn delta(
        &mut self,
        agent: &str,
        message_id: &str,
        delta: &str,
        kind: Kind,
        at: Option<f64>,
    ) -> Change {
        if let Some(&card) = self.open_messages.get(message_id) {
            let shown = self
                .agents
                .get_mut(card)
                .and_then(|c| kind.slot(c).as_mut());
            if let Some(message) =
                shown.filter(|m| m.open && m.message_id.as_deref() == Some(message_id))
            {
                message.text.push_str(delta);
                return Change::Text;
            }
            // Replaced on its card by a newer message: the raw log still has it.
            return Change::Structure;
        }
        let card_index = self.card_index(agent, at);
        let slot = kind.slot(&mut self.agents[card_index]);
        if slot
            .as_ref()
            .is_some_and(|m| m.message_id.as_deref() == Some(message_id))
        {
            // Closed already (the server refuses such deltas; the log is the judge).
            return Change::Structure;
        }
        self.open_messages.insert(message_id.to_owned(), card_index);
        *slot = Some(Message {
            number: slot.as_ref().map_or(1, |m| m.number + 1),
            message_id: Some(message_id.to_owned()),
            text: delta.to_owned(),
            open: true,
            seq: None,
        });
        Change::Structure
    }

    /// The closing event of a streamed message (`agent_response` / `agent_thinking` with a
    /// `message_id`): its `content` is the final text. One with no deltas before it is a whole
    /// message that carries an id.
    fn close(
        &mut self,
        agent: &str,
        message_id: &str,
        content: Option<&str>,
        kind: Kind,
        seq: u64,
        at: Option<f64>,
    ) {
        let was_open = self.open_messages.remove(message_id);
        let card_index = match was_open {
            Some(card) => card,
            None => self.card_index(agent, at),
        };
        let Some(card) = self.agents.get_mut(card_index) else {
            return;
        };
        let slot = kind.slot(card);
        match slot
            .as_mut()
            .filter(|m| m.open && m.message_id.as_deref() == Some(message_id))
        {
            Some(message) => {
                if let Some(content) = content {
                    if content != message.text {
                        message.text = content.to_owned();
                    }
                }
                message.open = false;
                message.seq = Some(seq);
            }
            None if was_open.is_none() => {
                *slot = Some(Message {
                    number: slot.as_ref().map_or(1, |m| m.number + 1),
                    message_id: Some(message_id.to_owned()),
                    text: content.unwrap_or_default().to_owned(),
                    open: false,
                    seq: Some(seq),
                })
            }
            // It was replaced on its card by a newer message while it streamed.
            None => {}
        }
    }

    fn step(&mut self, node: &str, status: NodeStatus, detail: Option<String>) {
        match self.steps.iter_mut().find(|s| s.node == node) {
            Some(step) => {
                step.status = status;
                step.detail = detail;
            }
            None => self.steps.push(Step {
                node: node.to_owned(),
                status,
                detail,
            }),
        }
    }

    fn start_agent(&mut self, agent: &str, task: Option<String>, at: Option<f64>) {
        self.open_cards.insert(agent.to_owned(), self.agents.len());
        self.agents.push(AgentCard {
            agent: agent.to_owned(),
            task,
            progress: Progress::Running,
            thoughts: Vec::new(),
            thought_count: 0,
            reasoning: None,
            response: None,
            summary: None,
            started_at_ms: at,
            duration_ms: None,
            tools: Vec::new(),
        });
    }

    /// The card `agent`'s events go to; one is made if the producer never said it started.
    fn card(&mut self, agent: &str, at: Option<f64>) -> &mut AgentCard {
        let index = self.card_index(agent, at);
        &mut self.agents[index]
    }

    fn card_index(&mut self, agent: &str, at: Option<f64>) -> usize {
        match self.open_cards.get(agent) {
            Some(&index) => index,
            None => {
                self.start_agent(agent, None, at);
                self.agents.len() - 1
            }
        }
    }

    fn start_tool(
        &mut self,
        agent: &str,
        tool: &str,
        call_id: &str,
        input: &Value,
        at: Option<f64>,
    ) {
        let card_index = self.card_index(agent, at);
        let card = &mut self.agents[card_index];
        self.tool_rows
            .insert(call_id.to_owned(), (card_index, card.tools.len()));
        card.tools.push(ToolRow {
            call_id: call_id.to_owned(),
            tool: tool.to_owned(),
            input: input.clone(),
            progress: Progress::Running,
            message: None,
            fraction: None,
            output: None,
            error: None,
            duration_ms: None,
            awaiting: None,
        });
    }

    fn tool(&mut self, call_id: &str) -> Option<&mut ToolRow> {
        let &(card, row) = self.tool_rows.get(call_id)?;
        self.agents.get_mut(card)?.tools.get_mut(row)
    }
}

/// Which of a card's streamed messages: its answer or its reasoning.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Thinking,
}

impl Kind {
    fn slot(self, card: &mut AgentCard) -> &mut Option<Message> {
        match self {
            Self::Text => &mut card.response,
            Self::Thinking => &mut card.reasoning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn logged(seq: u64, second: u32, body: EventBody) -> LoggedEvent {
        LoggedEvent {
            seq,
            ts: format!("2026-11-22T10:00:{second:02}.000Z"),
            workflow_id: "wf".into(),
            body,
        }
    }

    fn search_round() -> Vec<LoggedEvent> {
        let bodies = vec![
            EventBody::WorkflowStatus {
                status: WorkflowStatus::Running,
                detail: None,
            },
            EventBody::NodeUpdate {
                node: "search".into(),
                status: NodeStatus::Executing,
                detail: None,
            },
            EventBody::AgentStarted {
                agent: "searcher".into(),
                task: Some("find sources".into()),
            },
            EventBody::AgentThinking {
                agent: "searcher".into(),
                content: Some("looking".into()),
                message_id: None,
            },
            EventBody::ToolExecuting {
                agent: "searcher".into(),
                tool: "full_text_search".into(),
                call_id: "c1".into(),
                input: json!({"q": "x"}),
            },
            EventBody::ToolUpdate {
                agent: "searcher".into(),
                tool: "full_text_search".into(),
                call_id: "c1".into(),
                message: "half".into(),
                progress: Some(0.5),
            },
            EventBody::ToolCompleted {
                agent: "searcher".into(),
                tool: "full_text_search".into(),
                call_id: "c1".into(),
                ok: true,
                output: Some(json!({"hits": 2})),
                error: None,
                duration_ms: 12,
            },
            EventBody::AgentCompleted {
                agent: "searcher".into(),
                ok: true,
                summary: Some("2 hits".into()),
            },
            EventBody::NodeUpdate {
                node: "search".into(),
                status: NodeStatus::Completed,
                detail: None,
            },
            EventBody::FinalReport {
                content: "# Report".into(),
            },
            EventBody::WorkflowStatus {
                status: WorkflowStatus::Completed,
                detail: None,
            },
        ];
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| logged(i as u64 + 1, i as u32, b))
            .collect()
    }

    #[test]
    fn a_round_folds_into_one_card_with_one_finished_tool_row() {
        let model = RunModel::from_events(&search_round());
        assert_eq!(model.events, 11);
        assert_eq!(model.status, Some(WorkflowStatus::Completed));
        assert_eq!(model.steps.len(), 1, "one node, updated in place");
        assert_eq!(model.steps[0].status, NodeStatus::Completed);
        assert_eq!(model.agents.len(), 1);
        let card = &model.agents[0];
        assert_eq!(card.progress, Progress::Done);
        assert_eq!(card.thoughts, vec!["looking".to_string()]);
        assert_eq!(
            card.duration_ms,
            Some(5_000.0),
            "started at :02, completed at :07"
        );
        assert_eq!(card.tools.len(), 1);
        let row = &card.tools[0];
        assert_eq!(row.progress, Progress::Done);
        assert_eq!(row.message.as_deref(), Some("half"));
        assert_eq!(row.duration_ms, Some(12));
        assert_eq!(model.reports[0].markdown, "# Report");
        assert!(model.finished_at_ms.is_some());
    }

    #[test]
    fn folding_one_by_one_equals_folding_all() {
        let events = search_round();
        let mut model = RunModel::default();
        for e in &events {
            model.apply(e);
        }
        assert_eq!(model, RunModel::from_events(&events));
    }

    #[test]
    fn an_agent_started_again_gets_a_new_card_and_unstarted_agents_get_one() {
        let mut model = RunModel::default();
        for (seq, agent) in [(1, "a"), (2, "a")] {
            model.apply(&logged(
                seq,
                0,
                EventBody::AgentStarted {
                    agent: agent.into(),
                    task: None,
                },
            ));
        }
        model.apply(&logged(
            3,
            0,
            EventBody::AgentResponse {
                agent: "b".into(),
                content: Some("hi".into()),
                message_id: None,
            },
        ));
        assert_eq!(model.agents.len(), 3);
        assert_eq!(
            model.agents[2].response.as_ref().map(|m| m.text.as_str()),
            Some("hi")
        );
    }

    #[test]
    fn a_card_keeps_only_the_latest_thoughts_but_counts_all() {
        let mut model = RunModel::default();
        for seq in 1..=50 {
            model.apply(&logged(
                seq,
                0,
                EventBody::AgentThinking {
                    agent: "a".into(),
                    content: Some(format!("t{seq}")),
                    message_id: None,
                },
            ));
        }
        let card = &model.agents[0];
        assert_eq!(card.thought_count, 50);
        assert_eq!(card.thoughts.len(), THOUGHTS_KEPT);
        assert_eq!(card.thoughts.last().map(String::as_str), Some("t50"));
    }

    #[test]
    fn an_update_for_an_unknown_call_is_ignored() {
        let mut model = RunModel::default();
        model.apply(&logged(
            1,
            0,
            EventBody::ToolUpdate {
                agent: "a".into(),
                tool: "t".into(),
                call_id: "nope".into(),
                message: "m".into(),
                progress: Some(7.0),
            },
        ));
        assert!(model.agents.is_empty());
        assert_eq!(model.events, 1);
    }

    fn fold(bodies: Vec<EventBody>) -> (RunModel, Vec<Change>) {
        let mut model = RunModel::default();
        let changes = bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| model.apply(&logged(i as u64 + 1, 0, b)))
            .collect();
        (model, changes)
    }

    fn text_delta(message_id: &str, delta: &str) -> EventBody {
        EventBody::TextDelta {
            agent: "a".into(),
            message_id: message_id.into(),
            delta: delta.into(),
        }
    }

    fn response(message_id: Option<&str>, content: Option<&str>) -> EventBody {
        EventBody::AgentResponse {
            agent: "a".into(),
            content: content.map(Into::into),
            message_id: message_id.map(Into::into),
        }
    }

    #[test]
    fn deltas_open_a_message_append_to_it_and_its_response_closes_it() {
        let (model, changes) = fold(vec![
            text_delta("m1", "Hel"),
            text_delta("m1", "lo"),
            text_delta("m1", " **you**"),
        ]);
        // Opening a message changes what is drawn; appending to it is text only.
        assert_eq!(changes, [Change::Structure, Change::Text, Change::Text]);
        let answer = model.agents[0].response.clone().expect("a message");
        assert_eq!(answer.text, "Hello **you**");
        assert!(answer.open && answer.streamed());
        assert_eq!((answer.number, answer.seq), (1, None));

        let mut closed = model.clone();
        assert_eq!(
            closed.apply(&logged(4, 0, response(Some("m1"), Some("Hello **you**")))),
            Change::Structure
        );
        let answer = closed.agents[0].response.clone().expect("a message");
        assert!(!answer.open);
        assert_eq!(
            (answer.text.as_str(), answer.seq),
            ("Hello **you**", Some(4))
        );
        // No delta is added after the close (the server refuses them; the model ignores them).
        closed.apply(&logged(5, 0, text_delta("m1", "late")));
        assert_eq!(
            closed.agents[0].response.as_ref().map(|m| m.text.as_str()),
            Some("Hello **you**")
        );
    }

    #[test]
    fn the_closing_content_is_the_final_word() {
        let (model, _) = fold(vec![
            text_delta("m1", "draft"),
            response(Some("m1"), Some("final")),
        ]);
        assert_eq!(
            model.agents[0].response.as_ref().map(|m| m.text.as_str()),
            Some("final")
        );
    }

    #[test]
    fn a_new_message_replaces_the_last_and_counts_up() {
        let (model, _) = fold(vec![
            response(None, Some("whole")),
            text_delta("m2", "streamed"),
        ]);
        let answer = model.agents[0].response.clone().expect("a message");
        assert_eq!((answer.number, answer.text.as_str()), (2, "streamed"));
        assert_eq!(model.agents.len(), 1, "one card for agent a");
        // A message closed with no deltas before it is whole, with an id.
        let (model, _) = fold(vec![response(Some("m9"), Some("at once"))]);
        let answer = model.agents[0].response.clone().expect("a message");
        assert!(!answer.open && answer.streamed());
        assert_eq!(answer.text, "at once");
    }

    #[test]
    fn a_superseded_message_neither_grows_nor_replaces_the_newer_one() {
        let (model, changes) = fold(vec![
            text_delta("m1", "old"),
            text_delta("m2", "new"),
            text_delta("m1", " more"),
            response(Some("m1"), Some("old more")),
        ]);
        assert_eq!(changes[2], Change::Structure);
        let answer = model.agents[0].response.clone().expect("a message");
        assert_eq!((answer.text.as_str(), answer.open), ("new", true));
    }

    #[test]
    fn reasoning_streams_beside_the_answer_and_whole_thoughts_stay_thoughts() {
        let (model, _) = fold(vec![
            EventBody::ThinkingDelta {
                agent: "a".into(),
                message_id: "r1".into(),
                delta: "Reading ".into(),
            },
            EventBody::ThinkingDelta {
                agent: "a".into(),
                message_id: "r1".into(),
                delta: "it".into(),
            },
            text_delta("m1", "Answer"),
            EventBody::AgentThinking {
                agent: "a".into(),
                content: Some("Reading it".into()),
                message_id: Some("r1".into()),
            },
            EventBody::AgentThinking {
                agent: "a".into(),
                content: Some("a whole thought".into()),
                message_id: None,
            },
        ]);
        let card = &model.agents[0];
        let reasoning = card.reasoning.clone().expect("reasoning");
        assert_eq!(
            (reasoning.text.as_str(), reasoning.open),
            ("Reading it", false)
        );
        assert_eq!(card.response.as_ref().map(|m| m.open), Some(true));
        assert_eq!(card.thoughts, vec!["a whole thought".to_string()]);
    }

    #[test]
    fn a_snapshot_folded_mid_stream_holds_the_text_so_far() {
        let events: Vec<LoggedEvent> = ["One ", "two ", "three"]
            .iter()
            .enumerate()
            .map(|(i, d)| logged(i as u64 + 1, 0, text_delta("m1", d)))
            .collect();
        let model = RunModel::from_events(&events[..2]);
        assert_eq!(
            model.agents[0].response.as_ref().map(|m| m.text.as_str()),
            Some("One two ")
        );
        let mut resumed = model;
        resumed.apply(&events[2]);
        assert_eq!(resumed, RunModel::from_events(&events));
    }

    fn approval_round() -> Vec<EventBody> {
        vec![
            EventBody::ToolExecuting {
                agent: "echo".into(),
                tool: "text_stats".into(),
                call_id: "call-1".into(),
                input: json!({"text": "hi"}),
            },
            EventBody::Interrupt {
                agent: "echo".into(),
                interrupt_id: "approve-1".into(),
                reason: "tool_approval".into(),
                message: "Run text_stats?".into(),
                call_id: Some("call-1".into()),
                response_schema: Some(json!({"type": "object"})),
                expires_at: Some("2026-11-22T10:00:30.000Z".into()),
            },
        ]
    }

    #[test]
    fn an_interrupt_marks_its_tool_call_as_awaiting_until_answered() {
        let (mut model, _) = fold(approval_round());
        let asked = &model.interrupts[0];
        assert_eq!(asked.interrupt_id, "approve-1");
        assert!(asked.answer.is_none());
        let row = model.tool_call("call-1").expect("the call");
        assert_eq!(row.awaiting.as_deref(), Some("approve-1"));
        assert_eq!(row.input, json!({"text": "hi"}));
        // Expiry: 10:00:30.
        let at = parse_ts_ms("2026-11-22T10:00:30.000Z").expect("ts");
        assert!(!asked.is_expired(at - 1.0));
        assert!(asked.is_expired(at));

        model.apply(&logged(
            3,
            0,
            EventBody::InterruptResolved {
                interrupt_id: "approve-1".into(),
                status: InterruptStatus::Resolved,
                payload: Some(json!({"approved": false})),
                user: Some("ann".into()),
                client_msg_id: Some("c1".into()),
            },
        ));
        let answer = model.interrupts[0].answer.clone().expect("answered");
        assert_eq!(answer.user.as_deref(), Some("ann"));
        assert_eq!(answer.seq, 3);
        assert!(
            !model.interrupts[0].is_expired(at + 1.0),
            "answered is not expired"
        );
        assert_eq!(
            model.tool_call("call-1").and_then(|r| r.awaiting.clone()),
            None
        );
    }

    #[test]
    fn an_answer_to_an_unknown_interrupt_is_ignored() {
        let (model, _) = fold(vec![EventBody::InterruptResolved {
            interrupt_id: "nope".into(),
            status: InterruptStatus::Cancelled,
            payload: None,
            user: None,
            client_msg_id: None,
        }]);
        assert!(model.interrupts.is_empty());
        assert_eq!(model.events, 1);
    }
}
