//! What bounds a client before and after it is known: connections that never finish a request,
//! too many connections, huge events, floods and too many workflows. Each test drives the real
//! server the way an attacker would and checks it holds, and keeps serving everyone else.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{start, start_with, Client, Ended, WAIT};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `addr` from local address `from` (any 127.0.0.0/8 address is this
/// machine), so a test can come from "another client".
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(addr).await
}

/// Resolves when the server closes `tcp` (end of stream or a reset); the time it took, or
/// `None` if it was still open after `limit`.
async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()?;
    Some(started.elapsed())
}

/// The beginning of a request, never finished.
const HALF_A_HEADER: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: lantern\r\nX-Slow: ";

#[tokio::test]
async fn a_half_sent_request_header_is_closed_after_the_header_timeout() {
    let server = start_with(|c| c.header_timeout_secs = 1).await;
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(HALF_A_HEADER).await.expect("write");
    // It keeps trickling, so it is never idle; only the header timeout can end it.
    let trickle = async {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"x").await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), trickle)
        .await
        .ok();
    let took = closed_within(&mut slow, Duration::from_secs(5)).await;
    assert!(
        took.is_some(),
        "a header still unfinished after 1 s must be closed"
    );
}

#[tokio::test]
async fn a_connection_that_says_nothing_is_closed_after_the_idle_timeout() {
    let server = start_with(|c| {
        c.idle_timeout_secs = 1;
        c.heartbeat_ms = 100;
    })
    .await;
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let took = closed_within(&mut silent, Duration::from_secs(5))
        .await
        .expect("closed");
    assert!(
        took >= Duration::from_millis(900),
        "not before the timeout: {took:?}"
    );
    // A kept-alive connection that goes quiet after a request is closed too.
    let mut kept = TcpStream::connect(server.addr).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: lantern\r\n\r\n")
        .await
        .expect("write");
    assert!(closed_within(&mut kept, Duration::from_secs(5))
        .await
        .is_some());
    // A socket that only answers pings (read, so answered) is not idle.
    let id = server.create("external").await;
    let mut viewer = server.subscribe(&id, 0).await;
    viewer.hello_and_backlog().await;
    let quiet = async {
        use futures::StreamExt;
        while let Some(Ok(frame)) = viewer.ws.next().await {
            assert!(!frame.is_text(), "nothing was published: {frame:?}");
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(2500), quiet)
            .await
            .is_err(),
        "the socket stayed open"
    );
    server
        .publish(
            &id,
            json!({ "type": "final_report", "content": "still here" }),
        )
        .await;
    assert_eq!(viewer.events(1).await[0]["content"], "still here");
}

#[tokio::test]
async fn connections_over_the_caps_are_closed_at_once_and_others_are_served() {
    let server = start_with(|c| {
        c.max_connections = 6;
        c.max_connections_per_ip = 3;
    })
    .await;
    // Three slow clients from one address take its share.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = connect_from([127, 0, 0, 2], server.addr)
            .await
            .expect("connect");
        tcp.write_all(HALF_A_HEADER).await.expect("write");
        held.push(tcp);
    }
    let mut fourth = connect_from([127, 0, 0, 2], server.addr)
        .await
        .expect("connect");
    let took = closed_within(&mut fourth, WAIT)
        .await
        .expect("closed at once");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // Another address is served meanwhile.
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    // Three more from a third address reach the total; the next from anywhere is closed.
    for _ in 0..3 {
        let mut tcp = connect_from([127, 0, 0, 3], server.addr)
            .await
            .expect("connect");
        tcp.write_all(HALF_A_HEADER).await.expect("write");
        held.push(tcp);
    }
    let mut over = connect_from([127, 0, 0, 4], server.addr)
        .await
        .expect("connect");
    assert!(closed_within(&mut over, WAIT).await.is_some());
    // Once they go, the server serves again.
    drop(held);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(response) = server.http.get(server.url("/healthz")).send().await {
            assert_eq!(response.status().as_u16(), 200);
            break;
        }
        assert!(Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, metrics) = {
        let response = server
            .http
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("get");
        (response.status(), response.text().await.expect("text"))
    };
    assert!(
        !metrics.contains("lantern_connections_refused_total 0"),
        "the refusals are counted:\n{metrics}"
    );
}

