//! Each `final_report`, rendered from Markdown by the server
//! (`markdown::to_safe_html`, behind [`report_html`](crate::server_fns::report_html)):
//! agent-supplied raw HTML is shown as text, so nothing an agent writes can run script in the
//! page. The Markdown renderer is not in the browser's WASM: a report in the page when it
//! loaded comes in its HTML, and one that arrives live is fetched rendered, once.

use leptos::html::Article;
use leptos::prelude::*;

use crate::run_model::{Report, RunModel};

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
            let element = NodeRef::<Article>::new();
            view! {
                <article
                    class="report"
                    data-testid="report"
                    data-seq=report.seq
                    node_ref=element
                    inner_html=rendered(&workflow_id, &report, element)
                ></article>
            }
        })
    }
}

/// The report's HTML, straight from the Markdown.
#[cfg(feature = "ssr")]
fn rendered(_workflow_id: &str, report: &Report, _element: NodeRef<Article>) -> String {
    crate::markdown::to_safe_html(&report.markdown)
}

/// The report's HTML: `None` (which leaves the element as it is) until fetched. An element
/// that already has elements in it came from the server with the page (rendered Markdown is
/// always in elements), so it is not fetched again.
#[cfg(not(feature = "ssr"))]
fn rendered(
    workflow_id: &str,
    report: &Report,
    element: NodeRef<Article>,
) -> impl Fn() -> Option<String> + Send + Sync {
    fetched_html(workflow_id.to_owned(), report.seq, None, element)
}

/// Event `seq`'s Markdown as HTML, fetched once (`report_html`) unless the server put it in
/// `element` with the page; `None` (the element as it is) until then. With `plain`, that text
/// is shown meanwhile and stays if the fetch fails (a streamed answer's text); without, a
/// failure says why (a report: it is in the raw log either way). One function for reports and
/// answers, so the WASM holds one copy of it.
#[cfg(not(feature = "ssr"))]
pub(crate) fn fetched_html(
    workflow_id: String,
    seq: u64,
    plain: Option<String>,
    element: NodeRef<Article>,
) -> impl Fn() -> Option<String> + Send + Sync {
    let html = RwSignal::new(None);
    Effect::new(move |_| {
        let Some(shown) = element.get() else {
            return;
        };
        if shown.child_element_count() == 0 {
            if plain.is_some() {
                shown.set_text_content(plain.as_deref());
            }
            let (id, keep_plain) = (workflow_id.clone(), plain.is_some());
            leptos::task::spawn_local(async move {
                match fetched(id, seq).await {
                    Ok(rendered) => html.set(Some(rendered)),
                    Err(_) if keep_plain => {}
                    Err(why) => html.set(Some(why)),
                }
            });
        }
    });
    move || html.get()
}

/// The rendered Markdown, or a line saying why it is not shown.
#[cfg(not(feature = "ssr"))]
async fn fetched(id: String, seq: u64) -> Result<String, String> {
    let why = match crate::server_fns::report_html(id, seq).await {
        Ok(Some(rendered)) => return Ok(rendered),
        Ok(None) => "the server has no such report".to_owned(),
        Err(e) => e.to_string(),
    };
    let why = why.replace('&', "&amp;").replace('<', "&lt;");
    Err(format!(
        "<p class=\"error\">This report could not be shown: {why}</p>"
    ))
}
