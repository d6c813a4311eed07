//! Interrupts (PROTOCOL.md §1–§3, §5) against a real server: two people racing to answer one
//! question, retried answers over the socket and HTTP, answers past `expires_at`, what an agent
//! may publish, and answers and a person's cancel reaching the agent — live, after it reconnects,
//! and after the server restarts.

use crate::common::{assert_invariants, spawn_binary, start, Client, TestServer};
use serde_json::{json, Value};

fn ask(interrupt_id: &str) -> Value {
    json!({ "type": "interrupt", "agent": "a", "interrupt_id": interrupt_id,
        "reason": "input", "message": "Which one?",
        "response_schema": { "type": "object", "properties": { "pick": { "type": "string" } } } })
}

fn resolve(interrupt_id: &str, pick: &str, client_msg_id: &str) -> Value {
    json!({ "type": "resolve", "interrupt_id": interrupt_id, "status": "resolved",
        "payload": { "pick": pick }, "client_msg_id": client_msg_id })
}

/// Answer over HTTP: the status and the body.
async fn answer_over_http(
    server: &TestServer,
    id: &str,
    interrupt_id: &str,
    pick: &str,
    client_msg_id: &str,
) -> (u16, Value) {
    let body = json!({ "status": "resolved", "payload": { "pick": pick },
        "client_msg_id": client_msg_id });
    server
        .post(
            &format!("/api/workflows/{id}/interrupts/{interrupt_id}"),
            body,
        )
        .await
}

fn resolutions(log: &[Value]) -> Vec<&Value> {
    log.iter()
        .filter(|e| e["type"] == "interrupt_resolved")
        .collect()
}

#[tokio::test]
async fn two_viewers_racing_to_answer_one_interrupt_one_wins_and_the_other_gets_conflict() {
    let server = start().await;
    let id = server.create("external").await;
    server.publish(&id, ask("i1")).await;
    let mut first = server.subscribe(&id, 0).await;
    let mut second = server.subscribe(&id, 0).await;
    first.hello_and_backlog().await;
    second.hello_and_backlog().await;
    // Both send before either reads: the server orders them.
    first.send_json(resolve("i1", "left", "f1")).await;
    second.send_json(resolve("i1", "right", "s1")).await;
    let (a, b) = tokio::join!(answer_and_event(&mut first), answer_and_event(&mut second));
    let ((a, seen_a), (b, seen_b)) = (a, b);
    let mut answers = [a["type"].as_str(), b["type"].as_str()];
    answers.sort();
    assert_eq!(answers, [Some("ack"), Some("error")], "{a} {b}");
    let loser = if a["type"] == "error" { &a } else { &b };
    assert_eq!(loser["code"], "conflict", "{loser}");
    let log = server.log(&id).await;
    let resolved = resolutions(&log);
    assert_eq!(resolved.len(), 1, "exactly one interrupt_resolved");
    assert_eq!(resolved[0]["user"], "admin");
    // Both viewers see the winner's answer, once.
    assert_eq!(seen_a, *resolved[0]);
    assert_eq!(seen_b, *resolved[0]);
}

/// The answer to a viewer's `resolve` (`ack` or `error`) and the next logged event, in
/// whichever order they come.
async fn answer_and_event(viewer: &mut Client) -> (Value, Value) {
    let (mut answer, mut event) = (None, None);
    while answer.is_none() || event.is_none() {
        let frame = viewer.next_json().await;
        if frame.get("seq").is_some() && frame["type"] != "ack" {
            event = Some(frame);
        } else {
            answer = Some(frame);
        }
    }
    (answer.unwrap_or_default(), event.unwrap_or_default())
}

#[tokio::test]
async fn a_retried_answer_is_acked_with_its_first_seq_over_the_socket_and_http() {
    let server = start().await;
    let id = server.create("external").await;
    server.publish(&id, ask("i1")).await;
    let mut viewer = server.subscribe(&id, 0).await;
    viewer.hello_and_backlog().await;
    viewer.send_json(resolve("i1", "x", "r1")).await;
    let ack = viewer.next_control().await;
    assert_eq!(
        ack,
        json!({ "type": "ack", "client_msg_id": "r1", "seq": 2 })
    );
    // The same answer again (a retry after a reconnect), over the socket and over HTTP.
    let mut again = server.subscribe(&id, 2).await;
    again.hello_and_backlog().await;
    again.send_json(resolve("i1", "x", "r1")).await;
    assert_eq!(again.next_control().await["seq"], 2);
    assert_eq!(
        answer_over_http(&server, &id, "i1", "x", "r1").await,
        (200, json!({ "seq": 2 }))
    );
    // A different answer is a conflict, over HTTP too (409).
    let (status, body) = answer_over_http(&server, &id, "i1", "y", "r2").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    assert_eq!(resolutions(&server.log(&id).await).len(), 1);
    // Unknown interrupt: conflict; unknown workflow: 404.
    let (status, _) = answer_over_http(&server, &id, "nope", "x", "r3").await;
    assert_eq!(status, 409);
    let (status, _) = answer_over_http(&server, "wf_missing", "i1", "x", "r4").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_answer_past_expires_at_is_a_conflict_but_the_agent_may_withdraw_it() {
    let server = start().await;
    let id = server.create("external").await;
    let mut late = ask("i1");
    late["expires_at"] = json!("2020-01-01T00:00:00.000Z");
    server.publish(&id, late).await;
    let (status, body) = answer_over_http(&server, &id, "i1", "x", "r1").await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("expired"));
    let withdraw = json!({ "type": "interrupt_resolved", "interrupt_id": "i1", "status": "cancelled",
        "user": "mallory" });
    server.publish(&id, withdraw).await;
    let log = server.log(&id).await;
    let resolved = resolutions(&log);
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        resolved[0]["user"],
        Value::Null,
        "an agent speaks for nobody"
    );
}

