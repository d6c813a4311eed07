//! Built-in workflow kinds. Each runs as a tokio task that talks to the hub like any agent:
//! it publishes events and follows the workflow's feed for user input.
//!
//! - [`echo`]: interactive; answers each input with thinking, a small tool call and a reply.

pub mod echo;

use std::sync::Arc;

use app::protocol::WorkflowInfo;

use crate::error::{LanternError, Result};
use crate::hub::Hub;

/// The kinds `POST /api/workflows` accepts.
pub const KINDS: &[&str] = &["echo", "external"];

/// Create a workflow of `kind` for user `owner` and start it if it is built in.
pub async fn start(
    hub: &Arc<Hub>,
    kind: &str,
    title: Option<String>,
    owner: &str,
) -> Result<WorkflowInfo> {
    match kind {
        "external" => hub.create(kind, title, owner).await,
        "echo" => {
            let info = hub
                .create(kind, title.or_else(|| Some("Echo".into())), owner)
                .await?;
            echo::spawn(hub.clone(), info.id.clone()).await?;
            Ok(info)
        }
        other => Err(LanternError::BadRequest(format!(
            "unknown workflow kind {other:?}; known kinds: {}",
            KINDS.join(", ")
        ))),
    }
}
