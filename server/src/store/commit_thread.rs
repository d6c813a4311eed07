//! The thread that runs the event log's group commits.
//!
//! Why a thread of its own: a group commit is synchronous SQLite work (tens of microseconds per
//! append, milliseconds for a large group). Run on the runtime's worker that happened to take
//! the writer, it held up every other task queued on that worker — the sockets' reads and
//! writes — and the appends that arrived meanwhile waited for the worker to come back to them
//! through a chain of task wake-ups. In the bench's 200-agent streaming row (2 cores, loaded)
//! the mean append took 16 ms that way and 7 ms with this thread; the p50 delta latency went
//! from 30 to 14 ms (`lantern-bench --only "streaming: 200"`, same binary, an env toggle since
//! removed). On a quiet machine the hand-off costs a thread wake-up per group, not per
//! statement (which is what made sqlx's own thread slow, see `log_writer`): the latency row's
//! p99 was 1.47 ms with the thread and 1.56 ms without in the same run.
//!
//! Guarantees:
//! - Every [`CommitThread::wake`] is followed by at least one call of the work (a wake while
//!   the work runs makes it run once more), so nothing queued before a wake is left waiting.
//! - A panic in the work is logged and the thread carries on: the appends it held get "lost"
//!   errors (their senders are dropped), later ones are committed as usual.
//! - The thread ends once its `CommitThread` is dropped.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::Thread;

pub struct CommitThread {
    thread: Thread,
    /// Set when the owner goes: the thread returns at its next turn.
    closed: Arc<AtomicBool>,
}

impl CommitThread {
    /// Start the thread. `work` does what is queued and says whether there was anything; the
    /// thread sleeps between a `false` and the next [`wake`](Self::wake).
    pub fn spawn(mut work: impl FnMut() -> bool + Send + 'static) -> std::io::Result<Self> {
        let closed = Arc::new(AtomicBool::new(false));
        let stop = closed.clone();
        let handle = std::thread::Builder::new()
            .name("lantern-commit".into())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    match catch_unwind(AssertUnwindSafe(&mut work)) {
                        Ok(true) => {}
                        // A wake between the work's look at the queue and here is not lost:
                        // it leaves a token that makes this park return at once.
                        Ok(false) => std::thread::park(),
                        Err(_) => tracing::error!("a group commit panicked; carrying on"),
                    }
                }
            })?;
        Ok(Self {
            thread: handle.thread().clone(),
            closed,
        })
    }

    /// Something was queued: have the work run.
    pub fn wake(&self) {
        self.thread.unpark();
    }
}

impl Drop for CommitThread {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    #[test]
    fn everything_queued_before_a_wake_is_done() {
        let queue = Arc::new(Mutex::new(Vec::<usize>::new()));
        let done = Arc::new(AtomicUsize::new(0));
        let (q, d) = (queue.clone(), done.clone());
        let thread = CommitThread::spawn(move || {
            let taken = std::mem::take(&mut *q.lock().unwrap());
            d.fetch_add(taken.len(), Ordering::SeqCst);
            !taken.is_empty()
        })
        .expect("spawn");
        for n in 0..10_000 {
            queue.lock().unwrap().push(n);
            thread.wake();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while done.load(Ordering::SeqCst) < 10_000 {
            assert!(std::time::Instant::now() < deadline, "work left undone");
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_panic_does_not_stop_the_thread() {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let thread = CommitThread::spawn(move || {
            if r.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("the first group fails");
            }
            false
        })
        .expect("spawn");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while runs.load(Ordering::SeqCst) < 2 {
            thread.wake();
            assert!(std::time::Instant::now() < deadline, "the thread stopped");
            std::thread::yield_now();
        }
    }
}
