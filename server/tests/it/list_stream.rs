//! `GET /sse/workflows` (the home page's live list) against a real server: the whole list
//! first, then each creation and status change of the caller's own workflows — never anyone
//! else's — and the stream ends when the caller's token is revoked.

use crate::common::{sse::SseReader, start, TestServer};
use serde_json::{json, Value};
use server::auth::TokenKind;

/// The live list, read as Server-Sent Events.
struct EventStream(SseReader);

impl EventStream {
    async fn open(server: &TestServer, token: &str) -> Self {
        let response = server
            .request_as(reqwest::Method::GET, "/sse/workflows", Some(token))
            .send()
            .await
            .expect("GET /sse/workflows");
        Self(SseReader::new(response))
    }

    /// The next event (`event:` name, parsed `data:`), or `None` when the stream ended.
    async fn next(&mut self) -> Option<(String, Value)> {
        self.0.next().await.map(|(name, _, data)| (name, data))
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
