//! A provider's keys: the table on its page, and the forms that add, edit, enable or disable,
//! rotate and delete one, each through the `/keys` sub-resource's rules (models read as v1.5+
//! reads them), each saved only if the provider is as the page showed it (`If-Match`).

use dropshot::{Path, RequestContext};
use http::StatusCode;
use maud::{Markup, html};
use serde_json::Value;

use super::form_markup::{self, Drawn, Problem};
use super::page::{self, Viewer, provider_link, segment};
use super::schema_form::{self, Item};
use super::state::{decode, load, state_with_etag, unless_same};
use super::{Answer, Visit, posted, references, visit};
use crate::domain::error::Error;
use crate::domain::history::Source;
use crate::domain::key_models::View;
use crate::domain::keys;
use crate::domain::precondition::WriteConditions;
use crate::domain::provider::{self, StoredProvider};
use crate::http::api::{KeyPath, ProviderPath};
use crate::http::context::Context;
use crate::http::handlers::write_from;
use crate::http::json_body::FormBody;
use crate::types::Key;

/// The keys of a provider as the `/keys` sub-resource shows them, as JSON, but with `aliases`
/// as stored: that view fills empty aliases from the deployments, which a form posted back
/// would then store, so that drawing a key and saving it unchanged would change it.
fn presented(stored: &StoredProvider) -> Vec<Value> {
    let mut usable = true;
    stored
        .keys()
        .iter()
        .map(|k| {
            let mut shown = provider::present_key(k, View::Keys, &mut usable);
            shown.aliases = k.aliases.clone();
            serde_json::to_value(shown).unwrap_or_default()
        })
        .collect()
}

fn presented_key(stored: &StoredProvider, id: &str) -> Option<Value> {
    presented(stored)
        .into_iter()
        .find(|k| k["id"].as_str() == Some(id))
}

fn key_link(name: &str, id: &str, suffix: &str) -> String {
    provider_link(name, &format!("/keys/{}{suffix}", segment(id)))
}

/// The fields of a key's form: the key configuration blocks of the provider's kind (and any
/// the key already has), and the id only for a new key.
fn items(stored: &StoredProvider, key: &Value, new: bool) -> Vec<Item> {
    let base = stored.base();
    let own = format!("{base}_key_config");
    let key = key.clone();
    schema_form::form("Key", &move |path| {
        let member = path[0].as_str();
        if member == "id" {
            return new;
        }
        !member.ends_with("_key_config") || member == own || !key[member].is_null()
    })
}

