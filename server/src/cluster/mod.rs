//! Many nodes on one Redis (PROTOCOL.md §9): what the nodes tell each other.
//!
//! The store is shared (each node appends with a compare-and-set on the log's end, see
//! [`crate::store::EventStore::append_if`] and [`crate::hub`]), so the log is the truth on every
//! node; what crosses between nodes besides is only ever a hint that makes something happen
//! sooner, never something a guarantee rests on:
//! - [`notices`]: "workflow W's log grew", so viewers on other nodes get the events now.
//! - [`presence`]: which node has which agents and runs which built-in workflow, and which
//!   nodes are alive — so a grace period runs once for the cluster, and a dead node's
//!   workflows are taken care of by the others.

pub mod notices;
pub mod presence;

/// Where a node tells the others that it appended. Implementations give no guarantee of
/// delivery: a notice may be lost, and every node must still get every event (by reading the
/// log) — only later.
pub trait Broker: Send + Sync + 'static {
    /// This node appended to `workflow_id`, whose log now ends at `last_seq`. Called under the
    /// workflow's writer lock on the append path: must not block or wait.
    fn log_grew(&self, workflow_id: &str, last_seq: u64);
}

/// Where a node records what it holds, for the cluster's grace periods and dead-node sweeps.
/// Each call records a change and returns at once; changes are applied in the order made.
pub trait Presence: Send + Sync + 'static {
    /// An agent socket of this node joined workflow `workflow_id`.
    fn agent_joined(&self, workflow_id: &str);
    /// One of this node's agent sockets of workflow `workflow_id` closed.
    fn agent_left(&self, workflow_id: &str);
    /// This node runs built-in workflow `workflow_id`.
    fn run_started(&self, workflow_id: &str);
    /// Workflow `workflow_id` finished (whether or not this node ran it).
    fn run_ended(&self, workflow_id: &str);
}
