//! The built-in `assistant` against a scripted OpenAI-compatible server: real HTTP, real
//! `text/event-stream` chunks in OpenAI's format (tool-call arguments split across chunks,
//! parallel tool calls, reasoning deltas, usage), and each error on demand. CI has no model; the
//! server here plays one, request by request, and records what it was sent.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::upstream::{Canned, Upstream};
use crate::common::{assert_invariants, is_status, start_with, Client, TestServer, WAIT};

/// Scripted answers of the model server, in OpenAI's format.
struct Answer;

impl Answer {
    fn chunks(chunks: Vec<Value>) -> Canned {
        let mut data: Vec<String> = chunks.iter().map(Value::to_string).collect();
        data.push("[DONE]".into());
        Canned::sse(data)
    }

    /// `chunks`, then the stream stalls: no `[DONE]`, no end.
    fn stalling(chunks: Vec<Value>) -> Canned {
        let mut canned = Self::chunks(chunks);
        canned.body.pop();
        canned.hang = true;
        canned
    }

    /// Text in `pieces` (and reasoning first, if any), then usage.
    fn text(reasoning: &[&str], pieces: &[&str]) -> Canned {
        let mut chunks =
            vec![json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})];
        chunks.extend(
            reasoning
                .iter()
                .map(|r| json!({"choices": [{"index": 0, "delta": {"reasoning_content": r}}]})),
        );
        chunks.extend(
            pieces
                .iter()
                .map(|p| json!({"choices": [{"index": 0, "delta": {"content": p}}]})),
        );
        chunks.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
        chunks.push(json!({"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 7, "total_tokens": 47}}));
        Self::chunks(chunks)
    }

    /// Tool calls `(id, name, arguments)`, each's arguments split in two chunks, interleaved.
    fn tools(calls: &[(&str, &str, Value)]) -> Canned {
        let halves: Vec<(String, String)> = calls
            .iter()
            .map(|(_, _, args)| {
                let text = args.to_string();
                let (a, b) = text.split_at(text.len() / 2);
                (a.to_owned(), b.to_owned())
            })
            .collect();
        let firsts: Vec<Value> = calls
            .iter()
            .zip(&halves)
            .enumerate()
            .map(|(i, ((id, name, _), (a, _)))| json!({"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": a}}))
            .collect();
        let mut chunks = vec![json!({"choices": [{"index": 0, "delta": {"tool_calls": firsts}}]})];
        for (i, (_, b)) in halves.iter().enumerate() {
            chunks.push(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, "function": {"arguments": b}}]}}]}));
        }
        chunks.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}));
        Self::chunks(chunks)
    }

    fn error(status: u16, body: Value) -> Canned {
        Canned::plain(status, "application/json", &body.to_string())
    }
}

/// The scripted model server: its answers in order, at `/v1/chat/completions`.
struct Scripted {
    upstream: Upstream,
    /// Its OpenAI root, `http://…/v1`.
    base_url: url::Url,
}

async fn scripted(answers: Vec<Canned>) -> Scripted {
    let upstream = Upstream::start("/v1/chat/completions", answers, None).await;
    let base = upstream.url.as_str().trim_end_matches("/chat/completions");
    let base_url = base.parse().expect("url");
    Scripted { upstream, base_url }
}

impl Scripted {
    fn requests(&self) -> Vec<Value> {
        self.upstream.requests()
    }
}

async fn lantern(model: &Scripted, tweak: impl FnOnce(&mut server::config::Config)) -> TestServer {
    let base = model.base_url.clone();
    start_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_model = Some("scripted-7b".into());
        config.llm_timeout_secs = 2;
        tweak(config);
    })
    .await
}

