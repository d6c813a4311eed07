//! Stopping cleanly: on SIGTERM or SIGINT the server stops accepting, closes every socket with
//! 1001 (clients reconnect, and resume with `after`, once a server is back), lets the requests
//! under way finish — an append either commits whole or not at all — and exits.

use std::time::Duration;

/// The longest a shutdown waits for connections to finish after the signal.
pub const LIMIT: Duration = Duration::from_secs(10);

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
