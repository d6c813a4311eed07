//! The event log, behind [`EventStore`]. The store owns the log and `seq`; nothing else
//! assigns a `seq` or changes a stored event.
//!
//! Implementations: [`sqlite::SqliteStore`] (the default: durable, embedded; it writes through
//! the [`log_writer::LogWriter`]; its appends are committed in groups on the
//! [`commit_thread::CommitThread`]) and
//! [`memory::MemoryStore`] (in-process, nothing survives a restart; for measuring the hub
//! without storage). [`redis::RedisStore`] keeps them in Redis, for many nodes sharing one set
//! of workflows (not selectable yet).

pub mod commit_thread;
#[cfg(test)]
mod contract;
pub mod log_writer;
pub mod memory;
pub mod redis;
pub mod sqlite;

use std::collections::HashMap;
use std::sync::Arc;

use app::protocol::{vocab, EventBody, LoggedEvent, WorkflowInfo};
use axum::extract::ws::Utf8Bytes;

use crate::error::Result;

/// RFC 3339 UTC with milliseconds, as the protocol wants every timestamp.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A new, `pending` workflow with an empty log. Its id is `wf_` + a ULID, so ids sort by
/// creation time (the workflow list is newest first by id).
pub fn new_workflow(kind: &str, title: Option<String>) -> WorkflowInfo {
    let now = now_rfc3339();
    WorkflowInfo {
        id: format!("wf_{}", ulid::Ulid::new()),
        kind: kind.to_owned(),
        title,
        status: app::protocol::WorkflowStatus::Pending,
        last_seq: 0,
        created_at: now.clone(),
        updated_at: now,
    }
}

/// A retry key: a producer's event `id`, or a user input's `client_msg_id`. Kept with the
/// event, so a retry is recognised for as long as the event is kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdempotencyKey {
    EventId(String),
    ClientMsgId(String),
}

/// An event on its way into the log.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub body: EventBody,
    pub key: Option<IdempotencyKey>,
}

/// An event in the log, serialized once: every subscriber is sent the same `json` bytes.
/// Only the JSON is kept (not a parsed copy too): a reader that needs the fields parses it.
#[derive(Debug)]
pub struct StoredEvent {
    seq: u64,
    /// The event as JSON text, shared (not copied) by every send.
    pub json: Utf8Bytes,
    /// When its append committed, for events fresh from an append (not read back from
    /// storage): what the fan-out latency is measured from.
    pub appended_at: Option<std::time::Instant>,
}

impl StoredEvent {
    pub fn new(event: &LoggedEvent) -> Arc<Self> {
        // Serializing our own types into a String cannot fail.
        let json = serde_json::to_string(event).unwrap_or_default();
        Arc::new(Self {
            seq: event.seq,
            json: json.into(),
            appended_at: Some(std::time::Instant::now()),
        })
    }

    /// An event about to be stored, serialized once from its parts (as [`LoggedEvent`] would
    /// write it, field for field, without copying the body into one first).
    pub fn serialize(seq: u64, ts: &str, workflow_id: &str, body: &EventBody) -> Arc<Self> {
        /// [`LoggedEvent`] by reference: the same fields in the same order.
        #[derive(serde::Serialize)]
        struct Logged<'a> {
            seq: u64,
            ts: &'a str,
            workflow_id: &'a str,
            #[serde(flatten)]
            body: &'a EventBody,
        }
        let event = Logged {
            seq,
            ts,
            workflow_id,
            body,
        };
        // Serializing our own types into a String cannot fail.
        let json = serde_json::to_string(&event).unwrap_or_default();
        Arc::new(Self {
            seq,
            json: json.into(),
            appended_at: Some(std::time::Instant::now()),
        })
    }

    /// An event read back from storage, as it was serialized at append.
    pub fn from_json(seq: u64, json: String) -> Arc<Self> {
        Arc::new(Self {
            seq,
            json: json.into(),
            appended_at: None,
        })
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The event's `type`, read off the JSON without parsing it. Every stored event is
    /// serialized by [`LoggedEvent`]: `seq`, `ts`, `workflow_id`, then the body, whose first
    /// field is `type`. Neither `ts` nor a workflow id holds a quote, so the first `"type":"`
    /// of the text is the event's own (a `"type"` key inside a field, say a tool's input, comes
    /// after it).
    pub fn kind(&self) -> &str {
        let text = self.json.as_str();
        const KEY: &str = "\"type\":\"";
        let Some(at) = text.find(KEY) else { return "" };
        let rest = &text[at + KEY.len()..];
        rest.split('"').next().unwrap_or("")
    }

    /// Is this a `user_input` event?
    pub fn is_user_input(&self) -> bool {
        self.kind() == vocab::EventKind::USER_INPUT
    }

    /// Is this something a person said to the workflow's agent — a `user_input`, or a person's
    /// answer to an interrupt (an `interrupt_resolved` with a `user`)? The inputs after the last
    /// event that is not one are those the agent has not answered yet.
    pub fn is_input(&self) -> bool {
        match self.kind() {
            vocab::EventKind::USER_INPUT => true,
            // Rare enough to parse: the `user` field is what tells.
            vocab::EventKind::INTERRUPT_RESOLVED => matches!(
                self.event().map(|e| e.body),
                Ok(EventBody::InterruptResolved { user: Some(_), .. })
            ),
            _ => false,
        }
    }

    /// The event's fields.
    pub fn event(&self) -> Result<LoggedEvent> {
        serde_json::from_str(self.json.as_str()).map_err(|e| {
            crate::error::LanternError::Storage(format!(
                "stored event {} does not parse: {e}",
                self.seq
            ))
        })
    }
}

