//! One module per route, and what a page that finds nothing says.

pub mod home;
pub mod login;
pub mod run;

use leptos::prelude::*;

/// A page that found nothing: says so, and (rendered on the server) answers HTTP 404, so
/// links checkers, crawlers and tests see a missing page as missing.
#[component]
pub fn NotFound(
    /// What was not found, e.g. "Page not found."
    message: &'static str,
) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! { <p class="notice" data-testid="not-found">{message}</p> }
}
