//! What the user said to the workflow: inputs in the log (delivered) and inputs typed but not
//! in the log yet — *pending* until the server acks them (e.g. typed while offline; they go
//! out on reconnect), then *delivered*. Each appears once.

use leptos::prelude::*;

use crate::run_model::RunModel;
use crate::socket::WorkflowSocket;

#[component]
pub fn Conversation(model: RwSignal<RunModel>, socket: WorkflowSocket) -> impl IntoView {
    let count = Memo::new(move |_| model.with(|m| m.inputs.len()));
    let any = move || count.get() > 0 || socket.pending.with(|p| !p.is_empty());
    view! {
        <Show when=any>
            <ol class="conversation" data-testid="conversation" aria-label="Your messages">
                <For each=move || 0..count.get() key=|i| *i let:i>
                    <DeliveredMessage model i/>
                </For>
                <For each=move || socket.pending.get() key=|p| (p.client_msg_id.clone(), p.acked_seq) let:input>
                    {
                        let state = if input.acked_seq.is_some() { "delivered" } else { "pending" };
                        view! {
                            <li class=format!("message {state}") data-testid="message" data-state=state
                                data-client-msg-id=input.client_msg_id>
                                <span class="who">"you"</span>
                                <span class="text">{input.content}</span>
                                <span class="state">{if state == "pending" { "pending…" } else { "delivered" }}</span>
                            </li>
                        }
                    }
                </For>
            </ol>
        </Show>
    }
}

/// An input the log holds; rendered once.
#[component]
fn DeliveredMessage(model: RwSignal<RunModel>, i: usize) -> impl IntoView {
    let input = Memo::new(move |_| model.with(|m| m.inputs.get(i).cloned()));
    move || {
        input.get().map(|input| {
            view! {
                <li
                    class="message delivered"
                    data-testid="message"
                    data-state="delivered"
                    data-seq=input.seq
                    data-client-msg-id=input.client_msg_id
                >
                    <span class="who">{input.user}</span>
                    <span class="text">{input.content}</span>
                    <span class="state">"delivered"</span>
                </li>
            }
        })
    }
}
