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

/// A page signed in with the admin's session.
async fn page(server: &common::TestServer, path: &str) -> reqwest::Response {
    let cookie = common::session_cookie(server).await;
    server
        .request_as(reqwest::Method::GET, path, None)
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET")
}

#[tokio::test]
async fn pages_carry_security_headers_and_a_policy_naming_their_scripts_nonce() {
    let server = start().await;
    let home = page(&server, "/").await;
    assert_eq!(home.status().as_u16(), 200);
    let header = |name: &str| {
        home.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "same-origin");
    assert_eq!(
        header("cache-control"),
        "no-store",
        "a page with data is not stored"
    );
    let policy = header("content-security-policy");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the policy")
        .to_owned();
    let html = home.text().await.expect("html");
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the page's inline script carries the policy's nonce"
    );
    // Every inline script carries it: none would run without.
    let inline_scripts = html.matches("<script").count();
    let with_nonce = html.matches(&format!("nonce=\"{nonce}\"")).count();
    assert!(with_nonce >= inline_scripts.saturating_sub(html.matches("<script src").count()));
    // Another page gets another nonce; the API is not stored either.
    let again = page(&server, "/").await;
    let other = again.headers()["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(!other.contains(&nonce));
    let api = server
        .http
        .get(server.url("/api/workflows"))
        .send()
        .await
        .expect("GET");
    assert_eq!(api.headers()["cache-control"], "no-store");
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn a_page_that_is_not_there_answers_404() {
    let server = start().await;
    assert_eq!(page(&server, "/no/such/page").await.status().as_u16(), 404);
    let missing = page(&server, "/w/wf_missing").await;
    assert_eq!(missing.status().as_u16(), 404);
    assert!(missing
        .text()
        .await
        .expect("html")
        .contains("Workflow not found."));
}

#[tokio::test]
async fn the_home_page_shows_only_words_of_its_own_for_a_failed_start() {
    let server = start().await;
    let crafted = "Your+account+is+locked.+Call+555-0100+now";
    let html = page(&server, &format!("/?__err={crafted}&start_error={crafted}"))
        .await
        .text()
        .await
        .expect("html");
    assert!(!html.contains("555-0100"), "a link's text is never shown");
    let html = page(&server, "/?start_error=rate_limited")
        .await
        .text()
        .await
        .expect("html");
    assert!(html.contains("Too many workflows"), "{html}");
}

#[tokio::test]
async fn a_start_form_that_fails_comes_back_home_with_the_code_alone() {
    let server = crate::common::start_with(|c| c.max_open_workflows = 1).await;
    server.create("external").await;
    let cookie = common::session_cookie(&server).await;
    let posted = server
        .request_as(reqwest::Method::POST, "/api/start_echo", None)
        .header("cookie", &cookie)
        .header("accept", "text/html")
        .send()
        .await
        .expect("POST");
    assert_eq!(posted.status().as_u16(), 302);
    let location = posted.headers()["location"].to_str().expect("ascii");
    assert_eq!(location, "/?start_error=rate_limited");
}

#[tokio::test]
async fn an_oversized_form_is_413_not_a_server_error() {
    let server = start().await;
    let big = "x".repeat(200 * 1024);
    let response = server
        .request_as(reqwest::Method::POST, "/api/start_search", None)
        .bearer_auth(&server.token)
        .form(&[("query", big.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_large");
}

#[tokio::test]
async fn the_test_hook_answers_only_a_signed_in_user() {
    let server = start().await;
    let anonymous = server
        .request_as(reqwest::Method::POST, "/api/test/disconnect", None)
        .send()
        .await
        .expect("POST");
    assert_eq!(anonymous.status().as_u16(), 401);
    let (status, _) = server.post("/api/test/disconnect", json!({})).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn without_a_model_the_home_page_says_how_to_get_the_assistant_and_offers_no_button() {
    let server = common::start().await;
    let html = page(&server, "/").await.text().await.expect("html");
    assert!(html.contains("data-testid=\"assistant-hint\""), "{html}");
    assert!(html.contains("--llm-base-url"));
    assert!(
        !html.contains("data-testid=\"start-agent\""),
        "no Ask form without agents"
    );

    let agents = common::start_with(|c| {
        c.agui_agents = vec![server::config::AguiAgent {
            name: "helper".into(),
            url: "http://127.0.0.1:9/".parse().expect("url"),
        }];
    })
    .await;
    let html = page(&agents, "/").await.text().await.expect("html");
    assert!(html.contains("<option value=\"helper\">helper"), "{html}");
    assert!(html.contains("data-testid=\"assistant-hint\""));
}
