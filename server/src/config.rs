//! Every setting in one place: its flag, its environment variable and its default.
//!
//! | flag | environment | default | what |
//! |---|---|---|---|
//! | `--addr` | `LANTERN_ADDR` | `127.0.0.1:3000` | where to listen |
//! | `--data-dir` | `LANTERN_DATA_DIR` | `./data` | where data lives |
//! | `--heartbeat-ms` | `LANTERN_HEARTBEAT_MS` | `15000` | ping period; `hello.heartbeat_ms` |
//! | `--client-frame-bytes` | `LANTERN_CLIENT_FRAME_BYTES` | `65536` | largest subscriber frame (bigger: close 1009) |
//! | `--client-rate` | `LANTERN_CLIENT_RATE` | `50` | subscriber frames per second (over it: `rate_limited`, then close 4029); 0 = no limit |
//! | `--client-burst` | `LANTERN_CLIENT_BURST` | `100` | subscriber frames allowed in a burst |
//! | `--allowed-origins` | `LANTERN_ALLOWED_ORIGINS` | (none) | comma-separated origins, besides the server's own, whose pages may open sockets |
//! | `--max-conns-per-ip` | `LANTERN_MAX_CONNS_PER_IP` | `200` | open sockets per client address (over it: HTTP 429 before the upgrade); 0 = no limit |
//! | `--max-conns-per-user` | `LANTERN_MAX_CONNS_PER_USER` | `100` | open sockets per user (over it: HTTP 429 before the upgrade); 0 = no limit |
//! | `--conn-attempts-per-ip` | `LANTERN_CONN_ATTEMPTS_PER_IP` | `20` | socket upgrades per second per address, bursts of twice that (over it: HTTP 429); 0 = no limit |
//! | `--agent-rate` | `LANTERN_AGENT_RATE` | `1000` | agent frames per second (over it: `rate_limited`, then close 4029); 0 = no limit |
//! | `--agent-burst` | `LANTERN_AGENT_BURST` | `2000` | agent frames allowed in a burst |
//! | `--agent-grace-secs` | `LANTERN_AGENT_GRACE_SECS` | `30` | how long a running external workflow waits for its agent to reconnect before it is marked `failed` |
//! | `--agent-frame-bytes` | `LANTERN_AGENT_FRAME_BYTES` | `1048576` | largest agent frame, and largest HTTP ingest body (bigger: 1009 / 413) |
//! | `--queue-bytes` | `LANTERN_QUEUE_BYTES` | `1048576` | per-connection outgoing queue (over it: close 4008); 0 = no limit |
//! | `--session-days` | `LANTERN_SESSION_DAYS` | `30` | how long a browser stays signed in |
//! | `--public-url` | `LANTERN_PUBLIC_URL` | (none) | the URL people reach Lantern at, e.g. `https://lantern.example.com` behind a TLS proxy: its origin may open sockets, the login URL uses it, `https` makes the cookie `Secure` and silences the plain-HTTP warning |
//! | `--trust-forwarded` | `LANTERN_TRUST_FORWARDED` | `false` | take the client address from the proxy's `X-Forwarded-For` (only behind a proxy that sets it) |
//! | `--corpus` | `LANTERN_CORPUS` | (Lantern's own docs, built in) | folder whose `.md` and `.txt` files the `search` workflow searches |
//! | `--tool-timeout-ms` | `LANTERN_TOOL_TIMEOUT_MS` | `10000` | longest a built-in workflow's tool call may run before it fails (`ok: false`) |
//! | `--site-root` | `LEPTOS_SITE_ROOT` | `target/site` | the built WASM, CSS and assets |
//! | `--store` | `LANTERN_STORE` | `sqlite` | `sqlite` (durable, in the data dir) or `memory` (nothing kept) |
//! | `--sqlite-sync` | `LANTERN_SQLITE_SYNC` | `normal` | `normal`: a commit survives `kill -9`; `full`: also a power cut |
//! | `--retention-days` | `LANTERN_RETENTION_DAYS` | `30` | finished workflows idle this long are deleted; 0 = keep forever |
//! | `--log-format` | `LANTERN_LOG_FORMAT` | `human` | `human` (readable lines) or `json` (one object per line, with the request, socket and workflow spans); the level comes from `RUST_LOG` |
//! | — | `LANTERN_TEST_HOOKS=1` | off | enables `POST /api/test/disconnect` (drops every subscriber socket) |

