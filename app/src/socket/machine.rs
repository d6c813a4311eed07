//! The client side of a workflow socket as a pure state machine: connection state, full-jitter
//! backoff, the resume cursor, dedupe by `seq`, inputs and answers to interrupts waiting for
//! their ack, and heartbeats.
//!
//! It does no I/O and owns no timer: the driver feeds it what happened (a frame, a close, a
//! heartbeat tick) and does what it answers. Randomness comes in as an argument, so every
//! decision is deterministic under test.

use crate::protocol::vocab::close;
use serde_json::Value;

use crate::protocol::{
    ClientFrame, ErrorCode, EventBody, InterruptStatus, LoggedEvent, ServerFrame, ServerMessage,
};

/// What the page shows about the connection.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectionState {
    /// Dialling the server (first attempt, or a retry whose delay has run out).
    Connecting,
    /// `hello` received: events flow as they are appended.
    Live,
    /// Dropped; the next attempt (`attempt`, from 1) starts after `delay_ms`, at `retry_at_ms`
    /// (the driver's clock), so the badge can count down.
    Reconnecting {
        attempt: u32,
        delay_ms: u64,
        retry_at_ms: f64,
    },
    /// The browser says it has no network: no dialling until it is back (or "retry now").
    Offline,
    /// Given up for good (the workflow is gone, or the page was left).
    Closed { reason: String },
}

impl ConnectionState {
    /// A short word for CSS classes and tests: `connecting`, `live`, `reconnecting`,
    /// `offline`, `closed`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Reconnecting { .. } => "reconnecting",
            Self::Offline => "offline",
            Self::Closed { .. } => "closed",
        }
    }

    /// What a person reads in the connection badge at time `now_ms` (the driver's clock): the
    /// reconnect delay counts down in whole seconds.
    pub fn describe(&self, now_ms: f64) -> String {
        match self {
            Self::Connecting => "connecting…".into(),
            Self::Live => "live".into(),
            Self::Reconnecting {
                attempt,
                retry_at_ms,
                ..
            } => {
                let left = ((retry_at_ms - now_ms) / 1000.0).ceil().max(0.0) as u64;
                format!("reconnecting in {left}s (attempt {attempt})")
            }
            Self::Offline => "offline".into(),
            Self::Closed { reason } => format!("closed: {reason}"),
        }
    }

    /// Whether a "retry now" button makes sense.
    pub fn can_retry(&self) -> bool {
        matches!(self, Self::Reconnecting { .. } | Self::Offline)
    }
}

/// Full-jitter exponential backoff: the n-th delay is uniform in `[0, min(cap, base·2ⁿ))`.
/// Jitter spreads the reconnects of many clients after a server restart.
#[derive(Clone, Debug)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    /// Failed attempts since the last success; the exponent of the next delay.
    failures: u32,
}

impl Backoff {
    pub fn new(base_ms: u64, cap_ms: u64) -> Self {
        Self {
            base_ms,
            cap_ms,
            failures: 0,
        }
    }

    /// The delay before the next attempt; `random` is uniform in `[0, 1)`.
    pub fn next_delay_ms(&mut self, random: f64) -> u64 {
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << self.failures.min(32))
            .min(self.cap_ms);
        self.failures = self.failures.saturating_add(1);
        (random.clamp(0.0, 1.0) * ceiling as f64) as u64
    }

    /// Attempts made since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

impl Default for Backoff {
    /// 500 ms doubling up to 20 s.
    fn default() -> Self {
        Self::new(500, 20_000)
    }
}

/// A connection must stay live this long before the backoff starts again from its base: a
/// server that accepts and then drops at once must not be redialled at the base rate forever.
pub const STABLE_MS: f64 = 5_000.0;

