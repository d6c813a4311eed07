//! Checking a publish request against a workflow's state, with no I/O: what to append (the
//! request's new events, each after whatever it closes), where each slot of the request ends
//! up. [`super::Hub`] runs this under the workflow's writer lock. The state is changed in place
//! as the request is checked (a delta must see the deltas before it in the same request) and the
//! [`Plan`] holds the [`Undo`]s that take it back if the append does not happen.

use std::collections::HashMap;

use app::protocol::EventBody;
use chrono::{DateTime, Utc};

use crate::error::{LanternError, Result};
use crate::lifecycle::{Lifecycle, Refusal, Undo};
use crate::store::{IdempotencyKey, NewEvent};

/// Where a slot of a publish request ends up: appended now, or already in the log.
pub(super) enum Slot {
    Existing(u64),
    InBatch(usize),
}

/// A publish request checked against (and applied to) its workflow's state.
pub(super) struct Plan {
    /// What takes the state back to before the request, in the order they were made.
    pub undos: Vec<Undo>,
    pub slots: Vec<Slot>,
    /// The events to append: the request's new ones, each after whatever it closes.
    pub batch: Vec<NewEvent>,
}

impl Plan {
    /// Take the request back out of `state` (its append did not happen).
    pub fn undo(self, state: &mut Lifecycle) {
        for undo in self.undos.into_iter().rev() {
            state.undo(undo);
        }
    }
}

/// Is this event allowed into a log that is full ([`crate::config::Config::max_log_bytes`])?
/// Only what ends the workflow: it must always be possible to finish.
fn fits_a_full_log(body: &EventBody) -> bool {
    matches!(body, EventBody::WorkflowStatus { status, .. } if status.is_terminal())
}

/// Check `items` in order against the workflow's state `state`, applying each to it; `in_log`
/// holds the retry keys known to be logged already (their slots get the logged `seq` and are
/// not checked again). A key repeated within the request is appended once. With `log_full`,
/// only a terminal status may still be appended (anything else is `too_large`). On `Err`,
/// `state` is as it was.
pub(super) fn plan(
    state: &mut Lifecycle,
    items: Vec<(Option<IdempotencyKey>, EventBody)>,
    in_log: &HashMap<IdempotencyKey, u64>,
    log_full: bool,
    now: DateTime<Utc>,
) -> Result<Plan> {
    let mut planned = Plan {
        undos: Vec::new(),
        slots: Vec::with_capacity(items.len()),
        batch: Vec::new(),
    };
    let mut keys_in_batch: HashMap<IdempotencyKey, usize> = HashMap::new();
    let numbered = items.len() > 1;
    for (index, (key, body)) in items.into_iter().enumerate() {
        if let Some(key) = &key {
            if let Some(&seq) = in_log.get(key) {
                planned.slots.push(Slot::Existing(seq));
                continue;
            }
            if let Some(&at) = keys_in_batch.get(key) {
                planned.slots.push(Slot::InBatch(at));
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
            let why = format!(
                "{}({}): the workflow's log is full; only a terminal workflow_status can be \
                 appended now",
                which(),
                body.kind()
            );
            planned.undo(state);
            return Err(LanternError::TooLarge(why));
        }
        let kind = body.kind();
        let (closing, body) = match state.admit(body, now) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                planned.undo(state);
                return Err(match refusal {
                    Refusal::Conflict(why) => {
                        LanternError::Conflict(format!("{}({kind}): {why}", which()))
                    }
                    Refusal::BadRequest(why) => {
                        LanternError::BadRequest(format!("{}({kind}): {why}", which()))
                    }
                });
            }
        };
        for event in closing {
            planned.undos.push(state.apply(&event));
            planned.batch.push(NewEvent {
                body: event,
                key: None,
            });
        }
        planned.undos.push(state.apply(&body));
        if let Some(key) = &key {
            keys_in_batch.insert(key.clone(), planned.batch.len());
        }
        planned.slots.push(Slot::InBatch(planned.batch.len()));
        planned.batch.push(NewEvent { body, key });
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::protocol::WorkflowStatus;

    fn thinking() -> EventBody {
        EventBody::AgentThinking {
            agent: "a".into(),
            content: Some("c".into()),
            message_id: None,
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
        let mut current = Lifecycle::default();
        let refused = plan(
            &mut current,
            vec![(None, thinking())],
            &HashMap::new(),
            true,
            Utc::now(),
        );
        assert!(
            matches!(&refused, Err(LanternError::TooLarge(why)) if why.contains("log is full")),
            "{:?}",
            refused.err()
        );
        let running = vec![(None, status(WorkflowStatus::Running))];
        assert!(plan(&mut current, running, &HashMap::new(), true, Utc::now()).is_err());
        let done = vec![(None, status(WorkflowStatus::Completed))];
        let planned = plan(&mut current, done, &HashMap::new(), true, Utc::now())
            .expect("a full log can end");
        assert_eq!(planned.batch.len(), 1);
    }

    #[test]
    fn a_retry_into_a_full_log_still_gets_its_seq() {
        let key = IdempotencyKey::EventId("e1".into());
        let in_log = HashMap::from([(key.clone(), 7)]);
        let planned = plan(
            &mut Lifecycle::default(),
            vec![(Some(key), thinking())],
            &in_log,
            true,
            Utc::now(),
        )
        .expect("a logged retry is not appended again");
        assert!(planned.batch.is_empty());
        assert!(matches!(planned.slots[..], [Slot::Existing(7)]));
    }
}
