//! Streamed messages (PROTOCOL.md §1) against a real server: deltas fanned out in order exactly
//! once, the close filled in with the deltas joined, each rule refused with `conflict` and
//! nothing appended, and a terminal status closing what is open in the order of §1.

use crate::common::{assert_invariants, joined_deltas, start_with, TestServer};
use serde_json::{json, Value};

fn delta(agent: &str, message_id: &str, text: &str) -> Value {
    json!({ "type": "text_delta", "agent": agent, "message_id": message_id, "delta": text })
}

async fn last_seq(server: &TestServer, id: &str) -> u64 {
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    workflow["last_seq"].as_u64().expect("last_seq")
}

#[tokio::test]
async fn two_thousand_deltas_over_the_agent_socket_reach_three_subscribers_in_order_exactly_once() {
    // No frame rate limit: the agent sends as fast as the socket takes it.
    let server = start_with(|c| c.agent_rate = 0).await;
    let id = server.create("external").await;
    let mut viewers = Vec::new();
    for _ in 0..3 {
        let mut viewer = server.subscribe(&id, 0).await;
        viewer.hello_and_backlog().await;
        viewers.push(viewer);
    }
    let mut a = server.agent(&id, "").await;
    let pieces: Vec<String> = (0..2000).map(|n| format!("{n} ")).collect();
    let sender = {
        let pieces = pieces.clone();
        async move {
            for (n, piece) in pieces.iter().enumerate() {
                let mut event = delta("writer", "m1", piece);
                event["id"] = json!(format!("d{n}"));
                a.send_json(event).await;
            }
            a.send_json(json!({ "type": "agent_response", "agent": "writer",
                "message_id": "m1", "id": "close" }))
                .await;
            // Every delta is acked with its own seq, in order.
            for n in 0..=2000u64 {
                let ack = a.next_json().await;
                assert_eq!(ack["type"], "ack", "{ack}");
                assert_eq!(ack["seq"], n + 1, "{ack}");
            }
        }
    };
    let readers = viewers.iter_mut().map(|viewer| viewer.events(2001));
    let (_, seen) = tokio::join!(sender, futures::future::join_all(readers));
    let whole: String = pieces.concat();
    for events in seen {
        assert_eq!(crate::common::seqs(&events), (1..=2001).collect::<Vec<_>>());
        assert_eq!(joined_deltas(&events, "m1"), whole);
        let close = &events[2000];
        assert_eq!(close["type"], "agent_response");
        assert_eq!(close["content"], whole.as_str(), "filled in by the server");
    }
}

#[tokio::test]
async fn an_omitted_content_is_filled_in_and_a_given_one_is_kept() {
    let server = start_with(|_| {}).await;
    let id = server.create("external").await;
    server
        .publish(
            &id,
            json!([
                delta("a", "m1", "Hello, "),
                delta("a", "m1", "world"),
                { "type": "agent_response", "agent": "a", "message_id": "m1" },
                { "type": "thinking_delta", "agent": "a", "message_id": "r1", "delta": "so " },
                { "type": "thinking_delta", "agent": "a", "message_id": "r1", "delta": "then" },
                { "type": "agent_thinking", "agent": "a", "message_id": "r1" },
                delta("a", "m2", "draft"),
                { "type": "agent_response", "agent": "a", "message_id": "m2", "content": "final" },
            ]),
        )
        .await;
    let log = server.log(&id).await;
    assert_eq!(log[2]["content"], "Hello, world");
    assert_eq!(log[5]["content"], "so then");
    assert_eq!(log[5]["type"], "agent_thinking");
    assert_eq!(
        log[7]["content"], "final",
        "given content is the final word"
    );
    assert_invariants(&log);
}

