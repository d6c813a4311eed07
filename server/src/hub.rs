//! Live workflows: the one path every event takes on its way into the log, and the feeds
//! that carry it out again.
//!
//! The hub owns each live workflow's lifecycle state (what is open, whether it finished) and
//! its broadcast channel. Every producer (built-in workflows, agents, HTTP ingest, user input)
//! goes through [`Hub::publish`]: check the §1 invariants → append to the store (which assigns
//! `seq`, and refuses a batch holding a retry key it has logged: then the keys are looked up
//! and the batch is checked again without the logged ones) → broadcast the stored,
//! already-serialized event. That runs
//! under the workflow's writer lock, so appends to one workflow are totally ordered and the
//! broadcast order is the `seq` order.
//!
//! A [`Feed`] is how a reader follows a workflow: backlog from the store, then live events,
//! with no gap and no duplicate. A reader that falls behind the broadcast channel is caught
//! up from the store, never skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::protocol::{AgentEvent, EventBody, WorkflowInfo, WorkflowStatus, MAX_INPUT_BYTES};
use tokio::sync::{broadcast, watch};

use crate::error::{LanternError, Result};
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::store::{EventStore, IdempotencyKey, NewEvent, StoredEvent};

/// How many list changes a workflow-list stream may be behind before it re-reads the list.
const LIST_CHANGES_CAPACITY: usize = 256;

/// How many events a reader may be behind the live broadcast before it is caught up from
/// the store instead. The channel keeps this many recent events alive, so it is kept small:
/// falling behind costs a store read, never memory.
const BROADCAST_CAPACITY: usize = 128;
/// Events read from the store at a time when replaying or catching up: bounds a reader's memory.
const READ_PAGE: usize = 64;
/// A live workflow's latest events are kept in memory, at most this many and this many bytes
/// of JSON, so readers that resume a little behind (a reconnect storm after a network blip) are
/// served without the store. The byte bound keeps a workflow of huge events from holding much.
const RECENT_EVENTS: usize = 2048;
const RECENT_BYTES: usize = 256 * 1024;
/// Events a reader takes from memory at once (shared `Arc`s: no copy).
const RECENT_PAGE: usize = 512;
/// How long a workflow waits for its agent to come back by default (PROTOCOL.md §3).
pub const DEFAULT_AGENT_GRACE: Duration = Duration::from_secs(30);

/// One workflow that has been touched since the server started.
pub struct LiveWorkflow {
    id: String,
    /// The writer lock: held for the whole of one append, so appends are ordered. It guards the
    /// lifecycle state, which only an appender may change.
    writer: tokio::sync::Mutex<Lifecycle>,
    events: broadcast::Sender<Arc<StoredEvent>>,
    /// The `seq` of the last event that is not a `user_input`: inputs after it are the ones
    /// nobody has answered yet, which a (re)connecting agent is sent first.
    answered_through: AtomicU64,
    /// Connected agent sockets, and whose disconnect a grace timer is waiting on.
    agents: Mutex<AgentPresence>,
    /// The latest events appended since the workflow went live and the viewers following it
    /// live (see [`Tail`]). A std mutex: never held across an await.
    tail: Mutex<Tail>,
}

/// The in-memory tail of a live workflow's log, and who is following it live. One lock for
/// both: a reader goes live only if it has every event appended so far (see [`Feed::go_live`]).
struct Tail {
    /// The latest events (see [`RECENT_EVENTS`]), in `seq` order with no gap (pushed under the
    /// writer lock).
    events: VecDeque<Arc<StoredEvent>>,
    /// The JSON bytes of `events`.
    bytes: usize,
    /// The `seq` of the last event appended (`events` may hold none of them: they are bounded).
    appended_through: u64,
    /// Readers that caught up with the log, by the number they went live with: the appender
    /// queues each new event on them itself, under this lock (queuing never waits).
    viewers: HashMap<u64, LiveEntry>,
    /// The number the next viewer to go live gets, so it can be taken off the list again.
    next_viewer: u64,
}

/// A viewer on a workflow's live list.
struct LiveEntry {
    /// The reader's cursor when it went live: it already has every event up to this `seq`.
    after: u64,
    viewer: Arc<dyn LiveViewer>,
}

