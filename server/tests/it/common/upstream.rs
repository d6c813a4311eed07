//! A scripted upstream Lantern calls (an AG-UI agent that misbehaves on demand, an
//! OpenAI-compatible model server): a real HTTP server on an ephemeral port that answers POSTs
//! to one path with canned replies, in order, records what it was sent, and says when a reply
//! that never ends had its connection closed by Lantern.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::response::Response;
use futures::StreamExt;
use serde_json::Value;

/// One canned reply.
#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// The body, in pieces sent as they are.
    pub body: Vec<String>,
    /// Never end the body after `body` (an upstream that stalls).
    pub hang: bool,
}

impl Canned {
    /// A `200 text/event-stream` of `data:` messages, each payload as given.
    pub fn sse(data: impl IntoIterator<Item = String>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            body: data.into_iter().map(|d| format!("data: {d}\n\n")).collect(),
            hang: false,
        }
    }

    /// A plain reply: `status`, a content type and a body.
    pub fn plain(status: u16, content_type: &str, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", content_type.into())],
            body: vec![body.into()],
            hang: false,
        }
    }
}

pub struct Upstream {
    /// `http://127.0.0.1:PORT{path}`.
    pub url: url::Url,
    requests: Arc<Mutex<Vec<Value>>>,
    /// The `Authorization` header of each request, in order.
    authorizations: Arc<Mutex<Vec<Option<String>>>>,
    /// One message each time a hanging reply's connection closed.
    pub closed: tokio::sync::mpsc::UnboundedReceiver<()>,
}

/// Sends once when dropped: a reply's body is dropped when its connection closes.
struct OnDrop(tokio::sync::mpsc::UnboundedSender<()>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl Upstream {
    /// Serve `replies` to POSTs on `path`, one per request; past the last, every request gets
    /// `repeat` (or a 500 saying the script ran out).
    pub async fn start(path: &str, replies: Vec<Canned>, repeat: Option<Canned>) -> Self {
        let queue = Arc::new(Mutex::new(VecDeque::from(replies)));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let (closed_tx, closed) = tokio::sync::mpsc::unbounded_channel();
        let (seen, auth_seen) = (requests.clone(), authorizations.clone());
        let handler = move |headers: axum::http::HeaderMap, body: String| {
            let (queue, seen, closed_tx) = (queue.clone(), seen.clone(), closed_tx.clone());
            let (repeat, auth_seen) = (repeat.clone(), auth_seen.clone());
            async move {
                let authorization = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                auth_seen.lock().expect("lock").push(authorization);
                let sent = serde_json::from_str(&body).unwrap_or(Value::String(body));
                seen.lock().expect("lock").push(sent);
                let next = queue.lock().expect("lock").pop_front();
                let reply = next.or(repeat).unwrap_or_else(|| {
                    Canned::plain(500, "text/plain", "the test's script ran out")
                });
                reply_with(reply, OnDrop(closed_tx))
            }
        };
        let app = axum::Router::new().route(path, axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}{path}").parse().expect("url"),
            requests,
            authorizations,
            closed,
        }
    }

    /// The `Authorization` headers of the requests so far, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.authorizations.lock().expect("lock").clone()
    }

    /// The JSON bodies of the requests so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().expect("lock").clone()
    }
}

fn reply_with(reply: Canned, guard: OnDrop) -> Response {
    let head =
        futures::stream::iter(reply.body).map(|piece| Ok::<_, Infallible>(piece.into_bytes()));
    let body = if reply.hang {
        let tail = futures::stream::pending().map(move |()| {
            let _keep = &guard;
            Ok(Vec::new())
        });
        Body::from_stream(head.chain(tail))
    } else {
        drop(guard);
        Body::from_stream(head)
    };
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response.body(body).expect("response")
}
