//! The Lantern server: axum serving the Leptos pages, the JSON API and the workflow sockets.
//!
//! One event's path: a producer ([`workflows`], [`api::ingest`], a subscriber's `user_input`)
//! → [`hub::Hub::publish`] (dedupe, [`lifecycle`] invariants) → [`store`] (assigns `seq`,
//! serializes once) → the workflow's broadcast → each subscriber's [`hub::Feed`] →
//! its [`ws::outbox`] → the socket.
//!
//! - [`config`]: every setting (flag, environment variable, default).
//! - [`routes`]: the router; no logic beyond extracting and delegating.
//! - [`api`]: JSON HTTP handlers. [`ws`]: the socket transports.
//! - [`hub`]: live workflows, ordered appends, feeds. [`lifecycle`]: the §1 invariants.
//! - [`store`]: the event log behind a trait. [`workflows`]: built-in kinds.
//! - [`pages`]: what the Leptos server functions call. [`error`]: errors → protocol codes.
//! - [`retention`]: deletes finished workflows past their retention age.
//! - [`limits`]: per-connection frame rate limiting. [`origin`]: the cross-site upgrade guard.

pub mod api;
pub mod config;
pub mod error;
pub mod hub;
pub mod lifecycle;
pub mod limits;
pub mod origin;
pub mod pages;
pub mod retention;
pub mod routes;
pub mod store;
pub mod workflows;
pub mod ws;

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use config::Config;
use hub::Hub;

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub config: Arc<Config>,
    /// Open sockets and upgrade attempts per client address.
    pub ip_limits: Arc<limits::IpLimits>,
    /// Needed by leptos_axum to render pages and serve the built site.
    pub leptos_options: LeptosOptions,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Storage(#[from] error::LanternError),
}

/// Open the configured store.
async fn open_store(config: &Config) -> Result<Arc<dyn store::EventStore>, ServeError> {
    Ok(match config.store {
        config::StoreKind::Memory => Arc::new(store::memory::MemoryStore::default()),
        config::StoreKind::Sqlite => {
            Arc::new(store::sqlite::SqliteStore::open(&config.data_dir, &config.sqlite_sync).await?)
        }
    })
}

/// Serve Lantern on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> Result<(), ServeError> {
    let hub = Hub::new(open_store(&config).await?);
    let orphans = hub.fail_orphaned_builtins().await?;
    if orphans > 0 {
        tracing::warn!(
            orphans,
            "marked built-in workflows interrupted by a restart as failed"
        );
    }
    if config.retention_days > 0 {
        tokio::spawn(retention::run(hub.clone(), config.retention_days));
    }
    let ip_limits = limits::IpLimits::new(
        config.max_conns_per_ip,
        config.conn_attempts_per_ip,
        config.conn_attempts_per_ip.saturating_mul(2),
    );
    let state = AppState {
        hub,
        ip_limits,
        leptos_options: leptos_options(&config, listener.local_addr()?),
        config: Arc::new(config),
    };
    let app = routes::router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}

fn leptos_options(config: &Config, addr: std::net::SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("lantern")
        .site_root(config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}
