//! Retention: finished workflows that have been idle for `retention_days` are deleted with
//! their logs, once an hour, so the database cannot grow without bound. Running workflows are
//! never touched.

use std::sync::Arc;
use std::time::Duration;

use crate::hub::Hub;

const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The RFC 3339 time `days` ago (same format as stored timestamps, so they compare as text).
pub fn cutoff(days: u64) -> String {
    let age = chrono::Duration::days(i64::try_from(days).unwrap_or(i64::MAX / 86_400_000));
    (chrono::Utc::now() - age).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub async fn run(hub: Arc<Hub>, days: u64) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        match hub.delete_finished_before(&cutoff(days)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "retention: deleted finished workflows"),
            Err(e) => tracing::error!(error = %e, "retention sweep failed"),
        }
    }
}
