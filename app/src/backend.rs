//! What the pages need from the server, as a trait: the server crate implements it and puts an
//! [`Backend`] in the Leptos context, so server functions reach the hub without this crate
//! depending on the server.

use std::sync::Arc;

use crate::protocol::{ErrorCode, LoggedEvent, RunSnapshot, WorkflowInfo};

/// The signed-in user a request comes from. The server's auth layer puts it in the request's
/// extensions; server functions read it from there ([`viewer`](crate::server_fns)).
#[derive(Clone, Debug)]
pub struct Viewer {
    pub user: String,
}

/// Why an operation was refused or failed: its protocol code, which sets the HTTP status the
/// server function answers with (a refusal is not a server error), and what to tell the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    pub code: ErrorCode,
    pub message: String,
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The server-side operations behind the pages' server functions, always on behalf of a
/// viewer: they see and change only that user's workflows.
#[async_trait::async_trait]
pub trait WorkflowBackend: Send + Sync + 'static {
    /// The viewer's workflows, newest first.
    async fn list_workflows(&self, viewer: &Viewer) -> Result<Vec<WorkflowInfo>, BackendError>;
    /// Create and start a workflow of a built-in kind, with its input (`search`: the query).
    async fn start_workflow(
        &self,
        viewer: &Viewer,
        kind: &str,
        input: Option<serde_json::Value>,
    ) -> Result<WorkflowInfo, BackendError>;
    /// The kinds the home page's Ask form offers: `assistant` when a model is configured, then
    /// the AG-UI agents' (`--agui-agent NAME=URL`), in order.
    fn agent_kinds(&self) -> Vec<String>;
    /// Cancel one of the viewer's workflows: open tools and agents are closed, status
    /// `cancelled`.
    async fn cancel(&self, viewer: &Viewer, id: &str) -> Result<(), BackendError>;
    /// One of the viewer's workflows with its log so far; `None` when there is no such
    /// workflow or it is someone else's.
    async fn snapshot(
        &self,
        viewer: &Viewer,
        id: &str,
    ) -> Result<Option<RunSnapshot>, BackendError>;
    /// Event `seq` of one of the viewer's workflows; `None` when there is no such event or
    /// workflow, or it is someone else's.
    async fn event(
        &self,
        viewer: &Viewer,
        id: &str,
        seq: u64,
    ) -> Result<Option<LoggedEvent>, BackendError>;
}

/// The handle kept in the Leptos context.
pub type Backend = Arc<dyn WorkflowBackend>;
