//! Test helpers: a real Lantern server on an ephemeral port, a JSON HTTP client, and a
//! WebSocket client that reads frames as JSON with a timeout (a test that hangs fails).

#![allow(dead_code)]

/// A real `redis-server` per test (the store's own test helper, shared by source).
#[path = "../../../src/store/redis/test_server.rs"]
pub mod redis_server;
pub mod sse;
pub mod upstream;

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use server::auth::{Accounts, TokenKind};
use server::config::Config;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{self, protocol::frame::coding::CloseCode, Message},
    MaybeTlsStream, WebSocketStream,
};

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    /// Sends `Authorization: Bearer <token>` (admin's user token) unless a request sets its own.
    pub http: reqwest::Client,
    /// The server's data dir (a real SQLite file); deleted when the test ends.
    pub data: std::sync::Arc<tempfile::TempDir>,
    /// A user token of the first user's (admin's), minted as an operator would.
    pub token: String,
    /// An agent token of admin's.
    pub agent_token: String,
    /// In-process servers: the accounts, to mint more tokens directly. `None` for a child
    /// process, which mints with `lantern token create`.
    pub accounts: Option<std::sync::Arc<Accounts>>,
    /// The one-time login code of the link a first start printed.
    pub printed_code: Option<String>,
}

/// A client that sends `token` on every request that does not set its own.
fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}").parse().expect("header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The one-time login code in a printed `…/login?code=…` URL.
pub fn code_in(url: &str) -> Option<String> {
    url.split("code=").nth(1).map(|t| t.trim().to_owned())
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

/// Start an in-process server on a fresh data dir with test hooks on, after `tweak`
/// adjusted its config.
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let data = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = Config {
        addr,
        test_hooks: true,
        ..Config::default()
    };
    config.storage.data_dir = data.path().to_owned();
    tweak(&mut config);
    let lantern = server::Lantern::start(listener, config)
        .await
        .expect("server starts");
    let printed_code = code_in(&lantern.open_url().expect("url"));
    assert!(printed_code.is_some(), "a first start prints a login link");
    let accounts = lantern.accounts();
    let token = accounts
        .create_token("admin", TokenKind::User)
        .await
        .expect("user token");
    let agent_token = accounts
        .create_token("admin", TokenKind::Agent)
        .await
        .expect("agent token");
    tokio::spawn(async move {
        if let Err(e) = lantern.run_until(std::future::pending()).await {
            panic!("server failed: {e}");
        }
    });
    let server = TestServer {
        addr,
        http: client_with(&token),
        data,
        token,
        agent_token,
        accounts: Some(accounts),
        printed_code,
    };
    server.wait_until_healthy().await;
    server
}

/// Run `lantern ARGS` to completion; returns its last line of stdout.
pub async fn lantern_cli(args: &[&str]) -> Result<String, String> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run lantern");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() {
        Ok(stdout.lines().last().unwrap_or("").to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The `lantern` binary as a child process, on an ephemeral port, on `data_dir`.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub server: TestServer,
}

pub async fn spawn_binary(
    data: std::sync::Arc<tempfile::TempDir>,
    extra: &[&str],
) -> ServerProcess {
    spawn_binary_with(data, extra, |_| {}).await
}

