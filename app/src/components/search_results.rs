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
                                                {score_text(hit.score)}
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

/// A score with two decimals (`3.14`), in integers: formatting a float would put the standard
/// library's float printer in the browser's WASM.
fn score_text(score: f64) -> String {
    let hundredths = (score * 100.0).round() as i64;
    let sign = if hundredths < 0 { "-" } else { "" };
    let hundredths = hundredths.unsigned_abs();
    format!("{sign}{}.{:02}", hundredths / 100, hundredths % 100)
}

#[cfg(test)]
mod tests {
    use super::score_text;

    #[test]
    fn scores_show_two_decimals() {
        assert_eq!(score_text(1.23456), "1.23");
        assert_eq!(score_text(0.005), "0.01");
        assert_eq!(score_text(2.0), "2.00");
        assert_eq!(score_text(-0.5), "-0.50");
        assert_eq!(score_text(0.0), "0.00");
    }
}
