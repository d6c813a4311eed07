//! The router: pages, API, sockets and streams, and the layers every request passes. No logic
//! here beyond wiring paths to handlers and layers.
//!
//! Every request first passes [`auth::authenticate`] (records who is calling) and
//! [`origin::same_origin_writes`] (a page of another origin changes nothing), and every
//! response carries the security headers below. Pages, the pages' server functions and
//! `/login` also pass [`auth::web::page_guard`] (signed-out visitors go to `/login`); API
//! handlers, sockets and streams check their caller themselves. Page renders and history reads
//! share one concurrency limit (`--max-heavy-requests`): more wait their turn.

use std::sync::Arc;

use app::{backend::Backend, shell, App};
use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Request},
    http::{header, HeaderName, HeaderValue},
    middleware::{from_fn, from_fn_with_state, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes, ResponseOptions};
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::{
    request_id::{PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

use crate::error::LanternError;
use crate::pages::HubBackend;
use crate::transport::{agent, agui, ingest, sse, subscriber, workflow_list};
use crate::{api, auth, origin, request_log, site, AppState};

/// Largest body a page's server function takes (form posts of a few fields).
const SERVER_FN_BODY_BYTES: usize = 64 * 1024;

/// The Content-Security-Policy of every response; a page adds its scripts' nonce. Styles may be
/// inline attributes (a progress bar's width); scripts only the site's own and the page's
/// nonce-carrying hydration script; WebAssembly may be compiled; nothing may frame a page.
fn content_security_policy(nonce: Option<&str>) -> String {
    let scripts = match nonce {
        Some(nonce) => format!("'self' 'wasm-unsafe-eval' 'nonce-{nonce}'"),
        None => "'self' 'wasm-unsafe-eval'".into(),
    };
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Per page: the nonce Leptos put on the page's inline scripts goes into its CSP.
fn page_context(backend: Backend) -> impl Fn() + Clone + Send + Sync + 'static {
    move || {
        provide_context(backend.clone());
        let nonce = leptos::nonce::use_nonce();
        if let (Some(nonce), Some(response)) = (nonce, use_context::<ResponseOptions>()) {
            if let Ok(policy) = HeaderValue::from_str(&content_security_policy(Some(&nonce))) {
                response.insert_header(header::CONTENT_SECURITY_POLICY, policy);
            }
        }
    }
}

/// The pages' routes, walked out of the app once per process. While Leptos walks them it tells
/// every resource in the process not to load, and a resource first polled then waits forever
/// (leptos-rs/leptos#4773): a page that another server in the same process was rendering at
/// that moment never finished. One server starts once, before it serves; tests start many in
/// one process, and 7 of 60 runs of `it pages::` hung on a page before this.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

pub fn router(state: AppState) -> Router {
    let backend: Backend = Arc::new(HubBackend {
        builtins: state.builtins.clone(),
        write_limits: state.write_limits.clone(),
    });
    let options = state.leptos_options.clone();
    let heavy = Arc::new(Semaphore::new(state.config.max_heavy_requests.max(1)));
    let pages = Router::new()
        .route("/login", post(auth::web::login_form))
        .leptos_routes_with_context(&state, route_list(), page_context(backend), move || {
            shell(options.clone())
        })
        .layer(from_fn(server_fn_body_limit))
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(heavy.clone()))
        .layer(from_fn_with_state(state.clone(), auth::web::page_guard));
    let mut api = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/api/v1/websocket/stats", get(api::stats))
        .route("/metrics", get(api::metrics))
        .route("/logout", post(auth::web::logout))
        .route(
            "/api/workflows",
            post(api::create_workflow).get(api::list_workflows),
        )
        .route("/api/workflows/{id}", get(api::get_workflow))
        .route(
            "/api/workflows/{id}/events",
            get(api::history)
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(heavy))
                .post(ingest::handle)
                .layer(DefaultBodyLimit::max(state.config.agent_frame_bytes.max(1))),
        )
        .route("/api/workflows/{id}/input", post(api::input))
        .route("/api/workflows/{id}/cancel", post(api::cancel))
        .route(
            "/api/workflows/{id}/interrupts/{interrupt_id}",
            post(api::resolve),
        )
        .route("/sse/workflows", get(workflow_list::workflows))
        .route("/sse/workflow/{id}", get(sse::workflow))
        .route("/api/workflows/{id}/agui", get(agui::follow))
        .route("/agui/{kind}", post(agui::run))
        .route("/ws/workflow/{id}", get(subscriber::upgrade))
        .route("/ws/agent/{id}", get(agent::upgrade));
    if state.config.test_hooks {
        api = api.route("/api/test/disconnect", post(api::test_disconnect));
    }
    let no_store = SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    let routed = api.merge(pages).layer(no_store);
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    let csp = HeaderValue::from_str(&content_security_policy(None))
        .unwrap_or(HeaderValue::from_static("default-src 'self'"));
    routed
        .fallback(site::files_then_pages)
        .layer(from_fn_with_state(
            state.clone(),
            origin::same_origin_writes,
        ))
        .layer(from_fn_with_state(
            state.accounts.clone(),
            auth::authenticate,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        // No URL of ours (a login link's code, a workflow id) goes to another site. Not
        // `no-referrer`: under it browsers send `Origin: null` with the pages' own form posts,
        // which the cross-site guard must then refuse.
        .layer(header(header::REFERRER_POLICY, "same-origin"))
        // Outermost last: the id is set first, then the request's span opens around the rest,
        // and the id is copied onto the response.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_log::request_span))
        .layer(SetRequestIdLayer::x_request_id(request_log::RequestIds))
        .with_state(state)
}

/// A server function's body is read here, at most [`SERVER_FN_BODY_BYTES`]: a bigger one is
/// `too_large` (413), not a failure of the function (Leptos would answer 500 and log an error).
async fn server_fn_body_limit(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, SERVER_FN_BODY_BYTES).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(_) => LanternError::TooLarge(format!("a form is at most {SERVER_FN_BODY_BYTES} bytes"))
            .into_response(),
    }
}
