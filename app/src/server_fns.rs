//! Server functions the pages call. On the server they reach the hub through the
//! [`Backend`](crate::backend::Backend) in context; in the browser they are HTTP calls.

use leptos::prelude::*;

use crate::protocol::{RunSnapshot, WorkflowInfo};

#[cfg(feature = "ssr")]
fn backend() -> Result<crate::backend::Backend, ServerFnError> {
    use_context::<crate::backend::Backend>()
        .ok_or_else(|| ServerFnError::new("the server has no workflow backend"))
}

/// The user's workflows, newest first.
#[server]
pub async fn list_workflows() -> Result<Vec<WorkflowInfo>, ServerFnError> {
    backend()?
        .list_workflows()
        .await
        .map_err(ServerFnError::new)
}

/// Start a built-in `echo` workflow.
#[server]
pub async fn start_echo() -> Result<WorkflowInfo, ServerFnError> {
    backend()?
        .start_workflow("echo")
        .await
        .map_err(ServerFnError::new)
}

/// One workflow and its log so far; `None` when it does not exist.
#[server]
pub async fn get_snapshot(id: String) -> Result<Option<RunSnapshot>, ServerFnError> {
    backend()?.snapshot(&id).await.map_err(ServerFnError::new)
}
