//! Checks of the [`EventStore`] guarantees that every store must pass. Each store's tests run
//! them all with [`store_contract!`], so a check added here runs on every store.

/// The contract's checks as tests of one store: `$make` is an async expression giving
/// `(keep, store)` — `keep` lives as long as the test (a temp dir, say).
macro_rules! store_contract {
    ($make:expr) => {
        #[tokio::test]
        async fn a_batch_holding_a_logged_key_is_refused_whole() {
            let (_keep, store) = $make.await;
            $crate::store::contract::a_batch_holding_a_logged_key_is_refused_whole(&store).await;
        }

        #[tokio::test]
        async fn the_workflow_follows_its_log() {
            let (_keep, store) = $make.await;
            $crate::store::contract::the_workflow_follows_its_log(&store).await;
        }

        #[tokio::test]
        async fn reads_are_bounded_by_count_and_by_bytes() {
            let (_keep, store) = $make.await;
            $crate::store::contract::reads_are_bounded_by_count_and_by_bytes(&store).await;
        }

        #[tokio::test]
        async fn open_workflows_counts_the_unfinished_of_one_owner() {
            let (_keep, store) = $make.await;
            $crate::store::contract::open_workflows_counts_the_unfinished_of_one_owner(&store)
                .await;
        }

        #[tokio::test]
        async fn the_kind_of_a_stored_event_is_its_own_type() {
            let (_keep, store) = $make.await;
            $crate::store::contract::the_kind_of_a_stored_event_is_its_own_type(&store).await;
        }

        #[tokio::test]
        async fn an_append_expecting_an_end_the_log_moved_past_appends_nothing() {
            let (_keep, store) = $make.await;
            $crate::store::contract::an_append_expecting_an_end_the_log_moved_past_appends_nothing(
                &store,
            )
            .await;
        }

        #[tokio::test]
        async fn a_chosen_id_is_kept_and_a_taken_one_refused() {
            let (_keep, store) = $make.await;
            $crate::store::contract::a_chosen_id_is_kept_and_a_taken_one_refused(&store).await;
        }

        #[tokio::test]
        async fn a_workflow_swept_and_made_again_under_its_id_starts_a_new_log() {
            let (_keep, store) = $make.await;
            $crate::store::contract::a_workflow_swept_and_made_again_under_its_id_starts_a_new_log(
                &store,
            )
            .await;
        }
    };
}
pub(crate) use store_contract;

use app::protocol::{EventBody, WorkflowInfo, WorkflowStatus};

use super::{EventStore, IdempotencyKey, NewEvent, StoredEvent};
use crate::error::LanternError;

/// An event to append, with retry key `id` if given.
pub fn thinking(id: Option<&str>) -> NewEvent {
    NewEvent {
        body: EventBody::AgentThinking {
            agent: "a".into(),
            content: Some("hm".into()),
            message_id: None,
        },
        key: id.map(|id| IdempotencyKey::EventId(id.into())),
    }
}

/// A status change to append.
pub fn status(status: WorkflowStatus) -> NewEvent {
    NewEvent {
        body: EventBody::WorkflowStatus {
            status,
            detail: None,
        },
        key: None,
    }
}

/// The workflow as `workflow` reads it, which `list_workflows` must read alike.
async fn workflow_now(store: &dyn EventStore, id: &str) -> WorkflowInfo {
    let info = store.workflow(id).await.expect("read").expect("exists");
    let listed = store.list_workflows(Some("u")).await.expect("listed");
    assert_eq!(
        listed.iter().find(|w| w.id == id),
        Some(&info),
        "{listed:?}"
    );
    info
}

fn ts_of(event: &StoredEvent) -> String {
    event.event().expect("parses").ts
}

