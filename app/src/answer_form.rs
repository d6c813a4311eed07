//! The form an interrupt card shows for a question other than a tool approval, made from the
//! interrupt's `response_schema` (JSON Schema), and the answer's `payload` made from what was
//! typed. Pure, so it is unit-tested on the host; the card draws one input per [`Field`].
//!
//! - An object schema with `properties`: one field per property — `string` → text input,
//!   `number` / `integer` → number input, `boolean` → checkbox, `enum` → select, anything
//!   else → a JSON textarea — and the payload is an object of them.
//! - A schema of one of those kinds itself (e.g. `{"type": "string"}`): one field, whose
//!   value is the payload.
//! - No schema: one text box, its text sent as the payload string.
//! - Any other schema: a JSON textarea; the payload is the JSON typed.
//!
//! The inputs are written as HTML here ([`AnswerForm::inputs_html`], every agent-supplied word
//! escaped) and read back by name when the form is sent: one static piece of markup instead of
//! a reactive view per kind of input keeps the browser's WASM small (each distinct view is
//! compiled into it again).

use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq)]
pub struct AnswerForm {
    pub fields: Vec<Field>,
    /// One field whose value is the payload itself, not a property of an object.
    pub whole: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The property's name (empty for a whole payload).
    pub name: String,
    /// What a person reads: the property's `title`, else its name.
    pub label: String,
    pub description: Option<String>,
    pub kind: FieldKind,
    pub required: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FieldKind {
    Text,
    Number {
        integer: bool,
    },
    /// A checkbox: its value is `"true"` when ticked, empty when not.
    Boolean,
    /// A select: its value is the index of the choice (empty for none).
    Choice(Vec<Value>),
    Json,
}

impl FieldKind {
    fn of(schema: &Value) -> Self {
        if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
            if !choices.is_empty() {
                return Self::Choice(choices.clone());
            }
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("string") => Self::Text,
            Some("number") => Self::Number { integer: false },
            Some("integer") => Self::Number { integer: true },
            Some("boolean") => Self::Boolean,
            _ => Self::Json,
        }
    }
}

/// What a person reads for a choice: a string as it is, anything else as JSON.
pub fn choice_label(choice: &Value) -> String {
    match choice {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl AnswerForm {
    pub fn from_schema(schema: Option<&Value>) -> Self {
        let whole = |kind| Self {
            fields: vec![Field {
                name: String::new(),
                label: "answer".into(),
                description: None,
                kind,
                required: true,
            }],
            whole: true,
        };
        let Some(schema) = schema else {
            return whole(FieldKind::Text);
        };
        let properties = schema.get("properties").and_then(Value::as_object);
        match properties {
            Some(properties) if !properties.is_empty() => {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let fields = properties
                    .iter()
                    .map(|(name, property)| Field {
                        name: name.clone(),
                        label: property
                            .get("title")
                            .and_then(Value::as_str)
                            .unwrap_or(name)
                            .to_owned(),
                        description: property
                            .get("description")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        kind: FieldKind::of(property),
                        required: required.contains(&name.as_str()),
                    })
                    .collect();
                Self {
                    fields,
                    whole: false,
                }
            }
            _ => whole(FieldKind::of(schema)),
        }
    }

    /// The value a field starts with.
    pub fn initial(field: &Field) -> String {
        match &field.kind {
            FieldKind::Choice(_) if field.required => "0".into(),
            _ => String::new(),
        }
    }

    /// The payload from the fields' `values` (in field order), or what is wrong with them.
    pub fn payload(&self, values: &[String]) -> Result<Value, String> {
        let mut object = Map::new();
        for (field, text) in self.fields.iter().zip(values) {
            match (value(field, text)?, self.whole) {
                (value, true) => return Ok(value.unwrap_or(Value::Null)),
                (Some(value), false) => {
                    object.insert(field.name.clone(), value);
                }
                (None, false) => {}
            }
        }
        Ok(Value::Object(object))
    }
}

impl AnswerForm {
    /// The `name` of field `index`'s input (agent-supplied names stay out of the markup).
    pub fn input_name(index: usize) -> String {
        format!("f{index}")
    }

    /// The form's inputs, one labelled input per field, as HTML.
    pub fn inputs_html(&self) -> String {
        let mut html = String::new();
        for (index, field) in self.fields.iter().enumerate() {
            let name = Self::input_name(index);
            html.push_str("<label class=\"field\"><span class=\"field-label\">");
            escape_into(&mut html, &field.label);
            if field.required {
                html.push_str(" *");
            }
            html.push_str("</span>");
            match &field.kind {
                FieldKind::Text => html.push_str(&format!("<input type=\"text\" name=\"{name}\">")),
                FieldKind::Number { integer } => {
                    let step = if *integer { "1" } else { "any" };
                    html.push_str(&format!(
                        "<input type=\"number\" step=\"{step}\" name=\"{name}\">"
                    ));
                }
                FieldKind::Boolean => html.push_str(&format!(
                    "<input type=\"checkbox\" value=\"true\" name=\"{name}\">"
                )),
                FieldKind::Choice(choices) => {
                    html.push_str(&format!("<select name=\"{name}\">"));
                    if !field.required {
                        html.push_str("<option value=\"\">—</option>");
                    }
                    for (n, choice) in choices.iter().enumerate() {
                        html.push_str(&format!("<option value=\"{n}\">"));
                        escape_into(&mut html, &choice_label(choice));
                        html.push_str("</option>");
                    }
                    html.push_str("</select>");
                }
                FieldKind::Json => html.push_str(&format!(
                    "<textarea name=\"{name}\" rows=\"3\" placeholder=\"JSON\"></textarea>"
                )),
            }
            if let Some(help) = &field.description {
                html.push_str("<span class=\"field-help\">");
                escape_into(&mut html, help);
                html.push_str("</span>");
            }
            html.push_str("</label>");
        }
        html
    }
}

/// `text` as HTML text or attribute value: nothing an agent writes becomes markup.
fn escape_into(html: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            c => html.push(c),
        }
    }
}

