//! The connection indicator, driven by the socket's state signal: `connecting…`, `live`,
//! `reconnecting in Ns (attempt k)` counting down, `offline`, or `closed: why`, with a
//! "retry now" button whenever waiting can be skipped. Announced politely to screen readers.

use leptos::prelude::*;

use crate::socket::WorkflowSocket;

#[component]
pub fn ConnectionBadge(socket: WorkflowSocket, clock: ReadSignal<f64>) -> impl IntoView {
    let state = socket.state;
    view! {
        <span class="connection" role="status" aria-live="polite">
            <span
                class=move || format!("badge conn-{}", state.get().kind())
                data-testid="connection"
                data-state=move || state.get().kind()
                data-reconnects=move || socket.reconnects.get()
            >
                {move || state.get().describe(clock.get())}
            </span>
            <Show when=move || state.get().can_retry()>
                <button
                    type="button"
                    class="link"
                    data-testid="retry-now"
                    on:click=move |_| socket.retry_now()
                >
                    "retry now"
                </button>
            </Show>
        </span>
    }
}
