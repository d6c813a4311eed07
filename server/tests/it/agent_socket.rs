//! The agent socket `/ws/agent/{id}` (PROTOCOL.md §3) against a real server: acks and retries,
//! refused events, input forwarding (live and after a reconnect), the grace period, and the
//! limits and checks an upgrade and its frames pass.

use crate::common;

use std::time::Duration;

use crate::common::{spawn_binary, start, start_with, Client, Ended};
use serde_json::{json, Value};
use server::auth::TokenKind;

/// Send one frame and return the next frame the agent gets.
async fn call(agent: &mut Client, frame: Value) -> Value {
    agent.send_json(frame).await;
    agent.next_json().await
}

#[tokio::test]
async fn events_are_acked_fanned_out_and_retries_are_not_appended_twice() {
    let server = start().await;
    let id = server.create("external").await;
    let mut viewer = server.subscribe(&id, 0).await;
    viewer.hello_and_backlog().await;
    let mut a = server.agent(&id, "").await;
    let started = json!({ "type": "agent_started", "agent": "writer", "id": "e1" });
    assert_eq!(
        call(&mut a, started.clone()).await,
        json!({ "type": "ack", "id": "e1", "seq": 1 })
    );
    let batch = json!([
        { "type": "agent_thinking", "agent": "writer", "content": "hm", "id": "e2" },
        { "type": "agent_thinking", "agent": "writer", "content": "no id" },
        { "type": "agent_response", "agent": "writer", "content": "done", "id": "e3" }
    ]);
    a.send_json(batch).await;
    assert_eq!(
        a.next_json().await,
        json!({ "type": "ack", "id": "e2", "seq": 2 })
    );
    assert_eq!(
        a.next_json().await,
        json!({ "type": "ack", "id": "e3", "seq": 4 })
    );
    // A retry, on a new connection: acked with the first seq, not appended again.
    drop(a);
    let mut a = server.agent(&id, "").await;
    assert_eq!(
        call(&mut a, started).await,
        json!({ "type": "ack", "id": "e1", "seq": 1 })
    );
    let events = viewer.events(4).await;
    assert_eq!(common::seqs(&events), [1, 2, 3, 4]);
    assert_eq!(events[3]["content"], "done");
    assert!(
        events.iter().all(|e| e.get("id").is_none()),
        "ids are not echoed"
    );
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["last_seq"], 4);
}

#[tokio::test]
async fn refused_events_get_an_error_with_their_id_and_the_socket_stays_open() {
    let server = start().await;
    let id = server.create("external").await;
    let mut a = server.agent(&id, "").await;
    let cases = [
        (
            json!({ "type": "tool_completed", "agent": "a", "tool": "t", "call_id": "nope", "ok": true, "duration_ms": 1, "id": "x1" }),
            "conflict",
            Some("x1"),
        ),
        (
            json!({ "type": "agent_completed", "agent": "ghost", "ok": true, "id": "x2" }),
            "conflict",
            Some("x2"),
        ),
        (
            json!({ "type": "teleport", "id": "x3" }),
            "bad_request",
            Some("x3"),
        ),
        (
            json!({ "type": "agent_thinking", "agent": "a", "id": "x4" }),
            "bad_request",
            Some("x4"),
        ),
        (json!("just a string"), "bad_request", None),
    ];
    for (frame, code, id_back) in cases {
        let answer = call(&mut a, frame.clone()).await;
        assert_eq!(answer["type"], "error", "{frame}: {answer}");
        assert_eq!(answer["code"], code, "{frame}: {answer}");
        assert_eq!(
            answer.get("id").and_then(Value::as_str),
            id_back,
            "{answer}"
        );
    }
    a.send_text("{not json").await;
    assert_eq!(a.next_json().await["code"], "bad_request");
    let answer = call(
        &mut a,
        json!({ "type": "heartbeat", "correlation_id": "c" }),
    )
    .await;
    assert_eq!(
        answer,
        json!({ "type": "heartbeat_response", "correlation_id": "c" })
    );
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["last_seq"], 0, "nothing refused was appended");
}

#[tokio::test]
async fn user_input_reaches_the_agent_live_and_unanswered_input_after_a_reconnect() {
    let server = start().await;
    let id = server.create("external").await;
    let mut a = server.agent(&id, "").await;
    let running = json!({ "type": "workflow_status", "status": "waiting_input", "id": "s1" });
    assert_eq!(call(&mut a, running).await["seq"], 1);

    let mut viewer = server.subscribe(&id, 0).await;
    viewer.hello_and_backlog().await;
    viewer
        .send_json(json!({ "type": "user_input", "content": "first", "client_msg_id": "m1" }))
        .await;
    let input = a.next_json().await;
    assert_eq!(
        (
            input["type"].as_str(),
            input["content"].as_str(),
            input["seq"].as_u64()
        ),
        (Some("user_input"), Some("first"), Some(2))
    );
    assert_eq!(input["user"], "admin");
    // The agent answers it, then goes away; a second input arrives meanwhile.
    let reply = json!({ "type": "agent_response", "agent": "a", "content": "got it", "id": "r1" });
    assert_eq!(call(&mut a, reply).await["seq"], 3);
    drop(a);
    let (status, _) = server
        .post(
            &format!("/api/workflows/{id}/input"),
            json!({ "content": "while away", "client_msg_id": "m2" }),
        )
        .await;
    assert_eq!(status, 200);
    // Back: the unanswered input comes first (not the answered one).
    let mut a = server.agent(&id, "").await;
    let input = a.next_json().await;
    assert_eq!(
        (input["content"].as_str(), input["seq"].as_u64()),
        (Some("while away"), Some(4))
    );
    // With an explicit cursor, every input after it.
    let mut replay = server.agent(&id, "?after=0").await;
    assert_eq!(replay.next_json().await["content"], "first");
    assert_eq!(replay.next_json().await["content"], "while away");
}

