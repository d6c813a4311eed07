//! docs/INTEGRATIONS.md runs as written: every code block in it is marked with the test that
//! runs it (`<!-- test: NAME -->` on the line above), and the shell and Python ones run here,
//! taken from the file as they are, against a real server. The only change made to a snippet
//! is where it listens: the documented `127.0.0.1:3000` (Lantern) and `8000` (the agent) become
//! the ports the test got. The JavaScript ones run in `end2end/tests/integrations.spec.ts`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{start, TestServer};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A code block of the page: the test that runs it, its language, its text.
struct Snippet {
    lang: String,
    code: String,
}

/// The page's code blocks by name. Panics on a block without its `<!-- test: NAME -->`.
fn snippets() -> HashMap<String, Snippet> {
    let page = std::fs::read_to_string(root().join("docs/INTEGRATIONS.md")).expect("read page");
    let mut found = HashMap::new();
    let mut lines = page.lines().peekable();
    let mut marker: Option<String> = None;
    while let Some(line) = lines.next() {
        if let Some(name) = line
            .strip_prefix("<!-- test: ")
            .and_then(|l| l.strip_suffix(" -->"))
        {
            marker = Some(name.to_owned());
            continue;
        }
        if let Some(lang) = line.strip_prefix("```") {
            let name = marker
                .take()
                .unwrap_or_else(|| panic!("a code block with no test marker above it: {line}"));
            let mut code = String::new();
            for line in lines.by_ref() {
                if line == "```" {
                    break;
                }
                code.push_str(line);
                code.push('\n');
            }
            let snippet = Snippet {
                lang: lang.to_owned(),
                code,
            };
            assert!(
                found.insert(name.clone(), snippet).is_none(),
                "two blocks named {name}"
            );
            continue;
        }
        if !line.trim().is_empty() {
            marker = None;
        }
    }
    found
}

/// Names run here; every other block must be run by the Playwright spec, except the Python
/// SDK's blocks (`sdk-…`), which `sdk/python/tests/test_docs.py` runs.
const RUN_HERE: [&str; 9] = [
    "env",
    "curl-sse",
    "curl-sse-resume",
    "curl-agui",
    "curl-agui-run",
    "agui-agent",
    "serve-agui-agent",
    "start-agui-workflow",
    "agui-agent-requirements",
];

#[test]
fn every_code_block_of_the_page_is_run_by_a_test() {
    let snippets = snippets();
    let spec = std::fs::read_to_string(root().join("end2end/tests/integrations.spec.ts"))
        .expect("the Playwright spec");
    let sdk = std::fs::read_to_string(root().join("sdk/python/tests/test_docs.py"))
        .expect("the SDK's docs test");
    for (name, snippet) in &snippets {
        let here = RUN_HERE.contains(&name.as_str());
        let there = if name.starts_with("sdk-") {
            sdk.contains(&format!("\"{name}\"")) && !spec.contains(&format!("'{name}'"))
        } else {
            spec.contains(&format!("'{name}'"))
        };
        assert!(
            here ^ there,
            "block {name} ({}) must be run by exactly one test",
            snippet.lang
        );
    }
    let named: HashSet<&str> = snippets.keys().map(String::as_str).collect();
    for name in RUN_HERE {
        assert!(named.contains(name), "no block named {name}");
    }
}

/// The documented addresses, made the test's.
fn localize(code: &str, lantern: &str, agent_port: Option<u16>) -> String {
    let mut code = code.replace("127.0.0.1:3000", lantern);
    if let Some(port) = agent_port {
        code = code
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"))
            .replace("port=8000", &format!("port={port}"));
    }
    code
}

/// A shell with the page's variables set for `server`, the `lantern` binary on its PATH, and
/// the server's data dir as the binary's.
fn shell(server: &TestServer, env: &[(&str, &str)]) -> tokio::process::Command {
    shell_on(server.data.path(), None, env)
}

