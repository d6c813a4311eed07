//! `/w/{id}`: one workflow, live. The socket lives in [`use_workflow_socket`]; this page only
//! lays out what the user sees of it.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::components::{
    connection_badge::ConnectionBadge, event_list::EventList, input_box::InputBox,
    status_badge::StatusBadge,
};
use crate::protocol::{EventBody, WorkflowStatus};
use crate::server_fns::get_workflow;
use crate::socket::use_workflow_socket;

#[component]
pub fn RunPage() -> impl IntoView {
    let id = use_params_map()
        .read_untracked()
        .get("id")
        .unwrap_or_default();
    let info = Resource::new(
        {
            let id = id.clone();
            move || id.clone()
        },
        get_workflow,
    );
    let socket = use_workflow_socket(id.clone());
    // The newest workflow_status in the log is the truth; until one arrives, the API's.
    let status = Memo::new(move |_| {
        socket.events.with(|events| {
            events.iter().rev().find_map(|e| match e.body {
                EventBody::WorkflowStatus { status, .. } => Some(status),
                _ => None,
            })
        })
    });
    let title = move || {
        info.get()
            .and_then(|r| r.ok().flatten())
            .map(|w| w.title.unwrap_or_else(|| format!("{} workflow", w.kind)))
            .unwrap_or_else(|| "Workflow".into())
    };
    let fallback_status = move || {
        info.get()
            .and_then(|r| r.ok().flatten())
            .map(|w| w.status)
            .unwrap_or(WorkflowStatus::Pending)
    };
    view! {
        <section class="run">
            <a href="/" class="back">"← all workflows"</a>
            <div class="run-header">
                <h1>
                    <Suspense fallback=|| "Workflow">{title}</Suspense>
                </h1>
                <Suspense fallback=|| ()>
                    <StatusBadge status=Signal::derive(move || status.get().unwrap_or_else(fallback_status))/>
                </Suspense>
                <ConnectionBadge socket/>
            </div>
            <p class="run-id">{id}</p>
            <EventList socket/>
            <InputBox socket status=Signal::derive(move || status.get())/>
        </section>
    }
}
