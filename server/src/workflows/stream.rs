//! Streaming a built-in agent's text the way any producer does (PROTOCOL.md §1): word by word
//! as `text_delta` (or `thinking_delta`) events under one new `message_id`, then the close
//! (`agent_response` / `agent_thinking`) without `content`, which the hub fills in with the
//! words joined — so the log holds the whole message in one event, as for an outside agent.

use std::time::Duration;

use crate::error::Result;
use crate::hub::Hub;
use crate::lifecycle::MessageKind;

/// The longest a built-in takes to stream one message, however long: the pause between words
/// shrinks for long texts. Why pause at all: the built-ins are what a new user first sees, and
/// an answer that arrives in one piece shows nothing of streaming.
const MAX_STREAM: Duration = Duration::from_secs(2);

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
    kind: MessageKind,
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
        let body = kind.delta(agent.to_owned(), message_id.clone(), word.to_owned());
        hub.publish_bodies(id, vec![body]).await?;
    }
    // With no deltas (an empty text) there is nothing to fill in: the content is given.
    let content = text.is_empty().then(String::new);
    let close = kind.close(agent.to_owned(), content, Some(message_id.clone()));
    hub.publish_bodies(id, vec![close]).await?;
    Ok(message_id)
}
