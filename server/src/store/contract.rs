//! Checks of the [`EventStore`] guarantees that every store must pass, run by each store's tests.

use app::protocol::EventBody;

use super::{EventStore, IdempotencyKey, NewEvent};
use crate::error::LanternError;

/// An event to append, with retry key `id` if given.
pub fn thinking(id: Option<&str>) -> NewEvent {
    NewEvent {
        body: EventBody::AgentThinking {
            agent: "a".into(),
            content: "hm".into(),
        },
        key: id.map(|id| IdempotencyKey::EventId(id.into())),
    }
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
    let log = store.read(&info.id, 0, 100).await.expect("read");
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
