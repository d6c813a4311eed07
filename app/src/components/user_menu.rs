//! The signed-in user's name and a "Sign out" button (a plain form, `POST /logout`), in the
//! top bar. Shows nothing when nobody is signed in (the login page).

use leptos::prelude::*;

use crate::server_fns::current_user;

#[component]
pub fn UserMenu() -> impl IntoView {
    let user = Resource::new(|| (), |_| current_user());
    view! {
        <Suspense fallback=|| ()>
            {move || {
                user.get()
                    .and_then(Result::ok)
                    .map(|name| {
                        view! {
                            <form method="post" action="/logout" class="user-menu">
                                <span data-testid="user">{name}</span>
                                <button type="submit" data-testid="sign-out">"Sign out"</button>
                            </form>
                        }
                    })
            }}
        </Suspense>
    }
}
