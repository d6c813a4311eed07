//! A built-in workflow's view of its own log: the users' messages to it, in order, and whether
//! the workflow has ended (cancelled by a user, or failed by the server) under it.

use std::collections::VecDeque;

use app::protocol::EventBody;

use crate::error::Result;
use crate::hub::Feed;

pub struct Inbox {
    feed: Feed,
    /// Messages read from the feed (while waiting for something else) and not taken yet.
    unread: VecDeque<String>,
    /// A terminal status was seen: nothing more will happen.
    ended: bool,
}

impl Inbox {
    pub fn new(feed: Feed) -> Self {
        Self {
            feed,
            unread: VecDeque::new(),
            ended: false,
        }
    }

    /// Read one event of the log; false when there is nothing more to read.
    async fn read_one(&mut self) -> Result<bool> {
        let Some(event) = self.feed.next().await? else {
            self.ended = true;
            return Ok(false);
        };
        match event.event()?.body {
            EventBody::UserInput { content, .. } => self.unread.push_back(content),
            EventBody::WorkflowStatus { status, .. } if status.is_terminal() => self.ended = true,
            _ => {}
        }
        Ok(!self.ended)
    }

    /// The next message from a user; `None` once the workflow has ended.
    pub async fn next_message(&mut self) -> Result<Option<String>> {
        loop {
            if let Some(message) = self.unread.pop_front() {
                return Ok(Some(message));
            }
            if self.ended || !self.read_one().await? {
                return Ok(None);
            }
        }
    }

    /// Resolves once the workflow has ended (keeping any messages read meanwhile).
    /// Cancel-safe: meant for `select!` beside long work.
    pub async fn ended(&mut self) -> Result<()> {
        while !self.ended {
            self.read_one().await?;
        }
        Ok(())
    }
}