use std::net::SocketAddr;
use std::path::PathBuf;

/// One setting: its flag, its environment variable, its default as documented, what it does.
pub struct Setting {
    pub flag: &'static str,
    pub env: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Every setting (the table above, for `lantern --help`).
pub const SETTINGS: &[Setting] = &[
    Setting {
        flag: "addr",
        env: "LANTERN_ADDR",
        default: "127.0.0.1:3000",
        help: "where to listen",
    },
    Setting {
        flag: "data-dir",
        env: "LANTERN_DATA_DIR",
        default: "./data",
        help: "where data lives",
    },
    Setting {
        flag: "heartbeat-ms",
        env: "LANTERN_HEARTBEAT_MS",
        default: "15000",
        help: "ping period; hello.heartbeat_ms",
    },
    Setting {
        flag: "client-frame-bytes",
        env: "LANTERN_CLIENT_FRAME_BYTES",
        default: "65536",
        help: "largest subscriber frame (bigger: close 1009)",
    },
    Setting {
        flag: "client-rate",
        env: "LANTERN_CLIENT_RATE",
        default: "50",
        help: "subscriber frames per second (over it: rate_limited, then close 4029); 0 = no limit",
    },
    Setting {
        flag: "client-burst",
        env: "LANTERN_CLIENT_BURST",
        default: "100",
        help: "subscriber frames allowed in a burst",
    },
    Setting {
        flag: "allowed-origins",
        env: "LANTERN_ALLOWED_ORIGINS",
        default: "(none)",
        help: "comma-separated origins, besides the server's own, whose pages may open sockets",
    },
    Setting {
        flag: "max-conns-per-ip",
        env: "LANTERN_MAX_CONNS_PER_IP",
        default: "200",
        help: "open sockets per client address (over it: HTTP 429 before the upgrade); 0 = no limit",
    },
    Setting {
        flag: "max-conns-per-user",
        env: "LANTERN_MAX_CONNS_PER_USER",
        default: "100",
        help: "open sockets per user (over it: HTTP 429 before the upgrade); 0 = no limit",
    },
    Setting {
        flag: "conn-attempts-per-ip",
        env: "LANTERN_CONN_ATTEMPTS_PER_IP",
        default: "20",
        help: "socket upgrades per second per address, bursts of twice that (over it: HTTP 429); 0 = no limit",
    },
    Setting {
        flag: "agent-rate",
        env: "LANTERN_AGENT_RATE",
        default: "1000",
        help: "agent frames per second (over it: rate_limited, then close 4029); 0 = no limit",
    },
    Setting {
        flag: "agent-burst",
        env: "LANTERN_AGENT_BURST",
        default: "2000",
        help: "agent frames allowed in a burst",
    },
    Setting {
        flag: "agent-grace-secs",
        env: "LANTERN_AGENT_GRACE_SECS",
        default: "30",
        help: "how long a running external workflow waits for its agent to reconnect before it is marked failed",
    },
    Setting {
        flag: "agent-frame-bytes",
        env: "LANTERN_AGENT_FRAME_BYTES",
        default: "1048576",
        help: "largest agent frame, and largest HTTP ingest body (bigger: 1009 / 413)",
    },
    Setting {
        flag: "queue-bytes",
        env: "LANTERN_QUEUE_BYTES",
        default: "1048576",
        help: "per-connection outgoing queue (over it: close 4008); 0 = no limit",
    },
    Setting {
        flag: "session-days",
        env: "LANTERN_SESSION_DAYS",
        default: "30",
        help: "how long a browser stays signed in",
    },
    Setting {
        flag: "public-url",
        env: "LANTERN_PUBLIC_URL",
        default: "(none)",
        help: "the URL people reach Lantern at, e.g. https://lantern.example.com behind a TLS proxy: its origin may open sockets, the login URL uses it, https makes the cookie Secure and silences the plain-HTTP warning",
    },
    Setting {
        flag: "trust-forwarded",
        env: "LANTERN_TRUST_FORWARDED",
        default: "false",
        help: "take the client address from the proxy's X-Forwarded-For (only behind a proxy that sets it)",
    },
    Setting {
        flag: "corpus",
        env: "LANTERN_CORPUS",
        default: "(Lantern's own docs, built in)",
        help: "folder whose .md and .txt files the search workflow searches",
    },
    Setting {
        flag: "tool-timeout-ms",
        env: "LANTERN_TOOL_TIMEOUT_MS",
        default: "10000",
        help: "longest a built-in workflow's tool call may run before it fails (ok: false)",
    },
    Setting {
        flag: "site-root",
        env: "LEPTOS_SITE_ROOT",
        default: "target/site",
        help: "the built WASM, CSS and assets",
    },
    Setting {
        flag: "store",
        env: "LANTERN_STORE",
        default: "sqlite",
        help: "sqlite (durable, in the data dir) or memory (nothing kept)",
    },
    Setting {
        flag: "sqlite-sync",
        env: "LANTERN_SQLITE_SYNC",
        default: "normal",
        help: "normal: a commit survives kill -9; full: also a power cut",
    },
    Setting {
        flag: "retention-days",
        env: "LANTERN_RETENTION_DAYS",
        default: "30",
        help: "finished workflows idle this long are deleted; 0 = keep forever",
    },
    Setting {
        flag: "log-format",
        env: "LANTERN_LOG_FORMAT",
        default: "human",
        help: "human (readable lines) or json (one object per line, with the request, socket and workflow spans); the level comes from RUST_LOG",
    },
];

/// `lantern serve --help`: every setting with its variable, default and meaning.
pub fn help_text() -> String {
    let mut out = String::from("settings (each flag also reads its environment variable):\n");
    for s in SETTINGS {
        out.push_str(&format!(
            "  --{} VALUE   [{}; default {}]\n      {}\n",
            s.flag, s.env, s.default, s.help
        ));
    }
    out.push_str("  LANTERN_TEST_HOOKS=1   (environment only) test-only endpoints and behaviours; off by default\n");
    out
}

/// Which [`EventStore`](crate::store::EventStore) holds the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Memory,
}

