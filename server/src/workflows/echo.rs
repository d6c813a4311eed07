//! `echo`: a built-in interactive workflow, so a new user sees Lantern work at once.
//!
//! It starts an agent and waits for input. Each `user_input` gets `agent_thinking`, a paired
//! `tool_executing` / `tool_completed` of a small text tool (`text_stats`), and an
//! `agent_response`; the input "done" completes the agent and the workflow.

use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

use app::protocol::{EventBody, WorkflowStatus};
use serde_json::json;

use crate::error::Result;
use crate::hub::{Feed, Hub};

const AGENT: &str = "echo";
const TOOL: &str = "text_stats";

/// Start the workflow's task. Returns once the task follows the feed, so no input is missed.
pub async fn spawn(hub: Arc<Hub>, workflow_id: String) -> Result<()> {
    let (feed, _) = hub.feed(&workflow_id, 0).await?;
    let span = tracing::info_span!("workflow", id = %workflow_id, kind = "echo");
    let task = async move {
        if let Err(e) = run(&hub, &workflow_id, feed).await {
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

async fn run(hub: &Hub, id: &str, mut feed: Feed) -> Result<()> {
    hub.publish_bodies(
        id,
        vec![status(WorkflowStatus::Running, "echo agent starting")],
    )
    .await?;
    hub.publish_bodies(
        id,
        vec![EventBody::AgentStarted {
            agent: AGENT.into(),
            task: Some("Answer every message; \"done\" finishes.".into()),
        }],
    )
    .await?;
    hub.publish_bodies(id, vec![waiting()]).await?;
    let mut round = 0u32;
    while let Some(event) = feed.next().await? {
        match event.event()?.body {
            EventBody::UserInput { content, .. } if content.trim().eq_ignore_ascii_case("done") => {
                return finish(hub, id, round).await;
            }
            EventBody::UserInput { content, .. } => {
                round += 1;
                answer(hub, id, &content, round).await?;
            }
            EventBody::WorkflowStatus { status, .. } if status.is_terminal() => return Ok(()),
            _ => {}
        }
    }
    Ok(())
}

fn waiting() -> EventBody {
    status(
        WorkflowStatus::WaitingInput,
        "say something; \"done\" finishes",
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
