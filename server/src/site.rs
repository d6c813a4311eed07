//! The site's static files — the WASM, its JS glue, the CSS and `public/` — and, for any other
//! path, the pages.
//!
//! With the `embed-site` feature (what `scripts/build.sh` builds) the files are compiled into
//! the binary from `target/site`, so `lantern` runs from any directory with nothing beside it.
//! Without it (tests, `cargo run`) they are read from `--site-root`. Embedded files are answered
//! with an `ETag` (their SHA-256), so a browser revalidates them instead of downloading again.

use axum::{
    body::Body,
    extract::State,
    http::{Request, Uri},
    response::Response,
};

use crate::AppState;

/// The router's fallback: an embedded file if there is one at this path, else what Leptos
/// serves (a file under `--site-root`, or the page for this path, or "not found").
pub async fn files_then_pages(
    uri: Uri,
    state: State<AppState>,
    request: Request<Body>,
) -> Response {
    #[cfg(feature = "embed-site")]
    if let Some(response) = embedded::serve(&uri, request.headers()) {
        return response;
    }
    leptos_axum::file_and_error_handler::<AppState, _>(app::shell)(uri, state, request).await
}

#[cfg(feature = "embed-site")]
mod embedded {
    use axum::{
        http::{header, HeaderMap, HeaderValue, StatusCode, Uri},
        response::{IntoResponse, Response},
    };

    /// `target/site` as it was when the binary was built (after the WASM build).
    #[derive(rust_embed::Embed)]
    #[folder = "../target/site"]
    struct Site;

    pub fn serve(uri: &Uri, headers: &HeaderMap) -> Option<Response> {
        let file = Site::get(uri.path().trim_start_matches('/'))?;
        let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()));
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|seen| seen.as_bytes() == etag.as_bytes());
        let kind = HeaderValue::from_str(file.metadata.mimetype())
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        let etag = HeaderValue::from_str(&etag).ok()?;
        let cache = HeaderValue::from_static("no-cache");
        let common = [(header::ETAG, etag), (header::CACHE_CONTROL, cache)];
        Some(if fresh {
            (StatusCode::NOT_MODIFIED, common).into_response()
        } else {
            (common, [(header::CONTENT_TYPE, kind)], file.data).into_response()
        })
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
