//! An OpenAI-compatible model server (`--llm-base-url`, `--llm-model`): the chat-completions
//! API with `stream: true`, the dialect Ollama, vLLM, llama.cpp's server, LM Studio and OpenAI
//! all serve. One request per step of the `assistant` workflow
//! ([`crate::workflows::assistant`]); its chunks are folded by [`chunks`].
//!
//! Everything that can go wrong is an [`LlmError`] whose text is the failed workflow's
//! `detail`: never a hang (no byte for `--llm-timeout-secs` fails the step), and a `429` is
//! retried after its `Retry-After` a bounded number of times.

pub mod chunks;

use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use crate::sse_client::{chain, SseError};
use chunks::{Chunk, Fold, Piece, Reply};

/// How many times a `429` is retried before the step fails.
pub const MAX_RETRIES: u32 = 3;
/// The longest `Retry-After` honoured; a longer one is waited this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The configured model.
pub struct Model {
    client: reqwest::Client,
    /// `{base}/chat/completions`.
    endpoint: String,
    /// The model's name on that server (`--llm-model`).
    pub name: String,
    /// From `LANTERN_LLM_API_KEY` only, never a flag; sent as a bearer token, never logged.
    api_key: Option<String>,
    /// How long the server may stay silent before the step fails.
    silence: Duration,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("endpoint", &self.endpoint)
            .field("name", &self.name)
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// Why a step's request to the model failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the model server at {url} could not be reached: {error}")]
    Unreachable { url: String, error: String },
    #[error(
        "the model server refused the API key (HTTP {status}): {message}; set LANTERN_LLM_API_KEY"
    )]
    Key { status: u16, message: String },
    #[error("the model server has no model {model:?} (HTTP 404): {message}; check --llm-model")]
    NoModel { model: String, message: String },
    #[error("the model server is limiting requests (HTTP 429), still after {MAX_RETRIES} retries: {message}")]
    RateLimited { message: String },
    #[error("the model server answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the model server did not stream its answer (content-type {0:?})")]
    NotStreamed(String),
    #[error("the model server sent nothing for {0} s")]
    Silent(u64),
    #[error("the connection to the model server broke mid-answer: {0}")]
    Broken(String),
    #[error("the model server sent a malformed chunk ({error}): {excerpt}")]
    Malformed { error: String, excerpt: String },
    #[error("the model server's stream ended before its answer did")]
    EndedEarly,
}

impl Model {
    pub fn new(
        base_url: &url::Url,
        name: String,
        api_key: Option<String>,
        silence: Duration,
    ) -> Self {
        let client = crate::sse_client::client(silence);
        let endpoint = format!(
            "{}/chat/completions",
            base_url.as_str().trim_end_matches('/')
        );
        Self {
            client,
            endpoint,
            name,
            api_key: api_key.filter(|k| !k.is_empty()),
            silence,
        }
    }

    /// Ask for the next message of `messages`, offering `tools`; the answer streams from the
    /// returned [`Completion`].
    pub async fn complete(
        &self,
        messages: &[Value],
        tools: &[Value],
    ) -> Result<Completion, LlmError> {
        let mut body = json!({
            "model": self.name,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if !tools.is_empty() {
            body["tools"] = Value::Array(tools.to_vec());
        }
        let mut retries = 0;
        loop {
            let mut request = self
                .client
                .post(&self.endpoint)
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .json(&body);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            let response = match tokio::time::timeout(self.silence, request.send()).await {
                Err(_) => return Err(LlmError::Silent(self.silence.as_secs())),
                Ok(Err(error)) => {
                    return Err(LlmError::Unreachable {
                        url: self.endpoint.clone(),
                        error: chain(&error),
                    })
                }
                Ok(Ok(response)) => response,
            };
            let status = response.status().as_u16();
            if response.status().is_success() {
                let content_type = response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                if !content_type.starts_with("text/event-stream") {
                    return Err(LlmError::NotStreamed(content_type));
                }
                let events = crate::sse_client::events(response, self.silence);
                return Ok(Completion {
                    events: Box::pin(events),
                    fold: Fold::default(),
                    silence: self.silence,
                });
            }
            let retry_after = retry_after(&response);
            let message = self.error_message(response).await;
            match status {
                429 if retries < MAX_RETRIES => {
                    retries += 1;
                    tracing::info!(
                        retries,
                        ?retry_after,
                        "the model server asks to retry later"
                    );
                    tokio::time::sleep(retry_after).await;
                }
                429 => return Err(LlmError::RateLimited { message }),
                401 | 403 => return Err(LlmError::Key { status, message }),
                404 => {
                    let model = self.name.clone();
                    return Err(LlmError::NoModel { model, message });
                }
                _ => return Err(LlmError::Status { status, message }),
            }
        }
    }

    /// What an error answer says: OpenAI's `{"error":{"message"}}`, Ollama's `{"error"}`, or
    /// the start of the body.
    async fn error_message(&self, response: reqwest::Response) -> String {
        let body = match tokio::time::timeout(self.silence, response.text()).await {
            Ok(Ok(body)) => body,
            _ => return String::from("(no body)"),
        };
        let said = serde_json::from_str::<Value>(&body).ok().and_then(|v| {
            let error = v.get("error")?;
            error
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| error.as_str())
                .map(str::to_owned)
        });
        said.unwrap_or_else(|| body.trim().chars().take(300).collect())
    }
}

/// `Retry-After` in seconds (at most [`MAX_RETRY_AFTER`]); 1 s when absent.
fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(Duration::from_secs(1), |secs| {
            Duration::from_secs_f64(secs.max(0.0)).min(MAX_RETRY_AFTER)
        })
}

/// One answer being streamed.
pub struct Completion {
    events:
        std::pin::Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, SseError>> + Send>>,
    fold: Fold,
    silence: Duration,
}

impl Completion {
    /// The next pieces of the answer; `None` once the model has finished it.
    pub async fn next(&mut self) -> Result<Option<Vec<Piece>>, LlmError> {
        loop {
            let event = match self.events.next().await {
                None => {
                    // Servers end with `data: [DONE]`; one that just closes after saying why
                    // it stopped has finished too.
                    return match self.fold_finished() {
                        true => Ok(None),
                        false => Err(LlmError::EndedEarly),
                    };
                }
                Some(Ok(event)) => event,
                Some(Err(SseError::Silent(_))) => {
                    return Err(LlmError::Silent(self.silence.as_secs()))
                }
                Some(Err(SseError::Broken(error))) => return Err(LlmError::Broken(error)),
                Some(Err(SseError::Malformed(error))) => {
                    return Err(LlmError::Malformed {
                        error,
                        excerpt: String::new(),
                    })
                }
            };
            let data = event.data.trim();
            if data == "[DONE]" {
                return Ok(None);
            }
            if data.is_empty() {
                continue;
            }
            let chunk: Chunk = serde_json::from_str(data).map_err(|error| LlmError::Malformed {
                error: error.to_string(),
                excerpt: data.chars().take(100).collect(),
            })?;
            let pieces = self.fold.chunk(chunk);
            if !pieces.is_empty() {
                return Ok(Some(pieces));
            }
        }
    }

    fn fold_finished(&self) -> bool {
        self.fold.finish_reason().is_some()
    }

    /// The whole answer.
    pub fn finish(self) -> Reply {
        self.fold.finish()
    }
}
