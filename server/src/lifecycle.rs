//! The invariants of PROTOCOL.md §1, checked before anything is appended, whoever produced it:
//! tools paired by `call_id`, agents paired, nothing after a terminal `workflow_status`.
//! Pure logic: the hub keeps one [`Lifecycle`] per live workflow.

use std::collections::{BTreeMap, BTreeSet};

use app::protocol::{EventBody, WorkflowStatus};

/// What is open in a workflow right now.
#[derive(Clone, Debug, Default)]
pub struct Lifecycle {
    /// Open tool calls: `call_id` → (agent, tool). Ordered, so auto-closing is deterministic.
    open_tools: BTreeMap<String, (String, String)>,
    open_agents: BTreeSet<String>,
    /// Set once a terminal status was appended; then every append is refused.
    finished: Option<WorkflowStatus>,
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

    /// Is `body` allowed next? `Err` says why not.
    pub fn check(&self, body: &EventBody) -> Result<(), String> {
        if let Some(status) = self.finished {
            return Err(format!(
                "the workflow is {} (finished); nothing can be appended",
                status.as_str()
            ));
        }
        match body {
            EventBody::ToolExecuting { call_id, .. } if self.open_tools.contains_key(call_id) => {
                Err(format!("tool call {call_id} is already executing"))
            }
            EventBody::ToolUpdate { call_id, .. } | EventBody::ToolCompleted { call_id, .. }
                if !self.open_tools.contains_key(call_id) =>
            {
                Err(format!("no tool call {call_id} is executing"))
            }
            EventBody::AgentStarted { agent, .. } if self.open_agents.contains(agent) => {
                Err(format!("agent {agent} is already running"))
            }
            EventBody::AgentCompleted { agent, .. } if !self.open_agents.contains(agent) => {
                Err(format!("agent {agent} is not running"))
            }
            _ => Ok(()),
        }
    }

    /// Admit `body` as the next event: `Err` says why it may not be appended; `Ok` holds the
    /// events to append before it — for a terminal `workflow_status`, the `ok: false` closing
    /// of every tool and agent still open (so the pairing invariants hold); else nothing.
    /// Apply the returned events, then `body`.
    pub fn admit(&self, body: &EventBody) -> Result<Vec<EventBody>, String> {
        self.check(body)?;
        match body {
            EventBody::WorkflowStatus { status, .. } if status.is_terminal() => {
                Ok(self.closing_events(&format!("workflow {}", status.as_str())))
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Record `body` as appended (it passed [`check`](Self::check)).
    pub fn apply(&mut self, body: &EventBody) {
        match body {
            EventBody::ToolExecuting {
                agent,
                tool,
                call_id,
                ..
            } => {
                self.open_tools
                    .insert(call_id.clone(), (agent.clone(), tool.clone()));
            }
            EventBody::ToolCompleted { call_id, .. } => {
                self.open_tools.remove(call_id);
            }
            EventBody::AgentStarted { agent, .. } => {
                self.open_agents.insert(agent.clone());
            }
            EventBody::AgentCompleted { agent, .. } => {
                self.open_agents.remove(agent);
            }
            EventBody::WorkflowStatus { status, .. } if status.is_terminal() => {
                self.finished = Some(*status);
            }
            _ => {}
        }
    }

    /// The events that close whatever is open, with `ok: false`: tools first, then agents.
    /// Appended before a terminal status so the pairing invariants hold.
    pub fn closing_events(&self, why: &str) -> Vec<EventBody> {
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
        tools.chain(agents).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    fn accept(l: &mut Lifecycle, body: EventBody) {
        l.check(&body).expect("allowed");
        l.apply(&body);
    }

    #[test]
    fn tools_must_be_paired_by_call_id() {
        let mut l = Lifecycle::default();
        assert!(l.check(&done("c1")).is_err());
        accept(&mut l, exec("c1"));
        assert!(l.check(&exec("c1")).is_err(), "same call id twice");
        accept(&mut l, done("c1"));
        assert!(l.check(&done("c1")).is_err(), "completed twice");
    }

    #[test]
    fn agents_must_be_paired() {
        let mut l = Lifecycle::default();
        let stop = EventBody::AgentCompleted {
            agent: "a".into(),
            ok: true,
            summary: None,
        };
        assert!(l.check(&stop).is_err());
        accept(&mut l, start("a"));
        assert!(l
            .check(&EventBody::AgentStarted {
                agent: "a".into(),
                task: None
            })
            .is_err());
        accept(&mut l, stop);
    }

    #[test]
    fn nothing_after_a_terminal_status() {
        let mut l = Lifecycle::default();
        accept(&mut l, status(WorkflowStatus::Running));
        accept(&mut l, status(WorkflowStatus::Completed));
        assert!(l.is_finished());
        assert!(l.check(&status(WorkflowStatus::Running)).is_err());
        assert!(l
            .check(&EventBody::FinalReport {
                content: "x".into()
            })
            .is_err());
    }

    #[test]
    fn closing_events_close_tools_then_agents() {
        let mut l = Lifecycle::default();
        accept(&mut l, start("a"));
        accept(&mut l, exec("c2"));
        accept(&mut l, exec("c1"));
        let closing = l.closing_events("cancelled");
        let kinds: Vec<_> = closing.iter().map(EventBody::kind).collect();
        assert_eq!(
            kinds,
            ["tool_completed", "tool_completed", "agent_completed"]
        );
        for body in &closing {
            accept(&mut l, body.clone());
        }
        assert!(l.closing_events("x").is_empty());
    }

    #[test]
    fn admitting_a_terminal_status_closes_what_is_open_first() {
        let mut l = Lifecycle::default();
        accept(&mut l, start("a"));
        accept(&mut l, exec("c1"));
        let end = status(WorkflowStatus::Failed);
        let before = l.admit(&end).expect("admitted");
        let kinds: Vec<_> = before.iter().map(EventBody::kind).collect();
        assert_eq!(kinds, ["tool_completed", "agent_completed"]);
        assert!(l
            .admit(&EventBody::FinalReport {
                content: "x".into()
            })
            .expect("ok")
            .is_empty());
    }

    #[test]
    fn replay_rebuilds_the_open_set() {
        let log = [exec("c1"), done("c1"), exec("c2")];
        let l = Lifecycle::replay(log.iter());
        assert!(l.check(&done("c2")).is_ok());
        assert!(l.check(&done("c1")).is_err());
    }
}
