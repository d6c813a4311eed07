//! The server's side of the pages: the [`WorkflowBackend`] that their server functions call,
//! backed by the hub.

use std::sync::Arc;

use app::backend::WorkflowBackend;
use app::protocol::WorkflowInfo;

use crate::hub::Hub;

pub struct HubBackend(pub Arc<Hub>);

#[async_trait::async_trait]
impl WorkflowBackend for HubBackend {
    async fn list_workflows(&self) -> Result<Vec<WorkflowInfo>, String> {
        self.0
            .store()
            .list_workflows()
            .await
            .map_err(|e| e.to_string())
    }

    async fn start_workflow(&self, kind: &str) -> Result<WorkflowInfo, String> {
        crate::workflows::start(&self.0, kind, None)
            .await
            .map_err(|e| e.to_string())
    }

    async fn workflow(&self, id: &str) -> Result<Option<WorkflowInfo>, String> {
        self.0.store().workflow(id).await.map_err(|e| e.to_string())
    }
}
