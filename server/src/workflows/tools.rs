//! Running a built-in workflow's tool call: `tool_executing`, the work on a blocking thread
//! with a timeout, then exactly one `tool_completed` with the real duration — `ok: false` with
//! the error when the tool fails, panics or runs out of time. The server is never taken down by
//! a tool: it runs on a thread of its own, where a panic stays.

use std::time::{Duration, Instant};

use app::protocol::EventBody;
use serde_json::Value;

use super::inbox::Inbox;
use crate::error::Result;
use crate::hub::Hub;

/// One call of one tool by one agent.
pub struct ToolCall<'a> {
    pub hub: &'a Hub,
    pub workflow_id: &'a str,
    pub agent: &'a str,
    pub tool: &'a str,
    pub call_id: String,
    pub timeout: Duration,
}

/// How a tool call ended.
pub enum Outcome {
    Done(Value),
    Failed(String),
    /// The workflow ended (e.g. cancelled) while the tool ran; the hub already closed the call.
    WorkflowEnded,
}

impl ToolCall<'_> {
    fn publish_body(
        &self,
        body: EventBody,
    ) -> impl std::future::Future<Output = Result<Vec<u64>>> + '_ {
        self.hub.publish_bodies(self.workflow_id, vec![body])
    }

    /// A progress line for the running call.
    pub async fn progress(&self, message: &str, progress: Option<f64>) -> Result<()> {
        self.publish_body(EventBody::ToolUpdate {
            agent: self.agent.into(),
            tool: self.tool.into(),
            call_id: self.call_id.clone(),
            message: message.into(),
            progress,
        })
        .await?;
        Ok(())
    }

    pub async fn start(&self, input: Value) -> Result<()> {
        self.publish_body(EventBody::ToolExecuting {
            agent: self.agent.into(),
            tool: self.tool.into(),
            call_id: self.call_id.clone(),
            input,
        })
        .await?;
        Ok(())
    }

    /// Run `work` (after [`ToolCall::start`]) and publish how it ended.
    pub async fn run<F>(&self, inbox: &mut Inbox, work: F) -> Result<Outcome>
    where
        F: FnOnce() -> std::result::Result<Value, String> + Send + 'static,
    {
        let started = Instant::now();
        let outcome = tokio::select! {
            finished = tokio::time::timeout(self.timeout, on_own_thread(work)) => match finished {
                Ok(Ok(output)) => Outcome::Done(output),
                Ok(Err(error)) => Outcome::Failed(error),
                // The tool's thread cannot be stopped; it finishes on its own, unobserved.
                Err(_) => Outcome::Failed(format!(
                    "the tool did not finish within {} ms",
                    self.timeout.as_millis()
                )),
            },
            ended = inbox.ended() => {
                ended?;
                return Ok(Outcome::WorkflowEnded);
            }
        };
        let (ok, output, error) = match &outcome {
            Outcome::Done(output) => (true, Some(output.clone()), None),
            Outcome::Failed(error) => (false, None, Some(error.clone())),
            Outcome::WorkflowEnded => return Ok(outcome),
        };
        self.publish_body(EventBody::ToolCompleted {
            agent: self.agent.into(),
            tool: self.tool.into(),
            call_id: self.call_id.clone(),
            ok,
            output,
            error,
            duration_ms: started.elapsed().as_millis() as u64,
        })
        .await?;
        Ok(outcome)
    }
}

/// Run `work` on a thread of its own, turning a panic into an error. Not tokio's blocking pool:
/// a tool that never returns would hold a pool thread, and the runtime waits for those when it
/// shuts down; a detached thread holds nothing but itself.
async fn on_own_thread<F>(work: F) -> std::result::Result<Value, String>
where
    F: FnOnce() -> std::result::Result<Value, String> + Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("lantern-tool".into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or_else(|panic| {
                    Err(format!("the tool panicked: {}", panic_message(panic)))
                });
            // Nobody waiting any more (timed out, cancelled) is fine.
            let _ = done.send(outcome);
        });
    if let Err(e) = spawned {
        return Err(format!("cannot start the tool: {e}"));
    }
    result
        .await
        .unwrap_or_else(|_| Err("the tool stopped without an answer".into()))
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
