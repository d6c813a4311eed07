//! The graph's nodes (`node_update`) as a rail of steps, in the order they first ran, each
//! marked executing, completed or failed.

use leptos::prelude::*;

use crate::run_model::RunModel;

#[component]
pub fn StepRail(model: RwSignal<RunModel>) -> impl IntoView {
    let count = Memo::new(move |_| model.with(|m| m.steps.len()));
    let count = move || count.get();
    view! {
        <Show when=move || { count() > 0 }>
            <ol class="step-rail" data-testid="steps" aria-label="Steps">
                <For each=move || 0..count() key=|i| *i let:i>
                    <Step model i/>
                </For>
            </ol>
        </Show>
    }
}

#[component]
fn Step(model: RwSignal<RunModel>, i: usize) -> impl IntoView {
    let step = Memo::new(move |_| model.with(|m| m.steps.get(i).cloned()));
    let step = move || step.get();
    let status = move || step().map_or("executing", |s| s.status.as_str());
    view! {
        <li class=move || format!("step step-{}", status()) data-step-status=status
            title=move || step().and_then(|s| s.detail).unwrap_or_default()>
            <span class="step-dot" aria-hidden="true"></span>
            <span class="step-name">{move || step().map(|s| s.node).unwrap_or_default()}</span>
            <span class="visually-hidden">{move || format!(" ({})", status())}</span>
        </li>
    }
}