/// The workflow object follows its log: `last_seq` is the last event's `seq`, `updated_at` its
/// `ts` (the creation time while the log is empty), `status` the last status appended; and
/// retention sweeps a finished workflow by the time of its last event, never a running one.
pub async fn the_workflow_follows_its_log(store: &dyn EventStore) {
    let info = store
        .create_workflow("external", None, "u")
        .await
        .expect("created");
    let fresh = workflow_now(store, &info.id).await;
    assert_eq!((fresh.last_seq, fresh.status), (0, WorkflowStatus::Pending));
    assert_eq!(fresh.updated_at, fresh.created_at);

    let two = store
        .append(&info.id, vec![thinking(None), thinking(None)])
        .await
        .expect("two");
    let now = workflow_now(store, &info.id).await;
    assert_eq!((now.last_seq, now.status), (2, WorkflowStatus::Pending));
    assert_eq!(now.updated_at, ts_of(&two[1]));

    let running = store.append(
        &info.id,
        vec![status(WorkflowStatus::Running), thinking(None)],
    );
    let running = running.await.expect("running");
    let now = workflow_now(store, &info.id).await;
    assert_eq!((now.last_seq, now.status), (4, WorkflowStatus::Running));
    assert_eq!(now.updated_at, ts_of(&running[1]));
    assert!(store
        .delete_finished_before("9999")
        .await
        .expect("swept")
        .is_empty());

    let done = store
        .append(&info.id, vec![status(WorkflowStatus::Completed)])
        .await
        .expect("done");
    let finished_at = ts_of(&done[0]);
    let now = workflow_now(store, &info.id).await;
    assert_eq!((now.last_seq, now.status), (5, WorkflowStatus::Completed));
    assert_eq!(now.updated_at, finished_at);
    let kept = store
        .delete_finished_before(&finished_at)
        .await
        .expect("swept");
    assert!(
        kept.is_empty(),
        "finished at the cutoff, not before it: {kept:?}"
    );
    let swept = store.delete_finished_before("9999").await.expect("swept");
    assert_eq!(swept, vec![info.id.clone()]);
    assert_eq!(store.workflow(&info.id).await.expect("read"), None);
}

