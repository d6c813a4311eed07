//! The subscriber socket over real connections: PROTOCOL.md §2 and §4.

use crate::common;

use crate::common::{seqs, start, start_with, Ended};
use serde_json::{json, Value};

fn thinking(n: usize) -> Value {
    json!({ "type": "agent_thinking", "agent": "a", "content": format!("thought {n}") })
}

#[tokio::test]
async fn hello_backlog_replay_done_then_live() {
    let server = start().await;
    let id = server.create("external").await;
    server
        .publish(
            &id,
            json!([{ "type": "agent_started", "agent": "a" }, thinking(1), thinking(2)]),
        )
        .await;

    let mut client = server.subscribe(&id, 0).await;
    let (hello, backlog) = client.hello_and_backlog().await;
    assert_eq!(
        hello,
        json!({
            "type": "hello", "workflow_id": id, "last_seq": 3, "status": "pending", "heartbeat_ms": 15000
        })
    );
    assert_eq!(seqs(&backlog), vec![1, 2, 3]);
    assert_eq!(backlog[0]["type"], "agent_started");
    assert_eq!(backlog[0]["workflow_id"], id.as_str());
    assert!(backlog[0]["ts"].as_str().expect("ts").ends_with('Z'));

    server.publish(&id, json!(thinking(3))).await;
    let live = client.events(1).await;
    assert_eq!(live[0]["seq"], 4);
    assert_eq!(live[0]["content"], "thought 3");
}

#[tokio::test]
async fn after_replays_exactly_the_events_past_it() {
    let server = start().await;
    let id = server.create("external").await;
    let mut batch = vec![json!({ "type": "agent_started", "agent": "a" })];
    batch.extend((1..10).map(thinking));
    server.publish(&id, Value::Array(batch)).await;

    let mut client = server.subscribe(&id, 6).await;
    let (hello, backlog) = client.hello_and_backlog().await;
    assert_eq!(hello["last_seq"], 10);
    assert_eq!(seqs(&backlog), vec![7, 8, 9, 10]);

    let mut caught_up = server.subscribe(&id, 10).await;
    let (_, backlog) = caught_up.hello_and_backlog().await;
    assert!(backlog.is_empty());
}

#[tokio::test]
async fn a_backlog_larger_than_one_store_page_arrives_whole_and_in_order() {
    let server = start().await;
    let id = server.create("external").await;
    server
        .publish(&id, json!({ "type": "agent_started", "agent": "a" }))
        .await;
    for chunk in 0..3 {
        let batch: Vec<Value> = (0..400).map(|n| thinking(chunk * 400 + n)).collect();
        server.publish(&id, Value::Array(batch)).await;
    }
    let mut client = server.subscribe(&id, 0).await;
    let (_, backlog) = client.hello_and_backlog().await;
    assert_eq!(seqs(&backlog), (1..=1201).collect::<Vec<_>>());
}

#[tokio::test]
async fn events_published_during_replay_arrive_once_with_no_gap() {
    let server = start().await;
    let id = server.create("external").await;
    server
        .publish(&id, json!({ "type": "agent_started", "agent": "a" }))
        .await;
    let publisher = {
        let http = server.http.clone();
        let agent = server.agent_token.clone();
        let url = server.url(&format!("/api/workflows/{id}/events"));
        tokio::spawn(async move {
            for n in 0..300 {
                let response = http
                    .post(&url)
                    .bearer_auth(&agent)
                    .json(&thinking(n))
                    .send()
                    .await
                    .expect("post");
                assert!(response.status().is_success());
            }
        })
    };
    let mut client = server.subscribe(&id, 0).await;
    let (_, backlog) = client.hello_and_backlog().await;
    let remaining = 301 - backlog.len();
    let mut all = backlog;
    all.extend(client.events(remaining).await);
    publisher.await.expect("publisher");
    assert_eq!(seqs(&all), (1..=301).collect::<Vec<_>>());
}

#[tokio::test]
async fn heartbeat_is_answered_with_its_correlation_id() {
    let server = start().await;
    let id = server.create("external").await;
    let mut client = server.subscribe(&id, 0).await;
    client.hello_and_backlog().await;
    client
        .send_json(json!({ "type": "heartbeat", "correlation_id": "hb-42" }))
        .await;
    assert_eq!(
        client.next_json().await,
        json!({ "type": "heartbeat_response", "correlation_id": "hb-42" })
    );
}

