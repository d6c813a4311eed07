//! The in-memory tail of a live workflow's log, and the viewers that follow it live.
//!
//! One lock over both: a reader goes live only if it holds every event appended so far
//! ([`super::Feed::go_live`]), and from then on the appender queues each new event on it
//! itself ([`LiveViewer`]), under the same lock, so it gets each event after its cursor exactly
//! once, in `seq` order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::store::StoredEvent;

/// A live workflow's latest events are kept in memory, at most this many and this many bytes
/// of JSON, so readers that resume a little behind (a reconnect storm after a network blip) are
/// served without the store. The byte bound keeps a workflow of huge events from holding much.
pub(super) const RECENT_EVENTS: usize = 2048;
pub(super) const RECENT_BYTES: usize = 256 * 1024;
/// A tail nobody follows and nothing was appended to for this long lets its events go: a
/// reader that comes later reads the store.
pub(super) const IDLE_TAIL: Duration = Duration::from_secs(120);

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

/// A viewer on a workflow's live list.
struct LiveEntry {
    /// The reader's cursor when it went live: it already has every event up to this `seq`.
    after: u64,
    viewer: Arc<dyn LiveViewer>,
}

pub(super) struct Tail {
    /// The latest events (see [`RECENT_EVENTS`]), in `seq` order with no gap (pushed under the
    /// writer lock).
    events: VecDeque<Arc<StoredEvent>>,
    /// The JSON bytes of `events`.
    bytes: usize,
    /// The `seq` of the last event appended (`events` may hold none of them: they are bounded).
    pub appended_through: u64,
    /// When the last event was appended (or the tail was made), for [`Tail::forget_if_idle`].
    last_append: Instant,
    /// Readers that caught up with the log, by the number they went live with.
    viewers: HashMap<u64, LiveEntry>,
    /// The number the next viewer to go live gets, so it can be taken off the list again.
    next_viewer: u64,
}

impl Tail {
    pub fn new(appended_through: u64) -> Self {
        Self {
            events: VecDeque::new(),
            bytes: 0,
            appended_through,
            last_append: Instant::now(),
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

    /// Keep `events` (just appended, in `seq` order) and queue them on every live viewer,
    /// taking off the list any that refuses one.
    pub fn hand_out(&mut self, events: &[Arc<StoredEvent>]) {
        for event in events {
            self.push(event.clone());
        }
        self.last_append = Instant::now();
        self.viewers.retain(|_, entry| {
            let mut new = events.iter().filter(|e| e.seq() > entry.after);
            new.all(|event| entry.viewer.deliver(event))
        });
    }

    /// Up to `limit` events with `seq > after`, if the tail still holds `after + 1`.
    pub fn recent_after(&self, after: u64, limit: usize) -> Option<Vec<Arc<StoredEvent>>> {
        let first = self.events.front()?.seq();
        if after + 1 < first || after >= self.events.back()?.seq() {
            return None;
        }
        let skip = usize::try_from(after + 1 - first).ok()?;
        Some(self.events.iter().skip(skip).take(limit).cloned().collect())
    }

    /// Put a reader holding every event through `after` on the live list; its number.
    pub fn add_viewer(&mut self, after: u64, viewer: Arc<dyn LiveViewer>) -> u64 {
        let id = self.next_viewer;
        self.next_viewer += 1;
        self.viewers.insert(id, LiveEntry { after, viewer });
        id
    }

    pub fn remove_viewer(&mut self, id: u64) {
        self.viewers.remove(&id);
    }

    #[cfg(test)]
    pub fn viewers(&self) -> usize {
        self.viewers.len()
    }

    /// Let the kept events go if nobody follows live and nothing was appended for
    /// [`IDLE_TAIL`] as of `now`; true when it did.
    pub fn forget_if_idle(&mut self, now: Instant) -> bool {
        let idle = now.saturating_duration_since(self.last_append) >= IDLE_TAIL;
        if !idle || !self.viewers.is_empty() || self.events.is_empty() {
            return false;
        }
        self.events = VecDeque::new();
        self.bytes = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> Arc<StoredEvent> {
        StoredEvent::from_json(seq, format!(r#"{{"seq":{seq}}}"#))
    }

    #[test]
    fn recent_events_serve_only_what_they_hold_without_a_gap() {
        let mut tail = Tail::new(0);
        assert!(tail.recent_after(0, 10).is_none(), "nothing held yet");
        tail.hand_out(&(5..=9).map(event).collect::<Vec<_>>());
        let seqs = |page: Option<Vec<Arc<StoredEvent>>>| {
            page.map(|p| p.iter().map(|e| e.seq()).collect::<Vec<_>>())
        };
        assert_eq!(seqs(tail.recent_after(4, 10)), Some(vec![5, 6, 7, 8, 9]));
        assert_eq!(seqs(tail.recent_after(6, 2)), Some(vec![7, 8]));
        assert_eq!(seqs(tail.recent_after(3, 10)), None, "4 is not held");
        assert_eq!(
            seqs(tail.recent_after(9, 10)),
            None,
            "nothing after the last"
        );
    }

    #[test]
    fn recent_events_are_bounded_by_bytes() {
        let mut tail = Tail::new(0);
        let big = "x".repeat(RECENT_BYTES / 3);
        for seq in 1..=5 {
            tail.push(StoredEvent::from_json(seq, big.clone()));
        }
        assert_eq!(tail.events.len(), 3);
        assert_eq!(tail.events.front().map(|e| e.seq()), Some(3));
        assert!(tail.bytes <= RECENT_BYTES);
    }

    #[test]
    fn an_idle_tail_nobody_follows_lets_its_events_go() {
        let mut tail = Tail::new(0);
        tail.hand_out(&[event(1), event(2)]);
        let soon = Instant::now();
        assert!(!tail.forget_if_idle(soon), "appended just now");
        let later = soon + IDLE_TAIL;
        assert!(tail.forget_if_idle(later));
        assert!(tail.recent_after(0, 10).is_none());
        assert_eq!(tail.appended_through, 2, "the position is kept");
        struct Taker;
        impl LiveViewer for Taker {
            fn deliver(&self, _: &Arc<StoredEvent>) -> bool {
                true
            }
        }
        tail.hand_out(&[event(3)]);
        tail.add_viewer(3, Arc::new(Taker));
        assert!(
            !tail.forget_if_idle(later + IDLE_TAIL),
            "a followed tail stays"
        );
    }
}
