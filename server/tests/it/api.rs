//! The HTTP API over real HTTP: PROTOCOL.md §5, ingest (§3) and the §1 invariants.

use crate::common::{seqs, start};
use serde_json::{json, Value};

#[tokio::test]
async fn create_get_and_list_workflows() {
    let server = start().await;
    let (status, created) = server
        .post(
            "/api/workflows",
            json!({ "kind": "external", "title": "My agent" }),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id");
    assert!(id.starts_with("wf_"));
    assert_eq!(created["kind"], "external");
    assert_eq!(created["title"], "My agent");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["last_seq"], 0);
    assert!(created["created_at"]
        .as_str()
        .expect("created_at")
        .ends_with('Z'));

    let untitled = server.create("external").await;
    let (status, one) = server.get(&format!("/api/workflows/{untitled}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["title"], Value::Null);

    let (_, list) = server.get("/api/workflows").await;
    let ids: Vec<&str> = list["workflows"]
        .as_array()
        .expect("list")
        .iter()
        .map(|w| w["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, vec![untitled.as_str(), id], "newest first");
}

#[tokio::test]
async fn errors_have_code_message_and_status() {
    let server = start().await;
    let (status, body) = server.get("/api/workflows/wf_missing").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("wf_missing"));

    let (status, body) = server
        .post("/api/workflows", json!({ "kind": "teleport" }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("teleport"));

    let response = server
        .http
        .post(server.url("/api/workflows"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "bad_request");
}

#[tokio::test]
async fn ingest_appends_in_order_and_updates_the_workflow() {
    let server = start().await;
    let id = server.create("external").await;
    let first = server
        .publish(
            &id,
            json!({ "type": "workflow_status", "status": "running" }),
        )
        .await;
    assert_eq!(first, vec![1]);
    let more = server
        .publish(
            &id,
            json!([
                { "type": "agent_started", "agent": "a", "task": "t" },
                { "type": "tool_executing", "agent": "a", "tool": "search", "call_id": "c1", "input": { "q": "x" } },
                { "type": "tool_update", "agent": "a", "tool": "search", "call_id": "c1", "message": "half", "progress": 0.5 },
                { "type": "tool_completed", "agent": "a", "tool": "search", "call_id": "c1", "ok": true, "output": [1], "duration_ms": 3 },
                { "type": "search_results", "query": "x", "results": [{ "title": "T", "source": "s", "snippet": "n", "score": 0.9 }] },
                { "type": "agent_response", "agent": "a", "content": "r" },
                { "type": "agent_completed", "agent": "a", "ok": true },
                { "type": "node_update", "node": "n", "status": "completed" },
                { "type": "final_report", "content": "# R" },
                { "type": "workflow_status", "status": "completed" }
            ]),
        )
        .await;
    assert_eq!(more, (2..=11).collect::<Vec<_>>());
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["status"], "completed");
    assert_eq!(workflow["last_seq"], 11);

    let (_, history) = server
        .get(&format!("/api/workflows/{id}/events?after=3&limit=2"))
        .await;
    assert_eq!(history["last_seq"], 11);
    assert_eq!(
        seqs(history["events"].as_array().expect("events")),
        vec![4, 5]
    );
    assert_eq!(history["events"][0]["progress"], 0.5);
}

#[tokio::test]
async fn unknown_fields_are_dropped_not_echoed() {
    let server = start().await;
    let id = server.create("external").await;
    server
        .publish(
            &id,
            json!({ "type": "final_report", "content": "x", "secret": "s" }),
        )
        .await;
    let (_, history) = server.get(&format!("/api/workflows/{id}/events")).await;
    assert!(history["events"][0].get("secret").is_none());
}

#[tokio::test]
async fn a_retried_event_id_is_not_appended_twice() {
    let server = start().await;
    let id = server.create("external").await;
    let event = json!({ "id": "e-1", "type": "agent_started", "agent": "a" });
    assert_eq!(server.publish(&id, event.clone()).await, vec![1]);
    assert_eq!(server.publish(&id, event.clone()).await, vec![1]);
    let batch =
        json!([event, { "id": "e-2", "type": "agent_thinking", "agent": "a", "content": "c" }]);
    assert_eq!(server.publish(&id, batch).await, vec![1, 2]);
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["last_seq"], 2);
}

#[tokio::test]
async fn a_large_batch_with_retried_and_new_ids_appends_only_the_new_ones() {
    // More ids than one lookup statement holds (the store checks them in chunks).
    let server = start().await;
    let id = server.create("external").await;
    let event = |n: usize| json!({"type": "agent_thinking", "agent": "a", "content": "x", "id": format!("e{n}")});
    let first: Vec<Value> = (0..450).map(event).collect();
    let seqs_first = server.publish(&id, Value::Array(first)).await;
    assert_eq!(seqs_first, (1..=450).collect::<Vec<u64>>());
    // The same 450 again, with 50 new ones between them and a repeat inside the batch.
    let mut again: Vec<Value> = (0..500).map(event).collect();
    again.push(event(470));
    let seqs_again = server.publish(&id, Value::Array(again)).await;
    let mut expected: Vec<u64> = (1..=500).collect();
    expected.push(471);
    assert_eq!(
        seqs_again, expected,
        "old ids keep their seqs, new ones follow"
    );
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["last_seq"], 500);
}

#[tokio::test]
async fn invariant_violations_are_409_and_append_nothing() {
    let server = start().await;
    let id = server.create("external").await;
    let cases = [
        json!({ "type": "tool_completed", "agent": "a", "tool": "t", "call_id": "nope", "ok": true, "duration_ms": 1 }),
        json!({ "type": "agent_completed", "agent": "ghost", "ok": true }),
        // A valid event followed by an invalid one: the array is all or nothing.
        json!([{ "type": "agent_started", "agent": "a" }, { "type": "agent_started", "agent": "a" }]),
    ];
    for case in cases {
        let (status, body) = server.ingest(&id, case).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "conflict");
    }
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["last_seq"], 0);

    let (status, body) = server
        .ingest(&id, json!({ "type": "agent_thinking", "agent": "a" }))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("content"),
        "{body}"
    );
}