/// The value of one field (`None`: left empty, and it may be).
fn value(field: &Field, text: &str) -> Result<Option<Value>, String> {
    let empty = text.trim().is_empty();
    let label = &field.label;
    if empty && !matches!(field.kind, FieldKind::Boolean | FieldKind::Text) {
        return if field.required {
            Err(format!("{label}: a value is needed"))
        } else {
            Ok(None)
        };
    }
    Ok(Some(match &field.kind {
        FieldKind::Text if empty && !field.required => return Ok(None),
        FieldKind::Text => Value::String(text.to_owned()),
        FieldKind::Boolean => Value::Bool(text == "true"),
        // serde_json's number reader (already in the WASM), not `str::parse::<f64>`.
        FieldKind::Number { integer } => match serde_json::from_str::<Value>(text.trim()) {
            Ok(Value::Number(n)) if !integer || n.is_i64() || n.is_u64() => Value::Number(n),
            _ if *integer => return Err(format!("{label}: a whole number is needed")),
            _ => return Err(format!("{label}: a number is needed")),
        },
        FieldKind::Choice(choices) => {
            let index: usize = text.parse().map_err(|_| format!("{label}: pick one"))?;
            choices
                .get(index)
                .cloned()
                .ok_or_else(|| format!("{label}: pick one"))?
        }
        FieldKind::Json => {
            serde_json::from_str(text).map_err(|e| format!("{label}: not valid JSON ({e})"))?
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn no_schema_is_one_text_box_sent_as_a_string() {
        let form = AnswerForm::from_schema(None);
        assert!(form.whole);
        assert_eq!(form.fields[0].kind, FieldKind::Text);
        assert_eq!(form.payload(&["Ada".into()]), Ok(json!("Ada")));
    }

    #[test]
    fn an_object_schema_gets_one_field_per_property_of_its_kind() {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "title": "Your name"},
                "age": {"type": "integer"},
                "ratio": {"type": "number"},
                "ok": {"type": "boolean"},
                "size": {"enum": ["s", "m", 3]},
                "extra": {"type": "array"}
            },
            "required": ["name", "age"]
        });
        let form = AnswerForm::from_schema(Some(&schema));
        assert!(!form.whole);
        let kind = |name: &str| {
            form.fields
                .iter()
                .find(|f| f.name == name)
                .map(|f| (f.kind.clone(), f.required))
        };
        assert_eq!(kind("name"), Some((FieldKind::Text, true)));
        assert_eq!(
            kind("age"),
            Some((FieldKind::Number { integer: true }, true))
        );
        assert_eq!(
            kind("ratio"),
            Some((FieldKind::Number { integer: false }, false))
        );
        assert_eq!(kind("ok"), Some((FieldKind::Boolean, false)));
        assert_eq!(
            kind("size"),
            Some((
                FieldKind::Choice(vec![json!("s"), json!("m"), json!(3)]),
                false
            ))
        );
        assert_eq!(kind("extra"), Some((FieldKind::Json, false)));
        assert_eq!(
            form.fields
                .iter()
                .find(|f| f.name == "name")
                .map(|f| f.label.as_str()),
            Some("Your name")
        );

        // Values in field order (the schema's properties are read in key order).
        let names: Vec<&str> = form.fields.iter().map(|f| f.name.as_str()).collect();
        let values_for = |pairs: &[(&str, &str)]| -> Vec<String> {
            names
                .iter()
                .map(|n| {
                    pairs
                        .iter()
                        .find(|(k, _)| k == n)
                        .map_or(String::new(), |(_, v)| v.to_string())
                })
                .collect()
        };
        let values = values_for(&[
            ("name", "Ada"),
            ("age", "36"),
            ("ratio", "0.5"),
            ("ok", "true"),
            ("size", "2"),
            ("extra", "[1, 2]"),
        ]);
        assert_eq!(
            form.payload(&values),
            Ok(
                json!({"name": "Ada", "age": 36, "ratio": 0.5, "ok": true, "size": 3, "extra": [1, 2]})
            )
        );
        // Optional fields left empty are left out; an unticked box is false.
        let values = values_for(&[("name", ""), ("age", "1")]);
        assert_eq!(
            form.payload(&values),
            Ok(json!({"name": "", "age": 1, "ok": false}))
        );
        // Wrong or missing values say which field.
        let err = form.payload(&values_for(&[("name", "x"), ("age", "1.5")]));
        assert_eq!(err, Err("age: a whole number is needed".into()));
        let err = form.payload(&values_for(&[("name", "x")]));
        assert_eq!(err, Err("age: a value is needed".into()));
        let err = form.payload(&values_for(&[("name", "x"), ("age", "2"), ("extra", "[")]));
        assert!(err.is_err_and(|e| e.starts_with("extra: not valid JSON")));
    }

    #[test]
    fn the_inputs_are_markup_with_every_agent_word_escaped() {
        let schema = json!({
            "type": "object",
            "properties": {
                "<b>x</b>": {"type": "boolean", "description": "\"quoted\" & <i>"},
                "pick": {"enum": ["<script>", 2]},
                "n": {"type": "integer"}
            },
            "required": ["pick"]
        });
        let html = AnswerForm::from_schema(Some(&schema)).inputs_html();
        assert!(
            !html.contains("<b>") && !html.contains("<i>") && !html.contains("<script>"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"), "{html}");
        assert!(
            html.contains("&quot;quoted&quot; &amp; &lt;i&gt;"),
            "{html}"
        );
        // Inputs are named by position (f0, f1, …), never by the agent's words.
        assert!(
            html.contains(r#"<input type="checkbox" value="true" name="f"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<input type="number" step="1" name="f"#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<option value="0">&lt;script&gt;</option><option value="1">2</option></select>"#
            ),
            "{html}"
        );
        assert!(html.contains("pick *"), "{html}");
    }

    #[test]
    fn a_scalar_schema_is_one_field_whose_value_is_the_payload() {
        let form = AnswerForm::from_schema(Some(&json!({"type": "number"})));
        assert!(form.whole);
        assert_eq!(form.payload(&["2.5".into()]), Ok(json!(2.5)));
        let form = AnswerForm::from_schema(Some(&json!({"enum": ["yes", "no"]})));
        assert_eq!(AnswerForm::initial(&form.fields[0]), "0");
        assert_eq!(form.payload(&["1".into()]), Ok(json!("no")));
        // Anything else: JSON typed by hand.
        let form = AnswerForm::from_schema(Some(&json!({"type": "array"})));
        assert_eq!(form.fields[0].kind, FieldKind::Json);
        assert_eq!(form.payload(&["[true]".into()]), Ok(json!([true])));
    }
}