#[tokio::test]
async fn server_pings_at_the_heartbeat_period() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let server = start_with(|c| c.heartbeat_ms = 100).await;
    let id = server.create("external").await;
    let mut client = server.subscribe(&id, 0).await;
    let hello = client.next_json().await;
    assert_eq!(hello["heartbeat_ms"], 100);
    loop {
        let frame = tokio::time::timeout(common::WAIT, client.ws.next())
            .await
            .expect("frame");
        if let Some(Ok(Message::Ping(_))) = frame {
            break;
        }
    }
}

#[tokio::test]
async fn a_peer_that_never_answers_pings_is_dropped() {
    let server = start_with(|c| c.heartbeat_ms = 50).await;
    let id = server.create("external").await;
    // A raw TCP client that completes the upgrade and then never reads: it cannot answer pings.
    let mut client = server.subscribe(&id, 0).await;
    client.next_json().await;
    // tungstenite answers pings only while being read; stop reading and wait for the drop.
    let stream = client.ws.get_mut();
    let MaybeTcp(tcp) = MaybeTcp::from(stream);
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        use tokio::io::AsyncReadExt;
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf))
            .await
            .expect("dropped in time");
        if matches!(n, Ok(0) | Err(_)) {
            break;
        }
    }
    let (status, stats) = server.get("/api/v1/websocket/stats").await;
    assert_eq!(status, 200);
    assert_eq!(stats["dead_peer_closes"], 1, "{stats}");
}

/// The plain TCP stream under a non-TLS client.
struct MaybeTcp<'a>(&'a mut tokio::net::TcpStream);

impl<'a> From<&'a mut tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> for MaybeTcp<'a> {
    fn from(stream: &'a mut tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>) -> Self {
        match stream {
            tokio_tungstenite::MaybeTlsStream::Plain(tcp) => MaybeTcp(tcp),
            _ => unreachable!("tests use plain TCP"),
        }
    }
}

#[tokio::test]
async fn bad_frames_get_precise_errors_and_the_connection_stays_open() {
    let server = start().await;
    let id = server.create("external").await;
    let mut client = server.subscribe(&id, 0).await;
    client.hello_and_backlog().await;

    client.send_text("{not json").await;
    let error = client.next_json().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "bad_request");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("invalid frame"),
        "{error}"
    );

    client.send_json(json!({ "type": "teleport" })).await;
    let error = client.next_json().await;
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("teleport"),
        "{error}"
    );

    client
        .send_json(json!({ "type": "user_input", "client_msg_id": "m" }))
        .await;
    let error = client.next_json().await;
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("content"),
        "{error}"
    );

    use futures::SinkExt;
    client
        .ws
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            vec![1, 2, 3].into(),
        ))
        .await
        .expect("send");
    let error = client.next_json().await;
    assert_eq!(error["code"], "bad_request");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("binary"),
        "{error}"
    );

    // Still open: a heartbeat is answered.
    client
        .send_json(json!({ "type": "heartbeat", "correlation_id": "still-here" }))
        .await;
    assert_eq!(client.next_json().await["correlation_id"], "still-here");
}

#[tokio::test]
async fn an_oversize_frame_closes_with_1009() {
    let server = start_with(|c| c.client_frame_bytes = 1024).await;
    let id = server.create("external").await;
    let mut client = server.subscribe(&id, 0).await;
    client.hello_and_backlog().await;
    let content = "x".repeat(4096);
    client
        .send_json(json!({ "type": "user_input", "content": content, "client_msg_id": "big" }))
        .await;
    let (ended, _) = client.until_end().await;
    assert_eq!(ended, Ended::Closed(1009));
    // Nothing was appended.
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["last_seq"], 0);
}