/// An input the user typed that is not in the client's log yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingInput {
    pub client_msg_id: String,
    pub content: String,
    /// The `seq` the server acked it with; `None` while unacknowledged (it is resent after each
    /// reconnect). Kept until the log holds that `seq`, so the message never blinks out between
    /// the ack and its event.
    pub acked_seq: Option<u64>,
}

impl PendingInput {
    fn frame(&self) -> ClientFrame {
        ClientFrame::UserInput {
            content: self.content.clone(),
            client_msg_id: self.client_msg_id.clone(),
        }
    }
}

/// A person's answer to an interrupt (a `resolve` frame) that the log does not hold yet. Like
/// an input it is resent after each reconnect until acked (the server acks a retry with the
/// original `seq`, so it is appended once). It leaves when its event is held, when any answer
/// to its interrupt is held (someone else answered first), or when the server refuses it as a
/// `conflict` (answered already, expired, not open).
#[derive(Clone, Debug, PartialEq)]
pub struct PendingAnswer {
    pub client_msg_id: String,
    pub interrupt_id: String,
    pub status: InterruptStatus,
    pub payload: Option<Value>,
    /// As [`PendingInput::acked_seq`].
    pub acked_seq: Option<u64>,
}

impl PendingAnswer {
    fn frame(&self) -> ClientFrame {
        ClientFrame::Resolve {
            interrupt_id: self.interrupt_id.clone(),
            status: self.status,
            payload: self.payload.clone(),
            client_msg_id: self.client_msg_id.clone(),
        }
    }

    /// Whether a `conflict` error's text names this answer's interrupt. The subscriber socket's
    /// error frames carry no `client_msg_id`; the server's conflict messages name the interrupt
    /// ("interrupt ID was answered already", "no interrupt ID is open", "interrupt ID expired
    /// at …"), and one interrupt has at most one pending answer per page.
    fn named_in(&self, message: &str) -> bool {
        message.split(' ').any(|word| word == self.interrupt_id)
    }
}

/// What the driver must do after a frame arrived.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// Nothing to show or send.
    Ignored,
    /// The next event of the log, in order: append it to the list.
    Event(LoggedEvent),
    /// The connection is confirmed: send these frames (pending inputs, resent).
    Hello { resend: Vec<ClientFrame> },
    /// The server appended the input with this `client_msg_id`.
    Acked { client_msg_id: String, seq: u64 },
    /// The server refused something; show it.
    ServerError { message: String },
    /// The server refused the pending answer `client_msg_id` (`conflict`): it is dropped; show
    /// why.
    AnswerRefused {
        client_msg_id: String,
        message: String,
    },
    /// The stream skipped a `seq` (never expected): drop the socket and resume from the cursor.
    Resync,
}

/// What the driver must do after the socket closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AfterClose {
    /// Wait `delay_ms`, then dial again. With `reset_log`, the server's log was reset (4009):
    /// forget every event held and resume from 0.
    Retry { delay_ms: u64, reset_log: bool },
    /// Stop for good; the state is `Closed`.
    Stop,
    /// This close was already handled (a second report of the same drop, e.g. `error` then
    /// `close`): no second timer.
    AlreadyHandled,
}

/// One workflow socket's client-side state.
#[derive(Debug)]
pub struct SocketMachine {
    state: ConnectionState,
    backoff: Backoff,
    /// The resume cursor: the highest `seq` held. Everything up to it is held, in order.
    last_seq: u64,
    /// Inputs not yet acked, oldest first; resent after every `hello` (the server dedupes).
    pending: Vec<PendingInput>,
    /// Answers to interrupts not yet in the log, oldest first; resent likewise.
    answers: Vec<PendingAnswer>,
    /// The heartbeat we sent and have heard nothing since. Any frame from the server clears it,
    /// not only the heartbeat's answer: in a burst that answer waits behind the events queued
    /// before it, and the events show the server is alive.
    awaited_heartbeat: Option<String>,
    /// Period announced by the server's `hello`; the driver ticks at this rate.
    heartbeat_ms: u64,
    /// A dial is under way or a socket open: the only time a close may schedule a retry.
    dialing: bool,
    /// When the current connection went live (driver clock), to tell a stable connection from
    /// one that drops right after `hello`.
    live_since: Option<f64>,
}

