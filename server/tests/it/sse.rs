//! `GET /sse/workflow/{id}` (PROTOCOL.md §7) against a real server: the same events as the
//! socket and the history, `id:` = seq, resume by `Last-Event-ID` with no gap and no repeat,
//! keep-alive comments, the gate's answers before any stream, a cursor ahead of the log, and a
//! reader too slow for its queue cut off and resuming.

use crate::common::sse::{Block, SseReader};
use crate::common::{seqs, start, start_with, TestServer, WAIT};
use serde_json::{json, Value};
use server::auth::TokenKind;

/// Open the stream of workflow `id` as admin, with extra headers.
async fn open(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> SseReader {
    let mut request = server.request_as(reqwest::Method::GET, path, Some(&server.token));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    SseReader::new(request.send().await.expect("GET stream"))
}

/// Publish `n` thinking events to `id`.
async fn publish_n(server: &TestServer, id: &str, n: usize, tag: &str) {
    if n == 0 {
        return;
    }
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"type": "agent_thinking", "agent": "a", "content": format!("{tag} {i}")}))
        .collect();
    server.publish(id, Value::Array(events)).await;
}

/// An external workflow with a running agent and `n` more events.
async fn workflow_with(server: &TestServer, n: usize) -> String {
    let id = server.create("external").await;
    server
        .publish(&id, json!({"type": "agent_started", "agent": "a"}))
        .await;
    publish_n(server, &id, n, "before").await;
    id
}

/// Read logged events (messages with an id) until `seq` = `last`; each must carry its seq
/// as `id:`.
async fn events_until(stream: &mut SseReader, last: u64) -> Vec<Value> {
    let mut events = Vec::new();
    while events.last().and_then(|e: &Value| e["seq"].as_u64()) != Some(last) {
        let (name, id, data) = stream.next().await.expect("the stream goes on");
        if name != "message" {
            continue;
        }
        assert_eq!(id, data["seq"].as_u64(), "id: is the event's seq");
        events.push(data);
    }
    events
}

#[tokio::test]
async fn the_stream_says_hello_replays_the_log_says_replay_done_then_carries_live_events() {
    let server = start().await;
    let id = workflow_with(&server, 3).await;
    let mut stream = open(&server, &format!("/sse/workflow/{id}"), &[]).await;

    let (name, id_field, hello) = stream.next().await.expect("hello");
    assert_eq!((name.as_str(), id_field), ("hello", None));
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["workflow_id"], id.as_str());
    assert_eq!(hello["last_seq"], 4);
    assert!(hello["heartbeat_ms"].as_u64().is_some());

    let backlog = events_until(&mut stream, 4).await;
    let (name, id_field, done) = stream.next().await.expect("replay_done");
    assert_eq!((name.as_str(), id_field), ("replay_done", None));
    assert_eq!(done, json!({"type": "replay_done", "last_seq": 4}));

    publish_n(&server, &id, 2, "live").await;
    let live = events_until(&mut stream, 6).await;
    let all: Vec<Value> = backlog.into_iter().chain(live).collect();
    assert_eq!(all, server.log(&id).await, "exactly the log, in order");
}

#[tokio::test]
async fn a_stream_cut_mid_way_resumes_after_last_event_id_without_a_gap_or_a_repeat() {
    let server = start().await;
    let id = workflow_with(&server, 9).await;
    let mut first = open(&server, &format!("/sse/workflow/{id}"), &[]).await;
    let mut held = events_until(&mut first, 4).await;
    drop(first);

    // More happens while it is away; Last-Event-ID wins over the `after` of the URL, as
    // when an `EventSource` opened with `?after=0` reconnects by itself.
    publish_n(&server, &id, 5, "while away").await;
    let path = format!("/sse/workflow/{id}?after=0");
    let mut second = open(&server, &path, &[("last-event-id", "4")]).await;
    let (name, _, hello) = second.next().await.expect("hello");
    assert_eq!(
        (name.as_str(), hello["last_seq"].as_u64()),
        ("hello", Some(15))
    );
    held.extend(events_until(&mut second, 15).await);

    assert_eq!(seqs(&held), (1..=15).collect::<Vec<u64>>());
    assert_eq!(held, server.log(&id).await);
}

#[tokio::test]
async fn after_in_the_url_also_resumes() {
    let server = start().await;
    let id = workflow_with(&server, 4).await;
    let mut stream = open(&server, &format!("/sse/workflow/{id}?after=3"), &[]).await;
    let events = events_until(&mut stream, 5).await;
    assert_eq!(seqs(&events), [4, 5]);
}

