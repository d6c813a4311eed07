//! What the pages' server functions answer over real HTTP.

use crate::common;

use crate::common::start;
use serde_json::{json, Value};
use server::auth::TokenKind;

/// `POST /api/report_html` (a Leptos server function, form-encoded) as `token`.
async fn report_html(
    server: &common::TestServer,
    token: Option<&str>,
    id: &str,
    seq: u64,
) -> (u16, Value) {
    let response = server
        .request_as(reqwest::Method::POST, "/api/report_html", token)
        .form(&[("id", id), ("seq", &seq.to_string())])
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_report_is_rendered_by_the_server_safely_and_only_for_its_owner() {
    let server = start().await;
    // The test server's own user, whose agent token `publish` uses.
    let owner = server.mint("admin", TokenKind::User).await;
    let id = server.create("external").await;
    let id = id.as_str();
    let markdown = "# Findings\n\n**Resume** <script>alert(1)</script> [x](javascript:alert(1))";
    let seqs = server
        .publish(
            id,
            json!([
                { "type": "workflow_status", "status": "running" },
                { "type": "final_report", "content": markdown },
            ]),
        )
        .await;
    assert_eq!(seqs, vec![1, 2]);

    let (status, html) = report_html(&server, Some(&owner), id, 2).await;
    assert_eq!(status, 200, "{html}");
    let html = html.as_str().expect("the HTML, as a JSON string");
    assert!(html.contains("<h2>Findings</h2>"), "{html}");
    assert!(html.contains("<strong>Resume</strong>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "raw HTML is text: {html}");
    assert!(
        !html.contains("<script") && !html.contains("javascript:"),
        "{html}"
    );

    // Not a report, no such event, no such workflow: nothing to show.
    for (workflow, seq) in [(id, 1), (id, 3), (id, 0), ("wf_missing", 1)] {
        let (status, body) = report_html(&server, Some(&owner), workflow, seq).await;
        assert_eq!((status, &body), (200, &Value::Null), "{workflow} {seq}");
    }
    // Another user's workflow answers like a missing one; no credential is refused.
    let other = server.mint("someone-else", TokenKind::User).await;
    assert_eq!(
        report_html(&server, Some(&other), id, 2).await,
        (200, Value::Null)
    );
    let (status, body) = report_html(&server, None, id, 2).await;
    assert_eq!(status, 401, "{body}");
}

/// `POST /api/cancel_workflow` as `token`.
async fn cancel(server: &common::TestServer, token: Option<&str>, id: &str) -> (u16, String) {
    let response = server
        .request_as(reqwest::Method::POST, "/api/cancel_workflow", token)
        .form(&[("id", id)])
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A refused call answers with the status the API would give, not as a server error: signed
/// out 401, someone else's or no such workflow 404, already finished 409.
#[tokio::test]
async fn a_refused_server_function_answers_with_the_reason_not_500() {
    let server = start().await;
    let owner = server.mint("admin", TokenKind::User).await;
    let other = server.mint("someone-else", TokenKind::User).await;
    let id = server.create("external").await;
    let id = id.as_str();

    let (status, body) = cancel(&server, None, id).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("sign in first"), "{body}");
    assert_eq!(cancel(&server, Some(&other), id).await.0, 404);
    assert_eq!(cancel(&server, Some(&owner), "wf_missing").await.0, 404);

    let (status, body) = cancel(&server, Some(&owner), id).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = cancel(&server, Some(&owner), id).await;
    assert_eq!(status, 409, "already cancelled: {body}");
}
