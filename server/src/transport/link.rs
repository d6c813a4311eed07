//! What both socket kinds do the same way, for one connection: queue frames on the bounded
//! outbox (overflow: close 4008), answer errors, enforce the frame rate limit (then 4029),
//! notice a dead peer by its missing pongs, and close with 4001 when the caller's credential is
//! revoked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::protocol::{ErrorCode, ServerFrame};
use axum::extract::ws::{Message, Utf8Bytes};
use tokio::sync::broadcast::error::RecvError;

use super::close;
use super::outbox::{Frame, Outbox};
use crate::auth::Caller;
use crate::error::LanternError;
use crate::limits::{FrameLimiter, Verdict};
use crate::metrics::Metrics;
use crate::AppState;

/// Queue `message`; when the outbox is full, close the connection with 4008 (the peer is too
/// slow and resumes with `after`) and return false.
pub fn push_or_close<F: Frame>(outbox: &Outbox<F>, metrics: &Metrics, message: F) -> bool {
    if outbox.push(message).is_ok() {
        return true;
    }
    if !outbox.is_closing() {
        metrics.slow_consumer_closes.inc();
        outbox.close(close::TOO_SLOW, "too slow; resume with after");
    }
    false
}

pub struct Link {
    pub state: AppState,
    /// Who is connected: named in their inputs; its credential's revocation closes us.
    pub caller: Caller,
    pub outbox: Arc<Outbox>,
    /// When the peer last showed it is alive (any frame, pong or ping).
    last_seen: Instant,
    limiter: FrameLimiter,
    /// Frames per second and burst of `limiter`, for the `rate_limited` message.
    rate: (u32, u32),
}

impl Link {
    pub fn new(state: AppState, caller: Caller, rate: u32, burst: u32) -> Self {
        let outbox = Outbox::new(state.config.queue_bytes);
        Self::with_outbox(state, caller, rate, burst, outbox)
    }

    /// A link over an outbox made beforehand (a viewer's, which the appender already holds).
    pub fn with_outbox(
        state: AppState,
        caller: Caller,
        rate: u32,
        burst: u32,
        outbox: Arc<Outbox>,
    ) -> Self {
        Self {
            outbox,
            state,
            caller,
            last_seen: Instant::now(),
            limiter: FrameLimiter::new(rate, burst, Instant::now()),
            rate: (rate, burst),
        }
    }

    /// The ping period of this server.
    pub fn heartbeat(&self) -> Duration {
        self.state.config.heartbeat()
    }

    /// Queue a control frame; an overflowing outbox closes the connection with 4008.
    pub fn send(&self, frame: &ServerFrame) {
        let text = serde_json::to_string(frame).unwrap_or_default();
        self.push(Message::Text(text.into()));
    }

    pub fn push(&self, message: Message) {
        push_or_close(&self.outbox, self.state.hub.metrics(), message);
    }

    pub fn error(&self, code: ErrorCode, message: &str, id: Option<String>) {
        self.send(&ServerFrame::Error {
            code,
            message: message.to_owned(),
            id,
        });
    }

    pub fn error_from(&self, e: &LanternError, id: Option<String>) {
        self.error(e.code(), &e.to_string(), id);
    }

    /// A ping is due: true when the peer missed the last two, else the ping is queued.
    pub fn peer_is_dead(&mut self) -> bool {
        let heartbeat = self.heartbeat();
        if self.last_seen.elapsed() > heartbeat * 2 + heartbeat / 2 {
            self.state.hub.metrics().dead_peer_closes.inc();
            return true;
        }
        self.push(Message::Ping(Default::default()));
        false
    }

    /// Apply the frame rate limit; false when the frame must not be processed.
    fn within_rate(&mut self) -> bool {
        match self.limiter.check(Instant::now()) {
            Verdict::Allow => true,
            Verdict::LimitAndWarn => {
                let (rate, burst) = self.rate;
                let message = format!(
                    "too many frames: at most {rate} per second in bursts of {burst}; frames over it are dropped, and a client that keeps on is disconnected (4029)"
                );
                self.error(ErrorCode::RateLimited, &message, None);
                false
            }
            Verdict::Limit => false,
            Verdict::Close => {
                self.state.hub.metrics().rate_limit_closes.inc();
                self.outbox.close(close::RATE_LIMITED, "rate limited");
                false
            }
        }
    }

    /// Handle what is the same on every socket; returns a text frame's text for the caller
    /// to interpret, or `None` when nothing is left to do (control frames, binary frames,
    /// frames over the rate limit or the size limit `max_bytes`).
    pub fn on_message(&mut self, message: Message, max_bytes: usize) -> Option<Utf8Bytes> {
        self.last_seen = Instant::now();
        if matches!(message, Message::Text(_) | Message::Binary(_)) && !self.within_rate() {
            return None;
        }
        match message {
            Message::Text(text) if max_bytes > 0 && text.len() > max_bytes => {
                self.outbox.close(close::TOO_LARGE, "frame too large");
                None
            }
            Message::Text(text) => Some(text),
            Message::Binary(_) => {
                let why = "binary frames are not accepted; send JSON text";
                self.error(ErrorCode::BadRequest, why, None);
                None
            }
            // A ping is answered by the WebSocket layer itself; it still shows the peer is alive.
            Message::Pong(_) | Message::Ping(_) => None,
            Message::Close(_) => {
                self.outbox.close(close::NORMAL, "bye");
                None
            }
        }
    }

    /// The server is shutting down: close with 1001 so the peer reconnects later.
    pub fn shutting_down(&self) {
        self.outbox
            .close(close::GOING_AWAY, "server shutting down; reconnect");
    }

    /// A token or session was revoked: close with 4001 if it was ours. A receiver that fell
    /// behind the announcements asks the accounts instead.
    pub async fn on_revocation(&mut self, revoked: Result<Arc<str>, RecvError>) {
        let ours = match revoked {
            Ok(id) => self.caller.uses(&id),
            Err(RecvError::Lagged(_)) => !matches!(
                self.state.accounts.still_valid(&self.caller).await,
                Ok(true)
            ),
            // The accounts are gone: the server is stopping; other branches end the loop.
            Err(RecvError::Closed) => false,
        };
        if ours {
            self.outbox
                .close(close::UNAUTHORIZED, "the token or session was revoked");
        }
    }
}
