//! One card per agent run: its task, what it is thinking (the latest thoughts, its streamed
//! reasoning), its tool calls one row each (a call waiting for a person's approval says so),
//! its answer (streamed as it arrives), and how long it took. A card with many tool calls shows
//! the latest [`TOOL_ROWS_SHOWN`] and a button for earlier ones, so a long run stays fast.

use leptos::prelude::*;

use super::answer::{Answer, Reasoning};
use crate::run_model::{AgentCard, Progress, RunModel, ToolRow};
use crate::time::format_duration;

/// Tool rows a card renders before older ones are collapsed behind a button.
pub const TOOL_ROWS_SHOWN: usize = 50;

/// `stream` fires when streamed text was appended (and nothing else changed): only the views of
/// streamed text follow it.
#[component]
pub fn TaskCards(model: RwSignal<RunModel>, stream: Trigger, workflow_id: String) -> impl IntoView {
    let count = Memo::new(move |_| model.with(|m| m.agents.len()));
    let count = move || count.get();
    view! {
        <section class="task-cards" aria-label="Agents">
            <Show when=move || { count() == 0 }>
                <p class="notice">"No agent has started yet."</p>
            </Show>
            <For each=move || 0..count() key=|i| *i let:i>
                <TaskCard model stream i workflow_id=workflow_id.clone()/>
            </For>
        </section>
    }
}

/// One field of card `i`, as a memo: it notifies only when that field changes, so an event
/// for another card (or another field) re-renders nothing here and open disclosures stay open.
/// `field` is a function pointer, not a closure type, so the fields of one type share one
/// compiled memo (each closure type would be compiled into the WASM again).
fn card_field<T: Clone + PartialEq + Send + Sync + 'static>(
    model: RwSignal<RunModel>,
    i: usize,
    field: fn(&AgentCard) -> T,
    missing: T,
) -> Memo<T> {
    let missing = std::sync::Arc::new(missing);
    Memo::new(move |_| model.with(|m| m.agents.get(i).map_or_else(|| (*missing).clone(), field)))
}

#[component]
fn TaskCard(
    model: RwSignal<RunModel>,
    stream: Trigger,
    i: usize,
    workflow_id: String,
) -> impl IntoView {
    let agent = card_field(model, i, |c| c.agent.clone(), String::new());
    let task = card_field(model, i, |c| c.task.clone(), None);
    let progress = card_field(model, i, |c| c.progress, Progress::Running);
    let duration = card_field(model, i, |c| c.duration_ms.map(format_duration), None);
    let summary = card_field(model, i, |c| c.summary.clone(), None);
    // The thoughts are read when their count changes, not on every change of the model.
    let thought_count = card_field(model, i, |c| c.thought_count, 0);
    let thoughts = move || {
        thought_count.track();
        model.with_untracked(|m| {
            m.agents
                .get(i)
                .map(|c| c.thoughts.clone())
                .unwrap_or_default()
        })
    };
    let rows = card_field(model, i, |c| c.tools.len(), 0);
    let shown = RwSignal::new(TOOL_ROWS_SHOWN);
    let first_shown = move || rows.get().saturating_sub(shown.get());
    view! {
        <article class=move || format!("task-card card-{}", progress.get().as_str())
            data-testid="task-card" data-agent=agent
            data-progress=move || progress.get().as_str()>
            <header class="card-head">
                <ProgressMark progress/>
                <h3 class="agent-name">{agent}</h3>
                <span class="card-duration" data-testid="agent-duration">{duration}</span>
            </header>
            {move || task.get().map(|t| view! { <p class="task">{t}</p> })}
            <Show when=move || { thought_count.get() > 0 }>
                <details class="thoughts">
                    <summary data-testid="thinking">
                        <span class="thinking-label">"thinking"</span>" "
                        {move || thoughts().pop()}
                    </summary>
                    <ol class="thought-list">
                        {move || thoughts().into_iter().map(|t| view! { <li>{t}</li> }).collect_view()}
                    </ol>
                    <p class="notice">
                        {move || format!("{} thoughts in all; the raw log has every one.", thought_count.get())}
                    </p>
                </details>
            </Show>
            <Reasoning model stream i/>
            <Show when=move || { first_shown() > 0 }>
                <button type="button" class="link earlier" data-testid="earlier-tools"
                    on:click=move |_| shown.update(|n| *n += TOOL_ROWS_SHOWN)>
                    {move || format!("show earlier tool calls ({} hidden)", first_shown())}
                </button>
            </Show>
            <ul class="tool-rows">
                <For each=move || first_shown()..rows.get() key=|j| *j let:j>
                    <ToolRowView model i j/>
                </For>
            </ul>
            <Answer model stream i workflow_id/>
            {move || summary.get().map(|s| view! { <p class="summary">{s}</p> })}
        </article>
    }
}