/// A reader whose events the appender queues directly, once it has caught up: for viewer
/// sockets that is one task wake-up per event (the socket's writer), not two.
///
/// Guarantees: `deliver` is called for every event appended after the reader went live, in
/// `seq` order, each once, from inside the append (under the workflow's writer lock and its
/// tail's lock), so it must not wait nor touch the workflow: it queues or refuses.
pub trait LiveViewer: Send + Sync {
    /// Queue `event`. False when the reader cannot take it: it was too slow and has closed
    /// itself (it resumes with `after`); it is then taken off the list and gets nothing more.
    fn deliver(&self, event: &Arc<StoredEvent>) -> bool;
}

/// A reader's place on its workflow's live list; dropping it takes the reader off.
pub struct LiveGuard {
    workflow: Arc<LiveWorkflow>,
    id: u64,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.workflow.tail().viewers.remove(&self.id);
    }
}

impl Tail {
    fn new(appended_through: u64) -> Self {
        Self {
            events: VecDeque::new(),
            bytes: 0,
            appended_through,
            viewers: HashMap::new(),
            next_viewer: 0,
        }
    }

    fn push(&mut self, event: Arc<StoredEvent>) {
        self.bytes += event.json.len();
        self.appended_through = event.seq();
        self.events.push_back(event);
        while self.events.len() > RECENT_EVENTS || self.bytes > RECENT_BYTES {
            match self.events.pop_front() {
                Some(old) => self.bytes -= old.json.len(),
                None => break,
            }
        }
    }
}

/// The agents connected to one workflow.
#[derive(Default)]
struct AgentPresence {
    connected: usize,
    /// Bumped by every connect: a grace timer started before it is void.
    generation: u64,
}

impl LiveWorkflow {
    fn presence(&self) -> std::sync::MutexGuard<'_, AgentPresence> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep `events` (just appended, in `seq` order) in memory and queue them on every live
    /// viewer, taking off the list any that refuses one. Called under the writer lock, so
    /// deliveries keep `seq` order across appends; done under the tail's lock, so a reader going
    /// live ([`Feed::go_live`]) gets each event after its cursor exactly once.
    fn hand_out(&self, events: &[Arc<StoredEvent>]) {
        let mut tail = self.tail();
        for event in events {
            tail.push(event.clone());
        }
        tail.viewers.retain(|_, entry| {
            let mut new = events.iter().filter(|e| e.seq() > entry.after);
            new.all(|event| entry.viewer.deliver(event))
        });
    }

    /// Up to `limit` events with `seq > after` from memory, if memory still holds `after + 1`.
    fn recent_after(&self, after: u64, limit: usize) -> Option<Vec<Arc<StoredEvent>>> {
        let recent = &self.tail().events;
        let first = recent.front()?.seq();
        if after + 1 < first || after >= recent.back()?.seq() {
            return None;
        }
        let skip = usize::try_from(after + 1 - first).ok()?;
        Some(recent.iter().skip(skip).take(limit).cloned().collect())
    }