impl std::str::FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sqlite" => Ok(Self::Sqlite),
            "memory" => Ok(Self::Memory),
            _ => Err("expected sqlite or memory".into()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub heartbeat_ms: u64,
    pub client_frame_bytes: usize,
    pub queue_bytes: usize,
    pub client_rate: u32,
    pub max_conns_per_ip: u32,
    pub max_conns_per_user: u32,
    pub agent_rate: u32,
    pub agent_burst: u32,
    pub agent_grace_secs: u64,
    /// Largest frame an agent may send; also the largest HTTP ingest body.
    pub agent_frame_bytes: usize,
    pub session_days: u64,
    /// The URL users reach Lantern at (through a proxy); `None` = `http://ADDR`.
    pub public_url: Option<String>,
    /// Believe `X-Forwarded-For`: only true behind a proxy that sets it, else clients could
    /// choose their own address and escape the per-address limits.
    pub trust_forwarded: bool,
    pub conn_attempts_per_ip: u32,
    /// Origins besides the server's own whose pages may open sockets (e.g. behind a proxy
    /// that rewrites `Host`).
    pub allowed_origins: Vec<String>,
    pub client_burst: u32,
    pub site_root: PathBuf,
    /// Documents for the `search` workflow; `None` = Lantern's own docs.
    pub corpus: Option<PathBuf>,
    pub tool_timeout_ms: u64,
    pub store: StoreKind,
    pub sqlite_sync: String,
    pub retention_days: u64,
    pub log_format: LogFormat,
    /// Endpoints that only tests may use (fault injection). Off unless asked for.
    pub test_hooks: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("./data"),
            heartbeat_ms: 15_000,
            client_frame_bytes: 64 * 1024,
            queue_bytes: 1024 * 1024,
            client_rate: 50,
            max_conns_per_ip: 200,
            max_conns_per_user: 100,
            agent_rate: 1000,
            agent_burst: 2000,
            agent_grace_secs: 30,
            agent_frame_bytes: 1024 * 1024,
            session_days: 30,
            public_url: None,
            trust_forwarded: false,
            conn_attempts_per_ip: 20,
            allowed_origins: Vec::new(),
            client_burst: 100,
            site_root: PathBuf::from("target/site"),
            corpus: None,
            tool_timeout_ms: 10_000,
            store: StoreKind::Sqlite,
            sqlite_sync: "normal".into(),
            retention_days: 30,
            log_format: LogFormat::Human,
            test_hooks: false,
        }
    }
}

