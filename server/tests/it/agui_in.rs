//! AG-UI agents behind Lantern (`--agui-agent NAME=URL`, PROTOCOL.md §8 "In"), when the agent
//! misbehaves: down, answering an error, not streaming events, silent, breaking AG-UI's rules,
//! hanging up early, redirecting elsewhere — each fails the workflow with a `detail` that says
//! what happened and keeps what was logged — and a person's cancel closes the request.
//!
//! The agents here are small axum servers in the test, because no real framework misbehaves on
//! demand; a real AG-UI agent from PyPI runs in [`super::agui_agent`].

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use futures::StreamExt;
use serde_json::{json, Value};
use server::config::AguiAgent;

use crate::common::{is_status, start_with, TestServer, WAIT};

/// What the test agent answers: a status, a content type, and a body of SSE `data:` lines
/// (raw text, sent as is), optionally never ending.
#[derive(Clone)]
struct Script {
    status: u16,
    content_type: &'static str,
    lines: Vec<String>,
    hang: bool,
}

impl Script {
    fn events(events: Value, hang: bool) -> Self {
        let lines = events
            .as_array()
            .expect("array")
            .iter()
            .map(|e| format!("data: {e}\n\n"))
            .collect();
        Self {
            status: 200,
            content_type: "text/event-stream",
            lines,
            hang,
        }
    }
}

/// A test agent on an ephemeral port: what it was sent, and a signal when a hanging reply's
/// connection was closed by Lantern.
struct Upstream {
    url: url::Url,
    requests: Arc<Mutex<Vec<Value>>>,
    closed: tokio::sync::mpsc::UnboundedReceiver<()>,
}

/// Sends once when dropped: the reply body is dropped when its connection closes.
struct OnDrop(tokio::sync::mpsc::UnboundedSender<()>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

async fn upstream(script: Script) -> Upstream {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (closed_tx, closed) = tokio::sync::mpsc::unbounded_channel();
    let seen = requests.clone();
    let handler = move |body: String| {
        let script = script.clone();
        let seen = seen.clone();
        let closed_tx = closed_tx.clone();
        async move {
            seen.lock()
                .expect("lock")
                .push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
            let guard = OnDrop(closed_tx);
            let head = futures::stream::iter(script.lines.clone())
                .map(|line| Ok::<_, Infallible>(line.into_bytes()));
            let body = if script.hang {
                let tail = futures::stream::pending().map(move |()| {
                    let _keep = &guard;
                    Ok(Vec::new())
                });
                Body::from_stream(head.chain(tail))
            } else {
                drop(guard);
                Body::from_stream(head)
            };
            Response::builder()
                .status(script.status)
                .header("content-type", script.content_type)
                .header("location", "http://127.0.0.1:9/elsewhere")
                .body(body)
                .expect("response")
        }
    };
    let app = axum::Router::new().route("/agent", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    Upstream {
        url: format!("http://{addr}/agent").parse().expect("url"),
        requests,
        closed,
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
    let overloaded = upstream(Script {
        status: 503,
        content_type: "text/plain",
        lines: vec!["model overloaded, try later".into()],
        hang: false,
    })
    .await;
    let server = lantern_with(overloaded.url.clone(), 30).await;
    let detail = failure(&until_over(&server, &ask(&server, "hi").await).await);
    assert!(detail.contains("HTTP 503"), "{detail}");
    assert!(detail.contains("model overloaded"), "{detail}");

    let json = upstream(Script {
        status: 200,
        content_type: "application/json",
        lines: vec!["{}".into()],
        hang: false,
    })
    .await;
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
    let redirecting = upstream(Script {
        status: 307,
        content_type: "text/plain",
        lines: vec![],
        hang: false,
    })
    .await;
    let server = lantern_with(redirecting.url.clone(), 30).await;
    let detail = failure(&until_over(&server, &ask(&server, "hi").await).await);
    assert!(detail.contains("HTTP 307"), "{detail}");
}

#[tokio::test]
async fn a_malformed_stream_fails_the_workflow_and_what_came_before_stays_logged() {
    let agent = upstream(Script {
        lines: vec![
            format!(
                "data: {}\n\n",
                json!({"type": "RUN_STARTED", "threadId": "t", "runId": "r"})
            ),
            format!(
                "data: {}\n\n",
                json!({"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"})
            ),
            format!(
                "data: {}\n\n",
                json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "Half an "})
            ),
            "data: {this is not json\n\n".into(),
        ],
        ..Script::events(json!([]), false)
    })
    .await;
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
    let agent = upstream(Script::events(
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
    let agent = upstream(Script::events(
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
    let agent = upstream(Script::events(
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
    let mut agent = upstream(Script::events(
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
    let requests = agent.requests.lock().expect("lock").clone();
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
    let agent = upstream(Script::events(json!([]), false)).await;
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
    assert!(agent.requests.lock().expect("lock").is_empty());
}
