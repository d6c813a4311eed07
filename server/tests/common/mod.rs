//! Test helpers: a real Lantern server on an ephemeral port, a JSON HTTP client, and a
//! WebSocket client that reads frames as JSON with a timeout (a test that hangs fails).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
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
    pub http: reqwest::Client,
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

/// Start a server with test hooks on, after `tweak` adjusted its config.
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = Config {
        addr,
        test_hooks: true,
        ..Config::default()
    };
    tweak(&mut config);
    tokio::spawn(server::serve(listener, config));
    TestServer {
        addr,
        http: reqwest::Client::new(),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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

    /// Publish events over HTTP ingest; returns their seqs.
    pub async fn publish(&self, id: &str, events: Value) -> Vec<u64> {
        let (status, body) = self
            .post(&format!("/api/workflows/{id}/events"), events)
            .await;
        assert_eq!(status, 200, "{body}");
        body["seqs"]
            .as_array()
            .expect("seqs")
            .iter()
            .map(|s| s.as_u64().expect("u64"))
            .collect()
    }

    pub async fn subscribe(&self, id: &str, after: u64) -> Client {
        let url = format!("ws://{}/ws/workflow/{id}?after={after}", self.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade");
        Client { ws }
    }

    /// Try an upgrade that must be refused; returns the HTTP status.
    pub async fn refused_upgrade(&self, path: &str) -> u16 {
        let url = format!("ws://{}{path}", self.addr);
        match tokio_tungstenite::connect_async(url).await {
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

    /// Read until the server ends the connection; frames before that are returned.
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
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (Ended::Closed(u16::from(frame.code)), frames)
                }
                Some(Ok(Message::Close(None))) => {
                    return (Ended::Closed(u16::from(CloseCode::Status)), frames)
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return (Ended::Dropped, frames),
            }
        }
    }
}

/// The seqs of a list of events.
pub fn seqs(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}