/// How log lines are written (to stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "human" => Ok(Self::Human),
            "json" => Ok(Self::Json),
            _ => Err("expected human or json".into()),
        }
    }
}

/// A setting given a value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{name}: cannot use {value:?}: {why}")]
pub struct ConfigError {
    name: String,
    value: String,
    why: String,
}

/// `scheme://authority` of a URL (what a browser sends as `Origin`).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    Some(format!("{scheme}://{authority}"))
}

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| ConfigError {
        name: name.to_owned(),
        value: value.to_owned(),
        why: e.to_string(),
    })
}

impl Config {
    /// Is a TLS-terminating proxy in front (the public URL is `https`)?
    pub fn public_url_is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// The base URL to show people: the public URL, else this server's own address.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let mut addr = bound;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }

    /// Listening where other machines can connect, with no TLS proxy configured?
    pub fn exposed_without_tls(&self) -> bool {
        !self.addr.ip().is_loopback() && !self.public_url_is_https()
    }

    /// Defaults, then the environment, then `--flag value` pairs (flags win).
    pub fn load(
        env: impl Fn(&str) -> Option<String>,
        flags: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        let settings: Vec<(&str, &str)> = SETTINGS.iter().map(|s| (s.flag, s.env)).collect();
        if let Some((flag, value)) = flags
            .iter()
            .find(|(f, _)| !settings.iter().any(|(s, _)| s == f))
        {
            return Err(ConfigError {
                name: flag.clone(),
                value: value.clone(),
                why: "no such setting".into(),
            });
        }
        for (flag, var) in settings {
            let from_flag = flags
                .iter()
                .rev()
                .find(|(f, _)| f == flag)
                .map(|(_, v)| v.clone());
            if let Some(value) = from_flag.or_else(|| env(var)) {
                config.set(flag, &value)?;
            }
        }
        if let Some(origin) = config.public_url.as_deref().and_then(origin_of) {
            config.allowed_origins.push(origin);
        }
        config.test_hooks = env("LANTERN_TEST_HOOKS").is_some_and(|v| v == "1" || v == "true");
        Ok(config)
    }

