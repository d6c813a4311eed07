//! What a scenario runs against: Lantern (the release binary, durable SQLite, tokens), a
//! Lantern cluster (two nodes on one `redis-server`), or the baseline (this binary's
//! `baseline` command), each server its own process so its memory and CPU can be read from
//! `/proc`. All are driven through the same [`Sub`] and [`Pub`].

use std::borrow::Cow;
use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Instant;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest, protocol::WebSocketConfig, Message, Utf8Bytes,
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Microseconds since the bench started: the send time events carry, read back on receipt
/// (one process sends and receives, so one clock).
pub fn micros() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e6
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Lantern,
    Baseline,
    /// Two Lantern nodes on one Redis (`--redis-url`): workflows are created and published to
    /// on node A, every subscriber is on node B — each event crosses nodes.
    Cluster,
}

pub struct Target {
    pub kind: Kind,
    /// Where workflows are created and publishers connect (a cluster's node A).
    addr: String,
    /// Where subscribers connect: `addr`, except in a cluster (node B).
    sub_addr: String,
    token: String,
    agent_token: String,
    http: reqwest::Client,
    /// The server (a cluster's node A).
    child: Child,
    /// A cluster's other processes, named: node B and `redis-server`. Their CPU counts as the
    /// server's ([`Target::cpu_parts`] names each; a figure's CPU is their sum).
    others: Vec<(&'static str, Child)>,
    /// Data dirs (Lantern's, Redis's), removed when the target goes.
    _data: Vec<tempfile::TempDir>,
}

/// Lantern without its protective limits: the bench opens thousands of sockets from one
/// address and publishes as fast as it can.
const LANTERN_FLAGS: &[&str] = &[
    "--max-conns-per-ip=0",
    "--max-conns-per-user=0",
    "--conn-attempts-per-ip=0",
    "--agent-rate=0",
    "--client-rate=0",
];

/// Limits of newer builds the bench also turns off, by environment variable (an older build
/// ignores a variable it does not know; it would refuse an unknown flag).
const LANTERN_ENV: &[(&str, &str)] = &[
    ("LANTERN_MAX_CONNECTIONS", "0"),
    ("LANTERN_MAX_CONNECTIONS_PER_IP", "0"),
    ("LANTERN_MAX_OPEN_WORKFLOWS", "0"),
];

/// A new token of admin's from `lantern token create STORAGE…` (`--data-dir D`, or
/// `--redis-url U` for a cluster).
async fn mint(bin: &Path, storage: &[OsString], agent: bool) -> Result<String> {
    let mut command = Command::new(bin);
    command
        .args(["token", "create", "--user", "admin"])
        .args(storage);
    if agent {
        command.arg("--agent");
    }
    let minted = command.output().await?;
    Ok(String::from_utf8(minted.stdout)?
        .lines()
        .last()
        .ok_or("no token printed")?
        .to_owned())
}

impl Target {
    /// Start the server; with `pin`, on [`crate::pin::SERVER_CPU`] only.
    pub async fn start(kind: Kind, lantern: &Path, pin: bool) -> Result<Self> {
        let mut command = match kind {
            Kind::Lantern | Kind::Cluster => Command::new(lantern),
            Kind::Baseline => Command::new(std::env::current_exe()?),
        };
        if pin {
            crate::pin::server_process(&mut command);
        }
        match kind {
            Kind::Lantern => Self::lantern(command, lantern).await,
            Kind::Baseline => Self::baseline(command).await,
            Kind::Cluster => Self::cluster(command, lantern, pin).await,
        }
    }

    async fn lantern(command: Command, bin: &Path) -> Result<Self> {
        let data = tempfile::tempdir()?;
        let (child, addr) = serve(command, data.path(), &[]).await?;
        // The printed link is a browser's (a one-time code, or a token in older builds): mint
        // tokens as an operator would.
        let storage = [OsString::from("--data-dir"), data.path().into()];
        let token = mint(bin, &storage, false).await?;
        let agent_token = mint(bin, &storage, true).await?;
        Ok(Self {
            kind: Kind::Lantern,
            sub_addr: addr.clone(),
            addr,
            token,
            agent_token,
            http: reqwest::Client::new(),
            child,
            others: Vec::new(),
            _data: vec![data],
        })
    }

