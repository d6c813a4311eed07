//! A Server-Sent Events reader over a real HTTP response, as the tests of the event streams
//! read them: whole messages (`event:`, `id:`, `data:`), comments kept apart.

use serde_json::Value;

use super::WAIT;

/// One SSE block: a message, or a comment line (`: ...`).
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Message {
        event: Option<String>,
        id: Option<u64>,
        data: String,
    },
    Comment(String),
}

pub struct SseReader {
    pub response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    /// Read `response`, which must be a 200 `text/event-stream`.
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200, "the stream opens");
        let kind = response.headers()["content-type"].to_str().expect("ascii");
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next block, or `None` when the stream ended. Fails the test after [`WAIT`].
    pub async fn next_block(&mut self) -> Option<Block> {
        tokio::time::timeout(WAIT, self.read_block())
            .await
            .expect("a block or the end of the stream in time")
    }

    /// The next message (comments skipped): its `event:` name (or `message`), its `id:`,
    /// its parsed `data:`.
    pub async fn next(&mut self) -> Option<(String, Option<u64>, Value)> {
        loop {
            match self.next_block().await? {
                Block::Comment(_) => continue,
                Block::Message { event, id, data } => {
                    let data = serde_json::from_str(&data).expect("JSON data");
                    return Some((event.unwrap_or_else(|| "message".into()), id, data));
                }
            }
        }
    }

    async fn read_block(&mut self) -> Option<Block> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        return Some(Block::Comment(comment.trim().to_owned()));
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse().expect("a numeric id"));
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                return Some(Block::Message { event, id, data });
            }
            let chunk = self.response.chunk().await.ok()??;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }
}
