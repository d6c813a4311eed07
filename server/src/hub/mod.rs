//! Live workflows: the one path every event takes on its way into the log, and the ways it is
//! read out again.
//!
//! Every producer (built-in workflows, agents, HTTP ingest, user input) goes through
//! [`Hub::publish`]: under the workflow's writer lock, [`plan`] checks the request against the
//! §1 invariants ([`crate::lifecycle`]) → the store appends it (assigns `seq`, serializes once,
//! and refuses a batch holding a retry key it has logged: then the keys are looked up and the
//! batch is planned again without the logged ones) → the stored events go to the workflow's
//! tail and are queued on each live viewer ([`tail`]) → readers waiting for more are woken.
//! Appends to one workflow are totally ordered, so every reader sees `seq` order.
//!
//! - [`workflow`]: one live workflow's state. [`plan`]: checking a request (pure).
//! - [`tail`]: recent events in memory and the live viewers. [`presence`]: agents and the grace
//!   period.
//! - [`Feed`]: a reader pulling events in order (built-ins, agents' inputs).
//! - [`Subscription`]: a viewer catching up, then handed over to the appender.

mod feed;
mod plan;
mod presence;
mod subscription;
mod tail;
mod workflow;

pub use feed::Feed;
pub use presence::AgentGuard;
pub use subscription::{Catchup, Subscription};
pub use tail::LiveViewer;
pub use workflow::LiveWorkflow;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::protocol::{
    AgentEvent, EventBody, InterruptStatus, WorkflowInfo, WorkflowStatus, MAX_INPUT_BYTES,
};
use tokio::sync::{broadcast, watch};

use crate::error::{LanternError, Result};
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::store::{EventStore, IdempotencyKey, StoredEvent};
use plan::{plan, Plan, Slot};

/// How many list changes a workflow-list stream may be behind before it re-reads the list.
const LIST_CHANGES_CAPACITY: usize = 256;
/// How long a running workflow waits for its agent to come back by default (PROTOCOL.md §3).
pub const DEFAULT_AGENT_GRACE: Duration = Duration::from_secs(30);
/// How many times one append is checked again because other nodes appended meanwhile, before
/// it fails (each time, the newer events are folded in first: only a workflow appended to
/// faster than one node can catch up gets here).
const MAX_LOG_MOVES: u32 = 64;
/// How often idle workflows are looked for ([`Hub::sweep_idle`]).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What the hub enforces, from the configuration.
#[derive(Clone, Debug)]
pub struct HubSettings {
    /// How long a running workflow waits for its agent to come back.
    pub agent_grace: Duration,
    /// Largest log, in bytes of JSON; 0 = no limit.
    pub max_log_bytes: u64,
    /// Workflows one user may have open at once; 0 = no limit.
    pub max_open_workflows: u32,
    /// Other nodes append to the same store (Redis): an append that finds the log moved on, or
    /// that a stale view refuses, is checked again after folding in the newer events.
    pub shared_store: bool,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            agent_grace: DEFAULT_AGENT_GRACE,
            max_log_bytes: 0,
            max_open_workflows: 0,
            shared_store: false,
        }
    }
}

/// A workflow was created or its status changed: what the live workflow lists
/// (`/sse/workflows`) send, read once here and shared by every listener.
#[derive(Clone, Debug)]
pub struct ListChange {
    /// Only the owner's lists are told.
    pub owner: Arc<str>,
    pub workflow: Arc<WorkflowInfo>,
}

/// A person's answer to an interrupt: the `resolve` frame (§2) or its HTTP twin (§5).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Answer {
    #[serde(default)]
    pub interrupt_id: String,
    pub status: InterruptStatus,
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    pub client_msg_id: String,
}

/// A viewer's place on a workflow's live list; dropping it takes the viewer off.
pub struct LiveGuard {
    workflow: Arc<LiveWorkflow>,
    id: u64,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.workflow.tail().remove_viewer(self.id);
    }
}

pub struct Hub {
    /// This hub's own `Arc`, for the appends that must run to their end in a task of their
    /// own (see [`Hub::append_checked`]).
    me: std::sync::Weak<Hub>,
    store: Arc<dyn EventStore>,
    /// Workflows that can still change and were touched since the server started (or since
    /// they were last swept). A std mutex: never held across an await.
    live: Mutex<HashMap<String, Arc<LiveWorkflow>>>,
    /// Bumped to make every subscriber socket drop its connection at once, as a network fault
    /// would (test hook; see `config.test_hooks`).
    disconnect: watch::Sender<u64>,
    settings: HubSettings,
    /// Held while a workflow is counted and created, so two creations cannot both pass the
    /// open-workflow limit.
    creating: tokio::sync::Mutex<()>,
    /// Appends counted and timed here; the transports count the rest.
    metrics: Arc<Metrics>,
    /// Workflows created or whose status changed, for the live workflow lists.
    list_changes: broadcast::Sender<ListChange>,
    /// Where this node's appends are announced to the other nodes on the same store (none for
    /// a single node). Set once, after the hub is built (the broker's tasks need the hub).
    broker: std::sync::OnceLock<Arc<dyn crate::cluster::Broker>>,
    /// Where this node records its agents and built-in runs for the cluster (none for a single
    /// node, whose grace periods are timers of its own).
    presence: std::sync::OnceLock<Arc<dyn crate::cluster::Presence>>,
}