#[tokio::test]
async fn user_input_is_appended_acked_and_idempotent_by_client_msg_id() {
    let server = start().await;
    let id = server.create("external").await;
    let mut client = server.subscribe(&id, 0).await;
    client.hello_and_backlog().await;
    let input = json!({ "type": "user_input", "content": "hello", "client_msg_id": "m-1" });
    client.send_json(input.clone()).await;
    let mut frames = [client.next_json().await, client.next_json().await];
    frames.sort_by_key(|f| f["type"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        frames[0],
        json!({ "type": "ack", "client_msg_id": "m-1", "seq": 1 })
    );
    assert_eq!(frames[1]["type"], "user_input");
    assert_eq!(frames[1]["content"], "hello");
    assert_eq!(frames[1]["user"], "admin", "inputs name the signed-in user");

    // The retry (e.g. after a reconnect) is acked with the same seq and not appended again,
    // over the socket and over HTTP alike.
    client.send_json(input).await;
    assert_eq!(
        client.next_json().await,
        json!({ "type": "ack", "client_msg_id": "m-1", "seq": 1 })
    );
    let (status, body) = server
        .post(
            &format!("/api/workflows/{id}/input"),
            json!({ "content": "hello", "client_msg_id": "m-1" }),
        )
        .await;
    assert_eq!((status, body), (200, json!({ "seq": 1 })));
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["last_seq"], 1);
}

#[tokio::test]
async fn input_longer_than_16_kib_is_refused() {
    let server = start().await;
    let id = server.create("external").await;
    let mut client = server.subscribe(&id, 0).await;
    client.hello_and_backlog().await;
    let content = "y".repeat(16 * 1024 + 1);
    client
        .send_json(json!({ "type": "user_input", "content": content, "client_msg_id": "m" }))
        .await;
    let error = client.next_json().await;
    assert_eq!(error["code"], "bad_request", "{error}");
}

#[tokio::test]
async fn a_cursor_ahead_of_the_log_gets_hello_then_4009() {
    let server = start().await;
    let id = server.create("external").await;
    let mut client = server.subscribe(&id, 5).await;
    let (ended, frames) = client.until_end().await;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["type"], "hello");
    assert_eq!(ended, Ended::Closed(4009));
}

#[tokio::test]
async fn unknown_workflow_is_404_before_the_upgrade() {
    let server = start().await;
    assert_eq!(server.refused_upgrade("/ws/workflow/wf_nope").await, 404);
    let id = server.create("external").await;
    assert_eq!(
        server
            .refused_upgrade(&format!("/ws/workflow/{id}?after=-1"))
            .await,
        400
    );
}

