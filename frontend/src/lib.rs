//! The WASM entry point: hydrates the islands of the page the server rendered (the app runs in
//! Leptos's islands mode). Everything else lives in `app`.

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // The islands' hydration functions are exported from `app`; this links them in.
    #[allow(unused_imports)]
    use app::*;
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