#[tokio::test]
async fn each_rule_of_section_1_is_refused_with_conflict_and_nothing_is_appended() {
    let server = start_with(|_| {}).await;
    let id = server.create("external").await;
    server
        .publish(
            &id,
            json!([
                delta("a", "open", "x"),
                delta("a", "shut", "y"),
                { "type": "agent_response", "agent": "a", "message_id": "shut" },
                { "type": "interrupt", "agent": "a", "interrupt_id": "i1", "reason": "input",
                  "message": "?" },
            ]),
        )
        .await;
    let before = last_seq(&server, &id).await;
    let refused = [
        ("another agent's message", delta("b", "open", "z")),
        ("a delta after the close", delta("a", "shut", "z")),
        (
            "a closed id reused",
            json!({ "type": "agent_response", "agent": "a", "message_id": "shut", "content": "again" }),
        ),
        (
            "reasoning into a text message",
            json!({ "type": "thinking_delta", "agent": "a", "message_id": "open", "delta": "z" }),
        ),
        (
            "another agent closing it",
            json!({ "type": "agent_response", "agent": "b", "message_id": "open" }),
        ),
        (
            "an interrupt id reused",
            json!({ "type": "interrupt", "agent": "a", "interrupt_id": "i1", "reason": "input", "message": "?" }),
        ),
        (
            "a withdrawal of an interrupt that is not open",
            json!({ "type": "interrupt_resolved", "interrupt_id": "nope", "status": "cancelled" }),
        ),
    ];
    for (what, event) in refused {
        let (status, body) = server.ingest(&id, event).await;
        assert_eq!(status, 409, "{what}: {body}");
        assert_eq!(body["error"]["code"], "conflict", "{what}");
    }
    // Malformed whatever the state: an empty delta, a close of nothing with no content.
    for event in [
        delta("a", "open", ""),
        json!({ "type": "agent_response", "agent": "a", "message_id": "never" }),
    ] {
        let (status, body) = server.ingest(&id, event).await;
        assert_eq!(status, 400, "{body}");
    }
    // A batch with one bad event appends none of it: the good delta before it is not kept.
    let batch = json!([delta("a", "open", "kept?"), delta("a", "shut", "no")]);
    assert_eq!(server.ingest(&id, batch).await.0, 409);
    assert_eq!(last_seq(&server, &id).await, before, "nothing appended");
    server
        .publish(
            &id,
            json!({ "type": "agent_response", "agent": "a", "message_id": "open" }),
        )
        .await;
    let log = server.log(&id).await;
    assert_eq!(
        log.last().expect("close")["content"],
        "x",
        "the refused batch left no trace in the message"
    );
}

#[tokio::test]
async fn a_terminal_status_closes_messages_then_interrupts_then_tools_then_agents() {
    let server = start_with(|_| {}).await;
    let id = server.create("external").await;
    server
        .publish(
            &id,
            json!([
                { "type": "agent_started", "agent": "a" },
                { "type": "tool_executing", "agent": "a", "tool": "t", "call_id": "c1", "input": {} },
                delta("a", "m1", "half an "),
                { "type": "thinking_delta", "agent": "a", "message_id": "r1", "delta": "hm" },
                delta("a", "m1", "answer"),
                { "type": "interrupt", "agent": "a", "interrupt_id": "i1", "reason": "input",
                  "message": "?" },
            ]),
        )
        .await;
    let (status, _) = server
        .post(&format!("/api/workflows/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let log = server.log(&id).await;
    let closing: Vec<(&str, &Value)> = log[6..]
        .iter()
        .map(|e| (e["type"].as_str().expect("type"), e))
        .collect();
    let kinds: Vec<&str> = closing.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(
        kinds,
        [
            "agent_response",
            "agent_thinking",
            "interrupt_resolved",
            "tool_completed",
            "agent_completed",
            "workflow_status"
        ]
    );
    assert_eq!(closing[0].1["content"], "half an answer", "the text so far");
    assert_eq!(closing[1].1["content"], "hm");
    assert_eq!(closing[2].1["status"], "cancelled");
    assert_eq!(closing[2].1["user"], Value::Null);
    assert!(closing[2]
        .1
        .as_object()
        .expect("object")
        .contains_key("user"));
    assert_eq!(closing[5].1["status"], "cancelled");
    assert_invariants(&log);
}
