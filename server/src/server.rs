//! The composition root: what a running server is made of ([`AppState`]), how it is put
//! together from a [`Config`] ([`Lantern::start`]), and how it serves until it is told to stop
//! ([`Lantern::run_until`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::auth::Accounts;
use crate::config::{Config, StoreKind};
use crate::connections::{self, Bounds};
use crate::error::LanternError;
use crate::hub::{Hub, HubSettings};
use crate::shutdown::{self, Shutdown};
use crate::store::{self, sqlite::Db};
use crate::{cluster, error, limits, metrics, retention, routes, workflows};

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub hub: Arc<Hub>,
    /// What the built-in workflows run with (the hub, the search corpus, tool limits).
    pub builtins: Arc<workflows::Builtins>,
    pub config: Arc<Config>,
    pub accounts: Arc<Accounts>,
    /// Open sockets and streams, and their attempts, per client address.
    pub ip_limits: Arc<limits::IpLimits>,
    /// Open sockets and streams per user; and the HTTP writes of each user and agent token
    /// ([`limits::WriteLimits`]).
    pub user_limits: Arc<limits::UserLimits>,
    pub write_limits: Arc<limits::WriteLimits>,
    /// Every socket and stream selects on it to close when the server stops.
    pub shutdown: Shutdown,
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

/// The configured event store, on the shared database when it is SQLite; Redis when a Redis
/// URL is given.
async fn event_store(config: &Config, db: &Db) -> Result<Arc<dyn store::EventStore>, ServeError> {
    if let Some(url) = &config.storage.redis_url {
        let redis = store::redis::RedisStore::connect(url, &config.storage.redis_prefix).await?;
        return Ok(Arc::new(redis));
    }
    Ok(match config.store {
        StoreKind::Memory => Arc::new(store::memory::MemoryStore::default()),
        StoreKind::Sqlite => Arc::new(store::sqlite::SqliteStore::new(db)?),
    })
}

/// On Redis: announce this node's appends to the other nodes and follow theirs, and share
/// grace periods and dead nodes' work with them (PROTOCOL.md §9).
async fn join_cluster(config: &Config, hub: &Arc<Hub>) -> Result<(), ServeError> {
    let Some(url) = &config.storage.redis_url else {
        return Ok(());
    };
    let prefix = &config.storage.redis_prefix;
    // One id per process: a restarted node is a new node (the old one is reaped as dead).
    let node = ulid::Ulid::new().to_string();
    let client = redis::Client::open(url.as_str())
        .map_err(|e| LanternError::Storage(format!("redis: {e}")))?;
    let notices = cluster::notices::Notices::new(client.clone(), prefix, node.clone());
    hub.set_broker(notices.clone());
    notices.start(hub);
    let conn = redis::aio::ConnectionManager::new(client)
        .await
        .map_err(|e| LanternError::Storage(format!("redis: {e}")))?;
    let grace = Duration::from_secs(config.agent_grace_secs);
    let presence = cluster::presence::Presence::connect(conn, prefix, node.clone(), grace).await?;
    hub.set_presence(presence.clone());
    presence.start(hub);
    tracing::info!(%node, "joined the cluster on Redis");
    Ok(())
}

/// A started server: storage open, background tasks running, not yet serving requests.
pub struct Lantern {
    listener: tokio::net::TcpListener,
    state: AppState,
    /// On first start (no users yet): a one-time login code for the new `admin` user.
    first_login: Option<String>,
    /// What bounds each connection (the open-file limit applied).
    bounds: Bounds,
}

