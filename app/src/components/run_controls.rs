//! The run page's Finish and Cancel buttons, shown while the workflow has not finished.
//! Finish sends "done" (interactive workflows complete on it); Cancel asks the server to
//! cancel, which closes open tools and agents with `ok: false` and ends with `cancelled`.

use leptos::prelude::*;

use crate::protocol::WorkflowStatus;
use crate::server_fns::CancelWorkflow;
use crate::socket::WorkflowSocket;

#[component]
pub fn RunControls(
    socket: WorkflowSocket,
    workflow_id: String,
    #[prop(into)] status: Signal<WorkflowStatus>,
    /// Built-in interactive kinds finish on "done"; external agents decide for themselves.
    can_finish: bool,
) -> impl IntoView {
    let cancel = ServerAction::<CancelWorkflow>::new();
    let running = move || !status.get().is_terminal();
    let id = workflow_id.clone();
    view! {
        <Show when=running>
            <div class="run-controls">
                <Show when=move || can_finish>
                    <button
                        type="button"
                        data-testid="finish"
                        on:click=move |_| socket.send_input("done".into())
                    >
                        "Finish"
                    </button>
                </Show>
                <button
                    type="button"
                    class="danger"
                    data-testid="cancel"
                    prop:disabled=move || cancel.pending().get()
                    on:click={
                        let id = id.clone();
                        move |_| {
                            cancel.dispatch(CancelWorkflow { id: id.clone() });
                        }
                    }
                >
                    "Cancel"
                </button>
            </div>
        </Show>
    }
}