#[tokio::test]
async fn a_terminal_status_closes_open_tools_and_agents_then_nothing_more() {
    let server = start().await;
    let id = server.create("external").await;
    server
        .publish(
            &id,
            json!([
                { "type": "agent_started", "agent": "a" },
                { "type": "tool_executing", "agent": "a", "tool": "t", "call_id": "c1", "input": null },
                { "type": "workflow_status", "status": "failed", "detail": "crashed" }
            ]),
        )
        .await;
    let (_, history) = server.get(&format!("/api/workflows/{id}/events")).await;
    let events = history["events"].as_array().expect("events");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        kinds,
        [
            "agent_started",
            "tool_executing",
            "tool_completed",
            "agent_completed",
            "workflow_status"
        ]
    );
    assert_eq!(events[2]["ok"], false);
    assert_eq!(events[2]["call_id"], "c1");
    assert_eq!(events[3]["ok"], false);

    let (status, _) = server
        .ingest(&id, json!({ "type": "final_report", "content": "late" }))
        .await;
    assert_eq!(status, 409);
    let (status, _) = server
        .post(
            &format!("/api/workflows/{id}/input"),
            json!({ "content": "hi", "client_msg_id": "m" }),
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn cancel_closes_what_is_open_and_marks_cancelled() {
    let server = start().await;
    let id = server.create("external").await;
    server
        .publish(&id, json!([{ "type": "agent_started", "agent": "a" }, { "type": "tool_executing", "agent": "a", "tool": "t", "call_id": "c", "input": {} }]))
        .await;
    let (status, body) = server
        .post(&format!("/api/workflows/{id}/cancel"), json!({}))
        .await;
    assert_eq!((status, body), (200, json!({ "seq": 5 })));
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["status"], "cancelled");
    let (status, _) = server
        .post(&format!("/api/workflows/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 409, "cancelling twice is a conflict");
}

#[tokio::test]
async fn healthz_and_pages_answer() {
    let server = start().await;
    let response = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status().as_u16(), 200);
    let home = server.http.get(server.url("/")).send().await.expect("get");
    assert_eq!(home.status().as_u16(), 200);
    let html = home.text().await.expect("html");
    assert!(html.contains("Start an echo workflow"), "{html}");
}

#[tokio::test]
async fn concurrent_publishers_lose_and_duplicate_no_seq() {
    let server = start().await;
    let id = server.create("external").await;
    server
        .publish(&id, json!({ "type": "agent_started", "agent": "a" }))
        .await;
    let mut tasks = Vec::new();
    for p in 0..8 {
        let http = server.http.clone();
        let agent = server.agent_token.clone();
        let url = server.url(&format!("/api/workflows/{id}/events"));
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for n in 0..50 {
                let event = json!({ "type": "agent_thinking", "agent": "a", "content": format!("{p}/{n}") });
                let body: Value = http.post(&url).bearer_auth(&agent).json(&event).send().await.expect("post").json().await.expect("json");
                got.push(body["seqs"][0].as_u64().expect("seq"));
            }
            got
        }));
    }
    let mut all: Vec<u64> = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all.sort_unstable();
    assert_eq!(all, (2..=401).collect::<Vec<_>>());
}
