//! [`Feed`]: one reader's ordered view of a workflow — each event once, in `seq` order, from its
//! start cursor on: from the workflow's in-memory tail when it holds what comes next, else
//! from the store, a bounded page at a time, then waiting for the next append. Built-in
//! workflows and agents (their inputs) read this way; viewers read through a
//! [`super::Subscription`], which hands them over to the appender once they have caught up.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::watch;

use super::workflow::LiveWorkflow;
use super::LiveGuard;
use super::LiveViewer;
use crate::error::Result;
use crate::store::{EventStore, StoredEvent};

/// Events read from the store at a time when replaying or catching up, and the bytes of JSON
/// they may hold (at least one event is read, however big): bound a reader's memory.
pub(super) const READ_PAGE: usize = 64;
pub(super) const READ_BYTES: usize = 256 * 1024;
/// Events a reader takes from memory at once (shared `Arc`s: no copy).
const RECENT_PAGE: usize = 512;

pub struct Feed {
    /// Keeps the workflow (and so its tail and its append signal) alive while the feed lives.
    pub(super) workflow: Arc<LiveWorkflow>,
    store: Arc<dyn EventStore>,
    /// Changes after every append: what a caught-up reader waits on.
    appended: watch::Receiver<u64>,
    /// The last `seq` handed out.
    pub(super) cursor: u64,
    /// Read and not handed out yet (at most one page).
    buffered: VecDeque<Arc<StoredEvent>>,
    /// The log's `last_seq` when the feed started: the end of the backlog.
    replay_until: u64,
}

impl Feed {
    pub(super) fn new(
        workflow: Arc<LiveWorkflow>,
        store: Arc<dyn EventStore>,
        after: u64,
        replay_until: u64,
    ) -> Self {
        let appended = workflow.appended.subscribe();
        Self {
            workflow,
            store,
            appended,
            cursor: after,
            buffered: VecDeque::new(),
            replay_until,
        }
    }

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
        let id = tail.add_viewer(self.cursor, viewer);
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

    /// The next event; `None` when the workflow is gone from the hub for good (not while the
    /// feed holds it). Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<Option<Arc<StoredEvent>>> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                if event.seq() == self.cursor + 1 {
                    self.cursor = event.seq();
                    return Ok(Some(event));
                }
                continue;
            }
            let appended = *self.appended.borrow_and_update();
            if self.cursor < appended {
                let recent = self.workflow.tail().recent_after(self.cursor, RECENT_PAGE);
                let page = match recent {
                    Some(page) => page,
                    None => {
                        self.store
                            .read(&self.workflow.id, self.cursor, READ_PAGE, READ_BYTES)
                            .await?
                    }
                };
                if !page.is_empty() {
                    self.buffered.extend(page);
                    continue;
                }
            }
            if self.appended.changed().await.is_err() {
                return Ok(None);
            }
        }
    }
}
