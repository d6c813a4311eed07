//! Which node has which agents, which node runs which built-in workflow, and which nodes are
//! alive — in Redis, so the grace period (PROTOCOL.md §3) and a dead node's work are handled
//! once for the whole cluster.
//!
//! - **Agents.** Each node counts its agent sockets per workflow in Redis. When a workflow's
//!   last agent on any live node goes, its grace deadline is set — once (`ZADD NX`): an agent
//!   that left one node and came back on another within the grace period clears it, and a
//!   second node seeing the workflow agentless does not start a second period.
//! - **Deadlines.** Every node sweeps every [`SWEEP_EVERY`]. A due workflow with an agent back
//!   is cleared; one without is claimed (its deadline pushed out by a lease, in the same
//!   script, so exactly one node claims it) and marked `failed`. The log's own rules make that
//!   happen once: a second `failed` after the first is a `conflict`. The claim is cleared after
//!   the append; a node that dies holding one leaves it to be claimed again when the lease ends.
//! - **Nodes.** A node keeps a key alive with a TTL ([`NODE_TTL`], refreshed five times per
//!   TTL). A node whose key expired is dead: the first sweep to see it (one script, so one
//!   node) takes its agents off the counts — their workflows get the grace period to see the
//!   agents reconnect elsewhere — and marks its built-in workflows for failing at once. So a
//!   built-in workflow whose node was SIGKILLed is failed within `NODE_TTL` + `SWEEP_EVERY`.
//! - A node cut off from Redis longer than `NODE_TTL` is taken for dead by the others; when it
//!   gets through again, it registers anew and counts its agents again.
//!
//! The clock is Redis's (`TIME` inside the scripts), so nodes' clocks need not agree. Counts
//! change through one queue per node, applied in order, so a socket's leave is never counted
//! before its join.
//!
//! Keys (under the deployment's prefix): `node:{node}` (alive, with a TTL), `nodes` (set of
//! registered nodes), `agents:{workflow}` (hash node → agent sockets), `node-agents:{node}`
//! (set of workflows the node has agents of), `runs:{node}` (set of built-in workflows it
//! runs), `grace` (sorted set workflow → deadline, ms), `orphans` (sorted set workflow → when
//! it may be failed, ms).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use app::protocol::{EventBody, WorkflowStatus};
use redis::aio::ConnectionManager;
use redis::Script;
use tokio::sync::mpsc;

use crate::error::{LanternError, Result};
use crate::hub::Hub;

/// How long a node's key lives without being refreshed: a node silent this long is dead.
pub const NODE_TTL: Duration = Duration::from_secs(5);
/// How often each node looks for due grace periods and dead nodes.
pub const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// How long a node that claimed a workflow to fail it has before another node may claim it.
const CLAIM_LEASE: Duration = Duration::from_secs(10);
/// Due workflows claimed per sweep, at most.
const CLAIMS_PER_SWEEP: usize = 100;

/// Lua: the agent sockets of a workflow on live nodes. Defined once, pasted into each script
/// that needs it: `alive(agents_key, prefix)`.
const ALIVE: &str = r"
local function alive(agents, prefix)
  local n = 0
  local h = redis.call('HGETALL', agents)
  for i = 1, #h, 2 do
    local count = tonumber(h[i + 1])
    if count > 0 and redis.call('EXISTS', prefix .. 'node:' .. h[i]) == 1 then n = n + count end
  end
  return n
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
";

/// An agent socket of `node` on the workflow closed; if no live node has one left, the grace
/// period starts (unless it already runs). Replies the agents left.
///
/// KEYS: agents:{wf}, node-agents:{node}, grace. ARGV: node, wf, grace ms, prefix.
static LEFT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{ALIVE}
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
local n = alive(KEYS[1], ARGV[4])
if n == 0 then redis.call('ZADD', KEYS[3], 'NX', now_ms() + tonumber(ARGV[3]), ARGV[2]) end
return n
"
    ))
});