#[tokio::test]
async fn an_agent_that_does_not_come_back_within_the_grace_period_fails_its_workflow() {
    let server = start_with(|c| c.agent_grace_secs = 1).await;
    let id = server.create("external").await;
    let mut a = server.agent(&id, "").await;
    a.send_json(json!([
        { "type": "workflow_status", "status": "running" },
        { "type": "agent_started", "agent": "a" },
        { "type": "tool_executing", "agent": "a", "tool": "search", "call_id": "c1", "input": {}, "id": "last" }
    ]))
    .await;
    assert_eq!(a.next_json().await["seq"], 3);
    let mut viewer = server.subscribe(&id, 3).await;
    viewer.hello_and_backlog().await;
    drop(a);
    let closing = viewer.events(3).await;
    let kinds: Vec<&str> = closing
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        kinds,
        ["tool_completed", "agent_completed", "workflow_status"]
    );
    assert_eq!(closing[0]["ok"], false);
    assert_eq!(closing[0]["call_id"], "c1");
    assert_eq!(closing[1]["ok"], false);
    assert_eq!(closing[2]["status"], "failed");
    assert!(closing[2]["detail"]
        .as_str()
        .expect("detail")
        .contains("did not come back"));
}

#[tokio::test]
async fn an_agent_that_comes_back_in_time_keeps_its_workflow() {
    // 2 s: room for the reconnect on a loaded machine.
    let server = start_with(|c| c.agent_grace_secs = 2).await;
    let id = server.create("external").await;
    let mut a = server.agent(&id, "").await;
    let running = json!({ "type": "workflow_status", "status": "running", "id": "s" });
    assert_eq!(call(&mut a, running).await["seq"], 1);
    drop(a);
    let mut a = server.agent(&id, "").await;
    // Absence of the failure can only be shown by waiting past the grace period.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let done = json!({ "type": "workflow_status", "status": "completed", "id": "d" });
    assert_eq!(
        call(&mut a, done).await,
        json!({ "type": "ack", "id": "d", "seq": 2 })
    );
}

#[tokio::test]
async fn after_a_restart_a_running_external_workflow_waits_for_its_agent_then_fails() {
    let data = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let first = spawn_binary(data.clone(), &["--agent-grace-secs", "1"]).await;
    let id = first.server.create("external").await;
    first
        .server
        .publish(
            &id,
            json!({ "type": "workflow_status", "status": "running" }),
        )
        .await;
    drop(first); // killed: kill_on_drop
                 // The failure is judged by its timestamp, not by how fast this test subscribes: on a
                 // loaded machine the grace period may be over before the viewer's hello.
    let restarted_at = chrono::Utc::now();
    let second = spawn_binary(data, &["--agent-grace-secs", "1"]).await;
    let mut viewer = second.server.subscribe(&id, 0).await;
    let (_, mut log) = viewer.hello_and_backlog().await;
    if log.len() < 2 {
        log.extend(viewer.events(2 - log.len()).await);
    }
    let failed = &log[1];
    assert_eq!(
        (failed["seq"].as_u64(), failed["status"].as_str()),
        (Some(2), Some("failed"))
    );
    let failed_at = chrono::DateTime::parse_from_rfc3339(failed["ts"].as_str().expect("ts"))
        .expect("an RFC 3339 ts");
    assert!(
        failed_at >= restarted_at + chrono::Duration::seconds(1),
        "not failed at once, unlike a built-in: the agent had its grace period ({failed_at} vs a restart at {restarted_at})"
    );
}

#[tokio::test]
async fn the_agent_socket_checks_origin_token_kind_and_ownership() {
    let server = start().await;
    let id = server.create("external").await;
    let path = format!("/ws/agent/{id}");
    assert_eq!(server.refused_upgrade_as(None, &path).await, 401);
    assert_eq!(
        server.refused_upgrade_as(Some(&server.token), &path).await,
        403
    );
    let strangers = server.mint("mallory", TokenKind::Agent).await;
    assert_eq!(
        server.refused_upgrade_as(Some(&strangers), &path).await,
        404
    );
    let mut request = server.ws_request(&path, Some(&server.agent_token));
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn agent_frames_over_the_size_or_rate_limit_close_the_socket() {
    let server = start_with(|c| {
        c.agent_frame_bytes = 2048;
        c.agent_rate = 10;
        c.agent_burst = 20;
    })
    .await;
    let id = server.create("external").await;
    let mut a = server.agent(&id, "").await;
    a.send_json(json!({ "type": "agent_started", "agent": "a" }))
        .await;
    let big = json!({ "type": "agent_thinking", "agent": "a", "content": "x".repeat(4096) });
    a.send_json(big).await;
    assert_eq!(a.until_end().await.0, Ended::Closed(1009));

    let mut flood = server.agent(&id, "").await;
    let heartbeat = json!({ "type": "heartbeat", "correlation_id": "h" }).to_string();
    let sender = tokio::spawn(async move {
        for _ in 0..1000 {
            if futures::SinkExt::send(
                &mut flood.ws,
                tokio_tungstenite::tungstenite::Message::Text(heartbeat.clone().into()),
            )
            .await
            .is_err()
            {
                break;
            }
        }
        flood
    });
    let mut flood = sender.await.expect("sender");
    let (ended, frames) = flood.until_end().await;
    assert_eq!(ended, Ended::Closed(4029));
    assert!(
        frames.iter().any(|f| f["code"] == "rate_limited"),
        "{frames:?}"
    );
}
