//! An agent's answer and its streamed reasoning, on its card.
//!
//! - A whole answer (`agent_response` without `message_id`) is a paragraph of text, as always.
//! - A streamed answer shows its text as it arrives, with a caret, appended in place
//!   ([`StreamedText`]); once closed, it is its final text rendered as Markdown by the server's
//!   safe renderer (`markdown::to_safe_html`, the one reports use), so agent HTML never runs.
//!   The streamed text stays on screen until the rendered HTML is there: no blank flash.
//! - Streamed reasoning is a `<details>`, closed unless opened, live inside either way.
//!
//! Each view is made once per message (keyed by its number and state), never per delta.

use leptos::html::Article;
use leptos::prelude::*;

use super::streamed_text::{answer, reasoning, StreamedText};
use crate::run_model::RunModel;

/// Card `i`'s latest answer.
#[component]
pub fn Answer(
    model: RwSignal<RunModel>,
    stream: Trigger,
    i: usize,
    workflow_id: String,
) -> impl IntoView {
    // (number, streamed, open): changes once per message and once at its close, not per delta.
    let key = Memo::new(move |_| {
        model.with(|m| {
            m.agents
                .get(i)
                .and_then(answer)
                .map(|a| (a.number, a.streamed(), a.open))
        })
    });
    move || {
        key.get().map(|(number, streamed, open)| {
            let (text, seq) = model.with_untracked(|m| {
                m.agents
                    .get(i)
                    .and_then(answer)
                    .map(|a| (a.text.clone(), a.seq.unwrap_or_default()))
                    .unwrap_or_default()
            });
            if !streamed {
                view! { <p class="response" data-testid="agent-response">{text}</p> }.into_any()
            } else if open {
                view! {
                    <div class="response streaming" data-testid="agent-response" data-state="streaming"
                        aria-live="polite" aria-busy="true">
                        <StreamedText model stream i pick=answer number/>
                        <span class="caret" data-testid="caret" aria-hidden="true"></span>
                    </div>
                }
                .into_any()
            } else {
                let element = NodeRef::<Article>::new();
                view! {
                    <article class="response markdown" data-testid="agent-response" data-state="done"
                        data-seq=seq node_ref=element
                        inner_html=rendered(workflow_id.clone(), seq, text, element)></article>
                }
                .into_any()
            }
        })
    }
}

/// Card `i`'s latest streamed reasoning, collapsed.
#[component]
pub fn Reasoning(model: RwSignal<RunModel>, stream: Trigger, i: usize) -> impl IntoView {
    let number =
        Memo::new(move |_| model.with(|m| m.agents.get(i).and_then(reasoning).map(|r| r.number)));
    // While it streams, the summary says so (CSS, from `data-state`).
    let state = move || {
        let open = model.with(|m| m.agents.get(i).and_then(reasoning).is_some_and(|r| r.open));
        if open {
            "streaming"
        } else {
            "done"
        }
    };
    move || {
        number.get().map(|number| {
            view! {
                <details class="reasoning" data-testid="reasoning" data-state=state>
                    <summary><span class="thinking-label">"reasoning"</span></summary>
                    <p class="reasoning-text"><StreamedText model stream i pick=reasoning number/></p>
                </details>
            }
        })
    }
}

/// The answer's HTML, rendered from its Markdown.
#[cfg(feature = "ssr")]
fn rendered(_workflow_id: String, _seq: u64, text: String, _element: NodeRef<Article>) -> String {
    crate::markdown::to_safe_html(&text)
}

/// The answer's HTML: the server's (in the page, when it came with it), else fetched once
/// (the same fetch as reports'), the streamed text shown meanwhile.
#[cfg(not(feature = "ssr"))]
fn rendered(
    workflow_id: String,
    seq: u64,
    text: String,
    element: NodeRef<Article>,
) -> impl Fn() -> Option<String> + Send + Sync {
    super::report::fetched_html(workflow_id, seq, Some(text), element)
}
