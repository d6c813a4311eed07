//! The raw event log as it arrives: one row per event, each carrying its `seq` and type.

use leptos::prelude::*;

use crate::protocol::{EventBody, LoggedEvent};
use crate::socket::WorkflowSocket;

/// Rows the log renders at first; "show earlier" adds this many more each time.
pub const LOG_ROWS_SHOWN: usize = 200;

/// The raw log behind a toggle (a `<details>`, so it opens with the keyboard and without
/// JavaScript): every event with its `seq`, the newest [`LOG_ROWS_SHOWN`] rendered (a
/// 10,000-event run does not put 10,000 rows in the page), earlier ones on demand.
#[component]
pub fn RawLog(socket: WorkflowSocket) -> impl IntoView {
    let shown = RwSignal::new(LOG_ROWS_SHOWN);
    let total = move || socket.events.with(Vec::len);
    let hidden = move || total().saturating_sub(shown.get());
    view! {
        <details class="raw-log" data-testid="raw-log">
            <summary data-testid="toggle-log">{move || format!("Raw event log ({} events)", total())}</summary>
            <Show when=move || { hidden() > 0 }>
                <button type="button" class="link earlier" data-testid="earlier-events"
                    on:click=move |_| shown.update(|n| *n += LOG_ROWS_SHOWN)>
                    {move || format!("show earlier events ({} hidden)", hidden())}
                </button>
            </Show>
            <ol class="events" data-testid="events">
                // Per batch of events (a screen frame; while an answer streams, one batch of
                // deltas) the list is diffed by key over the rows shown (at most `shown`, not
                // the whole log) and only the new rows are made. The items are (index, seq)
                // pairs, not events: no event is cloned to diff, a row reads its own once.
                <For
                    each=move || socket.events.with(|e| {
                        let from = e.len().saturating_sub(shown.get());
                        e[from..].iter().enumerate().map(|(k, ev)| (from + k, ev.seq)).collect::<Vec<_>>()
                    })
                    key=|(_, seq)| *seq
                    children=move |(index, _)| {
                        socket.events.with_untracked(|e| e.get(index).map(event_row))
                    }
                />
            </ol>
        </details>
        <Show when=move || socket.last_error.get().is_some()>
            <p class="error" role="alert" data-testid="server-error">{move || socket.last_error.get()}</p>
        </Show>
    }
}

/// One row, made from the event where it lies in the log (no copy of the event).
fn event_row(event: &LoggedEvent) -> impl IntoView {
    let kind = event.body.kind();
    let who = event.body.agent().map(str::to_owned).unwrap_or_default();
    view! {
        <li class=format!("event event-{kind}") data-seq=event.seq data-type=kind>
            <span class="seq">{event.seq}</span>
            <span class="type">{kind}</span>
            <span class="agent">{who}</span>
            <span class="text">{summary(&event.body)}</span>
        </li>
    }
}

/// One line of text a person reads for an event.
fn summary(body: &EventBody) -> String {
    match body {
        EventBody::WorkflowStatus { status, detail } => match detail {
            Some(d) => format!("{} — {d}", status.as_str()),
            None => status.as_str().to_owned(),
        },
        EventBody::NodeUpdate { node, status, .. } => format!("{node}: {}", status.as_str()),
        EventBody::AgentStarted { task, .. } => task.clone().unwrap_or_else(|| "started".into()),
        EventBody::AgentThinking { content, .. } | EventBody::AgentResponse { content, .. } => {
            content.clone().unwrap_or_default()
        }
        EventBody::TextDelta { delta, .. } | EventBody::ThinkingDelta { delta, .. } => {
            delta.clone()
        }
        EventBody::Interrupt {
            reason, message, ..
        } => format!("{reason}: {message}"),
        EventBody::InterruptResolved { status, user, .. } => match user {
            Some(user) => format!("{} by {user}", status.as_str()),
            None => status.as_str().to_owned(),
        },
        EventBody::ToolExecuting { tool, input, .. } => format!("{tool}({input})"),
        EventBody::ToolUpdate { tool, message, .. } => format!("{tool}: {message}"),
        EventBody::ToolCompleted {
            tool,
            ok,
            output,
            error,
            duration_ms,
            ..
        } => {
            let result = match (ok, output, error) {
                (true, Some(out), _) => out.to_string(),
                (false, _, Some(err)) => err.clone(),
                _ => String::new(),
            };
            let mark = if *ok { "✓" } else { "✗" };
            format!("{mark} {tool} in {duration_ms} ms {result}")
        }
        EventBody::SearchResults { query, results } => {
            let sources: Vec<&str> = results.iter().map(|r| r.source.as_str()).collect();
            format!(
                "{} results for “{query}”: {}",
                results.len(),
                sources.join(", ")
            )
        }
        EventBody::AgentCompleted { ok, summary, .. } => {
            let mark = if *ok { "done" } else { "failed" };
            match summary {
                Some(s) => format!("{mark}: {s}"),
                None => mark.to_owned(),
            }
        }
        EventBody::FinalReport { content } => content.clone(),
        EventBody::UserInput { content, user, .. } => format!("{user}: {content}"),
    }
}
