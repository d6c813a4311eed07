//! [`LiveWorkflow`]: one workflow the hub is holding — its writer (the state appends are
//! checked against), its in-memory tail and live viewers, its append signal and its agents.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::presence::AgentPresence;
use super::tail::Tail;
use crate::lifecycle::Lifecycle;

/// What an appender holds the writer lock for: the state every append is checked against.
pub(super) struct Writer {
    pub lifecycle: Lifecycle,
    /// Bytes of JSON in the log, for the log size quota.
    pub log_bytes: u64,
    /// The `seq` of the last event folded into `lifecycle`: where this hub saw the log end. An
    /// append expects the log to end here (`EventStore::append_if`); when other nodes share the
    /// store and appended meanwhile, the hub folds their events in first.
    pub last_seq: u64,
}

pub struct LiveWorkflow {
    pub(super) id: String,
    /// Who owns it: named in list changes, so a list listener filters them without a query.
    pub(super) owner: Arc<str>,
    /// The writer lock: held for the whole of one append, so appends are ordered. It guards the
    /// state only an appender may change.
    pub(super) writer: tokio::sync::Mutex<Writer>,
    /// The `seq` of the last event appended, sent after each append: readers that have caught
    /// up ([`super::Feed`]) wait on it.
    pub(super) appended: watch::Sender<u64>,
    /// The `seq` of the last event that is not a `user_input`: inputs after it are the ones
    /// nobody has answered yet, which a (re)connecting agent is sent first.
    answered_through: AtomicU64,
    /// Connected agent sockets, and whose disconnect a grace timer is waiting on.
    agents: Mutex<AgentPresence>,
    /// The latest events and the viewers following live. A std mutex: never held across an
    /// await.
    tail: Mutex<Tail>,
}

impl LiveWorkflow {
    /// A workflow whose log ends at `last_seq` after `log_bytes` bytes, in state `lifecycle`.
    pub(super) fn new(
        id: &str,
        owner: Arc<str>,
        lifecycle: Lifecycle,
        answered: u64,
        last_seq: u64,
        log_bytes: u64,
    ) -> Arc<Self> {
        Arc::new(Self {
            id: id.to_owned(),
            owner,
            writer: tokio::sync::Mutex::new(Writer {
                lifecycle,
                log_bytes,
                last_seq,
            }),
            appended: watch::Sender::new(last_seq),
            answered_through: AtomicU64::new(answered),
            agents: Mutex::default(),
            tail: Mutex::new(Tail::new(last_seq)),
        })
    }

    pub(super) fn presence(&self) -> std::sync::MutexGuard<'_, AgentPresence> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// See [`LiveWorkflow::answered_through`].
    pub fn answered_through(&self) -> u64 {
        self.answered_through.load(Ordering::Relaxed)
    }

    pub(super) fn set_answered_through(&self, seq: u64) {
        self.answered_through.store(seq, Ordering::Relaxed);
    }
}
