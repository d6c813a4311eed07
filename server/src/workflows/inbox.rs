//! A built-in workflow's view of its own log: the users' messages to it, in order, the answers
//! to its interrupts, and whether the workflow has ended (cancelled by a user, or failed by the
//! server) under it.

use std::collections::{HashMap, VecDeque};

use std::time::Duration;

use app::protocol::{vocab, EventBody, InterruptStatus, WorkflowStatus};
use serde_json::Value;

use crate::error::Result;
use crate::hub::Feed;

/// What came of waiting for a message.
pub enum Said {
    Message(String),
    /// The workflow ended under us.
    Ended,
    /// Nobody said anything for this long.
    Nothing(Duration),
}

impl Said {
    /// The terminal status a built-in workflow ends with when nobody said anything.
    pub fn idle_end(waited: Duration) -> EventBody {
        EventBody::WorkflowStatus {
            status: WorkflowStatus::Completed,
            detail: Some(format!(
                "finished by itself after {} minutes without a message",
                waited.as_secs() / 60
            )),
        }
    }

    /// Whether a message is the word that finishes a built-in workflow.
    pub fn is_finish(message: &str) -> bool {
        message.trim().eq_ignore_ascii_case(vocab::FINISH)
    }
}

/// How an interrupt was closed.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: InterruptStatus,
    pub payload: Option<Value>,
    /// Who answered; `None` when the server closed it.
    pub user: Option<String>,
}

/// What came of waiting for an answer.
pub enum Answered {
    Answer(Answer),
    Ended,
    Nothing(Duration),
}

pub struct Inbox {
    feed: Feed,
    /// Messages read from the feed (while waiting for something else) and not taken yet.
    unread: VecDeque<String>,
    /// Answers read from the feed and not taken yet, by interrupt id.
    answers: HashMap<String, Answer>,
    /// A terminal status was seen: nothing more will happen.
    ended: bool,
}

impl Inbox {
    pub fn new(feed: Feed) -> Self {
        Self {
            feed,
            unread: VecDeque::new(),
            answers: HashMap::new(),
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
            EventBody::InterruptResolved {
                interrupt_id,
                status,
                payload,
                user,
                ..
            } => {
                let answer = Answer {
                    status,
                    payload,
                    user,
                };
                self.answers.insert(interrupt_id, answer);
            }
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

    /// The next message from a user, waiting at most `idle` (forever when `None`).
    pub async fn next_message_within(&mut self, idle: Option<Duration>) -> Result<Said> {
        let next = self.next_message();
        let said = match idle {
            Some(idle) => match tokio::time::timeout(idle, next).await {
                Ok(said) => said?,
                Err(_) => return Ok(Said::Nothing(idle)),
            },
            None => next.await?,
        };
        Ok(said.map_or(Said::Ended, Said::Message))
    }

    /// The answer to interrupt `interrupt_id`, waiting at most `idle` (forever when `None`);
    /// messages that come meanwhile are kept for [`Inbox::next_message`]. `Ended` once the
    /// workflow has ended; `Nothing` when nobody answered in time.
    pub async fn answer_within(
        &mut self,
        interrupt_id: &str,
        idle: Option<Duration>,
    ) -> Result<Answered> {
        let wait = async {
            loop {
                if let Some(answer) = self.answers.remove(interrupt_id) {
                    return Ok(Answered::Answer(answer));
                }
                if self.ended || !self.read_one().await? {
                    return Ok(Answered::Ended);
                }
            }
        };
        match idle {
            Some(idle) => match tokio::time::timeout(idle, wait).await {
                Ok(answered) => answered,
                Err(_) => Ok(Answered::Nothing(idle)),
            },
            None => wait.await,
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
