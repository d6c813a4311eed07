//! WebSocket transports, one file each, sharing the bounded [`outbox`].
//!
//! - [`subscriber`]: `/ws/workflow/{id}`, viewers (browsers and programs).
//! - [`outbox`]: a connection's bounded outgoing queue and the task that writes it out.

pub mod outbox;
pub mod subscriber;
