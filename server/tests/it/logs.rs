//! Structured logs from the real binary: `--log-format json` writes one JSON object per line
//! to stderr; every request gets an `x-request-id` (kept when the caller sent one) and a
//! `request` span carrying it; a socket's lines carry its `socket` span inside the request
//! that opened it.

use std::process::Stdio;

use crate::common::{lantern_cli, WAIT};
use futures::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn json_logs_carry_request_ids_and_socket_spans() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(data.path())
        .env("RUST_LOG", "info,server=debug,tower_http=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn lantern");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let logged = tokio::spawn(async move {
        let mut lines = stderr.lines();
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push(line);
        }
        all
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let printed = tokio::time::timeout(WAIT, stdout.next_line())
        .await
        .expect("the URL in time")
        .expect("read")
        .expect("a line");
    let rest = printed.split("http://").nth(1).expect("a URL");
    let addr = rest.split('/').next().expect("address").to_owned();
    let dir = data.path().to_str().expect("utf-8 path");
    let token = lantern_cli(&["token", "create", "--user", "admin", "--data-dir", dir])
        .await
        .expect("token create");
    let http = reqwest::Client::new();

    // A request id is made, or the caller's is kept; either comes back on the response.
    let made = http
        .get(format!("http://{addr}/api/workflows"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    let request_id = made.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(request_id.len(), 26, "a ULID: {request_id}");
    let kept = http
        .get(format!("http://{addr}/healthz"))
        .header("x-request-id", "probe-123")
        .send()
        .await
        .expect("GET");
    assert_eq!(kept.headers()["x-request-id"], "probe-123");

    // A socket: open it, read its hello, close it.
    let created: Value = http
        .post(format!("http://{addr}/api/workflows"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"kind": "external"}))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let id = created["id"].as_str().expect("id").to_owned();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/ws/workflow/{id}"
        ))
        .expect("request");
    let bearer = format!("Bearer {token}").parse().expect("header");
    request.headers_mut().insert("authorization", bearer);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    socket.next().await.expect("hello").expect("frame");
    socket.close(None).await.expect("close");
    drop(socket);

    // Stop the server (SIGTERM: a graceful stop writes everything) and read what it logged.
    let pid = child.id().expect("pid").to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits in time")
        .expect("exit status");
    let lines = logged.await.expect("stderr reader");
    let entries: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(entries
        .iter()
        .all(|e| e["level"].is_string() && e["timestamp"].is_string()));

    let spans = |e: &Value| e["spans"].as_array().cloned().unwrap_or_default();
    let in_request = entries.iter().any(|e| {
        spans(e)
            .iter()
            .any(|s| s["name"] == "request" && s["id"] == request_id.as_str())
    });
    assert!(
        in_request,
        "no line in request {request_id}:\n{}",
        lines.join("\n")
    );
    let socket_open = entries
        .iter()
        .find(|e| e["fields"]["message"] == "socket open" && e["span"]["name"] == "socket")
        .unwrap_or_else(|| panic!("no socket line:\n{}", lines.join("\n")));
    assert_eq!(socket_open["span"]["workflow"], id.as_str());
    assert_eq!(socket_open["span"]["kind"], "subscriber");
    assert!(
        spans(socket_open)
            .iter()
            .any(|s| s["name"] == "request" && s["path"] == format!("/ws/workflow/{id}")),
        "the socket's span sits in the request that opened it: {socket_open}"
    );
    assert!(
        !lines.iter().any(|l| l.contains(&token)),
        "a token must never be logged"
    );
}
