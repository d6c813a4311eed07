//! What the pages need from the server, as a trait: the server crate implements it and puts an
//! [`Backend`] in the Leptos context, so server functions reach the hub without this crate
//! depending on the server.

use std::sync::Arc;

use crate::protocol::{RunSnapshot, WorkflowInfo};

/// The server-side operations behind the pages' server functions.
#[async_trait::async_trait]
pub trait WorkflowBackend: Send + Sync + 'static {
    /// The caller's workflows, newest first.
    async fn list_workflows(&self) -> Result<Vec<WorkflowInfo>, String>;
    /// Create and start a workflow of a built-in kind.
    async fn start_workflow(&self, kind: &str) -> Result<WorkflowInfo, String>;
    /// One workflow with its log so far, or `None` when there is no such workflow.
    async fn snapshot(&self, id: &str) -> Result<Option<RunSnapshot>, String>;
}

/// The handle kept in the Leptos context.
pub type Backend = Arc<dyn WorkflowBackend>;
