//! The server's side of the pages: the [`WorkflowBackend`] that their server functions call,
//! backed by the hub.

use std::sync::Arc;

use app::backend::{BackendError, Viewer, WorkflowBackend};
use app::protocol::{LoggedEvent, RunSnapshot, WorkflowInfo};

use crate::workflows::Builtins;

/// Events read from the store per query while building a snapshot.
const PAGE: usize = 1000;

pub struct HubBackend(pub Arc<Builtins>);

#[async_trait::async_trait]
impl WorkflowBackend for HubBackend {
    async fn list_workflows(&self, viewer: &Viewer) -> Result<Vec<WorkflowInfo>, BackendError> {
        self.0
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
        crate::workflows::start(&self.0, kind, None, input.as_ref(), &viewer.user)
            .await
            .map_err(BackendError::from)
    }

    async fn cancel(&self, viewer: &Viewer, id: &str) -> Result<(), BackendError> {
        let hub = &self.0.hub;
        hub.check_owner(id, &viewer.user).await?;
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
        let store = self.0.hub.store();
        let Some(workflow) = store.workflow(id).await? else {
            return Ok(None);
        };
        let mut events = Vec::new();
        loop {
            let after = events
                .last()
                .map_or(0, |e: &app::protocol::LoggedEvent| e.seq);
            let page = store.read(id, after, PAGE).await?;
            let full = page.len() == PAGE;
            for event in &page {
                events.push(event.event()?);
            }
            if !full {
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
        let page = self.0.hub.store().read(id, seq - 1, 1).await;
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
        match self.0.hub.check_owner(id, &viewer.user).await {
            Ok(()) => Ok(true),
            Err(crate::error::LanternError::WorkflowNotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
