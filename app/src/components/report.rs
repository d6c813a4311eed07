//! Each `final_report`, rendered from Markdown by the server
//! (`markdown::to_safe_html`, behind [`report_html`]): agent-supplied raw HTML is shown as
//! text, so nothing an agent writes can run script in the page. The Markdown renderer is not
//! in the browser's WASM: a report in the page when it loaded comes in its HTML, and one that
//! arrives live is fetched rendered, once.

use leptos::prelude::*;

use crate::run_model::{Report, RunModel};
#[cfg(not(feature = "ssr"))]
use crate::server_fns::report_html;

#[component]
pub fn Reports(model: RwSignal<RunModel>, workflow_id: String) -> impl IntoView {
    let count = Memo::new(move |_| model.with(|m| m.reports.len()));
    view! {
        <For each=move || 0..count.get() key=|i| *i let:i>
            <ReportView model i workflow_id=workflow_id.clone()/>
        </For>
    }
}

/// One report, rendered once: a report never changes after it arrived.
#[component]
fn ReportView(model: RwSignal<RunModel>, i: usize, workflow_id: String) -> impl IntoView {
    let report = Memo::new(move |_| model.with(|m| m.reports.get(i).cloned()));
    move || {
        report.get().map(|report| {
            view! {
                <article
                    class="report"
                    data-testid="report"
                    data-seq=report.seq
                    inner_html=rendered(&workflow_id, &report)
                ></article>
            }
        })
    }
}

/// The report's HTML, straight from the Markdown.
#[cfg(feature = "ssr")]
fn rendered(_workflow_id: &str, report: &Report) -> String {
    crate::markdown::to_safe_html(&report.markdown)
}

/// The report's HTML: empty while it is being fetched. While the page hydrates, the server's
/// HTML is already in the element (an empty value leaves it as it is), so nothing is fetched.
#[cfg(not(feature = "ssr"))]
fn rendered(workflow_id: &str, report: &Report) -> impl Fn() -> Option<String> + Send + Sync {
    let html = RwSignal::new(None);
    let hydrating = Owner::current_shared_context().is_some_and(|c| c.during_hydration());
    if !hydrating {
        let (id, seq) = (workflow_id.to_owned(), report.seq);
        leptos::task::spawn_local(async move {
            match report_html(id, seq).await {
                Ok(Some(rendered)) => html.set(Some(rendered)),
                // The report is in the raw log either way; say why it is not shown here.
                Ok(None) => html.set(Some(failed("the server has no such report"))),
                Err(e) => html.set(Some(failed(&e.to_string()))),
            }
        });
    }
    move || html.get()
}

#[cfg(not(feature = "ssr"))]
fn failed(why: &str) -> String {
    let why = why.replace('&', "&amp;").replace('<', "&lt;");
    format!("<p class=\"error\">This report could not be shown: {why}</p>")
}
