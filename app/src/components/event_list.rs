//! The log as it arrives: one row per event, each carrying its `seq`, then the inputs that are
//! still waiting for the server's ack.

use leptos::prelude::*;

use crate::protocol::{EventBody, LoggedEvent};
use crate::socket::WorkflowSocket;

#[component]
pub fn EventList(socket: WorkflowSocket) -> impl IntoView {
    view! {
        <ol class="events" data-testid="events">
            <For each=move || socket.events.get() key=|e| e.seq let:event>
                <EventRow event/>
            </For>
            <For each=move || socket.pending.get() key=|p| p.client_msg_id.clone() let:input>
                <li class="event pending" data-testid="pending-input">
                    <span class="seq">"…"</span>
                    <span class="type">"user_input"</span>
                    <span class="text">{input.content}" (sending)"</span>
                </li>
            </For>
        </ol>
        <Show when=move || socket.last_error.get().is_some()>
            <p class="error" data-testid="server-error">{move || socket.last_error.get()}</p>
        </Show>
    }
}

#[component]
fn EventRow(event: LoggedEvent) -> impl IntoView {
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
        EventBody::NodeUpdate { node, status, .. } => format!("{node}: {status:?}"),
        EventBody::AgentStarted { task, .. } => task.clone().unwrap_or_else(|| "started".into()),
        EventBody::AgentThinking { content, .. } | EventBody::AgentResponse { content, .. } => {
            content.clone()
        }
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
