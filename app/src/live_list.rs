//! The home page's workflow list, kept live by `/sse/workflows` (Server-Sent Events): the
//! server sends the whole list first, then each workflow created or whose status changed.
//! [`upsert`] is the pure merge, unit-tested; the `EventSource` runs only in the browser and is
//! closed when the list's component goes away. The browser's `EventSource` reconnects by
//! itself, and the server starts each stream with the whole list, so nothing is missed.

use leptos::prelude::*;

use crate::protocol::WorkflowInfo;

/// Put `info` in `list` (newest first): replace the workflow with the same id, or add it.
pub fn upsert(list: &mut Vec<WorkflowInfo>, info: WorkflowInfo) {
    match list.iter_mut().find(|w| w.id == info.id) {
        Some(found) => *found = info,
        None => list.push(info),
    }
    // The timestamps are fixed-width RFC 3339 UTC, so text order is time order; ids break ties.
    list.sort_by(|a, b| (&b.created_at, &b.id).cmp(&(&a.created_at, &a.id)));
}

/// The list, starting from `initial` (rendered by the server) and following the stream.
pub fn use_live_workflows(initial: Vec<WorkflowInfo>) -> ReadSignal<Vec<WorkflowInfo>> {
    let (list, set_list) = signal(initial);
    follow(set_list);
    list
}

#[cfg(feature = "hydrate")]
fn follow(set_list: WriteSignal<Vec<WorkflowInfo>>) {
    use futures::future::{AbortHandle, Abortable};
    use futures::StreamExt;
    use gloo_net::eventsource::futures::EventSource;

    let Ok(mut source) = EventSource::new("/sse/workflows") else {
        return;
    };
    let (Ok(lists), Ok(changes)) = (source.subscribe("list"), source.subscribe("workflow")) else {
        return;
    };
    let (stop, registration) = AbortHandle::new_pair();
    leptos::task::spawn_local(async move {
        let frames = futures::stream::select(lists, changes);
        let apply = frames.for_each(move |frame| {
            if let Ok((name, message)) = frame {
                let data = message.data().as_string().unwrap_or_default();
                if name == "list" {
                    if let Ok(list) = serde_json::from_str::<Vec<WorkflowInfo>>(&data) {
                        set_list.set(list);
                    }
                } else if let Ok(info) = serde_json::from_str::<WorkflowInfo>(&data) {
                    set_list.update(|list| upsert(list, info));
                }
            }
            futures::future::ready(())
        });
        let _ = Abortable::new(apply, registration).await;
        // Dropping the source closes the connection.
        drop(source);
    });
    on_cleanup(move || stop.abort());
}

#[cfg(not(feature = "hydrate"))]
fn follow(_set_list: WriteSignal<Vec<WorkflowInfo>>) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::WorkflowStatus;

    fn info(id: &str, created: &str, status: WorkflowStatus) -> WorkflowInfo {
        WorkflowInfo {
            id: id.into(),
            kind: "search".into(),
            title: None,
            status,
            last_seq: 0,
            created_at: created.into(),
            updated_at: created.into(),
        }
    }

    #[test]
    fn a_new_workflow_goes_first_and_a_known_one_is_replaced_in_place() {
        let mut list = vec![
            info("b", "2026-11-22T10:00:02.000Z", WorkflowStatus::Running),
            info("a", "2026-11-22T10:00:01.000Z", WorkflowStatus::Running),
        ];
        upsert(
            &mut list,
            info("c", "2026-11-22T10:00:03.000Z", WorkflowStatus::Pending),
        );
        upsert(
            &mut list,
            info("a", "2026-11-22T10:00:01.000Z", WorkflowStatus::Completed),
        );
        let ids: Vec<&str> = list.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
        assert_eq!(list[2].status, WorkflowStatus::Completed);
    }
}
