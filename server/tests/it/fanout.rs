//! Many viewers, many reconnects: 100 subscribers follow a workflow while 5,000 events are
//! published; each drops its connection at 10+ random points and resumes with `after`. Every
//! one must end holding exactly seq 1..5000, in order (a duplicate or a gap fails at once).

use std::time::Duration;

use crate::common::{start_with, Client, WAIT};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const SUBSCRIBERS: usize = 100;
const EVENTS: u64 = 5000;
const DROPS_PER_SUBSCRIBER: usize = 12;

/// A tiny deterministic generator (xorshift64*): reproducible drop points, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Follow the workflow until seq `EVENTS`, dropping the connection after each drop point.
async fn follow(
    server_addr: std::net::SocketAddr,
    token: String,
    id: String,
    seed: u64,
) -> (Vec<u64>, usize) {
    let mut rng = Rng(seed | 1);
    let mut drop_points: Vec<u64> = (0..DROPS_PER_SUBSCRIBER)
        .map(|_| 1 + rng.next() % (EVENTS - 1))
        .collect();
    drop_points.sort_unstable();
    drop_points.dedup();
    let mut held: Vec<u64> = Vec::with_capacity(EVENTS as usize);
    let mut reconnects = 0;
    while held.len() < EVENTS as usize {
        let after = held.last().copied().unwrap_or(0);
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{server_addr}/ws/workflow/{id}?after={after}")
            .into_client_request()
            .expect("request");
        let bearer = format!("Bearer {token}").parse().expect("header");
        request.headers_mut().insert("authorization", bearer);
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connect");
        let mut client = Client { ws };
        let hello = client.next_json().await;
        assert_eq!(hello["type"], "hello");
        loop {
            let frame = tokio::time::timeout(WAIT, client.ws.next())
                .await
                .expect("frame in time");
            let Some(Ok(Message::Text(text))) = frame else {
                panic!("unexpected {frame:?}")
            };
            let value: Value = serde_json::from_str(&text).expect("json");
            let Some(seq) = value.get("seq").and_then(Value::as_u64) else {
                continue;
            };
            let expected = held.len() as u64 + 1;
            assert_eq!(seq, expected, "subscriber {seed}: duplicate or gap");
            held.push(seq);
            if held.len() == EVENTS as usize {
                break;
            }
            if drop_points.first() == Some(&seq) {
                drop_points.remove(0);
                // Alternate between a clean close and a plain drop of the TCP connection.
                if reconnects % 2 == 0 {
                    let _ = client.ws.close(None).await;
                }
                reconnects += 1;
                break;
            }
        }
    }
    (held, reconnects)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_subscribers_with_random_reconnects_each_end_with_the_exact_log() {
    // 1,200+ upgrades from one address in seconds: lift the per-address attempt limit.
    let server = start_with(|c| {
        c.conn_attempts_per_ip = 0;
        c.max_conns_per_user = 0;
    })
    .await;
    let id = server.create("external").await;
    server
        .publish(&id, json!({ "type": "agent_started", "agent": "a" }))
        .await;

    let followers: Vec<_> = (0..SUBSCRIBERS as u64)
        .map(|n| {
            tokio::spawn(follow(
                server.addr,
                server.token.clone(),
                id.clone(),
                0x9E37_79B9_7F4A_7C15 ^ (n * 7919),
            ))
        })
        .collect();

    // Publish the rest in batches while the followers come and go.
    let mut published = 1;
    while published < EVENTS {
        let n = (EVENTS - published).min(100);
        let batch: Vec<Value> = (0..n)
            .map(|k| json!({ "type": "agent_thinking", "agent": "a", "content": format!("thought {}", published + k) }))
            .collect();
        server.publish(&id, Value::Array(batch)).await;
        published += n;
        tokio::time::sleep(Duration::from_millis(5)).await; // pacing, not synchronisation
    }

    for follower in followers {
        let (held, reconnects) = tokio::time::timeout(Duration::from_secs(300), follower)
            .await
            .expect("followers finish")
            .expect("follower ok");
        assert_eq!(held, (1..=EVENTS).collect::<Vec<_>>());
        assert!(reconnects >= 10, "only {reconnects} reconnects");
    }
}