/// A batch whose third event repeats a logged retry key is refused whole, as
/// `RetryKeyLogged`: none of it is appended, no `seq` is taken, its new key is not logged, and
/// the store goes on appending from where the log ends.
pub async fn a_batch_holding_a_logged_key_is_refused_whole(store: &dyn EventStore) {
    let info = store
        .create_workflow("external", None, "u")
        .await
        .expect("created");
    store
        .append(&info.id, vec![thinking(Some("e1"))])
        .await
        .expect("first");
    let batch = vec![thinking(None), thinking(Some("e2")), thinking(Some("e1"))];
    let refused = store.append(&info.id, batch).await;
    assert!(
        matches!(refused, Err(LanternError::RetryKeyLogged)),
        "{refused:?}"
    );
    let log = store
        .read(&info.id, 0, 100, usize::MAX)
        .await
        .expect("read");
    assert_eq!(log.iter().map(|e| e.seq()).collect::<Vec<_>>(), vec![1]);
    let after = store
        .workflow(&info.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(after.last_seq, 1, "the refused batch took no seqs");
    let keys = [&IdempotencyKey::EventId("e2".into())];
    let logged = store.seqs_of_keys(&info.id, &keys).await.expect("keys");
    assert!(
        logged.is_empty(),
        "the refused batch's new key is not logged"
    );
    let next = store
        .append(&info.id, vec![thinking(Some("e2"))])
        .await
        .expect("next");
    assert_eq!(next[0].seq(), 2);
}

/// A read stops at `limit` events or before the event that would take it past `max_bytes` of
/// JSON, whichever comes first, but always returns the first event however big; reading on
/// after a page's last event reaches every event once.
pub async fn reads_are_bounded_by_count_and_by_bytes(store: &dyn EventStore) {
    let info = store
        .create_workflow("external", None, "u")
        .await
        .expect("created");
    let big = |n: usize| NewEvent {
        body: EventBody::AgentThinking {
            agent: "a".into(),
            content: Some("x".repeat(n)),
            message_id: None,
        },
        key: None,
    };
    let stored = store
        .append(
            &info.id,
            vec![big(1000), big(10), big(10), big(5000), big(10)],
        )
        .await
        .expect("appended");
    let size = |seq: usize| stored[seq - 1].json.len();
    let seqs =
        |page: Vec<std::sync::Arc<StoredEvent>>| page.iter().map(|e| e.seq()).collect::<Vec<_>>();
    let page = store.read(&info.id, 0, 2, usize::MAX).await.expect("read");
    assert_eq!(seqs(page), [1, 2], "by count");
    let budget = size(1) + size(2) + size(3);
    let page = store.read(&info.id, 0, 100, budget).await.expect("read");
    assert_eq!(seqs(page), [1, 2, 3], "by bytes: the fourth would cross");
    let page = store.read(&info.id, 3, 100, 1).await.expect("read");
    assert_eq!(seqs(page), [4], "the first however big");
    let page = store.read(&info.id, 5, 100, 1).await.expect("read");
    assert!(page.is_empty(), "nothing after the last");
}

/// `open_workflows` counts the owner's workflows that have not finished.
pub async fn open_workflows_counts_the_unfinished_of_one_owner(store: &dyn EventStore) {
    let mut ids = Vec::new();
    for owner in ["carol", "carol", "carol", "dave"] {
        let info = store
            .create_workflow("external", None, owner)
            .await
            .expect("created");
        ids.push(info.id);
    }
    store
        .append(&ids[0], vec![status(WorkflowStatus::Running)])
        .await
        .expect("running");
    store
        .append(&ids[1], vec![status(WorkflowStatus::Cancelled)])
        .await
        .expect("cancelled");
    assert_eq!(store.open_workflows("carol").await.expect("count"), 2);
    assert_eq!(store.open_workflows("dave").await.expect("count"), 1);
    assert_eq!(store.open_workflows("erin").await.expect("count"), 0);
}

/// A stored event's `type` is its own, not one inside a field.
pub async fn the_kind_of_a_stored_event_is_its_own_type(store: &dyn EventStore) {
    let info = store
        .create_workflow("external", None, "u")
        .await
        .expect("created");
    let crafted = NewEvent {
        body: EventBody::ToolExecuting {
            agent: "a".into(),
            tool: "t".into(),
            call_id: "c".into(),
            input: serde_json::json!({ "type": "user_input", "\"type\":\"user_input\"": 1 }),
        },
        key: None,
    };
    let stored = store
        .append(&info.id, vec![crafted])
        .await
        .expect("appended");
    let read = store.read(&info.id, 0, 1, usize::MAX).await.expect("read");
    for event in [&stored[0], &read[0]] {
        assert_eq!(event.kind(), "tool_executing");
        assert!(!event.is_user_input());
    }
}

/// A workflow may be given its id (an AG-UI thread's); an id that is taken is `conflict` and
/// leaves the first workflow as it was.
pub async fn a_chosen_id_is_kept_and_a_taken_one_refused(store: &dyn EventStore) {
    let mut info = crate::store::new_workflow("echo", None);
    info.id = "thread-1".into();
    let made = store
        .insert_workflow(info.clone(), "u")
        .await
        .expect("made");
    assert_eq!(made.id, "thread-1");
    let mut again = crate::store::new_workflow("search", None);
    again.id = "thread-1".into();
    let refused = store.insert_workflow(again, "v").await;
    assert!(
        matches!(refused, Err(crate::error::LanternError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.owner("thread-1").await.expect("owner").as_deref(),
        Some("u")
    );
    let kept = workflow_now(store, "thread-1").await;
    assert_eq!(kept.kind, "echo");
}

/// A finished workflow swept by retention and made again under the same id starts its log
/// from `seq` 1: nothing of the old log is kept, nor where it ended.
pub async fn a_workflow_swept_and_made_again_under_its_id_starts_a_new_log(store: &dyn EventStore) {
    let mut info = crate::store::new_workflow("echo", None);
    info.id = "thread-2".into();
    store
        .insert_workflow(info.clone(), "u")
        .await
        .expect("made");
    store
        .append("thread-2", vec![thinking(Some("a")), thinking(None)])
        .await
        .expect("two");
    store
        .append("thread-2", vec![status(WorkflowStatus::Completed)])
        .await
        .expect("done");
    let swept = store.delete_finished_before("9999").await.expect("swept");
    assert_eq!(swept, vec!["thread-2".to_owned()]);
    assert_eq!(store.workflow("thread-2").await.expect("read"), None);

    store.insert_workflow(info, "u").await.expect("made again");
    let first = store
        .append("thread-2", vec![thinking(Some("a"))])
        .await
        .expect("a new log, its retry keys new too");
    assert_eq!(first[0].seq(), 1);
    assert_eq!(workflow_now(store, "thread-2").await.last_seq, 1);
}

/// `append_if` is a compare-and-set on the log's end: it appends when the log ends where the
/// caller expects, and otherwise says where the log ends and appends nothing — not even a
/// batch whose retry key is new, nor a status change.
pub async fn an_append_expecting_an_end_the_log_moved_past_appends_nothing(store: &dyn EventStore) {
    let info = store
        .create_workflow("external", None, "u")
        .await
        .expect("created");
    let first = store
        .append_if(&info.id, Some(0), vec![thinking(Some("a"))])
        .await
        .expect("the log ended at 0");
    assert_eq!(first[0].seq(), 1);

    let stale = store
        .append_if(
            &info.id,
            Some(0),
            vec![thinking(Some("b")), status(WorkflowStatus::Running)],
        )
        .await;
    assert!(
        matches!(stale, Err(LanternError::LogMoved { last_seq: 1 })),
        "{stale:?}"
    );
    let now = workflow_now(store, &info.id).await;
    assert_eq!((now.last_seq, now.status), (1, WorkflowStatus::Pending));
    assert!(store
        .seqs_of_keys(&info.id, &[&IdempotencyKey::EventId("b".into())])
        .await
        .expect("looked up")
        .is_empty());

    let current = store
        .append_if(&info.id, Some(1), vec![thinking(Some("b"))])
        .await
        .expect("the log ended at 1");
    assert_eq!(current[0].seq(), 2);
    let anywhere = store
        .append_if(&info.id, None, vec![thinking(None)])
        .await
        .expect("no expectation");
    assert_eq!(anywhere[0].seq(), 3);
}
