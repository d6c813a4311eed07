//! Text that streams in (an agent's answer or reasoning), drawn without ever re-rendering it.
//!
//! The hot path: an agent may stream hundreds of deltas a second, and an answer may grow to
//! pages. So per delta the work must be proportional to the delta, not to the answer:
//! - the fold appends each delta to the message's `String` (`RunModel::apply`, O(delta)) and
//!   says it only added text; the page then notifies the `stream` trigger alone, so no memo of
//!   a card, a tool row or a panel runs (`pages::run::fold_new`);
//! - this view holds one DOM text node and how many bytes of the message it has drawn; when the
//!   trigger fires it appends only the bytes after those (`CharacterData.appendData`).
//!
//! The server renders the text so far into the node (a reload mid-stream shows it at once);
//! hydration claims that node and appends from where the server stopped.

use leptos::html::Span;
use leptos::prelude::*;

use crate::run_model::{AgentCard, Message, RunModel};

/// Which of a card's messages a view draws.
pub type Pick = fn(&AgentCard) -> Option<&Message>;

/// The card's answer.
pub fn answer(card: &AgentCard) -> Option<&Message> {
    card.response.as_ref()
}

/// The card's streamed reasoning.
pub fn reasoning(card: &AgentCard) -> Option<&Message> {
    card.reasoning.as_ref()
}

/// The text of card `i`'s message picked by `pick`, while it is message `number`.
#[component]
pub fn StreamedText(
    model: RwSignal<RunModel>,
    stream: Trigger,
    i: usize,
    pick: Pick,
    number: usize,
) -> impl IntoView {
    let text_of = move |m: &RunModel| {
        m.agents
            .get(i)
            .and_then(pick)
            .filter(|message| message.number == number)
            .map(|message| message.text.clone())
    };
    // The text when this view was made: what the server rendered, or what arrived so far.
    let initial = model.with_untracked(text_of).unwrap_or_default();
    let element = NodeRef::<Span>::new();
    follow(model, stream, i, pick, number, element, initial.len());
    view! { <span class="stream-text" node_ref=element>{initial}</span> }
}

/// Append what arrives after the first `drawn` bytes, each time the stream trigger fires.
#[cfg(feature = "hydrate")]
fn follow(
    model: RwSignal<RunModel>,
    stream: Trigger,
    i: usize,
    pick: Pick,
    number: usize,
    element: NodeRef<Span>,
    drawn: usize,
) {
    let drawn = StoredValue::new(drawn);
    let checked_close = StoredValue::new(false);
    Effect::new(move |_| {
        stream.track();
        let Some(span) = element.get() else {
            return;
        };
        model.with_untracked(|m| {
            let Some(message) = m.agents.get(i).and_then(pick) else {
                return;
            };
            if message.number != number {
                return;
            }
            let from = drawn.get_value();
            match message.text.get(from..) {
                Some("") => {}
                Some(new) => append(&span, new),
                None => span.set_text_content(Some(&message.text)),
            }
            drawn.set_value(message.text.len());
            // The closing event's text is the final word and may differ from the deltas
            // (rare): compared once, at the close, and drawn whole if it does.
            if !message.open && !checked_close.get_value() {
                checked_close.set_value(true);
                if span.text_content().as_deref() != Some(message.text.as_str()) {
                    span.set_text_content(Some(&message.text));
                }
            }
        });
    });
}

/// Append `new` to the span's text node: its first child, the text it was rendered with (the
/// renderer may put a marker comment after it). One is made if the span has none yet.
#[cfg(feature = "hydrate")]
fn append(span: &web_sys::HtmlSpanElement, new: &str) {
    use wasm_bindgen::JsCast;
    match span
        .first_child()
        .and_then(|node| node.dyn_into::<web_sys::Text>().ok())
    {
        Some(text) => {
            let _ = text.append_data(new);
        }
        None => {
            let _ = span.prepend_with_str_1(new);
        }
    }
}

#[cfg(not(feature = "hydrate"))]
fn follow(
    _model: RwSignal<RunModel>,
    _stream: Trigger,
    _i: usize,
    _pick: Pick,
    _number: usize,
    _element: NodeRef<Span>,
    _drawn: usize,
) {
}
