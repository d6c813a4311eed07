//! Which agents are connected to a workflow, and the grace period a running workflow gives its
//! last agent to come back (PROTOCOL.md §3): no agent back by its end and the workflow is
//! closed and marked `failed`, once.

use std::sync::Arc;

use app::protocol::{EventBody, WorkflowStatus};

use super::workflow::LiveWorkflow;
use super::Hub;
use crate::error::{LanternError, Result};

/// The agents connected to one workflow.
#[derive(Default)]
pub(super) struct AgentPresence {
    connected: usize,
    /// Bumped by every connect: a grace timer started before it is void.
    generation: u64,
}

/// One connected agent socket; dropping it (the socket ended) starts the grace period when it
/// was the workflow's last agent.
pub struct AgentGuard {
    hub: Arc<Hub>,
    workflow: Arc<LiveWorkflow>,
}

impl Drop for AgentGuard {
    fn drop(&mut self) {
        let generation = {
            let mut presence = self.workflow.presence();
            presence.connected = presence.connected.saturating_sub(1);
            if let Some(cluster) = self.hub.presence.get() {
                // The cluster decides whether this was the last agent anywhere.
                cluster.agent_left(&self.workflow.id);
                return;
            }
            if presence.connected > 0 {
                return;
            }
            presence.generation
        };
        // No runtime: the server itself is being torn down; nothing is left to wait for.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let hub = self.hub.clone();
        let workflow = self.workflow.clone();
        runtime.spawn(async move { hub.grace_period(workflow, generation).await });
    }
}

impl Hub {
    /// An agent connected to workflow `id`; keep the guard for as long as its socket lives.
    /// Also returns the `seq` through which inputs have been answered.
    pub async fn agent_connected(self: &Arc<Self>, id: &str) -> Result<(AgentGuard, u64)> {
        let workflow = self.live(id).await?;
        {
            let mut presence = workflow.presence();
            presence.connected += 1;
            presence.generation += 1;
        }
        if let Some(cluster) = self.presence.get() {
            cluster.agent_joined(id);
        }
        let answered = workflow.answered_through();
        let guard = AgentGuard {
            hub: self.clone(),
            workflow,
        };
        Ok((guard, answered))
    }

    /// Wait out the grace period; if no agent came back meanwhile (and the workflow has not
    /// finished), close what is open with `ok: false` and mark the workflow `failed`.
    async fn grace_period(self: Arc<Self>, workflow: Arc<LiveWorkflow>, generation: u64) {
        tokio::time::sleep(self.settings.agent_grace).await;
        {
            let presence = workflow.presence();
            if presence.connected > 0 || presence.generation != generation {
                return;
            }
        }
        let status = EventBody::WorkflowStatus {
            status: WorkflowStatus::Failed,
            detail: Some(format!(
                "the agent disconnected and did not come back within {} s",
                self.settings.agent_grace.as_secs()
            )),
        };
        match self.publish_bodies(&workflow.id, vec![status]).await {
            // Conflict: it finished meanwhile; not found: it was deleted. Nothing to do.
            Ok(_) | Err(LanternError::Conflict(_)) | Err(LanternError::WorkflowNotFound(_)) => {}
            Err(e) => tracing::error!(error = %e, workflow = %workflow.id, "grace period"),
        }
    }

    /// The workflows this node has agent sockets of, with how many.
    pub fn local_agents(&self) -> Vec<(String, usize)> {
        let live: Vec<Arc<LiveWorkflow>> = self.live_map().values().cloned().collect();
        live.into_iter()
            .filter_map(|w| {
                let connected = w.presence().connected;
                (connected > 0).then(|| (w.id.clone(), connected))
            })
            .collect()
    }

    /// After a restart: external workflows that were under way (not finished, something
    /// published) give their agents the grace period to reconnect.
    pub async fn await_returning_agents(self: &Arc<Self>) -> Result<usize> {
        let mut waiting = 0;
        for info in self.store.list_workflows(None).await? {
            if info.kind != app::protocol::vocab::kinds::EXTERNAL
                || info.status.is_terminal()
                || info.last_seq == 0
            {
                continue;
            }
            let workflow = self.live(&info.id).await?;
            let generation = workflow.presence().generation;
            tokio::spawn(self.clone().grace_period(workflow, generation));
            waiting += 1;
        }
        Ok(waiting)
    }
}
