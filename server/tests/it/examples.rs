//! The Python example agents (`examples/`) against a real server: they run in the Python
//! environment of `scripts/py-venv.sh` (created on first use), publish through the agent
//! socket, and the log they leave must hold to PROTOCOL.md §1.

use crate::common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;

use crate::common::{start, TestServer};
use serde_json::{json, Value};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The interpreter of the examples' environment (created if missing: network, once).
pub async fn python() -> PathBuf {
    static VENV: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    VENV.get_or_init(|| async {
        let output = tokio::process::Command::new("bash")
            .arg(root().join("scripts/py-venv.sh"))
            .output()
            .await
            .expect("run py-venv.sh");
        assert!(
            output.status.success(),
            "py-venv.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
    .await
    .clone()
}

/// Start `examples/<script>` as an agent of workflow `id`.
async fn run_example(server: &TestServer, script: &str, id: &str) -> tokio::process::Child {
    tokio::process::Command::new(python().await)
        .arg(script)
        .args([
            "--url",
            &server.url(""),
            "--token",
            &server.agent_token,
            "--workflow",
            id,
        ])
        .current_dir(root().join("examples"))
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the example")
}

/// Wait for the example to exit successfully.
async fn succeeds(mut child: tokio::process::Child) {
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait())
        .await
        .expect("the example finishes")
        .expect("wait");
    assert!(status.success(), "the example failed: {status}");
}

/// The workflow's whole log, checked against the §1 invariants and completed; returns it.
async fn checked_log(server: &TestServer, id: &str) -> Vec<Value> {
    let events = server.log(id).await;
    common::assert_invariants(&events);
    let last = events.last().expect("events");
    assert_eq!(
        (last["type"].as_str(), last["status"].as_str()),
        (Some("workflow_status"), Some("completed"))
    );
    events
}

#[tokio::test]
async fn the_python_agent_publishes_every_kind_and_answers_input() {
    let server = start().await;
    let id = server.create("external").await;
    let mut viewer = server.subscribe(&id, 0).await;
    viewer.hello_and_backlog().await;
    let agent = run_example(&server, "agent.py", &id).await;
    // It asks a question first: answer it the way the browser does.
    let asked = viewer.events_until(|e| e["type"] == "interrupt").await;
    let question = asked.last().expect("the interrupt");
    assert_eq!(
        question["response_schema"]["properties"]["length"]["enum"][1],
        "long"
    );
    let answer = json!({ "type": "resolve", "interrupt_id": question["interrupt_id"],
        "status": "resolved", "payload": { "length": "long" }, "client_msg_id": "a1" });
    viewer.send_json(answer).await;
    // Then it streams its answer and waits for input.
    let streamed = viewer.events_until(|e| e["type"] == "agent_response").await;
    let answer = streamed.last().expect("the close");
    let message_id = answer["message_id"].as_str().expect("streamed");
    assert!(answer["content"]
        .as_str()
        .expect("content")
        .contains("exactly once"));
    assert_eq!(
        common::joined_deltas(&streamed, message_id),
        answer["content"].as_str().expect("content")
    );
    viewer
        .events_until(|e| common::is_status(e, "waiting_input"))
        .await;
    let say = |content: &str, n: &str| json!({ "type": "user_input", "content": content, "client_msg_id": n });
    viewer.send_json(say("what did you find?", "m1")).await;
    loop {
        let event = viewer.events(1).await.remove(0);
        if event["type"] == "agent_response" {
            assert_eq!(event["content"], "You asked: what did you find?");
            break;
        }
    }
    viewer.send_json(say("done", "m2")).await;
    succeeds(agent).await;
    let log = checked_log(&server, &id).await;
    let kinds: HashSet<&str> = log
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    for kind in [
        "workflow_status",
        "node_update",
        "agent_started",
        "agent_thinking",
        "agent_response",
        "tool_executing",
        "tool_update",
        "tool_completed",
        "search_results",
        "agent_completed",
        "final_report",
        "user_input",
        "text_delta",
        "interrupt",
        "interrupt_resolved",
    ] {
        assert!(kinds.contains(kind), "no {kind} in the log");
    }
}

#[tokio::test]
async fn the_langgraph_agent_streams_each_node_of_its_graph() {
    let server = start().await;
    let id = server.create("external").await;
    succeeds(run_example(&server, "langgraph_agent.py", &id).await).await;
    let log = checked_log(&server, &id).await;
    let steps: Vec<String> = log
        .iter()
        .filter(|e| e["type"] == "node_update")
        .map(|e| {
            format!(
                "{} {}",
                e["node"].as_str().unwrap_or(""),
                e["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    let mut expected = Vec::new();
    for node in ["analyze", "search", "synthesize", "report"] {
        expected.push(format!("{node} executing"));
        expected.push(format!("{node} completed"));
    }
    assert_eq!(steps, expected);
    let results = log
        .iter()
        .find(|e| e["type"] == "search_results")
        .expect("results");
    assert!(
        !results["results"].as_array().expect("list").is_empty(),
        "the notes matched"
    );
    assert!(log.iter().any(|e| e["type"] == "final_report"));
}
