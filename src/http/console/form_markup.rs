//! Forms drawn from [`schema_form`] items as HTML: a fieldset per block, a labelled control per
//! field with its help, and the API's error shown at the field its `param` names.

use maud::{Markup, html};
use serde_json::Value;

use super::references;
use super::schema_form::{self, Field, Item, Kind, Posted, at, text};
use crate::domain::error::Error;
use crate::http::error::ApiError;

/// An error of a post, as the form shows it.
pub struct Problem {
    /// The field it names (dotted path), when it names one.
    pub param: Option<String>,
    pub message: String,
}

impl Problem {
    /// The API's error body for `error`, read for a form.
    pub fn of(error: Error) -> (http::StatusCode, Problem) {
        let error = ApiError::from(error);
        let body = &error.body().error;
        let param = body.param.as_ref().and_then(|p| match p {
            Value::String(s) => Some(s.clone()),
            _ => None,
        });
        (
            error.status(),
            Problem {
                param,
                message: body.message.clone(),
            },
        )
    }

    /// Whether it names this field: its path, or its path inside a list (`keys[0].value`).
    fn names(&self, field: &str) -> bool {
        self.param.as_deref().is_some_and(|p| {
            p == field || p.ends_with(&format!(".{field}")) || p.ends_with(&format!("].{field}"))
        })
    }
}

/// What a form is drawn from.
pub struct Drawn<'a> {
    /// The state the fields start from (a response's JSON).
    pub base: &'a Value,
    /// What was posted, when the form is drawn again after a refusal.
    pub posted: Option<&'a Posted>,
    /// What is stored now, for the description of each secret.
    pub current: &'a Value,
    pub problem: Option<&'a Problem>,
}

/// The error summary above a form, linking to the field it names.
pub fn summary(problem: Option<&Problem>, fields: &[&Field]) -> Markup {
    let Some(problem) = problem else {
        return html! {};
    };
    let target = fields
        .iter()
        .find(|f| problem.names(&f.name()))
        .map(|f| format!("#f-{}", f.name()));
    html! {
        div class="error-summary" role="alert" tabindex="-1" id="error-summary" {
            p { strong { "Not saved: " } (problem.message) }
            @if let Some(target) = target {
                p { a href=(target) { "Go to the field" } }
            }
        }
    }
}

/// The controls of `items`.
pub fn controls(items: &[Item], drawn: &Drawn) -> Markup {
    html! {
        @for item in items {
            @match item {
                Item::Group { path, help, items } => {
                    fieldset {
                        legend { (path.last().map_or("", String::as_str)) }
                        @if !help.is_empty() { p class="help" { (help) } }
                        (controls(items, drawn))
                    }
                }
                Item::Field(field) => (control(field, drawn)),
            }
        }
    }
}

fn control(field: &Field, drawn: &Drawn) -> Markup {
    let name = field.name();
    let id = format!("f-{name}");
    let value = match drawn.posted {
        Some(posted) if field.kind != Kind::Secret => {
            posted.get(&name).cloned().unwrap_or_default()
        }
        _ => text(field, at(drawn.base, &field.path)),
    };
    let problem = drawn.problem.filter(|p| p.names(&name));
    let help_id = format!("{id}-help");
    let error_id = format!("{id}-error");
    let described = match problem {
        Some(_) => format!("{help_id} {error_id}"),
        None => help_id.clone(),
    };
    let invalid = problem.map(|_| "true");
    html! {
        div class={ "field" @if problem.is_some() { " invalid" } } {
            label for=(id) {
                (field.label())
                @if field.required { " (required)" }
            }
            @match &field.kind {
                Kind::Secret => {
                    input type="password" id=(id) name=(name) value="" autocomplete="new-password"
                        aria-describedby=(described) aria-invalid=[invalid];
                }
                Kind::Flag => {
                    select id=(id) name=(name) aria-describedby=(described) aria-invalid=[invalid] {
                        option value="" selected[value.is_empty()] { "(not set)" }
                        option value="true" selected[value == "true"] { "yes" }
                        option value="false" selected[value == "false"] { "no" }
                    }
                }
                Kind::Choice(values) => {
                    select id=(id) name=(name) aria-describedby=(described) aria-invalid=[invalid] {
                        option value="" selected[value.is_empty()] { "(not set)" }
                        @for v in values {
                            option value=(v) selected[&value == v] { (v) }
                        }
                        @if !value.is_empty() && !values.contains(&value) {
                            option value=(value) selected { (value) }
                        }
                    }
                }
                Kind::Lines | Kind::Pairs | Kind::Json => {
                    textarea id=(id) name=(name) rows=(rows(&value)) aria-describedby=(described) aria-invalid=[invalid] { (value) }
                }
                Kind::Integer => {
                    input type="text" inputmode="numeric" id=(id) name=(name) value=(value)
                        aria-describedby=(described) aria-invalid=[invalid];
                }
                _ => {
                    input type="text" id=(id) name=(name) value=(value)
                        aria-describedby=(described) aria-invalid=[invalid];
                }
            }
            p class="help" id=(help_id) {
                @match &field.kind {
                    Kind::Secret => {
                        "Stored: " (references::describe(at(drawn.current, &field.path)))
                        ". Leave empty to keep it; enter a new value, or a reference (env.NAME, vault.PATH). "
                    }
                    Kind::Lines => "One per line. ",
                    Kind::Pairs => "One name=value per line. ",
                    Kind::Json => "JSON. ",
                    _ => "",
                }
                (field.help)
            }
            @if let Some(problem) = problem {
                p class="error" id=(error_id) { (problem.message) }
            }
        }
    }
}

