//! The run page's connection to `/ws/workflow/{id}`: ONE reusable hook, [`use_workflow_socket`].
//!
//! - [`machine`]: the pure state machine (state, backoff, resume cursor, dedupe, pending inputs,
//!   heartbeats), unit-tested on the host.
//! - `driver` (only with `hydrate`): the gloo-net loop that feeds the machine and mirrors it
//!   into signals. There is exactly one loop per hook, so exactly one reconnect timer.
//!
//! On the server (SSR) the hook returns the same signals, idle in `connecting`; the browser
//! takes over after hydration.

pub mod machine;

#[cfg(feature = "hydrate")]
mod driver;

use leptos::prelude::*;

pub use machine::{ConnectionState, PendingAnswer, PendingInput};

use crate::protocol::{InterruptStatus, LoggedEvent};

/// What the UI asks of the connection.
#[derive(Clone, Debug)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub(crate) enum Command {
    /// Send a `user_input` (queued until acked, resent after a reconnect).
    Input {
        client_msg_id: String,
        content: String,
    },
    /// Send a `resolve` (an answer to an interrupt), queued and resent like an input.
    Resolve {
        client_msg_id: String,
        interrupt_id: String,
        status: InterruptStatus,
        payload: Option<serde_json::Value>,
    },
    /// Skip the rest of the backoff delay and dial now (the "retry now" button, the browser's
    /// `online` event, the tab becoming visible again).
    RetryNow,
    /// The browser's `offline` event: drop the socket, dial nothing until `RetryNow`.
    Offline,
}

/// The signals a page reads, and what it can ask for.
#[derive(Clone, Copy)]
pub struct WorkflowSocket {
    /// Connection state for the badge.
    pub state: ReadSignal<ConnectionState>,
    /// The client's copy of the log: every event once, in `seq` order.
    pub events: ReadSignal<Vec<LoggedEvent>>,
    /// Inputs sent but not acknowledged yet.
    pub pending: ReadSignal<Vec<PendingInput>>,
    /// Answers to interrupts not in the log yet (pending until acked, then until their event).
    pub answers: ReadSignal<Vec<PendingAnswer>>,
    /// How many times the connection was re-established after a drop.
    pub reconnects: ReadSignal<u32>,
    /// The last `error` frame the server sent, to show the user.
    pub last_error: ReadSignal<Option<String>>,
    /// Feeds the driver; `None` on the server, where there is no connection.
    commands: StoredValue<Option<futures::channel::mpsc::UnboundedSender<Command>>>,
}

impl WorkflowSocket {
    /// Send `content` as `user_input`. Delivered exactly once, even across reconnects.
    pub fn send_input(&self, content: String) {
        let client_msg_id = new_client_msg_id();
        self.command(Command::Input {
            client_msg_id,
            content,
        });
    }

    /// Answer interrupt `interrupt_id`. Delivered exactly once, even across reconnects and when
    /// given offline; the first answer wins (a later one is refused and dropped).
    pub fn resolve(
        &self,
        interrupt_id: String,
        status: InterruptStatus,
        payload: Option<serde_json::Value>,
    ) {
        self.command(Command::Resolve {
            client_msg_id: new_client_msg_id(),
            interrupt_id,
            status,
            payload,
        });
    }

    /// Reconnect now instead of waiting out the backoff.
    pub fn retry_now(&self) {
        self.command(Command::RetryNow);
    }

    fn command(&self, command: Command) {
        self.commands.with_value(|tx| {
            if let Some(tx) = tx {
                // The driver only stops when the page is gone; nothing to tell anyone then.
                let _ = tx.unbounded_send(command);
            }
        });
    }
}

/// Signals the driver writes.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub(crate) struct SocketWriters {
    pub state: WriteSignal<ConnectionState>,
    pub events: WriteSignal<Vec<LoggedEvent>>,
    pub pending: WriteSignal<Vec<PendingInput>>,
    pub answers: WriteSignal<Vec<PendingAnswer>>,
    pub reconnects: WriteSignal<u32>,
    pub last_error: WriteSignal<Option<String>>,
}

/// Connect to workflow `workflow_id` for as long as the calling component lives, holding
/// `initial` (the events already rendered, in order) and resuming right after them.
pub fn use_workflow_socket(workflow_id: String, initial: Vec<LoggedEvent>) -> WorkflowSocket {
    let resume_after = initial.last().map_or(0, |e| e.seq);
    let (state, set_state) = signal(ConnectionState::Connecting);
    let (events, set_events) = signal(initial);
    let (pending, set_pending) = signal(Vec::<PendingInput>::new());
    let (answers, set_answers) = signal(Vec::<PendingAnswer>::new());
    let (reconnects, set_reconnects) = signal(0u32);
    let (last_error, set_last_error) = signal(None::<String>);
    let writers = SocketWriters {
        state: set_state,
        events: set_events,
        pending: set_pending,
        answers: set_answers,
        reconnects: set_reconnects,
        last_error: set_last_error,
    };
    let commands = StoredValue::new(start(workflow_id, resume_after, writers));
    WorkflowSocket {
        state,
        events,
        pending,
        answers,
        reconnects,
        last_error,
        commands,
    }
}

#[cfg(feature = "hydrate")]
fn start(
    workflow_id: String,
    resume_after: u64,
    writers: SocketWriters,
) -> Option<futures::channel::mpsc::UnboundedSender<Command>> {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let stop = driver::spawn(workflow_id, resume_after, writers, rx);
    let listeners = browser_listeners(&tx);
    // Unmounting the page aborts the loop, which drops (and so closes) the socket and its
    // timer, and removes the window listeners.
    on_cleanup(move || {
        stop.abort();
        for listener in listeners {
            listener.remove();
        }
    });
    Some(tx)
}

/// The browser's own hints about the network: `offline` drops the socket at once (never claim
/// `live` on a socket the browser knows is cut), `online` and a tab becoming visible again
/// retry at once instead of waiting out the backoff.
#[cfg(feature = "hydrate")]
fn browser_listeners(
    tx: &futures::channel::mpsc::UnboundedSender<Command>,
) -> Vec<leptos::leptos_dom::helpers::WindowListenerHandle> {
    use leptos::leptos_dom::helpers::window_event_listener_untyped;
    let on = |name: &str, command: fn() -> Command| {
        let tx = tx.clone();
        window_event_listener_untyped(name, move |_| {
            let _ = tx.unbounded_send(command());
        })
    };
    let visible = {
        let tx = tx.clone();
        window_event_listener_untyped("visibilitychange", move |_| {
            if document().visibility_state() == web_sys::VisibilityState::Visible {
                let _ = tx.unbounded_send(Command::RetryNow);
            }
        })
    };
    // Opened while already offline: say so instead of dialling into nothing.
    if !window().navigator().on_line() {
        let _ = tx.unbounded_send(Command::Offline);
    }
    vec![
        on("offline", || Command::Offline),
        on("online", || Command::RetryNow),
        visible,
    ]
}

#[cfg(not(feature = "hydrate"))]
fn start(
    _workflow_id: String,
    _resume_after: u64,
    _writers: SocketWriters,
) -> Option<futures::channel::mpsc::UnboundedSender<Command>> {
    None
}

/// A random id for an input (idempotency key). Uniqueness matters, unguessability does not.
fn new_client_msg_id() -> String {
    let a = random_u64();
    let b = random_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0xffff,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(feature = "hydrate")]
fn random_u64() -> u64 {
    // Math.random gives 52 good bits per call; two calls fill 64.
    let hi = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let lo = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    (hi << 32) | lo
}

#[cfg(not(feature = "hydrate"))]
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}