/// One tool call. The `<details>` stays put (open stays open); its parts follow the row's memo.
#[component]
fn ToolRowView(model: RwSignal<RunModel>, i: usize, j: usize) -> impl IntoView {
    let row =
        Memo::new(move |_| model.with(|m| m.agents.get(i).and_then(|c| c.tools.get(j)).cloned()));
    let progress =
        Memo::new(move |_| row.with(|r| r.as_ref().map_or(Progress::Running, |r| r.progress)));
    let running = move || progress.get() == Progress::Running;
    let field =
        move |f: fn(&ToolRow) -> Option<String>| move || row.with(|r| r.as_ref().and_then(f));
    let message = field(|r| r.message.clone());
    let awaiting = field(|r| r.awaiting.clone());
    let duration = field(|r| r.duration_ms.map(|ms| format_duration(ms as f64)));
    // In whole percent: an integer attribute keeps float printing out of the WASM.
    let percent = move || {
        row.with(|r| r.as_ref().and_then(|r| r.fraction))
            .map(|f| (f.clamp(0.0, 1.0) * 100.0).round() as u8)
    };
    let input = field(|r| Some(pretty(&r.input)));
    let result = move || {
        row.with(|r| {
            r.as_ref().and_then(|r| match (&r.output, &r.error) {
                (_, Some(e)) => Some(("error", e.clone())),
                (Some(o), None) => Some(("output", pretty(o))),
                _ => None,
            })
        })
    };
    view! {
        <li class=move || format!("tool-row tool-{}", progress.get().as_str()) data-testid="tool-row"
            data-progress=move || progress.get().as_str()>
            <details>
                <summary>
                    <ProgressMark progress/>
                    <code class="tool-name">{field(|r| Some(r.tool.clone()))}</code>
                    {move || awaiting().map(|_| view! {
                        <span class="tool-awaiting" data-testid="awaiting-approval">"awaiting your approval"</span>
                    })}
                    {move || message().filter(|_| running()).map(|m| view! { <span class="tool-message">{m}</span> })}
                    {move || percent().filter(|_| running()).map(|p| view! {
                        <progress max="100" value=p aria-label="tool progress"></progress>
                    })}
                    {move || duration().map(|d| view! { <span class="tool-duration">{d}</span> })}
                </summary>
                <div class="tool-io">
                    <h4>"input"</h4>
                    <pre>{input}</pre>
                    {move || result().map(|(label, text)| view! { <h4>{label}</h4><pre>{text}</pre> })}
                </div>
            </details>
        </li>
    }
}

/// A spinner while running, ✓ when done, ✗ when failed. One element whose class, label and
/// text follow the progress (three alternative elements would be three views to compile).
#[component]
fn ProgressMark(#[prop(into)] progress: Signal<Progress>) -> impl IntoView {
    let look = move || match progress.get() {
        Progress::Running => ("spinner", "running", ""),
        Progress::Done => ("mark ok", "done", "✓"),
        Progress::Failed => ("mark bad", "failed", "✗"),
    };
    view! {
        <span class=move || look().0 role="img" aria-label=move || look().1>{move || look().2}</span>
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
