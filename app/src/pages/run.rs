//! `/w/{id}`: one workflow, live. The page loads the workflow object, then mounts the live
//! view, whose socket lives in [`use_workflow_socket`]; this page only lays out what the user
//! sees of it.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::components::{
    connection_badge::ConnectionBadge, event_list::EventList, input_box::InputBox,
    run_controls::RunControls, status_badge::StatusBadge,
};
use crate::protocol::{EventBody, RunSnapshot};
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
                                view! {
                                    <p class="notice" data-testid="not-found">
                                        "Workflow not found."
                                    </p>
                                }
                                    .into_any()
                            }
                            Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Suspense>
        </section>
    }
}

/// The live view of one existing workflow: header, connection, events, input. It starts from
/// the snapshot the server rendered, and its socket resumes right after the snapshot's last
/// event: nothing is shown twice, nothing is skipped.
#[component]
fn LiveRun(snapshot: RunSnapshot) -> impl IntoView {
    let RunSnapshot { workflow, events } = snapshot;
    let socket = use_workflow_socket(workflow.id.clone(), events);
    let initial_status = workflow.status;
    // The newest workflow_status in the log is the truth; until one arrives, the API's.
    let status = Memo::new(move |_| {
        socket.events.with(|events| {
            events
                .iter()
                .rev()
                .find_map(|e| match e.body {
                    EventBody::WorkflowStatus { status, .. } => Some(status),
                    _ => None,
                })
                .unwrap_or(initial_status)
        })
    });
    let title = workflow
        .title
        .clone()
        .unwrap_or_else(|| format!("{} workflow", workflow.kind));
    view! {
        <div class="run-header">
            <h1>{title}</h1>
            <StatusBadge status=status/>
            <ConnectionBadge socket/>
            <RunControls
                socket
                workflow_id=workflow.id.clone()
                status=status
                can_finish=workflow.kind != "external"
            />
        </div>
        <p class="run-id">{workflow.id.clone()} " · " {workflow.kind.clone()}</p>
        <EventList socket/>
        <InputBox socket status=Signal::derive(move || Some(status.get()))/>
    }
}
