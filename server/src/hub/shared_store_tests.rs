//! Two hubs on one store, as two nodes on one Redis: each checks appends against its own view
//! of a workflow, and the store's compare-and-set (`EventStore::append_if`) keeps one order.
//! Every check runs on the in-memory store shared in-process and on a real `redis-server`.

use std::sync::Arc;

use app::protocol::{AgentEvent, EventBody, WorkflowStatus};

use super::tests::{thinking, Recorder};
use super::{Hub, HubSettings};
use crate::error::LanternError;
use crate::metrics::Metrics;
use crate::store::memory::MemoryStore;
use crate::store::EventStore;

fn node(store: &Arc<dyn EventStore>) -> Arc<Hub> {
    let settings = HubSettings {
        shared_store: true,
        ..HubSettings::default()
    };
    Hub::build(store.clone(), settings, Metrics::new())
}

/// Two nodes on `store`, and a workflow created on the first.
async fn two_nodes(
    store: Arc<dyn EventStore>,
) -> (Arc<dyn EventStore>, Arc<Hub>, Arc<Hub>, String) {
    let (a, b) = (node(&store), node(&store));
    let id = a.create("external", None, "u").await.expect("created").id;
    (store, a, b, id)
}

async fn contents(store: &Arc<dyn EventStore>, id: &str) -> Vec<(u64, String)> {
    let log = store
        .read(id, 0, usize::MAX, usize::MAX)
        .await
        .expect("read");
    log.iter()
        .map(|e| match e.event().expect("parses").body {
            EventBody::AgentThinking {
                content: Some(c), ..
            } => (e.seq(), c),
            other => (e.seq(), format!("{other:?}")),
        })
        .collect()
}

fn tool(kind: &str, call_id: &str) -> EventBody {
    match kind {
        "open" => EventBody::ToolExecuting {
            agent: "a".into(),
            tool: "search".into(),
            call_id: call_id.into(),
            input: serde_json::json!({}),
        },
        _ => EventBody::ToolCompleted {
            agent: "a".into(),
            tool: "search".into(),
            call_id: call_id.into(),
            ok: true,
            output: None,
            error: None,
            duration_ms: 1,
        },
    }
}

pub async fn two_nodes_appending_to_one_workflow_at_once_make_one_contiguous_order(
    store: Arc<dyn EventStore>,
) {
    let (store, a, b, id) = two_nodes(store).await;
    let publisher = |hub: Arc<Hub>, offset: u64| {
        let id = id.clone();
        tokio::spawn(async move {
            for n in 0..200 {
                hub.publish_bodies(&id, vec![thinking(offset + n)])
                    .await
                    .expect("published");
            }
        })
    };
    let (on_a, on_b) = (publisher(a, 0), publisher(b, 1000));
    on_a.await.expect("a");
    on_b.await.expect("b");

    let log = contents(&store, &id).await;
    let seqs: Vec<u64> = log.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>(), "contiguous, none lost");
    // Each node's events once, in the order it published them.
    for offset in [0, 1000] {
        let mine: Vec<String> = log
            .iter()
            .map(|(_, c)| c.clone())
            .filter(|c| {
                c.parse::<u64>()
                    .is_ok_and(|n| (offset..offset + 200).contains(&n))
            })
            .collect();
        let sent: Vec<String> = (offset..offset + 200).map(|n| n.to_string()).collect();
        assert_eq!(mine, sent);
    }
}

pub async fn a_tool_opened_on_one_node_is_closed_on_the_other_and_a_second_close_is_a_conflict(
    store: Arc<dyn EventStore>,
) {
    let (store, a, b, id) = two_nodes(store).await;
    // B holds the workflow live before A opens the tool: its view is stale when the close
    // comes, so the close is refused by that view, checked again on the log, and accepted.
    b.publish_bodies(&id, vec![thinking(1)]).await.expect("b");
    a.publish_bodies(&id, vec![tool("open", "c1")])
        .await
        .expect("opened on a");
    let closed = b.publish_bodies(&id, vec![tool("close", "c1")]).await;
    assert_eq!(closed.expect("closed on b"), [3]);

    let again = a.publish_bodies(&id, vec![tool("close", "c1")]).await;
    assert!(matches!(again, Err(LanternError::Conflict(_))), "{again:?}");
    let never_opened = b.publish_bodies(&id, vec![tool("close", "c2")]).await;
    assert!(
        matches!(never_opened, Err(LanternError::Conflict(_))),
        "{never_opened:?}"
    );
    assert_eq!(
        store
            .workflow(&id)
            .await
            .expect("read")
            .expect("there")
            .last_seq,
        3
    );
}

