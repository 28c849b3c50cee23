//! The web console under `/ui`: pages the server renders itself (maud, over the generated
//! models) and plain HTML forms, so that it works without JavaScript and a spec change that
//! breaks it breaks `cargo build`. Its own few KB of script only adds the live notice.
//!
//! Every page acts as a caller of the API would: through the same domain rules, store and
//! scopes, with the token of its session ([`session`]). A post must come from this origin
//! (`Origin`, or `Sec-Fetch-Site: same-origin`) and carry its session's form token, or nothing
//! is done. The endpoints are hidden from the API's description; `/api` stays bearer-only.

mod assets;
mod form_markup;
mod gateways;
mod history;
mod keys;
mod live;
mod page;
mod providers;
mod references;
mod schema_form;
pub mod session;
mod state;

use dropshot::{ApiDescription, ApiEndpoint, ApiEndpointVersions, Body, RequestContext};
use http::{Method, Response, StatusCode, header};
use maud::html;

use crate::domain::error::Error;
use crate::domain::tokens::Caller;
use crate::http::context::Context;
use crate::http::error::ApiError;
use crate::http::json_body::FormBody;
use page::Viewer;
use schema_form::Posted;
pub use session::Console;
use session::Session;

/// What a console handler answers (an error page is an answer too).
type Answer = Result<Response<Body>, ApiError>;

/// Registers the console's endpoints, hidden from the API's description.
pub fn register(api: &mut ApiDescription<Context>) {
    macro_rules! route {
        ($method:ident, $path:literal, $handler:path) => {
            api.register(
                ApiEndpoint::new(
                    stringify!($handler).replace("::", "_"),
                    $handler,
                    Method::$method,
                    "application/x-www-form-urlencoded",
                    $path,
                    ApiEndpointVersions::All,
                )
                .visible(false),
            )
            .expect("a console endpoint registers");
        };
    }
    route!(GET, "/ui", providers::list);
    route!(GET, "/ui/login", login_page);
    route!(POST, "/ui/login", login);
    route!(POST, "/ui/logout", logout);
    route!(GET, "/ui/assets/{file}", assets::serve);
    route!(GET, "/ui/changes", live::changes);
    route!(GET, "/ui/sync", gateways::list);
    route!(GET, "/ui/new", providers::new_form);
    route!(POST, "/ui/new", providers::create);
    route!(GET, "/ui/deleted", history::deleted);
    route!(POST, "/ui/deleted/{provider}", history::restore);
    route!(GET, "/ui/providers/{provider}", providers::show);
    route!(GET, "/ui/providers/{provider}/edit", providers::edit_form);
    route!(POST, "/ui/providers/{provider}/edit", providers::update);
    route!(
        GET,
        "/ui/providers/{provider}/delete",
        providers::delete_form
    );
    route!(POST, "/ui/providers/{provider}/delete", providers::delete);
    route!(GET, "/ui/providers/{provider}/new-key", keys::new_form);
    route!(POST, "/ui/providers/{provider}/new-key", keys::create);
    route!(
        GET,
        "/ui/providers/{provider}/keys/{key_id}",
        keys::edit_form
    );
    route!(POST, "/ui/providers/{provider}/keys/{key_id}", keys::update);
    route!(
        POST,
        "/ui/providers/{provider}/keys/{key_id}/toggle",
        keys::toggle
    );
    route!(
        GET,
        "/ui/providers/{provider}/keys/{key_id}/rotate",
        keys::rotate_form
    );
    route!(
        POST,
        "/ui/providers/{provider}/keys/{key_id}/rotate",
        keys::rotate
    );
    route!(
        GET,
        "/ui/providers/{provider}/keys/{key_id}/delete",
        keys::delete_form
    );
    route!(
        POST,
        "/ui/providers/{provider}/keys/{key_id}/delete",
        keys::delete
    );
    route!(GET, "/ui/providers/{provider}/history", history::list);
    route!(GET, "/ui/providers/{provider}/diff", history::diff);
    route!(POST, "/ui/providers/{provider}/rollback", history::rollback);
}