/// The defect as it was found: a thousand connections that send half a header, from one
/// address, against a server whose open-file limit is 1,024. The server must keep accepting
/// and serving other clients at once, and free the slow ones by itself.
#[cfg(unix)]
#[tokio::test]
async fn a_thousand_half_open_connections_do_not_starve_the_server_of_file_descriptors() {
    rlimit::increase_nofile_limit(8192).expect("the test itself needs descriptors");
    let data = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let process =
        crate::common::spawn_binary_with(data, &["--header-timeout-secs", "2"], |command| {
            // The common limit, soft and hard: the server cannot raise it.
            unsafe {
                command.pre_exec(|| {
                    rlimit::setrlimit(rlimit::Resource::NOFILE, 1024, 1024)?;
                    Ok(())
                });
            }
        })
        .await;
    let server = &process.server;
    let mut slow = Vec::new();
    for _ in 0..1100 {
        match connect_from([127, 0, 0, 5], server.addr).await {
            Ok(mut tcp) => {
                let _ = tcp.write_all(HALF_A_HEADER).await;
                slow.push(tcp);
            }
            Err(e) => panic!("connect failed: {e}"),
        }
    }
    // Another client is served at once.
    let started = Instant::now();
    let ours = connect_from([127, 0, 0, 6], server.addr)
        .await
        .expect("connect");
    drop(ours);
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // And every slow one is closed by the server within the header timeout (or at once).
    for tcp in &mut slow {
        assert!(
            closed_within(tcp, WAIT).await.is_some(),
            "a slow connection outlived its timeout"
        );
    }
}

