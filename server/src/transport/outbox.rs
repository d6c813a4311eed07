//! A connection's outgoing queue, bounded by bytes, and the writer task that drains it.
//!
//! The connection's main task never waits on the network to send: it pushes into the outbox,
//! which fails once the queued bytes would pass the limit (the caller then closes with 4008).
//! The writer takes *everything* queued at once and writes it with one flush, so a reader that
//! is behind gets many frames per syscall instead of one write per frame.
//!
//! Sockets queue WebSocket [`Message`]s; event streams queue their own items ([`Frame`]), so
//! both kinds of connection are bounded, and cut off when too slow, by the same code.
//!
//! A socket's frame is not always queued: when nothing is queued before it and the writer is
//! idle, [`Outbox::push`] writes it to the socket there and then, if the socket takes it
//! without waiting. A live viewer is mostly sent one event at a time, and handing each to its
//! writer task cost a task wake-up per delivery — the scheduler's work, and the wait in its run
//! queue behind every other woken task, which is where a loaded server's fan-out latency went.
//! Order holds because a frame is written straight away only while the queue is empty and the
//! writer does not hold the socket, and the writer holds it from taking frames off the queue
//! until they are written.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{stream::SplitSink, Sink, SinkExt};
use tokio::sync::Notify;

/// The writing half of a WebSocket.
pub type SocketSink = SplitSink<WebSocket, Message>;

/// The queue is full; the frame was not queued.
#[derive(Debug)]
pub struct Full;

/// What [`Frame::write_now`] did with a frame.
pub enum WriteNow<F> {
    /// Written to the socket.
    Written,
    /// Taken, but not all of it written yet: the writer must flush.
    Buffered,
    /// The socket would make us wait: queue the frame instead.
    NotReady(F),
    /// The socket failed; the frame is dropped (the writer finds the failure and stops).
    Failed,
}

/// What an outbox holds: something with a size in bytes, and a way to say "closed, and why".
pub trait Frame: Send + Sized + 'static {
    /// Where frames may be written without queueing them (see the module doc);
    /// [`std::convert::Infallible`] for a connection whose frames are always queued.
    type Sink: Send + 'static;
    /// Bytes it counts against the limit.
    fn size(&self) -> usize;
    /// The frame that closes the connection.
    fn close(code: u16, reason: &str) -> Self;
    /// True for the frame made by [`Frame::close`].
    fn is_close(&self) -> bool;
    /// Write this frame to `sink` if it can be done without waiting.
    fn write_now(self, sink: &mut Self::Sink) -> WriteNow<Self>;
}

impl Frame for Message {
    type Sink = SocketSink;

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

    fn write_now(self, sink: &mut SocketSink) -> WriteNow<Self> {
        // Polled once, with a waker that does nothing: whatever is left pending is finished by
        // the writer task, which polls again with its own waker.
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let mut sink = Pin::new(sink);
        match sink.as_mut().poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return WriteNow::Failed,
            Poll::Pending => return WriteNow::NotReady(self),
        }
        if sink.as_mut().start_send(self).is_err() {
            return WriteNow::Failed;
        }
        match sink.poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => WriteNow::Written,
            Poll::Ready(Err(_)) => WriteNow::Failed,
            Poll::Pending => WriteNow::Buffered,
        }
    }
}

pub struct Outbox<F: Frame = Message> {
    queue: Mutex<Queue<F>>,
    /// The socket, while the writer is idle: [`Outbox::push`] may write to it directly. The
    /// writer takes it out while it writes what was queued, and puts it back after.
    socket: Mutex<Option<F::Sink>>,
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
            socket: Mutex::new(None),
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

    /// Write a frame now if nothing is queued and the socket takes it without waiting (see the
    /// module doc); else queue it, or fail with [`Full`] if it would pass the byte limit.
    pub fn push(&self, message: F) -> Result<(), Full> {
        let message = match self.write_now(message) {
            Some(message) => message,
            None => return Ok(()),
        };
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

    /// Write `message` straight to the idle socket; gives it back when it must be queued.
    fn write_now(&self, message: F) -> Option<F> {
        // Not waited for: the writer or another producer holding the socket means "queue it".
        let Ok(mut socket) = self.socket.try_lock() else {
            return Some(message);
        };
        let Some(sink) = socket.as_mut() else {
            return Some(message);
        };
        {
            let queue = self.lock();
            if !queue.frames.is_empty() || queue.closing {
                return Some(message);
            }
        }
        match message.write_now(sink) {
            WriteNow::Written => None,
            WriteNow::NotReady(message) => Some(message),
            WriteNow::Buffered | WriteNow::Failed => {
                drop(socket);
                // The writer flushes what is left, or finds the failure and stops.
                self.queued.notify_one();
                None
            }
        }
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
        let mut frames = VecDeque::new();
        loop {
            self.take_into(&mut frames);
            if !frames.is_empty() {
                return frames;
            }
            self.queued.notified().await;
        }
    }

    /// Move everything queued into `frames` (empty). The two buffers are swapped, so both keep
    /// their capacity: a queue taken whole would be allocated anew for the next frame.
    fn take_into(&self, frames: &mut VecDeque<F>) {
        debug_assert!(frames.is_empty());
        let mut queue = self.lock();
        if !queue.frames.is_empty() {
            queue.bytes = 0;
            std::mem::swap(&mut queue.frames, frames);
            drop(queue);
            self.drained.notify_one();
        }
    }

    fn socket(&self) -> std::sync::MutexGuard<'_, Option<F::Sink>> {
        self.socket.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Outbox<Message> {
    /// The writer task: write what was queued, and flush what [`Outbox::push`] left unflushed,
    /// until a close frame went out or the peer is gone. Between rounds the socket is left in
    /// the outbox for `push` to write to.
    pub async fn write_to(self: Arc<Self>, sink: SocketSink) {
        /// Takes the socket out of the outbox when the writer ends, even when it is aborted:
        /// the connection is closed when its task ends, not when the last holder of the outbox
        /// lets go of it.
        struct Detach<'a>(&'a Outbox<Message>);
        impl Drop for Detach<'_> {
            fn drop(&mut self) {
                self.0.socket().take();
            }
        }
        let _detach = Detach(&self);
        *self.socket() = Some(sink);
        let mut frames = VecDeque::new();
        loop {
            self.queued.notified().await;
            let Some(mut sink) = self.socket().take() else {
                return;
            };
            self.take_into(&mut frames);
            let mut closed = false;
            for frame in frames.drain(..) {
                closed |= frame.is_close();
                if sink.feed(frame).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() || closed {
                return;
            }
            *self.socket() = Some(sink);
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
