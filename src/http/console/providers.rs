//! The provider pages: the list, one provider (settings, references, keys), its create and edit
//! forms (every block the spec has for its kind), the conflict view of an edit that lost a race,
//! and the delete confirmation.

use dropshot::{Path, RequestContext};
use http::StatusCode;
use maud::{Markup, html};
use serde_json::Value;

use super::form_markup::{self, Drawn, Problem};
use super::page::{self, Viewer, provider_link};
use super::schema_form::{self, Item, Posted};
use super::state::{decode, load, presented, state_with_etag, unless_same};
use super::{Answer, posted, references, visit};
use crate::domain::error::Error;
use crate::domain::history::Source;
use crate::domain::precondition::WriteConditions;
use crate::domain::provider;
use crate::domain::tokens::Scope;
use crate::domain::validate;
use crate::http::api::ProviderPath;
use crate::http::context::Context;
use crate::http::handlers::write_from;
use crate::http::json_body::FormBody;
use crate::store::Change;
use crate::types::{AddProviderRequest, UpdateProviderRequest};

/// The fields of a provider's form: every block of the request but its keys (a page of their
/// own) and, for a standard provider, the custom provider block (which only a custom one takes).
fn items(name: Option<&str>) -> Vec<Item> {
    let standard = name.is_some_and(validate::is_standard);
    schema_form::form("UpdateProviderRequest", &move |path| {
        path[0] != "keys" && !(standard && path[0] == "custom_provider_config")
    })
}

