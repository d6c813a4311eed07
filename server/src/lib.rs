//! The Lantern server: axum serving the Leptos pages, the JSON API and the workflow sockets.
//!
//! One event's path: a producer ([`workflows`], [`api::ingest`], a subscriber's `user_input`)
//! → [`hub::Hub::publish`] (dedupe, [`lifecycle`] invariants) → [`store`] (assigns `seq`,
//! serializes once) → each caught-up viewer's [`ws::outbox`] (queued by the appender itself,
//! [`hub::LiveViewer`]) → the socket. Readers still catching up, built-in workflows and agents
//! (their inputs) follow a [`hub::Feed`] instead: the store, then the workflow's broadcast.
//!
//! - [`config`]: every setting (flag, environment variable, default).
//! - [`routes`]: the router; no logic beyond extracting and delegating.
//! - [`api`]: JSON HTTP handlers. [`ingest`]: producer JSON → events. [`ws`]: the socket transports.
//! - [`list_stream`]: the live workflow list (`/sse/workflows`, Server-Sent Events).
//! - [`hub`]: live workflows, ordered appends, feeds. [`lifecycle`]: the §1 invariants.
//! - [`store`]: the event log behind a trait. [`workflows`]: built-in kinds.
//! - [`pages`]: what the Leptos server functions call. [`error`]: errors → protocol codes.
//! - [`retention`]: deletes finished workflows past their retention age.
//! - [`auth`]: tokens, sessions, login, who may see what. [`cli`]: the command line.
//! - [`limits`]: frame rates and connection counts. [`origin`]: the cross-site upgrade guard.
//! - [`metrics`]: counters and gauges for the stats endpoint and `/metrics`.
//! - [`shutdown`]: the signals that stop the server, and how long stopping may take.
//! - [`site`]: the static files (embedded in release builds), then the pages.
//! - [`request_log`]: request ids and the span each request is handled in.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod hub;
pub mod ingest;
pub mod lifecycle;
pub mod limits;
pub mod list_stream;
pub mod metrics;
pub mod origin;
pub mod pages;
pub mod request_log;
pub mod retention;
pub mod routes;
pub mod shutdown;
pub mod site;
pub mod store;
pub mod workflows;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::serve::ListenerExt;
use leptos::config::LeptosOptions;

use auth::Accounts;
use config::Config;
use hub::Hub;
use store::sqlite::Db;

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub hub: Arc<Hub>,
    /// What the built-in workflows run with (the hub, the search corpus, tool limits).
    pub builtins: Arc<workflows::Builtins>,
    pub config: Arc<Config>,
    pub accounts: Arc<Accounts>,
    /// Open sockets and upgrade attempts per client address.
    pub ip_limits: Arc<limits::IpLimits>,
    /// Open sockets per user.
    pub user_limits: Arc<limits::UserLimits>,
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
    #[error("{0}")]
    Corpus(String),
}

/// The configured event store, on the shared database when it is SQLite.
fn event_store(config: &Config, db: &Db) -> Arc<dyn store::EventStore> {
    match config.store {
        config::StoreKind::Memory => Arc::new(store::memory::MemoryStore::default()),
        config::StoreKind::Sqlite => Arc::new(store::sqlite::SqliteStore::new(db)),
    }
}

/// A started server: storage open, background tasks running, not yet serving requests.
pub struct Lantern {
    listener: tokio::net::TcpListener,
    state: AppState,
    /// On first start (no users yet): the token of the new `admin` user, for the login URL.
    first_login: Option<String>,
}