    /// See [`LiveWorkflow::answered_through`].
    pub fn answered_through(&self) -> u64 {
        self.answered_through.load(Ordering::Relaxed)
    }
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

pub struct Hub {
    store: Arc<dyn EventStore>,
    /// Live workflows by id. A std mutex: never held across an await.
    live: Mutex<HashMap<String, Arc<LiveWorkflow>>>,
    /// Bumped to make every subscriber socket drop its connection at once, as a network fault
    /// would (test hook; see `config.test_hooks`).
    disconnect: watch::Sender<u64>,
    /// Set once when the server begins to shut down: every socket closes with 1001.
    shutting_down: watch::Sender<bool>,
    /// How long a running workflow waits for its agent to come back.
    agent_grace: Duration,
    /// Appends counted and timed here; the sockets count the rest.
    metrics: Arc<Metrics>,
    /// The id of each workflow created or whose status changed, for the live workflow lists
    /// (`/sse/workflows`). Ids only: each listener reads what it may see from the store.
    list_changes: broadcast::Sender<Arc<str>>,
}

/// Where a slot of a publish request ends up: appended now, or already in the log.
enum Slot {
    Existing(u64),
    InBatch(usize),
}

/// A publish request checked against its workflow's state: what to append, and the state after.
struct Plan {
    next: Lifecycle,
    slots: Vec<Slot>,
    /// The events to append: the request's new ones, each after whatever it closes.
    batch: Vec<NewEvent>,
}

/// A plan carried out: its state and slots, and the events as stored.
struct Appended {
    next: Lifecycle,
    slots: Vec<Slot>,
    stored: Vec<Arc<StoredEvent>>,
    status_changes: bool,
}

/// Check `items` against the workflow's state `current` in order; `in_log` holds the retry keys
/// known to be logged already (their slots get the logged `seq` and are not checked again).
/// A key repeated within the request is appended once.
fn plan(
    current: &Lifecycle,
    items: Vec<(Option<IdempotencyKey>, EventBody)>,
    in_log: &HashMap<IdempotencyKey, u64>,
) -> Result<Plan> {
    let mut next = current.clone();
    let mut batch: Vec<NewEvent> = Vec::new();
    let mut slots = Vec::with_capacity(items.len());
    let mut keys_in_batch: HashMap<IdempotencyKey, usize> = HashMap::new();
    let numbered = items.len() > 1;
    for (index, (key, body)) in items.into_iter().enumerate() {
        if let Some(key) = &key {
            if let Some(&seq) = in_log.get(key) {
                slots.push(Slot::Existing(seq));
                continue;
            }
            if let Some(&at) = keys_in_batch.get(key) {
                slots.push(Slot::InBatch(at));
                continue;
            }
        }
        let closing = next.admit(&body).map_err(|why| {
            let which = if numbered {
                format!("event {index} ")
            } else {
                String::new()
            };
            LanternError::Conflict(format!("{which}({}): {why}", body.kind()))
        })?;
        for event in closing {
            next.apply(&event);
            batch.push(NewEvent {
                body: event,
                key: None,
            });
        }
        next.apply(&body);
        if let Some(key) = &key {
            keys_in_batch.insert(key.clone(), batch.len());
        }
        slots.push(Slot::InBatch(batch.len()));
        batch.push(NewEvent { body, key });
    }
    Ok(Plan { next, slots, batch })
}

impl Hub {
    pub fn new(store: Arc<dyn EventStore>) -> Arc<Self> {
        Self::build(store, DEFAULT_AGENT_GRACE, Metrics::new())
    }