/// As [`spawn_binary`], with `tweak` applied to the command first (limits, environment).
pub async fn spawn_binary_with(
    data: std::sync::Arc<tempfile::TempDir>,
    extra: &[&str],
    tweak: impl FnOnce(&mut tokio::process::Command),
) -> ServerProcess {
    use tokio::io::AsyncBufReadExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_lantern"));
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    tweak(&mut command);
    let mut child = command.spawn().expect("spawn lantern");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let (addr, printed_code) = loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("lantern prints its address")
            .expect("read stdout")
            .expect("lantern exited before printing its address");
        if let Some(rest) = line.split("http://").nth(1) {
            let addr = rest.split('/').next().expect("address");
            break (addr.parse().expect("address"), code_in(rest));
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let dir = data.path().to_str().expect("utf-8 path").to_owned();
    // The printed login link is for a browser: mint a token as an operator would.
    let token = lantern_cli(&["token", "create", "--user", "admin", "--data-dir", &dir])
        .await
        .expect("token create");
    let agent_token = lantern_cli(&[
        "token",
        "create",
        "--user",
        "admin",
        "--agent",
        "--data-dir",
        &dir,
    ])
    .await
    .expect("agent token create");
    let server = TestServer {
        addr,
        http: client_with(&token),
        data,
        token,
        agent_token,
        accounts: None,
        printed_code,
    };
    server.wait_until_healthy().await;
    ServerProcess { child, server }
}

impl TestServer {
    /// Use `token` (a user token) and `agent_token` from now on: tokens minted elsewhere (by
    /// `lantern token create --redis-url …`, for a cluster).
    pub fn with_tokens(mut self, token: String, agent_token: String) -> Self {
        self.http = client_with(&token);
        self.token = token;
        self.agent_token = agent_token;
        self
    }

    async fn wait_until_healthy(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "server never became healthy"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A new token for `user` (created if new).
    pub async fn mint(&self, user: &str, kind: TokenKind) -> String {
        match &self.accounts {
            Some(accounts) => accounts.create_token(user, kind).await.expect("mint"),
            None => {
                let dir = self.data.path().to_str().expect("utf-8 path");
                let mut args = vec!["token", "create", "--user", user, "--data-dir", dir];
                if kind == TokenKind::Agent {
                    args.push("--agent");
                }
                lantern_cli(&args).await.expect("token create")
            }
        }
    }

    /// A fresh one-time login code for `user` (what `/login?code=` takes).
    pub async fn login_code(&self, user: &str) -> String {
        match &self.accounts {
            Some(accounts) => accounts.create_login_code(user).await.expect("login code"),
            None => {
                let dir = self.data.path().to_str().expect("utf-8 path");
                let args = ["token", "login-link", "--user", user, "--data-dir", dir];
                let link = lantern_cli(&args).await.expect("login-link");
                code_in(&link).expect("a code in the link")
            }
        }
    }

    /// A request with `token` as its bearer, or with no credential at all.
    pub fn request_as(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        match token {
            Some(token) => self.http.request(method, self.url(path)).bearer_auth(token),
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client")
                .request(method, self.url(path)),
        }
    }

    /// `GET path` as `token` (or anonymously); the status and the JSON body (or Null).
    pub async fn get_as(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        let response = self
            .request_as(reqwest::Method::GET, path, token)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST path` with a JSON body as `token` (or anonymously).
    pub async fn post_as(&self, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .request_as(reqwest::Method::POST, path, token)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A WebSocket upgrade request for `path`, carrying `token` as a bearer if given.
    pub fn ws_request(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> tungstenite::handshake::client::Request {
        use tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .expect("request");
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().expect("header value");
            request.headers_mut().insert("authorization", value);
        }
        request
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Create a workflow of `kind`; returns its id.
    pub async fn create(&self, kind: &str) -> String {
        let (status, body) = self.post("/api/workflows", json!({ "kind": kind })).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// `POST /api/workflows/{id}/events` with the agent token: the status and the body.
    pub async fn ingest(&self, id: &str, events: Value) -> (u16, Value) {
        self.post_as(
            Some(&self.agent_token),
            &format!("/api/workflows/{id}/events"),
            events,
        )
        .await
    }

    /// Publish events over HTTP ingest (with the agent token); returns their seqs.
    pub async fn publish(&self, id: &str, events: Value) -> Vec<u64> {
        let (status, body) = self
            .post_as(
                Some(&self.agent_token),
                &format!("/api/workflows/{id}/events"),
                events,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["seqs"]
            .as_array()
            .expect("seqs")
            .iter()
            .map(|s| s.as_u64().expect("u64"))
            .collect()
    }

    /// An agent socket of admin's on workflow `id`; `query` is added to the path (`?after=N`).
    pub async fn agent(&self, id: &str, query: &str) -> Client {
        let path = format!("/ws/agent/{id}{query}");
        let (ws, _) =
            tokio_tungstenite::connect_async(self.ws_request(&path, Some(&self.agent_token)))
                .await
                .expect("agent upgrade");
        Client { ws }
    }

    pub async fn subscribe(&self, id: &str, after: u64) -> Client {
        self.subscribe_as(&self.token, id, after).await
    }

    pub async fn subscribe_as(&self, token: &str, id: &str, after: u64) -> Client {
        let request = self.ws_request(&format!("/ws/workflow/{id}?after={after}"), Some(token));
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("upgrade");
        Client { ws }
    }

    /// Try an upgrade (as admin) that must be refused; returns the HTTP status.
    pub async fn refused_upgrade(&self, path: &str) -> u16 {
        self.refused_upgrade_as(Some(&self.token), path).await
    }

    /// Try an upgrade as `token` (or with none) that must be refused; returns the HTTP status.
    pub async fn refused_upgrade_as(&self, token: Option<&str>, path: &str) -> u16 {
        match tokio_tungstenite::connect_async(self.ws_request(path, token)).await {
            Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("upgrade was accepted"),
        }
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Closed(u16),
    Dropped,
}

impl Client {
    /// The next text frame as JSON (pings and pongs skipped).
    pub async fn next_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within the timeout")
                .expect("the socket is open")
                .expect("a frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.ws
            .send(Message::Text(value.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send");
    }

    /// `hello`, then the backlog up to `replay_done`; returns (hello, events).
    pub async fn hello_and_backlog(&mut self) -> (Value, Vec<Value>) {
        let hello = self.next_json().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        let mut events: Vec<Value> = Vec::new();
        loop {
            let frame = self.next_json().await;
            if frame["type"] == "replay_done" {
                if let Some(last) = events.last() {
                    assert_eq!(
                        frame["last_seq"], last["seq"],
                        "replay_done names the last replayed seq"
                    );
                }
                return (hello, events);
            }
            events.push(frame);
        }
    }

    /// The next `n` logged events, skipping control frames (`ack` carries a seq too).
    pub async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            let frame = self.next_json().await;
            if frame.get("seq").is_some() && frame["type"] != "ack" {
                events.push(frame);
            }
        }
        events
    }

    /// Logged events up to and including the first that `last` matches (control frames skipped).
    pub async fn events_until(&mut self, last: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let frame = self.next_json().await;
            if frame.get("seq").is_some() && frame["type"] != "ack" {
                let done = last(&frame);
                events.push(frame);
                if done {
                    return events;
                }
            }
        }
    }

    /// The next frame that is not a logged event (an `ack`, an `error`), skipping events.
    pub async fn next_control(&mut self) -> Value {
        loop {
            let frame = self.next_json().await;
            if frame.get("seq").is_none() || frame["type"] == "ack" {
                return frame;
            }
        }
    }

    /// Read until the server ends the connection; frames before that are returned. A close
    /// frame is answered at once, as browsers do (the server waits for the answer).
    pub async fn until_end(&mut self) -> (Ended, Vec<Value>) {
        let mut frames = Vec::new();
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("end within the timeout");
            match next {
                Some(Ok(Message::Text(text))) => {
                    frames.push(serde_json::from_str(&text).expect("JSON"))
                }
                Some(Ok(Message::Close(frame))) => {
                    // tungstenite queued the answering close frame; this sends it.
                    let _ = self.ws.flush().await;
                    let code = frame.map_or(CloseCode::Status, |f| f.code);
                    return (Ended::Closed(u16::from(code)), frames);
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return (Ended::Dropped, frames),
            }
        }
    }
}

/// A browser's session cookie (`lantern_session=…`) for the server's admin, made by signing in
/// with the login form as a browser would.
pub async fn session_cookie(server: &TestServer) -> String {
    let response = server
        .request_as(reqwest::Method::POST, "/login", None)
        .form(&[("token", server.token.as_str())])
        .send()
        .await
        .expect("sign in");
    let set = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    set.split(';').next().expect("name=value").to_owned()
}

/// The seqs of a list of events.
pub fn seqs(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

impl TestServer {
    /// Workflow `id`'s whole log (as admin).
    pub async fn log(&self, id: &str) -> Vec<Value> {
        let (status, history) = self.get(&format!("/api/workflows/{id}/events")).await;
        assert_eq!(status, 200, "{history}");
        history["events"].as_array().expect("events").clone()
    }
}

/// Is this event a `workflow_status` of `status`?
pub fn is_status(event: &Value, status: &str) -> bool {
    event["type"] == "workflow_status" && event["status"] == status
}

/// The deltas of message `message_id`, joined in order.
pub fn joined_deltas(events: &[Value], message_id: &str) -> String {
    events
        .iter()
        .filter(|e| e["message_id"] == message_id && e.get("delta").is_some())
        .map(|e| e["delta"].as_str().expect("delta"))
        .collect()
}

/// PROTOCOL.md §1 holds for a whole log: seqs 1..n; every tool call and agent opened is closed
/// exactly once; streamed messages closed once, by their agent, nothing after their close;
/// interrupts answered at most once; nothing after a terminal status.
pub fn assert_invariants(events: &[Value]) {
    use std::collections::{HashMap, HashSet};
    assert_eq!(seqs(events), (1..=events.len() as u64).collect::<Vec<_>>());
    let mut open_calls = HashSet::new();
    let mut open_agents = HashSet::new();
    let mut open_messages: HashMap<String, String> = HashMap::new();
    let mut closed_messages = HashSet::new();
    let mut open_interrupts = HashSet::new();
    let mut interrupts = HashSet::new();
    let mut finished = false;
    for event in events {
        assert!(!finished, "an event after the terminal status: {event}");
        let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
        match event["type"].as_str().expect("type") {
            "tool_executing" => assert!(open_calls.insert(field("call_id")), "{event}"),
            "tool_completed" => assert!(open_calls.remove(&field("call_id")), "{event}"),
            "agent_started" => assert!(open_agents.insert(field("agent")), "{event}"),
            "agent_completed" => assert!(open_agents.remove(&field("agent")), "{event}"),
            "text_delta" | "thinking_delta" => {
                let id = field("message_id");
                assert!(
                    !closed_messages.contains(&id),
                    "a delta after its close: {event}"
                );
                let agent = open_messages.entry(id).or_insert_with(|| field("agent"));
                assert_eq!(*agent, field("agent"), "one agent per message: {event}");
            }
            "agent_response" | "agent_thinking" if event.get("message_id").is_some() => {
                let id = field("message_id");
                open_messages.remove(&id);
                assert!(closed_messages.insert(id), "closed once: {event}");
            }
            "interrupt" => {
                assert!(interrupts.insert(field("interrupt_id")), "unique: {event}");
                open_interrupts.insert(field("interrupt_id"));
            }
            "interrupt_resolved" => {
                assert!(open_interrupts.remove(&field("interrupt_id")), "{event}")
            }
            "workflow_status" => {
                finished = matches!(
                    field("status").as_str(),
                    "completed" | "failed" | "cancelled"
                )
            }
            _ => {}
        }
    }
    if finished {
        assert!(
            open_calls.is_empty()
                && open_agents.is_empty()
                && open_messages.is_empty()
                && open_interrupts.is_empty(),
            "all closed at the end"
        );
    }
}
