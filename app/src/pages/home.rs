//! `/`: the workflows, newest first, and a button that starts an `echo` workflow.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::components::workflow_list::WorkflowList;
use crate::server_fns::{list_workflows, StartEcho};

#[component]
pub fn HomePage() -> impl IntoView {
    let start = ServerAction::<StartEcho>::new();
    let workflows = Resource::new(move || start.version().get(), |_| list_workflows());
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(info)) = start.value().get() {
            navigate(&format!("/w/{}", info.id), Default::default());
        }
    });
    view! {
        <section class="home">
            <h1>"Workflows"</h1>
            <p class="tagline">"Start a workflow and watch every agent and tool live."</p>
            <ActionForm action=start>
                <button type="submit" class="primary" data-testid="start-echo">
                    "Start an echo workflow"
                </button>
            </ActionForm>
            <Suspense fallback=|| view! { <p class="notice">"Loading workflows…"</p> }>
                {move || {
                    workflows
                        .get()
                        .map(|result| match result {
                            Ok(list) => view! { <WorkflowList workflows=list/> }.into_any(),
                            Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Suspense>
        </section>
    }
}
