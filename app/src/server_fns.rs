//! Server functions the pages call. On the server they reach the hub through the
//! [`Backend`](crate::backend::Backend) in context; in the browser they are HTTP calls.

use leptos::prelude::*;

use crate::protocol::{RunSnapshot, WorkflowInfo};

#[cfg(feature = "ssr")]
use crate::{backend::BackendError, protocol::vocab::kinds, protocol::ErrorCode};

#[cfg(feature = "ssr")]
fn backend() -> Result<crate::backend::Backend, ServerFnError> {
    use_context::<crate::backend::Backend>().ok_or_else(|| {
        refused(BackendError {
            code: ErrorCode::Internal,
            message: "the server has no workflow backend".into(),
        })
    })
}

/// The signed-in user this request comes from (put there by the server's auth layer).
#[cfg(feature = "ssr")]
fn viewer() -> Result<crate::backend::Viewer, ServerFnError> {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<crate::backend::Viewer>().cloned())
        .ok_or_else(|| {
            refused(BackendError {
                code: ErrorCode::Unauthorized,
                message: "unauthorized: sign in first".into(),
            })
        })
}

/// The error a server function answers with, its HTTP status set from the code: a refusal
/// (signed out, not found, already finished) is a 4xx, not a server error — the server logs
/// 5xx answers as errors.
///
/// Only when the function was called over HTTP: a page rendering on the server calls it as a
/// plain function, with the page's own response in context, and a part of the page that could
/// not load (the login page asks who is signed in) must not turn the page into an error.
#[cfg(feature = "ssr")]
fn refused(error: BackendError) -> ServerFnError {
    let called_over_http = use_context::<http::request::Parts>()
        .is_some_and(|request| request.uri.path().starts_with(SERVER_FN_PREFIX));
    let response = use_context::<leptos_axum::ResponseOptions>().filter(|_| called_over_http);
    if let Some(response) = response {
        let status = http::StatusCode::from_u16(error.code.http_status());
        response.set_status(status.unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR));
    }
    ServerFnError::new(error.message)
}

/// Where the server functions are served (Leptos's default prefix); no page lives under it.
#[cfg(feature = "ssr")]
const SERVER_FN_PREFIX: &str = "/api/";

/// The signed-in user's name.
#[server]
pub async fn current_user() -> Result<String, ServerFnError> {
    Ok(viewer()?.user)
}

/// The user's workflows, newest first.
#[server]
pub async fn list_workflows() -> Result<Vec<WorkflowInfo>, ServerFnError> {
    backend()?.list_workflows(&viewer()?).await.map_err(refused)
}

/// Start a built-in `echo` workflow; a form post then lands on its run page.
// A fixed path (`/api/start_echo`), so tests and the docs can name it.
#[server(endpoint = "start_echo")]
pub async fn start_echo() -> Result<WorkflowInfo, ServerFnError> {
    let started = backend()?
        .start_workflow(&viewer()?, kinds::ECHO, None)
        .await;
    open_run_page(started)
}

/// Start a workflow of a registered AG-UI agent's `kind` with a first `message`; a form post
/// then lands on its run page.
// A fixed path (`/api/start_agent`).
#[server(endpoint = "start_agent")]
pub async fn start_agent(kind: String, message: String) -> Result<WorkflowInfo, ServerFnError> {
    let backend = backend()?;
    if !backend.agent_kinds().contains(&kind) {
        return open_run_page(Err(BackendError {
            code: ErrorCode::BadRequest,
            message: format!("no AG-UI agent is registered as {kind:?}"),
        }));
    }
    let input = serde_json::json!({ "message": message });
    let started = backend.start_workflow(&viewer()?, &kind, Some(input)).await;
    open_run_page(started)
}

/// One workflow and its log so far; `None` when it does not exist.
#[server]
pub async fn get_snapshot(id: String) -> Result<Option<RunSnapshot>, ServerFnError> {
    backend()?.snapshot(&viewer()?, &id).await.map_err(refused)
}

/// Start a built-in `search` workflow for `query`; a form post then lands on its run page.
// A fixed path (`/api/start_search`).
#[server(endpoint = "start_search")]
pub async fn start_search(query: String) -> Result<WorkflowInfo, ServerFnError> {
    let input = serde_json::json!({ "query": query });
    let started = backend()?
        .start_workflow(&viewer()?, kinds::SEARCH, Some(input))
        .await;
    open_run_page(started)
}

/// The home page's start forms are plain HTML forms (no WASM): answer their post with a
/// redirect to the new workflow's run page, or back home naming what went wrong by its code
/// alone (`/?start_error=rate_limited`; the page words it). Leptos would put the error's text
/// in the URL instead, and the page would show whatever text a crafted link carried. A call
/// from code gets the workflow as JSON, or the error with its HTTP status.
#[cfg(feature = "ssr")]
fn open_run_page(
    started: Result<WorkflowInfo, BackendError>,
) -> Result<WorkflowInfo, ServerFnError> {
    let form_post = use_context::<http::request::Parts>().is_some_and(|request| {
        request
            .headers
            .get(http::header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
    });
    match started {
        Ok(started) => {
            leptos_axum::redirect(&format!("/w/{}", started.id));
            Ok(started)
        }
        Err(error) if form_post => {
            leptos_axum::redirect(&format!("/?start_error={}", error.code.as_str()));
            Err(ServerFnError::new(error.message))
        }
        Err(error) => Err(refused(error)),
    }
}

/// Cancel a workflow: what is open is closed with `ok: false`, status `cancelled`.
// A fixed path (`/api/cancel_workflow`), so tests can name it.
#[server(endpoint = "cancel_workflow")]
pub async fn cancel_workflow(id: String) -> Result<(), ServerFnError> {
    backend()?.cancel(&viewer()?, &id).await.map_err(refused)
}

/// Event `seq` of workflow `id`, a `final_report` or an `agent_response` (a streamed answer's
/// closing event holds its whole text), as safe HTML: the Markdown renderer lives only on the
/// server, so the browser's WASM does not carry it (it is an eighth of it). The run page asks
/// for each report, and each streamed answer, that closes live; those already there come in
/// the page's HTML.
// A fixed path (`/api/report_html`), so tests and the docs can name it.
#[server(endpoint = "report_html")]
pub async fn report_html(id: String, seq: u64) -> Result<Option<String>, ServerFnError> {
    use crate::protocol::EventBody;
    let event = backend()?
        .event(&viewer()?, &id, seq)
        .await
        .map_err(refused)?;
    Ok(event.and_then(|e| match e.body {
        EventBody::FinalReport { content }
        | EventBody::AgentResponse {
            content: Some(content),
            ..
        } => Some(crate::markdown::to_safe_html(&content)),
        _ => None,
    }))
}