#[tokio::test]
async fn history_pages_are_bounded_by_bytes_and_say_where_to_read_on() {
    let server = start().await;
    let id = server.create("external").await;
    let big = |n: usize| json!({ "type": "agent_thinking", "agent": "a", "content": n.to_string().repeat(900_000) });
    for n in 0..6 {
        server.publish(&id, big(n)).await;
    }
    let mut seen = Vec::new();
    let mut after = 0;
    let mut pages = 0;
    loop {
        let (status, page) = server
            .get(&format!("/api/workflows/{id}/events?after={after}"))
            .await;
        assert_eq!(status, 200);
        pages += 1;
        let events = page["events"].as_array().expect("events");
        let bytes: usize = events.iter().map(|e| e.to_string().len()).sum();
        assert!(
            bytes <= 4 * 1024 * 1024 + 1_000_000,
            "a page of {bytes} bytes"
        );
        seen.extend(events.iter().map(|e| e["seq"].as_u64().expect("seq")));
        match page["next_after"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(
        seen,
        (1..=6).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert!(pages > 1, "six 900 KB events do not fit one page");
}

#[tokio::test]
async fn a_full_log_takes_only_the_end_and_says_so() {
    let server = start_with(|c| c.max_log_bytes = 2000).await;
    let id = server.create("external").await;
    let thinking = json!({ "type": "agent_thinking", "agent": "a", "content": "x".repeat(1500) });
    server.publish(&id, thinking.clone()).await;
    server.publish(&id, thinking.clone()).await;
    let (status, body) = server.ingest(&id, thinking).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("log is full"));
    let seqs = server
        .publish(
            &id,
            json!({ "type": "workflow_status", "status": "completed" }),
        )
        .await;
    assert_eq!(seqs, [3], "a full log can still end");
}

#[tokio::test]
async fn a_run_page_of_huge_events_carries_the_first_part_and_the_socket_the_rest() {
    let server = start().await;
    let id = server.create("external").await;
    let big = |n: usize| json!({ "type": "agent_thinking", "agent": "a", "content": n.to_string().repeat(900_000) });
    for n in 0..4 {
        server.publish(&id, big(n)).await;
    }
    let cookie = crate::common::session_cookie(&server).await;
    let page = server
        .request_as(reqwest::Method::GET, &format!("/w/{id}"), None)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    // Each event is in the page several times (the raw log, the agent's thoughts, the live
    // view's props): four of 900 KB made a 14 MB page. It carries the first alone.
    assert!(
        html.contains(&"0".repeat(1000)),
        "the first event is in the page"
    );
    assert!(!html.contains(&"1".repeat(1000)), "the second is not");
    assert!(html.len() < 5_000_000, "the page is {} bytes", html.len());
    // The socket resumes after what the page holds and brings the rest.
    let mut viewer = server.subscribe(&id, 1).await;
    let (_, backlog) = viewer.hello_and_backlog().await;
    assert_eq!(crate::common::seqs(&backlog), [2, 3, 4]);
}

#[tokio::test]
async fn a_user_may_keep_only_so_many_workflows_open() {
    let server = start_with(|c| c.max_open_workflows = 2).await;
    let first = server.create("external").await;
    server.create("echo").await;
    let (status, body) = server
        .post("/api/workflows", json!({ "kind": "external" }))
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("open workflows"),
        "{body}"
    );
    let (status, _) = server
        .post(&format!("/api/workflows/{first}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    server.create("external").await;
}

#[tokio::test]
async fn http_writes_are_rate_limited_per_user() {
    let server = start_with(|c| {
        c.client_rate = 1;
        c.client_burst = 3;
    })
    .await;
    let id = server.create("external").await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        let input = json!({ "content": "hi", "client_msg_id": format!("m{n}") });
        statuses.push(
            server
                .post(&format!("/api/workflows/{id}/input"), input)
                .await
                .0,
        );
    }
    assert_eq!(
        statuses,
        [200, 200, 429, 429],
        "one create and two inputs make the burst"
    );
    // Reads are not writes.
    assert_eq!(server.get(&format!("/api/workflows/{id}")).await.0, 200);
}

#[tokio::test]
async fn event_streams_count_against_the_connection_limits_like_sockets() {
    let server = start_with(|c| {
        c.max_conns_per_user = 2;
        c.conn_attempts_per_ip = 0;
    })
    .await;
    let open = || async {
        server
            .http
            .get(server.url("/sse/workflows"))
            .send()
            .await
            .expect("get")
    };
    let first = open().await;
    let second = open().await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = open().await;
    assert_eq!(third.status().as_u16(), 429);
    let (_, stats) = server.get("/api/v1/websocket/stats").await;
    assert_eq!(stats["stream_connections"], 2, "{stats}");
    assert_eq!(stats["connections"], 2, "{stats}");
    drop(first);
    let deadline = Instant::now() + WAIT;
    while open().await.status().as_u16() != 200 {
        assert!(Instant::now() < deadline, "a closed stream frees its place");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_built_in_workflow_nobody_talks_to_finishes_by_itself() {
    let server = start_with(|c| c.builtin_idle_secs = 1).await;
    let id = server.create("echo").await;
    let mut viewer = server.subscribe(&id, 0).await;
    viewer.hello_and_backlog().await;
    let deadline = Instant::now() + WAIT;
    let end = loop {
        let frame = viewer.next_json().await;
        if frame["type"] == "workflow_status" && frame["status"] == "completed" {
            break frame;
        }
        assert!(Instant::now() < deadline);
    };
    assert!(
        end["detail"]
            .as_str()
            .expect("detail")
            .contains("without a message"),
        "{end}"
    );
    crate::common::assert_invariants(&server.log(&id).await);
}

#[tokio::test]
async fn an_agent_that_floods_its_socket_is_closed_with_4029() {
    let server = start().await;
    let id = server.create("external").await;
    let request = server.ws_request(&format!("/ws/agent/{id}"), Some(&server.agent_token));
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    let mut agent = Client { ws };
    let flood = async {
        for n in 0..10_000 {
            use futures::SinkExt;
            let junk = tokio_tungstenite::tungstenite::Message::Text(format!("junk {n}").into());
            if agent.ws.feed(junk).await.is_err() {
                break;
            }
        }
        use futures::SinkExt;
        let _ = agent.ws.flush().await;
    };
    flood.await;
    let (ended, frames) = agent.until_end().await;
    assert_eq!(ended, Ended::Closed(4029), "after {} frames", frames.len());
    let limited = frames
        .iter()
        .filter(|f| f["code"] == "rate_limited")
        .count();
    assert!(limited >= 1, "told before being closed");
    let (_, stats) = server.get("/api/v1/websocket/stats").await;
    assert!(stats["rate_limit_closes"].as_u64() >= Some(1), "{stats}");
}

#[tokio::test]
async fn an_agent_cannot_speak_for_another_user() {
    let server = start().await;
    let id = server.create("external").await;
    let forged = json!({ "type": "user_input", "content": "approve it", "user": "ceo",
                         "client_msg_id": "x1" });
    server.publish(&id, forged).await;
    let log = server.log(&id).await;
    assert_eq!(
        log[0]["user"], "admin",
        "logged under the agent's own user: {}",
        log[0]
    );
}

#[tokio::test]
async fn an_event_that_only_mentions_user_input_is_not_forwarded_as_one() {
    let server = start().await;
    let id = server.create("external").await;
    server
        .publish(
            &id,
            json!([
                { "type": "agent_started", "agent": "a" },
                { "type": "tool_executing", "agent": "a", "tool": "t", "call_id": "c",
                  "input": { "type": "user_input", "content": "crafted" } },
            ]),
        )
        .await;
    let (status, _) = server
        .post(
            &format!("/api/workflows/{id}/input"),
            json!({ "content": "real", "client_msg_id": "m1" }),
        )
        .await;
    assert_eq!(status, 200);
    let request = server.ws_request(
        &format!("/ws/agent/{id}?after=0"),
        Some(&server.agent_token),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    let mut agent = Client { ws };
    let first: Value = agent.next_json().await;
    assert_eq!(
        (first["type"].as_str(), first["content"].as_str()),
        (Some("user_input"), Some("real"))
    );
}