/// The keys table of a provider's page.
pub fn table(name: &str, stored: &StoredProvider, viewer: &Viewer) -> Markup {
    let keys = presented(stored);
    let writes = viewer.writes_to(name);
    html! {
        @if keys.is_empty() {
            p { "No keys." }
        } @else {
            div class="scroll" {
                table {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Id" } th scope="col" { "Value" }
                        th scope="col" { "Models" } th scope="col" { "Weight" } th scope="col" { "Enabled" }
                        @if writes { th scope="col" { "Actions" } }
                    } }
                    tbody {
                        @for key in &keys {
                            @let id = key["id"].as_str().unwrap_or_default();
                            @let enabled = key["enabled"].as_bool().unwrap_or(true);
                            tr {
                                th scope="row" { (key["name"].as_str().unwrap_or_default()) }
                                td { code { (id) } }
                                td { (references::describe(&key["value"])) }
                                td { (models(&key["models"])) }
                                td { (key["weight"]) }
                                td { @if enabled { "yes" } @else { "no" } }
                                @if writes {
                                    td class="actions" {
                                        a href=(key_link(name, id, "")) { "Edit" span class="sr" { " key " (id) } }
                                        form method="post" action=(key_link(name, id, "/toggle")) class="inline" {
                                            (viewer.form_token())
                                            input type="hidden" name="_etag" value=(stored.etag);
                                            button type="submit" { @if enabled { "Disable" } @else { "Enable" } span class="sr" { " key " (id) } }
                                        }
                                        a href=(key_link(name, id, "/rotate")) { "Rotate" span class="sr" { " key " (id) } }
                                        a href=(key_link(name, id, "/delete")) class="danger" { "Delete" span class="sr" { " key " (id) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn models(value: &Value) -> String {
    let all: Vec<&str> = value
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}

/// A key form's page.
struct KeyForm<'a> {
    name: &'a str,
    action: String,
    title: String,
    button: &'a str,
    etag: &'a str,
    items: Vec<Item>,
}

impl KeyForm<'_> {
    fn view(
        &self,
        viewer: &Viewer,
        drawn: &Drawn,
        status: StatusCode,
        conflict: Option<Markup>,
    ) -> http::Response<dropshot::Body> {
        let body = html! {
            (viewer.live(self.name, self.etag, true))
            @if let Some(conflict) = &conflict { (conflict) }
            (form_markup::summary(drawn.problem, &schema_form::fields(&self.items)))
            form method="post" action=(self.action) novalidate {
                (viewer.form_token())
                input type="hidden" name="_etag" value=(self.etag);
                (form_markup::controls(&self.items, drawn))
                button type="submit" { @if conflict.is_some() { "Save over the stored version" } @else { (self.button) } }
                " " a href=(provider_link(self.name, "")) { "Cancel" }
            }
        };
        page::respond(status, page::frame(&self.title, Some(viewer), body))
    }
}

/// `GET /ui/providers/{provider}/new-key`.
pub async fn new_form(rqctx: RequestContext<Context>, path: Path<ProviderPath>) -> Answer {
    let visit = visit!(rqctx);
    let name = path.into_inner().provider;
    let stored = match writable(&rqctx, &visit, &name).await {
        Ok(stored) => stored,
        Err(answer) => return Ok(*answer),
    };
    let empty = Value::Object(Default::default());
    let form = new_key_form(&name, &stored);
    let drawn = Drawn {
        base: &empty,
        posted: None,
        current: &empty,
        problem: None,
    };
    Ok(visit.finish(form.view(&visit.viewer(), &drawn, StatusCode::OK, None)))
}

fn new_key_form<'a>(name: &'a str, stored: &'a StoredProvider) -> KeyForm<'a> {
    KeyForm {
        name,
        action: provider_link(name, "/new-key"),
        title: format!("Add a key to {name}"),
        button: "Add key",
        etag: &stored.etag,
        items: items(stored, &Value::Null, true),
    }
}

/// `POST /ui/providers/{provider}/new-key`.
pub async fn create(
    rqctx: RequestContext<Context>,
    path: Path<ProviderPath>,
    form: FormBody,
) -> Answer {
    let visit = visit!(rqctx);
    let posted = posted!(visit, rqctx, form);
    let name = path.into_inner().provider;
    let stored = match writable(&rqctx, &visit, &name).await {
        Ok(stored) => stored,
        Err(answer) => return Ok(*answer),
    };
    let empty = Value::Object(Default::default());
    let form = new_key_form(&name, &stored);
    let key = schema_form::read(&form.items, &posted, &empty, &empty).and_then(decode::<Key>);
    let outcome = match key {
        Ok(key) => match provider::key_id(key.id.as_deref(), "id") {
            Ok(id) => {
                save(&rqctx, &visit, &name, None, move |name, current| {
                    keys::create(name, current, id, key)
                })
                .await
            }
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    Ok(match outcome {
        Ok(()) => visit.finish(page::see_other(&provider_link(&name, ""))),
        Err(error) => {
            let (status, problem) = Problem::of(error);
            let drawn = Drawn {
                base: &empty,
                posted: Some(&posted),
                current: &empty,
                problem: Some(&problem),
            };
            visit.finish(form.view(&visit.viewer(), &drawn, status, None))
        }
    })
}

/// Applies a key change to provider `name`, if it is still at `etag` (when given).
async fn save(
    rqctx: &RequestContext<Context>,
    visit: &Visit,
    name: &str,
    etag: Option<&str>,
    change: impl FnOnce(&str, Option<&StoredProvider>) -> Result<StoredProvider, Error> + Send + 'static,
) -> Result<(), Error> {
    visit.caller.may_write(name)?;
    let conditions = WriteConditions {
        if_match: etag.map(|e| format!("\"{e}\"")),
        if_none_match: None,
    };
    write_from(
        rqctx,
        &visit.caller,
        name.to_string(),
        Source::Api,
        move |name, current| {
            conditions.check(current)?;
            change(name, current).map(|p| unless_same(p, current))
        },
    )
    .await
    .map(|_| ())
}

/// Provider `name` if this visit may change it; else the page that says why not.
async fn writable(
    rqctx: &RequestContext<Context>,
    visit: &Visit,
    name: &str,
) -> Result<std::sync::Arc<StoredProvider>, Box<http::Response<dropshot::Body>>> {
    let stored = load(rqctx, visit, name).await?;
    visit
        .caller
        .may_write(name)
        .map_err(|e| Box::new(visit.error(e)))?;
    Ok(stored)
}

/// Provider and key of a key path, if this visit may change them.
async fn writable_key(
    rqctx: &RequestContext<Context>,
    visit: &Visit,
    path: KeyPath,
) -> Result<
    (String, String, std::sync::Arc<StoredProvider>, Value),
    Box<http::Response<dropshot::Body>>,
> {
    let KeyPath { provider, key_id } = path;
    let stored = writable(rqctx, visit, &provider).await?;
    let key = presented_key(&stored, &key_id)
        .ok_or_else(|| Box::new(visit.error(Error::KeyNotFound(key_id.clone()))))?;
    Ok((provider, key_id, stored, key))
}

fn edit_key_form<'a>(
    name: &'a str,
    id: &str,
    stored: &'a StoredProvider,
    key: &Value,
) -> KeyForm<'a> {
    KeyForm {
        name,
        action: key_link(name, id, ""),
        title: format!("Edit key {id} of {name}"),
        button: "Save key",
        etag: &stored.etag,
        items: items(stored, key, false),
    }
}

/// `GET /ui/providers/{provider}/keys/{key_id}`: the key's form.
pub async fn edit_form(rqctx: RequestContext<Context>, path: Path<KeyPath>) -> Answer {
    let visit = visit!(rqctx);
    let (name, id, stored, key) = match writable_key(&rqctx, &visit, path.into_inner()).await {
        Ok(found) => found,
        Err(answer) => return Ok(*answer),
    };
    let form = edit_key_form(&name, &id, &stored, &key);
    let drawn = Drawn {
        base: &key,
        posted: None,
        current: &key,
        problem: None,
    };
    Ok(visit.finish(form.view(&visit.viewer(), &drawn, StatusCode::OK, None)))
}

/// `POST /ui/providers/{provider}/keys/{key_id}`: saves the key if the provider is as the form
/// was drawn from; else the conflict view.
pub async fn update(rqctx: RequestContext<Context>, path: Path<KeyPath>, form: FormBody) -> Answer {
    let visit = visit!(rqctx);
    let posted = posted!(visit, rqctx, form);
    let (name, id, stored, current) = match writable_key(&rqctx, &visit, path.into_inner()).await {
        Ok(found) => found,
        Err(answer) => return Ok(*answer),
    };
    let started = posted.get("_etag").cloned().unwrap_or_default();
    let base = if started == stored.etag {
        current.clone()
    } else {
        state_with_etag(&rqctx, &name, &started)
            .await
            .and_then(|s| presented_key(&s, &id))
            .unwrap_or_else(|| current.clone())
    };
    let form = edit_key_form(&name, &id, &stored, &current);
    let outcome =
        match schema_form::read(&form.items, &posted, &base, &current).and_then(|mut body| {
            body.insert("id".into(), Value::String(id.clone()));
            decode::<Key>(body)
        }) {
            Ok(key) => {
                let wanted = id.clone();
                save(
                    &rqctx,
                    &visit,
                    &name,
                    Some(&started),
                    move |name, current| keys::update(name, current, &wanted, key),
                )
                .await
            }
            Err(error) => Err(error),
        };
    let error = match outcome {
        Ok(()) => return Ok(visit.finish(page::see_other(&provider_link(&name, "")))),
        Err(error) => error,
    };
    let viewer = visit.viewer();
    if let Error::PreconditionFailed(_) = error {
        let (name, id, now, now_key) = match writable_key(
            &rqctx,
            &visit,
            KeyPath {
                provider: name,
                key_id: id,
            },
        )
        .await
        {
            Ok(found) => found,
            Err(answer) => return Ok(*answer),
        };
        let form = edit_key_form(&name, &id, &now, &now_key);
        let conflict = form_markup::conflict_table(&form.items, &base, &now_key, &posted);
        let drawn = Drawn {
            base: &now_key,
            posted: Some(&posted),
            current: &now_key,
            problem: None,
        };
        return Ok(visit.finish(form.view(
            &viewer,
            &drawn,
            StatusCode::PRECONDITION_FAILED,
            Some(conflict),
        )));
    }
    let (status, problem) = Problem::of(error);
    let drawn = Drawn {
        base: &base,
        posted: Some(&posted),
        current: &current,
        problem: Some(&problem),
    };
    let mut form = form;
    form.etag = &started;
    Ok(visit.finish(form.view(&viewer, &drawn, status, None)))
}

/// `POST /ui/providers/{provider}/keys/{key_id}/toggle`: enables a disabled key, disables an
/// enabled one.
pub async fn toggle(rqctx: RequestContext<Context>, path: Path<KeyPath>, form: FormBody) -> Answer {
    let visit = visit!(rqctx);
    let posted = posted!(visit, rqctx, form);
    let (name, id, _, mut key) = match writable_key(&rqctx, &visit, path.into_inner()).await {
        Ok(found) => found,
        Err(answer) => return Ok(*answer),
    };
    let enabled = key["enabled"].as_bool().unwrap_or(true);
    key["enabled"] = Value::Bool(!enabled);
    changed_key(&rqctx, &visit, &name, &id, posted.get("_etag"), key).await
}

/// Saves `key` (a `/keys` body) as key `id`, then back to the provider's page.
async fn changed_key(
    rqctx: &RequestContext<Context>,
    visit: &Visit,
    name: &str,
    id: &str,
    etag: Option<&String>,
    key: Value,
) -> Answer {
    let Value::Object(mut body) = key else {
        return Ok(visit.error(Error::KeyNotFound(id.to_string())));
    };
    for read_only in ["status", "config_hash", "description"] {
        body.remove(read_only);
    }
    let wanted = id.to_string();
    let outcome = match decode::<Key>(body) {
        Ok(key) => {
            save(
                rqctx,
                visit,
                name,
                etag.map(String::as_str),
                move |name, current| keys::update(name, current, &wanted, key),
            )
            .await
        }
        Err(error) => Err(error),
    };
    Ok(match outcome {
        Ok(()) => visit.finish(page::see_other(&provider_link(name, ""))),
        Err(error) => visit.error(error),
    })
}

/// `GET /ui/providers/{provider}/keys/{key_id}/rotate`: a new value for the key.
pub async fn rotate_form(rqctx: RequestContext<Context>, path: Path<KeyPath>) -> Answer {
    let visit = visit!(rqctx);
    let (name, id, stored, key) = match writable_key(&rqctx, &visit, path.into_inner()).await {
        Ok(found) => found,
        Err(answer) => return Ok(*answer),
    };
    let viewer = visit.viewer();
    let body = html! {
        form method="post" action=(key_link(&name, &id, "/rotate")) {
            (viewer.form_token())
            input type="hidden" name="_etag" value=(stored.etag);
            div class="field" {
                label for="f-value" { "New value (required)" }
                input type="password" id="f-value" name="value" required autocomplete="new-password" aria-describedby="f-value-help";
                p class="help" id="f-value-help" { "Stored: " (references::describe(&key["value"])) ". The new value replaces it; a reference (env.NAME, vault.PATH) may be given." }
            }
            button type="submit" { "Rotate key" }
            " " a href=(provider_link(&name, "")) { "Cancel" }
        }
    };
    Ok(visit.finish(page::respond(
        StatusCode::OK,
        page::frame(&format!("Rotate key {id} of {name}"), Some(&viewer), body),
    )))
}

/// `POST /ui/providers/{provider}/keys/{key_id}/rotate`.
pub async fn rotate(rqctx: RequestContext<Context>, path: Path<KeyPath>, form: FormBody) -> Answer {
    let visit = visit!(rqctx);
    let posted = posted!(visit, rqctx, form);
    let (name, id, _, mut key) = match writable_key(&rqctx, &visit, path.into_inner()).await {
        Ok(found) => found,
        Err(answer) => return Ok(*answer),
    };
    let value = posted.get("value").map(|v| v.trim()).unwrap_or_default();
    if value.is_empty() {
        return Ok(visit.error(Error::invalid(
            "invalid_form",
            "value",
            "value: a new value is required to rotate a key",
        )));
    }
    key["value"] = Value::String(value.to_string());
    changed_key(&rqctx, &visit, &name, &id, posted.get("_etag"), key).await
}

/// `GET /ui/providers/{provider}/keys/{key_id}/delete`: the confirmation.
pub async fn delete_form(rqctx: RequestContext<Context>, path: Path<KeyPath>) -> Answer {
    let visit = visit!(rqctx);
    let (name, id, stored, key) = match writable_key(&rqctx, &visit, path.into_inner()).await {
        Ok(found) => found,
        Err(answer) => return Ok(*answer),
    };
    let viewer = visit.viewer();
    let body = html! {
        p { "Delete key " strong { (key["name"].as_str().unwrap_or_default()) } " (" code { (id) } ") of " (name) "?" }
        form method="post" action=(key_link(&name, &id, "/delete")) {
            (viewer.form_token())
            input type="hidden" name="_etag" value=(stored.etag);
            button type="submit" class="danger" { "Delete key" }
            " " a href=(provider_link(&name, "")) { "Cancel" }
        }
    };
    Ok(visit.finish(page::respond(
        StatusCode::OK,
        page::frame(&format!("Delete key {id}"), Some(&viewer), body),
    )))
}

/// `POST /ui/providers/{provider}/keys/{key_id}/delete`.
pub async fn delete(rqctx: RequestContext<Context>, path: Path<KeyPath>, form: FormBody) -> Answer {
    let visit = visit!(rqctx);
    let posted = posted!(visit, rqctx, form);
    let KeyPath {
        provider: name,
        key_id: id,
    } = path.into_inner();
    let wanted = id.clone();
    let outcome = save(
        &rqctx,
        &visit,
        &name,
        posted.get("_etag").map(String::as_str),
        move |name, current| keys::delete(name, current, &wanted),
    )
    .await;
    Ok(match outcome {
        Ok(()) => visit.finish(page::see_other(&provider_link(&name, ""))),
        Err(error) => visit.error(error),
    })
}
