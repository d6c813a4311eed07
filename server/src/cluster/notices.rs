//! "The log of workflow W grew to seq N", over Redis pub/sub: how a node that appended tells
//! the others, so their viewers get the events at once rather than at their next append.
//!
//! Redis pub/sub delivers at most once, and nothing to a node that is not subscribed at that
//! moment, so no guarantee rests on a notice: a node always reads the events themselves from the
//! log, in order, from where it last was ([`Hub::log_grew`]). A lost notice delays a viewer —
//! until the workflow's next notice, the next resync ([`RESYNC_EVERY`]: every workflow the node
//! holds live is checked against the log), or the node's own next append to it (which finds the
//! log moved and folds the newer events in first) — and never skips or repeats an event. After
//! the subscription (re)connects, every live workflow is checked at once.
//!
//! Cost on the append path: one map insert ([`Notices::log_grew`]). A publishing task sends
//! what was noted since its last round, one `PUBLISH` per workflow in one pipeline, so a burst
//! of deltas to one workflow costs a notice per round trip to Redis, not one per delta. On the
//! receiving side, workflows named in notices are marked, and a worker catches each up once per
//! round however many notices named it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{watch, Notify};

use super::Broker;
use crate::hub::Hub;

/// How often every workflow a node holds live is checked against the log, for notices lost.
pub const RESYNC_EVERY: Duration = Duration::from_secs(1);

/// How long to wait before subscribing again after the subscription failed.
const RESUBSCRIBE_AFTER: Duration = Duration::from_millis(500);

pub struct Notices {
    client: redis::Client,
    /// The one channel every node publishes to and listens on (a key of the deployment's
    /// prefix: nodes of different deployments on one Redis do not hear each other).
    channel: String,
    /// This node's id, at the head of each notice it sends, so it ignores its own.
    node: String,
    /// Workflows this node appended to since the publisher's last round, with their last seq.
    noted: Mutex<HashMap<String, u64>>,
    /// Wakes the publisher; a wake-up while it is busy is kept (one permit), so none is lost.
    publish: Notify,
    /// Workflows other nodes appended to, not yet caught up here.
    marked: Mutex<HashSet<String>>,
    /// Wakes the catch-up worker.
    catch_up: Notify,
    /// How often every live workflow is checked anyway ([`RESYNC_EVERY`]; tests change it).
    resync_every: Duration,
    /// True while subscribed: notices sent from then on reach this node.
    subscribed: watch::Sender<bool>,
}

impl Notices {
    /// Notices among the nodes on the Redis `client` points at whose keys start with `prefix`.
    pub fn new(client: redis::Client, prefix: &str, node: String) -> Arc<Self> {
        Self::with_resync(client, prefix, node, RESYNC_EVERY)
    }

    /// As [`Notices::new`], checking every live workflow every `resync_every`.
    pub fn with_resync(
        client: redis::Client,
        prefix: &str,
        node: String,
        resync_every: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            client,
            channel: format!("{prefix}log-grew"),
            node,
            noted: Mutex::default(),
            publish: Notify::new(),
            marked: Mutex::default(),
            catch_up: Notify::new(),
            resync_every,
            subscribed: watch::Sender::new(false),
        })
    }

    /// Whether this node is subscribed: notices sent while it is reach it.
    pub fn subscribed(&self) -> watch::Receiver<bool> {
        self.subscribed.subscribe()
    }

    /// Run the publisher, the subscriber and the catch-up worker for `hub`, until the process
    /// ends. The hub must have this as its broker for its appends to be announced.
    pub fn start(self: &Arc<Self>, hub: &Arc<Hub>) {
        tokio::spawn(self.clone().publish_forever());
        tokio::spawn(self.clone().listen_forever(hub.clone()));
        tokio::spawn(self.clone().catch_up_forever(hub.clone()));
    }

    async fn publish_forever(self: Arc<Self>) {
        let mut conn: Option<redis::aio::MultiplexedConnection> = None;
        loop {
            self.publish.notified().await;
            let noted = std::mem::take(&mut *lock(&self.noted));
            if noted.is_empty() {
                continue;
            }
            if conn.is_none() {
                match self.client.get_multiplexed_async_connection().await {
                    Ok(opened) => conn = Some(opened),
                    Err(e) => {
                        // These notices are lost; their viewers catch up at the next resync.
                        tracing::warn!(error = %e, "cannot connect to Redis to publish notices");
                        continue;
                    }
                }
            }
            let Some(open) = conn.as_mut() else { continue };
            let mut pipe = redis::pipe();
            for (workflow, last_seq) in &noted {
                let notice = format!("{} {workflow} {last_seq}", self.node);
                pipe.publish(&self.channel, notice).ignore();
            }
            if let Err(e) = pipe.query_async::<()>(open).await {
                tracing::warn!(error = %e, "publishing notices failed");
                conn = None;
            }
        }
    }

    async fn listen_forever(self: Arc<Self>, hub: Arc<Hub>) {
        loop {
            match self.client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&self.channel).await {
                    Ok(()) => {
                        self.subscribed.send_replace(true);
                        // Whatever was said while not subscribed is lost: check everything.
                        self.mark(hub.live_ids());
                        let mut notices = pubsub.into_on_message();
                        while let Some(message) = notices.next().await {
                            let Ok(text) = message.get_payload::<String>() else {
                                continue;
                            };
                            if let Some(workflow) = self.of_another_node(&text) {
                                if hub.holds(workflow) {
                                    self.mark([workflow.to_owned()]);
                                }
                            }
                        }
                        self.subscribed.send_replace(false);
                        tracing::warn!("the Redis subscription for notices ended; resubscribing");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot subscribe to notices"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot connect to Redis for notices"),
            }
            tokio::time::sleep(RESUBSCRIBE_AFTER).await;
        }
    }

    /// The workflow a notice names, unless this node sent it. A notice is `NODE WORKFLOW SEQ`;
    /// anything else on the channel is ignored.
    fn of_another_node<'a>(&self, notice: &'a str) -> Option<&'a str> {
        let mut parts = notice.split(' ');
        let (node, workflow) = (parts.next()?, parts.next()?);
        (node != self.node).then_some(workflow)
    }

    fn mark(&self, workflows: impl IntoIterator<Item = String>) {
        lock(&self.marked).extend(workflows);
        self.catch_up.notify_one();
    }

    async fn catch_up_forever(self: Arc<Self>, hub: Arc<Hub>) {
        let mut resync = tokio::time::interval(self.resync_every);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.catch_up.notified() => {}
                _ = resync.tick() => lock(&self.marked).extend(hub.live_ids()),
            }
            let marked = std::mem::take(&mut *lock(&self.marked));
            // Each workflow on its own task: one slow to catch up does not hold up the rest.
            let rounds = marked.into_iter().map(|workflow| {
                let hub = hub.clone();
                tokio::spawn(async move {
                    if let Err(e) = hub.log_grew(&workflow).await {
                        tracing::warn!(error = %e, %workflow, "catching up with the log failed");
                    }
                })
            });
            futures::future::join_all(rounds).await;
        }
    }
}