/// A shell with the `lantern` binary (and the examples' Python environment, `python_bin`) first
/// on its PATH, and `data` as the binary's data dir.
fn shell_on(
    data: &Path,
    python_bin: Option<&Path>,
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_lantern"))
        .parent()
        .expect("bin dir")
        .to_owned();
    let mut path = format!("{}:", bin.display());
    if let Some(python_bin) = python_bin {
        path.push_str(&format!("{}:", python_bin.display()));
    }
    path.push_str(&std::env::var("PATH").unwrap_or_default());
    let mut command = tokio::process::Command::new("bash");
    command
        .env("PATH", path)
        .env("LANTERN_DATA_DIR", data)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Run `code` in `command`'s shell until it exits or `limit` passes (a stream that never ends
/// is cut there); its output so far, and whether it ended by itself.
async fn run(mut command: tokio::process::Command, code: &str, limit: Duration) -> (String, bool) {
    let script = format!("set -euo pipefail\n{code}");
    command
        .arg("-c")
        .arg(script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let mut child = command.spawn().expect("bash");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut out = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut out);
    let ended = tokio::time::timeout(limit, read).await.is_ok();
    let _ = child.kill().await;
    (String::from_utf8_lossy(&out).into_owned(), ended)
}

/// `id:` lines of an SSE text, in order.
fn ids(sse: &str) -> Vec<u64> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .filter_map(|id| id.trim().parse().ok())
        .collect()
}

/// The AG-UI event types of an SSE text, in order.
fn agui_types(sse: &str) -> Vec<String> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|e| e["type"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_shell_snippets_follow_a_workflow_over_sse_and_ag_ui() {
    let snippets = snippets();
    let server = start().await;
    let addr = server.addr.to_string();
    let code = |name: &str| localize(&snippets[name].code, &addr, None);

    // `env`: the variables, with a token minted by the binary.
    let probe = format!(
        "{}\ncurl -sf -o /dev/null -w '%{{http_code}}' -H \"Authorization: Bearer $LANTERN_TOKEN\" \
         \"$LANTERN_URL/api/workflows\"",
        code("env")
    );
    let (answered, _) = run(shell(&server, &[]), &probe, Duration::from_secs(20)).await;
    assert_eq!(answered, "200", "the token the page mints works");
    let token = server.mint("admin", server::auth::TokenKind::User).await;

    // A finished workflow of five events to follow.
    let id = server.create("external").await;
    let agent = "writer";
    server
        .publish(
            &id,
            json!([
                {"type": "agent_started", "agent": agent},
                {"type": "text_delta", "agent": agent, "message_id": "m1", "delta": "Hello "},
                {"type": "text_delta", "agent": agent, "message_id": "m1", "delta": "there"},
                {"type": "agent_response", "agent": agent, "message_id": "m1"},
                {"type": "workflow_status", "status": "completed"}
            ]),
        )
        .await;
    let url = format!("http://{addr}");
    let vars = [
        ("LANTERN_URL", url.as_str()),
        ("LANTERN_TOKEN", token.as_str()),
        ("WORKFLOW_ID", id.as_str()),
    ];
    let follow = |name: &str| {
        let code = code(name);
        let command = shell(&server, &vars);
        async move { run(command, &code, Duration::from_secs(3)).await }
    };

    // The terminal status closed the agent too: the log is what the streams must carry.
    let last = server.log(&id).await.len() as u64;
    // A viewer's stream stays open for live events: cut after 3 s.
    let (sse, _) = follow("curl-sse").await;
    assert!(sse.starts_with("event: hello\n"), "{sse}");
    assert!(sse.contains("event: replay_done\n"), "{sse}");
    assert_eq!(ids(&sse), (1..=last).collect::<Vec<_>>(), "{sse}");
    let (resumed, _) = follow("curl-sse-resume").await;
    assert_eq!(ids(&resumed), (4..=last).collect::<Vec<_>>(), "{resumed}");

    let (agui, ended) = follow("curl-agui").await;
    assert!(
        ended,
        "the AG-UI stream of a finished workflow ends by itself: {agui}"
    );
    let types = agui_types(&agui);
    assert_eq!(
        types.first().map(String::as_str),
        Some("RUN_STARTED"),
        "{agui}"
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("RUN_FINISHED"),
        "{agui}"
    );
    assert!(types.iter().any(|t| t == "TEXT_MESSAGE_CONTENT"), "{agui}");

    let (run_reply, ended) = follow("curl-agui-run").await;
    assert!(ended, "a run's reply ends with the run: {run_reply}");
    let types = agui_types(&run_reply);
    assert_eq!(
        types.first().map(String::as_str),
        Some("RUN_STARTED"),
        "{run_reply}"
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("RUN_FINISHED"),
        "{run_reply}"
    );
    assert!(
        types.iter().any(|t| t == "TEXT_MESSAGE_CONTENT"),
        "{run_reply}"
    );
    let (status, workflow) = server.get("/api/workflows/docs-thread-1").await;
    assert_eq!(status, 200, "{workflow}");
    assert_eq!(workflow["kind"], "search");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Wait until something listens on `port`.
async fn listening(port: u16) {
    let up = async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), up)
        .await
        .unwrap_or_else(|_| panic!("nothing listens on {port}"));
}

