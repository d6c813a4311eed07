//! WebSocket transports, one file each, sharing the upgrade checks, the bounded [`outbox`] and
//! the closing handshake.
//!
//! - [`subscriber`]: `/ws/workflow/{id}`, viewers (browsers and programs).
//! - [`agent`]: `/ws/agent/{id}`, external agents publishing events.
//! - [`gate`]: what every upgrade must pass (Origin, token, ownership, connection limits).
//! - [`link`]: what every connection does the same way (errors, rate limit, pings, 4001).
//! - [`outbox`]: a connection's bounded outgoing queue and the task that writes it out.

pub mod agent;
pub mod gate;
pub mod link;
pub mod outbox;
pub mod subscriber;

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::{stream::SplitStream, StreamExt};

/// Close codes of PROTOCOL.md §4.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const TOO_LARGE: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const UNAUTHORIZED: u16 = 4001;
    pub const TOO_SLOW: u16 = 4008;
    pub const CURSOR_AHEAD: u16 = 4009;
    pub const RATE_LIMITED: u16 = 4029;
}

/// How long a closing connection may take to send what it has queued.
const CLOSE_GRACE: Duration = Duration::from_secs(30);

/// How long a closing connection waits for the peer to answer its close frame.
const CLOSE_ANSWER_WAIT: Duration = Duration::from_secs(5);

/// The closing handshake, once the connection's close frame is queued. Let the writer send what
/// is queued (the close frame last), but not forever: a peer that does not read would hold the
/// task and its queue. Then keep reading, and discarding, until the peer answers the close:
/// closing the TCP connection while its frames are still unread would make the kernel reset
/// it, and a reset can destroy our close frame before the peer reads it.
pub async fn finish_closing(
    writer: tokio::task::JoinHandle<()>,
    mut stream: SplitStream<WebSocket>,
) {
    let stop_writer = writer.abort_handle();
    if tokio::time::timeout(CLOSE_GRACE, writer).await.is_err() {
        stop_writer.abort();
        return;
    }
    let answered = async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_ANSWER_WAIT, answered).await;
}

/// Resolves once the server has begun to shut down (see [`crate::hub::Hub::begin_shutdown`]).
pub async fn shutdown_begun(signal: &mut tokio::sync::watch::Receiver<bool>) {
    // The borrow `wait_for` returns is dropped here, not carried across the caller's awaits.
    if signal.wait_for(|down| *down).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The close code for a read error: 1009 when the peer's frame was over the size limit.
pub fn read_error_close(error: &axum::Error) -> (u16, &'static str) {
    if error.to_string().contains("too long") {
        (close::TOO_LARGE, "frame too large")
    } else {
        (close::INTERNAL, "read error")
    }
}
