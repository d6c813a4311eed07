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
use crate::protocol::{ClientFrame, LoggedEvent};

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

/// Dial, stay connected as long as the socket lives, wait out the backoff, repeat. One loop,
/// so one timer: a drop is handled once, whatever the browser reports about it.
async fn run(
    workflow_id: String,
    resume_after: u64,
    w: SocketWriters,
    mut commands: UnboundedReceiver<Command>,
) {
    let mut machine = SocketMachine::new(Backoff::default()).resuming_after(resume_after);
    loop {
        if machine.is_offline() {
            wait_online(&mut machine, &w, &mut commands).await;
        }
        machine.connecting();
        w.state.set(machine.state().clone());
        let ended = match WebSocket::open(&socket_url(&workflow_id, machine.last_seq())) {
            Ok(ws) => connected(ws, &mut machine, &w, &mut commands).await,
            Err(_) => Ended::Closed(None),
        };
        let code = match ended {
            Ended::Offline => {
                machine.went_offline();
                w.state.set(machine.state().clone());
                continue;
            }
            Ended::Closed(code) => code,
        };
        match machine.on_closed(code, js_sys::Math::random(), now_ms()) {
            AfterClose::Stop => {
                w.state.set(machine.state().clone());
                return;
            }
            AfterClose::AlreadyHandled => {}
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

/// The driver's clock (ms since the epoch).
fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Queue an input or an answer (`command`, one of those two); mirror the pending lists into
/// the signals; the frame to send when a socket is up.
fn queue(machine: &mut SocketMachine, w: &SocketWriters, command: Command) -> Option<ClientFrame> {
    let frame = match command {
        Command::Input {
            client_msg_id,
            content,
        } => {
            let frame = machine.queue_input(client_msg_id, content);
            w.pending.set(machine.pending().to_vec());
            frame
        }
        Command::Resolve {
            client_msg_id,
            interrupt_id,
            status,
            payload,
        } => {
            let frame = machine.queue_answer(client_msg_id, interrupt_id, status, payload);
            w.answers.set(machine.answers().to_vec());
            frame
        }
        Command::RetryNow | Command::Offline => return None,
    };
    Some(frame)
}

/// Sleep `delay_ms`, still taking the user's input (queued) and "retry now"; going offline
/// ends the wait (the loop then waits for the network instead).
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
                Some(command @ (Command::Input { .. } | Command::Resolve { .. })) => {
                    queue(machine, w, command);
                }
                Some(Command::Offline) => {
                    machine.went_offline();
                    w.state.set(machine.state().clone());
                    return;
                }
                Some(Command::RetryNow) | None => return,
            },
        }
    }
}

/// Offline: dial nothing until the browser is back online (or the user asks to retry).
async fn wait_online(
    machine: &mut SocketMachine,
    w: &SocketWriters,
    commands: &mut UnboundedReceiver<Command>,
) {
    while let Some(command) = commands.next().await {
        match command {
            Command::Input { .. } | Command::Resolve { .. } => {
                queue(machine, w, command);
            }
            Command::Offline => {}
            Command::RetryNow => return,
        }
    }
}

/// How a connection ended.
enum Ended {
    /// The socket closed with this code (`None`: no clean close, or a dead heartbeat).
    Closed(Option<u16>),
    /// The browser went offline; the socket was dropped on purpose.
    Offline,
}

/// What woke the connected loop.
enum Wake {
    Frame(Option<Result<Message, WebSocketError>>),
    Command(Option<Command>),
    /// The timer: events to show, or a heartbeat due.
    TimerDue,
}

/// Events arriving in a burst are shown together, at most this often: one update of the event
/// list (and of everything drawn from it) per frame of the screen, not one per event. Each
/// browser message is a task of its own, so only a timer lets a burst's messages gather.
const RENDER_EVERY_MS: u32 = 16;

