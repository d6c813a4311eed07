//! The router: pages, API and sockets. No logic here beyond wiring paths to handlers.

use std::sync::Arc;

use app::{backend::Backend, shell, App};
use axum::{
    routing::{get, post},
    Router,
};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};

use crate::pages::HubBackend;
use crate::{api, ws, AppState};

pub fn router(state: AppState) -> Router {
    let backend: Backend = Arc::new(HubBackend(state.hub.clone()));
    let options = state.leptos_options.clone();
    let mut router = Router::new()
        .route("/healthz", get(api::healthz))
        .route(
            "/api/workflows",
            post(api::create_workflow).get(api::list_workflows),
        )
        .route("/api/workflows/{id}", get(api::get_workflow))
        .route(
            "/api/workflows/{id}/events",
            get(api::history).post(api::ingest),
        )
        .route("/api/workflows/{id}/input", post(api::input))
        .route("/api/workflows/{id}/cancel", post(api::cancel))
        .route("/ws/workflow/{id}", get(ws::subscriber::upgrade));
    if state.config.test_hooks {
        router = router.route("/api/test/disconnect", post(api::test_disconnect));
    }
    router
        .leptos_routes_with_context(
            &state,
            generate_route_list(App),
            move || provide_context(backend.clone()),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .with_state(state)
}
