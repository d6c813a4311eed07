//! Every setting, written once: a field of [`Config`] (or of [`Storage`], which the `token`
//! commands share) whose clap attributes give its flag, its environment variable and its
//! default, and whose doc comment is its help. `lantern serve --help` prints them;
//! `docs/SETTINGS.md` is generated from the same definition ([`markdown_table`]), and a test
//! fails when it is out of date.
//!
//! Flags win over environment variables, which win over defaults. Every limit takes 0 for "no
//! limit". What each setting guarantees is in docs/PROTOCOL.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, FromArgMatches, ValueEnum};

/// Which [`EventStore`](crate::store::EventStore) holds the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// Durable, in the data dir.
    Sqlite,
    /// In memory: nothing survives a restart (for measuring the hub without storage).
    Memory,
}

/// How hard SQLite works to keep a commit (its `synchronous` pragma).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SyncMode {
    /// A commit survives the process being killed (`kill -9`).
    Normal,
    /// A commit also survives a power cut (an fsync per commit).
    Full,
    /// As `full`, and the directory is synced too.
    Extra,
    /// No syncing at all: a crash of the machine may lose or corrupt recent commits.
    Off,
}

impl SyncMode {
    /// The word SQLite's pragma takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Full => "full",
            Self::Extra => "extra",
            Self::Off => "off",
        }
    }
}

/// How log lines are written (to stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line, with the request, socket and workflow spans.
    Json,
}

/// Where the data lives: what `serve` and the `token` commands share.
#[derive(Clone, Debug, Args)]
pub struct Storage {
    /// Where the data lives (created 0700, its database files 0600).
    #[arg(
        long,
        env = "LANTERN_DATA_DIR",
        default_value = "./data",
        help_heading = "Storage"
    )]
    pub data_dir: PathBuf,

    /// `normal`: a commit survives `kill -9`; `full`: also a power cut.
    #[arg(
        long,
        env = "LANTERN_SQLITE_SYNC",
        value_enum,
        default_value = "normal",
        help_heading = "Storage"
    )]
    pub sqlite_sync: SyncMode,

    /// Keep workflows and their logs in this Redis (`redis://HOST:PORT/DB`) instead of the data
    /// dir, shared with every node given the same URL (docs/DEPLOY.md, "Many nodes").
    #[arg(long, env = "LANTERN_REDIS_URL", help_heading = "Storage")]
    pub redis_url: Option<String>,

    /// The prefix of every key Lantern writes in Redis: deployments sharing one Redis need
    /// different ones.
    #[arg(
        long,
        env = "LANTERN_REDIS_PREFIX",
        default_value = crate::store::redis::DEFAULT_PREFIX,
        help_heading = "Storage"
    )]
    pub redis_prefix: String,
}

