//! Workflow kinds made of AG-UI agents (`--agui-agent NAME=URL`, PROTOCOL.md §8 "In").
//!
//! A workflow of kind `NAME` is a conversation with the agent at `URL`, one AG-UI run per turn:
//! each person's message (the first comes with the start) is POSTed as a `RunAgentInput` —
//! `threadId` the workflow's id, `messages` the conversation so far, since AG-UI agents are
//! stateless between runs — and the run's event stream is folded into Lantern events
//! ([`crate::agui::inbound`]) and published as it arrives. A run that ends with interrupts
//! waits for their answers and sends them as the next run's `resume[]`.
//!
//! Nothing but the registered URL is called: redirects are not followed. A cancel (or any
//! terminal status) drops the request in flight, which closes the connection to the agent.
//! Whatever goes wrong with the agent fails the workflow with a [`Failure`] as its `detail`;
//! what was logged before stays.

use std::sync::Arc;
use std::time::Duration;

use app::protocol::{EventBody, InterruptStatus, WorkflowStatus};
use futures::StreamExt;
use serde_json::{json, Value};
use tracing::Instrument;

use super::inbox::{Answered, Inbox, Said};
use crate::agui::events::Event;
use crate::agui::inbound::{Inbound, Malformed, RunEnd};
use crate::config::AguiAgent;
use crate::error::Result;
use crate::hub::Hub;
use crate::sse_client::{chain, SseError};

/// The registered agents, and the one HTTP client that calls them.
pub struct Agents {
    agents: Vec<AguiAgent>,
    client: reqwest::Client,
    /// How long an agent may stay silent before its run fails.
    silence: Duration,
}

impl Agents {
    pub fn new(agents: Vec<AguiAgent>, silence: Duration) -> Self {
        // Only registered URLs are ever called: the client follows no redirect.
        let client = crate::sse_client::client(silence);
        Self {
            agents,
            client,
            silence,
        }
    }

    /// The agent registered as workflow kind `kind`.
    pub fn get(&self, kind: &str) -> Option<&AguiAgent> {
        self.agents.iter().find(|a| a.name == kind)
    }

    /// The registered kinds, in the order they were given.
    pub fn names(&self) -> Vec<String> {
        self.agents.iter().map(|a| a.name.clone()).collect()
    }
}

/// Why an agent's run failed: the failed workflow's `detail`.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("the AG-UI agent {agent} at {url} could not be reached: {error}")]
    Unreachable {
        agent: String,
        url: String,
        error: String,
    },
    #[error("the AG-UI agent {agent} answered HTTP {status}: {body}")]
    Status {
        agent: String,
        status: u16,
        body: String,
    },
    #[error("the AG-UI agent {agent} did not answer with an event stream (content-type {content_type:?})")]
    NotEventStream { agent: String, content_type: String },
    #[error("the AG-UI agent {agent} sent nothing for {secs} s")]
    Silent { agent: String, secs: u64 },
    #[error("the connection to the AG-UI agent {agent} broke mid-run: {error}")]
    Broken { agent: String, error: String },
    #[error("the AG-UI agent {agent} sent a {malformed}")]
    Malformed { agent: String, malformed: Malformed },
    #[error("the AG-UI agent {agent} closed its stream before the run finished")]
    EndedEarly { agent: String },
    #[error("the AG-UI agent {agent} reported an error: {message}")]
    RunError { agent: String, message: String },
}

/// Start the workflow's task. Returns once the task follows the feed, so no message is missed
/// (the first comes right after, from [`super::start`]).
pub async fn spawn(
    hub: Arc<Hub>,
    agents: Arc<Agents>,
    agent: AguiAgent,
    workflow_id: String,
    idle: Option<Duration>,
) -> Result<()> {
    let (feed, _) = hub.feed(&workflow_id, 0).await?;
    let waiting = format!("waiting for a message for {}", agent.name);
    let waiting = status(WorkflowStatus::WaitingInput, &waiting);
    hub.publish_bodies(&workflow_id, vec![waiting]).await?;
    let span = tracing::info_span!("workflow", id = %workflow_id, kind = %agent.name);
    let runner = Runner {
        inbound: Inbound::new(agent.name.clone(), false),
        hub,
        agents,
        agent,
        id: workflow_id,
        messages: Vec::new(),
    };
    let task = async move {
        if let Err(e) = runner.run(Inbox::new(feed), idle).await {
            // A conflict here means the workflow was cancelled under us: nothing to report.
            tracing::debug!(error = %e, "AG-UI workflow stopped");
        }
    };
    tokio::spawn(task.instrument(span));
    Ok(())
}

struct Runner {
    hub: Arc<Hub>,
    agents: Arc<Agents>,
    agent: AguiAgent,
    /// The workflow's id, which is also the AG-UI thread's.
    id: String,
    /// One fold for all the workflow's runs: a resumed run may answer a tool call the run
    /// before it made.
    inbound: Inbound,
    /// The conversation so far, as AG-UI messages: what each run is sent.
    messages: Vec<Value>,
}

/// What came of one run.
enum Ran {
    /// It ended as the agent said.
    Ended(RunEnd),
    /// It failed, and the workflow with it.
    Failed(Failure),
}

