//! The log on disk: acked events survive `kill -9`, publishing continues at `last_seq + 1`,
//! retry keys survive restarts, and built-in workflows interrupted by a restart are failed.

use crate::common;

use std::sync::Arc;

use crate::common::{seqs, spawn_binary, start_with};
use serde_json::{json, Value};

#[tokio::test]
async fn acked_events_survive_sigkill_and_seq_continues() {
    let data = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut first = spawn_binary(data.clone(), &[]).await;
    let id = first.server.create("external").await;
    first
        .server
        .publish(
            &id,
            json!({ "id": "start", "type": "agent_started", "agent": "a" }),
        )
        .await;

    // A viewer records every event exactly as it was sent.
    let mut viewer = first.server.subscribe(&id, 0).await;
    viewer.next_json().await; // hello

    // Publish one event per request; remember what was acked.
    let http = first.server.http.clone();
    let agent = first.server.agent_token.clone();
    let url = first.server.url(&format!("/api/workflows/{id}/events"));
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, String)>();
    let publisher = tokio::spawn(async move {
        for n in 0.. {
            let content = format!("event {n}");
            let event = json!({ "id": format!("e{n}"), "type": "agent_thinking", "agent": "a", "content": content });
            let Ok(response) = http
                .post(&url)
                .bearer_auth(&agent)
                .json(&event)
                .send()
                .await
            else {
                return;
            };
            let Ok(body) = response.json::<Value>().await else {
                return;
            };
            let Some(seq) = body["seqs"][0].as_u64() else {
                return;
            };
            if acked_tx.send((seq, content)).is_err() {
                return;
            }
        }
    });
    // Kill mid-stream, after 300 acks, while the publisher is still going.
    let mut acked = Vec::new();
    while acked.len() < 300 {
        acked.push(acked_rx.recv().await.expect("acks"));
    }
    first.child.start_kill().expect("SIGKILL");
    first.child.wait().await.expect("reaped");
    publisher
        .await
        .expect("publisher ends when the server dies");
    while let Ok(ack) = acked_rx.try_recv() {
        acked.push(ack);
    }
    // What the viewer got before the server died (its socket ends with the process).
    let (_, frames) = viewer.until_end().await;
    let seen_live: Vec<Value> = frames
        .into_iter()
        .filter(|f| f.get("seq").is_some())
        .collect();
    assert!(!seen_live.is_empty());

    // Restart on the same data dir.
    let second = spawn_binary(data.clone(), &[]).await;
    let (_, history) = second
        .server
        .get(&format!("/api/workflows/{id}/events?limit=1000"))
        .await;
    let stored = history["events"].as_array().expect("events").clone();
    for (seq, content) in &acked {
        let event = &stored[(*seq - 1) as usize];
        assert_eq!(event["seq"].as_u64(), Some(*seq));
        assert_eq!(
            event["content"],
            content.as_str(),
            "acked event {seq} changed"
        );
    }
    // Identical content: what the viewer got live is byte-for-byte what is stored.
    for event in &seen_live {
        assert_eq!(
            &stored[(event["seq"].as_u64().expect("seq") - 1) as usize],
            event
        );
    }
    let last_seq = history["last_seq"].as_u64().expect("last_seq");
    assert!(
        last_seq > acked.len() as u64,
        "the agent_started event plus every acked one"
    );
    assert_eq!(seqs(&stored), (1..=last_seq).collect::<Vec<_>>());

    // Publishing continues at last_seq + 1, and a retried id is recognised after the restart.
    let next = second
        .server
        .publish(
            &id,
            json!({ "type": "agent_thinking", "agent": "a", "content": "after" }),
        )
        .await;
    assert_eq!(next, vec![last_seq + 1]);
    let retry = second
        .server
        .publish(
            &id,
            json!({ "id": "e0", "type": "agent_thinking", "agent": "a", "content": "event 0" }),
        )
        .await;
    assert_eq!(retry, vec![acked[0].0]);
    // The lifecycle was rebuilt from the log: agent `a` is still running.
    let (status, _) = second
        .server
        .ingest(&id, json!({ "type": "agent_started", "agent": "a" }))
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_restart_fails_interrupted_builtin_workflows_and_keeps_external_ones() {
    let data = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut first = spawn_binary(data.clone(), &[]).await;
    let echo = first.server.create("echo").await;
    let external = first.server.create("external").await;
    first
        .server
        .publish(
            &external,
            json!({ "type": "workflow_status", "status": "running" }),
        )
        .await;
    // Wait until echo is waiting for input (its opening events are in the log).
    let mut viewer = first.server.subscribe(&echo, 0).await;
    viewer.next_json().await;
    viewer.events(3).await;
    first.child.start_kill().expect("SIGKILL");
    first.child.wait().await.expect("reaped");

    let second = spawn_binary(data, &[]).await;
    let (_, workflow) = second.server.get(&format!("/api/workflows/{echo}")).await;
    assert_eq!(workflow["status"], "failed");
    let (_, history) = second
        .server
        .get(&format!("/api/workflows/{echo}/events"))
        .await;
    let events = history["events"].as_array().expect("events");
    let tail: Vec<&str> = events[3..]
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        tail,
        ["agent_completed", "workflow_status"],
        "the open agent is closed first"
    );
    assert!(events[4]["detail"]
        .as_str()
        .expect("detail")
        .contains("restarted"));
    let (_, workflow) = second
        .server
        .get(&format!("/api/workflows/{external}"))
        .await;
    assert_eq!(workflow["status"], "running");
}

