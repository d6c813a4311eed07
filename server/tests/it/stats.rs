//! `GET /api/v1/websocket/stats` and `GET /metrics` (PROTOCOL.md §5) follow what really
//! happens on a real server: sockets opened and closed, events appended and delivered.

use crate::common::{start, TestServer, WAIT};
use serde_json::{json, Value};
use server::auth::TokenKind;

async fn stats(server: &TestServer) -> Value {
    let (status, body) = server.get("/api/v1/websocket/stats").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Poll the stats until `check` holds (a socket's end is seen by the server a moment later).
async fn stats_until(server: &TestServer, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = stats(server).await;
        if check(&now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stats never got there: {now}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stats_and_metrics_count_sockets_users_and_events() {
    let server = start().await;
    let zero = stats(&server).await;
    assert_eq!(
        zero,
        json!({ "connections": 0, "subscriber_connections": 0, "agent_connections": 0,
                "stream_connections": 0, "unique_users": 0, "active_workflows": 0, "events_appended": 0, "events_delivered": 0,
                "replays": 0, "slow_consumer_closes": 0, "rate_limit_closes": 0, "dead_peer_closes": 0 })
    );
    let id = server.create("external").await;
    let bob = server.mint("bob", TokenKind::User).await;
    let (_, theirs) = server
        .post_as(Some(&bob), "/api/workflows", json!({ "kind": "external" }))
        .await;
    let mut viewers = vec![
        server.subscribe(&id, 0).await,
        server.subscribe(&id, 0).await,
    ];
    let mut bobs = server
        .subscribe_as(&bob, theirs["id"].as_str().expect("id"), 0)
        .await;
    bobs.hello_and_backlog().await;
    let path = format!("/ws/agent/{id}");
    let (agent, _) =
        tokio_tungstenite::connect_async(server.ws_request(&path, Some(&server.agent_token)))
            .await
            .expect("agent");
    for viewer in &mut viewers {
        viewer.hello_and_backlog().await;
    }
    server
        .publish(
            &id,
            json!([
                { "type": "agent_started", "agent": "a" },
                { "type": "agent_thinking", "agent": "a", "content": "1" },
                { "type": "agent_thinking", "agent": "a", "content": "2" }
            ]),
        )
        .await;
    for viewer in &mut viewers {
        viewer.events(3).await;
    }
    let now = stats(&server).await;
    assert_eq!(now["connections"], 4, "{now}");
    assert_eq!(now["subscriber_connections"], 3);
    assert_eq!(now["agent_connections"], 1);
    assert_eq!(now["unique_users"], 2, "admin (viewers and agent) and bob");
    assert_eq!(now["events_appended"], 3);
    assert_eq!(
        now["events_delivered"], 6,
        "3 events to each of admin's 2 viewers"
    );
    assert!(now["active_workflows"].as_u64().expect("n") >= 1);

    let (status, text) = {
        let response = server
            .http
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("metrics");
        let status = response.status().as_u16();
        let kind = response.headers()["content-type"]
            .to_str()
            .expect("type")
            .to_owned();
        assert!(kind.starts_with("text/plain"), "{kind}");
        (status, response.text().await.expect("text"))
    };
    assert_eq!(status, 200);
    for line in [
        "lantern_events_appended_total 3",
        "lantern_events_delivered_total 6",
        "lantern_connections 4",
        // Each live delivery is timed: 3 events × 2 viewers.
        "lantern_fanout_seconds_count 6",
        "lantern_dead_peer_closes_total 0",
    ] {
        assert!(text.contains(line), "{line} not in:\n{text}");
    }

    drop(agent);
    drop(bobs);
    let after = stats_until(&server, |s| s["connections"] == 2).await;
    assert_eq!(
        (
            after["agent_connections"].as_u64(),
            after["unique_users"].as_u64()
        ),
        (Some(0), Some(1))
    );

    // A token is needed, and an agent token is not enough.
    assert_eq!(server.get_as(None, "/api/v1/websocket/stats").await.0, 401);
    assert_eq!(
        server.get_as(Some(&server.agent_token), "/metrics").await.0,
        403
    );
}
