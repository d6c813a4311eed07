//! `/login`: sign in by pasting a token. A plain HTML form (`POST /login`), so it works before
//! the WASM has loaded and with JavaScript off; the server sets the session cookie and sends
//! the browser on to `next`. A login link `/login?code=…` never shows this page when it works:
//! the server signs the browser in and redirects at once.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".into());
    let error = move || {
        query.read().get("error").map(|e| match e.as_str() {
            "agent" => "That is an agent token; agents cannot sign in to the web app.",
            "link" => {
                "That login link was used already or has expired. Ask for a new one \
                 (lantern token login-link --user NAME), or paste a token below."
            }
            _ => "That token is not valid (wrong, revoked or expired).",
        })
    };
    view! {
        <section class="login">
            <h1>"Sign in to Lantern"</h1>
            <p class="tagline">
                "Open the login link the server printed on its first start ("
                <code>"lantern token login-link --user NAME"</code> " makes another), or paste a user token ("
                <code>"lantern token create --user NAME"</code> ")."
            </p>
            {move || error().map(|e| view! { <p class="error" data-testid="login-error">{e}</p> })}
            <form method="post" action="/login" class="login-form">
                <input type="hidden" name="next" value=next/>
                <label for="token">"Token"</label>
                <input
                    id="token"
                    name="token"
                    type="password"
                    autocomplete="current-password"
                    required
                    data-testid="token"
                />
                <button type="submit" class="primary" data-testid="sign-in">
                    "Sign in"
                </button>
            </form>
        </section>
    }
}