#[tokio::test]
async fn every_subscriber_gets_the_same_events_in_order() {
    let server = start().await;
    let id = server.create("external").await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut client = server.subscribe(&id, 0).await;
        client.hello_and_backlog().await;
        clients.push(client);
    }
    server
        .publish(&id, json!({ "type": "agent_started", "agent": "a" }))
        .await;
    server
        .publish(&id, Value::Array((0..99).map(thinking).collect()))
        .await;
    for client in &mut clients {
        assert_eq!(
            seqs(&client.events(100).await),
            (1..=100).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn a_dropped_subscriber_resumes_with_after_and_misses_nothing() {
    let server = start().await;
    let id = server.create("external").await;
    server
        .publish(&id, json!({ "type": "agent_started", "agent": "a" }))
        .await;
    let mut client = server.subscribe(&id, 0).await;
    let (_, mut held) = client.hello_and_backlog().await;
    // The server drops every socket, as a network fault would.
    let (status, _) = server.post("/api/test/disconnect", json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(client.until_end().await.0, Ended::Dropped);
    // Events appended while disconnected.
    server
        .publish(&id, Value::Array((0..5).map(thinking).collect()))
        .await;
    let after = held.last().expect("held")["seq"].as_u64().expect("seq");
    let mut again = server.subscribe(&id, after).await;
    let (_, backlog) = again.hello_and_backlog().await;
    held.extend(backlog);
    assert_eq!(seqs(&held), (1..=6).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_rate_limited_and_closed_while_others_lose_nothing() {
    // A slow refill (one frame per second) so the burst, not the clock, decides what is
    // processed; the assertions below still allow for the tokens a slow machine refills.
    const RATE: u32 = 1;
    const BURST: u32 = 100;
    let server = start_with(|c| {
        c.client_rate = RATE;
        c.client_burst = BURST;
    })
    .await;
    let flooded = server.create("external").await;
    let calm = server.create("external").await;
    server
        .publish(&calm, json!({ "type": "agent_started", "agent": "a" }))
        .await;

    let mut watcher = server.subscribe(&calm, 0).await;
    watcher.hello_and_backlog().await;

    let mut flooder = server.subscribe(&flooded, 0).await;
    flooder.hello_and_backlog().await;
    let started = std::time::Instant::now();
    let junk = tokio::spawn(async move {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        for n in 0..10_000 {
            let frame = Message::Text(format!("junk {n}").into());
            if flooder.ws.send(frame).await.is_err() {
                break; // closed by the server
            }
        }
        flooder.until_end().await
    });

    // Meanwhile the calm workflow streams.
    for chunk in 0..5 {
        server
            .publish(
                &calm,
                Value::Array((0..100).map(|n| thinking(chunk * 100 + n)).collect()),
            )
            .await;
    }
    assert_eq!(
        seqs(&watcher.events(500).await),
        (2..=501).collect::<Vec<_>>()
    );

    let (ended, frames) = junk.await.expect("flooder");
    assert_eq!(ended, Ended::Closed(4029));
    // Tokens refilled while the flood lasted (at most RATE per second) let a few more through.
    let refilled = (started.elapsed().as_secs_f64() * f64::from(RATE)).ceil() as usize;
    let codes: Vec<&str> = frames.iter().filter_map(|f| f["code"].as_str()).collect();
    let warnings = codes.iter().filter(|c| **c == "rate_limited").count();
    assert!(
        (1..=1 + refilled).contains(&warnings),
        "{warnings} rate_limited errors (refilled {refilled}): {codes:?}"
    );
    // Told once per run of refused frames: two warnings always have a processed frame between.
    let warned_twice_in_a_row = codes
        .windows(2)
        .any(|w| w[0] == "rate_limited" && w[1] == "rate_limited");
    assert!(!warned_twice_in_a_row, "{codes:?}");
    // Only frames within the burst (and the refills) were answered: each gets a bad_request.
    let answered = codes.iter().filter(|c| **c == "bad_request").count();
    assert!(
        answered <= BURST as usize + refilled,
        "{answered} junk frames were processed (refilled {refilled})"
    );
    assert!(
        answered >= BURST as usize,
        "the burst is processed: {answered}"
    );
    let (_, workflow) = server.get(&format!("/api/workflows/{flooded}")).await;
    assert_eq!(workflow["last_seq"], 0);
}

#[tokio::test]
async fn an_upgrade_from_another_sites_page_is_refused_with_403() {
    let server = start_with(|c| c.allowed_origins = vec!["https://app.example.com".into()]).await;
    let id = server.create("external").await;
    let with_origin = |origin: &str| {
        let mut request = server.ws_request(&format!("/ws/workflow/{id}"), Some(&server.token));
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("header"));
        request
    };
    match tokio_tungstenite::connect_async(with_origin("http://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    // The server's own origin, a listed origin, and no origin at all are accepted.
    for origin in [
        format!("http://{}", server.addr),
        "https://app.example.com".to_owned(),
    ] {
        let (mut ws, _) = tokio_tungstenite::connect_async(with_origin(&origin))
            .await
            .expect("accepted");
        use futures::StreamExt;
        assert!(ws.next().await.is_some());
    }
    server.subscribe(&id, 0).await.next_json().await;
}

#[tokio::test]
async fn open_sockets_and_upgrade_attempts_per_address_are_limited_with_429() {
    let server = start_with(|c| {
        c.max_conns_per_ip = 2;
        c.conn_attempts_per_ip = 0;
    })
    .await;
    let id = server.create("external").await;
    let first = server.subscribe(&id, 0).await;
    let mut second = server.subscribe(&id, 0).await;
    assert_eq!(
        server.refused_upgrade(&format!("/ws/workflow/{id}")).await,
        429
    );
    drop(first);
    // The place is freed once the server sees the first socket gone.
    second.hello_and_backlog().await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let url = server.ws_request(&format!("/ws/workflow/{id}"), Some(&server.token));
        if tokio_tungstenite::connect_async(url).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the freed place never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let server = start_with(|c| c.conn_attempts_per_ip = 1).await; // bursts of 2
    let id = server.create("external").await;
    let _a = server.subscribe(&id, 0).await;
    let _b = server.subscribe(&id, 0).await;
    assert_eq!(
        server.refused_upgrade(&format!("/ws/workflow/{id}")).await,
        429
    );
}
