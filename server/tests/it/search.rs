//! The built-in `search` workflow end to end over a real socket: its event sequence and the §1
//! invariants, results that really come from the indexed folder, follow-up rounds, and a tool
//! that panics, stalls or is cancelled.

use crate::common::{assert_invariants, start_with, Client, TestServer};
use serde_json::{json, Value};

/// A corpus folder of known documents.
fn corpus() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("otters.md", "# Otters\nSea otters hold hands while they sleep so they do not drift apart.\n\n# Rivers\nRivers carry water to the sea.\n");
    write(
        "bees.md",
        "# Bees\nHoney bees dance to tell the hive where the flowers are.\n",
    );
    std::fs::create_dir(dir.path().join("more")).expect("mkdir");
    write(
        "more/owls.txt",
        "Owls turn their heads almost all the way around.",
    );
    write("ignored.bin", "otters otters otters");
    dir
}

async fn search_server(
    tweak: impl FnOnce(&mut server::config::Config),
) -> (TestServer, tempfile::TempDir) {
    let dir = corpus();
    let path = dir.path().to_owned();
    let server = start_with(move |c| {
        c.corpus = Some(path);
        tweak(c);
    })
    .await;
    (server, dir)
}

async fn start_search(server: &TestServer, query: &str) -> String {
    let (status, body) = server
        .post(
            "/api/workflows",
            json!({ "kind": "search", "input": { "query": query } }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["title"], query);
    body["id"].as_str().expect("id").to_owned()
}

/// Events until (and with) the next `workflow_status` among `statuses`.
async fn until_status(viewer: &mut Client, statuses: &[&str]) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let event = viewer.events(1).await.remove(0);
        let done = event["type"] == "workflow_status"
            && statuses.contains(&event["status"].as_str().unwrap_or_default());
        got.push(event);
        if done {
            return got;
        }
    }
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["type"].as_str().expect("type") {
            "node_update" => format!(
                "node {} {}",
                e["node"].as_str().unwrap_or(""),
                e["status"].as_str().unwrap_or("")
            ),
            "workflow_status" => format!("status {}", e["status"].as_str().unwrap_or("")),
            other => other.to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn a_search_streams_its_graph_finds_the_indexed_documents_and_takes_follow_ups() {
    let (server, _dir) = search_server(|_| {}).await;
    let id = start_search(&server, "Why do otters hold hands?").await;
    // Subscribed after the start: the workflow ran without a viewer; all of it is replayed.
    let mut viewer = server.subscribe(&id, 0).await;
    let first = until_status(&mut viewer, &["waiting_input", "failed"]).await;
    // The synthesis is streamed: its deltas, then the answer whole.
    let answer = first
        .iter()
        .find(|e| e["type"] == "agent_response")
        .expect("an answer");
    let message_id = answer["message_id"].as_str().expect("streamed");
    let streamed = crate::common::joined_deltas(&first, message_id);
    assert_eq!(answer["content"].as_str(), Some(streamed.as_str()));
    assert!(streamed.contains("hold hands"), "{streamed}");
    let whole: Vec<Value> = first
        .iter()
        .filter(|e| e["type"] != "text_delta")
        .cloned()
        .collect();
    assert_eq!(
        kinds(&whole),
        [
            "status running",
            "node analyze executing",
            "agent_started",
            "agent_thinking",
            "agent_completed",
            "node analyze completed",
            "node search executing",
            "agent_started",
            "tool_executing",
            "tool_update",
            "tool_completed",
            "search_results",
            "agent_completed",
            "node search completed",
            "node synthesize executing",
            "agent_started",
            "agent_thinking",
            "agent_response",
            "agent_completed",
            "node synthesize completed",
            "node report executing",
            "final_report",
            "node report completed",
            "status waiting_input",
        ]
    );
    let tool = first
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .expect("tool");
    assert_eq!(tool["ok"], true);
    assert!(tool["duration_ms"].is_u64());
    let results = first
        .iter()
        .find(|e| e["type"] == "search_results")
        .expect("results");
    assert_eq!(results["results"][0]["source"], "otters.md#otters");
    assert!(results["results"][0]["snippet"]
        .as_str()
        .expect("snippet")
        .contains("hold hands"));
    assert!(results["results"][0]["score"].as_f64().expect("score") > 0.0);
    let report = first
        .iter()
        .find(|e| e["type"] == "final_report")
        .expect("report");
    let markdown = report["content"].as_str().expect("markdown");
    assert!(
        markdown.contains("[1]") && markdown.contains("`otters.md#otters`"),
        "{markdown}"
    );

    // A follow-up runs another round on the same workflow; files in subfolders count too.
    viewer
        .send_json(json!({ "type": "user_input", "content": "which birds turn their heads", "client_msg_id": "f1" }))
        .await;
    let second = until_status(&mut viewer, &["waiting_input", "failed"]).await;
    let results = second
        .iter()
        .find(|e| e["type"] == "search_results")
        .expect("results");
    assert_eq!(results["query"], "which birds turn their heads");
    assert_eq!(results["results"][0]["source"], "more/owls.txt");
    let tools: Vec<&Value> = second
        .iter()
        .filter(|e| e["type"] == "tool_executing")
        .collect();
    assert_eq!(tools[0]["call_id"], "search-2");

    viewer
        .send_json(json!({ "type": "user_input", "content": "done", "client_msg_id": "f2" }))
        .await;
    until_status(&mut viewer, &["completed"]).await;
    let log = server.log(&id).await;
    assert_invariants(&log);
    assert!(log
        .iter()
        .all(|e| e["results"].to_string().contains("ignored.bin").not()));
}

trait Not {
    fn not(self) -> bool;
}
impl Not for bool {
    fn not(self) -> bool {
        !self
    }
}

#[tokio::test]
async fn a_search_needs_a_query() {
    let (server, _dir) = search_server(|_| {}).await;
    for input in [json!(null), json!({}), json!({ "query": "  " })] {
        let (status, body) = server
            .post(
                "/api/workflows",
                json!({ "kind": "search", "input": input }),
            )
            .await;
        assert_eq!(status, 400, "{body}");
    }
}

/// The failing end of a round whose search tool did not return.
async fn failed_search(server: &TestServer, query: &str) -> Vec<Value> {
    let id = start_search(server, query).await;
    let mut viewer = server.subscribe(&id, 0).await;
    let events = until_status(&mut viewer, &["failed", "waiting_input"]).await;
    assert_invariants(&events);
    let tail: Vec<String> = kinds(&events).into_iter().rev().take(4).rev().collect();
    assert_eq!(
        tail,
        [
            "tool_completed",
            "agent_completed",
            "node search failed",
            "status failed"
        ]
    );
    events
}

#[tokio::test]
async fn a_panicking_tool_fails_the_workflow_cleanly_and_the_server_stays_up() {
    let (server, _dir) = search_server(|_| {}).await;
    let events = failed_search(&server, server::workflows::search::TEST_PANIC).await;
    let tool = events
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .expect("tool");
    assert_eq!(tool["ok"], false);
    assert!(
        tool["error"].as_str().expect("error").contains("panicked"),
        "{tool}"
    );
    // The server goes on: another search works.
    let id = start_search(&server, "bees").await;
    let mut viewer = server.subscribe(&id, 0).await;
    let events = until_status(&mut viewer, &["waiting_input", "failed"]).await;
    assert_eq!(events.last().expect("status")["status"], "waiting_input");
}

#[tokio::test]
async fn a_tool_over_its_timeout_fails_the_workflow() {
    let (server, _dir) = search_server(|c| c.tool_timeout_ms = 200).await;
    let events = failed_search(&server, server::workflows::search::TEST_STALL).await;
    let tool = events
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .expect("tool");
    assert_eq!(tool["ok"], false);
    assert!(
        tool["error"]
            .as_str()
            .expect("error")
            .contains("within 200 ms"),
        "{tool}"
    );
    assert!(tool["duration_ms"].as_u64().expect("duration") >= 200);
}

#[tokio::test]
async fn cancelling_during_a_tool_call_closes_it_and_stops_the_workflow() {
    let (server, _dir) = search_server(|_| {}).await;
    let id = start_search(&server, server::workflows::search::TEST_STALL).await;
    let mut viewer = server.subscribe(&id, 0).await;
    loop {
        if viewer.events(1).await.remove(0)["type"] == "tool_executing" {
            break;
        }
    }
    let (status, _) = server
        .post(&format!("/api/workflows/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let rest = until_status(&mut viewer, &["cancelled"]).await;
    let closing: Vec<String> = kinds(&rest).into_iter().rev().take(3).rev().collect();
    assert_eq!(
        closing,
        ["tool_completed", "agent_completed", "status cancelled"]
    );
    let tool = rest
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .expect("tool");
    assert_eq!(tool["ok"], false);
    assert_invariants(&server.log(&id).await);
}
