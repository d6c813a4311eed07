//! Checking a publish request against a workflow's state, with no I/O: what to append (the
//! request's new events, each after whatever it closes), where each slot of the request ends
//! up, and the state after. [`super::Hub`] runs this under the workflow's writer lock.

use std::collections::HashMap;

use app::protocol::EventBody;

use crate::error::{LanternError, Result};
use crate::lifecycle::Lifecycle;
use crate::store::{IdempotencyKey, NewEvent};

/// Where a slot of a publish request ends up: appended now, or already in the log.
pub(super) enum Slot {
    Existing(u64),
    InBatch(usize),
}

/// A publish request checked against its workflow's state: what to append, and the state after.
pub(super) struct Plan {
    pub next: Lifecycle,
    pub slots: Vec<Slot>,
    /// The events to append: the request's new ones, each after whatever it closes.
    pub batch: Vec<NewEvent>,
}

/// Is this event allowed into a log that is full ([`crate::config::Config::max_log_bytes`])?
/// Only what ends the workflow: it must always be possible to finish.
fn fits_a_full_log(body: &EventBody) -> bool {
    matches!(body, EventBody::WorkflowStatus { status, .. } if status.is_terminal())
}

/// Check `items` against the workflow's state `current` in order; `in_log` holds the retry keys
/// known to be logged already (their slots get the logged `seq` and are not checked again).
/// A key repeated within the request is appended once. With `log_full`, only a terminal status
/// may still be appended (anything else is `too_large`).
pub(super) fn plan(
    current: &Lifecycle,
    items: Vec<(Option<IdempotencyKey>, EventBody)>,
    in_log: &HashMap<IdempotencyKey, u64>,
    log_full: bool,
) -> Result<Plan> {
    let mut next = current.clone();
    let mut batch: Vec<NewEvent> = Vec::new();
    let mut slots = Vec::with_capacity(items.len());
    let mut keys_in_batch: HashMap<IdempotencyKey, usize> = HashMap::new();
    let numbered = items.len() > 1;
    for (index, (key, body)) in items.into_iter().enumerate() {
        if let Some(key) = &key {
            if let Some(&seq) = in_log.get(key) {
                slots.push(Slot::Existing(seq));
                continue;
            }
            if let Some(&at) = keys_in_batch.get(key) {
                slots.push(Slot::InBatch(at));
                continue;
            }
        }
        let which = || {
            if numbered {
                format!("event {index} ")
            } else {
                String::new()
            }
        };
        if log_full && !fits_a_full_log(&body) {
            return Err(LanternError::TooLarge(format!(
                "{}({}): the workflow's log is full; only a terminal workflow_status can be \
                 appended now",
                which(),
                body.kind()
            )));
        }
        let closing = next.admit(&body).map_err(|why| {
            LanternError::Conflict(format!("{}({}): {why}", which(), body.kind()))
        })?;
        for event in closing {
            next.apply(&event);
            batch.push(NewEvent {
                body: event,
                key: None,
            });
        }
        next.apply(&body);
        if let Some(key) = &key {
            keys_in_batch.insert(key.clone(), batch.len());
        }
        slots.push(Slot::InBatch(batch.len()));
        batch.push(NewEvent { body, key });
    }
    Ok(Plan { next, slots, batch })
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::protocol::WorkflowStatus;

    fn thinking() -> EventBody {
        EventBody::AgentThinking {
            agent: "a".into(),
            content: "c".into(),
        }
    }

    fn status(status: WorkflowStatus) -> EventBody {
        EventBody::WorkflowStatus {
            status,
            detail: None,
        }
    }

    #[test]
    fn a_full_log_takes_only_a_terminal_status_and_says_why() {
        let current = Lifecycle::default();
        let refused = plan(&current, vec![(None, thinking())], &HashMap::new(), true);
        assert!(
            matches!(&refused, Err(LanternError::TooLarge(why)) if why.contains("log is full")),
            "{:?}",
            refused.err()
        );
        let running = vec![(None, status(WorkflowStatus::Running))];
        assert!(plan(&current, running, &HashMap::new(), true).is_err());
        let done = vec![(None, status(WorkflowStatus::Completed))];
        let planned = plan(&current, done, &HashMap::new(), true).expect("a full log can end");
        assert_eq!(planned.batch.len(), 1);
    }

    #[test]
    fn a_retry_into_a_full_log_still_gets_its_seq() {
        let key = IdempotencyKey::EventId("e1".into());
        let in_log = HashMap::from([(key.clone(), 7)]);
        let planned = plan(
            &Lifecycle::default(),
            vec![(Some(key), thinking())],
            &in_log,
            true,
        )
        .expect("a logged retry is not appended again");
        assert!(planned.batch.is_empty());
        assert!(matches!(planned.slots[..], [Slot::Existing(7)]));
    }
}
