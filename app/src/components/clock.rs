//! A ticking "now" for elapsed times, ages and countdowns: one interval per hook, cleared when
//! the component that asked for it goes away. On the server it is the render time.

use leptos::prelude::*;

use crate::time::now_ms;

/// The current time (ms since the epoch), updated every `period_ms` in the browser.
pub fn use_clock(period_ms: u64) -> ReadSignal<f64> {
    let (now, set_now) = signal(now_ms());
    tick(set_now, period_ms);
    now
}

#[cfg(feature = "hydrate")]
fn tick(set_now: WriteSignal<f64>, period_ms: u64) {
    use leptos::leptos_dom::helpers::set_interval_with_handle;
    let period = std::time::Duration::from_millis(period_ms);
    if let Ok(handle) = set_interval_with_handle(move || set_now.set(now_ms()), period) {
        on_cleanup(move || handle.clear());
    }
}

#[cfg(not(feature = "hydrate"))]
fn tick(_set_now: WriteSignal<f64>, _period_ms: u64) {}
