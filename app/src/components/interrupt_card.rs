//! The questions agents ask (interrupts), one card each: what is asked, by which agent, about
//! which tool call (and its input), and how to answer — Approve / Deny for a tool approval, a
//! small form made from the `response_schema` for anything else ([`AnswerForm`]).
//!
//! A card is, in this order of precedence:
//! - *answered* (or *cancelled* / *withdrawn*) once the log holds its `interrupt_resolved` —
//!   every tab gets that event live, so every tab shows it at once, with who answered;
//! - *pending* while this page's answer is not in the log yet (sent and not acked, or given
//!   offline: the socket delivers it exactly once when it can);
//! - *expired* past its `expires_at` (the server refuses answers then): no buttons;
//! - *open*: the buttons or the form.

use leptos::prelude::*;
use serde_json::{json, Value};

use crate::answer_form::AnswerForm;
use crate::protocol::vocab::reasons;
use crate::protocol::InterruptStatus;
use crate::run_model::{InterruptAnswer, RunModel};
use crate::socket::WorkflowSocket;

#[component]
pub fn InterruptCards(
    model: RwSignal<RunModel>,
    socket: WorkflowSocket,
    clock: ReadSignal<f64>,
) -> impl IntoView {
    let count = Memo::new(move |_| model.with(|m| m.interrupts.len()));
    view! {
        <section class="interrupts" aria-label="Questions for you">
            <For each=move || 0..count.get() key=|i| *i let:i>
                <InterruptCard model socket clock i/>
            </For>
        </section>
    }
}

/// What a card shows, from its answer in the log, this page's pending answer and the clock.
#[derive(Clone, Debug, PartialEq)]
enum State {
    Open,
    Pending,
    Expired,
    Answered(InterruptAnswer),
}

impl State {
    fn word(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Expired => "expired",
            Self::Answered(answer) => match (answer.status, &answer.user) {
                (InterruptStatus::Resolved, _) => "answered",
                (InterruptStatus::Cancelled, Some(_)) => "cancelled",
                (InterruptStatus::Cancelled, None) => "withdrawn",
            },
        }
    }
}

#[component]
fn InterruptCard(
    model: RwSignal<RunModel>,
    socket: WorkflowSocket,
    clock: ReadSignal<f64>,
    i: usize,
) -> impl IntoView {
    // What was asked never changes: read once. The tool call it names came before it.
    let Some((asked, call)) = model.with_untracked(|m| {
        m.interrupts.get(i).cloned().map(|asked| {
            let call = asked
                .call_id
                .as_deref()
                .and_then(|c| m.tool_call(c))
                .map(|row| (row.tool.clone(), pretty(&row.input)));
            (asked, call)
        })
    }) else {
        return ().into_any();
    };
    let id = asked.interrupt_id.clone();
    let expires_at_ms = asked.expires_at_ms;
    // One memo for all it depends on (one compiled memo type, not three).
    let state = Memo::new(move |_| {
        match model.with(|m| m.interrupts.get(i).and_then(|a| a.answer.clone())) {
            Some(answer) => State::Answered(answer),
            None if socket
                .answers
                .with(|a| a.iter().any(|p| p.interrupt_id == id)) =>
            {
                State::Pending
            }
            None if expires_at_ms.is_some_and(|at| at <= clock.get()) => State::Expired,
            None => State::Open,
        }
    });
    let approval = asked.reason == reasons::TOOL_APPROVAL;
    let (call_tool, call_input) = call.clone().unwrap_or_default();
    let interrupt_id = asked.interrupt_id.clone();
    let form = (!approval).then(|| AnswerForm::from_schema(asked.response_schema.as_ref()));
    // One reactive part: the answer's controls while open, else what became of it. (Its look
    // follows `data-state` in the CSS, so no other part of the card changes.)
    let answer_part = move || {
        match state.get() {
        State::Open => match form.clone() {
            None => approval_buttons(socket, interrupt_id.clone()),
            Some(form) => answer_fields(socket, interrupt_id.clone(), form),
        },
        done => view! {
            <p class="interrupt-outcome" data-testid="interrupt-outcome">{outcome(&done, approval)}</p>
        }
        .into_any(),
    }
    };
    view! {
        <article class="interrupt-card" data-testid="interrupt" data-interrupt-id=asked.interrupt_id.clone()
            data-state=move || state.with(State::word) role="group"
            aria-label=format!("Question from {}", asked.agent)>
            <header class="card-head">
                <span class="interrupt-mark" aria-hidden="true">"?"</span>
                <h3 class="interrupt-message" data-testid="interrupt-message">{asked.message.clone()}</h3>
                <span class="interrupt-agent">"asked by " <strong>{asked.agent.clone()}</strong></span>
            </header>
            // Always there, hidden when empty: one element, not an optional view to compile.
            <div class="interrupt-call" data-testid="interrupt-call" hidden=call.is_none()>
                <p>"Tool call " <code class="tool-name">{call_tool}</code></p>
                <pre>{call_input}</pre>
            </div>
            <p class="notice interrupt-expiry" hidden=asked.expires_at.is_none()>
                "answer before " {asked.expires_at.clone().unwrap_or_default()}
            </p>
            {answer_part}
        </article>
    }
    .into_any()
}

