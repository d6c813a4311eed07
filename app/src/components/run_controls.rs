//! The run page's Finish and Cancel buttons, shown while the workflow has not finished.
//! Finish sends "done" (interactive workflows complete on it); Cancel asks the server to
//! cancel, which closes open tools and agents with `ok: false` and ends with `cancelled`. A
//! cancel the server refused says why beside the buttons.

use leptos::prelude::*;

use crate::protocol::WorkflowStatus;
use crate::server_fns::cancel_workflow;
use crate::socket::WorkflowSocket;

#[component]
pub fn RunControls(
    socket: WorkflowSocket,
    workflow_id: String,
    #[prop(into)] status: Signal<WorkflowStatus>,
    /// Built-in interactive kinds finish on "done"; external agents decide for themselves.
    can_finish: bool,
) -> impl IntoView {
    let cancelling = RwSignal::new(false);
    let refused = RwSignal::new(None::<String>);
    let running = move || !status.get().is_terminal();
    let id = workflow_id.clone();
    view! {
        <Show when=running>
            <div class="run-controls">
                <Show when=move || can_finish>
                    <button
                        type="button"
                        data-testid="finish"
                        on:click=move |_| socket.send_input(crate::protocol::vocab::FINISH.into())
                    >
                        "Finish"
                    </button>
                </Show>
                <button
                    type="button"
                    class="danger"
                    data-testid="cancel"
                    prop:disabled=move || cancelling.get()
                    on:click={
                        let id = id.clone();
                        move |_| cancel(id.clone(), cancelling, refused)
                    }
                >
                    "Cancel"
                </button>
                {move || {
                    refused
                        .get()
                        .map(|why| {
                            view! {
                                <p class="error" role="alert" data-testid="cancel-error">
                                    "Could not cancel: "
                                    {why}
                                </p>
                            }
                        })
                }}
            </div>
        </Show>
    }
}

/// Ask the server to cancel; the button stays disabled while the request is out. The outcome
/// shows in the log (`cancelled`); a refused request shows its reason in `refused` and enables
/// the button again.
fn cancel(id: String, cancelling: RwSignal<bool>, refused: RwSignal<Option<String>>) {
    cancelling.set(true);
    refused.set(None);
    leptos::task::spawn_local(async move {
        if let Err(e) = cancel_workflow(id).await {
            refused.set(Some(e.to_string()));
        }
        cancelling.set(false);
    });
}
