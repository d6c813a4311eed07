//! An in-process [`EventStore`]: a map of workflows, each with its log in a `Vec`. Nothing
//! survives a restart; it exists to measure the hub without storage (`--store memory`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use app::protocol::{EventBody, LoggedEvent, WorkflowInfo};

use super::{now_rfc3339, EventStore, IdempotencyKey, NewEvent, StoredEvent};
use crate::error::{LanternError, Result};

/// Take events from `events` for a page: at most `limit`, and while under `max_bytes` of JSON
/// (the first always): a page as `read` promises it.
pub fn page_of<I>(events: I, limit: usize, max_bytes: usize) -> Vec<Arc<StoredEvent>>
where
    I: IntoIterator<Item = Arc<StoredEvent>>,
{
    let mut bytes = 0;
    let mut page = Vec::new();
    for event in events.into_iter().take(limit) {
        if !page.is_empty() && bytes + event.json.len() > max_bytes {
            break;
        }
        bytes += event.json.len();
        page.push(event);
    }
    page
}

#[derive(Default)]
pub struct MemoryStore {
    /// One lock for everything: every operation is a few map lookups and never awaits.
    inner: Mutex<HashMap<String, Workflow>>,
}

struct Workflow {
    info: WorkflowInfo,
    owner: String,
    log: Vec<Arc<StoredEvent>>,
    keys: HashMap<IdempotencyKey, u64>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Workflow>> {
        // A panic while holding this lock cannot leave a map half-updated in a way that
        // matters more than stopping the server would; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl EventStore for MemoryStore {
    async fn insert_workflow(&self, info: WorkflowInfo, owner: &str) -> Result<WorkflowInfo> {
        let workflow = Workflow {
            info: info.clone(),
            owner: owner.to_owned(),
            log: Vec::new(),
            keys: HashMap::new(),
        };
        match self.lock().entry(info.id.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => Err(LanternError::Conflict(format!(
                "workflow id {} is taken",
                info.id
            ))),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(workflow);
                Ok(info)
            }
        }
    }

    async fn workflow(&self, id: &str) -> Result<Option<WorkflowInfo>> {
        Ok(self.lock().get(id).map(|w| w.info.clone()))
    }

    async fn owner(&self, id: &str) -> Result<Option<String>> {
        Ok(self.lock().get(id).map(|w| w.owner.clone()))
    }

    async fn list_workflows(&self, owner: Option<&str>) -> Result<Vec<WorkflowInfo>> {
        let mut all: Vec<WorkflowInfo> = self
            .lock()
            .values()
            .filter(|w| owner.is_none_or(|o| w.owner == o))
            .map(|w| w.info.clone())
            .collect();
        all.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(all)
    }

    async fn append_if(
        &self,
        workflow_id: &str,
        expected_last_seq: Option<u64>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Arc<StoredEvent>>> {
        let mut all = self.lock();
        let workflow = all
            .get_mut(workflow_id)
            .ok_or_else(|| LanternError::WorkflowNotFound(workflow_id.to_owned()))?;
        let last_seq = workflow.info.last_seq;
        if expected_last_seq.is_some_and(|expected| expected != last_seq) {
            return Err(LanternError::LogMoved { last_seq });
        }
        // All or nothing: refused before anything is appended.
        if events.iter().any(|new| {
            new.key
                .as_ref()
                .is_some_and(|k| workflow.keys.contains_key(k))
        }) {
            return Err(LanternError::RetryKeyLogged);
        }
        let ts = now_rfc3339();
        let mut stored = Vec::with_capacity(events.len());
        for new in events {
            let seq = workflow.info.last_seq + 1;
            if let EventBody::WorkflowStatus { status, .. } = &new.body {
                workflow.info.status = *status;
            }
            if let Some(key) = new.key {
                workflow.keys.insert(key, seq);
            }
            let event = StoredEvent::new(&LoggedEvent {
                seq,
                ts: ts.clone(),
                workflow_id: workflow_id.to_owned(),
                body: new.body,
            });
            workflow.info.last_seq = seq;
            workflow.log.push(event.clone());
            stored.push(event);
        }
        workflow.info.updated_at = ts;
        Ok(stored)
    }

    async fn read(
        &self,
        workflow_id: &str,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Arc<StoredEvent>>> {
        let all = self.lock();
        let workflow = all
            .get(workflow_id)
            .ok_or_else(|| LanternError::WorkflowNotFound(workflow_id.to_owned()))?;
        // seq n sits at index n - 1.
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(workflow.log.len());
        let events = workflow.log[start..].iter().cloned();
        Ok(page_of(events, limit, max_bytes))
    }

    async fn open_workflows(&self, owner: &str) -> Result<usize> {
        Ok(self
            .lock()
            .values()
            .filter(|w| w.owner == owner && !w.info.status.is_terminal())
            .count())
    }

    async fn seqs_of_keys(
        &self,
        workflow_id: &str,
        keys: &[&IdempotencyKey],
    ) -> Result<HashMap<IdempotencyKey, u64>> {
        let all = self.lock();
        let Some(workflow) = all.get(workflow_id) else {
            return Ok(HashMap::new());
        };
        Ok(keys
            .iter()
            .filter_map(|key| Some(((*key).clone(), *workflow.keys.get(*key)?)))
            .collect())
    }

    async fn delete_finished_before(&self, cutoff: &str) -> Result<Vec<String>> {
        let mut all = self.lock();
        let old: Vec<String> = all
            .values()
            .filter(|w| w.info.status.is_terminal() && w.info.updated_at.as_str() < cutoff)
            .map(|w| w.info.id.clone())
            .collect();
        for id in &old {
            all.remove(id);
        }
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store::contract::store_contract!(async { ((), MemoryStore::default()) });
}
