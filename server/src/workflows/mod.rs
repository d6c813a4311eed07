//! Built-in workflow kinds. Each runs as a tokio task that talks to the hub like any agent: it
//! publishes events and follows the workflow's log for user input ([`inbox`]). The task
//! outlives its viewers: closing every browser does not stop it.
//!
//! - [`echo`]: interactive; answers each input with streamed thinking, a small tool call and a
//!   streamed reply; asks for approval first when the message starts with `tool:`.
//! - [`search`]: analyze → search → synthesize → report over the [`corpus`], with follow-ups.
//! - [`assistant`]: a research assistant on an OpenAI-compatible model, when one is configured:
//!   streamed answers and reasoning, tools (`search_docs`, `ask_user`), approvals.
//! - [`agui_agent`]: the kinds `--agui-agent NAME=URL` registers: a conversation with an AG-UI
//!   agent, one AG-UI run per message.
//! - [`tools`]: running a tool call (timeout, panic → `ok: false`). [`inbox`]: user input and
//!   answers to interrupts. [`stream`]: streaming a message word by word.

pub mod agui_agent;
pub mod assistant;
pub mod corpus;
pub mod echo;
pub mod inbox;
pub mod search;
pub mod stream;
pub mod tools;

use std::sync::Arc;
use std::time::Duration;

use app::protocol::{vocab::kinds, EventBody, WorkflowInfo};
use serde_json::Value;

use crate::error::{LanternError, Result};
use crate::hub::Hub;

/// Longest `search` query.
const MAX_QUERY_CHARS: usize = 1000;

/// What the built-in workflows run with.
pub struct Builtins {
    pub hub: Arc<Hub>,
    /// The documents `search` looks in.
    pub corpus: Arc<corpus::Corpus>,
    /// How long one tool call may run before it is failed.
    pub tool_timeout: Duration,
    /// How long a built-in workflow waits for a person's next message before it finishes by
    /// itself; `None`: forever.
    pub idle: Option<Duration>,
    /// Lets tests make a tool panic or stall (see [`search::TEST_PANIC`]).
    pub test_hooks: bool,
    /// The AG-UI agents registered as workflow kinds.
    pub agui: Arc<agui_agent::Agents>,
    /// The `assistant`, when a model is configured.
    pub assistant: Option<Arc<assistant::Assistant>>,
}

impl Builtins {
    /// Publish one event of workflow `id`.
    pub async fn publish(&self, id: &str, body: EventBody) -> Result<()> {
        self.hub.publish_bodies(id, vec![body]).await?;
        Ok(())
    }

    /// Does a workflow of `kind` take messages after it starts (not only at its start)?
    pub fn takes_input(&self, kind: &str) -> bool {
        kind == kinds::ECHO || kind == kinds::ASSISTANT || self.agui.get(kind).is_some()
    }

    /// Every kind `POST /api/workflows` accepts: the built-in ones and the registered agents.
    pub fn kinds(&self) -> Vec<String> {
        let mut all: Vec<String> = kinds::ALL.iter().map(|k| (*k).to_owned()).collect();
        all.extend(self.assistant.iter().map(|_| kinds::ASSISTANT.to_owned()));
        all.extend(self.agui.names());
        all
    }
}

/// The `query` of a `search` workflow's input.
fn search_query(input: Option<&Value>) -> Result<String> {
    let query = input
        .and_then(|i| i.get("query"))
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    if query.is_empty() {
        return Err(LanternError::BadRequest(
            "a search needs input {\"query\":\"...\"}".into(),
        ));
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(LanternError::BadRequest(format!(
            "a query is at most {MAX_QUERY_CHARS} characters"
        )));
    }
    Ok(query.to_owned())
}

/// The `message` of an AG-UI agent workflow's input, if any (without one, the workflow waits
/// for the first).
fn agent_message(input: Option<&Value>) -> Result<Option<String>> {
    match input.and_then(|i| i.get("message")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(m)) if !m.trim().is_empty() => Ok(Some(m.trim().to_owned())),
        Some(_) => Err(LanternError::BadRequest(
            "input.message must be a non-empty string".into(),
        )),
    }
}