/// The settings of `lantern serve`.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Where to listen.
    #[arg(
        long,
        env = "LANTERN_ADDR",
        default_value = "127.0.0.1:3000",
        help_heading = "Network"
    )]
    pub addr: SocketAddr,

    /// The URL people reach Lantern at, e.g. `https://lantern.example.com` behind a TLS proxy:
    /// its origin may open sockets and post forms, login links use it, `https` makes the
    /// session cookie `Secure` and silences the plain-HTTP warning.
    #[arg(long, env = "LANTERN_PUBLIC_URL", value_parser = public_url, help_heading = "Network")]
    pub public_url: Option<url::Url>,

    /// Comma-separated origins, besides the server's own, whose pages may open sockets and post
    /// forms.
    #[arg(
        long,
        env = "LANTERN_ALLOWED_ORIGINS",
        value_delimiter = ',',
        help_heading = "Network"
    )]
    pub allowed_origins: Vec<String>,

    /// Take the client address from the proxy's `X-Forwarded-For` (only behind a proxy that
    /// sets it). The per-address TCP connection cap then does not apply: every connection comes
    /// from the proxy.
    #[arg(long, env = "LANTERN_TRUST_FORWARDED", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(),
          help_heading = "Network")]
    pub trust_forwarded: bool,

    /// An AG-UI agent endpoint offered as a workflow kind, `NAME=URL` (repeatable; the
    /// variable takes `NAME=URL,NAME=URL`). Starting a workflow of kind NAME runs the agent at
    /// URL; no other URL is ever called.
    #[arg(
        long = "agui-agent",
        env = "LANTERN_AGUI_AGENTS",
        value_delimiter = ',',
        value_parser = agui_agent,
        help_heading = "Workflows"
    )]
    pub agui_agents: Vec<AguiAgent>,

    /// Seconds an AG-UI agent may stay silent (no response, no event, no keep-alive comment)
    /// before its run fails saying so.
    #[arg(
        long,
        env = "LANTERN_AGUI_TIMEOUT_SECS",
        default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "Workflows"
    )]
    pub agui_timeout_secs: u64,

    /// The OpenAI-compatible model server the built-in `assistant` workflow talks to: its API
    /// root, e.g. `http://127.0.0.1:11434/v1` (Ollama). With --llm-model it enables
    /// `assistant`. A key, when the server needs one, comes only from `LANTERN_LLM_API_KEY`.
    #[arg(long, env = "LANTERN_LLM_BASE_URL", value_parser = public_url, help_heading = "Assistant")]
    pub llm_base_url: Option<url::Url>,

    /// The model's name on that server (e.g. `qwen3:8b`, `gpt-4o-mini`).
    #[arg(long, env = "LANTERN_LLM_MODEL", help_heading = "Assistant")]
    pub llm_model: Option<String>,

    /// Tools the assistant asks a person about before it runs them: names, comma-separated
    /// (`search_docs`), or `all`.
    #[arg(
        long,
        env = "LANTERN_LLM_APPROVE_TOOLS",
        value_delimiter = ',',
        help_heading = "Assistant"
    )]
    pub llm_approve_tools: Vec<String>,

    /// Most model requests the assistant makes for one message (each tool round is one more).
    #[arg(
        long,
        env = "LANTERN_LLM_MAX_STEPS",
        default_value_t = 8,
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "Assistant"
    )]
    pub llm_max_steps: u32,

    /// Seconds the model server may stay silent (no response, no chunk) before the answer
    /// fails saying so.
    #[arg(
        long,
        env = "LANTERN_LLM_TIMEOUT_SECS",
        default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "Assistant"
    )]
    pub llm_timeout_secs: u64,

    /// The model server's API key: read from `LANTERN_LLM_API_KEY` by `lantern serve` (never a
    /// flag, so it is not in `ps` or shell history; never logged).
    #[arg(skip)]
    pub llm_api_key: Option<ApiKey>,

    #[command(flatten)]
    pub storage: Storage,

    /// Which store keeps the workflows and their logs: `sqlite` (durable, in the data dir) or
    /// `memory` (nothing kept).
    #[arg(
        long,
        env = "LANTERN_STORE",
        value_enum,
        default_value = "sqlite",
        help_heading = "Storage"
    )]
    pub store: StoreKind,

    /// Finished workflows idle this long are deleted; 0 = keep forever.
    #[arg(
        long,
        env = "LANTERN_RETENTION_DAYS",
        default_value_t = 30,
        help_heading = "Storage"
    )]
    pub retention_days: u64,

    /// Largest event log of one workflow, in bytes of JSON: once a log holds this much, only a
    /// terminal `workflow_status` may still be appended (anything else is `too_large`); 0 = no
    /// limit.
    #[arg(long, env = "LANTERN_MAX_LOG_BYTES", default_value_t = 64 * 1024 * 1024, help_heading = "Storage")]
    pub max_log_bytes: u64,

    /// Open TCP connections in all (pages, API, streams and sockets); over it a new connection
    /// is closed at once. Lowered to what the open-file limit allows.
    #[arg(
        long,
        env = "LANTERN_MAX_CONNECTIONS",
        default_value_t = 10_000,
        help_heading = "Connections"
    )]
    pub max_connections: usize,

    /// Open TCP connections from one address; over it a new connection is closed at once.
    #[arg(
        long,
        env = "LANTERN_MAX_CONNECTIONS_PER_IP",
        default_value_t = 256,
        help_heading = "Connections"
    )]
    pub max_connections_per_ip: usize,

    /// Seconds a client may take to send a request's headers once it started; then the
    /// connection is closed.
    #[arg(
        long,
        env = "LANTERN_HEADER_TIMEOUT_SECS",
        default_value_t = 10,
        help_heading = "Connections"
    )]
    pub header_timeout_secs: u64,

    /// Seconds a connection may stay without a byte either way (an idle keep-alive, a client
    /// that never sends a request) before it is closed; at least three heartbeats.
    #[arg(
        long,
        env = "LANTERN_IDLE_TIMEOUT_SECS",
        default_value_t = 60,
        help_heading = "Connections"
    )]
    pub idle_timeout_secs: u64,

    /// Open sockets and event streams per client address (over it: HTTP 429 before the
    /// upgrade or stream); 0 = no limit.
    #[arg(
        long,
        env = "LANTERN_MAX_CONNS_PER_IP",
        default_value_t = 200,
        help_heading = "Connections"
    )]
    pub max_conns_per_ip: u32,

    /// Open sockets and event streams per user (over it: HTTP 429 before the upgrade or
    /// stream); 0 = no limit.
    #[arg(
        long,
        env = "LANTERN_MAX_CONNS_PER_USER",
        default_value_t = 100,
        help_heading = "Connections"
    )]
    pub max_conns_per_user: u32,

    /// Socket upgrades and event streams opened per second per address, bursts of twice that
    /// (over it: HTTP 429); 0 = no limit.
    #[arg(
        long,
        env = "LANTERN_CONN_ATTEMPTS_PER_IP",
        default_value_t = 20,
        help_heading = "Connections"
    )]
    pub conn_attempts_per_ip: u32,

    /// Page renders and history reads served at once; more wait their turn.
    #[arg(
        long,
        env = "LANTERN_MAX_HEAVY_REQUESTS",
        default_value_t = 8,
        help_heading = "Connections"
    )]
    pub max_heavy_requests: usize,

    /// Ping period of the sockets (`hello.heartbeat_ms`), and the keep-alive period of event
    /// streams.
    #[arg(
        long,
        env = "LANTERN_HEARTBEAT_MS",
        default_value_t = 15_000,
        help_heading = "Sockets"
    )]
    pub heartbeat_ms: u64,

    /// Largest subscriber frame (bigger: close 1009).
    #[arg(long, env = "LANTERN_CLIENT_FRAME_BYTES", default_value_t = 64 * 1024, help_heading = "Sockets")]
    pub client_frame_bytes: usize,

    /// Subscriber frames per second per connection, and HTTP writes (create, input, cancel)
    /// per second per user (over it: `rate_limited`; a socket that keeps on is closed 4029);
    /// 0 = no limit.
    #[arg(
        long,
        env = "LANTERN_CLIENT_RATE",
        default_value_t = 50,
        help_heading = "Sockets"
    )]
    pub client_rate: u32,

    /// Subscriber frames (and a user's HTTP writes) allowed in a burst.
    #[arg(
        long,
        env = "LANTERN_CLIENT_BURST",
        default_value_t = 100,
        help_heading = "Sockets"
    )]
    pub client_burst: u32,

    /// Agent frames per second per connection, and HTTP ingest requests per second per agent
    /// token (over it: `rate_limited`; a socket that keeps on is closed 4029); 0 = no limit.
    #[arg(
        long,
        env = "LANTERN_AGENT_RATE",
        default_value_t = 1000,
        help_heading = "Sockets"
    )]
    pub agent_rate: u32,

    /// Agent frames (and ingest requests) allowed in a burst.
    #[arg(
        long,
        env = "LANTERN_AGENT_BURST",
        default_value_t = 2000,
        help_heading = "Sockets"
    )]
    pub agent_burst: u32,

    /// Largest agent frame, and largest HTTP ingest body (bigger: 1009 / 413).
    #[arg(long, env = "LANTERN_AGENT_FRAME_BYTES", default_value_t = 1024 * 1024, help_heading = "Sockets")]
    pub agent_frame_bytes: usize,

    /// Per-connection outgoing queue in bytes (over it: close 4008, or the end of an event
    /// stream); 0 = no limit.
    #[arg(long, env = "LANTERN_QUEUE_BYTES", default_value_t = 1024 * 1024, help_heading = "Sockets")]
    pub queue_bytes: usize,

    /// Seconds a running external workflow waits for its agent to reconnect before it is
    /// marked `failed`.
    #[arg(
        long,
        env = "LANTERN_AGENT_GRACE_SECS",
        default_value_t = 30,
        help_heading = "Workflows"
    )]
    pub agent_grace_secs: u64,

    /// Workflows one user may have open (not finished) at once (over it: creating one more is
    /// `rate_limited`); 0 = no limit.
    #[arg(
        long,
        env = "LANTERN_MAX_OPEN_WORKFLOWS",
        default_value_t = 100,
        help_heading = "Workflows"
    )]
    pub max_open_workflows: u32,

    /// Seconds a built-in workflow waits for a person's next message before it finishes by
    /// itself (`completed`); 0 = wait forever.
    #[arg(
        long,
        env = "LANTERN_BUILTIN_IDLE_SECS",
        default_value_t = 3600,
        help_heading = "Workflows"
    )]
    pub builtin_idle_secs: u64,

    /// Folder whose `.md` and `.txt` files the `search` workflow searches (default: Lantern's
    /// own docs, built in).
    #[arg(long, env = "LANTERN_CORPUS", help_heading = "Workflows")]
    pub corpus: Option<PathBuf>,

    /// Longest a built-in workflow's tool call may run before it fails (`ok: false`), in ms.
    #[arg(
        long,
        env = "LANTERN_TOOL_TIMEOUT_MS",
        default_value_t = 10_000,
        help_heading = "Workflows"
    )]
    pub tool_timeout_ms: u64,

    /// How long a browser stays signed in, in days.
    #[arg(
        long,
        env = "LANTERN_SESSION_DAYS",
        default_value_t = 30,
        help_heading = "Accounts"
    )]
    pub session_days: u64,

    /// The built WASM, CSS and assets (release builds carry them inside the binary).
    #[arg(
        long,
        env = "LEPTOS_SITE_ROOT",
        default_value = "target/site",
        help_heading = "Site and logs"
    )]
    pub site_root: PathBuf,

    /// `human` (readable lines) or `json` (one object per line, with the request, socket and
    /// workflow spans); the level comes from `RUST_LOG`.
    #[arg(
        long,
        env = "LANTERN_LOG_FORMAT",
        value_enum,
        default_value = "human",
        help_heading = "Site and logs"
    )]
    pub log_format: LogFormat,

    /// Test-only endpoints and behaviours (fault injection); never in production.
    #[arg(long, env = "LANTERN_TEST_HOOKS", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(),
          hide = true)]
    pub test_hooks: bool,
}