#[tokio::test]
async fn the_gate_answers_before_any_stream_starts() {
    let server = start_with(|c| c.allowed_origins = vec!["https://app.example.com".into()]).await;
    let id = workflow_with(&server, 0).await;
    let path = format!("/sse/workflow/{id}");
    let status = |request: reqwest::RequestBuilder| async move {
        request.send().await.expect("answer").status().as_u16()
    };
    let get =
        |token: Option<&str>, path: &str| server.request_as(reqwest::Method::GET, path, token);

    assert_eq!(status(get(None, &path)).await, 401, "no token");
    assert_eq!(
        status(get(Some("wrong"), &path)).await,
        401,
        "a wrong token"
    );
    assert_eq!(
        status(get(Some(&server.agent_token), &path)).await,
        403,
        "an agent token"
    );
    let other = get(Some(&server.token), &path).header("origin", "http://evil.example");
    assert_eq!(status(other).await, 403, "another site's page");
    let bob = server.mint("bob", TokenKind::User).await;
    assert_eq!(status(get(Some(&bob), &path)).await, 404, "someone else's");
    let unknown = get(Some(&server.token), "/sse/workflow/nope");
    assert_eq!(status(unknown).await, 404, "no such workflow");
    let malformed = get(Some(&server.token), &path).header("last-event-id", "x");
    assert_eq!(status(malformed).await, 400, "a malformed Last-Event-ID");
    let listed = get(Some(&server.token), &path).header("origin", "https://app.example.com");
    assert_eq!(status(listed).await, 200, "a listed origin");
}

#[tokio::test]
async fn a_cursor_ahead_of_the_log_is_told_to_reset_and_the_stream_ends() {
    let server = start().await;
    let id = workflow_with(&server, 1).await;
    let mut stream = open(
        &server,
        &format!("/sse/workflow/{id}"),
        &[("last-event-id", "99")],
    )
    .await;
    let (name, _, _) = stream.next().await.expect("hello");
    assert_eq!(name, "hello");
    let (name, id_field, reset) = stream.next().await.expect("reset");
    assert_eq!((name.as_str(), id_field), ("reset", None));
    assert_eq!(reset, json!({"last_seq": 2}));
    assert_eq!(stream.next().await, None, "the stream ends");
}

#[tokio::test]
async fn a_quiet_stream_sends_keep_alive_comments_every_heartbeat() {
    let server = start_with(|c| c.heartbeat_ms = 200).await;
    let id = workflow_with(&server, 0).await;
    let mut stream = open(&server, &format!("/sse/workflow/{id}"), &[]).await;
    let mut comments = 0;
    while comments < 2 {
        match stream.next_block().await.expect("the stream goes on") {
            Block::Comment(text) => {
                assert_eq!(text, "keep-alive");
                comments += 1;
            }
            Block::Message { .. } => {}
        }
    }
}

#[tokio::test]
async fn the_stream_ends_when_the_token_is_revoked() {
    let server = start().await;
    let carol = server.mint("carol", TokenKind::User).await;
    let (status, body) = server
        .post_as(Some(&carol), "/api/workflows", json!({"kind": "external"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id");
    let response = server
        .request_as(
            reqwest::Method::GET,
            &format!("/sse/workflow/{id}"),
            Some(&carol),
        )
        .send()
        .await
        .expect("GET");
    let mut stream = SseReader::new(response);
    let (name, _, _) = stream.next().await.expect("hello");
    assert_eq!(name, "hello");
    let (name, _, _) = stream.next().await.expect("replay_done");
    assert_eq!(name, "replay_done");
    let accounts = server.accounts.clone().expect("in-process server");
    assert!(accounts.revoke(&carol).await.expect("revoke"));
    assert_eq!(stream.next().await, None, "the stream ends on revocation");
}

const EVENT_BYTES: usize = 16 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_too_slow_for_its_queue_is_cut_off_and_resumes_with_last_event_id() {
    // A 64 KiB queue; ~25 MB published while the reader does not read (more than the kernel's
    // socket buffers and the client's hold).
    let server = start_with(|c| c.queue_bytes = 64 * 1024).await;
    let id = workflow_with(&server, 0).await;
    let mut slow = open(&server, &format!("/sse/workflow/{id}"), &[]).await;
    // Caught up (live) before the flood, so the flood goes through its queue.
    events_until(&mut slow, 1).await;
    let (name, _, _) = slow.next().await.expect("replay_done");
    assert_eq!(name, "replay_done");
    let filler = "x".repeat(EVENT_BYTES);
    for _ in 0..48 {
        let batch: Vec<Value> = (0..32)
            .map(|_| json!({"type": "agent_thinking", "agent": "a", "content": filler}))
            .collect();
        server.publish(&id, Value::Array(batch)).await;
    }
    let total = 1 + 48 * 32;

    // Reading now: some events, then a comment saying why, then the end.
    let mut last = 1;
    let mut why = None;
    loop {
        match tokio::time::timeout(WAIT, slow.next_block())
            .await
            .expect("in time")
        {
            Some(Block::Message { id: Some(seq), .. }) => {
                assert_eq!(seq, last + 1, "in order, no gap");
                last = seq;
            }
            Some(Block::Message { .. }) => {}
            Some(Block::Comment(text)) => why = Some(text),
            None => break,
        }
    }
    assert!(last < total, "cut off before the end ({last} of {total})");
    assert!(why.is_some_and(|w| w.contains("too slow")), "says why");

    let resume = last.to_string();
    let mut again = open(
        &server,
        &format!("/sse/workflow/{id}"),
        &[("last-event-id", &resume)],
    )
    .await;
    let rest = events_until(&mut again, total).await;
    assert_eq!(seqs(&rest), (last + 1..=total).collect::<Vec<u64>>());
}
