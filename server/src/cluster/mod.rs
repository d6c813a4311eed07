//! Many nodes on one Redis (PROTOCOL.md §9): what the nodes tell each other.
//!
//! The store is shared (each node appends with a compare-and-set on the log's end, see
//! [`crate::store::EventStore::append_if`] and [`crate::hub`]), so the log is the truth on every
//! node; what crosses between nodes besides is only ever a hint that makes something happen
//! sooner, never something a guarantee rests on:
//! - [`notices`]: "workflow W's log grew", so viewers on other nodes get the events now.

pub mod notices;

/// Where a node tells the others that it appended. Implementations give no guarantee of
/// delivery: a notice may be lost, and every node must still get every event (by reading the
/// log) — only later.
pub trait Broker: Send + Sync + 'static {
    /// This node appended to `workflow_id`, whose log now ends at `last_seq`. Called under the
    /// workflow's writer lock on the append path: must not block or wait.
    fn log_grew(&self, workflow_id: &str, last_seq: u64);
}