#[tokio::test]
async fn an_agent_may_not_answer_a_persons_question() {
    let server = start().await;
    let id = server.create("external").await;
    server.publish(&id, ask("i1")).await;
    let answer = json!({ "type": "interrupt_resolved", "interrupt_id": "i1", "status": "resolved",
        "payload": { "pick": "me" } });
    let (status, body) = server.ingest(&id, answer.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let mut a = server.agent(&id, "").await;
    let mut over_socket = answer;
    over_socket["id"] = json!("e1");
    a.send_json(over_socket).await;
    let refused = a.next_json().await;
    assert_eq!(
        (refused["code"].as_str(), refused["id"].as_str()),
        (Some("forbidden"), Some("e1"))
    );
    assert!(resolutions(&server.log(&id).await).is_empty());
}

#[tokio::test]
async fn answers_reach_the_agent_live_and_after_it_reconnects_and_a_cancel_reaches_it_too() {
    let server = start().await;
    let id = server.create("external").await;
    let mut a = server.agent(&id, "").await;
    a.send_json(ask("i1")).await;
    let mut viewer = server.subscribe(&id, 0).await;
    viewer.hello_and_backlog().await;
    viewer.send_json(resolve("i1", "live", "r1")).await;
    let forwarded = a.next_json().await;
    assert_eq!(
        (
            forwarded["type"].as_str(),
            forwarded["payload"]["pick"].as_str()
        ),
        (Some("interrupt_resolved"), Some("live"))
    );
    assert_eq!(forwarded["user"], "admin");
    // The agent goes away; a question it asked is answered meanwhile.
    a.send_json(ask("i2")).await;
    viewer.events(2).await;
    drop(a);
    let (status, _) = answer_over_http(&server, &id, "i2", "while away", "r2").await;
    assert_eq!(status, 200);
    let mut back = server.agent(&id, "").await;
    let forwarded = back.next_json().await;
    assert_eq!(
        (
            forwarded["interrupt_id"].as_str(),
            forwarded["payload"]["pick"].as_str()
        ),
        (Some("i2"), Some("while away")),
        "the answer it had not received comes first"
    );
    // A person cancels: the agent is told, so it can stop.
    let (status, _) = server
        .post(&format!("/api/workflows/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let told = back.next_json().await;
    assert_eq!(
        (told["type"].as_str(), told["status"].as_str()),
        (Some("workflow_status"), Some("cancelled"))
    );
    assert_invariants(&server.log(&id).await);
}

#[tokio::test]
async fn an_agent_is_not_sent_back_the_end_it_published_itself() {
    let server = start().await;
    let id = server.create("external").await;
    let mut a = server.agent(&id, "").await;
    a.send_json(json!({ "type": "workflow_status", "status": "completed", "id": "end" }))
        .await;
    assert_eq!(a.next_json().await["type"], "ack");
    // Nothing else comes: two heartbeats are answered with nothing before them (the end was
    // appended before either was sent, so a forwarded copy would be queued already).
    for n in 0..2 {
        a.send_json(json!({ "type": "heartbeat", "correlation_id": format!("h{n}") }))
            .await;
        assert_eq!(a.next_json().await["type"], "heartbeat_response");
    }
    // Another agent connection reading from the start, which did not publish it, is told.
    let mut other = server.agent(&id, "?after=0").await;
    let told = other.next_json().await;
    assert_eq!(
        (told["type"].as_str(), told["status"].as_str()),
        (Some("workflow_status"), Some("completed"))
    );
}

#[tokio::test]
async fn an_answer_given_while_the_agent_was_away_reaches_it_after_a_server_restart() {
    let data = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let first = spawn_binary(data.clone(), &[]).await;
    let id = first.server.create("external").await;
    first
        .server
        .publish(
            &id,
            json!([{ "type": "workflow_status", "status": "running" }, ask("i1")]),
        )
        .await;
    let (status, _) = answer_over_http(&first.server, &id, "i1", "before", "r1").await;
    assert_eq!(status, 200);
    drop(first); // killed: kill_on_drop
    let second = spawn_binary(data, &[]).await;
    let mut a = second.server.agent(&id, "").await;
    let forwarded = a.next_json().await;
    assert_eq!(
        (
            forwarded["type"].as_str(),
            forwarded["payload"]["pick"].as_str()
        ),
        (Some("interrupt_resolved"), Some("before"))
    );
    // Answered once: a retry of the same answer after the restart keeps its seq.
    let (status, body) = answer_over_http(&second.server, &id, "i1", "before", "r1").await;
    assert_eq!((status, body["seq"].as_u64()), (200, Some(3)));
    assert_eq!(resolutions(&second.server.log(&id).await).len(), 1);
}