impl Lantern {
    /// Open the data dir, recover what a restart interrupted, start the background tasks.
    pub async fn start(
        listener: tokio::net::TcpListener,
        config: Config,
    ) -> Result<Self, ServeError> {
        let addr = listener.local_addr()?;
        let fd_limit = connections::raise_fd_limit();
        let bounds = Bounds::new(&config, fd_limit);
        if bounds.max_total < config.max_connections {
            tracing::warn!(
                fd_limit,
                max_connections = bounds.max_total,
                "the open-file limit allows fewer connections than --max-connections; raise it \
                 (LimitNOFILE= in a systemd unit, ulimit -n in a shell)"
            );
        }
        let db = Db::open(&config.storage.data_dir, config.storage.sqlite_sync).await?;
        let settings = HubSettings {
            agent_grace: Duration::from_secs(config.agent_grace_secs),
            max_log_bytes: config.max_log_bytes,
            max_open_workflows: config.max_open_workflows,
            // On Redis, other nodes append to the same logs; on SQLite, nobody else does.
            shared_store: config.storage.redis_url.is_some(),
        };
        let store = event_store(&config, &db).await?;
        let hub = Hub::build(store, settings, metrics::Metrics::new());
        join_cluster(&config, &hub).await?;
        let session_ttl = Duration::from_secs(config.session_days.saturating_mul(86_400));
        let account_store: Arc<dyn crate::auth::store::AccountStore> =
            match &config.storage.redis_url {
                Some(_) => crate::auth::store::open(&config.storage).await?,
                None => Arc::new(crate::auth::store::SqliteAccounts::new(db)),
            };
        let accounts = Accounts::new(account_store, session_ttl);
        let first_login = accounts.create_first_user().await?;
        // A conversation with the assistant goes on after a restart (rebuilt from its log,
        // below; an answer in flight is cut short), when a model is still configured.
        let assistant_on = config.llm_base_url.is_some() && config.llm_model.is_some();
        // In a cluster, other nodes run their own built-ins and hold their own agents: the
        // cluster's sweeps fail what a dead node left (cluster::presence), not this start.
        if !hub.in_cluster() {
            let orphans = hub
                .fail_orphaned_builtins(|info| {
                    assistant_on
                        && info.kind == app::protocol::vocab::kinds::ASSISTANT
                        && workflows::assistant::resumable(info.status)
                })
                .await?;
            if orphans > 0 {
                tracing::warn!(
                    orphans,
                    "marked built-in workflows interrupted by a restart as failed"
                );
            }
            hub.await_returning_agents().await?;
        }
        tokio::spawn(retention::run(
            hub.clone(),
            accounts.clone(),
            config.retention_days,
        ));
        tokio::spawn(accounts.clone().watch_revocations());
        tokio::spawn(hub.clone().sweep_forever());
        let builtins = Arc::new(workflows::Builtins {
            hub: hub.clone(),
            corpus: Arc::new(open_corpus(&config).await?),
            tool_timeout: Duration::from_millis(config.tool_timeout_ms.max(1)),
            idle: (config.builtin_idle_secs > 0)
                .then(|| Duration::from_secs(config.builtin_idle_secs)),
            test_hooks: config.test_hooks,
            agui: Arc::new(workflows::agui_agent::Agents::new(
                config.agui_agents.clone(),
                Duration::from_secs(config.agui_timeout_secs),
            )),
            assistant: assistant(&config),
        });
        // In a cluster, a conversation is not taken up by whichever node starts (several
        // would): it is failed with its dead node instead (cluster::presence).
        let resumed = if builtins.hub.in_cluster() {
            0
        } else {
            workflows::assistant::resume_waiting(&builtins).await?
        };
        if resumed > 0 {
            tracing::info!(
                resumed,
                "assistant conversations taken up again after a restart"
            );
        }
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
            write_limits: limits::WriteLimits::new(&config),
            accounts,
            shutdown: Shutdown::new(),
            leptos_options: leptos_options(&config, addr),
            config: Arc::new(config),
        };
        Ok(Self {
            listener,
            state,
            first_login,
            bounds,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where to open Lantern: on first start, the admin's one-time login link; else the home
    /// page.
    pub fn open_url(&self) -> std::io::Result<String> {
        let base = self.state.config.base_url(self.local_addr()?);
        Ok(match &self.first_login {
            Some(code) => crate::auth::web::login_link(&base, code),
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

    /// Serve requests until `stop` resolves; then stop accepting, close every socket with 1001
    /// and end every stream, let requests under way (and their appends) finish, and return —
    /// within [`shutdown::LIMIT`] of `stop` even if some peer will not let go.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let shutdown = self.state.shutdown.clone();
        let metrics = self.state.hub.metrics().clone();
        let app = routes::router(self.state);
        let accepting = tokio::spawn(connections::serve(
            self.listener,
            app,
            self.bounds,
            shutdown.clone(),
            metrics,
        ));
        stop.await;
        tracing::info!("shutting down: closing sockets with 1001");
        shutdown.begin();
        // The loop returns at once and drops the listener: nothing new is accepted.
        if let Err(e) = accepting.await {
            tracing::error!(error = %e, "the accept loop failed");
        }
        if !shutdown.connections_closed(shutdown::LIMIT).await {
            tracing::warn!("connections still open after the shutdown limit; exiting");
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

/// The `assistant`, when both a model server and a model are configured.
fn assistant(config: &Config) -> Option<Arc<workflows::assistant::Assistant>> {
    let (Some(base_url), Some(name)) = (&config.llm_base_url, &config.llm_model) else {
        return None;
    };
    let model = crate::llm::Model::new(
        base_url,
        name.clone(),
        config.llm_api_key.as_ref().map(|key| key.0.clone()),
        Duration::from_secs(config.llm_timeout_secs),
    );
    tracing::info!(model = %name, base_url = %base_url, "the assistant is on");
    Some(Arc::new(workflows::assistant::Assistant::new(
        model,
        &config.llm_approve_tools,
        config.llm_max_steps,
    )))
}
