//! `/`: the workflows, newest first and live; a form that starts a `search`, a button that
//! starts an `echo` workflow, and a form that asks a registered AG-UI agent.

use leptos::prelude::*;

use leptos_router::hooks::use_query_map;

use crate::components::workflow_list::WorkflowList;
use crate::protocol::ErrorCode;
use crate::server_fns::{list_workflows, StartAgent, StartEcho, StartSearch};

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
/// comes back to this page with the error's code in its URL (`start_error`), worded here: the
/// page shows only words of its own, whatever a link carries.
#[component]
fn StartForms() -> impl IntoView {
    let start = ServerAction::<StartEcho>::new();
    let search = ServerAction::<StartSearch>::new();
    let query = use_query_map();
    let start_error = move || {
        query
            .read()
            .get("start_error")
            .map(|code| start_failed(&code))
    };
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
        {move || start_error().map(|e| view! { <p class="error" role="alert" data-testid="start-error">{e}</p> })}
        <ActionForm action=start>
            <button type="submit" data-testid="start-echo">
                "Start an echo workflow"
            </button>
        </ActionForm>
        <AgentForm/>
    }
}

/// A form that starts a conversation with the assistant (when a model is configured) or one of
/// the AG-UI agents the operator registered (`--agui-agent NAME=URL`); without a model, a line
/// that says how to configure one rather than a button that cannot work.
#[component]
fn AgentForm() -> impl IntoView {
    let start = ServerAction::<StartAgent>::new();
    let kinds = agent_kinds();
    let no_model = !kinds
        .iter()
        .any(|k| k == crate::protocol::vocab::kinds::ASSISTANT);
    let hint = no_model.then(|| {
        view! {
            <p class="hint" data-testid="assistant-hint">
                "To ask an LLM assistant here, start Lantern with "
                <code>"--llm-base-url"</code>" and "<code>"--llm-model"</code>
                " (see docs/LLM.md)."
            </p>
        }
    });
    let form = (!kinds.is_empty()).then(|| {
        view! {
            <ActionForm action=start attr:class="agent-form">
                <select name="kind" aria-label="Agent" data-testid="agent-kind">
                    {kinds
                        .into_iter()
                        .map(|kind| view! { <option value=kind.clone()>{kind.clone()}</option> })
                        .collect_view()}
                </select>
                <input
                    type="text"
                    name="message"
                    required
                    maxlength="4000"
                    placeholder="Ask an agent…"
                    aria-label="Message to the agent"
                    data-testid="agent-message"
                />
                <button type="submit" data-testid="start-agent">"Ask"</button>
            </ActionForm>
        }
    });
    view! { {form} {hint} }
}

/// The kinds the Ask form offers. They are the server's configuration, known while the page
/// renders: read at once from the backend, with no resource to wait for (the page is rendered
/// on the server only; it is not an island).
fn agent_kinds() -> Vec<String> {
    #[cfg(feature = "ssr")]
    {
        use_context::<crate::backend::Backend>()
            .map(|backend| backend.agent_kinds())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        Vec::new()
    }
}

/// What the page says about a start that failed with error code `code`.
fn start_failed(code: &str) -> &'static str {
    match ErrorCode::from_word(code) {
        Some(ErrorCode::RateLimited) => {
            "Too many workflows: finish or cancel some of yours, or wait a moment, then try again."
        }
        Some(ErrorCode::BadRequest) => "That workflow could not start: check what you typed.",
        Some(ErrorCode::Unauthorized | ErrorCode::Forbidden) => "Sign in again, then try again.",
        _ => "The workflow could not start. Try again.",
    }
}
