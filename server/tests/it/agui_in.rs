//! AG-UI agents behind Lantern (`--agui-agent NAME=URL`, PROTOCOL.md §8 "In"), when the agent
//! misbehaves: down, answering an error, not streaming events, silent, breaking AG-UI's rules,
//! hanging up early, redirecting elsewhere — each fails the workflow with a `detail` that says
//! what happened and keeps what was logged — and a person's cancel closes the request.
//!
//! The agents here are small axum servers in the test, because no real framework misbehaves on
//! demand; a real AG-UI agent from PyPI runs in [`super::agui_agent`].

use std::time::Duration;

use serde_json::{json, Value};
use server::config::AguiAgent;

use crate::common::upstream::{Canned, Upstream};
use crate::common::{is_status, start_with, TestServer, WAIT};

/// A test agent that answers every run with `reply`.
async fn upstream(reply: Canned) -> Upstream {
    Upstream::start("/agent", vec![], Some(reply)).await
}

/// An event stream of these AG-UI events; `hang`: it never ends.
fn agui_stream(events: Value, hang: bool) -> Canned {
    let data = events
        .as_array()
        .expect("array")
        .iter()
        .map(Value::to_string);
    Canned {
        hang,
        ..Canned::sse(data.collect::<Vec<_>>())
    }
}

async fn lantern_with(url: url::Url, timeout_secs: u64) -> TestServer {
    start_with(move |config| {
        config.agui_agents = vec![AguiAgent {
            name: "helper".into(),
            url,
        }];
        config.agui_timeout_secs = timeout_secs;
    })
    .await
}

