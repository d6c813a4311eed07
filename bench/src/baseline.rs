//! The baseline: the least a WebSocket broadcast server can do, written the obvious way with
//! tokio-tungstenite — no durability, no auth, no validation, history kept in memory. It speaks
//! the same shapes as Lantern for what the scenarios need, so both are driven by the same code:
//!
//! - `ws://ADDR/sub/{topic}?after=N`: `{"type":"hello"}`, then every event of the topic with
//!   `seq > N` (history first, then live), each `{"seq":S,"t":T}`.
//! - `ws://ADDR/pub/{topic}`: a text frame holding one event or a JSON array of them (`content`
//!   or `delta` = the send time T, as the bench sends Lantern `agent_thinking` and `text_delta`
//!   events); each
//!   element gets the next `seq`, is sent to every subscriber, and is acked
//!   `{"type":"ack","seq":S}`.
//!
//! Each event is serialized once and the same bytes go to every subscriber, as in Lantern.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::{
    handshake::server, protocol::WebSocketConfig, Message, Utf8Bytes,
};

/// One topic: its log and its live channel. Appends and subscriptions take the same lock, so a
/// subscriber sees history and live events with no gap and no duplicate.
#[derive(Default)]
struct Topic {
    log: Vec<Utf8Bytes>,
    live: Option<broadcast::Sender<Utf8Bytes>>,
}

type Topics = Arc<Mutex<HashMap<String, Topic>>>;

/// Serve until killed; prints `listening on ADDR` first.
pub async fn run(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let topics = Topics::default();
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(connection(stream, topics.clone()));
    }
}

// The handshake callback's error type is tungstenite's (an HTTP response); it is never built.
#[allow(clippy::result_large_err)]
async fn connection(stream: TcpStream, topics: Topics) {
    let mut path = String::new();
    let callback = |request: &server::Request, response: server::Response| {
        path = request.uri().to_string();
        Ok(response)
    };
    // Small buffers, as the fastest minimal hubs use (shared/PERFORMANCE.md): the default
    // 128 KiB read buffer alone would cost every idle socket 128 KiB.
    let config = WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(0);
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let (route, query) = path.split_once('?').unwrap_or((&path, ""));
    let after: usize = query
        .strip_prefix("after=")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if let Some(topic) = route.strip_prefix("/sub/") {
        subscriber(ws, topics, topic.to_owned(), after).await;
    } else if let Some(topic) = route.strip_prefix("/pub/") {
        publisher(ws, topics, topic.to_owned()).await;
    }
}

fn channel(topic: &mut Topic) -> broadcast::Sender<Utf8Bytes> {
    topic
        .live
        .get_or_insert_with(|| broadcast::channel(65_536).0)
        .clone()
}

async fn subscriber(
    ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    topics: Topics,
    name: String,
    after: usize,
) {
    let (backlog, mut live) = {
        let mut topics = topics.lock().unwrap_or_else(|p| p.into_inner());
        let topic = topics.entry(name).or_default();
        let backlog: Vec<Utf8Bytes> = topic.log.iter().skip(after).cloned().collect();
        (backlog, channel(topic).subscribe())
    };
    let (mut sink, mut stream) = ws.split();
    // Drain what the client sends (pongs, close) so the connection stays healthy.
    tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    if sink
        .send(Message::text(r#"{"type":"hello"}"#))
        .await
        .is_err()
    {
        return;
    }
    for event in backlog {
        if sink.send(Message::Text(event)).await.is_err() {
            return;
        }
    }
    while let Ok(event) = live.recv().await {
        if sink.send(Message::Text(event)).await.is_err() {
            return;
        }
    }
}

async fn publisher(
    ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    topics: Topics,
    name: String,
) {
    let (mut sink, mut stream) = ws.split();
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let items = match serde_json::from_str::<Value>(text.as_str()) {
            Ok(Value::Array(items)) => items,
            Ok(one @ Value::Object(_)) => vec![one],
            _ => continue,
        };
        let mut acks = Vec::with_capacity(items.len());
        {
            let mut topics = topics.lock().unwrap_or_else(|p| p.into_inner());
            let topic = topics.entry(name.clone()).or_default();
            let live = channel(topic);
            for item in items {
                let seq = topic.log.len() + 1;
                // The send time, as Lantern's events carry it: in `content`.
                let stamp = item.get("content").or_else(|| item.get("delta"));
                let t: Option<f64> = stamp.and_then(|c| c.as_str()?.trim_end().parse().ok());
                let event: Utf8Bytes = serde_json::json!({ "seq": seq, "t": t }).to_string().into();
                topic.log.push(event.clone());
                let _ = live.send(event);
                acks.push(seq);
            }
        }
        for seq in acks {
            let ack = format!(r#"{{"type":"ack","seq":{seq}}}"#);
            if sink.send(Message::text(ack)).await.is_err() {
                return;
            }
        }
    }
}
