//! [`Subscription`]: how a viewer follows a workflow — catch up from the store (the backlog
//! after its cursor), say so once (`replay_done`), then go live: from then on the appender
//! queues each new event on the viewer itself ([`LiveViewer`]). Every viewer transport (the
//! subscriber socket, and the event streams beside it) follows a workflow through one of these,
//! so none of them copies the hand-over, which is where a gap or a duplicate would hide.
//!
//! Guarantees: the viewer gets every event with `seq > after`, each once, in `seq` order —
//! the backlog through [`Subscription::next`], then the live events through
//! [`LiveViewer::deliver`] — and `ReplayDone` once, after the events that existed when the
//! subscription started.

use std::sync::Arc;

use app::protocol::WorkflowInfo;

use super::{Feed, Hub, LiveGuard, LiveViewer};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::store::StoredEvent;

/// What the viewer must send next while it catches up.
pub enum Catchup {
    /// The next event of the backlog (or one appended while catching up).
    Event(Arc<StoredEvent>),
    /// Every event that existed when the subscription started has been handed out.
    ReplayDone { last_seq: u64 },
}

pub struct Subscription {
    /// Where events come from until the viewer has caught up; `None` once live. Boxed: most
    /// viewers are live most of the time, and an idle socket should not carry a reader's room.
    feed: Option<Box<Feed>>,
    /// Set once caught up: the viewer's place on the workflow's live list.
    live: Option<LiveGuard>,
    viewer: Arc<dyn LiveViewer>,
    /// The cursor it started from, to count a replay that replayed something.
    started_after: u64,
    replay_done_sent: bool,
    /// Counts replays.
    metrics: Arc<Metrics>,
}

impl Subscription {
    /// Follow workflow `id` from `seq > after` on behalf of `viewer`. Also returns the workflow
    /// as it was at the start: the backlog ends at its `last_seq`.
    pub async fn start(
        hub: &Arc<Hub>,
        id: &str,
        after: u64,
        viewer: Arc<dyn LiveViewer>,
    ) -> Result<(Self, WorkflowInfo)> {
        let (feed, info) = hub.feed(id, after).await?;
        let subscription = Self {
            feed: Some(Box::new(feed)),
            live: None,
            viewer,
            started_after: after,
            replay_done_sent: false,
            metrics: hub.metrics().clone(),
        };
        Ok((subscription, info))
    }

    /// True while events of the backlog are still to come (a transport reads them only as fast
    /// as its peer takes them).
    pub fn replaying(&self) -> bool {
        self.feed.as_ref().is_some_and(|f| !f.backlog_done())
    }

    /// What to send next while catching up. Once the viewer is live this never resolves: the
    /// appender delivers. `None` when the workflow is gone. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Catchup>> {
        loop {
            let Some(feed) = self.feed.as_mut() else {
                return std::future::pending().await;
            };
            if feed.backlog_done() {
                if !self.replay_done_sent {
                    self.replay_done_sent = true;
                    if feed.cursor() > self.started_after {
                        self.metrics.replays.inc();
                    }
                    let last_seq = feed.cursor();
                    return Ok(Some(Catchup::ReplayDone { last_seq }));
                }
                if let Some(feed) = self.feed.take() {
                    match feed.go_live(self.viewer.clone()) {
                        Ok(live) => {
                            self.live = Some(live);
                            continue;
                        }
                        Err(feed) => self.feed = Some(Box::new(feed)),
                    }
                }
            }
            let Some(feed) = self.feed.as_mut() else {
                continue;
            };
            return Ok(feed.next().await?.map(Catchup::Event));
        }
    }

    /// Stop following live now (nothing more is delivered), e.g. before a closing handshake.
    pub fn stop(&mut self) {
        self.live = None;
        self.feed = None;
    }
}
