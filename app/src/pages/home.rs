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

/// The search form and the echo button. An island: in the browser they start the workflow with
/// a server function and open its run page; with JavaScript off they are plain forms.
#[island]
fn StartForms() -> impl IntoView {
    let start = ServerAction::<StartEcho>::new();
    let search = ServerAction::<StartSearch>::new();
    Effect::new(move |_| {
        let started = search.value().get().or_else(|| start.value().get());
        if let Some(Ok(info)) = started {
            // A page load: the run page is rendered by the server (there is no client router).
            let _ = window().location().set_href(&format!("/w/{}", info.id));
        }
    });
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
