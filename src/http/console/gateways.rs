//! `GET /ui/sync`: the gateways this server keeps in step (`serve --sync-to`), as
//! `/api/sync` reports them: state, lag, last success and last error of each.

use dropshot::RequestContext;
use http::StatusCode;
use maud::html;

use super::{Answer, page, visit};
use crate::domain::error::Error;
use crate::domain::tokens::Scope;
use crate::http::context::Context;
use crate::http::handlers::sync_status;

/// The gateways' status (for an `admin` token, or one that reads every provider).
pub async fn list(rqctx: RequestContext<Context>) -> Answer {
    let visit = visit!(rqctx);
    let caller = &visit.caller;
    if !(caller.has(Scope::Admin) || (caller.has(Scope::Read) && caller.sees_all())) {
        return Ok(visit.error(Error::Forbidden(
            "the sync status needs the admin scope, or read over every provider".into(),
        )));
    }
    let context = rqctx.context();
    let revision = *context.store.watch().borrow();
    let targets: Vec<_> = context
        .sync
        .status()
        .into_iter()
        .map(|status| sync_status(status, revision))
        .collect();
    let viewer = visit.viewer();
    let body = html! {
        p { "The store is at revision " (revision) "." }
        @if targets.is_empty() {
            p { "This server keeps no gateway in step (start it with " code { "--sync-to URL" } " or " code { "--sync-targets FILE" } ")." }
        } @else {
            div class="scroll" {
                table {
                    thead { tr {
                        th scope="col" { "Gateway" } th scope="col" { "State" } th scope="col" { "Generation" }
                        th scope="col" { "Applied revision" } th scope="col" { "Behind by" } th scope="col" { "Last success" } th scope="col" { "Last error" }
                    } }
                    tbody {
                        @for t in &targets {
                            tr {
                                th scope="row" { (t.target) }
                                td { span class={ "status " (t.state) } { (t.state) } }
                                td { (t.generation.as_deref().unwrap_or("not known yet")) }
                                td { (t.applied_revision.map_or_else(|| "none".to_string(), |r| r.to_string())) }
                                td { (t.lag_revisions) " revisions, " (format!("{:.1}", t.lag_seconds)) " s" }
                                td { (t.last_success_at.as_deref().unwrap_or("never")) }
                                td { @if let Some(e) = &t.last_error { (e.message) } @else { "none" } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(visit.finish(page::respond(
        StatusCode::OK,
        page::frame("Gateways", Some(&viewer), body),
    )))
}