    pub fn build(
        store: Arc<dyn EventStore>,
        agent_grace: Duration,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            live: Mutex::default(),
            disconnect: watch::Sender::new(0),
            shutting_down: watch::Sender::new(false),
            agent_grace,
            metrics,
            list_changes: broadcast::channel(LIST_CHANGES_CAPACITY).0,
        })
    }

    /// Ids of workflows created or whose status changed from now on. A receiver that lags
    /// must re-read the whole list (it cannot know what it missed).
    pub fn list_changes(&self) -> broadcast::Receiver<Arc<str>> {
        self.list_changes.subscribe()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Workflows that can still change and were touched since the server started.
    pub fn active_workflows(&self) -> usize {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Register a workflow of user `owner` and make it live. Starting built-in kinds is the
    /// caller's job.
    pub async fn create(
        &self,
        kind: &str,
        title: Option<String>,
        owner: &str,
    ) -> Result<WorkflowInfo> {
        let info = self.store.create_workflow(kind, title, owner).await?;
        self.insert_live(&info.id, Lifecycle::default(), 0, 0);
        let _ = self.list_changes.send(info.id.as_str().into());
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

    /// A live workflow whose log ends at `last_seq`.
    fn new_live(id: &str, lifecycle: Lifecycle, answered: u64, last_seq: u64) -> Arc<LiveWorkflow> {
        Arc::new(LiveWorkflow {
            id: id.to_owned(),
            writer: tokio::sync::Mutex::new(lifecycle),
            events: broadcast::channel(BROADCAST_CAPACITY).0,
            answered_through: AtomicU64::new(answered),
            agents: Mutex::default(),
            tail: Mutex::new(Tail::new(last_seq)),
        })
    }

    fn insert_live(
        &self,
        id: &str,
        lifecycle: Lifecycle,
        answered: u64,
        last_seq: u64,
    ) -> Arc<LiveWorkflow> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.entry(id.to_owned())
            .or_insert_with(|| Self::new_live(id, lifecycle, answered, last_seq))
            .clone()
    }

    /// The live workflow `id`, rebuilt from its log if the hub has not seen it yet (a finished
    /// one is rebuilt for the caller alone, not kept).
    pub async fn live(&self, id: &str) -> Result<Arc<LiveWorkflow>> {
        if let Some(found) = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(found.clone());
        }
        if self.store.workflow(id).await?.is_none() {
            return Err(LanternError::WorkflowNotFound(id.to_owned()));
        }
        let mut lifecycle = Lifecycle::default();
        let mut answered = 0;
        let mut after = 0;
        loop {
            let page = self.store.read(id, after, READ_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq();
            for event in &page {
                let body = event.event()?.body;
                if !matches!(body, EventBody::UserInput { .. }) {
                    answered = event.seq();
                }
                lifecycle.apply(&body);
            }
        }
        if lifecycle.is_finished() {
            // Nothing will be appended: readers need no shared channel, and the map keeps only
            // workflows that can still change.
            return Ok(Self::new_live(id, lifecycle, answered, after));
        }
        Ok(self.insert_live(id, lifecycle, answered, after))
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

    async fn append_checked(
        &self,
        id: &str,
        items: Vec<(Option<IdempotencyKey>, EventBody)>,
    ) -> Result<Vec<u64>> {
        let started = std::time::Instant::now();
        let workflow = self.live(id).await?;
        let mut lifecycle = workflow.writer.lock().await;
        // Most batches are sent once: append them without looking their retry keys up first,
        // and let the store refuse a batch holding a key it already has (nothing is appended
        // then). Only a refused batch with keys — a retry, or an event whose check fails
        // because it was already applied — pays for the lookup, and is planned again with it.
        let retry_plan = items
            .iter()
            .any(|(key, _)| key.is_some())
            .then(|| items.clone());
        let first_try = match plan(&lifecycle, items, &HashMap::new()) {
            Ok(plan) => self.append_planned(id, plan).await,
            Err(e) => Err(e),
        };
        let appended = match (first_try, retry_plan) {
            (Err(LanternError::RetryKeyLogged | LanternError::Conflict(_)), Some(items)) => {
                let keys: Vec<&IdempotencyKey> =
                    items.iter().filter_map(|(k, _)| k.as_ref()).collect();
                let in_log = self.store.seqs_of_keys(id, &keys).await?;
                self.append_planned(id, plan(&lifecycle, items, &in_log)?)
                    .await?
            }
            (result, _) => result?,
        };
        let Appended {
            next,
            slots,
            stored,
            status_changes,
        } = appended;
        *lifecycle = next;
        if !stored.is_empty() {
            self.metrics.events_appended.inc_by(stored.len() as u64);
            self.metrics
                .append_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        workflow.hand_out(&stored);
        for event in &stored {
            if !event.is_user_input() {
                workflow
                    .answered_through
                    .store(event.seq(), Ordering::Relaxed);
            }
            // No receiver is fine: nobody is watching this workflow right now.
            let _ = workflow.events.send(event.clone());
        }
        if status_changes {
            // Nobody listening is fine.
            let _ = self.list_changes.send(id.into());
        }
        if lifecycle.is_finished() {
            // Nothing can be appended any more; current feeds keep their own handle, and a
            // later reader rebuilds the (finished) state from the log.
            self.forget(id);
        }
        drop(lifecycle);
        Ok(slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Existing(seq) => seq,
                Slot::InBatch(at) => stored[at].seq(),
            })
            .collect())
    }

    /// Append a plan's batch (if it has one).
    async fn append_planned(&self, id: &str, plan: Plan) -> Result<Appended> {
        let status_changes = plan
            .batch
            .iter()
            .any(|e| matches!(e.body, EventBody::WorkflowStatus { .. }));
        let stored = if plan.batch.is_empty() {
            Vec::new()
        } else {
            self.store.append(id, plan.batch).await?
        };
        Ok(Appended {
            next: plan.next,
            slots: plan.slots,
            stored,
            status_changes,
        })
    }

    /// Follow workflow `id` from `seq > after`. Also returns the workflow as it was when the
    /// feed started; the feed's backlog ends at its `last_seq`.
    pub async fn feed(&self, id: &str, after: u64) -> Result<(Feed, WorkflowInfo)> {
        let workflow = self.live(id).await?;
        // Subscribe first, read the log's end second: every event appended after the read is
        // then in the channel, and every one before it is in the store.
        let rx = workflow.events.subscribe();
        let info = self
            .store
            .workflow(id)
            .await?
            .ok_or_else(|| LanternError::WorkflowNotFound(id.to_owned()))?;
        let feed = Feed {
            workflow: workflow.clone(),
            store: self.store.clone(),
            rx,
            cursor: after,
            buffered: VecDeque::new(),
            replay_until: info.last_seq,
            must_read_store: after < info.last_seq,
        };
        Ok((feed, info))
    }

    /// An agent connected to workflow `id`; keep the guard for as long as its socket lives.
    pub async fn agent_connected(self: &Arc<Self>, id: &str) -> Result<(AgentGuard, u64)> {
        let workflow = self.live(id).await?;
        {
            let mut presence = workflow.presence();
            presence.connected += 1;
            presence.generation += 1;
        }
        let answered = workflow.answered_through();
        Ok((
            AgentGuard {
                hub: self.clone(),
                workflow,
            },
            answered,
        ))
    }

    /// Wait out the grace period; if no agent came back meanwhile (and the workflow has not
    /// finished), close what is open with `ok: false` and mark the workflow `failed`.
    async fn grace_period(self: Arc<Self>, workflow: Arc<LiveWorkflow>, generation: u64) {
        tokio::time::sleep(self.agent_grace).await;
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
                self.agent_grace.as_secs()
            )),
        };
        match self.publish_bodies(&workflow.id, vec![status]).await {
            // Conflict: it finished meanwhile; not found: it was deleted. Nothing to do.
            Ok(_) | Err(LanternError::Conflict(_)) | Err(LanternError::WorkflowNotFound(_)) => {}
            Err(e) => tracing::error!(error = %e, workflow = %workflow.id, "grace period"),
        }
    }

    /// After a restart: external workflows that were under way (not finished, something
    /// published) give their agents the grace period to reconnect.
    pub async fn await_returning_agents(self: &Arc<Self>) -> Result<usize> {
        let mut waiting = 0;
        for info in self.store.list_workflows(None).await? {
            if info.kind != "external" || info.status.is_terminal() || info.last_seq == 0 {
                continue;
            }
            let workflow = self.live(&info.id).await?;
            let generation = workflow.presence().generation;
            tokio::spawn(self.clone().grace_period(workflow, generation));
            waiting += 1;
        }
        Ok(waiting)
    }

    fn forget(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// After a restart: built-in workflows that were running have lost their task, so they
    /// are marked `failed` (closing whatever they had open). External workflows stay as they
    /// are; their agents may come back.
    pub async fn fail_orphaned_builtins(&self) -> Result<usize> {
        let mut failed = 0;
        for info in self.store.list_workflows(None).await? {
            if info.kind == "external" || info.status.is_terminal() {
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
        for id in &deleted {
            self.forget(id);
        }
        Ok(deleted.len())
    }

    /// A receiver that changes when every subscriber socket must drop its connection.
    pub fn disconnect_signal(&self) -> watch::Receiver<u64> {
        self.disconnect.subscribe()
    }

    /// A receiver that turns true when the server begins to shut down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutting_down.subscribe()
    }

    /// Begin shutting down: every socket closes with 1001 (clients resume after the restart).
    pub fn begin_shutdown(&self) {
        self.shutting_down.send_replace(true);
    }

    /// Make every subscriber socket drop its connection without a close frame (test hook).
    pub fn disconnect_all(&self) {
        self.disconnect.send_modify(|generation| *generation += 1);
    }
}

/// One reader's ordered view of a workflow: each event once, in `seq` order, from its start
/// cursor on, first from the store and then live.
pub struct Feed {
    /// Keeps the workflow's channel open for as long as the feed lives.
    workflow: Arc<LiveWorkflow>,
    store: Arc<dyn EventStore>,
    rx: broadcast::Receiver<Arc<StoredEvent>>,
    /// The last `seq` handed out.
    cursor: u64,
    /// Read from the store and not handed out yet (at most one page).
    buffered: VecDeque<Arc<StoredEvent>>,
    /// The log's `last_seq` when the feed started: the end of the backlog.
    replay_until: u64,
    /// Set before awaiting the store, cleared after: `next` may be cancelled mid-read (it is
    /// used in `select!`), and must then read the store again rather than wait on the channel.
    must_read_store: bool,
}

impl Feed {
    /// Hand this reader over to the appender: from now on every new event is queued on
    /// `viewer` as it is appended (see [`LiveViewer`]), and the feed is no longer needed. Only
    /// a reader that has every event appended so far goes live; otherwise the feed comes back
    /// (read on, and try again).
    pub fn go_live(self, viewer: Arc<dyn LiveViewer>) -> std::result::Result<LiveGuard, Self> {
        if !self.backlog_done() || !self.buffered.is_empty() {
            return Err(self);
        }
        let workflow = self.workflow.clone();
        let mut tail = workflow.tail();
        if tail.appended_through > self.cursor {
            drop(tail);
            return Err(self);
        }
        let id = tail.next_viewer;
        tail.next_viewer += 1;
        let after = self.cursor;
        tail.viewers.insert(id, LiveEntry { after, viewer });
        drop(tail);
        Ok(LiveGuard { workflow, id })
    }

    /// The last `seq` handed out.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// True once every event that existed when the feed started has been handed out.
    pub fn backlog_done(&self) -> bool {
        self.cursor >= self.replay_until
    }

    /// The next event; `None` when the workflow's channel is gone (server shutting down).
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<Option<Arc<StoredEvent>>> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                if event.seq() == self.cursor + 1 {
                    self.cursor = event.seq();
                    return Ok(Some(event));
                }
                continue;
            }
            if self.must_read_store {
                let (page, limit) = match self.workflow.recent_after(self.cursor, RECENT_PAGE) {
                    Some(page) => (page, RECENT_PAGE),
                    None => {
                        let page = self
                            .store
                            .read(&self.workflow.id, self.cursor, READ_PAGE)
                            .await?;
                        (page, READ_PAGE)
                    }
                };
                // A full page: there may be more before the channel takes over.
                self.must_read_store = page.len() == limit;
                self.buffered.extend(page);
                continue;
            }
            match self.rx.recv().await {
                Ok(event) if event.seq() <= self.cursor => continue,
                Ok(event) if event.seq() == self.cursor + 1 => {
                    self.cursor = event.seq();
                    return Ok(Some(event));
                }
                // Behind the channel (lagged, or a seq missing): the store has everything.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.must_read_store = true,
                Err(broadcast::error::RecvError::Closed) => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    /// A live viewer that records the `seq`s it is given and refuses once it holds `room`.
    struct Recorder {
        seqs: Mutex<Vec<u64>>,
        room: usize,
    }

    impl Recorder {
        fn new(room: usize) -> Arc<Self> {
            Arc::new(Self {
                seqs: Mutex::default(),
                room,
            })
        }

        fn seqs(&self) -> Vec<u64> {
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

    fn thinking(n: u64) -> EventBody {
        EventBody::AgentThinking {
            agent: "a".into(),
            content: n.to_string(),
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
        workflow.hand_out(&[event(1)]);
        workflow.hand_out(&[event(2)]);
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
            workflow.tail().viewers.len(),
            1,
            "the refusing one is off the list"
        );
        publish(&hub, &id, 3..=3).await;
        assert_eq!(other.seqs(), [1, 2, 3]);
    }

    fn event(seq: u64) -> Arc<StoredEvent> {
        StoredEvent::from_json(seq, format!(r#"{{"seq":{seq}}}"#))
    }

    #[test]
    fn recent_events_serve_only_what_they_hold_without_a_gap() {
        let workflow = Hub::new_live("wf", Lifecycle::default(), 0, 0);
        assert!(workflow.recent_after(0, 10).is_none(), "nothing held yet");
        for seq in 5..=9 {
            workflow.tail().push(event(seq));
        }
        let seqs = |page: Option<Vec<Arc<StoredEvent>>>| {
            page.map(|p| p.iter().map(|e| e.seq()).collect::<Vec<_>>())
        };
        assert_eq!(
            seqs(workflow.recent_after(4, 10)),
            Some(vec![5, 6, 7, 8, 9])
        );
        assert_eq!(seqs(workflow.recent_after(6, 2)), Some(vec![7, 8]));
        assert_eq!(
            seqs(workflow.recent_after(3, 10)),
            None,
            "4 is not held: the store has it"
        );
        assert_eq!(
            seqs(workflow.recent_after(9, 10)),
            None,
            "nothing after the last"
        );
    }

    #[test]
    fn recent_events_are_bounded_by_bytes() {
        let mut recent = Tail::new(0);
        let big = "x".repeat(RECENT_BYTES / 3);
        for seq in 1..=5 {
            recent.push(StoredEvent::from_json(seq, big.clone()));
        }
        assert_eq!(recent.events.len(), 3);
        assert_eq!(recent.events.front().map(|e| e.seq()), Some(3));
        assert!(recent.bytes <= RECENT_BYTES);
    }
}
