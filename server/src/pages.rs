//! The server's side of the pages: the [`WorkflowBackend`] that their server functions call,
//! backed by the hub.

use app::protocol::vocab::kinds;
use std::sync::Arc;

use app::backend::{BackendError, Viewer, WorkflowBackend};
use app::protocol::{LoggedEvent, RunSnapshot, WorkflowInfo};

use crate::limits::WriteLimits;
use crate::workflows::Builtins;

/// Events read from the store per query while building a snapshot.
const PAGE: usize = 1000;
/// Most bytes of event JSON a run page's snapshot carries (and at most [`SNAPSHOT_EVENTS`]
/// events): the page is rendered from it and carries it again as the live view's props, so a
/// log of huge events must not come whole. The page's socket replays the rest with `after`.
const SNAPSHOT_BYTES: usize = 1024 * 1024;
const SNAPSHOT_EVENTS: usize = 5000;

pub struct HubBackend {
    pub builtins: Arc<Builtins>,
    /// A page's start and cancel are writes like the API's, and count alike.
    pub write_limits: Arc<WriteLimits>,
}

#[async_trait::async_trait]
impl WorkflowBackend for HubBackend {
    async fn list_workflows(&self, viewer: &Viewer) -> Result<Vec<WorkflowInfo>, BackendError> {
        self.builtins
            .hub
            .store()
            .list_workflows(Some(&viewer.user))
            .await
            .map_err(BackendError::from)
    }

    async fn start_workflow(
        &self,
        viewer: &Viewer,
        kind: &str,
        input: Option<serde_json::Value>,
    ) -> Result<WorkflowInfo, BackendError> {
        self.write_limits.check_user(&viewer.user)?;
        crate::workflows::start(
            &self.builtins,
            kind,
            None,
            input.as_ref(),
            &viewer.user,
            None,
        )
        .await
        .map_err(BackendError::from)
    }

    fn agent_kinds(&self) -> Vec<String> {
        let assistant = self
            .builtins
            .assistant
            .as_ref()
            .map(|_| kinds::ASSISTANT.to_owned());
        assistant
            .into_iter()
            .chain(self.builtins.agui.names())
            .collect()
    }

    async fn cancel(&self, viewer: &Viewer, id: &str) -> Result<(), BackendError> {
        let hub = &self.builtins.hub;
        hub.check_owner(id, &viewer.user).await?;
        self.write_limits.check_user(&viewer.user)?;
        hub.cancel(id).await.map(|_| ()).map_err(BackendError::from)
    }

    async fn snapshot(
        &self,
        viewer: &Viewer,
        id: &str,
    ) -> Result<Option<RunSnapshot>, BackendError> {
        if !self.owns(viewer, id).await? {
            return Ok(None);
        }
        let store = self.builtins.hub.store();
        let Some(workflow) = store.workflow(id).await? else {
            return Ok(None);
        };
        // The log's beginning, contiguous: the page folds its picture of the run from the first
        // event on, in order, so what comes with the page is where that fold starts.
        let mut events = Vec::new();
        let mut bytes = 0;
        while events.len() < SNAPSHOT_EVENTS && bytes < SNAPSHOT_BYTES {
            let after = events
                .last()
                .map_or(0, |e: &app::protocol::LoggedEvent| e.seq);
            let limit = PAGE.min(SNAPSHOT_EVENTS - events.len());
            let page = store.read(id, after, limit, SNAPSHOT_BYTES - bytes).await?;
            if page.is_empty() || (bytes > 0 && page[0].json.len() > SNAPSHOT_BYTES - bytes) {
                break;
            }
            let read = page.len();
            for event in &page {
                bytes += event.json.len();
                events.push(event.event()?);
            }
            // Fewer than asked for: the log's end, or the budget's. Either way, no more.
            if read < limit {
                break;
            }
        }
        Ok(Some(RunSnapshot { workflow, events }))
    }

    async fn event(
        &self,
        viewer: &Viewer,
        id: &str,
        seq: u64,
    ) -> Result<Option<LoggedEvent>, BackendError> {
        if seq == 0 || !self.owns(viewer, id).await? {
            return Ok(None);
        }
        let page = self
            .builtins
            .hub
            .store()
            .read(id, seq - 1, 1, usize::MAX)
            .await;
        let found = page?.into_iter().next();
        found
            .filter(|event| event.seq() == seq)
            .map(|event| event.event().map_err(BackendError::from))
            .transpose()
    }
}

impl HubBackend {
    /// Whether `id` is one of the viewer's workflows; another user's answers like a missing one.
    async fn owns(&self, viewer: &Viewer, id: &str) -> Result<bool, BackendError> {
        match self.builtins.hub.check_owner(id, &viewer.user).await {
            Ok(()) => Ok(true),
            Err(crate::error::LanternError::WorkflowNotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