/// Start a `helper` workflow with `message`; returns its id.
async fn ask(server: &TestServer, message: &str) -> String {
    let (status, body) = server
        .post(
            "/api/workflows",
            json!({"kind": "helper", "input": {"message": message}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

/// The workflow's events up to its terminal status.
async fn until_over(server: &TestServer, id: &str) -> Vec<Value> {
    let mut viewer = server.subscribe(id, 0).await;
    tokio::time::timeout(
        WAIT,
        viewer.events_until(|e| {
            e["type"] == "workflow_status"
                && ["failed", "completed", "cancelled"]
                    .contains(&e["status"].as_str().unwrap_or(""))
        }),
    )
    .await
    .expect("the workflow ends")
}

/// The `detail` of the failed status that ends `events`.
fn failure(events: &[Value]) -> String {
    let last = events.last().expect("events");
    assert!(is_status(last, "failed"), "{last}");
    last["detail"].as_str().expect("detail").to_owned()
}

#[tokio::test]
async fn an_agent_that_is_down_fails_the_workflow_naming_the_agent_and_why() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url: url::Url = format!("http://127.0.0.1:{port}/agent")
        .parse()
        .expect("url");
    let server = lantern_with(url, 30).await;
    let id = ask(&server, "hello?").await;
    let detail = failure(&until_over(&server, &id).await);
    assert!(detail.contains("helper"), "{detail}");
    assert!(detail.contains("could not be reached"), "{detail}");
    assert!(detail.to_lowercase().contains("refused"), "{detail}");
}

#[tokio::test]
async fn an_error_status_or_a_reply_that_is_not_an_event_stream_fails_with_what_it_said() {
    let overloaded = upstream(Canned::plain(
        503,
        "text/plain",
        "model overloaded, try later",
    ))
    .await;
    let server = lantern_with(overloaded.url.clone(), 30).await;
    let detail = failure(&until_over(&server, &ask(&server, "hi").await).await);
    assert!(detail.contains("HTTP 503"), "{detail}");
    assert!(detail.contains("model overloaded"), "{detail}");

    let json = upstream(Canned::plain(200, "application/json", "{}")).await;
    let server = lantern_with(json.url.clone(), 30).await;
    let detail = failure(&until_over(&server, &ask(&server, "hi").await).await);
    assert!(
        detail.contains("did not answer with an event stream"),
        "{detail}"
    );
    assert!(detail.contains("application/json"), "{detail}");
}

#[tokio::test]
async fn a_redirect_is_not_followed_only_the_registered_url_is_called() {
    let mut redirect = Canned::plain(307, "text/plain", "");
    redirect
        .headers
        .push(("location", "http://127.0.0.1:9/elsewhere".into()));
    let redirecting = upstream(redirect).await;
    let server = lantern_with(redirecting.url.clone(), 30).await;
    let detail = failure(&until_over(&server, &ask(&server, "hi").await).await);
    assert!(detail.contains("HTTP 307"), "{detail}");
}

#[tokio::test]
async fn a_malformed_stream_fails_the_workflow_and_what_came_before_stays_logged() {
    let mut half = agui_stream(
        json!([
            {"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
            {"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
            {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "Half an "}
        ]),
        false,
    );
    half.body.push("data: {this is not json\n\n".into());
    let agent = upstream(half).await;
    let server = lantern_with(agent.url.clone(), 30).await;
    let id = ask(&server, "hi").await;
    let events = until_over(&server, &id).await;
    let detail = failure(&events);
    assert!(detail.contains("malformed AG-UI stream"), "{detail}");
    assert!(detail.contains("{this is not json"), "{detail}");
    let log = server.log(&id).await;
    crate::common::assert_invariants(&log);
    let answer = log
        .iter()
        .find(|e| e["type"] == "agent_response")
        .expect("the open message was closed");
    assert_eq!(answer["content"], "Half an ", "{answer}");

    // A content event for a message never started breaks AG-UI's rules in the same way.
    let agent = upstream(agui_stream(
        json!([{"type": "TEXT_MESSAGE_CONTENT", "messageId": "ghost", "delta": "x"}]),
        false,
    ))
    .await;
    let server = lantern_with(agent.url.clone(), 30).await;
    let detail = failure(&until_over(&server, &ask(&server, "hi").await).await);
    assert!(
        detail.contains("\"ghost\", which was never started"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_stream_that_ends_before_its_run_finished_fails_saying_so() {
    let agent = upstream(agui_stream(
        json!([{"type": "RUN_STARTED", "threadId": "t", "runId": "r"}]),
        false,
    ))
    .await;
    let server = lantern_with(agent.url.clone(), 30).await;
    let detail = failure(&until_over(&server, &ask(&server, "hi").await).await);
    assert!(
        detail.contains("closed its stream before the run finished"),
        "{detail}"
    );
}

#[tokio::test]
async fn an_agent_silent_past_the_timeout_fails_the_workflow() {
    let agent = upstream(agui_stream(
        json!([{"type": "RUN_STARTED", "threadId": "t", "runId": "r"}]),
        true,
    ))
    .await;
    let server = lantern_with(agent.url.clone(), 1).await;
    let events = until_over(&server, &ask(&server, "hi").await).await;
    let detail = failure(&events);
    assert!(detail.contains("sent nothing for 1 s"), "{detail}");
    // RUN_STARTED was logged (as the agent starting) before the silence.
    assert!(events.iter().any(|e| e["type"] == "agent_started"));
}

#[tokio::test]
async fn cancel_closes_the_request_to_the_agent_at_once() {
    let mut agent = upstream(agui_stream(
        json!([
            {"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
            {"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
            {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "Thinking about"}
        ]),
        true,
    ))
    .await;
    let server = lantern_with(agent.url.clone(), 30).await;
    let id = ask(&server, "a long question").await;
    let mut viewer = server.subscribe(&id, 0).await;
    tokio::time::timeout(WAIT, viewer.events_until(|e| e["type"] == "text_delta"))
        .await
        .expect("the agent's text arrives");

    let (status, body) = server
        .post(&format!("/api/workflows/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::timeout(Duration::from_secs(1), agent.closed.recv())
        .await
        .expect("the request to the agent is closed within 1 s of the cancel");

    // What the agent was sent: one run on the workflow's thread, the person's message in it.
    let requests = agent.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let input = &requests[0];
    assert_eq!(input["threadId"], id.as_str());
    assert_eq!(input["messages"][0]["role"], "user");
    assert_eq!(input["messages"][0]["content"], "a long question");
    let log = server.log(&id).await;
    crate::common::assert_invariants(&log);
    assert!(is_status(log.last().expect("events"), "cancelled"));
}

#[tokio::test]
async fn a_kind_that_is_neither_built_in_nor_registered_is_refused_naming_the_known_ones() {
    let agent = upstream(agui_stream(json!([]), false)).await;
    let server = lantern_with(agent.url.clone(), 30).await;
    let (status, body) = server
        .post(
            "/api/workflows",
            json!({"kind": "nobody", "input": {"message": "hi"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("helper"), "{body}");
    assert!(agent.requests().is_empty());
}
