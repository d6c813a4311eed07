//! Text that streams in (an agent's answer or reasoning), drawn without ever re-rendering it.
//!
//! The hot path: an agent may stream hundreds of deltas a second, and an answer may grow to
//! pages. So per delta the work must be proportional to the delta, not to the answer:
//! - the fold appends each delta to the message's `String` (`RunModel::apply`, O(delta)) and
//!   says it only added text; the page then notifies the `stream` trigger alone, so no memo of
//!   a card, a tool row or a panel runs (`pages::run::fold_new`);
//! - this view holds how many bytes of the message it has drawn; when the trigger fires it
//!   appends only the bytes after those (`CharacterData.appendData`) to the text node of the
//!   line being written;
//! - a line that is whole (its `\n` arrived) moves into a block of its own (a `span` made a
//!   block by the style sheet, `.stream-text > span`), so the browser lays out again only the
//!   line being written, not the whole answer: one 16,000-character paragraph costs Chromium
//!   ~4 ms of layout per update on this machine, lines of 400 characters ~0.4 ms
//!   (`end2end/measure/README.md`). A line without a `\n` stays one line however long it
//!   grows: the text is drawn exactly as it is, never broken where it does not break.
//!
//! The server renders the text so far as one text node (a reload mid-stream shows it at once);
//! once hydrated (or made), the view draws it again in lines, once, and from then on appends
//! from where that stopped.

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
    follow(model, stream, i, pick, number, element);
    view! { <span class="stream-text" node_ref=element>{initial}</span> }
}

/// Draw the text in lines once mounted, then append what arrives after the bytes drawn, each
/// time the stream trigger fires.
#[cfg(feature = "hydrate")]
fn follow(
    model: RwSignal<RunModel>,
    stream: Trigger,
    i: usize,
    pick: Pick,
    number: usize,
    element: NodeRef<Span>,
) {
    // Bytes of the message drawn; `None` until the first run has split the text into lines.
    let drawn = StoredValue::new(None::<usize>);
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
            let appended = drawn
                .get_value()
                .and_then(|from| message.text.get(from..))
                .map(|new| append(&span, new))
                .is_some();
            // The closing event's text is the final word and may differ from the deltas
            // (rare): compared once, at the close, and drawn whole if it does.
            let closing = !message.open && !checked_close.get_value();
            if closing {
                checked_close.set_value(true);
            }
            if !appended
                || (closing && span.text_content().as_deref() != Some(message.text.as_str()))
            {
                span.set_text_content(None);
                let _ = span.append_child(&document().create_text_node(""));
                append(&span, &message.text);
            }
            drawn.set_value(Some(message.text.len()));
        });
    });
}

/// Append `new` to the line being written (the span's last node: its text); each line it
/// completes becomes a block of its own (`span > span`, a block by the style sheet) and a new
/// text node takes the next line.
#[cfg(feature = "hydrate")]
fn append(span: &web_sys::HtmlSpanElement, new: &str) {
    use wasm_bindgen::JsCast;
    let Some(mut text) = span
        .last_child()
        .map(|node| node.unchecked_into::<web_sys::Text>())
    else {
        return;
    };
    for line in new.split_inclusive('\n') {
        let _ = text.append_data(line);
        if line.ends_with('\n') {
            let Ok(block) = document().create_element("span") else {
                return;
            };
            let _ = span.insert_before(&block, Some(&text));
            let _ = block.append_child(&text);
            text = document().create_text_node("");
            let _ = span.append_child(&text);
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
) {
}
