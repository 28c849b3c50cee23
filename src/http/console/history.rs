//! A provider's history in the console: every kept revision (who, when, from where, which
//! fields), a diff of any two, a rollback to one; and the deleted providers, each restorable to
//! its last state. All from the history the API keeps; values are shown redacted, as the API
//! shows them.

use std::collections::BTreeMap;

use dropshot::{Path, Query, RequestContext};
use http::StatusCode;
use maud::html;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::page::{self, provider_link, segment};
use super::state::presented;
use super::{Answer, posted, visit};
use crate::domain::error::Error;
use crate::domain::history::Source;
use crate::domain::precondition::WriteConditions;
use crate::domain::tokens::Scope;
use crate::http::api::ProviderPath;
use crate::http::context::Context;
use crate::http::handlers::{kept_state, write_from};
use crate::http::json_body::FormBody;
use crate::store::{Change, Feed};
use crate::types::RevisionAction;

/// The most revisions a history page lists (the API's own page limit).
const PAGE: usize = 1000;

/// `GET /ui/providers/{provider}/history`: every kept revision, newest first, with a diff form
/// and a rollback button for each.
pub async fn list(rqctx: RequestContext<Context>, path: Path<ProviderPath>) -> Answer {
    let visit = visit!(rqctx);
    let name = path.into_inner().provider;
    if !visit.caller.allows(Scope::Read, &name) {
        return Ok(visit.error(Error::NotFound(name)));
    }
    let store = &rqctx.context().store;
    let (revisions, total) = match store.history(&name, PAGE, None).await {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(visit.error(Error::NotFound(name))),
        Err(error) => return Ok(visit.error(error)),
    };
    let current = store.get(&name).await.ok().flatten();
    let viewer = visit.viewer();
    let writes = viewer.writes_to(&name);
    let newest = revisions.first().map(|r| r.revision);
    let body = html! {
        p {
            (total) " revisions kept. "
            @if current.is_some() { a href=(provider_link(&name, "")) { "Back to " (name) } }
            @else { "The provider is deleted: " a href="/ui/deleted" { "restore it from the Deleted page" } "." }
        }
        form method="get" action=(provider_link(&name, "/diff")) class="diff" {
            fieldset {
                legend { "Compare two revisions" }
                label for="from" { "From" }
                select id="from" name="from" {
                    @for (i, r) in revisions.iter().enumerate() {
                        option value=(r.revision) selected[i == 1] { (r.revision) " (" (r.at) ")" }
                    }
                }
                label for="to" { "To" }
                select id="to" name="to" {
                    @for (i, r) in revisions.iter().enumerate() {
                        option value=(r.revision) selected[i == 0] { (r.revision) " (" (r.at) ")" }
                    }
                }
                button type="submit" { "Show the diff" }
            }
        }
        div class="scroll" {
            table {
                caption { "Revisions of " (name) ", newest first" }
                thead { tr { th scope="col" { "Revision" } th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Source" } th scope="col" { "Action" } th scope="col" { "Changed fields" } @if writes { th scope="col" { "Roll back" } } } }
                tbody {
                    @for r in &revisions {
                        tr {
                            th scope="row" { (r.revision) }
                            td { time datetime=(r.at) { (r.at) } }
                            td { (r.actor) @if let Some(u) = &r.unverified_actor { " (says " (u) ")" } }
                            td { (r.source.as_str()) }
                            td { (action(r.action)) }
                            td { @if r.changed.is_empty() { "none" } @else { (r.changed.join(", ")) } }
                            @if writes {
                                td {
                                    @if r.action != RevisionAction::Delete && Some(r.revision) != newest {
                                        @if let Some(current) = &current {
                                            form method="post" action=(provider_link(&name, "/rollback")) class="inline" {
                                                (viewer.form_token())
                                                input type="hidden" name="revision" value=(r.revision);
                                                input type="hidden" name="_etag" value=(current.etag);
                                                button type="submit" { "Roll back to " (r.revision) }
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
    };
    Ok(visit.finish(page::respond(
        StatusCode::OK,
        page::frame(&format!("History of {name}"), Some(&viewer), body),
    )))
}

fn action(action: RevisionAction) -> &'static str {
    match action {
        RevisionAction::Create => "create",
        RevisionAction::Update => "update",
        RevisionAction::Delete => "delete",
    }
}

/// The revisions a diff compares.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DiffQuery {
    pub from: i64,
    pub to: i64,
}

/// `GET /ui/providers/{provider}/diff?from=&to=`: the fields two revisions differ in, with
/// each one's value (redacted, as the API shows it).
pub async fn diff(
    rqctx: RequestContext<Context>,
    path: Path<ProviderPath>,
    query: Query<DiffQuery>,
) -> Answer {
    let visit = visit!(rqctx);
    let name = path.into_inner().provider;
    let DiffQuery { from, to } = query.into_inner();
    if !visit.caller.allows(Scope::Read, &name) {
        return Ok(visit.error(Error::NotFound(name)));
    }
    let mut sides = Vec::new();
    for revision in [from, to] {
        match rqctx.context().store.revision(&name, revision).await {
            Ok(Some(kept)) => {
                sides.push(kept.state.map(|s| flat(&presented(&s))).unwrap_or_default())
            }
            Ok(None) => {
                return Ok(visit.error(Error::RevisionNotFound(format!("{name}@{revision}"))));
            }
            Err(error) => return Ok(visit.error(error)),
        }
    }
    let (a, b) = (&sides[0], &sides[1]);
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    let rows: Vec<_> = paths
        .into_iter()
        .filter(|p| a.get(*p) != b.get(*p))
        .collect();
    let viewer = visit.viewer();
    let body = html! {
        p { a href=(provider_link(&name, "/history")) { "Back to the history" } }
        @if rows.is_empty() {
            p { "Revisions " (from) " and " (to) " hold the same configuration." }
        } @else {
            div class="scroll" {
                table class="diff" {
                    caption { (rows.len()) " fields differ" }
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Revision " (from) } th scope="col" { "Revision " (to) } } }
                    tbody {
                        @for p in rows {
                            tr {
                                th scope="row" { code { (p) } }
                                td class="old" { @if let Some(v) = a.get(p) { (v) } @else { em { "absent" } } }
                                td class="new" { @if let Some(v) = b.get(p) { (v) } @else { em { "absent" } } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(visit.finish(page::respond(
        StatusCode::OK,
        page::frame(
            &format!("{name}: revision {from} against {to}"),
            Some(&viewer),
            body,
        ),
    )))
}

/// Every leaf of a JSON value by its dotted path (a key by its id).
fn flat(value: &Value) -> BTreeMap<String, String> {
    fn walk(value: &Value, path: String, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(members) if !members.is_empty() => {
                for (k, v) in members {
                    let next = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(v, next, out);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (i, v) in items.iter().enumerate() {
                    let label = v["id"].as_str().map_or_else(|| i.to_string(), String::from);
                    walk(v, format!("{path}[{label}]"), out);
                }
            }
            Value::Null => {}
            Value::String(s) => {
                out.insert(path, s.clone());
            }
            other => {
                out.insert(path, other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(value, String::new(), &mut out);
    out
}

/// `POST /ui/providers/{provider}/rollback`: the provider back to a kept revision's state, if
/// it is still as the page showed it.
pub async fn rollback(
    rqctx: RequestContext<Context>,
    path: Path<ProviderPath>,
    form: FormBody,
) -> Answer {
    let visit = visit!(rqctx);
    let posted = posted!(visit, rqctx, form);
    let name = path.into_inner().provider;
    let revision = posted
        .get("revision")
        .and_then(|r| r.parse::<i64>().ok())
        .unwrap_or(0);
    let etag = posted.get("_etag").cloned().unwrap_or_default();
    let conditions = WriteConditions {
        if_match: Some(format!("\"{etag}\"")),
        if_none_match: None,
    };
    restore_to(&rqctx, &visit, &name, revision, conditions).await
}

async fn restore_to(
    rqctx: &RequestContext<Context>,
    visit: &super::Visit,
    name: &str,
    revision: i64,
    conditions: WriteConditions,
) -> Answer {
    if let Err(error) = visit.caller.may_write(name) {
        return Ok(visit.error(error));
    }
    let target = match kept_state(rqctx, name, revision).await {
        Ok(target) => target,
        Err(error) => return Ok(visit.error(error)),
    };
    let outcome = write_from(
        rqctx,
        &visit.caller,
        name.to_string(),
        Source::Rollback,
        move |_, current| {
            conditions.check(current)?;
            Ok(Change::Put(Box::new(target)))
        },
    )
    .await;
    Ok(match outcome {
        Ok(_) => visit.finish(page::see_other(&provider_link(name, ""))),
        Err(error) => visit.error(error),
    })
}

/// A deleted provider: when, by whom, and the last revision that left a state.
struct Deleted {
    name: String,
    at: String,
    actor: String,
    restorable: Option<i64>,
}

/// `GET /ui/deleted`: the providers whose last change deleted them, each with a restore button.
pub async fn deleted(rqctx: RequestContext<Context>) -> Answer {
    let visit = visit!(rqctx);
    let store = &rqctx.context().store;
    let mut last: BTreeMap<String, RevisionAction> = BTreeMap::new();
    let mut since = 0;
    let mut compacted = false;
    loop {
        match store.changes(since, PAGE).await {
            Ok(Feed::Changes(changes, _)) => {
                let Some(end) = changes.last().map(|c| c.revision) else {
                    break;
                };
                for change in changes {
                    last.insert(change.provider, change.action);
                }
                since = end;
            }
            Ok(Feed::Compacted) => {
                compacted = true;
                break;
            }
            Err(error) => return Ok(visit.error(error)),
        }
    }
    let mut gone = Vec::new();
    for (name, action) in last {
        if action != RevisionAction::Delete || !visit.caller.allows(Scope::Read, &name) {
            continue;
        }
        let Ok(Some((revisions, _))) = store.history(&name, PAGE, None).await else {
            continue;
        };
        let Some(deletion) = revisions.first() else {
            continue;
        };
        gone.push(Deleted {
            at: deletion.at.clone(),
            actor: deletion.actor.clone(),
            restorable: revisions
                .iter()
                .find(|r| r.action != RevisionAction::Delete)
                .map(|r| r.revision),
            name,
        });
    }
    let viewer = visit.viewer();
    let body = html! {
        @if compacted { p role="note" { "The change feed no longer reaches back to the first revision: providers deleted before its oldest kept change are not listed." } }
        @if gone.is_empty() {
            p { "No deleted providers." }
        } @else {
            div class="scroll" {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Deleted" } th scope="col" { "By" } th scope="col" { "Restore" } } }
                    tbody {
                        @for d in &gone {
                            tr {
                                th scope="row" { a href=(provider_link(&d.name, "/history")) { (d.name) } }
                                td { time datetime=(d.at) { (d.at) } }
                                td { (d.actor) }
                                td {
                                    @match d.restorable {
                                        Some(revision) if viewer.writes_to(&d.name) => {
                                            form method="post" action=(format!("/ui/deleted/{}", segment(&d.name))) class="inline" {
                                                (viewer.form_token())
                                                input type="hidden" name="revision" value=(revision);
                                                button type="submit" { "Restore " (d.name) " (revision " (revision) ")" }
                                            }
                                        }
                                        Some(_) => "read-only",
                                        None => "no kept state",
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
        page::frame("Deleted providers", Some(&viewer), body),
    )))
}

/// `POST /ui/deleted/{provider}`: a deleted provider back as a kept revision left it, if it is
/// still deleted.
pub async fn restore(
    rqctx: RequestContext<Context>,
    path: Path<ProviderPath>,
    form: FormBody,
) -> Answer {
    let visit = visit!(rqctx);
    let posted = posted!(visit, rqctx, form);
    let name = path.into_inner().provider;
    let revision = posted
        .get("revision")
        .and_then(|r| r.parse::<i64>().ok())
        .unwrap_or(0);
    let conditions = WriteConditions {
        if_match: None,
        if_none_match: Some("*".into()),
    };
    restore_to(&rqctx, &visit, &name, revision, conditions).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_flat_view_names_keys_by_id() {
        let flat = super::flat(
            &serde_json::json!({"keys": [{"id": "k1", "weight": 1.0}], "network_config": {"base_url": "x"}}),
        );
        assert_eq!(flat["keys[k1].weight"], "1.0");
        assert_eq!(flat["network_config.base_url"], "x");
    }
}