    /// `redis-server` (see [`crate::redis`]), then nodes A and B on it, each with its own data dir
    /// (nothing shared on disk); with `pin`, both nodes and Redis on the server's CPU.
    async fn cluster(command: Command, bin: &Path, pin: bool) -> Result<Self> {
        let redis_dir = tempfile::tempdir()?;
        let (redis, url) = crate::redis::start(redis_dir.path(), pin).await?;
        let redis_url = ["--redis-url", url.as_str()];
        let (data_a, data_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let (child, addr) = serve(command, data_a.path(), &redis_url).await?;
        let mut command_b = Command::new(bin);
        if pin {
            crate::pin::server_process(&mut command_b);
        }
        let (node_b, sub_addr) = serve(command_b, data_b.path(), &redis_url).await?;
        let storage = redis_url.map(OsString::from);
        let token = mint(bin, &storage, false).await?;
        let agent_token = mint(bin, &storage, true).await?;
        Ok(Self {
            kind: Kind::Cluster,
            addr,
            sub_addr,
            token,
            agent_token,
            http: reqwest::Client::new(),
            child,
            others: vec![("node B", node_b), ("redis-server", redis)],
            _data: vec![data_a, data_b, redis_dir],
        })
    }

    async fn baseline(mut command: Command) -> Result<Self> {
        let mut child = command
            .args(["baseline", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let line = first_line(&mut child).await?;
        let addr = line
            .strip_prefix("listening on ")
            .ok_or("baseline did not start")?
            .to_owned();
        Ok(Self {
            kind: Kind::Baseline,
            sub_addr: addr.clone(),
            addr,
            token: String::new(),
            agent_token: String::new(),
            http: reqwest::Client::new(),
            child,
            others: Vec::new(),
            _data: Vec::new(),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// A new workflow (Lantern) or topic name (baseline).
    pub async fn topic(&self, n: usize) -> Result<String> {
        if self.kind == Kind::Baseline {
            return Ok(format!("t{n}"));
        }
        let created: Value = self
            .http
            .post(format!("http://{}/api/workflows", self.addr))
            .bearer_auth(&self.token)
            .json(&json!({ "kind": "external" }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(created["id"].as_str().ok_or("no id")?.to_owned())
    }

    /// A subscriber of `topic` from `seq > after`, connected (its `hello` read).
    pub async fn subscribe(&self, topic: &str, after: u64) -> Result<Sub> {
        self.subscribe_at(&self.sub_addr, topic, after).await
    }

    /// A subscriber connected to the node that publishes (the same as [`Target::subscribe`]
    /// but in a cluster, where it is node A rather than B).
    pub async fn subscribe_beside_publisher(&self, topic: &str, after: u64) -> Result<Sub> {
        self.subscribe_at(&self.addr, topic, after).await
    }

    async fn subscribe_at(&self, addr: &str, topic: &str, after: u64) -> Result<Sub> {
        let path = match self.kind {
            Kind::Lantern | Kind::Cluster => format!("/ws/workflow/{topic}?after={after}"),
            Kind::Baseline => format!("/sub/{topic}?after={after}"),
        };
        let mut ws = self.connect(addr, &path, &self.token).await?;
        loop {
            let text = next_text(&mut ws).await?;
            if text.contains(r#""type":"hello""#) {
                return Ok(Sub {
                    ws,
                    next: after + 1,
                });
            }
        }
    }

    /// A publisher to `topic` (Lantern: the agent socket).
    pub async fn publisher(&self, topic: &str) -> Result<Pub> {
        let path = match self.kind {
            Kind::Lantern | Kind::Cluster => format!("/ws/agent/{topic}"),
            Kind::Baseline => format!("/pub/{topic}"),
        };
        let ws = self.connect(&self.addr, &path, &self.agent_token).await?;
        Ok(Pub { ws, sent: 0 })
    }

    async fn connect(&self, addr: &str, path: &str, token: &str) -> Result<Socket> {
        let mut request = format!("ws://{addr}{path}").into_client_request()?;
        if !token.is_empty() {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
        }
        // No Nagle delay on the publisher's small frames (nor on the subscribers' pongs).
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(client_config()), true)
                .await?;
        Ok(ws)
    }

    /// Lantern only: the text of `/metrics` (read [`Histogram`]s from it) — where in the
    /// server the time went. In a cluster, node A's (metrics are per node): its appends.
    pub async fn metrics(&self) -> Result<Option<String>> {
        if self.kind == Kind::Baseline {
            return Ok(None);
        }
        let text = self
            .http
            .get(format!("http://{}/metrics", self.addr))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(Some(text))
    }

    /// Resident memory of the server process, KiB (a cluster's node A).
    pub fn rss_kib(&self) -> u64 {
        proc_file(&self.child, "status")
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// CPU time (user + system, seconds) each of the server's processes used so far, named:
    /// one, or a cluster's two nodes and Redis.
    pub fn cpu_parts(&self) -> Vec<(&'static str, f64)> {
        let first = match self.kind {
            Kind::Cluster => "node A",
            Kind::Lantern | Kind::Baseline => "server",
        };
        std::iter::once((first, &self.child))
            .chain(self.others.iter().map(|(name, child)| (*name, child)))
            .map(|(name, child)| (name, cpu_secs(child)))
            .collect()
    }
}

fn proc_file(child: &Child, name: &str) -> String {
    let pid = child.id().unwrap_or(0);
    std::fs::read_to_string(format!("/proc/{pid}/{name}")).unwrap_or_default()
}

/// CPU time `child` used so far (user + system), seconds.
fn cpu_secs(child: &Child) -> f64 {
    let stat = proc_file(child, "stat");
    // Fields after the `(comm)`: state is field 3, utime 14 and stime 15 (1-based).
    let after_comm = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// `lantern serve` on `data` with `extra` flags: the process and the address it listens on.
async fn serve(mut command: Command, data: &Path, extra: &[&str]) -> Result<(Child, String)> {
    let mut child = command
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(LANTERN_FLAGS)
        .args(extra)
        .envs(LANTERN_ENV.iter().copied())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let line = first_line(&mut child).await?;
    let rest = line.split("http://").nth(1).ok_or("no URL printed")?;
    let addr = rest.split('/').next().ok_or("no address")?.to_owned();
    Ok((child, addr))
}

/// A Prometheus histogram as `/metrics` shows it: cumulative bucket counts and the sum.
pub struct Histogram {
    /// (upper bound in seconds, samples at or under it), ascending, `+Inf` last.
    buckets: Vec<(f64, f64)>,
    sum: f64,
}

impl Histogram {
    /// Histogram `name` from the text format (`name_bucket{le="0.001"} 123`, `name_sum 0.5`).
    pub fn parse(metrics: &str, name: &str) -> Option<Self> {
        let prefix = format!("{name}_bucket{{le=\"");
        let buckets: Vec<(f64, f64)> = metrics
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .filter_map(|rest| {
                let (le, count) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count.trim().parse().ok()?))
            })
            .collect();
        let sum = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}_sum ")))?
            .trim()
            .parse()
            .ok()?;
        (!buckets.is_empty()).then_some(Self { buckets, sum })
    }

    /// Samples.
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |b| b.1)
    }

    /// Mean, ms.
    pub fn mean_ms(&self) -> f64 {
        self.sum / self.count() * 1000.0
    }

    /// The upper bound (ms) of the first bucket holding at least `q` of the samples.
    pub fn quantile_bound_ms(&self, q: f64) -> f64 {
        let total = self.buckets.last().map_or(0.0, |b| b.1);
        self.buckets
            .iter()
            .find(|(_, count)| *count >= q * total)
            .map_or(f64::NAN, |(le, _)| le * 1000.0)
    }
}

/// The load generator's sockets. tungstenite's default read buffer is 128 KiB, zero-filled
/// again before every read: with one small frame per read (the latency scenario) that memset
/// was most of the load generator's CPU time (`perf record -p <bench pid>`: 62 % in
/// `__memset`), and so most of each measured latency, for either server. Frames here are small.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER)
}

/// Bytes per read: a whole batch of small frames still fits in one read.
const CLIENT_READ_BUFFER: usize = 16 * 1024;

async fn first_line(child: &mut Child) -> Result<String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await??
        .ok_or("the server exited")?;
    // Keep reading so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(line)
}

async fn next_text(ws: &mut Socket) -> Result<Utf8Bytes> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}").into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => return Err("connection ended".into()),
        }
    }
}