async fn ask(server: &TestServer, message: &str) -> (String, Client) {
    let (status, body) = server
        .post(
            "/api/workflows",
            json!({"kind": "assistant", "input": {"message": message}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let viewer = server.subscribe(&id, 0).await;
    (id, viewer)
}

/// Events up to the next `waiting_input` (or the end).
async fn until_waiting(viewer: &mut Client) -> Vec<Value> {
    tokio::time::timeout(
        WAIT,
        viewer.events_until(|e| {
            e["type"] == "workflow_status"
                && ["waiting_input", "failed", "completed", "cancelled"]
                    .contains(&e["status"].as_str().unwrap_or(""))
        }),
    )
    .await
    .expect("the assistant gets somewhere")
}

/// Skip the opening `waiting_input`; the events of the first turn.
async fn first_turn(viewer: &mut Client) -> Vec<Value> {
    until_waiting(viewer).await;
    until_waiting(viewer).await
}

/// The roles of a request's messages, in order.
fn roles(request: &Value) -> Vec<&str> {
    request["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["role"].as_str().expect("role"))
        .collect()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

async fn say(server: &TestServer, id: &str, content: &str) {
    let (status, body) = server
        .post(
            &format!("/api/workflows/{id}/input"),
            json!({"content": content, "client_msg_id": content}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Say `message` to workflow `id` and wait for the answer `reply`.
async fn answered(server: &TestServer, id: &str, message: &str, reply: &str) {
    say(server, id, message).await;
    let mut viewer = server.subscribe(id, 0).await;
    tokio::time::timeout(WAIT, viewer.events_until(|e| e["content"] == reply))
        .await
        .unwrap_or_else(|_| panic!("no answer {reply:?} to {message:?}"));
}

async fn answer_interrupt(server: &TestServer, id: &str, interrupt_id: &str, payload: Value) {
    let (status, body) = server
        .post(
            &format!("/api/workflows/{id}/interrupts/{interrupt_id}"),
            json!({"status": "resolved", "payload": payload, "client_msg_id": interrupt_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn tokens_and_reasoning_stream_in_order_and_the_usage_is_reported() {
    let model = scripted(vec![Answer::text(
        &["The user ", "greets."],
        &["Hel", "lo", " there", "!"],
    )])
    .await;
    let server = lantern(&model, |_| {}).await;
    let (id, mut viewer) = ask(&server, "hi").await;
    let turn = first_turn(&mut viewer).await;
    let deltas: Vec<&str> = of_type(&turn, "text_delta")
        .iter()
        .map(|e| e["delta"].as_str().expect("delta"))
        .collect();
    assert_eq!(deltas, ["Hel", "lo", " there", "!"]);
    let thinking: Vec<&str> = of_type(&turn, "thinking_delta")
        .iter()
        .map(|e| e["delta"].as_str().expect("delta"))
        .collect();
    assert_eq!(thinking, ["The user ", "greets."]);
    let response = of_type(&turn, "agent_response");
    assert_eq!(response[0]["content"], "Hello there!");
    assert_eq!(
        of_type(&turn, "agent_thinking")[0]["content"],
        "The user greets."
    );
    let waiting = turn.last().expect("events");
    assert_eq!(
        waiting["detail"],
        "waiting for your next message · 40 tokens in, 7 out"
    );

    // What the model was asked: the configured model, streamed, with usage, tools offered.
    let request = &model.requests()[0];
    assert_eq!(request["model"], "scripted-7b");
    assert_eq!(request["stream"], true);
    assert_eq!(request["stream_options"]["include_usage"], true);
    assert_eq!(
        request["messages"][1],
        json!({"role": "user", "content": "hi"})
    );
    let offered: Vec<&str> = request["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["function"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(offered, ["search_docs", "ask_user"]);
    say(&server, &id, "done").await;
    assert_invariants(&server.log(&id).await);
}

#[tokio::test]
async fn parallel_tool_calls_with_split_arguments_become_paired_rows_and_their_results_go_back() {
    let model = scripted(vec![
        Answer::tools(&[
            (
                "call_1",
                "search_docs",
                json!({"query": "resume after a reconnect"}),
            ),
            ("call_2", "search_docs", json!({"query": "heartbeat"})),
        ]),
        Answer::text(&[], &["Viewers resume ", "with after."]),
    ])
    .await;
    let server = lantern(&model, |_| {}).await;
    let (id, mut viewer) = ask(&server, "how do viewers resume?").await;
    let turn = first_turn(&mut viewer).await;
    let started = of_type(&turn, "tool_executing");
    let finished = of_type(&turn, "tool_completed");
    assert_eq!(started.len(), 2);
    assert_eq!(finished.len(), 2);
    assert_eq!(
        started[0]["input"],
        json!({"query": "resume after a reconnect"})
    );
    assert_eq!(started[1]["input"], json!({"query": "heartbeat"}));
    for (open, close) in started.iter().zip(&finished) {
        assert_eq!(open["call_id"], close["call_id"]);
        assert_eq!(close["ok"], true);
    }
    assert_eq!(of_type(&turn, "search_results").len(), 2);
    assert_eq!(
        of_type(&turn, "agent_response")[0]["content"],
        "Viewers resume with after."
    );

    // The second request carries the calls and their results.
    let second = &model.requests()[1];
    let messages = second["messages"].as_array().expect("messages");
    let calls = &messages[2]["tool_calls"];
    assert_eq!(calls[0]["id"], "call_1");
    assert_eq!(
        calls[1]["function"]["arguments"],
        json!({"query": "heartbeat"}).to_string()
    );
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(messages[3]["tool_call_id"], "call_1");
    assert!(messages[3]["content"]
        .as_str()
        .expect("content")
        .contains("source"));
    assert_eq!(messages[4]["tool_call_id"], "call_2");
    assert_invariants(&server.log(&id).await);
}

#[tokio::test]
async fn a_tool_that_needs_approval_does_not_run_when_denied_and_the_model_is_told() {
    let model = scripted(vec![
        Answer::tools(&[("call_1", "search_docs", json!({"query": "secrets"}))]),
        Answer::text(&[], &["Understood, I will not search."]),
    ])
    .await;
    let server = lantern(&model, |c| c.llm_approve_tools = vec!["search_docs".into()]).await;
    let (id, mut viewer) = ask(&server, "search for secrets").await;
    let asked = first_turn(&mut viewer).await;
    let interrupt = of_type(&asked, "interrupt")[0].clone();
    assert_eq!(interrupt["reason"], "tool_approval");
    assert_eq!(
        interrupt["call_id"],
        of_type(&asked, "tool_executing")[0]["call_id"]
    );
    let interrupt_id = interrupt["interrupt_id"].as_str().expect("id");
    answer_interrupt(&server, &id, interrupt_id, json!({"approved": false})).await;
    let after = until_waiting(&mut viewer).await;
    let closed = of_type(&after, "tool_completed")[0].clone();
    assert_eq!(closed["ok"], false);
    assert_eq!(closed["error"], "denied by admin");
    assert!(
        of_type(&after, "search_results").is_empty(),
        "the search did not run"
    );
    let told = &model.requests()[1]["messages"];
    let told = told
        .as_array()
        .expect("messages")
        .last()
        .expect("a message");
    assert_eq!(told["role"], "tool");
    assert!(told["content"]
        .as_str()
        .expect("content")
        .contains("did not allow"));
}

#[tokio::test]
async fn ask_user_is_an_interrupt_whose_answer_goes_back_and_a_follow_up_carries_the_history() {
    let model = scripted(vec![
        Answer::tools(&[("call_1", "ask_user", json!({"question": "Which city?"}))]),
        Answer::text(&[], &["Paris it is."]),
        Answer::text(&[], &["Still Paris."]),
    ])
    .await;
    let server = lantern(&model, |_| {}).await;
    let (id, mut viewer) = ask(&server, "plan my trip").await;
    let asked = first_turn(&mut viewer).await;
    let interrupt = of_type(&asked, "interrupt")[0].clone();
    assert_eq!(interrupt["reason"], "input");
    assert_eq!(interrupt["message"], "Which city?");
    let interrupt_id = interrupt["interrupt_id"].as_str().expect("id");
    answer_interrupt(&server, &id, interrupt_id, json!({"answer": "Paris"})).await;
    let answered = until_waiting(&mut viewer).await;
    assert_eq!(
        of_type(&answered, "tool_completed")[0]["output"],
        json!({"answer": "Paris"})
    );
    assert_eq!(
        of_type(&answered, "agent_response")[0]["content"],
        "Paris it is."
    );

    say(&server, &id, "and tomorrow?").await;
    until_waiting(&mut viewer).await;
    let request = &model.requests()[2];
    let third = &request["messages"];
    assert_eq!(
        roles(request),
        ["system", "user", "assistant", "tool", "assistant", "user"]
    );
    assert_eq!(third[5]["content"], "and tomorrow?");
    assert_eq!(third[4]["content"], "Paris it is.");
    assert_invariants(&server.log(&id).await);
}

#[tokio::test]
async fn the_loop_is_bounded_the_last_request_offers_no_tools() {
    let again = Answer::tools(&[("call_1", "search_docs", json!({"query": "more"}))]);
    let model = scripted(vec![again.clone(), again, Answer::text(&[], &["Enough."])]).await;
    let server = lantern(&model, |c| c.llm_max_steps = 3).await;
    let (_, mut viewer) = ask(&server, "search forever").await;
    let turn = first_turn(&mut viewer).await;
    assert_eq!(of_type(&turn, "tool_executing").len(), 2);
    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[1].get("tools").is_some());
    assert!(requests[2].get("tools").is_none(), "{}", requests[2]);
}

#[tokio::test]
async fn cancel_mid_answer_closes_the_request_to_the_model_within_a_second() {
    let stalling = Answer::stalling(vec![
        json!({"choices": [{"delta": {"content": "Once upon"}}]}),
    ]);
    let mut model = scripted(vec![stalling]).await;
    let server = lantern(&model, |c| c.llm_timeout_secs = 60).await;
    let (id, mut viewer) = ask(&server, "tell me a story").await;
    tokio::time::timeout(WAIT, viewer.events_until(|e| e["type"] == "text_delta"))
        .await
        .expect("the answer starts");
    let (status, _) = server
        .post(&format!("/api/workflows/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    tokio::time::timeout(Duration::from_secs(1), model.upstream.closed.recv())
        .await
        .expect("the model server sees the connection close within 1 s");
    let log = server.log(&id).await;
    assert_invariants(&log);
    let answer = of_type(&log, "agent_response")[0].clone();
    assert_eq!(answer["content"], "Once upon", "the text so far is kept");
}

/// Start a workflow against a model server that answers `answers`; the failed status's detail.
async fn failure(answers: Vec<Canned>, base: Option<url::Url>) -> String {
    let model = scripted(answers).await;
    let server = lantern(&model, move |c| {
        if let Some(base) = base {
            c.llm_base_url = Some(base);
        }
    })
    .await;
    let (_, mut viewer) = ask(&server, "hi").await;
    let turn = first_turn(&mut viewer).await;
    let last = turn.last().expect("events");
    assert!(is_status(last, "failed"), "{last}");
    last["detail"].as_str().expect("detail").to_owned()
}

#[tokio::test]
async fn each_model_server_error_fails_the_answer_with_its_own_detail() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let down: url::Url = format!("http://127.0.0.1:{port}/v1").parse().expect("url");
    let detail = failure(vec![], Some(down)).await;
    assert!(detail.contains("could not be reached"), "{detail}");

    let key = Answer::error(
        401,
        json!({"error": {"message": "Incorrect API key provided"}}),
    );
    let detail = failure(vec![key], None).await;
    assert!(
        detail.contains("refused the API key (HTTP 401): Incorrect API key"),
        "{detail}"
    );
    assert!(detail.contains("LANTERN_LLM_API_KEY"), "{detail}");

    let missing = Answer::error(404, json!({"error": "model \"scripted-7b\" not found"}));
    let detail = failure(vec![missing], None).await;
    assert!(detail.contains("has no model \"scripted-7b\""), "{detail}");

    let overloaded = Answer::error(503, json!({"error": {"message": "overloaded"}}));
    let detail = failure(vec![overloaded], None).await;
    assert!(detail.contains("HTTP 503: overloaded"), "{detail}");

    let mut limited = Answer::error(429, json!({"error": {"message": "slow down"}}));
    limited.headers.push(("retry-after", "0".into()));
    let detail = failure(vec![limited; 4], None).await;
    assert!(
        detail.contains("HTTP 429), still after 3 retries: slow down"),
        "{detail}"
    );

    let garbage = Canned::sse([
        "{\"choices\": [{\"delta\": {\"content\": \"ok\"}}]}".to_owned(),
        "{not json".to_owned(),
    ]);
    let detail = failure(vec![garbage], None).await;
    assert!(detail.contains("malformed chunk"), "{detail}");
    assert!(detail.contains("{not json"), "{detail}");

    let stalls = Answer::stalling(vec![json!({"choices": [{"delta": {"content": "Hm"}}]})]);
    let detail = failure(vec![stalls], None).await;
    assert!(detail.contains("sent nothing for 2 s"), "{detail}");

    let mut cut = Answer::chunks(vec![json!({"choices": [{"delta": {"content": "Hm"}}]})]);
    cut.body.pop();
    let detail = failure(vec![cut], None).await;
    assert!(detail.contains("ended before its answer did"), "{detail}");
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_its_retry_after() {
    let mut limited = Answer::error(429, json!({"error": {"message": "slow down"}}));
    limited.headers.push(("retry-after", "0".into()));
    let model = scripted(vec![
        limited.clone(),
        limited,
        Answer::text(&[], &["Fine."]),
    ])
    .await;
    let server = lantern(&model, |_| {}).await;
    let (_, mut viewer) = ask(&server, "hi").await;
    let turn = first_turn(&mut viewer).await;
    assert_eq!(of_type(&turn, "agent_response")[0]["content"], "Fine.");
    assert_eq!(model.requests().len(), 3);
}

#[tokio::test]
async fn without_a_model_the_assistant_is_refused_saying_how_to_configure_one() {
    let server = crate::common::start().await;
    let (status, body) = server
        .post(
            "/api/workflows",
            json!({"kind": "assistant", "input": {"message": "hi"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("--llm-base-url"), "{body}");
}

#[tokio::test]
async fn after_a_restart_a_conversation_goes_on_from_its_log_and_an_answer_in_flight_is_cut_short()
{
    let stalling = Answer::stalling(vec![
        json!({"choices": [{"delta": {"content": "Once upon"}}]}),
    ]);
    let model = scripted(vec![
        Answer::tools(&[("call_1", "search_docs", json!({"query": "sse"}))]),
        Answer::text(&[], &["SSE resumes by Last-Event-ID."]),
        stalling,
        Answer::text(&[], &["Picked up where we were."]),
        Answer::text(&[], &["Back to the story."]),
    ])
    .await;
    let data = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let base = model.base_url.to_string();
    let flags = [
        "--llm-base-url",
        base.as_str(),
        "--llm-model",
        "scripted-7b",
    ];
    let first = crate::common::spawn_binary(data.clone(), &flags).await;
    let (waiting, mut viewer) = ask(&first.server, "how does SSE resume?").await;
    first_turn(&mut viewer).await;
    let (story, mut other) = ask(&first.server, "tell me a story").await;
    until_waiting(&mut other).await;
    tokio::time::timeout(WAIT, other.events_until(|e| e["type"] == "text_delta"))
        .await
        .expect("the story starts");
    drop(first); // SIGKILL: kill_on_drop

    // The answer in flight stops where it was, saying why; the workflow is not over.
    let second = crate::common::spawn_binary(data, &flags).await;
    let cut = second.server.log(&story).await;
    assert_invariants(&cut);
    assert_eq!(of_type(&cut, "agent_response")[0]["content"], "Once upon");
    let last = cut.last().expect("events");
    assert!(is_status(last, "waiting_input"), "{last}");
    assert!(last["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("the server restarted"));

    // Both conversations go on with everything said before the restart.
    answered(
        &second.server,
        &waiting,
        "and after a restart?",
        "Picked up where we were.",
    )
    .await;
    let request = &model.requests()[3];
    assert_eq!(
        roles(request),
        ["system", "user", "assistant", "tool", "assistant", "user"]
    );
    assert_eq!(
        request["messages"][4]["content"],
        "SSE resumes by Last-Event-ID."
    );
    assert_eq!(request["messages"][5]["content"], "and after a restart?");

    answered(&second.server, &story, "go on", "Back to the story.").await;
    let request = &model.requests()[4];
    assert_eq!(roles(request), ["system", "user", "assistant", "user"]);
    assert_eq!(request["messages"][2]["content"], "Once upon");
    assert_invariants(&second.server.log(&waiting).await);
    assert_invariants(&second.server.log(&story).await);
}

#[tokio::test]
async fn the_api_key_comes_from_the_environment_only_and_is_sent_as_a_bearer_token() {
    let model = scripted(vec![Answer::text(&[], &["Hi."])]).await;
    let data = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let base = model.base_url.to_string();
    let flags = [
        "--llm-base-url",
        base.as_str(),
        "--llm-model",
        "scripted-7b",
    ];
    let lantern = crate::common::spawn_binary_with(data, &flags, |command| {
        command.env("LANTERN_LLM_API_KEY", "sk-test-123");
    })
    .await;
    let (_, mut viewer) = ask(&lantern.server, "hi").await;
    first_turn(&mut viewer).await;
    assert_eq!(
        model.upstream.authorizations(),
        [Some("Bearer sk-test-123".to_owned())]
    );
    // No flag takes a key: it would show in `ps` and in shell history.
    let help = tokio::process::Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(["serve", "--help"])
        .output()
        .await
        .expect("lantern serve --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--llm-base-url"), "{help}");
    assert!(
        !help.contains("--llm-api-key") && !help.contains("--api-key"),
        "{help}"
    );
}