/// Workflows whose grace period is over: those with an agent back are cleared, the others
/// claimed (their deadline pushed out by the lease) and returned.
///
/// KEYS: grace. ARGV: prefix, lease ms, limit.
static DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{ALIVE}
local now = now_ms()
local claimed = {{}}
for _, wf in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[3])) do
  if alive(ARGV[1] .. 'agents:' .. wf, ARGV[1]) > 0 then
    redis.call('ZREM', KEYS[1], wf)
  else
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), wf)
    claimed[#claimed + 1] = wf
  end
end
return claimed
"
    ))
});

/// Built-in workflows whose node died: claimed (pushed out by the lease) and returned.
///
/// KEYS: orphans. ARGV: lease ms, limit.
static ORPHANED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local claimed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[2])
for _, wf in ipairs(claimed) do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), wf) end
return claimed
",
    )
});

/// Take the nodes whose key expired off the books: their agents off the counts (starting the
/// grace period of workflows left with none), their built-in workflows onto `orphans`.
/// Replies the nodes taken off.
///
/// KEYS: nodes, grace, orphans. ARGV: prefix, grace ms.
static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{ALIVE}
local now = now_ms()
local reaped = {{}}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'node:' .. node) == 0 then
    redis.call('SREM', KEYS[1], node)
    reaped[#reaped + 1] = node
    local theirs = ARGV[1] .. 'node-agents:' .. node
    for _, wf in ipairs(redis.call('SMEMBERS', theirs)) do
      local agents = ARGV[1] .. 'agents:' .. wf
      redis.call('HDEL', agents, node)
      if alive(agents, ARGV[1]) == 0 then
        redis.call('ZADD', KEYS[2], 'NX', now + tonumber(ARGV[2]), wf)
      end
    end
    redis.call('DEL', theirs)
    local runs = ARGV[1] .. 'runs:' .. node
    for _, wf in ipairs(redis.call('SMEMBERS', runs)) do
      redis.call('ZADD', KEYS[3], 'NX', now, wf)
    end
    redis.call('DEL', runs)
  end
end
return reaped
"
    ))
});

/// A change of this node's presence, applied in the order made.
enum Change {
    AgentJoined(String),
    AgentLeft(String),
    RunStarted(String),
    RunEnded(String),
}

pub struct Presence {
    conn: ConnectionManager,
    prefix: String,
    node: String,
    /// The grace period this node gives (every node should be given the same).
    grace: Duration,
    changes: mpsc::UnboundedSender<Change>,
    /// Taken by [`Presence::start`], which applies the changes.
    pending: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Change>>>,
}

impl Presence {
    /// Register `node` on the Redis behind `conn` (keys under `prefix`).
    pub async fn connect(
        conn: ConnectionManager,
        prefix: &str,
        node: String,
        grace: Duration,
    ) -> Result<Arc<Self>> {
        let (changes, pending) = mpsc::unbounded_channel();
        let presence = Arc::new(Self {
            conn,
            prefix: prefix.to_owned(),
            node,
            grace,
            changes,
            pending: std::sync::Mutex::new(Some(pending)),
        });
        presence.heartbeat().await?;
        Ok(presence)
    }