/// A subscriber that checks what it gets: every event once, in `seq` order, no gap.
pub struct Sub {
    ws: Socket,
    /// The `seq` the next event must have.
    next: u64,
}

/// The fields of a server frame the bench reads; serde skips the rest without building them,
/// so checking a frame costs the load generator little (it shares the cores with the server).
#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    seq: Option<u64>,
    /// The send time: the baseline's field.
    t: Option<f64>,
    /// The send time: Lantern's `agent_thinking` content, as the publisher wrote it.
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    /// The send time: a Lantern `text_delta`'s delta, as the publisher wrote it.
    #[serde(borrow)]
    delta: Option<Cow<'a, str>>,
}

impl Sub {
    /// The next event's send time (µs, [`micros`]); an error if it is not the next `seq`.
    pub async fn next_event(&mut self) -> Result<f64> {
        loop {
            let text = next_text(&mut self.ws).await?;
            let frame: Frame = serde_json::from_str(&text)?;
            let Some(seq) = frame.seq else {
                continue; // a control frame (replay_done, heartbeat)
            };
            if frame.kind.as_deref() == Some("ack") {
                continue;
            }
            if seq != self.next {
                return Err(format!("expected seq {}, got {seq}", self.next).into());
            }
            self.next += 1;
            let stamp = frame.delta.or(frame.content);
            let sent = frame
                .t
                .or_else(|| stamp?.trim_end().parse().ok())
                .unwrap_or(0.0);
            return Ok(sent);
        }
    }

