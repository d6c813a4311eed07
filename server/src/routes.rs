//! The router: pages, API and sockets. No logic here beyond wiring paths to handlers and
//! layers.
//!
//! Every request first passes [`auth::authenticate`] (records who is calling). Pages, the
//! pages' server functions and `/login` also pass [`auth::web::page_guard`] (signed-out
//! visitors go to `/login`); API handlers and sockets check their caller themselves.

use std::sync::Arc;

use app::{backend::Backend, shell, App};
use axum::{
    extract::DefaultBodyLimit,
    middleware::from_fn_with_state,
    routing::{get, post},
    Router,
};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::{
    request_id::{PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::pages::HubBackend;
use crate::{api, auth, list_stream, request_log, site, ws, AppState};

pub fn router(state: AppState) -> Router {
    let backend: Backend = Arc::new(HubBackend(state.builtins.clone()));
    let options = state.leptos_options.clone();
    let pages = Router::new()
        .route("/login", post(auth::web::login_form))
        .leptos_routes_with_context(
            &state,
            generate_route_list(App),
            move || provide_context(backend.clone()),
            move || shell(options.clone()),
        )
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
                .post(api::ingest)
                .layer(DefaultBodyLimit::max(state.config.agent_frame_bytes.max(1))),
        )
        .route("/api/workflows/{id}/input", post(api::input))
        .route("/api/workflows/{id}/cancel", post(api::cancel))
        .route("/sse/workflows", get(list_stream::workflows))
        .route("/ws/workflow/{id}", get(ws::subscriber::upgrade))
        .route("/ws/agent/{id}", get(ws::agent::upgrade));
    if state.config.test_hooks {
        api = api.route("/api/test/disconnect", post(api::test_disconnect));
    }
    api.merge(pages)
        .fallback(site::files_then_pages)
        .layer(from_fn_with_state(
            state.accounts.clone(),
            auth::authenticate,
        ))
        // Outermost last: the id is set first, then the request's span opens around the rest,
        // and the id is copied onto the response.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_log::request_span))
        .layer(SetRequestIdLayer::x_request_id(request_log::RequestIds))
        .with_state(state)
}
