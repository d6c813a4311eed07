//! Reading a Server-Sent Events reply from an upstream Lantern calls (an AG-UI agent, an
//! OpenAI-compatible model server): the ecosystem's parser (`eventsource-stream`) over the
//! response's bytes, with a limit on silence — no byte for that long ends the stream with
//! [`SseError::Silent`]; a keep-alive comment counts as a byte — and errors that say what
//! happened.

use std::error::Error as _;
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};

/// Why an event stream stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("nothing for {} s", .0.as_secs())]
    Silent(Duration),
    #[error("the connection broke: {0}")]
    Broken(String),
    #[error("not a valid event stream: {0}")]
    Malformed(String),
}

/// The HTTP client for an upstream: Lantern's user agent, a bounded connect, and no redirects
/// followed — only the URL the operator configured is ever called (and a key sent to it goes
/// nowhere else).
pub fn client(connect_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("lantern/", env!("CARGO_PKG_VERSION")))
        .build()
        // Only fails when the TLS backend cannot start, which no request could survive.
        .unwrap_or_default()
}

/// The events of `response`'s body, in order.
pub fn events(
    response: reqwest::Response,
    silence: Duration,
) -> impl Stream<Item = Result<Event, SseError>> + Send {
    let bytes = futures::stream::unfold(
        Box::pin(response.bytes_stream()),
        move |mut body| async move {
            match tokio::time::timeout(silence, body.next()).await {
                Ok(Some(Ok(bytes))) => Some((Ok(bytes), body)),
                Ok(Some(Err(e))) => Some((Err(SseError::Broken(chain(&e))), body)),
                Ok(None) => None,
                Err(_) => Some((Err(SseError::Silent(silence)), body)),
            }
        },
    );
    bytes.eventsource().map(|event| {
        event.map_err(|error| match error {
            EventStreamError::Transport(error) => error,
            other => SseError::Malformed(other.to_string()),
        })
    })
}

/// An error with its causes: reqwest's own message alone ("error sending request") does not
/// say that the connection was refused.
pub fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