pub async fn a_retry_sent_to_the_other_node_gets_the_seq_of_the_first_send(
    store: Arc<dyn EventStore>,
) {
    let (store, a, b, id) = two_nodes(store).await;
    b.publish_bodies(&id, vec![thinking(0)]).await.expect("b");
    let keyed = |body| {
        vec![AgentEvent {
            id: Some("e1".into()),
            body,
        }]
    };
    assert_eq!(a.publish(&id, keyed(thinking(1))).await.expect("a"), [2]);
    // The agent lost the ack, reconnected to B, and sent e1 again.
    assert_eq!(b.publish(&id, keyed(thinking(1))).await.expect("b"), [2]);
    assert_eq!(contents(&store, &id).await.len(), 2, "logged once");
}

pub async fn a_viewer_on_the_other_node_gets_every_event_once_in_order(store: Arc<dyn EventStore>) {
    let (_store, a, b, id) = two_nodes(store).await;
    let (feed, _) = b.feed(&id, 0).await.expect("feed on b");
    let viewer = Recorder::new(usize::MAX);
    let _live = feed
        .go_live(viewer.clone())
        .ok()
        .expect("nothing to catch up");

    a.publish_bodies(&id, vec![thinking(1), thinking(2)])
        .await
        .expect("a");
    // Told that the log grew (as a Redis notification tells it), B hands the events out.
    b.log_grew(&id).await.expect("b caught up");
    assert_eq!(viewer.seqs(), [1, 2]);
    // A missed notification only delays: B's own next append brings the viewer A's events
    // first, then its own, each once.
    a.publish_bodies(&id, vec![thinking(3)]).await.expect("a");
    b.publish_bodies(&id, vec![thinking(4)]).await.expect("b");
    b.log_grew(&id).await.expect("nothing new");
    assert_eq!(viewer.seqs(), [1, 2, 3, 4]);
}

pub async fn a_workflow_finished_on_one_node_takes_no_more_events_on_the_other(
    store: Arc<dyn EventStore>,
) {
    let (_store, a, b, id) = two_nodes(store).await;
    b.publish_bodies(&id, vec![thinking(1)]).await.expect("b");
    let done = EventBody::WorkflowStatus {
        status: WorkflowStatus::Completed,
        detail: None,
    };
    a.publish_bodies(&id, vec![done.clone()]).await.expect("a");
    let late = b.publish_bodies(&id, vec![thinking(2)]).await;
    assert!(matches!(late, Err(LanternError::Conflict(_))), "{late:?}");
    let twice = b.publish_bodies(&id, vec![done]).await;
    assert!(matches!(twice, Err(LanternError::Conflict(_))), "{twice:?}");
}

/// Every check above as a test on the store `$make` gives (`(keep, store)`, `keep` living as
/// long as the test).
macro_rules! on_store {
    ($make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn two_nodes_appending_to_one_workflow_at_once_make_one_contiguous_order() {
            let (_keep, store) = $make.await;
            super::two_nodes_appending_to_one_workflow_at_once_make_one_contiguous_order(store).await;
        }

        #[tokio::test]
        async fn a_tool_opened_on_one_node_is_closed_on_the_other_and_a_second_close_is_a_conflict() {
            let (_keep, store) = $make.await;
            super::a_tool_opened_on_one_node_is_closed_on_the_other_and_a_second_close_is_a_conflict(store).await;
        }

        #[tokio::test]
        async fn a_retry_sent_to_the_other_node_gets_the_seq_of_the_first_send() {
            let (_keep, store) = $make.await;
            super::a_retry_sent_to_the_other_node_gets_the_seq_of_the_first_send(store).await;
        }

        #[tokio::test]
        async fn a_viewer_on_the_other_node_gets_every_event_once_in_order() {
            let (_keep, store) = $make.await;
            super::a_viewer_on_the_other_node_gets_every_event_once_in_order(store).await;
        }

        #[tokio::test]
        async fn a_workflow_finished_on_one_node_takes_no_more_events_on_the_other() {
            let (_keep, store) = $make.await;
            super::a_workflow_finished_on_one_node_takes_no_more_events_on_the_other(store).await;
        }
    };
}

mod memory {
    use super::*;

    on_store!(async { ((), Arc::new(MemoryStore::default()) as Arc<dyn EventStore>) });
}

mod redis {
    use super::*;
    use crate::store::redis::test_server::RedisServer;
    use crate::store::redis::RedisStore;

    async fn fresh() -> (RedisServer, Arc<dyn EventStore>) {
        let server = RedisServer::start();
        let store = RedisStore::connect(&server.url(), "t:")
            .await
            .expect("connected");
        (server, Arc::new(store) as Arc<dyn EventStore>)
    }

    on_store!(fresh());
}