/// `--public-url`: an `http` or `https` URL, kept without a trailing slash.
fn public_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("expected http://HOST… or https://HOST…".into());
    }
    Ok(url)
}

/// A secret that never shows in a `Debug` print (of the whole `Config`, say).
#[derive(Clone, PartialEq)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(…)")
    }
}

/// An AG-UI agent endpoint registered as a workflow kind (`--agui-agent NAME=URL`).
#[derive(Clone, Debug, PartialEq)]
pub struct AguiAgent {
    /// The workflow kind, and the agent's name in the log.
    pub name: String,
    pub url: url::Url,
}

fn agui_agent(text: &str) -> Result<AguiAgent, String> {
    let (name, url) = text
        .trim()
        .split_once('=')
        .ok_or("expected NAME=URL, e.g. assistant=http://127.0.0.1:8000/")?;
    let name = name.trim();
    let valid = (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        return Err(format!(
            "agent name {name:?}: 1-40 characters of a-z 0-9 _ -"
        ));
    }
    if app::protocol::vocab::kinds::ALL.contains(&name)
        || name == app::protocol::vocab::kinds::ASSISTANT
    {
        return Err(format!("{name:?} is a built-in kind"));
    }
    Ok(AguiAgent {
        name: name.to_owned(),
        url: public_url(url)?,
    })
}

