//! `/w/{id}`: one workflow, live. The page loads the workflow object, then mounts the live
//! view, whose socket lives in [`use_workflow_socket`]; this page only lays out what the user
//! sees of it.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::NotFound;
use crate::components::{
    clock::use_clock, conversation::Conversation, event_list::RawLog, input_box::InputBox,
    interrupt_card::InterruptCards, report::Reports, run_header::RunHeader,
    search_results::SearchResults, step_rail::StepRail, task_card::TaskCards,
};
use crate::protocol::{LoggedEvent, RunSnapshot};
use crate::run_model::{Change, RunModel};
use crate::server_fns::get_snapshot;
use crate::socket::use_workflow_socket;

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let snapshot = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        get_snapshot,
    );
    view! {
        <section class="run">
            <a href="/" class="back">"← all workflows"</a>
            <Suspense fallback=|| view! { <p class="notice">"Loading workflow…"</p> }>
                {move || {
                    snapshot
                        .get()
                        .map(|found| match found {
                            Ok(Some(snapshot)) => view! { <LiveRun snapshot/> }.into_any(),
                            Ok(None) => {
                                view! { <NotFound message="Workflow not found."/> }.into_any()
                            }
                            Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Suspense>
        </section>
    }
}

/// The live view of one existing workflow. It starts from the snapshot the server rendered,
/// and its socket resumes right after the snapshot's last event: nothing is shown twice,
/// nothing is skipped. The [`RunModel`] is folded from the socket's log one new event at a
/// time; every panel below renders from it. An island: the only part of the page that runs in
/// the browser, hydrated from the snapshot the server serialized into the page.
#[island]
fn LiveRun(snapshot: RunSnapshot) -> impl IntoView {
    let RunSnapshot { workflow, events } = snapshot;
    let workflow_id = workflow.id.clone();
    let model = RwSignal::new(RunModel::from_events(&events));
    // Fires when streamed text was appended: the views of streamed text follow it alone.
    let stream = Trigger::new();
    let folded = StoredValue::new(events.len());
    let socket = use_workflow_socket(workflow.id.clone(), events);
    Effect::new(move |_| {
        socket
            .events
            .with(|events| fold_new(model, stream, folded, events))
    });
    let initial_status = workflow.status;
    // The newest workflow_status in the log is the truth; until one arrives, the API's.
    let status = Memo::new(move |_| model.with(|m| m.status).unwrap_or(initial_status));
    let clock = use_clock(1000);
    let input_status = Signal::derive(move || Some(status.get()));
    let input_detail = Signal::derive(move || model.with(|m| m.status_detail.clone()));
    // Each panel's view is type-erased already (`erase_components`, .cargo/config.toml).
    view! {
        <RunHeader workflow socket model status clock/>
        <StepRail model/>
        <InterruptCards model socket clock/>
        <TaskCards model stream workflow_id=workflow_id.clone()/>
        <SearchResults model/>
        <Reports model workflow_id/>
        <Conversation model socket/>
        <InputBox socket status=input_status detail=input_detail/>
        <RawLog socket/>
    }
}

/// Fold the events the model has not seen; rebuild it when the log was reset (4009).
///
/// The hot path of streaming: a batch of events (one per screen frame, the driver gathers them)
/// that only appended text to messages already drawn changes the model without notifying it,
/// and fires `stream` alone: no card, row or panel re-reads the model, and each streamed-text
/// view appends the new characters to its text node (`components::streamed_text`). A batch
/// with anything else notifies the model (each view's memo decides if it changed) and the
/// stream.
fn fold_new(
    model: RwSignal<RunModel>,
    stream: Trigger,
    folded: StoredValue<usize>,
    events: &[LoggedEvent],
) {
    let done = folded.get_value();
    if events.len() < done {
        model.set(RunModel::from_events(events));
        stream.notify();
    } else if events.len() > done {
        let changed = model.update_untracked(|m| {
            events[done..]
                .iter()
                .fold(Change::Text, |change, e| match m.apply(e) {
                    Change::Text => change,
                    Change::Structure => Change::Structure,
                })
        });
        if changed == Change::Structure {
            model.notify();
        }
        stream.notify();
    }
    folded.set_value(events.len());
}
