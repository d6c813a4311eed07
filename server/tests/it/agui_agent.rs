//! A real AG-UI agent behind Lantern (PROTOCOL.md §8 "In"): `examples/agui_agent.py`, built
//! with Pydantic AI from PyPI — its own AG-UI adapter writes every event, only its model is
//! scripted (Pydantic AI's `FunctionModel`) — registered with `--agui-agent`. Its text, its
//! tool calls, the conversation carried into the next run, and an approval asked by the agent
//! and answered by a person all land in Lantern's log, in order, holding to §1.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use server::config::AguiAgent;

use crate::common::{assert_invariants, is_status, start_with, Client, TestServer, WAIT};
use crate::examples::{python, root};

/// `examples/agui_agent.py` on a free port, ready; killed when dropped.
pub struct PythonAgent {
    pub url: url::Url,
    _child: tokio::process::Child,
}

pub async fn python_agent() -> PythonAgent {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = tokio::process::Command::new(python().await)
        .arg(root().join("examples/agui_agent.py"))
        .arg(port.to_string())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the agent");
    let health = format!("http://127.0.0.1:{port}/health");
    let ready = async {
        // The agent takes a couple of seconds to import; its health answer says it listens.
        loop {
            if let Ok(response) = reqwest::get(&health).await {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .expect("the Python agent answers its health check");
    PythonAgent {
        url: format!("http://127.0.0.1:{port}/").parse().expect("url"),
        _child: child,
    }
}

/// A server with `agent` registered as the kind `helper`.
async fn lantern_for(agent: &PythonAgent) -> TestServer {
    let url = agent.url.clone();
    start_with(move |config| {
        config.agui_agents = vec![AguiAgent {
            name: "helper".into(),
            url,
        }];
    })
    .await
}

/// Start a `helper` workflow with `message`; its id.
async fn ask(server: &TestServer, message: &str) -> String {
    let (status, body) = server
        .post(
            "/api/workflows",
            json!({"kind": "helper", "input": {"message": message}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["title"], message);
    body["id"].as_str().expect("id").to_owned()
}

/// The events of one turn: up to the `waiting_input` that ends it.
async fn turn(viewer: &mut Client) -> Vec<Value> {
    tokio::time::timeout(
        WAIT * 3,
        viewer.events_until(|e| is_status(e, "waiting_input") || is_status(e, "failed")),
    )
    .await
    .expect("the turn ends")
}

/// The text of the turn's answer (its closing `agent_response`).
fn answer(events: &[Value]) -> String {
    events
        .iter()
        .rev()
        .find(|e| e["type"] == "agent_response")
        .and_then(|e| e["content"].as_str())
        .unwrap_or_else(|| panic!("an answer in {events:#?}"))
        .to_owned()
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect()
}

async fn say(server: &TestServer, id: &str, content: &str, client_msg_id: &str) {
    let (status, body) = server
        .post(
            &format!("/api/workflows/{id}/input"),
            json!({"content": content, "client_msg_id": client_msg_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_pydantic_ai_agent_runs_as_a_workflow_kind_with_tools_follow_ups_and_an_approval() {
    let agent = python_agent().await;
    let server = lantern_for(&agent).await;
    let id = ask(&server, "What is the weather in Paris?").await;
    let mut viewer = server.subscribe(&id, 0).await;

    // Waiting, the person's message, then the run: the agent starts, calls its tool (arguments
    // streamed in two pieces, logged once whole), and streams an answer quoting the result.
    let started = turn(&mut viewer).await;
    assert_eq!(types(&started), ["workflow_status"]);
    let first = turn(&mut viewer).await;
    let call = first
        .iter()
        .find(|e| e["type"] == "tool_executing")
        .expect("a tool call");
    assert_eq!(call["agent"], "helper");
    assert_eq!(call["tool"], "get_weather");
    assert_eq!(call["input"], json!({"city": "Paris"}));
    let done = first
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .expect("its result");
    assert_eq!(done["call_id"], call["call_id"]);
    assert_eq!(done["output"]["conditions"], "sunny");
    assert!(first.iter().filter(|e| e["type"] == "text_delta").count() > 1);
    assert!(answer(&first).contains("sunny"), "{}", answer(&first));
    assert_eq!(first[0]["type"], "user_input");
    assert!(types(&first).contains(&"agent_started"));

    // A follow-up is the next run on the same thread, sent the conversation so far: the agent
    // counts the person's messages in what it was sent.
    say(&server, &id, "thanks!", "m2").await;
    let second = turn(&mut viewer).await;
    assert_eq!(
        answer(&second),
        "You said: thanks! (message 2 of this conversation)"
    );

    // The agent asks before it acts: its tool call, then an approval card about it.
    say(&server, &id, "please approve the deploy", "m3").await;
    let third = turn(&mut viewer).await;
    let asked = third
        .iter()
        .find(|e| e["type"] == "interrupt")
        .expect("an interrupt");
    assert_eq!(asked["reason"], "tool_approval");
    let pending = third
        .iter()
        .find(|e| e["type"] == "tool_executing")
        .expect("the call it asks about");
    assert_eq!(asked["call_id"], pending["call_id"]);
    assert_eq!(pending["input"], json!({"action": "deploy to production"}));
    assert!(
        !types(&third).contains(&"agent_response"),
        "an empty message leaves no answer: {third:#?}"
    );

    // A person approves (over HTTP; a tab's resolve frame is the same): the answer goes back
    // as the next run's resume, and the agent runs the tool and says so.
    let interrupt_id = asked["interrupt_id"].as_str().expect("interrupt id");
    let (status, body) = server
        .post(
            &format!("/api/workflows/{id}/interrupts/{interrupt_id}"),
            json!({"status": "resolved", "payload": {"approved": true}, "client_msg_id": "ok-1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let fourth = turn(&mut viewer).await;
    let ran = fourth
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .expect("the approved tool ran");
    assert_eq!(ran["call_id"], pending["call_id"]);
    assert_eq!(ran["output"], "performed: deploy to production");
    assert!(answer(&fourth).starts_with("The user approved"));

    say(&server, &id, "done", "m4").await;
    let log = server.log(&id).await;
    assert_invariants(&log);
    let last = log.last().expect("events");
    assert!(is_status(last, "completed"), "{last}");
}

#[tokio::test]
async fn a_denied_approval_is_told_to_the_agent_and_the_tool_does_not_run() {
    let agent = python_agent().await;
    let server = lantern_for(&agent).await;
    let id = ask(&server, "approve the deploy").await;
    let mut viewer = server.subscribe(&id, 0).await;
    turn(&mut viewer).await;
    let asked = turn(&mut viewer).await;
    let asked = asked
        .iter()
        .find(|e| e["type"] == "interrupt")
        .expect("an interrupt");
    let interrupt_id = asked["interrupt_id"].as_str().expect("id");
    let (status, _) = server
        .post(
            &format!("/api/workflows/{id}/interrupts/{interrupt_id}"),
            json!({"status": "resolved", "payload": {"approved": false, "reason": "not today"},
                   "client_msg_id": "no-1"}),
        )
        .await;
    assert_eq!(status, 200);
    let after = turn(&mut viewer).await;
    assert!(
        answer(&after).starts_with("The action was denied"),
        "{after:#?}"
    );
    assert!(
        !after
            .iter()
            .any(|e| e["output"] == "performed: deploy to production"),
        "the tool did not run: {after:#?}"
    );
}
