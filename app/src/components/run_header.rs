//! The top of the run page: the workflow's title, its status, how long it has been running
//! (stopped at the terminal status), the connection indicator and Finish / Cancel.

use leptos::prelude::*;

use super::{
    connection_badge::ConnectionBadge, run_controls::RunControls, status_badge::StatusBadge,
};
use crate::protocol::{WorkflowInfo, WorkflowStatus};
use crate::run_model::RunModel;
use crate::socket::WorkflowSocket;
use crate::time::{format_duration, parse_ts_ms};

#[component]
pub fn RunHeader(
    workflow: WorkflowInfo,
    socket: WorkflowSocket,
    model: RwSignal<RunModel>,
    #[prop(into)] status: Signal<WorkflowStatus>,
    clock: ReadSignal<f64>,
) -> impl IntoView {
    let title = workflow
        .title
        .clone()
        .unwrap_or_else(|| format!("{} workflow", workflow.kind));
    let created = parse_ts_ms(&workflow.created_at);
    let elapsed = move || {
        let end = model
            .with(|m| m.finished_at_ms)
            .unwrap_or_else(|| clock.get());
        created.map(|from| format_duration(end - from))
    };
    // From the socket's log, not the model: a batch of streamed text changes no memo of the
    // model (`pages::run::fold_new`), but it does add events.
    let events = move || {
        let n = socket.events.with(Vec::len);
        if n == 1 {
            "1 event".to_string()
        } else {
            format!("{n} events")
        }
    };
    view! {
        <header class="run-header">
            <h1>{title}</h1>
            <div class="run-meta">
                <StatusBadge status/>
                <span class="elapsed" data-testid="elapsed" title="time since the workflow started">
                    {elapsed} " elapsed"
                </span>
                <span class="event-count" data-testid="event-count">{events}</span>
                <ConnectionBadge socket clock/>
                <RunControls
                    socket
                    workflow_id=workflow.id.clone()
                    status
                    can_finish=crate::protocol::vocab::kinds::is_built_in(&workflow.kind)
                />
            </div>
            <p class="run-id">{workflow.id.clone()} " · " {workflow.kind.clone()}</p>
        </header>
    }
}
