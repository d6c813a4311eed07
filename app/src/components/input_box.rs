//! The box where the user answers a workflow; what is typed goes out as `user_input`.

use leptos::prelude::*;

use crate::protocol::WorkflowStatus;
use crate::socket::WorkflowSocket;

#[component]
pub fn InputBox(
    socket: WorkflowSocket,
    #[prop(into)] status: Signal<Option<WorkflowStatus>>,
) -> impl IntoView {
    let (text, set_text) = signal(String::new());
    let finished = move || status.get().is_some_and(WorkflowStatus::is_terminal);
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
        <form class="input-box" on:submit=submit>
            <input
                type="text"
                data-testid="input"
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
