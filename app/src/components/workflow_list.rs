//! The list of workflows on `/`.

use leptos::prelude::*;

use super::status_badge::StatusBadge;
use crate::protocol::WorkflowInfo;

#[component]
pub fn WorkflowList(workflows: Vec<WorkflowInfo>) -> impl IntoView {
    if workflows.is_empty() {
        return view! { <p class="notice">"No workflows yet. Start one above."</p> }.into_any();
    }
    view! {
        <ul class="workflows" data-testid="workflows">
            {workflows
                .into_iter()
                .map(|w| {
                    let href = format!("/w/{}", w.id);
                    let title = w.title.clone().unwrap_or_else(|| format!("{} workflow", w.kind));
                    view! {
                        <li>
                            <a href=href>{title}</a>
                            <span class="kind">{w.kind.clone()}</span>
                            <StatusBadge status=w.status/>
                            <span class="events-count">{format!("{} events", w.last_seq)}</span>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}