/// Close codes after which reconnecting cannot help.
fn is_final_close(code: u16) -> Option<&'static str> {
    match code {
        close::NORMAL => Some("closed by the server"),
        close::UNAUTHORIZED => Some("unauthorized"),
        close::FORBIDDEN => Some("forbidden"),
        close::NOT_FOUND => Some("workflow not found"),
        _ => None,
    }
}

impl SocketMachine {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            state: ConnectionState::Connecting,
            backoff,
            last_seq: 0,
            pending: Vec::new(),
            answers: Vec::new(),
            awaited_heartbeat: None,
            heartbeat_ms: 15_000,
            dialing: false,
            live_since: None,
        }
    }

    /// Start from a cursor: the events up to `seq` are already held (rendered by the server).
    pub fn resuming_after(mut self, seq: u64) -> Self {
        self.last_seq = seq;
        self
    }

    pub fn state(&self) -> &ConnectionState {
        &self.state
    }

    /// The `after` to dial with.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn heartbeat_ms(&self) -> u64 {
        self.heartbeat_ms
    }

    pub fn pending(&self) -> &[PendingInput] {
        &self.pending
    }

    pub fn answers(&self) -> &[PendingAnswer] {
        &self.answers
    }

    /// A dial starts.
    pub fn connecting(&mut self) {
        self.state = ConnectionState::Connecting;
        self.awaited_heartbeat = None;
        self.dialing = true;
        self.live_since = None;
    }

    /// The browser went offline: the socket is dropped (by the driver) and nothing is dialled
    /// until it is back online. Events held and inputs pending are kept.
    pub fn went_offline(&mut self) {
        self.state = ConnectionState::Offline;
        self.dialing = false;
        self.live_since = None;
    }

    pub fn is_offline(&self) -> bool {
        self.state == ConnectionState::Offline
    }

    /// Queue an input; the returned frame is to be sent now if the socket is live. It stays
    /// pending, and is resent after each reconnect, until acked.
    pub fn queue_input(&mut self, client_msg_id: String, content: String) -> ClientFrame {
        let input = PendingInput {
            client_msg_id,
            content,
            acked_seq: None,
        };
        let frame = input.frame();
        self.pending.push(input);
        frame
    }

    /// Queue an answer to interrupt `interrupt_id`, as [`SocketMachine::queue_input`]: the frame
    /// is to be sent now if the socket is live; it is resent after each reconnect until acked.
    pub fn queue_answer(
        &mut self,
        client_msg_id: String,
        interrupt_id: String,
        status: InterruptStatus,
        payload: Option<Value>,
    ) -> ClientFrame {
        let answer = PendingAnswer {
            client_msg_id,
            interrupt_id,
            status,
            payload,
            acked_seq: None,
        };
        let frame = answer.frame();
        self.answers.push(answer);
        frame
    }

    /// Drop what the log now holds up to `held`: acked inputs and answers whose `seq` it
    /// reached.
    fn forget_held(&mut self) {
        let held = self.last_seq;
        let waiting = |acked: Option<u64>| acked.is_none_or(|acked| acked > held);
        self.pending.retain(|p| waiting(p.acked_seq));
        self.answers.retain(|a| waiting(a.acked_seq));
    }

    /// Handle one text frame from the server, received at `now_ms` (driver clock).
    pub fn on_text(&mut self, text: &str, now_ms: f64) -> Incoming {
        self.awaited_heartbeat = None;
        match crate::protocol::decode::server_message(text) {
            Ok(ServerMessage::Event(event)) => self.on_event(event),
            Ok(ServerMessage::Control(frame)) => self.on_control(frame, now_ms),
            Err(_) => Incoming::ServerError {
                message: "the server sent a frame this page does not understand".into(),
            },
        }
    }

    fn on_event(&mut self, event: LoggedEvent) -> Incoming {
        if event.seq <= self.last_seq {
            return Incoming::Ignored;
        }
        if event.seq != self.last_seq + 1 {
            return Incoming::Resync;
        }
        self.last_seq = event.seq;
        if let EventBody::InterruptResolved { interrupt_id, .. } = &event.body {
            // Answered, by this page or another: nothing more to send for it. (Another's answer
            // first means ours is refused as a conflict, or would be.)
            self.answers.retain(|a| &a.interrupt_id != interrupt_id);
        }
        self.forget_held();
        Incoming::Event(event)
    }

    fn on_control(&mut self, frame: ServerFrame, now_ms: f64) -> Incoming {
        match frame {
            ServerFrame::Hello { heartbeat_ms, .. } => {
                self.state = ConnectionState::Live;
                self.live_since = Some(now_ms);
                self.heartbeat_ms = heartbeat_ms.max(1);
                let inputs = self.pending.iter().filter(|p| p.acked_seq.is_none());
                let answers = self.answers.iter().filter(|a| a.acked_seq.is_none());
                let resend = inputs
                    .map(PendingInput::frame)
                    .chain(answers.map(PendingAnswer::frame))
                    .collect();
                Incoming::Hello { resend }
            }
            ServerFrame::Ack {
                client_msg_id: Some(id),
                seq,
                ..
            } => {
                for input in self.pending.iter_mut().filter(|p| p.client_msg_id == id) {
                    input.acked_seq = Some(seq);
                }
                for answer in self.answers.iter_mut().filter(|a| a.client_msg_id == id) {
                    answer.acked_seq = Some(seq);
                }
                self.forget_held();
                Incoming::Acked {
                    client_msg_id: id,
                    seq,
                }
            }
            ServerFrame::Error {
                code: ErrorCode::Conflict,
                message,
                ..
            } => {
                let refused = self
                    .answers
                    .iter()
                    .position(|a| a.acked_seq.is_none() && a.named_in(&message));
                match refused {
                    Some(at) => Incoming::AnswerRefused {
                        client_msg_id: self.answers.remove(at).client_msg_id,
                        message,
                    },
                    None => Incoming::ServerError { message },
                }
            }
            ServerFrame::Error { message, .. } => Incoming::ServerError { message },
            _ => Incoming::Ignored,
        }
    }

    /// The heartbeat period passed. Returns the heartbeat frame to send, or `None` when a whole
    /// period passed since the last one with not one frame from the server: the connection is
    /// dead and must be dropped.
    pub fn heartbeat_tick(&mut self, correlation_id: String) -> Option<ClientFrame> {
        if self.awaited_heartbeat.is_some() {
            return None;
        }
        self.awaited_heartbeat = Some(correlation_id.clone());
        Some(ClientFrame::Heartbeat { correlation_id })
    }

    /// The socket closed (or never opened: `code` is `None`) at `now_ms` (driver clock).
    /// `random` is uniform in `[0, 1)`.
    pub fn on_closed(&mut self, code: Option<u16>, random: f64, now_ms: f64) -> AfterClose {
        if !self.dialing {
            return AfterClose::AlreadyHandled;
        }
        self.dialing = false;
        if let Some(reason) = code.and_then(is_final_close) {
            self.close(reason);
            return AfterClose::Stop;
        }
        if self
            .live_since
            .take()
            .is_some_and(|since| now_ms - since >= STABLE_MS)
        {
            self.backoff.reset();
        }
        let reset_log = code == Some(close::CURSOR_AHEAD);
        if reset_log {
            self.last_seq = 0;
        }
        let delay_ms = self.backoff.next_delay_ms(random);
        self.state = ConnectionState::Reconnecting {
            attempt: self.backoff.failures(),
            delay_ms,
            retry_at_ms: now_ms + delay_ms as f64,
        };
        AfterClose::Retry {
            delay_ms,
            reset_log,
        }
    }

    /// Stop for good (also when the page that owns the socket goes away).
    pub fn close(&mut self, reason: &str) {
        self.dialing = false;
        self.state = ConnectionState::Closed {
            reason: reason.into(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{EventBody, WorkflowStatus};

    fn event_text(seq: u64) -> String {
        serde_json::to_string(&LoggedEvent {
            seq,
            ts: "2026-11-22T00:00:00.000Z".into(),
            workflow_id: "wf".into(),
            body: EventBody::FinalReport {
                content: format!("#{seq}"),
            },
        })
        .expect("serializes")
    }

    fn hello() -> String {
        serde_json::to_string(&ServerFrame::Hello {
            workflow_id: "wf".into(),
            last_seq: 0,
            status: WorkflowStatus::Running,
            heartbeat_ms: 1000,
        })
        .expect("serializes")
    }

    #[test]
    fn backoff_is_full_jitter_exponential_and_capped() {
        let mut b = Backoff::new(100, 1000);
        // random = 1.0 shows the ceiling: 100, 200, 400, 800, then the cap.
        let ceilings: Vec<u64> = (0..6).map(|_| b.next_delay_ms(1.0)).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
        let mut b = Backoff::new(100, 1000);
        assert_eq!(b.next_delay_ms(0.0), 0);
        assert_eq!(b.next_delay_ms(0.5), 100);
        assert_eq!(b.failures(), 2);
        b.reset();
        assert_eq!(b.next_delay_ms(0.5), 50);
    }

    #[test]
    fn backoff_does_not_overflow_after_many_failures() {
        let mut b = Backoff::new(500, 30_000);
        for _ in 0..200 {
            assert!(b.next_delay_ms(0.999) <= 30_000);
        }
    }

    #[test]
    fn backoff_resets_only_after_a_stable_connection() {
        let mut m = SocketMachine::new(Backoff::new(100, 1000));
        m.connecting();
        assert_eq!(
            m.on_closed(None, 1.0, 0.0),
            AfterClose::Retry {
                delay_ms: 100,
                reset_log: false
            }
        );
        m.connecting();
        assert_eq!(
            m.on_closed(Some(1006), 1.0, 50.0),
            AfterClose::Retry {
                delay_ms: 200,
                reset_log: false
            }
        );
        assert_eq!(
            m.state(),
            &ConnectionState::Reconnecting {
                attempt: 2,
                delay_ms: 200,
                retry_at_ms: 250.0
            }
        );
        // Live, but dropped 1 s later: not stable, the backoff keeps growing.
        m.connecting();
        assert_eq!(m.state().kind(), "connecting");
        assert!(matches!(
            m.on_text(&hello(), 1_000.0),
            Incoming::Hello { .. }
        ));
        assert_eq!(m.state(), &ConnectionState::Live);
        assert_eq!(m.heartbeat_ms(), 1000);
        assert_eq!(
            m.on_closed(Some(1006), 1.0, 2_000.0),
            AfterClose::Retry {
                delay_ms: 400,
                reset_log: false
            }
        );
        // Live for STABLE_MS: the next drop starts again from the base delay.
        m.connecting();
        m.on_text(&hello(), 10_000.0);
        assert_eq!(
            m.on_closed(Some(1006), 1.0, 10_000.0 + STABLE_MS),
            AfterClose::Retry {
                delay_ms: 100,
                reset_log: false
            }
        );
    }

    #[test]
    fn one_drop_schedules_one_retry() {
        let mut m = SocketMachine::new(Backoff::new(100, 1000));
        m.connecting();
        // The browser reports `error`, then `close`, for the same socket.
        assert!(matches!(
            m.on_closed(None, 1.0, 0.0),
            AfterClose::Retry { .. }
        ));
        assert_eq!(
            m.on_closed(Some(1006), 1.0, 1.0),
            AfterClose::AlreadyHandled
        );
        assert_eq!(m.backoff.failures(), 1);
    }

    #[test]
    fn offline_waits_without_dialling_and_keeps_what_it_holds() {
        let mut m = SocketMachine::new(Backoff::default());
        m.connecting();
        m.on_text(&hello(), 0.0);
        m.on_text(&event_text(1), 0.0);
        m.queue_input("m1".into(), "typed offline".into());
        m.went_offline();
        assert!(m.is_offline());
        assert_eq!(m.state().describe(0.0), "offline");
        assert!(m.state().can_retry());
        // The dropped socket's close is not a second drop.
        assert_eq!(m.on_closed(None, 0.5, 0.0), AfterClose::AlreadyHandled);
        m.connecting();
        let Incoming::Hello { resend } = m.on_text(&hello(), 0.0) else {
            panic!("hello")
        };
        assert_eq!(resend.len(), 1);
        assert_eq!(m.last_seq(), 1);
    }

    #[test]
    fn events_are_deduped_by_seq_and_advance_the_cursor() {
        let mut m = SocketMachine::new(Backoff::default());
        assert!(matches!(m.on_text(&event_text(1), 0.0), Incoming::Event(e) if e.seq == 1));
        assert!(matches!(m.on_text(&event_text(2), 0.0), Incoming::Event(e) if e.seq == 2));
        assert_eq!(m.on_text(&event_text(2), 0.0), Incoming::Ignored);
        assert_eq!(m.on_text(&event_text(1), 0.0), Incoming::Ignored);
        assert_eq!(m.last_seq(), 2);
    }

    #[test]
    fn resuming_after_a_rendered_snapshot_skips_what_it_holds() {
        let mut m = SocketMachine::new(Backoff::default()).resuming_after(5);
        assert_eq!(m.last_seq(), 5);
        assert_eq!(m.on_text(&event_text(5), 0.0), Incoming::Ignored);
        assert!(matches!(m.on_text(&event_text(6), 0.0), Incoming::Event(e) if e.seq == 6));
    }

    #[test]
    fn a_gap_asks_for_a_resync_without_moving_the_cursor() {
        let mut m = SocketMachine::new(Backoff::default());
        m.on_text(&event_text(1), 0.0);
        assert_eq!(m.on_text(&event_text(3), 0.0), Incoming::Resync);
        assert_eq!(m.last_seq(), 1);
    }

    #[test]
    fn pending_inputs_are_resent_after_hello_until_acked() {
        let mut m = SocketMachine::new(Backoff::default());
        let frame = m.queue_input("m1".into(), "hi".into());
        assert_eq!(
            frame,
            ClientFrame::UserInput {
                content: "hi".into(),
                client_msg_id: "m1".into()
            }
        );
        let Incoming::Hello { resend } = m.on_text(&hello(), 0.0) else {
            panic!("hello")
        };
        assert_eq!(resend, vec![frame]);
        let ack = r#"{"type":"ack","client_msg_id":"m1","seq":4}"#;
        assert_eq!(
            m.on_text(ack, 0.0),
            Incoming::Acked {
                client_msg_id: "m1".into(),
                seq: 4
            }
        );
        // Acked but its event not held yet: shown as delivered, not resent.
        assert_eq!(m.pending()[0].acked_seq, Some(4));
        let Incoming::Hello { resend } = m.on_text(&hello(), 0.0) else {
            panic!("hello")
        };
        assert!(resend.is_empty());
        for seq in 1..=3 {
            m.on_text(&event_text(seq), 0.0);
        }
        assert_eq!(m.pending().len(), 1);
        m.on_text(&event_text(4), 0.0);
        assert!(m.pending().is_empty(), "its event is in the log now");
    }

    #[test]
    fn a_period_without_a_frame_after_a_heartbeat_means_dead() {
        let mut m = SocketMachine::new(Backoff::default());
        assert!(m.heartbeat_tick("h1".into()).is_some());
        assert_eq!(
            m.heartbeat_tick("h2".into()),
            None,
            "nothing heard since h1"
        );
        m.on_text(
            r#"{"type":"heartbeat_response","correlation_id":"h1"}"#,
            0.0,
        );
        assert!(m.heartbeat_tick("h3".into()).is_some());
    }

    #[test]
    fn any_frame_is_a_sign_of_life_while_a_heartbeat_waits_behind_a_burst() {
        let mut m = SocketMachine::new(Backoff::default());
        m.on_text(&hello(), 0.0);
        for period in 1..=5 {
            // Each period's heartbeat answer is queued behind a burst; events keep coming.
            assert!(
                m.heartbeat_tick(format!("h{period}")).is_some(),
                "alive in period {period}"
            );
            m.on_text(&event_text(period), 0.0);
        }
        assert!(m.heartbeat_tick("h6".into()).is_some());
        assert_eq!(m.heartbeat_tick("h7".into()), None, "then silence");
    }

    #[test]
    fn final_close_codes_stop_and_4009_resets_the_log() {
        let mut m = SocketMachine::new(Backoff::new(100, 1000));
        m.on_text(&event_text(1), 0.0);
        m.connecting();
        assert_eq!(
            m.on_closed(Some(4009), 0.0, 0.0),
            AfterClose::Retry {
                delay_ms: 0,
                reset_log: true
            }
        );
        assert_eq!(m.last_seq(), 0);
        m.connecting();
        assert_eq!(m.on_closed(Some(4004), 0.0, 0.0), AfterClose::Stop);
        assert_eq!(
            m.state(),
            &ConnectionState::Closed {
                reason: "workflow not found".into()
            }
        );
    }

    #[test]
    fn reconnecting_state_describes_attempt_and_delay() {
        let s = ConnectionState::Reconnecting {
            attempt: 3,
            delay_ms: 2500,
            retry_at_ms: 12_500.0,
        };
        assert_eq!(s.describe(10_000.0), "reconnecting in 3s (attempt 3)");
        assert_eq!(s.describe(11_600.0), "reconnecting in 1s (attempt 3)");
        assert_eq!(s.describe(13_000.0), "reconnecting in 0s (attempt 3)");
        assert_eq!(s.kind(), "reconnecting");
        assert!(!ConnectionState::Live.can_retry());
    }

    fn answered_text(seq: u64, interrupt_id: &str, client_msg_id: &str) -> String {
        serde_json::to_string(&LoggedEvent {
            seq,
            ts: "2026-11-22T00:00:00.000Z".into(),
            workflow_id: "wf".into(),
            body: EventBody::InterruptResolved {
                interrupt_id: interrupt_id.into(),
                status: InterruptStatus::Resolved,
                payload: Some(serde_json::json!({"approved": true})),
                user: Some("someone".into()),
                client_msg_id: Some(client_msg_id.into()),
            },
        })
        .expect("serializes")
    }

    fn approve(m: &mut SocketMachine, client_msg_id: &str, interrupt_id: &str) -> ClientFrame {
        m.queue_answer(
            client_msg_id.into(),
            interrupt_id.into(),
            InterruptStatus::Resolved,
            Some(serde_json::json!({"approved": true})),
        )
    }

    #[test]
    fn an_answer_given_offline_is_sent_after_hello_until_acked_then_leaves_with_its_event() {
        let mut m = SocketMachine::new(Backoff::default());
        m.connecting();
        m.on_text(&hello(), 0.0);
        m.on_text(&event_text(1), 0.0);
        m.went_offline();
        let frame = approve(&mut m, "a1", "approve-1");
        assert_eq!(
            frame,
            ClientFrame::Resolve {
                interrupt_id: "approve-1".into(),
                status: InterruptStatus::Resolved,
                payload: Some(serde_json::json!({"approved": true})),
                client_msg_id: "a1".into(),
            }
        );
        assert_eq!(m.answers().len(), 1, "shown as pending while offline");
        // Back online: resent after hello; the connection drops before the ack; resent again.
        m.connecting();
        let Incoming::Hello { resend } = m.on_text(&hello(), 0.0) else {
            panic!("hello")
        };
        assert_eq!(resend, vec![frame.clone()]);
        m.on_closed(Some(1006), 0.0, 0.0);
        m.connecting();
        let Incoming::Hello { resend } = m.on_text(&hello(), 0.0) else {
            panic!("hello")
        };
        assert_eq!(
            resend,
            vec![frame],
            "same client_msg_id: the server dedupes"
        );
        // The server acks the retry with the original seq (2): acked, not resent, still shown
        // until the log holds it.
        m.on_text(r#"{"type":"ack","client_msg_id":"a1","seq":2}"#, 0.0);
        assert_eq!(m.answers()[0].acked_seq, Some(2));
        let Incoming::Hello { resend } = m.on_text(&hello(), 0.0) else {
            panic!("hello")
        };
        assert!(resend.is_empty());
        m.on_text(&answered_text(2, "approve-1", "a1"), 0.0);
        assert!(m.answers().is_empty());
    }

    #[test]
    fn an_answer_leaves_when_someone_else_answered_first() {
        let mut m = SocketMachine::new(Backoff::default());
        m.on_text(&hello(), 0.0);
        approve(&mut m, "mine", "approve-1");
        approve(&mut m, "other", "approve-2");
        // Another tab's answer arrives in the log: ours for that interrupt is moot.
        m.on_text(&answered_text(1, "approve-1", "theirs"), 0.0);
        assert_eq!(m.answers().len(), 1);
        assert_eq!(m.answers()[0].interrupt_id, "approve-2");
    }

    #[test]
    fn a_conflict_naming_the_interrupt_drops_its_answer_and_other_errors_do_not() {
        let mut m = SocketMachine::new(Backoff::default());
        m.on_text(&hello(), 0.0);
        approve(&mut m, "a1", "approve-1");
        approve(&mut m, "a2", "approve-12");
        let bad = r#"{"type":"error","code":"bad_request","message":"interrupt approve-1 is odd"}"#;
        assert!(matches!(m.on_text(bad, 0.0), Incoming::ServerError { .. }));
        assert_eq!(m.answers().len(), 2);
        let conflict = r#"{"type":"error","code":"conflict","message":"interrupt approve-12 was answered already"}"#;
        assert_eq!(
            m.on_text(conflict, 0.0),
            Incoming::AnswerRefused {
                client_msg_id: "a2".into(),
                message: "interrupt approve-12 was answered already".into()
            }
        );
        assert_eq!(m.answers().len(), 1);
        assert_eq!(m.answers()[0].client_msg_id, "a1");
        // A conflict about something else (an input to a finished workflow) drops no answer.
        let other = r#"{"type":"error","code":"conflict","message":"the workflow is finished"}"#;
        assert!(matches!(
            m.on_text(other, 0.0),
            Incoming::ServerError { .. }
        ));
        assert_eq!(m.answers().len(), 1);
    }

    #[test]
    fn inputs_and_answers_are_resent_together_and_acked_apart() {
        let mut m = SocketMachine::new(Backoff::default());
        m.queue_input("i1".into(), "hi".into());
        approve(&mut m, "a1", "approve-1");
        let Incoming::Hello { resend } = m.on_text(&hello(), 0.0) else {
            panic!("hello")
        };
        assert_eq!(resend.len(), 2);
        m.on_text(r#"{"type":"ack","client_msg_id":"a1","seq":1}"#, 0.0);
        assert_eq!(m.pending()[0].acked_seq, None);
        assert_eq!(m.answers()[0].acked_seq, Some(1));
    }
}
