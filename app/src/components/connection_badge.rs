//! The connection indicator, driven by the socket's state signal.

use leptos::prelude::*;

use crate::socket::{ConnectionState, WorkflowSocket};

#[component]
pub fn ConnectionBadge(socket: WorkflowSocket) -> impl IntoView {
    let state = socket.state;
    let reconnecting = move || matches!(state.get(), ConnectionState::Reconnecting { .. });
    view! {
        <span
            class=move || format!("badge connection conn-{}", state.get().kind())
            data-testid="connection"
            data-state=move || state.get().kind()
            data-reconnects=move || socket.reconnects.get()
        >
            {move || state.get().describe()}
        </span>
        <Show when=reconnecting>
            <button class="link" on:click=move |_| socket.retry_now()>
                "retry now"
            </button>
        </Show>
    }
}