/// One request of a browser with a session.
pub struct Visit {
    id: String,
    session: Session,
    pub caller: Caller,
    /// The store's latest revision when the request came: where a page's live notice starts.
    since: i64,
    /// The cookie to set with the answer (a session opened by this request).
    new_cookie: Option<String>,
}

impl Visit {
    /// The visit of this request, or the answer it gets instead: with tokens in force and no
    /// session, a GET goes to the login page and a post is refused.
    pub fn begin(rqctx: &RequestContext<Context>) -> Result<Visit, Box<Response<Body>>> {
        let context = rqctx.context();
        let headers = rqctx.request.headers();
        let since = *context.store.watch().borrow();
        let found = session::cookie(headers)
            .and_then(|id| context.console.sessions.find(&id, &context.tokens));
        if let Some(found) = found {
            return Ok(Visit {
                id: found.id,
                session: found.session,
                caller: found.caller,
                since,
                new_cookie: None,
            });
        }
        if !context.tokens.required() {
            let (id, session) = context.console.sessions.open(None);
            return Ok(Visit {
                new_cookie: Some(session::set_cookie(Some(&id), context.console.https)),
                id,
                session,
                caller: Caller::Open,
                since,
            });
        }
        if rqctx.request.method() == Method::GET {
            return Err(Box::new(page::see_other("/ui/login")));
        }
        Err(Box::new(page::message(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            None,
            "Your session has ended (it expired, or its token was revoked or rotated). Log in again; nothing was changed.",
        )))
    }

    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            caller: &self.caller,
            form_token: &self.session.form_token,
            since: self.since,
        }
    }

    /// `response`, with the session's cookie when this request opened it.
    pub fn finish(&self, mut response: Response<Body>) -> Response<Body> {
        if let Some(cookie) = &self.new_cookie
            && let Ok(value) = http::HeaderValue::from_str(cookie)
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }

    /// An error as a page, in the API's words.
    pub fn error(&self, error: Error) -> Response<Body> {
        let error = ApiError::from(error);
        let title = error.status().canonical_reason().unwrap_or("Error");
        self.finish(page::message(
            error.status(),
            title,
            Some(&self.viewer()),
            &error.body().error.message,
        ))
    }

    /// The fields of a post, once it is shown to come from this console: the same origin and
    /// this session's form token. Otherwise the refusal to answer with.
    pub fn posted(
        &self,
        rqctx: &RequestContext<Context>,
        form: FormBody,
    ) -> Result<Posted, Box<Response<Body>>> {
        let posted: Posted = form.0.into_iter().collect();
        if !same_origin(rqctx) {
            return Err(Box::new(
                self.refused("The form was not sent from this console's page."),
            ));
        }
        let token = posted.get("_csrf").map_or("", String::as_str);
        if !self.session.form_token_is(token) {
            return Err(Box::new(self.refused(
                "The form's token is not this session's: reload the page and try again.",
            )));
        }
        Ok(posted)
    }

    fn refused(&self, why: &str) -> Response<Body> {
        self.finish(page::message(
            StatusCode::FORBIDDEN,
            "Refused",
            Some(&self.viewer()),
            &format!("{why} Nothing was changed."),
        ))
    }
}

/// Whether a request comes from a page of this origin: its `Origin` is this server's (as the
/// browser addressed it), or, without `Origin`, the browser says `Sec-Fetch-Site: same-origin`.
fn same_origin(rqctx: &RequestContext<Context>) -> bool {
    let headers = rqctx.request.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text("host").or_else(|| rqctx.request.uri().authority().map(|a| a.as_str()));
    // `Origin: null` (a sandboxed or privacy-restricted page) names no origin: the browser's
    // own `Sec-Fetch-Site` decides then, as without `Origin`.
    let origin = text("origin").filter(|o| *o != "null");
    match (origin, host) {
        (Some(origin), Some(host)) => {
            let scheme = if rqctx.context().console.https {
                "https"
            } else {
                "http"
            };
            origin == format!("{scheme}://{host}")
        }
        (Some(_), None) => false,
        (None, _) => text("sec-fetch-site") == Some("same-origin"),
    }
}