impl Lantern {
    /// Open the data dir, recover what a restart interrupted, start the background tasks.
    pub async fn start(
        listener: tokio::net::TcpListener,
        config: Config,
    ) -> Result<Self, ServeError> {
        let addr = listener.local_addr()?;
        let db = Db::open(&config.data_dir, &config.sqlite_sync).await?;
        let grace = Duration::from_secs(config.agent_grace_secs);
        let hub = Hub::build(event_store(&config, &db), grace, metrics::Metrics::new());
        let session_ttl = Duration::from_secs(config.session_days.saturating_mul(86_400));
        let accounts = Accounts::new(db, session_ttl);
        let first_login = accounts.create_first_user().await?;
        let orphans = hub.fail_orphaned_builtins().await?;
        if orphans > 0 {
            tracing::warn!(
                orphans,
                "marked built-in workflows interrupted by a restart as failed"
            );
        }
        hub.await_returning_agents().await?;
        if config.retention_days > 0 {
            tokio::spawn(retention::run(hub.clone(), config.retention_days));
        }
        tokio::spawn(accounts.clone().watch_revocations());
        let builtins = Arc::new(workflows::Builtins {
            hub: hub.clone(),
            corpus: Arc::new(open_corpus(&config).await?),
            tool_timeout: Duration::from_millis(config.tool_timeout_ms.max(1)),
            test_hooks: config.test_hooks,
        });
        if !addr.ip().is_loopback() && !config.public_url_is_https() {
            tracing::warn!(
                %addr,
                "listening where other machines can connect, over plain HTTP: tokens and \
                 session cookies would cross the network unencrypted. Put a TLS-terminating \
                 proxy in front and pass --public-url https://... (see docs/PROTOCOL.md)"
            );
        }
        let state = AppState {
            hub,
            builtins,
            ip_limits: limits::IpLimits::new(
                "address",
                config.max_conns_per_ip,
                config.conn_attempts_per_ip,
                config.conn_attempts_per_ip.saturating_mul(2),
            ),
            user_limits: limits::UserLimits::new("user", config.max_conns_per_user, 0, 0),
            accounts,
            leptos_options: leptos_options(&config, addr),
            config: Arc::new(config),
        };
        Ok(Self {
            listener,
            state,
            first_login,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where to open Lantern: on first start, the admin's login URL; else the home page.
    pub fn open_url(&self) -> std::io::Result<String> {
        let base = self.state.config.base_url(self.local_addr()?);
        Ok(match &self.first_login {
            Some(token) => format!("{base}/login?token={token}"),
            None => format!("{base}/"),
        })
    }

    /// The accounts (tests mint tokens through it).
    pub fn accounts(&self) -> Arc<Accounts> {
        self.state.accounts.clone()
    }

    /// Serve requests until SIGTERM or SIGINT, then shut down ([`Lantern::run_until`]).
    pub async fn run(self) -> Result<(), ServeError> {
        self.run_until(shutdown::signal()).await
    }

    /// Serve requests until `stop` resolves; then stop accepting, close every socket with 1001,
    /// let requests under way (and their appends) finish, and return — within
    /// [`shutdown::LIMIT`] of `stop` even if some peer will not let go.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let hub = self.state.hub.clone();
        let metrics = hub.metrics().clone();
        let app = routes::router(self.state);
        let (stopped, on_stop) = tokio::sync::oneshot::channel::<()>();
        // Events are small frames sent one by one: without TCP_NODELAY, Nagle's algorithm holds a
        // frame back until the peer acknowledges the previous one (up to its delayed-ACK timer).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let serving = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            stop.await;
            tracing::info!("shutting down: closing sockets with 1001");
            hub.begin_shutdown();
            let _ = stopped.send(());
        });
        let give_up = async {
            if on_stop.await.is_ok() {
                tokio::time::sleep(shutdown::LIMIT).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        // The HTTP server's graceful shutdown does not wait for upgraded sockets (they run in
        // tasks of their own): wait until each has sent its 1001 and closed, or the process
        // could exit before a close frame is out and the peer would see a dropped connection.
        let served_and_closed = async move {
            std::future::IntoFuture::into_future(serving).await?;
            metrics.all_connections_closed().await;
            Ok::<(), std::io::Error>(())
        };
        tokio::select! {
            served = served_and_closed => served?,
            () = give_up => tracing::warn!("connections still open after the shutdown limit; exiting"),
        }
        Ok(())
    }
}

/// Index the `search` workflow's documents (on a blocking thread: a big folder takes a while).
async fn open_corpus(config: &Config) -> Result<workflows::corpus::Corpus, ServeError> {
    let dir = config.corpus.clone();
    let built = tokio::task::spawn_blocking(move || match dir {
        Some(dir) => workflows::corpus::Corpus::from_dir(&dir),
        None => workflows::corpus::Corpus::embedded(),
    })
    .await
    .map_err(|e| ServeError::Corpus(e.to_string()))?;
    built.map_err(|e| ServeError::Corpus(e.to_string()))
}

fn leptos_options(config: &Config, addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("lantern")
        .site_root(config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}