#[tokio::test]
async fn the_database_is_a_sqlite_file_in_wal_mode_under_the_data_dir() {
    let server = start_with(|_| {}).await;
    let id = server.create("external").await;
    server
        .publish(&id, json!({ "type": "final_report", "content": "x" }))
        .await;
    let db = server.data.path().join("lantern.db");
    assert!(db.exists());
    let mut header = [0u8; 20];
    use std::io::Read;
    std::fs::File::open(&db)
        .expect("open")
        .read_exact(&mut header)
        .expect("read");
    assert_eq!(&header[..15], b"SQLite format 3");
    // Bytes 18 and 19 are the read and write format versions: 2 means WAL.
    assert_eq!((header[18], header[19]), (2, 2));
}

#[tokio::test]
async fn retention_deletes_only_finished_workflows_past_the_cutoff() {
    use server::store::{sqlite::SqliteStore, EventStore};
    let data = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn EventStore> = Arc::new(
        SqliteStore::open(data.path(), server::config::SyncMode::Normal)
            .await
            .expect("open"),
    );
    let hub = server::hub::Hub::new(store.clone());
    let done = hub
        .create("external", None, "admin")
        .await
        .expect("create")
        .id;
    hub.publish_bodies(
        &done,
        vec![app::protocol::EventBody::WorkflowStatus {
            status: app::protocol::WorkflowStatus::Completed,
            detail: None,
        }],
    )
    .await
    .expect("publish");
    let running = hub
        .create("external", None, "admin")
        .await
        .expect("create")
        .id;
    // Nothing is older than 30 days.
    assert_eq!(
        hub.delete_finished_before(&server::retention::cutoff(30))
            .await
            .expect("sweep"),
        0
    );
    // With a cutoff in the future, the finished one goes, the running one stays.
    // RFC 3339 text compares in time order; a cutoff far ahead is after every stored time.
    let future = "9999-12-31T00:00:00.000Z";
    assert_eq!(hub.delete_finished_before(future).await.expect("sweep"), 1);
    assert!(store.workflow(&done).await.expect("get").is_none());
    assert!(store.workflow(&running).await.expect("get").is_some());
}

#[tokio::test]
async fn sigterm_closes_every_socket_with_1001_and_exits_cleanly() {
    let data = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut process = spawn_binary(data.clone(), &[]).await;
    let server = &process.server;
    let id = server.create("external").await;
    server
        .publish(
            &id,
            serde_json::json!({ "type": "agent_started", "agent": "a" }),
        )
        .await;
    let mut viewer = server.subscribe(&id, 0).await;
    viewer.hello_and_backlog().await;
    let agent_path = format!("/ws/agent/{id}");
    let (agent, _) =
        tokio_tungstenite::connect_async(server.ws_request(&agent_path, Some(&server.agent_token)))
            .await
            .expect("agent");
    let mut agent = common::Client { ws: agent };

    let pid = process.child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert_eq!(viewer.until_end().await.0, common::Ended::Closed(1001));
    assert_eq!(agent.until_end().await.0, common::Ended::Closed(1001));
    let status = tokio::time::timeout(std::time::Duration::from_secs(15), process.child.wait())
        .await
        .expect("exits within the shutdown limit")
        .expect("wait");
    assert!(status.success(), "{status}");

    // Nothing was lost: a new server on the same data dir has the log.
    let again = spawn_binary(data, &[]).await;
    let (_, workflow) = again.server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["last_seq"], 1);
}
