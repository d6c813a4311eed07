//! The list of workflows on `/`, newest first: title (the query), kind, status and age. It
//! follows the server's live list stream, so statuses change in place without a reload.

use leptos::prelude::*;

use super::{clock::use_clock, status_badge::StatusBadge};
use crate::live_list::use_live_workflows;
use crate::protocol::WorkflowInfo;
use crate::time::{format_age, parse_ts_ms};

/// An island: hydrated in the browser from the list the server rendered.
#[island]
pub fn WorkflowList(workflows: Vec<WorkflowInfo>) -> impl IntoView {
    let list = use_live_workflows(workflows);
    let clock = use_clock(15_000);
    view! {
        <Show
            when=move || list.with(|l| !l.is_empty())
            fallback=|| view! { <p class="notice" data-testid="no-workflows">"No workflows yet. Start one above."</p> }
        >
            <ul class="workflows" data-testid="workflows">
                <For each=move || list.get() key=|w| (w.id.clone(), w.status) let:w>
                    <WorkflowRow w clock/>
                </For>
            </ul>
        </Show>
    }
}

#[component]
fn WorkflowRow(w: WorkflowInfo, clock: ReadSignal<f64>) -> impl IntoView {
    let href = format!("/w/{}", w.id);
    let title = w
        .title
        .clone()
        .unwrap_or_else(|| format!("{} workflow", w.kind));
    let created = parse_ts_ms(&w.created_at);
    let age = move || created.map(|c| format_age(clock.get() - c));
    view! {
        <li data-testid="workflow-row" data-id=w.id.clone() data-status=w.status.as_str()>
            <a href=href>{title}</a>
            <span class="kind">{w.kind.clone()}</span>
            <StatusBadge status=w.status/>
            <time class="age" datetime=w.created_at.clone()>{age}</time>
        </li>
    }
}