    fn set(&mut self, flag: &str, value: &str) -> Result<(), ConfigError> {
        match flag {
            "addr" => self.addr = parse(flag, value)?,
            "data-dir" => self.data_dir = PathBuf::from(value),
            "heartbeat-ms" => self.heartbeat_ms = parse(flag, value)?,
            "client-frame-bytes" => self.client_frame_bytes = parse(flag, value)?,
            "queue-bytes" => self.queue_bytes = parse(flag, value)?,
            "client-rate" => self.client_rate = parse(flag, value)?,
            "max-conns-per-ip" => self.max_conns_per_ip = parse(flag, value)?,
            "max-conns-per-user" => self.max_conns_per_user = parse(flag, value)?,
            "agent-frame-bytes" => self.agent_frame_bytes = parse(flag, value)?,
            "agent-rate" => self.agent_rate = parse(flag, value)?,
            "agent-burst" => self.agent_burst = parse(flag, value)?,
            "agent-grace-secs" => self.agent_grace_secs = parse(flag, value)?,
            "session-days" => self.session_days = parse(flag, value)?,
            "public-url" => {
                let url = value.trim().trim_end_matches('/');
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError {
                        name: flag.into(),
                        value: value.into(),
                        why: "expected http://… or https://…".into(),
                    });
                }
                self.public_url = Some(url.to_owned());
            }
            "trust-forwarded" => self.trust_forwarded = parse(flag, value)?,
            "conn-attempts-per-ip" => self.conn_attempts_per_ip = parse(flag, value)?,
            "allowed-origins" => {
                self.allowed_origins = value
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "client-burst" => self.client_burst = parse(flag, value)?,
            "site-root" => self.site_root = PathBuf::from(value),
            "corpus" => self.corpus = Some(PathBuf::from(value)),
            "tool-timeout-ms" => self.tool_timeout_ms = parse(flag, value)?,
            "store" => self.store = parse(flag, value)?,
            "sqlite-sync" => match value {
                "normal" | "full" | "extra" | "off" => self.sqlite_sync = value.to_owned(),
                _ => {
                    return Err(ConfigError {
                        name: flag.into(),
                        value: value.into(),
                        why: "expected normal, full, extra or off".into(),
                    })
                }
            },
            "retention-days" => self.retention_days = parse(flag, value)?,
            "log-format" => self.log_format = parse(flag, value)?,
            _ => {
                return Err(ConfigError {
                    name: flag.into(),
                    value: value.into(),
                    why: "no such setting".into(),
                })
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_environment_beats_defaults() {
        let env = |name: &str| match name {
            "LANTERN_ADDR" => Some("127.0.0.1:4000".to_owned()),
            "LANTERN_QUEUE_BYTES" => Some("2048".to_owned()),
            _ => None,
        };
        let flags = [("addr".to_owned(), "127.0.0.1:5000".to_owned())];
        let config = Config::load(env, &flags).expect("valid");
        assert_eq!(config.addr.port(), 5000);
        assert_eq!(config.queue_bytes, 2048);
        assert_eq!(config.heartbeat_ms, 15_000);
        assert!(!config.test_hooks);
    }

    #[test]
    fn every_documented_setting_takes_its_documented_default() {
        for setting in SETTINGS {
            let mut config = Config::default();
            let default = setting.default;
            // Settings without a value by default (none, or computed) are skipped.
            if default.starts_with('(') {
                continue;
            }
            config
                .set(setting.flag, default)
                .unwrap_or_else(|e| panic!("--{} {default}: {e}", setting.flag));
        }
        let help = help_text();
        assert!(SETTINGS
            .iter()
            .all(|s| help.contains(&format!("--{} ", s.flag))));
        assert!(SETTINGS.len() >= 24, "{}", SETTINGS.len());
    }

    #[test]
    fn an_unknown_flag_is_an_error() {
        let flags = [("adr".to_owned(), "x".to_owned())];
        assert!(Config::load(|_| None, &flags).is_err());
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let env = |name: &str| (name == "LANTERN_HEARTBEAT_MS").then(|| "soon".to_owned());
        let err = Config::load(env, &[]).expect_err("invalid");
        assert!(err.to_string().starts_with("heartbeat-ms"), "{err}");
    }
}
