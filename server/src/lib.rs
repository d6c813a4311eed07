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

pub mod api;
pub mod config;
pub mod error;
pub mod hub;
pub mod lifecycle;
pub mod pages;
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
    /// Needed by leptos_axum to render pages and serve the built site.
    pub leptos_options: LeptosOptions,
}

/// Serve Lantern on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> std::io::Result<()> {
    let store = Arc::new(store::memory::MemoryStore::default());
    let state = AppState {
        hub: Hub::new(store),
        leptos_options: leptos_options(&config, listener.local_addr()?),
        config: Arc::new(config),
    };
    let app = routes::router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}

fn leptos_options(config: &Config, addr: std::net::SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("lantern")
        .site_root(config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}