/// The defaults alone: what the definition says, with no environment variable read.
fn defaults<T: Args + FromArgMatches>() -> T {
    let command = clap::Command::new("defaults").no_binary_name(true);
    let command = T::augment_args(command).mut_args(|arg| arg.env(None::<&str>));
    let matches = command
        .try_get_matches_from(std::iter::empty::<String>())
        .unwrap_or_else(|e| panic!("the settings' defaults must parse: {e}"));
    T::from_arg_matches(&matches).unwrap_or_else(|e| panic!("the settings' defaults: {e}"))
}

impl Default for Config {
    /// Every setting at its documented default (the environment is not read).
    fn default() -> Self {
        defaults()
    }
}

impl Default for Storage {
    fn default() -> Self {
        defaults()
    }
}

impl Config {
    /// Is a TLS-terminating proxy in front (the public URL is `https`)?
    pub fn public_url_is_https(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https")
    }

    /// The base URL to show people (no trailing slash): the public URL, else this server's own
    /// address.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.as_str().trim_end_matches('/').to_owned();
        }
        let mut addr = bound;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }

    /// Origins besides the server's own that may open sockets and post forms: the allow-list
    /// and the public URL's.
    pub fn allowed_origins(&self) -> Vec<String> {
        let mut origins = self.allowed_origins.clone();
        if let Some(url) = &self.public_url {
            origins.push(url.origin().ascii_serialization());
        }
        origins
    }

    /// The socket ping period.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(1))
    }

    /// How long a connection may stay silent: the setting, but never under three heartbeats
    /// (a healthy socket or stream sends something every heartbeat).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1)).max(self.heartbeat() * 3)
    }
}