    /// Apply this node's changes, keep it alive, and sweep, for `hub`, until the process ends.
    pub fn start(self: &Arc<Self>, hub: &Arc<Hub>) {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(pending) = pending {
            tokio::spawn(self.clone().apply_forever(pending));
        }
        tokio::spawn(self.clone().heartbeat_forever(hub.clone()));
        tokio::spawn(self.clone().sweep_forever(hub.clone()));
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Refresh this node's key. True when the node was not registered (new, or taken for
    /// dead by another node while cut off): its agents must then be counted again.
    async fn heartbeat(&self) -> Result<bool> {
        let mut conn = self.conn.clone();
        let ttl = NODE_TTL.as_millis() as u64;
        let (added,): (u64,) = redis::pipe()
            .atomic()
            .set_options(
                self.key(&format!("node:{}", self.node)),
                1,
                redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl)),
            )
            .ignore()
            .sadd(self.key("nodes"), &self.node)
            .query_async(&mut conn)
            .await?;
        Ok(added == 1)
    }

    async fn heartbeat_forever(self: Arc<Self>, hub: Arc<Hub>) {
        let mut every = tokio::time::interval(NODE_TTL / 5);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match self.heartbeat().await {
                Ok(true) => {
                    tracing::warn!(node = %self.node, "registered again with Redis: counting this node's agents again");
                    for (workflow, sockets) in hub.local_agents() {
                        if let Err(e) = self.count_again(&workflow, sockets).await {
                            tracing::warn!(error = %e, %workflow, "counting agents again failed");
                        }
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "keeping this node alive in Redis failed"),
            }
        }
    }

    async fn count_again(&self, workflow: &str, sockets: usize) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .hset(self.key(&format!("agents:{workflow}")), &self.node, sockets)
            .ignore()
            .sadd(self.key(&format!("node-agents:{}", self.node)), workflow)
            .ignore()
            .zrem(self.key("grace"), workflow)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn apply_forever(self: Arc<Self>, mut pending: mpsc::UnboundedReceiver<Change>) {
        while let Some(change) = pending.recv().await {
            // A change that fails is logged and dropped; the counts are made right again when
            // the node re-registers (after being taken for dead), not before.
            if let Err(e) = self.apply(change).await {
                tracing::warn!(error = %e, "recording this node's presence in Redis failed");
            }
        }
    }

    async fn apply(&self, change: Change) -> Result<()> {
        let mut conn = self.conn.clone();
        match change {
            Change::AgentJoined(workflow) => {
                redis::pipe()
                    .atomic()
                    .hincr(self.key(&format!("agents:{workflow}")), &self.node, 1)
                    .ignore()
                    .sadd(self.key(&format!("node-agents:{}", self.node)), &workflow)
                    .ignore()
                    .zrem(self.key("grace"), &workflow)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await?;
            }
            Change::AgentLeft(workflow) => {
                let _left: i64 = LEFT
                    .key(self.key(&format!("agents:{workflow}")))
                    .key(self.key(&format!("node-agents:{}", self.node)))
                    .key(self.key("grace"))
                    .arg(&self.node)
                    .arg(&workflow)
                    .arg(self.grace.as_millis() as u64)
                    .arg(&self.prefix)
                    .invoke_async(&mut conn)
                    .await?;
            }
            Change::RunStarted(workflow) => {
                let () = redis::cmd("SADD")
                    .arg(self.key(&format!("runs:{}", self.node)))
                    .arg(&workflow)
                    .query_async(&mut conn)
                    .await?;
            }
            Change::RunEnded(workflow) => {
                let () = redis::cmd("SREM")
                    .arg(self.key(&format!("runs:{}", self.node)))
                    .arg(&workflow)
                    .query_async(&mut conn)
                    .await?;
            }
        }
        Ok(())
    }

    async fn sweep_forever(self: Arc<Self>, hub: Arc<Hub>) {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = self.sweep(&hub).await {
                tracing::warn!(error = %e, "sweeping for due grace periods and dead nodes failed");
            }
        }
    }

    /// One sweep: dead nodes off the books, then due workflows failed.
    pub async fn sweep(&self, hub: &Hub) -> Result<()> {
        let mut conn = self.conn.clone();
        let reaped: Vec<String> = REAP
            .key(self.key("nodes"))
            .key(self.key("grace"))
            .key(self.key("orphans"))
            .arg(&self.prefix)
            .arg(self.grace.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        for node in reaped {
            tracing::warn!(%node, "a node stopped answering: its agents get the grace period, its built-in workflows are failed");
        }
        let lease = CLAIM_LEASE.as_millis() as u64;
        let due: Vec<String> = DUE
            .key(self.key("grace"))
            .arg(&self.prefix)
            .arg(lease)
            .arg(CLAIMS_PER_SWEEP)
            .invoke_async(&mut conn)
            .await?;
        let gone = format!(
            "the agent disconnected and did not come back within {} s",
            self.grace.as_secs()
        );
        for workflow in due {
            self.fail(hub, &workflow, &gone, "grace").await?;
        }
        let orphaned: Vec<String> = ORPHANED
            .key(self.key("orphans"))
            .arg(lease)
            .arg(CLAIMS_PER_SWEEP)
            .invoke_async(&mut conn)
            .await?;
        for workflow in orphaned {
            self.fail(
                hub,
                &workflow,
                "the node running this workflow stopped",
                "orphans",
            )
            .await?;
        }
        Ok(())
    }

    /// Mark a claimed workflow `failed` (a `conflict`: it had finished; not found: deleted),
    /// then let go of the claim in `set`.
    async fn fail(&self, hub: &Hub, workflow: &str, detail: &str, set: &str) -> Result<()> {
        let status = EventBody::WorkflowStatus {
            status: WorkflowStatus::Failed,
            detail: Some(detail.to_owned()),
        };
        match hub.publish_bodies(workflow, vec![status]).await {
            Ok(_) | Err(LanternError::Conflict(_)) | Err(LanternError::WorkflowNotFound(_)) => {}
            // The claim stays: another sweep (here or elsewhere) tries again after the lease.
            Err(e) => return Err(e),
        }
        let mut conn = self.conn.clone();
        let () = redis::cmd("ZREM")
            .arg(self.key(set))
            .arg(workflow)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}

impl super::Presence for Presence {
    fn agent_joined(&self, workflow_id: &str) {
        let _ = self
            .changes
            .send(Change::AgentJoined(workflow_id.to_owned()));
    }

    fn agent_left(&self, workflow_id: &str) {
        let _ = self.changes.send(Change::AgentLeft(workflow_id.to_owned()));
    }

    fn run_started(&self, workflow_id: &str) {
        let _ = self
            .changes
            .send(Change::RunStarted(workflow_id.to_owned()));
    }

    fn run_ended(&self, workflow_id: &str) {
        let _ = self.changes.send(Change::RunEnded(workflow_id.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use app::protocol::{EventBody, WorkflowStatus};
    use redis::AsyncCommands;

    use super::{Change, Presence, SWEEP_EVERY};
    use crate::hub::{Feed, Hub, HubSettings};
    use crate::metrics::Metrics;
    use crate::store::memory::MemoryStore;
    use crate::store::redis::test_server::RedisServer;
    use crate::store::EventStore;

    const GRACE: Duration = Duration::from_millis(300);

    struct Cluster {
        redis: RedisServer,
        store: Arc<MemoryStore>,
    }

    impl Cluster {
        fn new() -> Self {
            Self {
                redis: RedisServer::start(),
                store: Arc::new(MemoryStore::default()),
            }
        }

        /// A node, its presence registered but not started (no heartbeat, no sweeps).
        async fn node(&self, name: &str) -> (Arc<Hub>, Arc<Presence>) {
            let settings = HubSettings {
                shared_store: true,
                agent_grace: GRACE,
                ..HubSettings::default()
            };
            let hub = Hub::build(self.store.clone(), settings, Metrics::new());
            let client = redis::Client::open(self.redis.url()).expect("a Redis URL");
            // Notices too, as a node has: a workflow failed by the other node reaches this
            // node's readers.
            let notices = crate::cluster::notices::Notices::new(client.clone(), "t:", name.into());
            hub.set_broker(notices.clone());
            notices.start(&hub);
            let conn = redis::aio::ConnectionManager::new(client)
                .await
                .expect("connected");
            let presence = Presence::connect(conn, "t:", name.into(), GRACE)
                .await
                .expect("registered");
            hub.set_presence(presence.clone());
            (hub, presence)
        }

        /// A node that keeps itself alive and sweeps.
        async fn running_node(&self, name: &str) -> (Arc<Hub>, Arc<Presence>) {
            let (hub, presence) = self.node(name).await;
            presence.start(&hub);
            (hub, presence)
        }

        /// Node `name` stops answering, as when SIGKILLed: its key goes as it would expire.
        async fn kill(&self, name: &str) {
            let mut conn = self.redis.connection().await;
            let () = conn.del(format!("t:node:{name}")).await.expect("deleted");
        }

        async fn failures(&self, id: &str) -> Vec<String> {
            let log = self
                .store
                .read(id, 0, usize::MAX, usize::MAX)
                .await
                .expect("read");
            log.iter()
                .filter_map(|e| match e.event().expect("parses").body {
                    EventBody::WorkflowStatus {
                        status: WorkflowStatus::Failed,
                        detail,
                    } => Some(detail.unwrap_or_default()),
                    _ => None,
                })
                .collect()
        }
    }

    /// Wait for workflow `id`'s terminal status, read on `feed`.
    async fn ended(feed: &mut Feed) -> WorkflowStatus {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(20), feed.next())
                .await
                .expect("the workflow ends within 20 s")
                .expect("read")
                .expect("there");
            if let EventBody::WorkflowStatus { status, .. } = event.event().expect("parses").body {
                if status.is_terminal() {
                    return status;
                }
            }
        }
    }

    async fn running(hub: &Hub) -> String {
        let id = hub.create("external", None, "u").await.expect("created").id;
        let status = EventBody::WorkflowStatus {
            status: WorkflowStatus::Running,
            detail: None,
        };
        hub.publish_bodies(&id, vec![status])
            .await
            .expect("running");
        id
    }

    #[tokio::test]
    async fn an_agent_gone_from_every_node_fails_its_workflow_once() {
        let cluster = Cluster::new();
        let (a, _) = cluster.running_node("a").await;
        let (b, _) = cluster.running_node("b").await;
        let id = running(&a).await;
        let (mut feed, _) = a.feed(&id, 0).await.expect("feed");
        let (on_a, _) = a.agent_connected(&id).await.expect("agent on a");
        let (on_b, _) = b.agent_connected(&id).await.expect("agent on b");
        drop(on_a);
        drop(on_b);
        assert_eq!(ended(&mut feed).await, WorkflowStatus::Failed);
        // Both nodes sweep; let each have a few more goes, then the log still holds one.
        tokio::time::sleep(SWEEP_EVERY * 4).await;
        assert_eq!(cluster.failures(&id).await.len(), 1);
    }

    #[tokio::test]
    async fn an_agent_that_moved_to_another_node_within_the_grace_period_keeps_its_workflow() {
        let cluster = Cluster::new();
        let (a, _) = cluster.running_node("a").await;
        let (b, _) = cluster.running_node("b").await;
        let id = running(&a).await;
        let (on_a, _) = a.agent_connected(&id).await.expect("agent on a");
        drop(on_a);
        let (_on_b, _) = b.agent_connected(&id).await.expect("back on b");
        // Well past the grace period, with both nodes sweeping: nothing failed it.
        tokio::time::sleep(GRACE + SWEEP_EVERY * 4).await;
        assert!(cluster.failures(&id).await.is_empty());
    }

    #[tokio::test]
    async fn a_dead_nodes_agents_get_the_grace_period_and_its_built_in_workflows_are_failed() {
        let cluster = Cluster::new();
        let (dead, on_dead) = cluster.node("dead").await;
        let (b, _) = cluster.running_node("b").await;
        let external = running(&dead).await;
        let builtin = running(&dead).await;
        on_dead
            .apply(Change::AgentJoined(external.clone()))
            .await
            .expect("agent on the dead node");
        on_dead
            .apply(Change::RunStarted(builtin.clone()))
            .await
            .expect("run on the dead node");
        let (mut external_feed, _) = b.feed(&external, 0).await.expect("feed");
        let (mut builtin_feed, _) = b.feed(&builtin, 0).await.expect("feed");
        cluster.kill("dead").await;

        assert_eq!(ended(&mut builtin_feed).await, WorkflowStatus::Failed);
        assert_eq!(
            cluster.failures(&builtin).await,
            ["the node running this workflow stopped"]
        );
        assert_eq!(ended(&mut external_feed).await, WorkflowStatus::Failed);
        assert_eq!(
            cluster.failures(&external).await,
            ["the agent disconnected and did not come back within 0 s"]
        );
    }

    #[tokio::test]
    async fn a_dead_nodes_agent_that_reconnects_elsewhere_keeps_its_workflow() {
        let cluster = Cluster::new();
        let (dead, on_dead) = cluster.node("dead").await;
        let (b, _) = cluster.running_node("b").await;
        let id = running(&dead).await;
        on_dead
            .apply(Change::AgentJoined(id.clone()))
            .await
            .expect("agent on the dead node");
        cluster.kill("dead").await;
        let (_back, _) = b.agent_connected(&id).await.expect("back on b");
        tokio::time::sleep(GRACE + SWEEP_EVERY * 4).await;
        assert!(cluster.failures(&id).await.is_empty());
    }
}