/// `GET /ui/login`: the login page (on a server without tokens, the provider list).
async fn login_page(rqctx: RequestContext<Context>) -> Answer {
    if !rqctx.context().tokens.required() {
        return Ok(page::see_other("/ui"));
    }
    Ok(login_view(StatusCode::OK, None))
}

fn login_view(status: StatusCode, error: Option<&str>) -> Response<Body> {
    page::respond(
        status,
        page::frame(
            "Log in",
            None,
            html! {
                form method="post" action="/ui/login" class="login" {
                    @if let Some(error) = error {
                        p class="error" role="alert" id="token-error" { (error) }
                    }
                    label for="token" { "Token" }
                    input type="password" id="token" name="token" required autocomplete="current-password"
                        aria-describedby=[error.map(|_| "token-error")];
                    p class="help" { "A token of this server's tokens file. It opens a session of 30 minutes, which ends when the token is revoked or rotated." }
                    button type="submit" { "Log in" }
                }
            },
        ),
    )
}

/// `POST /ui/login`: a token in force opens a session (a new one: any session the browser had
/// is ended).
async fn login(rqctx: RequestContext<Context>, form: FormBody) -> Answer {
    let context = rqctx.context();
    if !same_origin(&rqctx) {
        return Ok(page::message(
            StatusCode::FORBIDDEN,
            "Refused",
            None,
            "The form was not sent from this console's page. Nothing was changed.",
        ));
    }
    if !context.tokens.required() {
        return Ok(page::see_other("/ui"));
    }
    if let Some(old) = session::cookie(rqctx.request.headers()) {
        context.console.sessions.close(&old);
    }
    let token = form
        .0
        .into_iter()
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value)
        .unwrap_or_default();
    let found = context
        .tokens
        .current()
        .authenticate(token.trim(), chrono::Utc::now())
        .cloned();
    let Ok(token) = found else {
        slog::debug!(rqctx.log, "console login refused");
        return Ok(login_view(
            StatusCode::UNAUTHORIZED,
            Some("This token is not one the server holds in force (unknown, revoked or expired)."),
        ));
    };
    slog::info!(rqctx.log, "console session opened"; "token" => token.name());
    let (id, _) = context.console.sessions.open(Some(token));
    let mut response = page::see_other("/ui");
    response.headers_mut().append(
        header::SET_COOKIE,
        http::HeaderValue::from_str(&session::set_cookie(Some(&id), context.console.https))
            .map_err(|e| ApiError::from(Error::Store(e.to_string())))?,
    );
    Ok(response)
}

/// `POST /ui/logout`: ends the session.
async fn logout(rqctx: RequestContext<Context>, form: FormBody) -> Answer {
    let visit = match Visit::begin(&rqctx) {
        Ok(visit) => visit,
        Err(answer) => return Ok(*answer),
    };
    if let Err(refused) = visit.posted(&rqctx, form) {
        return Ok(*refused);
    }
    let context = rqctx.context();
    context.console.sessions.close(&visit.id);
    let mut response = page::see_other("/ui/login");
    response.headers_mut().append(
        header::SET_COOKIE,
        http::HeaderValue::from_str(&session::set_cookie(None, context.console.https))
            .map_err(|e| ApiError::from(Error::Store(e.to_string())))?,
    );
    Ok(response)
}

/// Begins a visit, or answers instead: for handlers, `let visit = visit!(rqctx);`.
macro_rules! visit {
    ($rqctx:expr) => {
        match $crate::http::console::Visit::begin(&$rqctx) {
            Ok(visit) => visit,
            Err(answer) => return Ok(*answer),
        }
    };
}
pub(crate) use visit;

/// A post's fields once shown to come from this console, or its refusal:
/// `let posted = posted!(visit, rqctx, form);`.
macro_rules! posted {
    ($visit:expr, $rqctx:expr, $form:expr) => {
        match $visit.posted(&$rqctx, $form) {
            Ok(posted) => posted,
            Err(answer) => return Ok(*answer),
        }
    };
}
pub(crate) use posted;
