//! Built-in workflow kinds. Each runs as a tokio task that talks to the hub like any agent: it
//! publishes events and follows the workflow's log for user input ([`inbox`]). The task
//! outlives its viewers: closing every browser does not stop it.
//!
//! - [`echo`]: interactive; answers each input with streamed thinking, a small tool call and a
//!   streamed reply; asks for approval first when the message starts with `tool:`.
//! - [`search`]: analyze → search → synthesize → report over the [`corpus`], with follow-ups.
//! - [`tools`]: running a tool call (timeout, panic → `ok: false`). [`inbox`]: user input and
//!   answers to interrupts. [`stream`]: streaming a message word by word.

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
}

impl Builtins {
    /// Publish one event of workflow `id`.
    pub async fn publish(&self, id: &str, body: EventBody) -> Result<()> {
        self.hub.publish_bodies(id, vec![body]).await?;
        Ok(())
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

/// Create a workflow of `kind` for user `owner` and start it if it is built in.
pub async fn start(
    builtins: &Arc<Builtins>,
    kind: &str,
    title: Option<String>,
    input: Option<&Value>,
    owner: &str,
) -> Result<WorkflowInfo> {
    let hub = &builtins.hub;
    match kind {
        kinds::EXTERNAL => hub.create(kind, title, owner).await,
        kinds::ECHO => {
            let info = hub
                .create(kind, title.or_else(|| Some("Echo".into())), owner)
                .await?;
            echo::spawn(hub.clone(), info.id.clone(), builtins.idle).await?;
            Ok(info)
        }
        kinds::SEARCH => {
            let query = search_query(input)?;
            let info = hub
                .create(kind, title.or_else(|| Some(query.clone())), owner)
                .await?;
            search::spawn(builtins.clone(), info.id.clone(), query).await?;
            Ok(info)
        }
        other => Err(LanternError::BadRequest(format!(
            "unknown workflow kind {other:?}; known kinds: {}",
            kinds::ALL.join(", ")
        ))),
    }
}
