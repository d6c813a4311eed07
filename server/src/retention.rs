//! Retention: once an hour, finished workflows that have been idle for `retention_days` are
//! deleted with their logs (running workflows are never touched), and so are expired sessions,
//! spent login links and old revocation notices, so the database cannot grow without bound.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Accounts;
use crate::hub::Hub;

const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The RFC 3339 time `days` ago (same format as stored timestamps, so they compare as text).
pub fn cutoff(days: u64) -> String {
    let age = chrono::Duration::days(i64::try_from(days).unwrap_or(i64::MAX / 86_400_000));
    (chrono::Utc::now() - age).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Sweep every hour for the server's life; `days` of 0 keeps workflows forever.
pub async fn run(hub: Arc<Hub>, accounts: Arc<Accounts>, days: u64) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        if days > 0 {
            match hub.delete_finished_before(&cutoff(days)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "retention: deleted finished workflows"),
                Err(e) => tracing::error!(error = %e, "retention sweep failed"),
            }
        }
        match accounts.prune().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "expired sessions and spent login links pruned"),
            Err(e) => tracing::error!(error = %e, "pruning sessions failed"),
        }
    }
}
