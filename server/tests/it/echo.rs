//! The built-in `echo` workflow end to end over a real socket.

use crate::common::{seqs, start};
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
    let round = client.events(7).await;
    assert_eq!(
        types(&round),
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
    assert_eq!(round[3]["call_id"], round[4]["call_id"]);
    assert_eq!(round[4]["ok"], true);
    assert_eq!(round[4]["output"]["words"], 3);
    assert_eq!(round[4]["output"]["reversed"], "dlrow gib olleh");
    assert!(round[5]["content"]
        .as_str()
        .expect("content")
        .contains("hello big world"));
    assert_eq!(round[6]["status"], "waiting_input");

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
    assert_eq!(seqs(&all), (1..=13).collect::<Vec<_>>());
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