/// Pump one open socket until it ends.
async fn connected(
    ws: WebSocket,
    machine: &mut SocketMachine,
    w: &SocketWriters,
    commands: &mut UnboundedReceiver<Command>,
) -> Ended {
    let (mut sink, stream) = ws.split();
    let mut stream = stream.fuse();
    // One timer for both: showing the events that arrived (soon), else the next heartbeat. A
    // burst postpones heartbeats, which is right: its events show the server is alive.
    let mut timer = TimeoutFuture::new(machine.heartbeat_ms() as u32).fuse();
    // Events received and not shown yet, and how many pending inputs and answers the page
    // shows.
    let mut arrived: Vec<LoggedEvent> = Vec::new();
    let mut pending_shown = shown_counts(machine);
    let ended = loop {
        let wake = futures::select! {
            frame = stream.next() => Wake::Frame(frame),
            command = commands.next() => Wake::Command(command),
            _ = timer => Wake::TimerDue,
        };
        let outgoing: Vec<ClientFrame> = match wake {
            Wake::Frame(Some(Ok(Message::Text(text)))) => match machine.on_text(&text, now_ms()) {
                Incoming::Event(event) => {
                    if arrived.is_empty() {
                        timer = TimeoutFuture::new(RENDER_EVERY_MS).fuse();
                    }
                    arrived.push(event);
                    vec![]
                }
                Incoming::Hello { resend } => {
                    w.state.set(machine.state().clone());
                    w.last_error.set(None);
                    timer = TimeoutFuture::new(machine.heartbeat_ms() as u32).fuse();
                    resend
                }
                Incoming::Acked { .. } => {
                    mirror_pending(machine, w, &mut pending_shown);
                    vec![]
                }
                Incoming::ServerError { message } => {
                    w.last_error.set(Some(message));
                    vec![]
                }
                Incoming::AnswerRefused { message, .. } => {
                    mirror_pending(machine, w, &mut pending_shown);
                    w.last_error.set(Some(message));
                    vec![]
                }
                Incoming::Resync => break Ended::Closed(None),
                Incoming::Ignored => vec![],
            },
            Wake::Frame(Some(Ok(Message::Bytes(_)))) => vec![],
            Wake::Frame(Some(Err(WebSocketError::ConnectionClose(event)))) => {
                break Ended::Closed(Some(event.code))
            }
            // An `error` event; the `close` event follows it.
            Wake::Frame(Some(Err(_))) => vec![],
            Wake::Frame(None) => break Ended::Closed(None),
            Wake::Command(Some(command @ (Command::Input { .. } | Command::Resolve { .. }))) => {
                let frame = queue(machine, w, command);
                pending_shown = shown_counts(machine);
                frame.into_iter().collect()
            }
            Wake::Command(Some(Command::RetryNow)) => vec![],
            Wake::Command(Some(Command::Offline)) => break Ended::Offline,
            Wake::Command(None) => break Ended::Closed(Some(1000)),
            Wake::TimerDue if !arrived.is_empty() => {
                show(&mut arrived, machine, w, &mut pending_shown);
                timer = TimeoutFuture::new(machine.heartbeat_ms() as u32).fuse();
                vec![]
            }
            Wake::TimerDue => {
                timer = TimeoutFuture::new(machine.heartbeat_ms() as u32).fuse();
                match machine.heartbeat_tick(new_client_msg_id()) {
                    Some(frame) => vec![frame],
                    // A whole period since a heartbeat was sent, and not one frame from the
                    // server: the socket is dead even if the browser has not noticed. Drop it
                    // and reconnect.
                    None => break Ended::Closed(None),
                }
            }
        };
        let mut sent = true;
        for frame in outgoing {
            let Ok(text) = serde_json::to_string(&frame) else {
                continue;
            };
            if sink.send(Message::Text(text)).await.is_err() {
                sent = false;
                break;
            }
        }
        if !sent {
            break Ended::Closed(None);
        }
    };
    // Events received are the log's: show them whatever ended the socket.
    show(&mut arrived, machine, w, &mut pending_shown);
    ended
}

/// How many pending inputs and answers the machine holds (what the page shows, once mirrored).
fn shown_counts(machine: &SocketMachine) -> (usize, usize) {
    (machine.pending().len(), machine.answers().len())
}

/// Mirror the pending inputs and answers into their signals (both: an ack may be for either).
fn mirror_pending(machine: &SocketMachine, w: &SocketWriters, shown: &mut (usize, usize)) {
    *shown = shown_counts(machine);
    w.pending.set(machine.pending().to_vec());
    w.answers.set(machine.answers().to_vec());
}

/// Show the events that arrived, in one update of the event list, then the pending inputs and
/// answers (one leaves once its event is shown, so a card never shows neither).
fn show(
    arrived: &mut Vec<LoggedEvent>,
    machine: &SocketMachine,
    w: &SocketWriters,
    pending_shown: &mut (usize, usize),
) {
    if !arrived.is_empty() {
        w.events.update(|events| events.append(arrived));
    }
    let now = shown_counts(machine);
    if now.0 != pending_shown.0 {
        w.pending.set(machine.pending().to_vec());
    }
    if now.1 != pending_shown.1 {
        w.answers.set(machine.answers().to_vec());
    }
    *pending_shown = now;
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