    /// Read `n` events; their latencies (receipt − send, ms).
    pub async fn take(mut self, n: u64) -> Result<Vec<f64>> {
        let mut latencies = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let sent = self.next_event().await?;
            latencies.push((micros() - sent) / 1000.0);
        }
        Ok(latencies)
    }
}

/// A publisher: sends events in batches, stamped with their send time; acks come back on
/// the same socket.
pub struct Pub {
    ws: Socket,
    sent: u64,
}

impl Pub {
    /// Split into a sender and an ack counter that run at the same time.
    pub fn split(self) -> (PubSink, PubAcks) {
        let (sink, stream) = self.ws.split();
        (
            PubSink {
                sink,
                sent: self.sent,
            },
            PubAcks { stream },
        )
    }
}

/// `n` events as one frame, stamped with the send time (Lantern: `agent_thinking` with an
/// idempotency `id`, so each is acked once durable).
fn batch(first_id: u64, n: usize) -> Message {
    let t = micros();
    let events: Vec<Value> = (0..n as u64)
        .map(|i| {
            json!({ "type": "agent_thinking", "agent": "bench", "content": t.to_string(),
                    "id": format!("e{}", first_id + i) })
        })
        .collect();
    Message::text(Value::Array(events).to_string())
}

/// One streamed delta of message `message_id` as its own frame (as an LLM agent sends tokens),
/// stamped with the send time and carrying an idempotency `id`, so it is acked once durable.
fn delta(message_id: &str, id: u64) -> Message {
    let event = json!({ "type": "text_delta", "agent": "bench", "message_id": message_id,
        "delta": format!("{} ", micros()), "id": format!("d{id}") });
    Message::text(event.to_string())
}

pub struct PubSink {
    sink: futures::stream::SplitSink<Socket, Message>,
    sent: u64,
}

impl PubSink {
    /// Send the next delta of message `message_id`, one per frame.
    pub async fn send_delta(&mut self, message_id: &str) -> Result<()> {
        let frame = delta(message_id, self.sent);
        self.sent += 1;
        self.sink.send(frame).await?;
        Ok(())
    }

    /// Send the next `n` events as one frame.
    pub async fn send(&mut self, n: usize) -> Result<()> {
        let frame = batch(self.sent, n);
        self.sent += n as u64;
        self.sink.send(frame).await?;
        Ok(())
    }
}

pub struct PubAcks {
    stream: futures::stream::SplitStream<Socket>,
}

impl PubAcks {
    pub async fn count(mut self, mut n: u64) -> Result<()> {
        while n > 0 {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) if text.contains(r#""type":"ack""#) => n -= 1,
                Some(Ok(Message::Text(text))) if text.contains(r#""type":"error""#) => {
                    return Err(format!("publish refused: {text}").into())
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err("publisher connection ended".into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn a_quantile_is_the_first_bucket_that_holds_it() {
        let text = "# TYPE x histogram\nx_bucket{le=\"0.001\"} 90\nx_bucket{le=\"0.002\"} 99\n\
                    x_bucket{le=\"0.005\"} 100\nx_bucket{le=\"+Inf\"} 100\nx_sum 0.1\nx_count 100\n";
        let x = Histogram::parse(text, "x").expect("x is there");
        assert_eq!(x.quantile_bound_ms(0.5), 1.0);
        assert_eq!(x.quantile_bound_ms(0.99), 2.0);
        assert_eq!(x.quantile_bound_ms(0.999), 5.0);
        assert!((x.mean_ms() - 1.0).abs() < 1e-9);
        assert!(Histogram::parse(text, "y").is_none());
    }
}
