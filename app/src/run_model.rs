//! The run page's picture of one workflow, folded from its log one event at a time: the graph's
//! steps, one card per agent run with its tool calls, the search results, the reports and the
//! user's inputs. Pure Rust (no signals, no DOM), so it is unit-tested on the host; the page
//! keeps one in a signal and [`RunModel::apply`]s each new event, never re-reading the log.

use std::collections::HashMap;

use serde_json::Value;

use crate::protocol::{EventBody, LoggedEvent, NodeStatus, SearchHit, WorkflowStatus};
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
    pub response: Option<String>,
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

    /// Fold in the next event of the log.
    pub fn apply(&mut self, event: &LoggedEvent) {
        self.events += 1;
        self.last_seq = event.seq;
        let at = parse_ts_ms(&event.ts);
        match &event.body {
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
                self.card(agent, at).response = Some(content.clone().unwrap_or_default());
            }
            // Not drawn yet.
            EventBody::TextDelta { .. }
            | EventBody::ThinkingDelta { .. }
            | EventBody::Interrupt { .. }
            | EventBody::InterruptResolved { .. } => {}
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
            response: None,
            summary: None,
            started_at_ms: at,
            duration_ms: None,
            tools: Vec::new(),
        });
    }

    /// The card `agent`'s events go to; one is made if the producer never said it started.
    fn card(&mut self, agent: &str, at: Option<f64>) -> &mut AgentCard {
        let index = match self.open_cards.get(agent) {
            Some(&index) => index,
            None => {
                self.start_agent(agent, None, at);
                self.agents.len() - 1
            }
        };
        &mut self.agents[index]
    }

    fn start_tool(
        &mut self,
        agent: &str,
        tool: &str,
        call_id: &str,
        input: &Value,
        at: Option<f64>,
    ) {
        let card_index = {
            self.card(agent, at);
            self.open_cards[agent]
        };
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
        });
    }

    fn tool(&mut self, call_id: &str) -> Option<&mut ToolRow> {
        let &(card, row) = self.tool_rows.get(call_id)?;
        self.agents.get_mut(card)?.tools.get_mut(row)
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
        assert_eq!(model.agents[2].response.as_deref(), Some("hi"));
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
}
