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

use crate::answer_form::{choice_label, AnswerForm, Field, FieldKind};
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
    let answer =
        Memo::new(move |_| model.with(|m| m.interrupts.get(i).and_then(|a| a.answer.clone())));
    let id = asked.interrupt_id.clone();
    let pending = Memo::new(move |_| {
        socket
            .answers
            .with(|a| a.iter().any(|p| p.interrupt_id == id))
    });
    let expires_at_ms = asked.expires_at_ms;
    let state = Memo::new(move |_| match answer.get() {
        Some(answer) => State::Answered(answer),
        None if pending.get() => State::Pending,
        None if expires_at_ms.is_some_and(|at| at <= clock.get()) => State::Expired,
        None => State::Open,
    });
    let approval = asked.reason == reasons::TOOL_APPROVAL;
    let outcome = move || match state.get() {
        State::Open => None,
        State::Pending => Some("Sending your answer… (pending)".to_owned()),
        State::Expired => Some("Expired: answers are no longer accepted.".to_owned()),
        State::Answered(answer) => Some(answered(&answer, approval)),
    };
    let interrupt_id = asked.interrupt_id.clone();
    let form = (!approval).then(|| AnswerForm::from_schema(asked.response_schema.as_ref()));
    view! {
        <article class=move || format!("interrupt-card interrupt-{}", state.with(State::word))
            data-testid="interrupt" data-interrupt-id=asked.interrupt_id.clone()
            data-state=move || state.with(State::word) role="group"
            aria-label=format!("Question from {}", asked.agent)>
            <header class="card-head">
                <span class="interrupt-mark" aria-hidden="true">"?"</span>
                <h3 class="interrupt-message" data-testid="interrupt-message">{asked.message.clone()}</h3>
                <span class="interrupt-agent">"asked by " <strong>{asked.agent.clone()}</strong></span>
            </header>
            {call.map(|(tool, input)| view! {
                <div class="interrupt-call" data-testid="interrupt-call">
                    <p>"Tool call " <code class="tool-name">{tool}</code></p>
                    <pre>{input}</pre>
                </div>
            })}
            {asked.expires_at.clone().map(|at| view! { <p class="notice interrupt-expiry">"answer before " {at}</p> })}
            <Show when=move || state.with(|s| *s == State::Open)>
                {
                    let interrupt_id = interrupt_id.clone();
                    match form.clone() {
                        None => view! { <ApprovalButtons socket interrupt_id/> }.into_any(),
                        Some(form) => view! { <AnswerFields socket interrupt_id form/> }.into_any(),
                    }
                }
            </Show>
            {move || outcome().map(|text| view! { <p class="interrupt-outcome" data-testid="interrupt-outcome">{text}</p> })}
        </article>
    }
    .into_any()
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
#[component]
fn ApprovalButtons(socket: WorkflowSocket, interrupt_id: String) -> impl IntoView {
    let answer = move |approved: bool| {
        let id = interrupt_id.clone();
        move |_| {
            socket.resolve(
                id.clone(),
                InterruptStatus::Resolved,
                Some(json!({ "approved": approved })),
            )
        }
    };
    view! {
        <div class="interrupt-actions">
            <button type="button" class="primary" data-testid="approve" on:click=answer(true)>"Approve"</button>
            <button type="button" data-testid="deny" on:click=answer(false)>"Deny"</button>
        </div>
    }
}

/// Any other question: one input per field of the form; the payload is checked before it goes.
#[component]
fn AnswerFields(socket: WorkflowSocket, interrupt_id: String, form: AnswerForm) -> impl IntoView {
    let values: Vec<RwSignal<String>> = form
        .fields
        .iter()
        .map(|f| RwSignal::new(AnswerForm::initial(f)))
        .collect();
    let problem = RwSignal::new(None::<String>);
    let inputs = form
        .fields
        .iter()
        .zip(values.iter().copied())
        .map(|(field, value)| view! { <FieldInput field=field.clone() value/> })
        .collect_view();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let typed: Vec<String> = values.iter().map(|v| v.get_untracked()).collect();
        match form.payload(&typed) {
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
        <form class="interrupt-form" data-testid="interrupt-form" on:submit=submit>
            {inputs}
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
            <button type="submit" class="primary" data-testid="answer">"Answer"</button>
        </form>
    }
}

/// One labelled input of the kind its field needs, writing its text to `value`.
#[component]
fn FieldInput(field: Field, value: RwSignal<String>) -> impl IntoView {
    let on_input = move |ev: leptos::ev::Event| value.set(event_target_value(&ev));
    let input = match &field.kind {
        FieldKind::Text => view! {
            <input type="text" name=field.name.clone() prop:value=value on:input=on_input/>
        }
        .into_any(),
        FieldKind::Number { integer } => view! {
            <input type="number" name=field.name.clone() step=if *integer { "1" } else { "any" }
                prop:value=value on:input=on_input/>
        }
        .into_any(),
        FieldKind::Boolean => view! {
            <input type="checkbox" name=field.name.clone()
                on:change=move |ev| value.set(if event_target_checked(&ev) { "true".into() } else { String::new() })/>
        }
        .into_any(),
        FieldKind::Choice(choices) => {
            let options = choices
                .iter()
                .enumerate()
                .map(|(n, choice)| view! { <option value=n.to_string()>{choice_label(choice)}</option> })
                .collect_view();
            view! {
                <select name=field.name.clone() prop:value=value on:change=on_input>
                    {(!field.required).then(|| view! { <option value="">"—"</option> })}
                    {options}
                </select>
            }
            .into_any()
        }
        FieldKind::Json => view! {
            <textarea name=field.name.clone() rows="3" placeholder="JSON" prop:value=value on:input=on_input></textarea>
        }
        .into_any(),
    };
    view! {
        <label class="field">
            <span class="field-label">{field.label.clone()}{field.required.then_some(" *")}</span>
            {input}
            {field.description.clone().map(|d| view! { <span class="field-help">{d}</span> })}
        </label>
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