/// The settings of `lantern serve` as a Markdown table (docs/SETTINGS.md is this text).
pub fn markdown_table() -> String {
    let command = Config::augment_args(clap::Command::new("serve"));
    let mut out = String::from("| flag | environment | default | what |\n|---|---|---|---|\n");
    for arg in command.get_arguments() {
        if arg.is_hide_set() {
            continue;
        }
        let Some(flag) = arg.get_long() else { continue };
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let default = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(", ");
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string().replace('\n', " "))
            .unwrap_or_default();
        out.push_str(&format!(
            "| `--{flag}` | {env} | {} | {help} |\n",
            if default.is_empty() { "—" } else { &default }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `lantern serve` alone, as the command line defines it.
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let args = std::iter::once("serve").chain(args.iter().copied());
        Serve::try_parse_from(args).map(|s| s.config)
    }

    #[test]
    fn defaults_are_what_the_definition_says() {
        let config = Config::default();
        assert_eq!(config.addr, "127.0.0.1:3000".parse().expect("addr"));
        assert_eq!(config.storage.data_dir, PathBuf::from("./data"));
        assert_eq!(config.heartbeat_ms, 15_000);
        assert_eq!(config.client_rate, 50);
        assert_eq!(config.agent_rate, 1000);
        assert_eq!(config.queue_bytes, 1024 * 1024);
        assert_eq!(config.storage.sqlite_sync, SyncMode::Normal);
        assert!(!config.trust_forwarded && !config.test_hooks);
    }

    #[test]
    fn flags_take_both_spellings_and_booleans_need_no_value() {
        let config = parse(&[
            "--addr",
            "127.0.0.1:5000",
            "--queue-bytes=2048",
            "--trust-forwarded",
            "--allowed-origins",
            "https://a.example, https://b.example",
        ])
        .expect("valid");
        assert_eq!(config.addr.port(), 5000);
        assert_eq!(config.queue_bytes, 2048);
        assert!(config.trust_forwarded);
        assert_eq!(config.allowed_origins.len(), 2);
        assert!(parse(&["--trust-forwarded", "false"]).is_ok_and(|c| !c.trust_forwarded));
    }

    #[test]
    fn agui_agents_are_name_equals_url_repeatable_and_checked() {
        let config = parse(&[
            "--agui-agent",
            "helper=http://127.0.0.1:8000/",
            "--agui-agent=other=https://agents.example/run",
        ])
        .expect("valid");
        let names: Vec<&str> = config.agui_agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["helper", "other"]);
        assert_eq!(
            config.agui_agents[1].url.as_str(),
            "https://agents.example/run"
        );
        for bad in [
            "nourl",
            "echo=http://x/",
            "Bad Name=http://x/",
            "a=ftp://x/",
        ] {
            assert!(parse(&["--agui-agent", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unknown_flag_or_a_bad_value_is_an_error_that_names_it() {
        assert!(parse(&["--adr", "x"]).is_err());
        let err = parse(&["--heartbeat-ms", "soon"]).expect_err("invalid");
        assert!(err.to_string().contains("--heartbeat-ms"), "{err}");
        let err = parse(&["--public-url", "ftp://x"]).expect_err("invalid");
        assert!(err.to_string().contains("--public-url"), "{err}");
    }

    #[test]
    fn the_public_url_is_an_allowed_origin_and_the_base_of_links() {
        let config = parse(&["--public-url", "https://lantern.example.com/"]).expect("valid");
        assert!(config.public_url_is_https());
        assert_eq!(
            config.allowed_origins(),
            ["https://lantern.example.com".to_owned()]
        );
        let bound = "0.0.0.0:1".parse().expect("addr");
        assert_eq!(config.base_url(bound), "https://lantern.example.com");
        assert_eq!(Config::default().base_url(bound), "http://127.0.0.1:1");
    }

    #[test]
    fn every_setting_has_an_environment_variable_and_a_help() {
        let command = Config::augment_args(clap::Command::new("serve"));
        for arg in command.get_arguments().filter(|a| a.get_long().is_some()) {
            assert!(
                arg.get_env().is_some(),
                "--{:?} has no variable",
                arg.get_long()
            );
            assert!(
                arg.get_help().is_some(),
                "--{:?} has no help",
                arg.get_long()
            );
        }
    }

    #[test]
    fn docs_settings_is_generated_from_the_definition() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/SETTINGS.md");
        let docs = std::fs::read_to_string(path).unwrap_or_default();
        let table = markdown_table();
        assert!(
            docs.contains(&table),
            "docs/SETTINGS.md is out of date; its table must be:\n{table}"
        );
    }
}
