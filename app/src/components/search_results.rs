//! `search_results` as a list of sources: title, where it comes from, the snippet and the
//! score. One block per search (a follow-up question adds another).

use leptos::prelude::*;

use crate::run_model::RunModel;

#[component]
pub fn SearchResults(model: RwSignal<RunModel>) -> impl IntoView {
    let count = Memo::new(move |_| model.with(|m| m.results.len()));
    view! {
        <For each=move || 0..count.get() key=|i| *i let:i>
            <ResultsBlock model i/>
        </For>
    }
}

/// One `search_results` event; rendered once (a block never changes after it arrived).
#[component]
fn ResultsBlock(model: RwSignal<RunModel>, i: usize) -> impl IntoView {
    let block = Memo::new(move |_| model.with(|m| m.results.get(i).cloned()));
    move || {
        block.get().map(|block| {
            view! {
                <section class="results" data-testid="search-results" aria-label="Sources">
                    <h2>"Sources for “" {block.query} "”"</h2>
                    <ol class="hits">
                        {block
                            .hits
                            .into_iter()
                            .map(|hit| {
                                view! {
                                    <li class="hit" data-testid="hit">
                                        <div class="hit-head">
                                            <span class="hit-title">{hit.title}</span>
                                            <span class="hit-score" title="relevance score">
                                                {format!("{:.2}", hit.score)}
                                            </span>
                                        </div>
                                        <code class="hit-source">{hit.source}</code>
                                        <p class="hit-snippet">{hit.snippet}</p>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ol>
                </section>
            }
        })
    }
}