/// The `seq` of each slot of a request whose batch starts at `offset` of `stored`.
fn seqs_of(slots: Vec<Slot>, stored: &[Arc<StoredEvent>], offset: usize) -> Vec<u64> {
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Existing(seq) => seq,
            Slot::InBatch(at) => stored[offset + at].seq(),
        })
        .collect()
}

/// A plan carried out: its slots, and the events as stored.
struct Appended {
    slots: Vec<Slot>,
    stored: Vec<Arc<StoredEvent>>,
    status_changes: bool,
}

impl Hub {
    pub fn new(store: Arc<dyn EventStore>) -> Arc<Self> {
        Self::build(store, HubSettings::default(), Metrics::new())
    }

    pub fn build(
        store: Arc<dyn EventStore>,
        settings: HubSettings,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            store,
            live: Mutex::default(),
            disconnect: watch::Sender::new(0),
            settings,
            creating: tokio::sync::Mutex::new(()),
            metrics,
            list_changes: broadcast::channel(LIST_CHANGES_CAPACITY).0,
            broker: std::sync::OnceLock::new(),
            presence: std::sync::OnceLock::new(),
        })
    }

    /// Record agents and built-in runs in `presence` from now on (once; a second is ignored):
    /// grace periods are then the cluster's, not this node's timers.
    pub fn set_presence(&self, presence: Arc<dyn crate::cluster::Presence>) {
        let _ = self.presence.set(presence);
    }

    /// Does this node share its grace periods with a cluster?
    pub fn in_cluster(&self) -> bool {
        self.presence.get().is_some()
    }

    /// This node runs built-in workflow `id` (recorded for the cluster: if the node dies, the
    /// others fail it).
    pub fn run_started(&self, id: &str) {
        if let Some(presence) = self.presence.get() {
            presence.run_started(id);
        }
    }

    /// Announce this node's appends through `broker` from now on (once; a second is ignored).
    pub fn set_broker(&self, broker: Arc<dyn crate::cluster::Broker>) {
        let _ = self.broker.set(broker);
    }

    /// Does this node hold workflow `id` live (someone here may be following it)?
    pub fn holds(&self, id: &str) -> bool {
        self.live_map().contains_key(id)
    }

    /// The workflows this node holds live.
    pub fn live_ids(&self) -> Vec<String> {
        self.live_map().keys().cloned().collect()
    }

    fn live_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveWorkflow>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Workflows created or whose status changed from now on. A receiver that lags must
    /// re-read the whole list (it cannot know what it missed).
    pub fn list_changes(&self) -> broadcast::Receiver<ListChange> {
        self.list_changes.subscribe()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Workflows held live (touched since the server started, not finished, not swept).
    pub fn active_workflows(&self) -> usize {
        self.live_map().len()
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Register a workflow of user `owner` and make it live. Starting built-in kinds is the
    /// caller's job. A user with as many open workflows as the limit allows is
    /// `rate_limited`.
    pub async fn create(
        &self,
        kind: &str,
        title: Option<String>,
        owner: &str,
    ) -> Result<WorkflowInfo> {
        self.create_as(crate::store::new_workflow(kind, title), owner)
            .await
    }

    /// As [`Hub::create`], for a workflow made by [`crate::store::new_workflow`] whose id the
    /// caller may have chosen; an id that is taken is `conflict`.
    pub async fn create_as(&self, info: WorkflowInfo, owner: &str) -> Result<WorkflowInfo> {
        let _one_at_a_time = self.creating.lock().await;
        let max = self.settings.max_open_workflows;
        if max > 0 && self.store.open_workflows(owner).await? >= max as usize {
            return Err(LanternError::RateLimited(format!(
                "too many open workflows (at most {max}); finish or cancel one first"
            )));
        }
        let info = self.store.insert_workflow(info, owner).await?;
        let owner: Arc<str> = owner.into();
        let workflow = LiveWorkflow::new(&info.id, owner.clone(), Lifecycle::default(), 0, 0, 0);
        self.live_map().entry(info.id.clone()).or_insert(workflow);
        let _ = self.list_changes.send(ListChange {
            owner,
            workflow: Arc::new(info.clone()),
        });
        Ok(info)
    }

    /// Ok when workflow `id` exists and belongs to `user`. Anything else is `WorkflowNotFound`,
    /// the same answer for a workflow that does not exist and one that is someone else's, so
    /// an id reveals nothing.
    pub async fn check_owner(&self, id: &str, user: &str) -> Result<()> {
        match self.store.owner(id).await? {
            Some(owner) if owner == user => Ok(()),
            _ => Err(LanternError::WorkflowNotFound(id.to_owned())),
        }
    }

    /// The live workflow `id`, rebuilt from its log if the hub does not hold it (a finished
    /// one is rebuilt for the caller alone, not kept).
    pub async fn live(&self, id: &str) -> Result<Arc<LiveWorkflow>> {
        if let Some(found) = self.live_map().get(id) {
            return Ok(found.clone());
        }
        let Some(owner) = self.store.owner(id).await? else {
            return Err(LanternError::WorkflowNotFound(id.to_owned()));
        };
        let mut lifecycle = Lifecycle::default();
        let (mut answered, mut after, mut bytes) = (0, 0, 0u64);
        loop {
            let page = self
                .store
                .read(id, after, feed::READ_PAGE, feed::READ_BYTES)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq();
            for event in &page {
                bytes += event.json.len() as u64;
                if !event.is_input() {
                    answered = event.seq();
                }
                lifecycle.apply(&event.event()?.body);
            }
        }
        let finished = lifecycle.is_finished();
        let workflow = LiveWorkflow::new(id, owner.into(), lifecycle, answered, after, bytes);
        if finished {
            // Nothing will be appended: readers need nothing shared, and the map keeps only
            // workflows that can still change.
            return Ok(workflow);
        }
        Ok(self
            .live_map()
            .entry(id.to_owned())
            .or_insert(workflow)
            .clone())
    }

    /// Publish producer events (agent socket, HTTP ingest, built-in workflows) as one
    /// all-or-nothing batch. Returns each event's `seq`, in order; a retried `id` gets the
    /// `seq` it was first appended at. A terminal `workflow_status` first closes whatever is
    /// still open.
    pub async fn publish(&self, id: &str, events: Vec<AgentEvent>) -> Result<Vec<u64>> {
        let items = events
            .into_iter()
            .map(|e| (e.id.map(IdempotencyKey::EventId), e.body))
            .collect();
        self.append_checked(id, items).await
    }

    /// Publish plain bodies (built-in workflows have no retry keys).
    pub async fn publish_bodies(&self, id: &str, bodies: Vec<EventBody>) -> Result<Vec<u64>> {
        self.append_checked(id, bodies.into_iter().map(|b| (None, b)).collect())
            .await
    }

    /// Append a user's input; a repeated `client_msg_id` returns the original `seq`.
    pub async fn submit_input(
        &self,
        id: &str,
        user: &str,
        content: String,
        client_msg_id: String,
    ) -> Result<u64> {
        if content.len() > MAX_INPUT_BYTES {
            return Err(LanternError::BadRequest(format!(
                "content is {} bytes; at most {MAX_INPUT_BYTES} are allowed",
                content.len()
            )));
        }
        if client_msg_id.is_empty() {
            return Err(LanternError::BadRequest(
                "client_msg_id must not be empty".into(),
            ));
        }
        let key = IdempotencyKey::ClientMsgId(client_msg_id.clone());
        let body = EventBody::UserInput {
            content,
            user: user.to_owned(),
            client_msg_id,
        };
        let seqs = self.append_checked(id, vec![(Some(key), body)]).await?;
        seqs.first()
            .copied()
            .ok_or_else(|| LanternError::Storage("empty append".into()))
    }

    /// A person's answer to an open interrupt, appended as `interrupt_resolved` by `user`. The
    /// first answer wins: a second one (or one past the interrupt's `expires_at`) is `conflict`;
    /// a repeated `client_msg_id` returns the original `seq`.
    pub async fn resolve(&self, id: &str, user: &str, answer: Answer) -> Result<u64> {
        let Answer {
            interrupt_id,
            status,
            payload,
            client_msg_id,
        } = answer;
        if client_msg_id.is_empty() {
            return Err(LanternError::BadRequest(
                "client_msg_id must not be empty".into(),
            ));
        }
        let key = IdempotencyKey::ClientMsgId(client_msg_id.clone());
        let body = EventBody::InterruptResolved {
            interrupt_id,
            status,
            payload,
            user: Some(user.to_owned()),
            client_msg_id: Some(client_msg_id),
        };
        let seqs = self.append_checked(id, vec![(Some(key), body)]).await?;
        seqs.first()
            .copied()
            .ok_or_else(|| LanternError::Storage("empty append".into()))
    }

    /// Cancel: close whatever is open with `ok: false`, then append `cancelled`.
    pub async fn cancel(&self, id: &str) -> Result<u64> {
        let status = EventBody::WorkflowStatus {
            status: WorkflowStatus::Cancelled,
            detail: Some("cancelled by the user".into()),
        };
        let seqs = self.publish_bodies(id, vec![status]).await?;
        seqs.first()
            .copied()
            .ok_or_else(|| LanternError::Storage("empty append".into()))
    }

    /// Check and append one request (see [`Hub::publish`]), in a task of its own: an append is
    /// planned into the workflow's state, committed (with others, in a group commit) and
    /// handed out to live viewers, and none of that may stop half-way because the caller
    /// went away (an HTTP client that hung up): the log would hold events no live viewer was
    /// given, or the state would hold a plan that never reached the log.
    async fn append_checked(
        &self,
        id: &str,
        items: Vec<(Option<IdempotencyKey>, EventBody)>,
    ) -> Result<Vec<u64>> {
        let hub = self.arc()?;
        let id = id.to_owned();
        tokio::spawn(async move { hub.append_now(&id, items).await })
            .await
            .map_err(|e| LanternError::Storage(format!("an append task failed: {e}")))?
    }

    fn arc(&self) -> Result<Arc<Self>> {
        self.me
            .upgrade()
            .ok_or_else(|| LanternError::Storage("the hub is gone".into()))
    }

    async fn append_now(
        &self,
        id: &str,
        mut items: Vec<(Option<IdempotencyKey>, EventBody)>,
    ) -> Result<Vec<u64>> {
        let started = Instant::now();
        let workflow = self.live(id).await?;
        let mut writer = workflow.writer.lock().await;
        let mut moves = 0;
        let (slots, stored, status_changes) = loop {
            // Kept for checking again only where the log can move under this hub's feet.
            let again = self.settings.shared_store.then(|| items.clone());
            let outcome = self.check_and_append(id, &mut writer, items).await;
            let Some(kept) = again else { break outcome? };
            match outcome {
                Err(LanternError::LogMoved { .. }) if moves < MAX_LOG_MOVES => {
                    self.catch_up(id, &workflow, &mut writer).await?;
                }
                // Refused against this hub's view: right only if the view is current.
                Err(e @ (LanternError::Conflict(_) | LanternError::BadRequest(_)))
                    if moves < MAX_LOG_MOVES =>
                {
                    if self.catch_up(id, &workflow, &mut writer).await? == 0 {
                        return Err(e);
                    }
                }
                other => break other?,
            }
            moves += 1;
            items = kept;
        };
        self.appended_here(id, &stored, started);
        self.after_append(id, &workflow, &mut writer, &stored, status_changes)
            .await;
        drop(writer);
        Ok(seqs_of(slots, &stored, 0))
    }

    /// Check one request against `writer`'s state and append it, expecting the log to end
    /// where the state does; the slots, the stored events, and whether a status changed.
    async fn check_and_append(
        &self,
        id: &str,
        writer: &mut workflow::Writer,
        items: Vec<(Option<IdempotencyKey>, EventBody)>,
    ) -> Result<(Vec<Slot>, Vec<Arc<StoredEvent>>, bool)> {
        let max = self.settings.max_log_bytes;
        let log_full = max > 0 && writer.log_bytes >= max;
        // Most batches are sent once: append them without looking their retry keys up first,
        // and let the store refuse a batch holding a key it already has (nothing is appended
        // then). Only a refused batch with keys — a retry, or an event whose check fails
        // because it was already applied — pays for the lookup, and is planned again with it.
        let retry_plan = items
            .iter()
            .any(|(key, _)| key.is_some())
            .then(|| items.clone());
        let now = chrono::Utc::now();
        let first_try = match plan(&mut writer.lifecycle, items, &HashMap::new(), log_full, now) {
            Ok(plan) => self.append_planned(id, plan, writer).await,
            Err(e) => Err(e),
        };
        let appended = match (first_try, retry_plan) {
            (
                Err(
                    LanternError::RetryKeyLogged
                    | LanternError::Conflict(_)
                    | LanternError::BadRequest(_)
                    | LanternError::TooLarge(_),
                ),
                Some(items),
            ) => {
                let keys: Vec<&IdempotencyKey> =
                    items.iter().filter_map(|(k, _)| k.as_ref()).collect();
                let in_log = self.store.seqs_of_keys(id, &keys).await?;
                let plan = plan(&mut writer.lifecycle, items, &in_log, log_full, now)?;
                self.append_planned(id, plan, writer).await?
            }
            (result, _) => result?,
        };
        Ok((appended.slots, appended.stored, appended.status_changes))
    }

    /// Fold into `writer`'s state the events other nodes appended since it last saw the log,
    /// and hand them out to this node's viewers, as if appended here. How many there were.
    async fn catch_up(
        &self,
        id: &str,
        workflow: &Arc<LiveWorkflow>,
        writer: &mut workflow::Writer,
    ) -> Result<usize> {
        let mut folded = 0;
        loop {
            let page = self
                .store
                .read(id, writer.last_seq, feed::READ_PAGE, feed::READ_BYTES)
                .await?;
            if page.is_empty() {
                return Ok(folded);
            }
            let mut status_changes = false;
            for event in &page {
                let body = event.event()?.body;
                status_changes |= matches!(body, EventBody::WorkflowStatus { .. });
                writer.lifecycle.apply(&body);
            }
            folded += page.len();
            self.after_append(id, workflow, writer, &page, status_changes)
                .await;
        }
    }

    /// Another node appended to workflow `id`: if this node holds it live, fold the new events
    /// in and hand them to its viewers now, rather than at its next append. A workflow this
    /// node does not hold needs nothing: it is read from the log when it is next touched.
    pub async fn log_grew(&self, id: &str) -> Result<()> {
        let Some(workflow) = self.live_map().get(id).cloned() else {
            return Ok(());
        };
        let mut writer = workflow.writer.lock().await;
        self.catch_up(id, &workflow, &mut writer).await?;
        Ok(())
    }

    /// Publish several requests that arrived together (an agent's frames read at once), each
    /// all or nothing on its own, with ONE append when all of them pass their checks: on a
    /// durable store, one commit for all, which is what lets an agent stream deltas one per
    /// frame faster than one commit each allows. When any request is refused or is a retry
    /// (its key logged already), nothing of the joint append happens and each request is
    /// published on its own instead, so it gets exactly the answer it would have alone.
    pub async fn publish_each(
        &self,
        id: &str,
        requests: Vec<Vec<AgentEvent>>,
    ) -> Vec<Result<Vec<u64>>> {
        let requests: Vec<Vec<(Option<IdempotencyKey>, EventBody)>> = requests
            .into_iter()
            .map(|events| {
                events
                    .into_iter()
                    .map(|e| (e.id.map(IdempotencyKey::EventId), e.body))
                    .collect()
            })
            .collect();
        let hub = match self.arc() {
            Ok(hub) => hub,
            Err(e) => return vec![Err(e)],
        };
        let id = id.to_owned();
        // In a task of its own, for the reason given at `append_checked`.
        let run = async move {
            if requests.len() > 1 {
                if let Some(seqs) = hub.append_jointly(&id, &requests).await {
                    return seqs.into_iter().map(Ok).collect();
                }
            }
            let mut answers = Vec::with_capacity(requests.len());
            for items in requests {
                answers.push(hub.append_now(&id, items).await);
            }
            answers
        };
        match tokio::spawn(run).await {
            Ok(answers) => answers,
            Err(e) => vec![Err(LanternError::Storage(format!(
                "an append task failed: {e}"
            )))],
        }
    }

    /// [`Hub::publish_each`]'s joint append: `None` (and nothing appended, the state as it was)
    /// unless every request passed its checks and the one append succeeded.
    async fn append_jointly(
        &self,
        id: &str,
        requests: &[Vec<(Option<IdempotencyKey>, EventBody)>],
    ) -> Option<Vec<Vec<u64>>> {
        let started = Instant::now();
        let workflow = self.live(id).await.ok()?;
        let mut writer = workflow.writer.lock().await;
        let max = self.settings.max_log_bytes;
        let log_full = max > 0 && writer.log_bytes >= max;
        let now = chrono::Utc::now();
        // One plan for all: the requests' undos in order (taken back last first), their
        // batches one after another, and where each request's batch starts.
        let mut joint = Plan {
            undos: Vec::new(),
            slots: Vec::new(),
            batch: Vec::new(),
        };
        let mut planned = Vec::with_capacity(requests.len());
        for items in requests {
            let empty = HashMap::new();
            match plan(&mut writer.lifecycle, items.clone(), &empty, log_full, now) {
                Ok(plan) => {
                    planned.push((joint.batch.len(), plan.slots));
                    joint.undos.extend(plan.undos);
                    joint.batch.extend(plan.batch);
                }
                Err(_) => {
                    joint.undo(&mut writer.lifecycle);
                    return None;
                }
            }
        }
        let Appended {
            stored,
            status_changes,
            ..
        } = self.append_planned(id, joint, &mut writer).await.ok()?;
        self.appended_here(id, &stored, started);
        self.after_append(id, &workflow, &mut writer, &stored, status_changes)
            .await;
        drop(writer);
        Some(
            planned
                .into_iter()
                .map(|(offset, slots)| seqs_of(slots, &stored, offset))
                .collect(),
        )
    }

    /// An append by this node: counted and timed (events other nodes appended are theirs to
    /// count: metrics are per node), and announced to the other nodes.
    fn appended_here(&self, id: &str, stored: &[Arc<StoredEvent>], started: Instant) {
        let Some(last) = stored.last() else { return };
        self.metrics.events_appended.inc_by(stored.len() as u64);
        self.metrics
            .append_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Some(broker) = self.broker.get() {
            broker.log_grew(id, last.seq());
        }
    }

    /// What follows every append (this node's, or other nodes' folded in), still under the
    /// writer lock: where the log ends, its size, the hand-out to live viewers, the append
    /// signal, the workflow lists, and letting go of a workflow that finished.
    async fn after_append(
        &self,
        id: &str,
        workflow: &Arc<LiveWorkflow>,
        writer: &mut workflow::Writer,
        stored: &[Arc<StoredEvent>],
        status_changes: bool,
    ) {
        if let Some(last) = stored.last() {
            writer.last_seq = last.seq();
        }
        writer.log_bytes += stored.iter().map(|e| e.json.len() as u64).sum::<u64>();
        workflow.tail().hand_out(stored);
        if let Some(last) = stored.iter().rev().find(|e| !e.is_input()) {
            workflow.set_answered_through(last.seq());
        }
        if let Some(last) = stored.last() {
            workflow.appended.send_replace(last.seq());
        }
        if status_changes {
            // Read once for every listener, under the writer lock so the changes of one
            // workflow go out in order.
            if let Ok(Some(info)) = self.store.workflow(id).await {
                let _ = self.list_changes.send(ListChange {
                    owner: workflow.owner.clone(),
                    workflow: Arc::new(info),
                });
            }
        }
        if writer.lifecycle.is_finished() {
            // Nothing can be appended any more; current readers keep their own handle, and a
            // later reader rebuilds the (finished) state from the log.
            self.live_map().remove(id);
            if let Some(presence) = self.presence.get() {
                presence.run_ended(id);
            }
        }
    }

    /// Append a plan's batch (if it has one) where `writer` saw the log end; if the append
    /// fails, the plan is taken back out of `writer`'s state.
    async fn append_planned(
        &self,
        id: &str,
        mut plan: Plan,
        writer: &mut workflow::Writer,
    ) -> Result<Appended> {
        let status_changes = plan
            .batch
            .iter()
            .any(|e| matches!(e.body, EventBody::WorkflowStatus { .. }));
        let stored = if plan.batch.is_empty() {
            Vec::new()
        } else {
            let batch = std::mem::take(&mut plan.batch);
            match self.store.append_if(id, Some(writer.last_seq), batch).await {
                Ok(stored) => stored,
                Err(e) => {
                    plan.undo(&mut writer.lifecycle);
                    return Err(e);
                }
            }
        };
        Ok(Appended {
            slots: plan.slots,
            stored,
            status_changes,
        })
    }

    /// Follow workflow `id` from `seq > after`, pulling. Also returns the workflow as it was
    /// when the feed started; the feed's backlog ends at its `last_seq`.
    pub async fn feed(&self, id: &str, after: u64) -> Result<(Feed, WorkflowInfo)> {
        let workflow = self.live(id).await?;
        let info = self
            .store
            .workflow(id)
            .await?
            .ok_or_else(|| LanternError::WorkflowNotFound(id.to_owned()))?;
        let feed = Feed::new(workflow, self.store.clone(), after, info.last_seq);
        Ok((feed, info))
    }

    /// Let go of what idle workflows hold: the kept events of tails nobody follows, and every
    /// workflow nobody holds at all (it is rebuilt from its log when it is touched again).
    /// Returns how many workflows were let go.
    pub fn sweep_idle(&self, now: Instant) -> usize {
        let mut live = self.live_map();
        let before = live.len();
        live.retain(|_, workflow| {
            workflow.tail().forget_if_idle(now);
            // Only the map holds it (checked under the map's lock, through which every new
            // holder must come): nobody can be waiting on it.
            Arc::strong_count(workflow) > 1
        });
        before - live.len()
    }

    /// Run [`Hub::sweep_idle`] every minute, for the server's life.
    pub async fn sweep_forever(self: Arc<Self>) {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        loop {
            every.tick().await;
            let let_go = self.sweep_idle(Instant::now());
            if let_go > 0 {
                tracing::debug!(let_go, "idle workflows let go");
            }
        }
    }

    /// After a restart: built-in workflows that were running have lost their task, so they
    /// are marked `failed` (closing whatever they had open) — except those `resumable` says
    /// the server takes up again. External workflows stay as they are; their agents may come
    /// back.
    pub async fn fail_orphaned_builtins(
        &self,
        resumable: impl Fn(&WorkflowInfo) -> bool,
    ) -> Result<usize> {
        let mut failed = 0;
        for info in self.store.list_workflows(None).await? {
            if info.kind == app::protocol::vocab::kinds::EXTERNAL
                || info.status.is_terminal()
                || resumable(&info)
            {
                continue;
            }
            let status = EventBody::WorkflowStatus {
                status: WorkflowStatus::Failed,
                detail: Some("the server restarted while this workflow was running".into()),
            };
            self.publish_bodies(&info.id, vec![status]).await?;
            failed += 1;
        }
        Ok(failed)
    }

    /// Delete finished workflows last updated before `cutoff` (RFC 3339), with their logs.
    pub async fn delete_finished_before(&self, cutoff: &str) -> Result<usize> {
        let deleted = self.store.delete_finished_before(cutoff).await?;
        let mut live = self.live_map();
        for id in &deleted {
            live.remove(id);
        }
        Ok(deleted.len())
    }

    /// A receiver that changes when every subscriber socket must drop its connection.
    pub fn disconnect_signal(&self) -> watch::Receiver<u64> {
        self.disconnect.subscribe()
    }

    /// Make every subscriber socket drop its connection without a close frame (test hook).
    pub fn disconnect_all(&self) {
        self.disconnect.send_modify(|generation| *generation += 1);
    }
}

#[cfg(test)]
mod shared_store_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    /// A live viewer that records the `seq`s it is given and refuses once it holds `room`.
    pub(super) struct Recorder {
        seqs: Mutex<Vec<u64>>,
        room: usize,
    }

    impl Recorder {
        pub(super) fn new(room: usize) -> Arc<Self> {
            Arc::new(Self {
                seqs: Mutex::default(),
                room,
            })
        }

        pub(super) fn seqs(&self) -> Vec<u64> {
            self.seqs.lock().unwrap_or_else(|p| p.into_inner()).clone()
        }
    }

    impl LiveViewer for Recorder {
        fn deliver(&self, event: &Arc<StoredEvent>) -> bool {
            let mut seqs = self.seqs.lock().unwrap_or_else(|p| p.into_inner());
            if seqs.len() >= self.room {
                return false;
            }
            seqs.push(event.seq());
            true
        }
    }

    pub(super) fn thinking(n: u64) -> EventBody {
        EventBody::AgentThinking {
            agent: "a".into(),
            content: Some(n.to_string()),
            message_id: None,
        }
    }

    async fn hub_with_workflow() -> (Arc<Hub>, String) {
        let hub = Hub::new(Arc::new(MemoryStore::default()));
        let info = hub.create("external", None, "u").await.expect("created");
        (hub, info.id)
    }

    async fn publish(hub: &Hub, id: &str, seqs: std::ops::RangeInclusive<u64>) {
        hub.publish_bodies(id, seqs.map(thinking).collect())
            .await
            .expect("published");
    }

    #[tokio::test]
    async fn a_retry_gets_its_first_seq_whether_or_not_it_would_pass_the_checks_again() {
        let (hub, id) = hub_with_workflow().await;
        let keyed = |id: &str, body: EventBody| AgentEvent {
            id: Some(id.into()),
            body,
        };
        let started = EventBody::AgentStarted {
            agent: "a".into(),
            task: None,
        };
        let first = vec![keyed("e1", started.clone()), keyed("e2", thinking(2))];
        assert_eq!(hub.publish(&id, first).await.expect("first"), [1, 2]);
        // e1 would now fail its check (agent a is running) and e2 would pass it: both are
        // retries, answered with their logged seqs; e3 is new and appended once, though sent
        // twice in the batch.
        let again = vec![
            keyed("e3", thinking(3)),
            keyed("e1", started.clone()),
            keyed("e2", thinking(2)),
            keyed("e3", thinking(3)),
        ];
        assert_eq!(hub.publish(&id, again).await.expect("retry"), [3, 1, 2, 3]);
        let input = || hub.submit_input(&id, "u", "hi".into(), "m1".into());
        assert_eq!(input().await.expect("input"), 4);
        assert_eq!(input().await.expect("input retried"), 4);
        let info = hub
            .store
            .workflow(&id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(info.last_seq, 4, "nothing appended twice");
        // A new event that fails its check is still refused, after the lookup found nothing.
        let refused = hub.publish(&id, vec![keyed("e9", started.clone())]).await;
        assert!(
            matches!(refused, Err(LanternError::Conflict(_))),
            "{refused:?}"
        );
        // A retry beside a new event: the new one is appended, the retry keeps its seq.
        let mixed = vec![keyed("e9", thinking(9)), keyed("e1", started)];
        assert_eq!(hub.publish(&id, mixed).await.expect("mixed"), [5, 1]);
    }

    #[tokio::test]
    async fn requests_published_together_are_each_all_or_nothing_and_keep_their_order() {
        let (hub, id) = hub_with_workflow().await;
        let delta = |n: u32| AgentEvent {
            id: Some(format!("d{n}")),
            body: EventBody::TextDelta {
                agent: "a".into(),
                message_id: "m".into(),
                delta: format!("{n} "),
            },
        };
        // All pass: one append, each request's seqs in order.
        let answers = hub
            .publish_each(
                &id,
                vec![vec![delta(1)], vec![delta(2), delta(3)], vec![delta(4)]],
            )
            .await;
        let seqs: Vec<Vec<u64>> = answers.into_iter().map(|a| a.expect("ok")).collect();
        assert_eq!(seqs, [vec![1], vec![2, 3], vec![4]]);
        // One refused (another agent's delta to the message) and one retry among new ones:
        // each gets the answer it would have alone.
        let foreign = AgentEvent {
            id: Some("x".into()),
            body: EventBody::TextDelta {
                agent: "b".into(),
                message_id: "m".into(),
                delta: "no".into(),
            },
        };
        let answers = hub
            .publish_each(
                &id,
                vec![
                    vec![delta(5)],
                    vec![foreign],
                    vec![delta(2)],
                    vec![delta(6)],
                ],
            )
            .await;
        assert_eq!(answers[0].as_ref().expect("appended"), &vec![5]);
        assert!(
            matches!(answers[1], Err(LanternError::Conflict(_))),
            "{:?}",
            answers[1]
        );
        assert_eq!(answers[2].as_ref().expect("a retry"), &vec![2]);
        assert_eq!(answers[3].as_ref().expect("appended"), &vec![6]);
        let close = AgentEvent {
            id: None,
            body: EventBody::AgentResponse {
                agent: "a".into(),
                content: None,
                message_id: Some("m".into()),
            },
        };
        hub.publish(&id, vec![close]).await.expect("closed");
        let (mut feed, _) = hub.feed(&id, 6).await.expect("feed");
        let last = feed.next().await.expect("read").expect("the close");
        let logged = last.event().expect("parses");
        assert!(
            matches!(&logged.body, EventBody::AgentResponse { content: Some(c), .. } if c == "1 2 3 4 5 6 "),
            "the refused request left no trace: {logged:?}"
        );
    }

    #[tokio::test]
    async fn only_a_caught_up_reader_goes_live_then_gets_each_new_event_once_in_order() {
        let (hub, id) = hub_with_workflow().await;
        publish(&hub, &id, 1..=2).await;
        let (feed, _) = hub.feed(&id, 0).await.expect("feed");
        let viewer = Recorder::new(usize::MAX);
        let Err(mut feed) = feed.go_live(viewer.clone()) else {
            panic!("a reader with a backlog must stay on its feed");
        };
        for _ in 1..=2 {
            feed.next().await.expect("read").expect("event");
        }
        let Ok(live) = feed.go_live(viewer.clone()) else {
            panic!("a reader that has every event goes live");
        };
        publish(&hub, &id, 3..=3).await;
        publish(&hub, &id, 4..=5).await;
        assert_eq!(viewer.seqs(), [3, 4, 5]);
        drop(live);
        publish(&hub, &id, 6..=6).await;
        assert_eq!(
            viewer.seqs(),
            [3, 4, 5],
            "off the list once its guard is gone"
        );
    }

    #[tokio::test]
    async fn a_reader_behind_the_appender_stays_on_its_feed_until_it_catches_up() {
        let (hub, id) = hub_with_workflow().await;
        let (feed, _) = hub.feed(&id, 0).await.expect("feed");
        // Appended after the feed started: the backlog is done, but the reader lacks seq 1.
        publish(&hub, &id, 1..=1).await;
        let viewer = Recorder::new(usize::MAX);
        let Err(mut feed) = feed.go_live(viewer.clone()) else {
            panic!("a reader that lacks an appended event must not go live");
        };
        let first = feed.next().await.expect("read").expect("event");
        assert_eq!(first.seq(), 1);
        let _live = feed.go_live(viewer.clone()).ok().expect("caught up");
        publish(&hub, &id, 2..=2).await;
        assert_eq!(viewer.seqs(), [2]);
    }

    #[tokio::test]
    async fn a_reader_ahead_of_the_hand_out_gets_no_event_twice() {
        let (hub, id) = hub_with_workflow().await;
        let (mut feed, _) = hub.feed(&id, 0).await.expect("feed");
        let workflow = feed.workflow.clone();
        // As when the reader read seq 1 from the store between its commit and its hand-out.
        feed.cursor = 1;
        let viewer = Recorder::new(usize::MAX);
        let _live = feed.go_live(viewer.clone()).ok().expect("nothing it lacks");
        workflow.tail().hand_out(&[event(1)]);
        workflow.tail().hand_out(&[event(2)]);
        assert_eq!(viewer.seqs(), [2]);
    }

    #[tokio::test]
    async fn a_viewer_that_refuses_an_event_gets_nothing_more() {
        let (hub, id) = hub_with_workflow().await;
        let (feed, _) = hub.feed(&id, 0).await.expect("feed");
        let full = Recorder::new(1);
        let other = Recorder::new(usize::MAX);
        let _full = feed.go_live(full.clone()).ok().expect("live");
        let (feed, _) = hub.feed(&id, 0).await.expect("feed");
        let _other = feed.go_live(other.clone()).ok().expect("live");
        publish(&hub, &id, 1..=2).await;
        assert_eq!(full.seqs(), [1]);
        let workflow = hub.live(&id).await.expect("live");
        assert_eq!(
            workflow.tail().viewers(),
            1,
            "the refusing one is off the list"
        );
        publish(&hub, &id, 3..=3).await;
        assert_eq!(other.seqs(), [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_waiting_feed_wakes_for_the_next_append() {
        let (hub, id) = hub_with_workflow().await;
        let (mut feed, _) = hub.feed(&id, 0).await.expect("feed");
        let reader = tokio::spawn(async move { feed.next().await.map(|e| e.map(|e| e.seq())) });
        tokio::task::yield_now().await;
        publish(&hub, &id, 1..=1).await;
        let got = tokio::time::timeout(Duration::from_secs(5), reader).await;
        assert_eq!(got.expect("woken").expect("joined").expect("read"), Some(1));
    }

    #[tokio::test]
    async fn a_full_log_refuses_all_but_the_end_and_counts_what_it_held_after_a_rebuild() {
        let store: Arc<dyn EventStore> = Arc::new(MemoryStore::default());
        let settings = HubSettings {
            max_log_bytes: 300,
            ..HubSettings::default()
        };
        let hub = Hub::build(store.clone(), settings.clone(), Metrics::new());
        let id = hub.create("external", None, "u").await.expect("created").id;
        publish(&hub, &id, 1..=3).await;
        let refused = hub.publish_bodies(&id, vec![thinking(4)]).await;
        assert!(
            matches!(refused, Err(LanternError::TooLarge(_))),
            "{refused:?}"
        );
        // A hub that rebuilds the workflow from its log knows it is full too.
        let again = Hub::build(store, settings, Metrics::new());
        let refused = again.publish_bodies(&id, vec![thinking(4)]).await;
        assert!(
            matches!(refused, Err(LanternError::TooLarge(_))),
            "{refused:?}"
        );
        let end = EventBody::WorkflowStatus {
            status: WorkflowStatus::Completed,
            detail: None,
        };
        again
            .publish_bodies(&id, vec![end])
            .await
            .expect("it can still end");
    }

    #[tokio::test]
    async fn a_user_opens_at_most_the_allowed_number_of_workflows() {
        let settings = HubSettings {
            max_open_workflows: 2,
            ..HubSettings::default()
        };
        let hub = Hub::build(Arc::new(MemoryStore::default()), settings, Metrics::new());
        let first = hub.create("external", None, "u").await.expect("1").id;
        hub.create("external", None, "u").await.expect("2");
        let third = hub.create("external", None, "u").await;
        assert!(
            matches!(third, Err(LanternError::RateLimited(_))),
            "{third:?}"
        );
        hub.create("external", None, "other")
            .await
            .expect("another user is not affected");
        hub.cancel(&first).await.expect("cancelled");
        hub.create("external", None, "u")
            .await
            .expect("a finished one frees a place");
    }

    #[tokio::test]
    async fn idle_workflows_nobody_holds_are_let_go_and_rebuilt_when_touched() {
        let (hub, id) = hub_with_workflow().await;
        publish(&hub, &id, 1..=2).await;
        let (feed, _) = hub.feed(&id, 0).await.expect("feed");
        let later = Instant::now() + tail::IDLE_TAIL;
        assert_eq!(hub.sweep_idle(later), 0, "a feed holds it");
        drop(feed);
        assert_eq!(hub.sweep_idle(later), 1);
        assert_eq!(hub.active_workflows(), 0);
        publish(&hub, &id, 3..=3).await;
        let (mut feed, info) = hub.feed(&id, 0).await.expect("rebuilt");
        assert_eq!(info.last_seq, 3);
        for seq in 1..=3 {
            assert_eq!(feed.next().await.expect("read").map(|e| e.seq()), Some(seq));
        }
    }

    fn event(seq: u64) -> Arc<StoredEvent> {
        StoredEvent::from_json(seq, format!(r#"{{"seq":{seq}}}"#))
    }
}
