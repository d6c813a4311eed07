//! A connection's outgoing queue, bounded by bytes, and the writer task that drains it.
//!
//! The connection's main task never waits on the network to send: it pushes into the outbox,
//! which fails once the queued bytes would pass the limit (the caller then closes with 4008).
//! The writer takes *everything* queued at once and writes it with one flush, so a reader that
//! is behind gets many frames per syscall instead of one write per frame.
//!
//! Sockets queue WebSocket [`Message`]s; event streams queue their own items ([`Frame`]), so
//! both kinds of connection are bounded, and cut off when too slow, by the same code.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{stream::SplitSink, SinkExt};
use tokio::sync::Notify;

/// The queue is full; the frame was not queued.
#[derive(Debug)]
pub struct Full;

/// What an outbox holds: something with a size in bytes, and a way to say "closed, and why".
pub trait Frame: Send + 'static {
    /// Bytes it counts against the limit.
    fn size(&self) -> usize;
    /// The frame that closes the connection.
    fn close(code: u16, reason: &str) -> Self;
    /// True for the frame made by [`Frame::close`].
    fn is_close(&self) -> bool;
}

impl Frame for Message {
    fn size(&self) -> usize {
        match self {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) => bytes.len(),
            _ => 16,
        }
    }

    fn close(code: u16, reason: &str) -> Self {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    }

    fn is_close(&self) -> bool {
        matches!(self, Message::Close(_))
    }
}

pub struct Outbox<F = Message> {
    queue: Mutex<Queue<F>>,
    /// Wakes the writer when frames are queued.
    queued: Notify,
    /// Wakes the connection task when the writer freed room.
    drained: Notify,
    /// Wakes the connection task when a close frame was queued from elsewhere (the appender
    /// closing a viewer that is too slow), so it can finish the closing handshake.
    closing: Notify,
    limit_bytes: usize,
}

struct Queue<F> {
    frames: VecDeque<F>,
    bytes: usize,
    /// A close frame is queued: nothing more is accepted, the writer stops after it.
    closing: bool,
}

impl<F> Default for Queue<F> {
    fn default() -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            closing: false,
        }
    }
}

impl<F: Frame> Outbox<F> {
    /// `limit_bytes` of 0 means no limit.
    pub fn new(limit_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::default(),
            queued: Notify::new(),
            drained: Notify::new(),
            closing: Notify::new(),
            limit_bytes: if limit_bytes == 0 {
                usize::MAX
            } else {
                limit_bytes
            },
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<F>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a frame, or fail with [`Full`] if it would pass the byte limit.
    pub fn push(&self, message: F) -> Result<(), Full> {
        let mut queue = self.lock();
        if queue.closing {
            return Ok(());
        }
        let bytes = message.size();
        if queue.bytes > 0 && queue.bytes.saturating_add(bytes) > self.limit_bytes {
            return Err(Full);
        }
        queue.bytes += bytes;
        queue.frames.push_back(message);
        drop(queue);
        self.queued.notify_one();
        Ok(())
    }

    /// Queue a close frame past the limit; nothing is accepted after it.
    pub fn close(&self, code: u16, reason: &str) {
        let mut queue = self.lock();
        if queue.closing {
            return;
        }
        queue.closing = true;
        queue.frames.push_back(F::close(code, reason));
        drop(queue);
        self.queued.notify_one();
        self.closing.notify_one();
    }

    /// Drop everything still queued and queue only a close frame: for a peer too slow to
    /// keep up, whose queued events are useless (it resumes with `after`) and cost memory.
    pub fn close_discarding(&self, code: u16, reason: &str) {
        {
            let mut queue = self.lock();
            queue.frames.clear();
            queue.bytes = 0;
        }
        self.close(code, reason);
    }

    pub fn is_closing(&self) -> bool {
        self.lock().closing
    }

    /// Less than half full: room to pull more of a backlog.
    pub fn has_room(&self) -> bool {
        self.lock().bytes < self.limit_bytes / 2
    }

    /// Resolves once a close frame is queued.
    pub async fn closed(&self) {
        while !self.is_closing() {
            self.closing.notified().await;
        }
    }

    /// Wait until the writer has drained some frames.
    pub async fn drained(&self) {
        self.drained.notified().await;
    }

    /// Take everything queued, waiting for at least one frame. Cancel-safe.
    pub async fn take_all(&self) -> VecDeque<F> {
        loop {
            {
                let mut queue = self.lock();
                if !queue.frames.is_empty() {
                    queue.bytes = 0;
                    let frames = std::mem::take(&mut queue.frames);
                    drop(queue);
                    self.drained.notify_one();
                    return frames;
                }
            }
            self.queued.notified().await;
        }
    }
}

impl Outbox<Message> {
    /// The writer task: drain, write, flush, until a close frame went out or the peer is gone.
    pub async fn write_to(self: Arc<Self>, mut sink: SplitSink<WebSocket, Message>) {
        loop {
            let frames = self.take_all().await;
            let mut closed = false;
            for frame in frames {
                closed |= matches!(frame, Message::Close(_));
                if sink.feed(frame).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() || closed {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_fails_past_the_byte_limit_and_close_always_fits() {
        let outbox = Outbox::<Message>::new(10);
        outbox.push(Message::Text("123456".into())).expect("fits");
        assert!(outbox.push(Message::Text("123456".into())).is_err());
        assert!(!outbox.has_room());
        outbox.close(4008, "too slow");
        assert!(outbox.is_closing());
    }

    #[test]
    fn close_discarding_drops_what_was_queued() {
        let outbox = Outbox::<Message>::new(100);
        outbox.push(Message::Text("queued".into())).expect("fits");
        outbox.close_discarding(4008, "too slow");
        let queue = outbox.lock();
        assert_eq!(queue.frames.len(), 1);
        assert!(matches!(queue.frames[0], Message::Close(_)));
    }

    #[test]
    fn one_frame_larger_than_the_limit_still_goes_when_the_queue_is_empty() {
        let outbox = Outbox::<Message>::new(4);
        outbox
            .push(Message::Text("longer than four".into()))
            .expect("an empty queue takes one");
    }
}