#[tokio::test]
async fn the_python_blocks_put_a_pydantic_ai_agent_behind_lantern() {
    let snippets = snippets();
    let python = crate::examples::python().await;
    let python_bin = python.parent().expect("venv bin").to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (agent_port, lantern_port) = (free_port(), free_port());
    let lantern = format!("127.0.0.1:{lantern_port}");
    let code = |name: &str| localize(&snippets[name].code, &lantern, Some(agent_port));

    // The install line, in the examples' environment (where setup put these very versions).
    let (installed, ended) = run(
        shell_on(&data, Some(&python_bin), &[]),
        &code("agui-agent-requirements"),
        Duration::from_secs(120),
    )
    .await;
    assert!(ended, "pip finished: {installed}");

    // The agent, as the page says: `python agent.py`.
    std::fs::write(dir.path().join("agent.py"), code("agui-agent")).expect("write agent.py");
    let _agent = tokio::process::Command::new(&python)
        .arg("agent.py")
        .current_dir(dir.path())
        .kill_on_drop(true)
        .spawn()
        .expect("python agent.py");
    listening(agent_port).await;

    // Lantern with the agent registered, on its own data dir.
    let mut serve = shell_on(&data, None, &[("LANTERN_ADDR", &lantern)]);
    let _lantern = serve
        .arg("-c")
        // exec: the server is the shell's process, so it goes when the test drops it.
        .arg(format!("exec {}", code("serve-agui-agent").trim()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("lantern serve");
    listening(lantern_port).await;

    // The variables, then the start of a `helper` workflow.
    let script = format!("{}\n{}", code("env"), code("start-agui-workflow"));
    let (created, _) = run(shell_on(&data, None, &[]), &script, Duration::from_secs(20)).await;
    let created: Value = serde_json::from_str(&created).unwrap_or_else(|_| panic!("{created}"));
    assert_eq!(created["kind"], "helper", "{created}");
    let id = created["id"].as_str().expect("id");

    // Its log fills with the agent's tool call and answer.
    let token = run(
        shell_on(&data, None, &[]),
        "lantern token create --user admin",
        Duration::from_secs(20),
    )
    .await
    .0;
    let http = reqwest::Client::new();
    let events_url = format!("http://{lantern}/api/workflows/{id}/events");
    let answered = async {
        loop {
            let log: Value = http
                .get(&events_url)
                .bearer_auth(token.trim())
                .send()
                .await
                .expect("GET events")
                .json()
                .await
                .expect("json");
            let events = log["events"].as_array().cloned().unwrap_or_default();
            if events.iter().any(|e| e["type"] == "agent_response") {
                return events;
            }
            if events.iter().any(|e| e["status"] == "failed") {
                panic!("the workflow failed: {events:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let events = tokio::time::timeout(Duration::from_secs(30), answered)
        .await
        .expect("the agent answers");
    crate::common::assert_invariants(&events);
    let call = events
        .iter()
        .find(|e| e["type"] == "tool_executing")
        .expect("a tool call");
    assert_eq!(
        (call["agent"].as_str(), call["tool"].as_str()),
        (Some("helper"), Some("get_weather"))
    );
    let answer = events
        .iter()
        .find(|e| e["type"] == "agent_response")
        .expect("an answer");
    assert!(
        answer["content"]
            .as_str()
            .unwrap_or_default()
            .contains("sunny"),
        "{answer}"
    );
}
