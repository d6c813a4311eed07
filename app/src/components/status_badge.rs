//! A workflow's status as a coloured badge.

use leptos::prelude::*;

use crate::protocol::WorkflowStatus;

#[component]
pub fn StatusBadge(#[prop(into)] status: Signal<WorkflowStatus>) -> impl IntoView {
    view! {
        <span
            class=move || format!("badge status-{}", status.get().as_str())
            data-testid="workflow-status"
        >
            {move || status.get().as_str().replace('_', " ")}
        </span>
    }
}