/// Where workflows and their logs live.
///
/// Guarantees every implementation gives:
/// - `append` is atomic: all of a batch is appended, in order, or none of it.
/// - `append_if` appends only if the log still ends at the `seq` the caller expects, checked in
///   the same atomic step (a compare-and-set); else it refuses with
///   [`crate::error::LanternError::LogMoved`], appending nothing. This is what lets several
///   nodes append to one workflow without a lock held across the network: each checks a batch
///   against its view of the log, and the store takes it only if that view is still current.
/// - `append` refuses a batch holding a retry key that is in the workflow's log already with
///   [`crate::error::LanternError::RetryKeyLogged`] (appending none of it), so callers need not look keys
///   up before every append; a key is never logged twice.
/// - `seq` is per workflow, starts at 1, is contiguous and never reused; it is assigned inside
///   `append`, which returns only once the batch is stored.
/// - `read` returns events in `seq` order, exactly those with `seq > after`, at most `limit`
///   and at most `max_bytes` of JSON (but at least one event when there is one).
/// - The workflow object's `status`, `last_seq` and `updated_at` follow the appended events
///   (a `workflow_status` event sets `status`) in the same step as the append.
/// - Appends to one workflow are serialized by each caller (a hub holds that workflow's writer
///   lock); appends from several hubs sharing one store are ordered by the store, and a hub
///   that checked against a stale view is told so by `append_if`.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Register `info` — a new workflow, `pending`, with an empty log, as [`new_workflow`]
    /// makes it, perhaps with an id of the caller's choosing — as user `owner`'s. An id that is
    /// taken is `conflict`, and nothing changes.
    async fn insert_workflow(&self, info: WorkflowInfo, owner: &str) -> Result<WorkflowInfo>;
    /// Register a new workflow of `kind` of user `owner`, with a fresh id.
    async fn create_workflow(
        &self,
        kind: &str,
        title: Option<String>,
        owner: &str,
    ) -> Result<WorkflowInfo> {
        self.insert_workflow(new_workflow(kind, title), owner).await
    }
    async fn workflow(&self, id: &str) -> Result<Option<WorkflowInfo>>;
    /// The user who owns workflow `id`, if it exists.
    async fn owner(&self, id: &str) -> Result<Option<String>>;
    /// The workflows of `owner` (every workflow when `None`), newest first.
    async fn list_workflows(&self, owner: Option<&str>) -> Result<Vec<WorkflowInfo>>;
    /// Append a batch at the log's end, wherever that is; returns the stored events, in order.
    async fn append(
        &self,
        workflow_id: &str,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Arc<StoredEvent>>> {
        self.append_if(workflow_id, None, events).await
    }
    /// Append a batch if the log ends at `expected_last_seq` (`None`: wherever it ends); else
    /// `LogMoved` with where it ends, and nothing appended. Returns the stored events, in order.
    async fn append_if(
        &self,
        workflow_id: &str,
        expected_last_seq: Option<u64>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Arc<StoredEvent>>>;
    /// Events with `seq > after`, in order: at most `limit` of them, and no more than
    /// `max_bytes` of JSON in all — except that the first is returned however big it is, so a
    /// reader always makes progress. A page that stopped early is not the log's end: read on
    /// after its last event.
    async fn read(
        &self,
        workflow_id: &str,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Arc<StoredEvent>>>;
    /// How many of `owner`'s workflows are open (not finished).
    async fn open_workflows(&self, owner: &str) -> Result<usize>;
    /// The `seq` each of these retry keys was appended at, for those already in the log
    /// (one lookup for a whole batch: a publisher's retries are checked in one round trip).
    async fn seqs_of_keys(
        &self,
        workflow_id: &str,
        keys: &[&IdempotencyKey],
    ) -> Result<HashMap<IdempotencyKey, u64>>;
    /// Delete finished workflows (terminal status) last updated before `cutoff` (RFC 3339),
    /// with their events; returns their ids.
    async fn delete_finished_before(&self, cutoff: &str) -> Result<Vec<String>>;
}