impl Runner {
    async fn run(mut self, mut inbox: Inbox, idle: Option<Duration>) -> Result<()> {
        loop {
            let message = match inbox.next_message_within(idle).await? {
                Said::Message(message) if Said::is_finish(&message) => return self.finish().await,
                Said::Message(message) => message,
                Said::Nothing(waited) => {
                    self.publish(vec![Said::idle_end(waited)]).await?;
                    return Ok(());
                }
                Said::Ended => return Ok(()),
            };
            let id = format!("msg_{}", ulid::Ulid::new());
            self.messages
                .push(json!({"id": id, "role": "user", "content": message}));
            let mut resume = Vec::new();
            loop {
                self.publish(vec![status(
                    WorkflowStatus::Running,
                    &format!("{} is working", self.agent.name),
                )])
                .await?;
                let ran = tokio::select! {
                    ran = self.one_run(resume) => ran?,
                    // Cancelled (or failed by the server): dropping the run closes the request.
                    ended = inbox.ended() => return ended,
                };
                self.messages.append(&mut self.inbound.history);
                match ran {
                    Ran::Ended(RunEnd::Finished) => break,
                    Ran::Ended(RunEnd::Interrupted(ids)) => {
                        resume = Vec::new();
                        for interrupt_id in ids {
                            match inbox.answer_within(&interrupt_id, idle).await? {
                                Answered::Answer(answer) => resume.push(json!({
                                    "interruptId": interrupt_id,
                                    "status": match answer.status {
                                        InterruptStatus::Resolved => "resolved",
                                        InterruptStatus::Cancelled => "cancelled",
                                    },
                                    "payload": answer.payload,
                                })),
                                Answered::Ended => return Ok(()),
                                Answered::Nothing(waited) => {
                                    self.publish(vec![Said::idle_end(waited)]).await?;
                                    return Ok(());
                                }
                            }
                        }
                    }
                    Ran::Ended(RunEnd::Failed(message)) => {
                        let agent = self.agent.name.clone();
                        return self.fail(Failure::RunError { agent, message }).await;
                    }
                    Ran::Failed(failure) => return self.fail(failure).await,
                }
            }
        }
    }

    /// One AG-UI run: POST the conversation (and answers), publish what comes back until the
    /// run ends. `Err` only for Lantern's own errors (the workflow ended under us).
    async fn one_run(&mut self, resume: Vec<Value>) -> Result<Ran> {
        let agent = self.agent.name.clone();
        let silence = self.agents.silence;
        let silent = || Failure::Silent {
            agent: agent.clone(),
            secs: silence.as_secs(),
        };
        let mut input = json!({
            "threadId": self.id,
            "runId": format!("run_{}", ulid::Ulid::new()),
            "state": {},
            "messages": self.messages,
            "tools": [],
            "context": [],
            "forwardedProps": {},
        });
        if !resume.is_empty() {
            input["resume"] = Value::Array(resume);
        }
        let request = self
            .agents
            .client
            .post(self.agent.url.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&input)
            .send();
        let response = match tokio::time::timeout(silence, request).await {
            Err(_) => return Ok(Ran::Failed(silent())),
            Ok(Err(error)) => {
                return Ok(Ran::Failed(Failure::Unreachable {
                    agent,
                    url: self.agent.url.to_string(),
                    error: chain(&error),
                }))
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let body = tokio::time::timeout(silence, response.text()).await;
            let body: String = match body {
                Ok(Ok(body)) => body.trim().chars().take(300).collect(),
                _ => String::new(),
            };
            let status = status.as_u16();
            return Ok(Ran::Failed(Failure::Status {
                agent,
                status,
                body,
            }));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !content_type.starts_with("text/event-stream") {
            return Ok(Ran::Failed(Failure::NotEventStream {
                agent,
                content_type,
            }));
        }
        let mut events = Box::pin(crate::sse_client::events(response, silence));
        let mut out = Vec::new();
        loop {
            let sse = match events.next().await {
                None => return Ok(Ran::Failed(Failure::EndedEarly { agent })),
                Some(Ok(sse)) => sse,
                Some(Err(SseError::Silent(_))) => return Ok(Ran::Failed(silent())),
                Some(Err(SseError::Broken(error))) => {
                    return Ok(Ran::Failed(Failure::Broken { agent, error }))
                }
                Some(Err(SseError::Malformed(error))) => {
                    let malformed = Malformed(error);
                    return Ok(Ran::Failed(Failure::Malformed { agent, malformed }));
                }
            };
            let event: Event = match serde_json::from_str(&sse.data) {
                Ok(event) => event,
                Err(error) => {
                    let excerpt: String = sse.data.chars().take(100).collect();
                    let malformed = Malformed(format!("not an AG-UI event ({error}): {excerpt}"));
                    return Ok(Ran::Failed(Failure::Malformed { agent, malformed }));
                }
            };
            let end = match self.inbound.event(event, &mut out) {
                Ok(end) => end,
                Err(malformed) => return Ok(Ran::Failed(Failure::Malformed { agent, malformed })),
            };
            if !out.is_empty() {
                self.publish(std::mem::take(&mut out)).await?;
            }
            if let Some(end) = end {
                if self.inbound.dropped > 0 {
                    tracing::info!(
                        dropped = self.inbound.dropped,
                        "AG-UI events with no Lantern meaning dropped so far"
                    );
                }
                return Ok(Ran::Ended(end));
            }
        }
    }

    async fn publish(&self, bodies: Vec<EventBody>) -> Result<()> {
        self.hub.publish_bodies(&self.id, bodies).await?;
        Ok(())
    }

    async fn fail(&self, failure: Failure) -> Result<()> {
        tracing::warn!(%failure, "AG-UI run failed");
        self.publish(vec![status(WorkflowStatus::Failed, &failure.to_string())])
            .await
    }

    /// A person said the finishing word: the agent's part is done.
    async fn finish(&self) -> Result<()> {
        self.publish(vec![
            EventBody::AgentCompleted {
                agent: self.agent.name.clone(),
                ok: true,
                summary: None,
            },
            status(WorkflowStatus::Completed, "finished by the user"),
        ])
        .await
    }
}

fn status(status: WorkflowStatus, detail: &str) -> EventBody {
    EventBody::WorkflowStatus {
        status,
        detail: Some(detail.into()),
    }
}