fn rows(value: &str) -> usize {
    value.lines().count().clamp(2, 12)
}

/// A read-only view of `items` of `value`: label, then the value as the form would show it
/// (a secret: its description); the top level's own fields first, then a section per block.
pub fn settings(items: &[Item], value: &Value) -> Markup {
    let own: Vec<Item> = items
        .iter()
        .filter(|i| matches!(i, Item::Field(_)))
        .cloned()
        .collect();
    html! {
        section class="block" {
            h3 { "General" }
            dl { (settings_rows(&own, value)) }
        }
        @for item in items {
            @if let Item::Group { path, items, .. } = item {
                @if !at(value, path).is_null() {
                    section class="block" {
                        h3 { (path.last().map_or("", String::as_str)) }
                        dl { (settings_rows(items, value)) }
                    }
                }
            }
        }
    }
}

fn settings_rows(items: &[Item], value: &Value) -> Markup {
    html! {
        @for item in items {
            @match item {
                Item::Group { path, items, .. } => {
                    @if !at(value, path).is_null() {
                        dt { (path.join(".")) }
                        dd { dl { (settings_rows(items, value)) } }
                    }
                }
                Item::Field(field) => {
                    @let shown = at(value, &field.path);
                    @if !shown.is_null() {
                        dt { (field.label()) }
                        dd {
                            @if field.kind == Kind::Secret {
                                (references::describe(shown))
                            } @else {
                                @let t = text(field, shown);
                                @if t.contains('\n') { pre { (t) } } @else { (t) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What the conflict view shows: every field where what the operator started from, what is
/// stored now and what they sent are not all the same.
pub fn conflict_table(items: &[Item], started: &Value, now: &Value, posted: &Posted) -> Markup {
    let fields = schema_form::fields(items);
    let rows: Vec<_> = fields
        .iter()
        .filter_map(|f| {
            let from = shown(f, started);
            let stored = shown(f, now);
            let yours = match f.kind {
                schema_form::Kind::Secret => match posted.get(&f.name()).map(String::as_str) {
                    None | Some("") => "(kept)".to_string(),
                    Some(_) => "(a new value: enter it again)".to_string(),
                },
                _ => posted.get(&f.name()).cloned().unwrap_or_default(),
            };
            let yours_cmp = if f.kind == schema_form::Kind::Secret {
                from.clone()
            } else {
                yours.clone()
            };
            (from != stored || yours_cmp != from).then(|| (f.name(), from, stored, yours))
        })
        .collect();
    html! {
        div class="conflict" role="alert" id="conflict" tabindex="-1" {
            h2 { "Someone else changed this since you opened it" }
            p { "Nothing was saved. Below: what you started from, what is stored now, and your unsaved values. The form holds your values; saving it now replaces what is stored." }
            div class="scroll" {
                table {
                    thead { tr { th scope="col" { "Field" } th scope="col" { "You started from" } th scope="col" { "Stored now" } th scope="col" { "Yours (unsaved)" } } }
                    tbody {
                        @for (name, from, stored, yours) in &rows {
                            tr { th scope="row" { (name) } td { (from) } td { (stored) } td { (yours) } }
                        }
                    }
                }
            }
        }
    }
}

fn shown(field: &schema_form::Field, value: &Value) -> String {
    let at = schema_form::at(value, &field.path);
    match field.kind {
        schema_form::Kind::Secret => references::describe(at),
        _ => schema_form::text(field, at),
    }
}