/// What a card that is not open says.
fn outcome(state: &State, approval: bool) -> String {
    match state {
        State::Open => String::new(),
        State::Pending => "Sending your answer… (pending)".into(),
        State::Expired => "Expired: answers are no longer accepted.".into(),
        State::Answered(answer) => answered(answer, approval),
    }
}

/// "Approved by ann", "Denied by ann", "Answered by ann", "Cancelled by ann", "Withdrawn".
fn answered(answer: &InterruptAnswer, approval: bool) -> String {
    let verb = match answer.status {
        InterruptStatus::Cancelled if answer.user.is_none() => return "Withdrawn".into(),
        InterruptStatus::Cancelled => "Cancelled",
        InterruptStatus::Resolved if !approval => "Answered",
        InterruptStatus::Resolved => {
            match answer.payload.as_ref().and_then(|p| p.get("approved")) {
                Some(Value::Bool(true)) => "Approved",
                _ => "Denied",
            }
        }
    };
    match &answer.user {
        Some(user) => format!("{verb} by {user}"),
        None => verb.to_owned(),
    }
}

/// A tool approval's answer: `{"approved": true}` or `{"approved": false}`.
fn approval_buttons(socket: WorkflowSocket, interrupt_id: String) -> AnyView {
    let answer = move |approved: bool| {
        let id = interrupt_id.clone();
        move |_| {
            let payload = json!({ "approved": approved });
            socket.resolve(id.clone(), InterruptStatus::Resolved, Some(payload))
        }
    };
    view! {
        <div class="interrupt-actions">
            <button type="button" class="primary" data-testid="approve" on:click=answer(true)>"Approve"</button>
            <button type="button" data-testid="deny" on:click=answer(false)>"Deny"</button>
        </div>
    }
    .into_any()
}

/// Any other question: the form's inputs (markup from [`AnswerForm::inputs_html`]), read back
/// by name when sent; the payload is checked before it goes.
fn answer_fields(socket: WorkflowSocket, interrupt_id: String, form: AnswerForm) -> AnyView {
    let problem = RwSignal::new(None::<String>);
    let inputs = form.inputs_html();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match form.payload(&typed(&ev, form.fields.len())) {
            Ok(payload) => {
                problem.set(None);
                socket.resolve(
                    interrupt_id.clone(),
                    InterruptStatus::Resolved,
                    Some(payload),
                );
            }
            Err(why) => problem.set(Some(why)),
        }
    };
    view! {
        <form class="interrupt-form" data-testid="interrupt-form" novalidate on:submit=submit>
            <div class="fields" inner_html=inputs></div>
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
            <button type="submit" class="primary" data-testid="answer">"Answer"</button>
        </form>
    }
    .into_any()
}

/// What was typed in the submitted form's `count` inputs, in field order (an unticked box and a
/// missing input read as empty).
#[cfg(feature = "hydrate")]
fn typed(ev: &leptos::ev::SubmitEvent, count: usize) -> Vec<String> {
    use wasm_bindgen::JsCast;
    let data = ev
        .target()
        .and_then(|target| target.dyn_into::<web_sys::HtmlFormElement>().ok())
        .and_then(|form| web_sys::FormData::new_with_form(&form).ok());
    (0..count)
        .map(|index| {
            data.as_ref()
                .and_then(|d| d.get(&AnswerForm::input_name(index)).as_string())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(not(feature = "hydrate"))]
fn typed(_ev: &leptos::ev::SubmitEvent, count: usize) -> Vec<String> {
    vec![String::new(); count]
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
