//! `/`: the workflows, newest first and live; a form that starts a `search`, and a button that
//! starts an `echo` workflow.

use leptos::prelude::*;

use crate::components::workflow_list::WorkflowList;
use crate::server_fns::{list_workflows, StartEcho, StartSearch};

#[component]
pub fn HomePage() -> impl IntoView {
    // Read once; the list then follows the server's live stream (see `WorkflowList`).
    let workflows = Resource::new(|| (), |_| list_workflows());
    view! {
        <section class="home">
            <h1>"Workflows"</h1>
            <p class="tagline">"Start a workflow and watch every agent and tool live."</p>
            <StartForms/>
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

/// The search form and the echo button: plain HTML forms that post to the start server
/// functions, which answer with a redirect to the new run page. Not an island — nothing here
/// needs the WASM, and as an island its form handling was an eighth of the WASM. A failed start
/// comes back to this page with the error in its URL, shown below the form.
#[component]
fn StartForms() -> impl IntoView {
    let start = ServerAction::<StartEcho>::new();
    let search = ServerAction::<StartSearch>::new();
    view! {
        <ActionForm action=search attr:class="search-form">
            <input
                type="search"
                name="query"
                required
                maxlength="1000"
                placeholder="Ask the docs, e.g. how do reconnects work?"
                aria-label="Search question"
                data-testid="query"
            />
            <button type="submit" class="primary" data-testid="start-search">
                "Search"
            </button>
        </ActionForm>
        {move || {
            search
                .value()
                .get()
                .and_then(Result::err)
                .map(|e| view! { <p class="error">{e.to_string()}</p> })
        }}
        <ActionForm action=start>
            <button type="submit" data-testid="start-echo">
                "Start an echo workflow"
            </button>
        </ActionForm>
    }
}