/// `GET /ui`: every provider this visit may see, with its status, keys, the references that do
/// not resolve here and its last change.
pub async fn list(rqctx: RequestContext<Context>) -> Answer {
    let visit = visit!(rqctx);
    let store = &rqctx.context().store;
    let (all, revision) = match store.list().await {
        Ok(listed) => listed,
        Err(error) => return Ok(visit.error(error)),
    };
    let shown: Vec<_> = all
        .iter()
        .filter(|p| visit.caller.allows(Scope::Read, &p.name))
        .collect();
    let lasts =
        futures_util::future::join_all(shown.iter().map(|p| store.history(&p.name, 1, None))).await;
    let viewer = visit.viewer();
    let body = html! {
        div id="live" data-since=(revision) aria-live="polite" {}
        @if shown.is_empty() {
            p { "No providers yet." @if viewer.writes() { " " a href="/ui/new" { "Add one" } "." } }
        } @else {
            div class="scroll" {
                table {
                    caption { (shown.len()) " providers" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Keys" } th scope="col" { "References not resolving here" } th scope="col" { "Last change" } } }
                    tbody {
                        @for (stored, last) in shown.iter().zip(&lasts) {
                            @let value = presented(stored);
                            @let unresolved: Vec<_> = references::all(&value).into_iter().filter(|r| !r.resolves).collect();
                            tr {
                                th scope="row" { a href=(provider_link(&stored.name, "")) { (stored.name) } }
                                td { (status(&value)) }
                                td { (stored.keys().len()) }
                                td {
                                    @if unresolved.is_empty() { "none" } @else {
                                        ul class="plain" { @for r in &unresolved { li { code { (r.reference) } " at " (r.path) } } }
                                    }
                                }
                                td {
                                    @if let Ok(Some((revisions, _))) = last && let Some(r) = revisions.first() {
                                        time datetime=(r.at) { (r.at) } " by " (r.actor) " (" (r.source.as_str()) ")"
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(visit.finish(page::respond(
        StatusCode::OK,
        page::frame("Providers", Some(&viewer), body),
    )))
}

fn status(value: &Value) -> Markup {
    let status = value["provider_status"]
        .as_str()
        .or_else(|| value["status"].as_str())
        .unwrap_or("active");
    html! { span class={ "status " (status) } { (status) } }
}

/// `GET /ui/providers/{provider}`: a provider's settings, references and keys.
pub async fn show(rqctx: RequestContext<Context>, path: Path<ProviderPath>) -> Answer {
    let visit = visit!(rqctx);
    let name = path.into_inner().provider;
    let stored = match load(&rqctx, &visit, &name).await {
        Ok(stored) => stored,
        Err(answer) => return Ok(*answer),
    };
    let value = presented(&stored);
    let viewer = visit.viewer();
    let writes = viewer.writes_to(&name);
    let refs = references::all(&value);
    let body = html! {
        (viewer.live(&name, &stored.etag, false))
        p { "Status: " (status(&value)) }
        nav class="actions" aria-label="Provider" {
            a href=(provider_link(&name, "/history")) { "History" }
            @if writes {
                a href=(provider_link(&name, "/edit")) { "Edit settings" }
                a href=(provider_link(&name, "/new-key")) { "Add a key" }
                a href=(provider_link(&name, "/delete")) class="danger" { "Delete provider" }
            }
        }
        @if !refs.is_empty() {
            h2 { "References" }
            ul {
                @for r in &refs {
                    li {
                        code { (r.reference) } " at " (r.path) ": "
                        @if r.resolves { "resolves on this host" } @else { strong { "does not resolve on this host" } }
                    }
                }
            }
        }
        h2 { "Keys" }
        (super::keys::table(&name, &stored, &viewer))
        h2 { "Settings" }
        (form_markup::settings(&items(Some(&name)), &value))
    };
    Ok(visit.finish(page::respond(
        StatusCode::OK,
        page::frame(&name, Some(&viewer), body),
    )))
}

/// `GET /ui/new`: the form of a new provider.
pub async fn new_form(rqctx: RequestContext<Context>) -> Answer {
    let visit = visit!(rqctx);
    if !visit.caller.has(Scope::Write) {
        return Ok(visit.error(Error::Forbidden("This token may not add providers".into())));
    }
    Ok(visit.finish(new_view(&visit.viewer(), None, None)))
}

fn new_view(
    viewer: &Viewer,
    posted: Option<&Posted>,
    problem: Option<(StatusCode, Problem)>,
) -> http::Response<dropshot::Body> {
    let items = items(None);
    let empty = Value::Object(Default::default());
    let (status, problem) = match problem {
        Some((status, problem)) => (status, Some(problem)),
        None => (StatusCode::OK, None),
    };
    let name = posted
        .and_then(|p| p.get("provider"))
        .cloned()
        .unwrap_or_default();
    let names_name = problem
        .as_ref()
        .is_some_and(|p| matches!(p.param.as_deref(), Some("provider" | "name")));
    let drawn = Drawn {
        base: &empty,
        posted,
        current: &empty,
        problem: problem.as_ref(),
    };
    let body = html! {
        (form_markup::summary(problem.as_ref(), &schema_form::fields(&items)))
        form method="post" action="/ui/new" novalidate {
            (viewer.form_token())
            div class={ "field" @if names_name { " invalid" } } {
                label for="f-provider" { "Name (required)" }
                input type="text" id="f-provider" name="provider" value=(name) required aria-describedby="f-provider-help";
                p class="help" id="f-provider-help" { "A standard provider's name (openai, azure, bedrock, …), or a custom provider's own name with its custom_provider_config below." }
                @if names_name { @if let Some(p) = &problem { p class="error" { (p.message) } } }
            }
            (form_markup::controls(&items, &drawn))
            button type="submit" { "Create provider" }
        }
    };
    page::respond(status, page::frame("New provider", Some(viewer), body))
}

/// `POST /ui/new`: creates a provider (409 if one of that name exists).
pub async fn create(rqctx: RequestContext<Context>, form: FormBody) -> Answer {
    let visit = visit!(rqctx);
    let posted = posted!(visit, rqctx, form);
    let empty = Value::Object(Default::default());
    let name = posted
        .get("provider")
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    let request = schema_form::read(&items(None), &posted, &empty, &empty).and_then(|mut body| {
        body.insert("provider".into(), Value::String(name.clone()));
        decode::<AddProviderRequest>(body)
    });
    let outcome = match request {
        Ok(request) => {
            let (name, request) = crate::convert::split_add(request);
            match validate::provider_name(&name, "provider") {
                Ok(()) => match visit.caller.may_write(&name) {
                    Ok(()) => write_from(
                        &rqctx,
                        &visit.caller,
                        name.clone(),
                        Source::Api,
                        move |name, current| match current {
                            Some(_) => Err(Error::Exists(name.to_string())),
                            None => provider::desired_state(name, request, None)
                                .map(|p| Change::Put(Box::new(p))),
                        },
                    )
                    .await
                    .map(|_| name),
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            }
        }
        Err(error) => Err(error),
    };
    Ok(match outcome {
        Ok(name) => visit.finish(page::see_other(&provider_link(&name, ""))),
        Err(error) => visit.finish(new_view(
            &visit.viewer(),
            Some(&posted),
            Some(Problem::of(error)),
        )),
    })
}

/// `GET /ui/providers/{provider}/edit`: the settings form.
pub async fn edit_form(rqctx: RequestContext<Context>, path: Path<ProviderPath>) -> Answer {
    let visit = visit!(rqctx);
    let name = path.into_inner().provider;
    let stored = match load(&rqctx, &visit, &name).await {
        Ok(stored) => stored,
        Err(answer) => return Ok(*answer),
    };
    if let Err(error) = visit.caller.may_write(&name) {
        return Ok(visit.error(error));
    }
    let value = presented(&stored);
    let drawn = Drawn {
        base: &value,
        posted: None,
        current: &value,
        problem: None,
    };
    Ok(visit.finish(edit_view(
        &visit.viewer(),
        &name,
        &stored.etag,
        &drawn,
        StatusCode::OK,
        None,
    )))
}

fn edit_view(
    viewer: &Viewer,
    name: &str,
    etag: &str,
    drawn: &Drawn,
    status: StatusCode,
    conflict: Option<Markup>,
) -> http::Response<dropshot::Body> {
    let items = items(Some(name));
    let saving_over = conflict.is_some();
    let body = html! {
        (viewer.live(name, etag, true))
        @if let Some(conflict) = conflict { (conflict) }
        (form_markup::summary(drawn.problem, &schema_form::fields(&items)))
        form method="post" action=(provider_link(name, "/edit")) novalidate {
            (viewer.form_token())
            input type="hidden" name="_etag" value=(etag);
            (form_markup::controls(&items, drawn))
            button type="submit" { @if saving_over { "Save over the stored version" } @else { "Save" } }
            " " a href=(provider_link(name, "")) { "Cancel" }
        }
    };
    page::respond(
        status,
        page::frame(&format!("Edit {name}"), Some(viewer), body),
    )
}

/// `POST /ui/providers/{provider}/edit`: saves the settings if the provider is still as the
/// form was drawn from (`If-Match`); else the conflict view.
pub async fn update(
    rqctx: RequestContext<Context>,
    path: Path<ProviderPath>,
    form: FormBody,
) -> Answer {
    let visit = visit!(rqctx);
    let posted = posted!(visit, rqctx, form);
    let name = path.into_inner().provider;
    let stored = match load(&rqctx, &visit, &name).await {
        Ok(stored) => stored,
        Err(answer) => return Ok(*answer),
    };
    let started = posted.get("_etag").cloned().unwrap_or_default();
    let current = presented(&stored);
    let base = if started == stored.etag {
        current.clone()
    } else {
        state_with_etag(&rqctx, &name, &started)
            .await
            .map(|s| presented(&s))
            .unwrap_or_else(|| current.clone())
    };
    let items = items(Some(&name));
    let request = schema_form::read(&items, &posted, &base, &current)
        .and_then(decode::<UpdateProviderRequest>);
    let outcome = match request {
        Ok(request) => {
            let conditions = WriteConditions {
                if_match: Some(format!("\"{started}\"")),
                if_none_match: None,
            };
            match visit.caller.may_write(&name) {
                Ok(()) => write_from(
                    &rqctx,
                    &visit.caller,
                    name.clone(),
                    Source::Api,
                    move |name, current| {
                        conditions.check(current)?;
                        provider::desired_state(name, request, current)
                            .map(|p| unless_same(p, current))
                    },
                )
                .await
                .map(|_| ()),
                Err(error) => Err(error),
            }
        }
        Err(error) => Err(error),
    };
    let error = match outcome {
        Ok(()) => return Ok(visit.finish(page::see_other(&provider_link(&name, "")))),
        Err(error) => error,
    };
    let viewer = visit.viewer();
    if let Error::PreconditionFailed(_) = error {
        let now = match load(&rqctx, &visit, &name).await {
            Ok(now) => now,
            Err(answer) => return Ok(*answer),
        };
        let now_value = presented(&now);
        let conflict = form_markup::conflict_table(&items, &base, &now_value, &posted);
        let drawn = Drawn {
            base: &now_value,
            posted: Some(&posted),
            current: &now_value,
            problem: None,
        };
        return Ok(visit.finish(edit_view(
            &viewer,
            &name,
            &now.etag,
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
    Ok(visit.finish(edit_view(&viewer, &name, &started, &drawn, status, None)))
}

/// `GET /ui/providers/{provider}/delete`: the confirmation.
pub async fn delete_form(rqctx: RequestContext<Context>, path: Path<ProviderPath>) -> Answer {
    let visit = visit!(rqctx);
    let name = path.into_inner().provider;
    let stored = match load(&rqctx, &visit, &name).await {
        Ok(stored) => stored,
        Err(answer) => return Ok(*answer),
    };
    if let Err(error) = visit.caller.may_write(&name) {
        return Ok(visit.error(error));
    }
    let viewer = visit.viewer();
    let body = html! {
        p { "Delete " strong { (name) } " and its " (stored.keys().len()) " keys? Its history is kept: it can be restored from the Deleted page." }
        form method="post" action=(provider_link(&name, "/delete")) {
            (viewer.form_token())
            input type="hidden" name="_etag" value=(stored.etag);
            button type="submit" class="danger" { "Delete " (name) }
            " " a href=(provider_link(&name, "")) { "Cancel" }
        }
    };
    Ok(visit.finish(page::respond(
        StatusCode::OK,
        page::frame(&format!("Delete {name}"), Some(&viewer), body),
    )))
}

/// `POST /ui/providers/{provider}/delete`: deletes it, if it is still as confirmed.
pub async fn delete(
    rqctx: RequestContext<Context>,
    path: Path<ProviderPath>,
    form: FormBody,
) -> Answer {
    let visit = visit!(rqctx);
    let posted = posted!(visit, rqctx, form);
    let name = path.into_inner().provider;
    let etag = posted.get("_etag").cloned().unwrap_or_default();
    let conditions = WriteConditions {
        if_match: Some(format!("\"{etag}\"")),
        if_none_match: None,
    };
    let outcome = match visit.caller.may_write(&name) {
        Ok(()) => {
            write_from(
                &rqctx,
                &visit.caller,
                name.clone(),
                Source::Api,
                move |name, current| {
                    let current = current.ok_or_else(|| Error::NotFound(name.to_string()))?;
                    conditions.check(Some(current))?;
                    Ok(Change::Delete)
                },
            )
            .await
        }
        Err(error) => Err(error),
    };
    Ok(match outcome {
        Ok(_) => visit.finish(page::see_other("/ui")),
        Err(error) => visit.error(error),
    })
}
