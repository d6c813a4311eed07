//! The built-in `echo` workflow end to end over a real socket.

use crate::common::{assert_invariants, is_status, joined_deltas, seqs, start, Client};
use serde_json::{json, Value};

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect()
}

#[tokio::test]
async fn echo_answers_each_input_and_done_completes_it() {
    let server = start().await;
    let id = server.create("echo").await;
    let mut client = server.subscribe(&id, 0).await;
    assert_eq!(client.next_json().await["type"], "hello");
    let opening = client.events(3).await;
    assert_eq!(
        types(&opening),
        ["workflow_status", "agent_started", "workflow_status"]
    );
    assert_eq!(opening[2]["status"], "waiting_input");

    client
        .send_json(
            json!({ "type": "user_input", "content": "hello big world", "client_msg_id": "m1" }),
        )
        .await;
    let round = client.events_until(|e| is_status(e, "waiting_input")).await;
    let whole: Vec<&Value> = round.iter().filter(|e| e.get("delta").is_none()).collect();
    assert_eq!(
        types(&whole.iter().map(|e| (*e).clone()).collect::<Vec<_>>()),
        [
            "user_input",
            "workflow_status",
            "agent_thinking",
            "tool_executing",
            "tool_completed",
            "agent_response",
            "workflow_status"
        ]
    );
    let (tool, done, response) = (whole[3], whole[4], whole[5]);
    assert_eq!(tool["call_id"], done["call_id"]);
    assert_eq!(done["ok"], true);
    assert_eq!(done["output"]["words"], 3);
    assert_eq!(done["output"]["reversed"], "dlrow gib olleh");
    let content = response["content"].as_str().expect("content");
    assert!(content.contains("hello big world"), "{content}");
    // The answer was streamed word by word, and the log holds it whole in its close too.
    let message_id = response["message_id"].as_str().expect("streamed");
    let deltas = round
        .iter()
        .filter(|e| e["message_id"] == message_id)
        .count()
        - 1;
    assert!(deltas > 3, "word by word: {deltas} deltas");
    assert_eq!(joined_deltas(&round, message_id), content);
    assert!(
        whole[2]["message_id"].is_string(),
        "the reasoning is streamed too"
    );

    client
        .send_json(json!({ "type": "user_input", "content": "done", "client_msg_id": "m2" }))
        .await;
    let end = client.events(3).await;
    assert_eq!(
        types(&end),
        ["user_input", "agent_completed", "workflow_status"]
    );
    assert_eq!(end[1]["ok"], true);
    assert_eq!(end[2]["status"], "completed");

    let mut all = opening;
    all.extend(round);
    all.extend(end);
    assert_eq!(seqs(&all), (1..=all.len() as u64).collect::<Vec<_>>());
    assert_invariants(&all);
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["status"], "completed");
    assert_eq!(workflow["title"], "Echo");
}

#[tokio::test]
async fn cancelling_echo_stops_it_and_closes_its_agent() {
    let server = start().await;
    let id = server.create("echo").await;
    let mut client = server.subscribe(&id, 0).await;
    client.next_json().await;
    client.events(3).await;
    let (status, _) = server
        .post(&format!("/api/workflows/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let closing = client.events(2).await;
    assert_eq!(types(&closing), ["agent_completed", "workflow_status"]);
    assert_eq!(closing[0]["ok"], false);
    assert_eq!(closing[1]["status"], "cancelled");
}

/// Send `content` to echo and read its events up to the next `waiting_input`.
async fn say(client: &mut Client, content: &str, client_msg_id: &str) -> Vec<Value> {
    let input = json!({ "type": "user_input", "content": content, "client_msg_id": client_msg_id });
    client.send_json(input).await;
    client.events_until(|e| is_status(e, "waiting_input")).await
}

#[tokio::test]
async fn echo_asks_before_a_tool_call_and_runs_the_tool_only_when_approved() {
    let server = start().await;
    let id = server.create("echo").await;
    let mut client = server.subscribe(&id, 0).await;
    assert_eq!(client.next_json().await["type"], "hello");
    client.events_until(|e| is_status(e, "waiting_input")).await;

    let asked = say(&mut client, "tool: count these words", "m1").await;
    let interrupt = asked
        .iter()
        .find(|e| e["type"] == "interrupt")
        .expect("asks");
    let call = asked
        .iter()
        .find(|e| e["type"] == "tool_executing")
        .expect("the call");
    assert_eq!(interrupt["reason"], "tool_approval");
    assert_eq!(interrupt["call_id"], call["call_id"]);
    assert_eq!(call["input"]["text"], "count these words");
    assert!(
        asked.iter().all(|e| e["type"] != "tool_completed"),
        "the tool waits for the answer"
    );
    let approve = json!({ "type": "resolve", "interrupt_id": interrupt["interrupt_id"],
        "status": "resolved", "payload": { "approved": true }, "client_msg_id": "a1" });
    client.send_json(approve).await;
    let ran = client.events_until(|e| is_status(e, "waiting_input")).await;
    let resolved = &ran[0];
    assert_eq!(resolved["type"], "interrupt_resolved");
    assert_eq!(resolved["user"], "admin");
    let done = ran
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .expect("ran");
    assert_eq!(
        (done["ok"].as_bool(), done["output"]["words"].as_u64()),
        (Some(true), Some(3))
    );

    let asked = say(&mut client, "tool: never run me", "m2").await;
    let interrupt = asked
        .iter()
        .find(|e| e["type"] == "interrupt")
        .expect("asks");
    let deny = json!({ "type": "resolve", "interrupt_id": interrupt["interrupt_id"],
        "status": "resolved", "payload": { "approved": false }, "client_msg_id": "a2" });
    client.send_json(deny).await;
    let denied = client.events_until(|e| is_status(e, "waiting_input")).await;
    let done = denied
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .expect("closed");
    assert_eq!(done["ok"], false);
    assert!(done.get("output").is_none(), "the tool did not run: {done}");
    assert_eq!(done["error"], "denied by admin");
    let answer = denied
        .iter()
        .find(|e| e["type"] == "agent_response")
        .expect("says so");
    assert!(answer["content"].as_str().expect("text").contains("denied"));
    assert_invariants(&server.log(&id).await);
}
