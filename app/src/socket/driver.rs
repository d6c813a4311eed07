//! The browser side of the hook: one async loop per socket that dials with gloo-net, feeds
//! every frame, close and heartbeat tick to the [`SocketMachine`], does what it answers, and
//! mirrors its state into the signals. Runs only in the browser (`hydrate`).

use futures::future::{AbortHandle, Abortable};
use futures::{channel::mpsc::UnboundedReceiver, FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message, WebSocketError};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;

use super::machine::{AfterClose, Backoff, Incoming, SocketMachine};
use super::{new_client_msg_id, Command, SocketWriters};
use crate::protocol::ClientFrame;

/// Start the loop; the handle stops it.
pub(super) fn spawn(
    workflow_id: String,
    resume_after: u64,
    writers: SocketWriters,
    commands: UnboundedReceiver<Command>,
) -> AbortHandle {
    let (handle, registration) = AbortHandle::new_pair();
    let work = run(workflow_id, resume_after, writers, commands);
    leptos::task::spawn_local(async move {
        let _ = Abortable::new(work, registration).await;
    });
    handle
}

/// Dial, stay connected as long as the socket lives, wait out the backoff, repeat.
async fn run(
    workflow_id: String,
    resume_after: u64,
    w: SocketWriters,
    mut commands: UnboundedReceiver<Command>,
) {
    let mut machine = SocketMachine::new(Backoff::default()).resuming_after(resume_after);
    loop {
        machine.connecting();
        w.state.set(machine.state().clone());
        let close_code = match WebSocket::open(&socket_url(&workflow_id, machine.last_seq())) {
            Ok(ws) => connected(ws, &mut machine, &w, &mut commands).await,
            Err(_) => None,
        };
        match machine.on_closed(close_code, js_sys::Math::random()) {
            AfterClose::Stop => {
                w.state.set(machine.state().clone());
                return;
            }
            AfterClose::Retry {
                delay_ms,
                reset_log,
            } => {
                if reset_log {
                    w.events.set(Vec::new());
                }
                w.state.set(machine.state().clone());
                w.reconnects.update(|n| *n += 1);
                wait_out(delay_ms, &mut machine, &w, &mut commands).await;
            }
        }
    }
}

/// Sleep `delay_ms`, still taking the user's input (queued) and "retry now".
async fn wait_out(
    delay_ms: u64,
    machine: &mut SocketMachine,
    w: &SocketWriters,
    commands: &mut UnboundedReceiver<Command>,
) {
    let mut timer = TimeoutFuture::new(delay_ms.min(u32::MAX as u64) as u32).fuse();
    loop {
        futures::select! {
            _ = timer => return,
            command = commands.next() => match command {
                Some(Command::Input { client_msg_id, content }) => {
                    machine.queue_input(client_msg_id, content);
                    w.pending.set(machine.pending().to_vec());
                }
                Some(Command::RetryNow) | None => return,
            },
        }
    }
}

/// What woke the connected loop.
enum Wake {
    Frame(Option<Result<Message, WebSocketError>>),
    Command(Option<Command>),
    HeartbeatDue,
}

/// Pump one open socket until it closes; returns its close code (`None`: no clean close).
async fn connected(
    ws: WebSocket,
    machine: &mut SocketMachine,
    w: &SocketWriters,
    commands: &mut UnboundedReceiver<Command>,
) -> Option<u16> {
    let (mut sink, stream) = ws.split();
    let mut stream = stream.fuse();
    let mut heartbeat = TimeoutFuture::new(machine.heartbeat_ms() as u32).fuse();
    loop {
        let wake = futures::select! {
            frame = stream.next() => Wake::Frame(frame),
            command = commands.next() => Wake::Command(command),
            _ = heartbeat => Wake::HeartbeatDue,
        };
        let outgoing: Vec<ClientFrame> = match wake {
            Wake::Frame(Some(Ok(Message::Text(text)))) => match machine.on_text(&text) {
                Incoming::Event(event) => {
                    w.events.update(|events| events.push(event));
                    vec![]
                }
                Incoming::Hello { resend } => {
                    w.state.set(machine.state().clone());
                    w.last_error.set(None);
                    heartbeat = TimeoutFuture::new(machine.heartbeat_ms() as u32).fuse();
                    resend
                }
                Incoming::Acked { .. } => {
                    w.pending.set(machine.pending().to_vec());
                    vec![]
                }
                Incoming::ServerError { message } => {
                    w.last_error.set(Some(message));
                    vec![]
                }
                Incoming::Resync => return None,
                Incoming::Ignored => vec![],
            },
            Wake::Frame(Some(Ok(Message::Bytes(_)))) => vec![],
            Wake::Frame(Some(Err(WebSocketError::ConnectionClose(event)))) => {
                return Some(event.code)
            }
            // An `error` event; the `close` event follows it.
            Wake::Frame(Some(Err(_))) => vec![],
            Wake::Frame(None) => return None,
            Wake::Command(Some(Command::Input {
                client_msg_id,
                content,
            })) => {
                let frame = machine.queue_input(client_msg_id, content);
                w.pending.set(machine.pending().to_vec());
                vec![frame]
            }
            Wake::Command(Some(Command::RetryNow)) => vec![],
            Wake::Command(None) => return Some(1000),
            Wake::HeartbeatDue => {
                heartbeat = TimeoutFuture::new(machine.heartbeat_ms() as u32).fuse();
                match machine.heartbeat_tick(new_client_msg_id()) {
                    Some(frame) => vec![frame],
                    // The last heartbeat went unanswered for a whole period: the socket is dead
                    // even if the browser has not noticed. Drop it and reconnect.
                    None => return None,
                }
            }
        };
        for frame in outgoing {
            let Ok(text) = serde_json::to_string(&frame) else {
                continue;
            };
            if sink.send(Message::Text(text)).await.is_err() {
                return None;
            }
        }
    }
}

/// `ws(s)://<this host>/ws/workflow/<id>?after=<seq>`.
fn socket_url(workflow_id: &str, after: u64) -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_default();
    format!("{scheme}://{host}/ws/workflow/{workflow_id}?after={after}")
}