/// A workflow's title from its first message: the first line, at most 80 characters.
fn title_of(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    let mut title: String = line.chars().take(80).collect();
    if title.len() < line.len() {
        title.push('…');
    }
    title
}

/// Wait until a just-started workflow `id` first waits for input (its first
/// `waiting_input`), so a first message it is sent starts a turn of its own. At most 10 s.
pub async fn ready_for_input(hub: &Hub, id: &str) -> Result<()> {
    let (mut feed, _) = hub.feed(id, 0).await?;
    let waiting = async {
        while let Some(event) = feed.next().await? {
            if let Ok(logged) = event.event() {
                if let EventBody::WorkflowStatus { status, .. } = logged.body {
                    if status == app::protocol::WorkflowStatus::WaitingInput || status.is_terminal()
                    {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap_or(Ok(()))
}

/// Create a workflow of `kind` for user `owner` and start it if it is built in. Its id is
/// `id` when given (an AG-UI thread's; taken: `conflict`), else a fresh one.
pub async fn start(
    builtins: &Arc<Builtins>,
    kind: &str,
    title: Option<String>,
    input: Option<&Value>,
    owner: &str,
    id: Option<String>,
) -> Result<WorkflowInfo> {
    let hub = &builtins.hub;
    let create = |title: Option<String>| {
        let mut info = crate::store::new_workflow(kind, title);
        if let Some(id) = id.clone() {
            info.id = id;
        }
        async move {
            let info = hub.create_as(info, owner).await?;
            if kind != kinds::EXTERNAL {
                // Recorded before its task starts: should this node die, another fails it.
                hub.run_started(&info.id);
            }
            Ok::<_, LanternError>(info)
        }
    };
    match kind {
        kinds::EXTERNAL => create(title).await,
        kinds::ECHO => {
            let info = create(title.or_else(|| Some("Echo".into()))).await?;
            echo::spawn(hub.clone(), info.id.clone(), builtins.idle).await?;
            Ok(info)
        }
        kinds::SEARCH => {
            let query = search_query(input)?;
            let info = create(title.or_else(|| Some(query.clone()))).await?;
            search::spawn(builtins.clone(), info.id.clone(), query).await?;
            Ok(info)
        }
        kinds::ASSISTANT => {
            let Some(assistant) = builtins.assistant.clone() else {
                return Err(LanternError::BadRequest(
                    "the assistant needs a model: start Lantern with --llm-base-url URL \
                     --llm-model NAME (docs/LLM.md)"
                        .into(),
                ));
            };
            let message = agent_message(input)?;
            let title = title.or_else(|| message.as_deref().map(title_of));
            let info = create(title).await?;
            assistant::spawn(builtins.clone(), assistant, info.id.clone()).await?;
            if let Some(message) = message {
                let client_msg_id = format!("{}-start", info.id);
                hub.submit_input(&info.id, owner, message, client_msg_id)
                    .await?;
            }
            Ok(info)
        }
        other => {
            let Some(agent) = builtins.agui.get(other) else {
                return Err(LanternError::BadRequest(format!(
                    "unknown workflow kind {other:?}; known kinds: {}",
                    builtins.kinds().join(", ")
                )));
            };
            let message = agent_message(input)?;
            let title = title.or_else(|| message.as_deref().map(title_of));
            let info = create(title).await?;
            let agents = builtins.agui.clone();
            let (id, agent) = (info.id.clone(), agent.clone());
            agui_agent::spawn(hub.clone(), agents, agent, id, builtins.idle).await?;
            if let Some(message) = message {
                // The first turn, logged like any other (so the page and the history show it).
                let client_msg_id = format!("{}-start", info.id);
                hub.submit_input(&info.id, owner, message, client_msg_id)
                    .await?;
            }
            Ok(info)
        }
    }
}
