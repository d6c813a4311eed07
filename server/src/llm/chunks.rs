//! One streamed chat completion, chunk by chunk (a pure fold): OpenAI's
//! `chat.completion.chunk`s — which Ollama, vLLM, llama.cpp's server, LM Studio and OpenAI all
//! send — into the pieces Lantern streams (text and reasoning deltas) and, at the end, the whole
//! reply: its text, its tool calls (streamed in pieces, possibly several at once, put together
//! by their `index`), why it stopped and the tokens it used.

use serde::Deserialize;
use serde_json::Value;

/// One `data:` of the stream.
#[derive(Debug, Default, Deserialize)]
pub struct Chunk {
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Delta {
    #[serde(default)]
    pub content: Option<String>,
    /// Reasoning, as DeepSeek, vLLM and llama.cpp's server name it.
    #[serde(default)]
    pub reasoning_content: Option<String>,
    /// Reasoning, as Ollama and OpenRouter name it.
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ToolCallDelta>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCallDelta {
    #[serde(default)]
    pub index: usize,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
pub struct FunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

/// Tokens a completion used, when the server says (`stream_options.include_usage`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// What a chunk adds to the answer being shown.
#[derive(Debug, PartialEq)]
pub enum Piece {
    Text(String),
    Reasoning(String),
}

/// A tool call, once the stream has ended (its arguments whole).
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// As the model wrote them: JSON text, unparsed.
    pub arguments: String,
}

impl ToolCall {
    /// The arguments as JSON (an object when the model wrote none).
    pub fn input(&self) -> Value {
        if self.arguments.trim().is_empty() {
            return Value::Object(Default::default());
        }
        serde_json::from_str(&self.arguments).unwrap_or(Value::String(self.arguments.clone()))
    }
}

/// The whole reply.
#[derive(Debug, Default, PartialEq)]
pub struct Reply {
    pub text: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `tool_calls`, `length`, …; `None` if the stream ended without saying.
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

/// The fold.
#[derive(Default)]
pub struct Fold {
    reply: Reply,
    /// Tool calls being streamed, by their `index` in the reply.
    calls: Vec<(usize, ToolCall)>,
}

impl Fold {
    /// The pieces `chunk` adds to what is shown.
    pub fn chunk(&mut self, chunk: Chunk) -> Vec<Piece> {
        let mut pieces = Vec::new();
        if let Some(usage) = chunk.usage {
            self.reply.usage = Some(usage);
        }
        // One choice is asked for (n = 1); a server that sends more is read for the first.
        let Some(choice) = chunk.choices.into_iter().next() else {
            return pieces;
        };
        let delta = choice.delta;
        for reasoning in [delta.reasoning_content, delta.reasoning]
            .into_iter()
            .flatten()
        {
            if !reasoning.is_empty() {
                self.reply.reasoning.push_str(&reasoning);
                pieces.push(Piece::Reasoning(reasoning));
            }
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            self.reply.text.push_str(&text);
            pieces.push(Piece::Text(text));
        }
        for part in delta.tool_calls {
            let at = match self.calls.iter().position(|(i, _)| *i == part.index) {
                Some(at) => at,
                None => {
                    let call = ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    };
                    self.calls.push((part.index, call));
                    self.calls.len() - 1
                }
            };
            let call = &mut self.calls[at].1;
            if let Some(id) = part.id.filter(|id| !id.is_empty()) {
                call.id = id;
            }
            if let Some(function) = part.function {
                if let Some(name) = function.name.filter(|n| !n.is_empty()) {
                    call.name = name;
                }
                if let Some(arguments) = function.arguments {
                    call.arguments.push_str(&arguments);
                }
            }
        }
        if let Some(reason) = choice.finish_reason {
            self.reply.finish_reason = Some(reason);
        }
        pieces
    }

    /// Why the model stopped, once it said.
    pub fn finish_reason(&self) -> Option<&str> {
        self.reply.finish_reason.as_deref()
    }

    /// The reply so far, with its tool calls in the order the model gave them. A call the
    /// server sent without an id gets one (`call_{index}`), so its result can name it.
    pub fn finish(mut self) -> Reply {
        self.calls.sort_by_key(|(index, _)| *index);
        self.reply.tool_calls = self
            .calls
            .into_iter()
            .filter(|(_, call)| !call.name.is_empty())
            .map(|(index, mut call)| {
                if call.id.is_empty() {
                    call.id = format!("call_{index}");
                }
                call
            })
            .collect();
        self.reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fold(chunks: Value) -> (Vec<Piece>, Reply) {
        let mut fold = Fold::default();
        let mut pieces = Vec::new();
        for chunk in chunks.as_array().expect("array") {
            let chunk: Chunk = serde_json::from_value(chunk.clone()).expect("a chunk");
            pieces.extend(fold.chunk(chunk));
        }
        (pieces, fold.finish())
    }

    #[test]
    fn text_and_reasoning_stream_as_pieces_and_add_up_to_the_reply() {
        let (pieces, reply) = fold(json!([
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
            {"choices": [{"index": 0, "delta": {"reasoning_content": "Let me "}}]},
            {"choices": [{"index": 0, "delta": {"reasoning": "think."}}]},
            {"choices": [{"index": 0, "delta": {"content": "Hello"}}]},
            {"choices": [{"index": 0, "delta": {"content": " world"}, "finish_reason": "stop"}]},
            {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}
        ]));
        assert_eq!(
            pieces,
            [
                Piece::Reasoning("Let me ".into()),
                Piece::Reasoning("think.".into()),
                Piece::Text("Hello".into()),
                Piece::Text(" world".into()),
            ]
        );
        assert_eq!(reply.text, "Hello world");
        assert_eq!(reply.reasoning, "Let me think.");
        assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            reply.usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 3
            })
        );
    }

    #[test]
    fn parallel_tool_calls_split_across_chunks_are_put_together_by_index() {
        let (pieces, reply) = fold(json!([
            {"choices": [{"delta": {"tool_calls": [
                {"index": 0, "id": "call_a", "type": "function", "function": {"name": "search_docs", "arguments": ""}},
                {"index": 1, "id": "call_b", "type": "function", "function": {"name": "ask_user", "arguments": "{\"qu"}}
            ]}}]},
            {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"query\": "}}]}}]},
            {"choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"arguments": "estion\": \"Why?\"}"}}]}}]},
            {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"resume\"}"}}]}}]},
            {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}
        ]));
        assert!(pieces.is_empty());
        assert_eq!(reply.tool_calls.len(), 2);
        assert_eq!(reply.tool_calls[0].id, "call_a");
        assert_eq!(reply.tool_calls[0].input(), json!({"query": "resume"}));
        assert_eq!(reply.tool_calls[1].name, "ask_user");
        assert_eq!(reply.tool_calls[1].input(), json!({"question": "Why?"}));
        assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
    }

    #[test]
    fn a_tool_call_without_an_id_gets_one() {
        let (_, reply) = fold(json!([
            {"choices": [{"delta": {"tool_calls": [{"index": 3, "function": {"name": "search_docs", "arguments": "{}"}}]}}]}
        ]));
        assert_eq!(reply.tool_calls[0].id, "call_3");
        assert_eq!(reply.finish_reason, None);
    }
}
