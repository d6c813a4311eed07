//! `echo`: a built-in interactive workflow, so a new user sees Lantern work at once.
//!
//! It starts an agent and waits for input. Each `user_input` gets streamed reasoning
//! (`thinking_delta`s closed by `agent_thinking`), a paired `tool_executing` / `tool_completed`
//! of a small text tool (`text_stats`), and an answer streamed word by word (`text_delta`s
//! closed by `agent_response`). A message that starts with `tool:` asks first: the tool call is
//! made (`tool_executing`), then an `interrupt` (reason `tool_approval`, about that call) waits
//! for a person; the tool runs only if they approve (`{"approved": true}`), else the call is
//! closed `ok: false` and the answer says it was denied. The input "done" completes the agent and
//! the workflow.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use app::protocol::vocab::{kinds, reasons, FINISH};
use app::protocol::{EventBody, InterruptStatus, WorkflowStatus};
use serde_json::json;

use super::inbox::{Answered, Inbox, Said};
use super::stream::stream;
use crate::error::Result;
use crate::hub::Hub;
use crate::lifecycle::MessageKind;

const AGENT: &str = kinds::ECHO;
const TOOL: &str = "text_stats";
/// A message starting with this asks for approval before the tool runs.
pub const ASK_FIRST: &str = "tool:";
/// The pause between streamed words.
const WORD_PAUSE: Duration = Duration::from_millis(40);

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
                if !answer(hub, id, &mut inbox, &content, round, idle).await? {
                    return Ok(());
                }
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

/// Answer one message; false when the workflow ended (or went idle) while it waited for an
/// approval.
async fn answer(
    hub: &Hub,
    id: &str,
    inbox: &mut Inbox,
    content: &str,
    round: u32,
    idle: Option<Duration>,
) -> Result<bool> {
    let call_id = format!("call-{round}");
    let publish = |body: EventBody| hub.publish_bodies(id, vec![body]);
    publish(status(WorkflowStatus::Running, "echo agent answering")).await?;
    let thought = format!(
        "Reading message {round} ({} characters)…",
        content.chars().count()
    );
    stream(hub, id, AGENT, MessageKind::Thinking, &thought, WORD_PAUSE).await?;
    let ask_first = content.trim_start().strip_prefix(ASK_FIRST);
    let text = ask_first.map_or(content, str::trim);
    publish(EventBody::ToolExecuting {
        agent: AGENT.into(),
        tool: TOOL.into(),
        call_id: call_id.clone(),
        input: json!({ "text": text }),
    })
    .await?;
    let started = Instant::now();
    let approved = match ask_first {
        None => Ok(None),
        Some(_) => match approval(hub, id, inbox, &call_id, text, round, idle).await? {
            Approval::Approved(user) => Ok(Some(user)),
            Approval::Denied(why) => Err(why),
            Approval::Over => return Ok(false),
        },
    };
    let reply = match approved {
        Ok(approver) => {
            let stats = text_stats(text);
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
            let by = approver.map_or(String::new(), |user| format!(", approved by {user}"));
            format!("You said: {text} ({} words{by})", stats["words"])
        }
        Err(why) => {
            publish(EventBody::ToolCompleted {
                agent: AGENT.into(),
                tool: TOOL.into(),
                call_id,
                ok: false,
                output: None,
                error: Some(why.clone()),
                duration_ms: started.elapsed().as_millis() as u64,
            })
            .await?;
            format!("I did not run {TOOL}: {why}.")
        }
    };
    stream(hub, id, AGENT, MessageKind::Text, &reply, WORD_PAUSE).await?;
    publish(waiting()).await?;
    Ok(true)
}

/// What a person said to running the tool.
enum Approval {
    /// By this user.
    Approved(String),
    /// Why not.
    Denied(String),
    /// The workflow ended, or went idle, while it waited.
    Over,
}

/// Ask a person to approve the tool call `call_id` on `text`, and wait for the answer.
async fn approval(
    hub: &Hub,
    id: &str,
    inbox: &mut Inbox,
    call_id: &str,
    text: &str,
    round: u32,
    idle: Option<Duration>,
) -> Result<Approval> {
    let interrupt_id = format!("approve-{round}");
    hub.publish_bodies(
        id,
        vec![
            EventBody::Interrupt {
                agent: AGENT.into(),
                interrupt_id: interrupt_id.clone(),
                reason: reasons::TOOL_APPROVAL.into(),
                message: format!("Run {TOOL} on “{text}”?"),
                call_id: Some(call_id.into()),
                response_schema: Some(json!({
                    "type": "object",
                    "properties": { "approved": { "type": "boolean" } },
                    "required": ["approved"]
                })),
                expires_at: None,
            },
            status(WorkflowStatus::WaitingInput, "waiting for approval"),
        ],
    )
    .await?;
    let answer = match inbox.answer_within(&interrupt_id, idle).await? {
        Answered::Answer(answer) => answer,
        Answered::Ended => return Ok(Approval::Over),
        Answered::Nothing(waited) => {
            hub.publish_bodies(id, vec![Said::idle_end(waited)]).await?;
            return Ok(Approval::Over);
        }
    };
    hub.publish_bodies(
        id,
        vec![status(WorkflowStatus::Running, "echo agent answering")],
    )
    .await?;
    let approved = answer.status == InterruptStatus::Resolved
        && answer.payload.as_ref().and_then(|p| p.get("approved")) == Some(&json!(true));
    let user = answer.user.unwrap_or_else(|| "nobody".into());
    Ok(if approved {
        Approval::Approved(user)
    } else {
        Approval::Denied(format!("denied by {user}"))
    })
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