impl Broker for Notices {
    fn log_grew(&self, workflow_id: &str, last_seq: u64) {
        let mut noted = lock(&self.noted);
        let seq = noted.entry(workflow_id.to_owned()).or_default();
        *seq = (*seq).max(last_seq);
        drop(noted);
        self.publish.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use app::protocol::EventBody;

    use super::Notices;
    use crate::hub::{Feed, Hub, HubSettings};
    use crate::metrics::Metrics;
    use crate::store::memory::MemoryStore;
    use crate::store::redis::test_server::RedisServer;

    /// Longer than any test: only a notice can bring the events.
    const NEVER: Duration = Duration::from_secs(3600);

    /// A node on `store`, announcing through Redis under `prefix`.
    async fn node(
        store: &Arc<MemoryStore>,
        redis: &RedisServer,
        prefix: &str,
        name: &str,
        resync: Duration,
    ) -> Arc<Hub> {
        let settings = HubSettings {
            shared_store: true,
            ..HubSettings::default()
        };
        let hub = Hub::build(store.clone(), settings, Metrics::new());
        let client = redis::Client::open(redis.url()).expect("a Redis URL");
        let notices = Notices::with_resync(client, prefix, name.into(), resync);
        hub.set_broker(notices.clone());
        notices.start(&hub);
        let mut subscribed = notices.subscribed();
        subscribed.wait_for(|s| *s).await.expect("subscribed");
        hub
    }

    async fn next_seq(feed: &mut Feed) -> u64 {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("an event within 10 s")
            .expect("read")
            .expect("the workflow is there");
        event.seq()
    }

    fn thinking() -> EventBody {
        EventBody::AgentThinking {
            agent: "a".into(),
            content: Some("hm".into()),
            message_id: None,
        }
    }

    #[tokio::test]
    async fn a_reader_on_another_node_gets_each_append_through_its_notice() {
        let redis = RedisServer::start();
        let store = Arc::new(MemoryStore::default());
        let a = node(&store, &redis, "t:", "a", NEVER).await;
        let b = node(&store, &redis, "t:", "b", NEVER).await;
        let id = a.create("external", None, "u").await.expect("created").id;
        let (mut on_b, _) = b.feed(&id, 0).await.expect("b follows it");

        a.publish_bodies(&id, vec![thinking(), thinking()])
            .await
            .expect("a");
        assert_eq!(next_seq(&mut on_b).await, 1);
        assert_eq!(next_seq(&mut on_b).await, 2);
        a.publish_bodies(&id, vec![thinking()]).await.expect("a");
        assert_eq!(next_seq(&mut on_b).await, 3);
    }

    #[tokio::test]
    async fn a_reader_whose_node_hears_no_notice_still_gets_every_event_in_order() {
        let redis = RedisServer::start();
        let store = Arc::new(MemoryStore::default());
        let a = node(&store, &redis, "t:", "a", NEVER).await;
        // B listens on another channel: every notice of A's is lost to it.
        let b = node(&store, &redis, "other:", "b", Duration::from_millis(50)).await;
        let id = a.create("external", None, "u").await.expect("created").id;
        let (mut on_b, _) = b.feed(&id, 0).await.expect("b follows it");

        for _ in 0..3 {
            a.publish_bodies(&id, vec![thinking()]).await.expect("a");
        }
        for seq in 1..=3 {
            assert_eq!(next_seq(&mut on_b).await, seq);
        }
    }
}
