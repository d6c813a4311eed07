//! A subscriber that never reads while ~50 MB of events are published: it is closed with
//! 4008, the server's memory stays bounded, every other subscriber gets everything, and the
//! slow one recovers the whole log with `after`. One that stops reading for a while, within
//! its queue, gets everything in order when it reads again.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{seqs, spawn_binary, start_with, Client, Ended};
use serde_json::{json, Value};

/// Resident memory of process `pid`, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

const EVENT_BYTES: usize = 16 * 1024;
const BATCH: usize = 32;
const BATCHES: usize = 100; // 100 × 32 × 16 KiB ≈ 52 MB

/// `BATCH` events of `EVENT_BYTES` each, published in one request.
fn big_batch() -> Value {
    let filler = "x".repeat(EVENT_BYTES);
    (0..BATCH)
        .map(|_| json!({ "type": "agent_thinking", "agent": "a", "content": filler }))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_is_closed_with_4008_and_costs_bounded_memory() {
    let data = Arc::new(tempfile::tempdir().expect("temp dir"));
    let process = spawn_binary(data, &[]).await;
    let pid = process.child.id().expect("pid");
    let server = &process.server;
    let id = server.create("external").await;
    server
        .publish(&id, json!({ "type": "agent_started", "agent": "a" }))
        .await;

    // The slow one: upgraded, then never read until the end.
    let mut slow = server.subscribe(&id, 0).await;
    // The others read everything as it comes.
    let total = (BATCH * BATCHES + 1) as u64;
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let url = server.ws_request(&format!("/ws/workflow/{id}?after=0"), Some(&server.token));
            tokio::spawn(async move {
                let (ws, _) = tokio_tungstenite::connect_async(url)
                    .await
                    .expect("connect");
                let mut client = Client { ws };
                client.next_json().await;
                let mut last = 0;
                while last < total {
                    let event = client.events(1).await.remove(0);
                    let seq = event["seq"].as_u64().expect("seq");
                    assert_eq!(seq, last + 1);
                    last = seq;
                }
                last
            })
        })
        .collect();

    // Warm up, then take the baseline.
    let baseline = rss_bytes(pid);
    let mut peak = baseline;
    for _ in 0..BATCHES {
        server.publish(&id, big_batch()).await;
        peak = peak.max(rss_bytes(pid));
    }
    for reader in readers {
        let got = tokio::time::timeout(Duration::from_secs(120), reader)
            .await
            .expect("readers finish")
            .expect("ok");
        assert_eq!(got, total);
    }
    peak = peak.max(rss_bytes(pid));
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "server RSS: baseline {} MiB, peak {} MiB",
        baseline >> 20,
        peak >> 20
    );
    // ~52 MB went through; a server that buffered it for the slow reader would grow by at
    // least that. What it may hold is bounded by design: the broadcast channel (128 events),
    // one store page per lagging reader (64 events), the workflow's in-memory tail (256 KiB),
    // and 1 MiB of queue per connection.
    assert!(growth < 24 << 20, "server RSS grew by {} MiB", growth >> 20);

    // Now read the slow socket: what was in flight, then the 4008 close.
    let (ended, frames) = slow.until_end().await;
    assert_eq!(ended, Ended::Closed(4008));
    let held: Vec<u64> = frames
        .iter()
        .filter_map(|f| f.get("seq").and_then(Value::as_u64))
        .collect();
    assert!(
        (held.len() as u64) < total,
        "the slow reader was cut before the end"
    );
    assert_eq!(
        held,
        (1..=held.len() as u64).collect::<Vec<_>>(),
        "what it got is a clean prefix"
    );

    // It recovers the full log with `after`.
    let after = held.last().copied().unwrap_or(0);
    let mut again = server.subscribe(&id, after).await;
    let (_, backlog) = again.hello_and_backlog().await;
    let mut all = held;
    all.extend(backlog.iter().map(|e| e["seq"].as_u64().expect("seq")));
    assert_eq!(all, (1..=total).collect::<Vec<_>>());
}

/// While this reader reads, each event is written straight to its socket; while it does not,
/// the kernel's buffers fill, then its queue; once it reads again the queue drains and events
/// go straight to the socket again. Across both switches it gets every event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_pauses_within_its_queue_gets_everything_in_order() {
    let server = start_with(|config| config.queue_bytes = 64 << 20).await;
    let id = server.create("external").await;
    server
        .publish(&id, json!({ "type": "agent_started", "agent": "a" }))
        .await;
    let mut reader = server.subscribe(&id, 0).await;
    let (_, backlog) = reader.hello_and_backlog().await;
    assert_eq!(seqs(&backlog), vec![1]);

    // 24 MB while it does not read: more than loopback's socket buffers hold, less than its
    // queue (a reader past its queue is closed, as above).
    let paused = 48 * BATCH;
    for _ in 0..48 {
        server.publish(&id, big_batch()).await;
    }
    let caught_up = reader.events(paused).await;
    assert_eq!(
        seqs(&caught_up),
        (2..=paused as u64 + 1).collect::<Vec<_>>()
    );

    // Live again, one event at a time.
    for n in 0..50u64 {
        server
            .publish(
                &id,
                json!({ "type": "agent_thinking", "agent": "a", "content": "live" }),
            )
            .await;
        let event = reader.events(1).await;
        assert_eq!(seqs(&event), vec![paused as u64 + 2 + n]);
    }
}
