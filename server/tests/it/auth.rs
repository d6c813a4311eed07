//! Users, tokens and sessions (PROTOCOL.md §2, §3, §5, §6), over real HTTP and real sockets
//! against a real server: who may read, subscribe, publish and list what, and how revoked,
//! missing, wrong and expired credentials are answered.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::{lantern_cli, spawn_binary, start, start_with, Client, Ended, TestServer};
use reqwest::{header, Method};
use serde_json::{json, Value};
use server::auth::TokenKind;

/// A well-formed token that no server ever issued.
const UNKNOWN_TOKEN: &str =
    "lantern_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000";

/// Connect to a socket by hand (the upgrade must succeed).
async fn connect(server: &TestServer, path: &str, token: Option<&str>) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_request(path, token))
        .await
        .expect("upgrade");
    Client { ws }
}

#[tokio::test]
async fn no_token_or_a_wrong_one_is_401_and_healthz_needs_none() {
    let server = start().await;
    let id = server.create("external").await;
    for token in [None, Some(UNKNOWN_TOKEN), Some("not-a-token")] {
        for path in ["/api/workflows".to_owned(), format!("/api/workflows/{id}")] {
            let (status, body) = server.get_as(token, &path).await;
            assert_eq!(status, 401, "{path} as {token:?}: {body}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
        let (status, _) = server
            .post_as(token, "/api/workflows", json!({ "kind": "external" }))
            .await;
        assert_eq!(status, 401);
        let socket = format!("/ws/workflow/{id}");
        assert_eq!(server.refused_upgrade_as(token, &socket).await, 401);
    }
    let (status, _) = server.get_as(None, "/healthz").await;
    assert_eq!(status, 200);
    // `?token=` works where a header cannot be set (a browser's WebSocket, a quick curl).
    let (status, _) = server
        .get_as(None, &format!("/api/workflows/{id}?token={}", server.token))
        .await;
    assert_eq!(status, 200);
    let path = format!("/ws/workflow/{id}?token={}", server.token);
    let mut client = connect(&server, &path, None).await;
    assert_eq!(client.next_json().await["type"], "hello");
}

/// The body of a 404 with the workflow id taken out, to compare two answers.
fn without_id(body: &Value, id: &str) -> String {
    body.to_string().replace(id, "ID")
}

#[tokio::test]
async fn another_users_workflow_answers_exactly_like_a_missing_one() {
    let server = start().await;
    let alice = server.mint("alice", TokenKind::User).await;
    let bob = server.mint("bob", TokenKind::User).await;
    let bob_agent = server.mint("bob", TokenKind::Agent).await;
    let alice_agent = server.mint("alice", TokenKind::Agent).await;
    let (status, created) = server
        .post_as(
            Some(&alice),
            "/api/workflows",
            json!({ "kind": "external" }),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id").to_owned();
    let missing = "wf_01JDOESNOTEXIST0000000000";

    // Bob: every read, write and socket on Alice's workflow looks like a missing workflow.
    for (method, suffix, body) in [
        (Method::GET, "", None),
        (Method::GET, "/events", None),
        (
            Method::POST,
            "/input",
            Some(json!({ "content": "hi", "client_msg_id": "m" })),
        ),
        (Method::POST, "/cancel", Some(json!({}))),
    ] {
        let mut answers = Vec::new();
        for target in [id.as_str(), missing] {
            let path = format!("/api/workflows/{target}{suffix}");
            let mut request = server.request_as(method.clone(), &path, Some(&bob));
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json");
            answers.push((status, without_id(&body, target)));
        }
        assert_eq!(answers[0], answers[1], "{method} {suffix}");
        assert_eq!(answers[0].0, 404, "{method} {suffix}");
    }
    let event = json!({ "type": "agent_started", "agent": "a" });
    let (status, body) = server
        .post_as(
            Some(&bob_agent),
            &format!("/api/workflows/{id}/events"),
            event.clone(),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    assert_eq!(
        server
            .refused_upgrade_as(Some(&bob), &format!("/ws/workflow/{id}"))
            .await,
        404
    );
    assert_eq!(
        server
            .refused_upgrade_as(Some(&bob), &format!("/ws/workflow/{missing}"))
            .await,
        404
    );
    let (_, list) = server.get_as(Some(&bob), "/api/workflows").await;
    assert_eq!(list, json!({ "workflows": [] }));

    // Alice sees it, and her agent may publish to it; nothing Bob tried was appended.
    let (_, list) = server.get_as(Some(&alice), "/api/workflows").await;
    assert_eq!(list["workflows"][0]["id"], id.as_str());
    let (status, body) = server
        .post_as(
            Some(&alice_agent),
            &format!("/api/workflows/{id}/events"),
            event,
        )
        .await;
    assert_eq!((status, body), (200, json!({ "seqs": [1] })));
    let mut client = server.subscribe_as(&alice, &id, 0).await;
    let (_, events) = client.hello_and_backlog().await;
    assert_eq!(events.len(), 1);
    // And admin, who made none, sees none of Alice's.
    let (_, list) = server.get("/api/workflows").await;
    assert!(!list.to_string().contains(&id));
}

#[tokio::test]
async fn a_token_of_the_wrong_kind_is_403() {
    let server = start().await;
    let id = server.create("external").await;
    let agent = server.agent_token.clone();
    for (status, body) in [
        server.get_as(Some(&agent), "/api/workflows").await,
        server
            .get_as(Some(&agent), &format!("/api/workflows/{id}"))
            .await,
        server
            .get_as(Some(&agent), &format!("/api/workflows/{id}/events"))
            .await,
        server
            .post_as(
                Some(&agent),
                "/api/workflows",
                json!({ "kind": "external" }),
            )
            .await,
        server
            .post_as(
                Some(&agent),
                &format!("/api/workflows/{id}/input"),
                json!({ "content": "x", "client_msg_id": "m" }),
            )
            .await,
    ] {
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    assert_eq!(
        server
            .refused_upgrade_as(Some(&agent), &format!("/ws/workflow/{id}"))
            .await,
        403
    );
    let page = server
        .request_as(Method::GET, "/", Some(&agent))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 403);
    // A user token may not publish as an agent.
    let (status, body) = server
        .post_as(
            Some(&server.token),
            &format!("/api/workflows/{id}/events"),
            json!({ "type": "agent_started", "agent": "a" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("forbidden"))
    );
}

#[tokio::test]
async fn revoking_a_token_closes_its_sockets_with_4001_within_a_second() {
    let data = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let process = spawn_binary(data.clone(), &[]).await;
    let server = &process.server;
    let dir = data.path().to_str().expect("path");
    let carol = lantern_cli(&["token", "create", "--user", "carol", "--data-dir", dir])
        .await
        .expect("token create");
    let (status, created) = server
        .post_as(
            Some(&carol),
            "/api/workflows",
            json!({ "kind": "external" }),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id").to_owned();
    let mut revoked = server.subscribe_as(&carol, &id, 0).await;
    revoked.hello_and_backlog().await;
    // Another user's socket on the same server is not touched.
    let mut other = server.subscribe(&server.create("external").await, 0).await;
    other.hello_and_backlog().await;

    // Revoked by another process, as an operator would.
    lantern_cli(&["token", "revoke", &carol, "--data-dir", dir])
        .await
        .expect("revoke");
    let revoked_at = Instant::now();
    let (ended, _) = revoked.until_end().await;
    assert_eq!(ended, Ended::Closed(4001));
    let took = revoked_at.elapsed();
    assert!(took < Duration::from_secs(1), "closed after {took:?}");

    let (status, _) = server.get_as(Some(&carol), "/api/workflows").await;
    assert_eq!(status, 401);
    assert_eq!(
        server
            .refused_upgrade_as(Some(&carol), &format!("/ws/workflow/{id}"))
            .await,
        401
    );
    // Revoking again is an error; the other socket still answers.
    assert!(lantern_cli(&["token", "revoke", &carol, "--data-dir", dir])
        .await
        .is_err());
    other
        .send_json(json!({ "type": "heartbeat", "correlation_id": "still-here" }))
        .await;
    assert_eq!(other.next_json().await["type"], "heartbeat_response");
    let list = lantern_cli(&["token", "list", "--data-dir", dir]).await;
    assert!(list.is_ok());
}

/// The `lantern_session` cookie a response sets, with its attributes.
fn set_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a Set-Cookie header")
        .to_owned()
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

/// `name=value` of a Set-Cookie line, to send back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("pair").to_owned()
}

async fn get_with_cookie(server: &TestServer, path: &str, cookie: &str) -> reqwest::Response {
    server
        .request_as(Method::GET, path, None)
        .header(header::COOKIE, cookie)
        .send()
        .await
        .expect("GET")
}

#[tokio::test]
async fn the_login_link_sets_a_strict_http_only_cookie_that_opens_pages_and_sockets() {
    let server = start().await;
    // Signed out: pages send the browser to the login page, which itself is open.
    let home = server
        .request_as(Method::GET, "/w/wf_X?a=1", None)
        .send()
        .await
        .expect("get");
    assert_eq!(home.status().as_u16(), 303);
    assert_eq!(location(&home), "/login?next=%2Fw%2Fwf_X%3Fa%3D1");
    let login_page = server
        .request_as(Method::GET, "/login", None)
        .send()
        .await
        .expect("get");
    assert_eq!(login_page.status().as_u16(), 200);
    assert!(login_page
        .text()
        .await
        .expect("html")
        .contains("Sign in to Lantern"));

    // A login link (a one-time code, not the token).
    let link = format!("/login?code={}", server.login_code("admin").await);
    let response = server
        .request_as(Method::GET, &link, None)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), "/");
    let again = server
        .request_as(Method::GET, &link, None)
        .send()
        .await
        .expect("get");
    assert_eq!(location(&again), "/login?error=link", "a link works once");
    assert!(again.headers().get(header::SET_COOKIE).is_none());
    let set = set_cookie(&response);
    for attribute in [
        "lantern_session=lantern_",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(
        !set.contains(&server.token),
        "the cookie is a session, not the token"
    );
    let cookie = cookie_pair(&set);

    let home = get_with_cookie(&server, "/", &cookie).await;
    assert_eq!(home.status().as_u16(), 200);
    let html = home.text().await.expect("html");
    assert!(html.contains("Start an echo workflow"), "{html}");
    assert!(html.contains("admin"), "the page names the signed-in user");
    // The cookie also opens the API and a socket (from the server's own page origin).
    let (status, _) = {
        let response = get_with_cookie(&server, "/api/workflows", &cookie).await;
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 200);
    let id = server.create("external").await;
    let mut request = server.ws_request(&format!("/ws/workflow/{id}"), None);
    request
        .headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    let origin = format!("http://{}", server.addr);
    request
        .headers_mut()
        .insert("origin", origin.parse().expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    let mut socket = Client { ws };
    socket.hello_and_backlog().await;

    // Signing out ends the session: its socket closes (4001), the cookie no longer works.
    let out = server
        .request_as(Method::POST, "/logout", None)
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status().as_u16(), 303);
    assert_eq!(location(&out), "/login");
    assert!(set_cookie(&out).contains("Max-Age=0"));
    assert_eq!(socket.until_end().await.0, Ended::Closed(4001));
    let again = get_with_cookie(&server, "/", &cookie).await;
    assert_eq!(again.status().as_u16(), 303);
    assert!(
        set_cookie(&again).contains("Max-Age=0"),
        "a dead cookie is cleared"
    );
    let api = get_with_cookie(&server, "/api/workflows", &cookie).await;
    assert_eq!(api.status().as_u16(), 401);
}

#[tokio::test]
async fn the_login_form_accepts_a_pasted_token_and_refuses_others() {
    let server = start().await;
    let agent = server.agent_token.clone();
    for (token, to) in [
        (UNKNOWN_TOKEN, "/login?error=invalid"),
        ("garbage", "/login?error=invalid"),
        (agent.as_str(), "/login?error=agent"),
    ] {
        let response = server
            .request_as(Method::POST, "/login", None)
            .form(&[("token", token), ("next", "/")])
            .send()
            .await
            .expect("post");
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(location(&response), to);
        assert!(response.headers().get(header::SET_COOKIE).is_none());
    }
    let response = server
        .request_as(Method::POST, "/login", None)
        .form(&[
            ("token", server.token.as_str()),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), "/", "never redirected off-site");
    let cookie = cookie_pair(&set_cookie(&response));
    assert_eq!(
        get_with_cookie(&server, "/", &cookie)
            .await
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn an_expired_or_invalid_session_cookie_is_refused() {
    let server = start().await;
    let response = server
        .request_as(Method::POST, "/login", None)
        .form(&[("token", server.token.as_str())])
        .send()
        .await
        .expect("post");
    let cookie = cookie_pair(&set_cookie(&response));
    assert_eq!(
        get_with_cookie(&server, "/", &cookie)
            .await
            .status()
            .as_u16(),
        200
    );

    // Expire it in the real database file.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        server.data.path().join("lantern.db").display()
    ))
    .await
    .expect("open db");
    sqlx::query("UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z'")
        .execute(&db)
        .await
        .expect("expire");
    assert_eq!(
        get_with_cookie(&server, "/", &cookie)
            .await
            .status()
            .as_u16(),
        303
    );
    assert_eq!(
        get_with_cookie(&server, "/api/workflows", &cookie)
            .await
            .status()
            .as_u16(),
        401
    );
    // A forged session (right shape, wrong secret) and garbage are refused alike.
    let forged = format!("lantern_session={UNKNOWN_TOKEN}");
    for bad in [forged.as_str(), "lantern_session=garbage"] {
        assert_eq!(
            get_with_cookie(&server, "/", bad).await.status().as_u16(),
            303
        );
        assert_eq!(
            get_with_cookie(&server, "/api/workflows", bad)
                .await
                .status()
                .as_u16(),
            401
        );
    }
}

#[tokio::test]
async fn open_sockets_per_user_are_limited_with_429() {
    let server = start_with(|c| {
        c.max_conns_per_user = 2;
        c.conn_attempts_per_ip = 0;
    })
    .await;
    let id = server.create("external").await;
    let _first = server.subscribe(&id, 0).await;
    let _second = server.subscribe(&id, 0).await;
    assert_eq!(
        server.refused_upgrade(&format!("/ws/workflow/{id}")).await,
        429
    );
    // Another user on the same address is not affected.
    let dave = server.mint("dave", TokenKind::User).await;
    let (_, created) = server
        .post_as(Some(&dave), "/api/workflows", json!({ "kind": "external" }))
        .await;
    let theirs = created["id"].as_str().expect("id");
    server
        .subscribe_as(&dave, theirs, 0)
        .await
        .hello_and_backlog()
        .await;
}

#[tokio::test]
async fn an_ingest_body_over_the_agent_frame_limit_is_413() {
    let server = start_with(|c| c.agent_frame_bytes = 4096).await;
    let id = server.create("external").await;
    let big = json!({ "type": "agent_thinking", "agent": "a", "content": "x".repeat(5000) });
    let (status, body) = server.ingest(&id, big).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (413, json!("too_large"))
    );
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["last_seq"], 0);
}

#[tokio::test]
async fn first_start_prints_one_login_url_and_later_starts_none() {
    let data = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let first = spawn_binary(data.clone(), &[]).await;
    // The printed link signs a browser in, once.
    let link = format!(
        "/login?code={}",
        first.server.printed_code.clone().expect("a code")
    );
    let response = first
        .server
        .request_as(Method::GET, &link, None)
        .send()
        .await
        .expect("get");
    assert_eq!(location(&response), "/");
    assert!(set_cookie(&response).contains("lantern_session="));
    drop(first);
    let dir = data.path().to_str().expect("path");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir", dir])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::time::timeout(
        common::WAIT,
        tokio::io::BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("a line in time")
    .expect("read")
    .expect("a line");
    assert!(
        line.starts_with("Lantern is running: open http://"),
        "{line}"
    );
    assert!(
        !line.contains("code=") && !line.contains("token="),
        "a second start creates no user: {line}"
    );
    let users = lantern_cli(&["token", "list", "--data-dir", dir])
        .await
        .expect("list");
    assert!(users.contains("admin"), "{users}");
}

/// Start the binary with `args` on a fresh data dir; returns what it logged (stderr) by the
/// time it printed its URL, and that URL line.
async fn startup_output(args: &[&str]) -> (String, String) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(["serve", "--data-dir"])
        .arg(data.path())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let url = tokio::time::timeout(
        common::WAIT,
        tokio::io::BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("a line in time")
    .expect("read")
    .expect("a line");
    child.kill().await.expect("kill");
    let mut logged = String::new();
    let mut stderr = child.stderr.take().expect("stderr");
    stderr.read_to_string(&mut logged).await.expect("stderr");
    (logged, url)
}

#[tokio::test]
async fn listening_beyond_loopback_without_tls_warns() {
    let (logged, url) = startup_output(&["--addr", "0.0.0.0:0"]).await;
    assert!(logged.contains("plain HTTP"), "{logged}");
    // The printed URL is one a browser on this machine can open.
    assert!(url.contains("http://127.0.0.1:"), "{url}");

    let (logged, _) = startup_output(&["--addr", "127.0.0.1:0"]).await;
    assert!(!logged.contains("plain HTTP"), "{logged}");
    let (logged, url) = startup_output(&[
        "--addr",
        "0.0.0.0:0",
        "--public-url",
        "https://lantern.example.com",
    ])
    .await;
    assert!(!logged.contains("plain HTTP"), "{logged}");
    assert!(
        url.contains("open https://lantern.example.com/login?code=lantern_"),
        "{url}"
    );
}

#[tokio::test]
async fn a_login_link_from_another_site_asks_before_signing_in() {
    let server = start().await;
    let code = server.login_code("admin").await;
    let followed = server
        .request_as(
            Method::GET,
            &format!("/login?code={code}&next=/w/wf_1"),
            None,
        )
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("get");
    assert_eq!(followed.status().as_u16(), 200);
    assert!(
        followed.headers().get(header::SET_COOKIE).is_none(),
        "not signed in yet"
    );
    let page = followed.text().await.expect("html");
    assert!(
        page.contains("Sign in as admin") && page.contains("action=\"/login\""),
        "{page}"
    );
    // The page's own form (same origin) signs in, once, and goes on to `next`.
    let origin = format!("http://{}", server.addr);
    let confirmed = server
        .request_as(Method::POST, "/login", None)
        .header("origin", &origin)
        .form(&[("code", code.as_str()), ("next", "/w/wf_1")])
        .send()
        .await
        .expect("post");
    assert_eq!(location(&confirmed), "/w/wf_1");
    assert!(set_cookie(&confirmed).contains("lantern_session="));
    // The same form posted by another site's page is refused before anything happens.
    let code = server.login_code("admin").await;
    let forged = server
        .request_as(Method::POST, "/login", None)
        .header("origin", "https://evil.example")
        .form(&[("code", code.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status().as_u16(), 403);
    assert!(forged.headers().get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn next_never_leads_off_this_server() {
    let server = start().await;
    for next in [
        "/%09/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
    ] {
        let code = server.login_code("admin").await;
        let link = format!("/login?code={code}&next={next}");
        let response = server
            .request_as(Method::GET, &link, None)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status().as_u16(), 303, "{next}");
        assert_eq!(location(&response), "/", "{next}");
    }
}

#[tokio::test]
async fn pages_of_another_origin_cannot_change_anything() {
    let server = start().await;
    let id = server.create("external").await;
    let cookie = {
        let response = server
            .request_as(Method::POST, "/login", None)
            .form(&[("token", server.token.as_str())])
            .send()
            .await
            .expect("post");
        cookie_pair(&set_cookie(&response))
    };
    let own = format!("http://{}", server.addr);
    let other_port = format!("http://{}:1", server.addr.ip());
    let writes = [
        (Method::POST, "/api/start_echo".to_owned()),
        (Method::POST, "/api/cancel_workflow".to_owned()),
        (Method::POST, "/logout".to_owned()),
        (Method::POST, format!("/api/workflows/{id}/cancel")),
    ];
    for (method, path) in &writes {
        for (origin, site) in [
            (Some("https://evil.example"), None),
            (Some(other_port.as_str()), None),
            (Some("null"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
        ] {
            let mut request = server
                .request_as(method.clone(), path, None)
                .header(header::COOKIE, &cookie)
                .form(&[("id", id.as_str())]);
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            if let Some(site) = site {
                request = request.header("sec-fetch-site", site);
            }
            let response = request.send().await.expect("send");
            assert_eq!(
                response.status().as_u16(),
                403,
                "{path} from {origin:?} {site:?}"
            );
        }
    }
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["status"], "pending", "nothing was cancelled");
    // The server's own pages may.
    let response = server
        .request_as(Method::POST, "/api/cancel_workflow", None)
        .header(header::COOKIE, &cookie)
        .header("origin", &own)
        .header("sec-fetch-site", "same-origin")
        .form(&[("id", id.as_str())])
        .send()
        .await
        .expect("send");
    assert!(response.status().is_success(), "{}", response.status());
    let (_, workflow) = server.get(&format!("/api/workflows/{id}")).await;
    assert_eq!(workflow["status"], "cancelled");
}

#[tokio::test]
async fn a_token_is_revoked_by_the_id_its_list_shows() {
    let data = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let process = spawn_binary(data.clone(), &[]).await;
    let dir = data.path().to_str().expect("path");
    let token = process.server.mint("erin", TokenKind::User).await;
    let listed = lantern_cli(&["token", "list", "--data-dir", dir])
        .await
        .expect("list");
    let id = listed
        .lines()
        .find(|line| line.contains("\terin\t"))
        .and_then(|line| line.split('\t').next())
        .expect("erin's row")
        .to_owned();
    assert!(token.contains(&id), "the id is the token's");
    assert_eq!(
        lantern_cli(&["token", "revoke", &id, "--data-dir", dir]).await,
        Ok("revoked".into())
    );
    let (status, _) = process.server.get_as(Some(&token), "/api/workflows").await;
    assert_eq!(status, 401);
    assert!(lantern_cli(&["token", "revoke", &id, "--data-dir", dir])
        .await
        .is_err());
}

#[tokio::test]
async fn expired_sessions_and_spent_login_links_are_pruned() {
    let server = start().await;
    let accounts = server.accounts.clone().expect("in process");
    let cookie = crate::common::session_cookie(&server).await;
    let code = server.login_code("admin").await;
    let spent = server.login_code("admin").await;
    let signed_in = server
        .request_as(Method::GET, &format!("/login?code={spent}"), None)
        .send()
        .await
        .expect("get");
    assert_eq!(location(&signed_in), "/");
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        server.data.path().join("lantern.db").display()
    ))
    .await
    .expect("open db");
    let count = |table: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&db)
                .await
                .expect("count")
        }
    };
    // Two sessions (the cookie's, the spent link's); three links (the first start's too).
    assert_eq!(
        (count("sessions").await, count("login_codes").await),
        (2, 3)
    );
    let expire_one = "UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z' \
                      WHERE rowid IN (SELECT rowid FROM sessions LIMIT 1)";
    sqlx::query(expire_one)
        .execute(&db)
        .await
        .expect("expire one");
    let pruned = accounts.prune().await.expect("pruned");
    assert!(
        pruned >= 2,
        "one expired session and one spent link: {pruned}"
    );
    assert_eq!(
        (count("sessions").await, count("login_codes").await),
        (1, 2)
    );
    // The unused link still works; what was pruned was dead already.
    let response = server
        .request_as(Method::GET, &format!("/login?code={code}"), None)
        .send()
        .await
        .expect("get");
    assert_eq!(location(&response), "/");
    let _ = cookie;
}
