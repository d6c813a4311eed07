//! `echo`: a built-in interactive workflow, so a new user sees Lantern work at once.
//!
//! It starts an agent and waits for input. Each `user_input` gets `agent_thinking`, a paired
//! `tool_executing` / `tool_completed` of a small text tool (`text_stats`), and an
//! `agent_response`; the input "done" completes the agent and the workflow.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use app::protocol::vocab::{kinds, FINISH};
use app::protocol::{EventBody, WorkflowStatus};
use serde_json::json;

use super::inbox::{Inbox, Said};
use crate::error::Result;
use crate::hub::Hub;

const AGENT: &str = kinds::ECHO;
const TOOL: &str = "text_stats";

/// Start the workflow's task. Returns once the task follows the feed, so no input is missed.
/// With `idle`, a workflow nobody writes to for that long finishes by itself.
pub async fn spawn(hub: Arc<Hub>, workflow_id: String, idle: Option<Duration>) -> Result<()> {
    let (feed, _) = hub.feed(&workflow_id, 0).await?;
    let span = tracing::info_span!("workflow", id = %workflow_id, kind = kinds::ECHO);
    let task = async move {
        if let Err(e) = run(&hub, &workflow_id, Inbox::new(feed), idle).await {
            // A conflict here means the workflow was cancelled under us: nothing to report.
            tracing::debug!(error = %e, "echo workflow stopped");
        }
    };
    tokio::spawn(task.instrument(span));
    Ok(())
}

fn status(status: WorkflowStatus, detail: &str) -> EventBody {
    EventBody::WorkflowStatus {
        status,
        detail: Some(detail.into()),
    }
}

async fn run(hub: &Hub, id: &str, mut inbox: Inbox, idle: Option<Duration>) -> Result<()> {
    hub.publish_bodies(
        id,
        vec![status(WorkflowStatus::Running, "echo agent starting")],
    )
    .await?;
    hub.publish_bodies(
        id,
        vec![EventBody::AgentStarted {
            agent: AGENT.into(),
            task: Some(format!("Answer every message; \"{FINISH}\" finishes.")),
        }],
    )
    .await?;
    hub.publish_bodies(id, vec![waiting()]).await?;
    let mut round = 0u32;
    loop {
        match inbox.next_message_within(idle).await? {
            Said::Message(content) if Said::is_finish(&content) => {
                return finish(hub, id, round).await;
            }
            Said::Message(content) => {
                round += 1;
                answer(hub, id, &content, round).await?;
            }
            Said::Nothing(waited) => {
                hub.publish_bodies(id, vec![Said::idle_end(waited)]).await?;
                return Ok(());
            }
            Said::Ended => return Ok(()),
        }
    }
}

fn waiting() -> EventBody {
    status(
        WorkflowStatus::WaitingInput,
        &format!("say something; \"{FINISH}\" finishes"),
    )
}

async fn answer(hub: &Hub, id: &str, content: &str, round: u32) -> Result<()> {
    let call_id = format!("call-{round}");
    let publish = |body: EventBody| hub.publish_bodies(id, vec![body]);
    publish(status(WorkflowStatus::Running, "echo agent answering")).await?;
    publish(EventBody::AgentThinking {
        agent: AGENT.into(),
        content: format!(
            "Reading message {round} ({} characters)…",
            content.chars().count()
        ),
    })
    .await?;
    publish(EventBody::ToolExecuting {
        agent: AGENT.into(),
        tool: TOOL.into(),
        call_id: call_id.clone(),
        input: json!({ "text": content }),
    })
    .await?;
    let started = Instant::now();
    let stats = text_stats(content);
    publish(EventBody::ToolCompleted {
        agent: AGENT.into(),
        tool: TOOL.into(),
        call_id,
        ok: true,
        output: Some(stats.clone()),
        error: None,
        duration_ms: started.elapsed().as_millis() as u64,
    })
    .await?;
    publish(EventBody::AgentResponse {
        agent: AGENT.into(),
        content: format!("You said: {content} ({} words)", stats["words"]),
    })
    .await?;
    publish(waiting()).await?;
    Ok(())
}

async fn finish(hub: &Hub, id: &str, rounds: u32) -> Result<()> {
    hub.publish_bodies(
        id,
        vec![
            EventBody::AgentCompleted {
                agent: AGENT.into(),
                ok: true,
                summary: Some(format!("answered {rounds} messages")),
            },
            status(WorkflowStatus::Completed, "finished by the user"),
        ],
    )
    .await?;
    Ok(())
}

/// The tool: counts words and characters and reverses the text.
fn text_stats(text: &str) -> serde_json::Value {
    json!({
        "words": text.split_whitespace().count(),
        "chars": text.chars().count(),
        "reversed": text.chars().rev().collect::<String>(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_stats_counts_and_reverses() {
        let stats = super::text_stats("héllo big world");
        assert_eq!(stats["words"], 3);
        assert_eq!(stats["chars"], 15);
        assert_eq!(stats["reversed"], "dlrow gib olléh");
    }
}
