//! Lantern's Leptos app, shared by the server (`ssr`) and the browser (`hydrate`).
//!
//! - [`protocol`]: the wire types of PROTOCOL.md (pure serde), the words of the wire
//!   ([`protocol::vocab`], each written once) and the browser's reader of the server's frames
//!   and snapshots ([`protocol::decode`], by hand, for a smaller WASM).
//! - [`socket`]: the run page's connection: a pure state machine and the gloo-net driver.
//! - [`run_model`]: the run page's picture of a workflow (steps, agent cards, tool rows),
//!   folded from the log event by event; `markdown` (`ssr` only): agent Markdown to safe HTML;
//!   [`time`]: timestamps, durations and ages for people; [`answer_form`]: the form an
//!   interrupt card makes from a `response_schema`.
//! - [`live_list`]: the home page's workflow list, kept live over Server-Sent Events.
//! - [`server_fns`]: the server functions the pages call (list, start and cancel workflows;
//!   render a report's Markdown).
//! - `backend` (`ssr` only): the trait the server implements for those functions.
//! - [`pages`]: one module per route; [`components`]: what the user sees on them.
//!
//! **Islands.** The pages are rendered on the server and stay plain HTML; only the parts that
//! change in the browser are `#[island]`s, hydrated from their serialized props: the live run
//! ([`pages::run`]'s `LiveRun`) and the home page's live workflow list. So the WASM carries
//! those and nothing of the router, the other pages, the start forms (plain forms whose server
//! functions redirect to the new run page) or the Markdown renderer, and links are ordinary
//! page loads.

// Leptos views are nested generic types; the run page's is deeper than rustc's default limit.
#![recursion_limit = "256"]

pub mod answer_form;
pub mod components;
pub mod live_list;
#[cfg(feature = "ssr")]
pub mod markdown;
pub mod pages;
pub mod protocol;
pub mod run_model;
pub mod server_fns;
pub mod socket;
pub mod time;

#[cfg(feature = "ssr")]
pub mod backend;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

use components::user_menu::UserMenu;
use pages::{home::HomePage, login::LoginPage, run::RunPage};

/// The whole HTML document, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                // Named, so browsers do not ask for a `/favicon.ico` that is not there.
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The routes: `/` (workflows), `/w/{id}` (one run, live) and `/login`.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/lantern.css"/>
        <Title text="Lantern"/>
        <Router>
            <header class="topbar">
                <a href="/" class="brand">"Lantern"</a>
                <UserMenu/>
            </header>
            <main>
                <Routes fallback=|| view! { <pages::NotFound message="Page not found."/> }>
                    // Async: the HTML is sent once the data is in it, so the pages read
                    // fine with JavaScript off and hydrate without a flash.
                    <Route path=path!("/") view=HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/w/:id") view=RunPage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}
