//! Every way an event goes in or out of the server, one file each, side by side. Each is a thin
//! adapter: it checks who is calling ([`gate`]), then talks to the hub — producers publish
//! through [`crate::hub::Hub::publish`], viewers follow through a
//! [`crate::hub::Subscription`] — and owns nothing but its connection.
//!
//! - [`subscriber`]: `/ws/workflow/{id}`, the viewer socket (browsers and programs).
//! - [`agent`]: `/ws/agent/{id}`, external agents publishing events and reading input.
//! - [`ingest`]: `POST /api/workflows/{id}/events`, the same publishing over HTTP.
//! - [`sse`]: `/sse/workflow/{id}`, the viewer's stream as Server-Sent Events.
//! - [`agui`]: `/api/workflows/{id}/agui` and `POST /agui/{kind}`, AG-UI 1.0 out.
//! - [`workflow_list`]: `/sse/workflows`, the user's workflow list, live, as Server-Sent Events.
//!
//! Shared by the sockets: [`gate`] (what every socket and stream must pass before it opens:
//! Origin, token, ownership, connection limits), [`link`] (errors, frame rate limit, pings,
//! revocation) and [`outbox`] (a connection's bounded outgoing queue and its writer task); by
//! the event streams: [`event_stream`] (cursor, keep-alive, following, ending).

pub mod agent;
pub mod agui;
pub mod event_stream;
pub mod gate;
pub mod ingest;
pub mod link;
pub mod outbox;
pub mod sse;
pub mod subscriber;
pub mod workflow_list;

use std::time::Duration;

/// Close codes of PROTOCOL.md §4 (their one definition is the protocol's vocabulary).
pub use app::protocol::vocab::close;
use axum::extract::ws::{Message, WebSocket};
use futures::{stream::SplitStream, StreamExt};

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

/// The close code for a read error: 1009 when the peer's frame was over the size limit.
pub fn read_error_close(error: &axum::Error) -> (u16, &'static str) {
    if error.to_string().contains("too long") {
        (close::TOO_LARGE, "frame too large")
    } else {
        (close::INTERNAL, "read error")
    }
}
