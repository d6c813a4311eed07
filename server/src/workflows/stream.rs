//! Streaming a built-in agent's text the way any producer does (PROTOCOL.md §1): word by word
//! as `text_delta` (or `thinking_delta`) events under one new `message_id`, then the close
//! (`agent_response` / `agent_thinking`) without `content`, which the hub fills in with the
//! words joined — so the log holds the whole message in one event, as for an outside agent.

use std::time::Duration;

use app::protocol::EventBody;

use crate::error::Result;
use crate::hub::Hub;

/// The longest a built-in takes to stream one message, however long: the pause between words
/// shrinks for long texts. Why pause at all: the built-ins are what a new user first sees, and
/// an answer that arrives in one piece shows nothing of streaming.
const MAX_STREAM: Duration = Duration::from_secs(2);

/// Streamed answer or streamed reasoning.
#[derive(Clone, Copy, Debug)]
pub enum Streamed {
    Text,
    Thinking,
}

/// A new message id, unique in the workflow (and beyond).
pub fn message_id() -> String {
    format!("msg_{}", ulid::Ulid::new())
}

/// Stream `text` from `agent` into workflow `id`, a word (with its trailing space) per delta,
/// `pause` apart at most, then close it. Returns the message's id.
pub async fn stream(
    hub: &Hub,
    id: &str,
    agent: &str,
    kind: Streamed,
    text: &str,
    pause: Duration,
) -> Result<String> {
    let message_id = message_id();
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let pause = pause.min(MAX_STREAM / (words.len().max(1) as u32));
    for (at, word) in words.into_iter().enumerate() {
        if at > 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let (agent, message_id, delta) = (agent.to_owned(), message_id.clone(), word.to_owned());
        let body = match kind {
            Streamed::Text => EventBody::TextDelta {
                agent,
                message_id,
                delta,
            },
            Streamed::Thinking => EventBody::ThinkingDelta {
                agent,
                message_id,
                delta,
            },
        };
        hub.publish_bodies(id, vec![body]).await?;
    }
    let (agent, message_id_) = (agent.to_owned(), Some(message_id.clone()));
    let close = match kind {
        // With no deltas (an empty text) there is nothing to fill in: the content is given.
        Streamed::Text => EventBody::AgentResponse {
            agent,
            content: text.is_empty().then(String::new),
            message_id: message_id_,
        },
        Streamed::Thinking => EventBody::AgentThinking {
            agent,
            content: text.is_empty().then(String::new),
            message_id: message_id_,
        },
    };
    hub.publish_bodies(id, vec![close]).await?;
    Ok(message_id)
}
