//! Stopping cleanly, in one place: on SIGTERM or SIGINT the server stops accepting, closes every
//! socket with 1001 (clients reconnect, and resume with `after`, once a server is back), ends
//! every event stream, lets the requests under way finish — an append either commits whole or
//! not at all — and exits, within [`LIMIT`] even if some peer will not let go.
//!
//! [`Shutdown`] is the one handle for that: a token that says "stop" (what every connection,
//! socket and stream selects on) and a tracker of every open connection (what the server waits
//! for before it returns). Cloning it is cheap; every clone is the same shutdown.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::{task_tracker::TaskTrackerToken, TaskTracker};

/// The longest a shutdown waits for connections to finish after the signal.
pub const LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Default)]
pub struct Shutdown {
    /// Cancelled once, when the server begins to stop.
    stop: CancellationToken,
    /// Every open connection holds a token of it (inside its I/O, so an upgraded socket keeps
    /// counting after its HTTP request is done).
    connections: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Begin stopping: everything selecting on [`Shutdown::begun`] winds down.
    pub fn begin(&self) {
        self.stop.cancel();
    }

    /// Resolves once the server has begun to stop (at once if it has). Cancel-safe.
    pub fn begun(&self) -> impl Future<Output = ()> + Send + '_ {
        self.stop.cancelled()
    }

    /// The stop token itself, for a task that outlives the borrow (a stream's state).
    pub fn token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Count one more open connection until the returned token is dropped.
    pub fn connection_opened(&self) -> TaskTrackerToken {
        self.connections.token()
    }

    /// Wait until every connection has closed, at most `limit`; false when some were still
    /// open then.
    pub async fn connections_closed(&self, limit: Duration) -> bool {
        self.connections.close();
        tokio::time::timeout(limit, self.connections.wait())
            .await
            .is_ok()
    }
}

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM.
pub async fn signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signals) => {
                signals.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_for_connections_ends_with_the_last_one_or_at_the_limit() {
        let shutdown = Shutdown::new();
        assert!(
            shutdown.connections_closed(Duration::ZERO).await,
            "none open"
        );
        let shutdown = Shutdown::new();
        let a = shutdown.connection_opened();
        let b = shutdown.connection_opened();
        drop(a);
        assert!(
            !shutdown.connections_closed(Duration::from_millis(20)).await,
            "one is still open"
        );
        let waiting = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.connections_closed(Duration::from_secs(10)).await }
        });
        drop(b);
        assert!(
            waiting.await.expect("joined"),
            "ends once the last one closed"
        );
    }

    #[tokio::test]
    async fn every_clone_sees_the_stop() {
        let shutdown = Shutdown::new();
        let clone = shutdown.clone();
        assert!(!clone.token().is_cancelled());
        shutdown.begin();
        clone.begun().await;
        assert!(clone.token().is_cancelled());
    }
}
