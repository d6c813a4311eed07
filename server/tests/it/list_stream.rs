//! `GET /sse/workflows` (the home page's live list) against a real server: the whole list
//! first, then each creation and status change of the caller's own workflows — never anyone
//! else's — and the stream ends when the caller's token is revoked.

use crate::common::{start, TestServer, WAIT};
use serde_json::{json, Value};
use server::auth::TokenKind;

/// A Server-Sent Events reader over a real HTTP response.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(server: &TestServer, token: &str) -> Self {
        let response = server
            .request_as(reqwest::Method::GET, "/sse/workflows", Some(token))
            .send()
            .await
            .expect("GET /sse/workflows");
        assert_eq!(response.status(), 200);
        let kind = response.headers()["content-type"].to_str().expect("ascii");
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (`event:` name, parsed `data:`), or `None` when the stream ended.
    /// Keep-alive comments are skipped. Fails the test after [`WAIT`].
    async fn next(&mut self) -> Option<(String, Value)> {
        tokio::time::timeout(WAIT, self.read_event())
            .await
            .expect("an event or the end of the stream in time")
    }

    async fn read_event(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if name.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, serde_json::from_str(&data).expect("JSON data")));
            }
            let chunk = self.response.chunk().await.expect("read")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// Read `workflow` events until one for `id` has `status`; every one seen must be in
    /// `allowed` (ids of the reader's own workflows).
    async fn until_status(&mut self, id: &str, status: &str, allowed: &[&str]) {
        loop {
            let (name, data) = self.next().await.expect("the stream goes on");
            assert_eq!(name, "workflow", "{data}");
            let seen = data["id"].as_str().expect("id");
            assert!(
                allowed.contains(&seen),
                "someone else's workflow {seen} was sent"
            );
            if seen == id && data["status"] == status {
                return;
            }
        }
    }
}

#[tokio::test]
async fn the_list_comes_first_then_creations_and_status_changes_of_own_workflows_only() {
    let server = start().await;
    let before = server.create("external").await;
    let mut stream = EventStream::open(&server, &server.token).await;

    let (name, list) = stream.next().await.expect("the list");
    assert_eq!(name, "list");
    let ids: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|w| w["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [before.as_str()]);

    let created = server.create("external").await;
    let own = [before.as_str(), created.as_str()];
    stream.until_status(&created, "pending", &own).await;
    server
        .publish(
            &created,
            json!({"type": "workflow_status", "status": "running"}),
        )
        .await;
    stream.until_status(&created, "running", &own).await;

    // Someone else's workflow changes: nothing of it reaches this stream; the next change
    // of our own does.
    let bob = server.mint("bob", TokenKind::User).await;
    let (status, body) = server
        .post_as(Some(&bob), "/api/workflows", json!({"kind": "external"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let bob_agent = server.mint("bob", TokenKind::Agent).await;
    let bobs = body["id"].as_str().expect("id").to_owned();
    let (status, _) = server
        .post_as(
            Some(&bob_agent),
            &format!("/api/workflows/{bobs}/events"),
            json!({"type": "workflow_status", "status": "running"}),
        )
        .await;
    assert_eq!(status, 200);
    server
        .publish(
            &before,
            json!({"type": "workflow_status", "status": "completed"}),
        )
        .await;
    stream.until_status(&before, "completed", &own).await;
}

#[tokio::test]
async fn the_stream_needs_a_user_token_and_ends_when_it_is_revoked() {
    let server = start().await;
    let (status, _) = server.get_as(None, "/sse/workflows").await;
    assert_eq!(status, 401);
    let (status, _) = server
        .get_as(Some(&server.agent_token), "/sse/workflows")
        .await;
    assert_eq!(status, 403);

    let carol = server.mint("carol", TokenKind::User).await;
    let mut stream = EventStream::open(&server, &carol).await;
    let (name, list) = stream.next().await.expect("the list");
    assert_eq!((name.as_str(), list), ("list", json!([])));
    let accounts = server.accounts.clone().expect("in-process server");
    assert!(accounts.revoke(&carol).await.expect("revoke"));
    assert_eq!(stream.next().await, None, "the stream ends on revocation");
}
