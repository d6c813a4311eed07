//! Each `final_report`, rendered from Markdown. The HTML comes from
//! [`to_safe_html`](crate::markdown::to_safe_html): agent-supplied raw HTML is shown as text,
//! so nothing an agent writes can run script in the page.

use leptos::prelude::*;

use crate::markdown::to_safe_html;
use crate::run_model::RunModel;

#[component]
pub fn Reports(model: RwSignal<RunModel>) -> impl IntoView {
    let count = Memo::new(move |_| model.with(|m| m.reports.len()));
    view! {
        <For each=move || 0..count.get() key=|i| *i let:i>
            <ReportView model i/>
        </For>
    }
}

/// One report, rendered once: a report never changes after it arrived.
#[component]
fn ReportView(model: RwSignal<RunModel>, i: usize) -> impl IntoView {
    let report = Memo::new(move |_| model.with(|m| m.reports.get(i).cloned()));
    move || {
        report.get().map(|report| {
            view! {
                <article
                    class="report"
                    data-testid="report"
                    data-seq=report.seq
                    inner_html=to_safe_html(&report.markdown)
                ></article>
            }
        })
    }
}
