//! The box where the user answers a workflow; what is typed goes out as `user_input`. It is
//! there while the workflow runs (agents may read input at any time) and says so when the
//! workflow is waiting for an answer (in the workflow's own words, when it gives them); typed
//! while offline, a message waits as *pending*.

use leptos::prelude::*;

use crate::protocol::WorkflowStatus;
use crate::socket::WorkflowSocket;

#[component]
pub fn InputBox(
    socket: WorkflowSocket,
    #[prop(into)] status: Signal<Option<WorkflowStatus>>,
    /// What the workflow says about its status (what it waits for; the assistant's token
    /// usage).
    #[prop(into)]
    detail: Signal<Option<String>>,
) -> impl IntoView {
    let (text, set_text) = signal(String::new());
    let finished = move || status.get().is_some_and(WorkflowStatus::is_terminal);
    let waiting = move || status.get() == Some(WorkflowStatus::WaitingInput);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let content = text.get_untracked();
        if content.trim().is_empty() {
            return;
        }
        socket.send_input(content);
        set_text.set(String::new());
    };
    view! {
        <Show when=waiting>
            <p class="waiting-prompt" role="status" data-testid="waiting-prompt">
                {move || detail.get().unwrap_or_else(|| "The workflow is waiting for your answer.".into())}
            </p>
        </Show>
        <form class=move || if waiting() { "input-box waiting" } else { "input-box" } on:submit=submit>
            <input
                type="text"
                data-testid="input"
                aria-label="Message to the workflow"
                placeholder=move || {
                    if finished() { "This workflow has finished." } else { "Say something (\"done\" finishes)" }
                }
                prop:value=text
                on:input=move |ev| set_text.set(event_target_value(&ev))
                prop:disabled=finished
            />
            <button type="submit" class="primary" data-testid="send" prop:disabled=finished>
                "Send"
            </button>
        </form>
    }
}
