//! The frame of every console page (its header, banners and assets) and the headers every
//! console answer carries: a strict Content-Security-Policy (no inline script or style, no
//! other origin), `no-store`, no framing, no referrer to another origin, no sniffing.

use dropshot::Body;
use http::{Response, StatusCode, header};
use maud::{DOCTYPE, Markup, html};

use crate::domain::tokens::{Caller, Scope};

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Who is looking, as a page shows it.
pub struct Viewer<'a> {
    pub caller: &'a Caller,
    pub form_token: &'a str,
    /// The store's latest revision as the page is drawn.
    pub since: i64,
}

impl Viewer<'_> {
    /// Whether this viewer may change anything at all (a `read` token may not).
    pub fn writes(&self) -> bool {
        self.caller.has(Scope::Write)
    }

    /// Whether this viewer may change provider `name`.
    pub fn writes_to(&self, name: &str) -> bool {
        self.caller.allows(Scope::Write, name)
    }

    /// Where the live notice of a page showing provider `name` at `etag` goes (`editing`: a
    /// form is open on it).
    pub fn live(&self, name: &str, etag: &str, editing: bool) -> Markup {
        html! {
            div id="live" data-since=(self.since) data-provider=(name) data-etag=(etag)
                data-editing=(editing) aria-live="polite" {}
        }
    }

    /// The hidden input every form carries.
    pub fn form_token(&self) -> Markup {
        html! { input type="hidden" name="_csrf" value=(self.form_token); }
    }
}

/// A whole page: `title`, the viewer's banners, `body`.
pub fn frame(title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Bifrost providers" }
                link rel="stylesheet" href="/ui/assets/console.css";
                script src="/ui/assets/console.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    nav aria-label="Console" {
                        a href="/ui" { "Providers" }
                        @if viewer.is_some_and(|v| v.writes()) {
                            a href="/ui/new" { "New provider" }
                        }
                        a href="/ui/deleted" { "Deleted" }
                        a href="/ui/sync" { "Gateways" }
                        @if let Some(viewer) = viewer
                            && let Some(name) = viewer.caller.name() {
                            form method="post" action="/ui/logout" class="inline" {
                                (viewer.form_token())
                                span class="who" { "Signed in as " strong { (name) } }
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                @if let Some(viewer) = viewer {
                    @if matches!(viewer.caller, Caller::Open) {
                        p class="banner warn" role="note" {
                            "This server requires no token: anyone who can reach it can read and change every provider. Start it with "
                            code { "--tokens FILE" } " or " code { "--admin-token" } " to require one."
                        }
                    } @else if !viewer.writes() {
                        p class="banner" role="note" { "Read-only: this token may read, not change." }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An HTML answer with the console's headers.
pub fn respond(status: StatusCode, markup: Markup) -> Response<Body> {
    with_headers(Response::builder().status(status))
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Body::from(markup.into_string()))
        .expect("a page is a valid response")
}

/// A redirect after a post (303: the browser follows with a GET).
pub fn see_other(location: &str) -> Response<Body> {
    with_headers(Response::builder().status(StatusCode::SEE_OTHER))
        .header(header::LOCATION, location)
        .body(Body::empty())
        .expect("a redirect is a valid response")
}

/// The headers of every console answer.
pub fn with_headers(builder: http::response::Builder) -> http::response::Builder {
    builder
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::REFERRER_POLICY, "same-origin")
        .header("cross-origin-opener-policy", "same-origin")
        .header("cross-origin-resource-policy", "same-origin")
}

/// A message page: an error, or a refusal.
pub fn message(
    status: StatusCode,
    title: &str,
    viewer: Option<&Viewer>,
    text: &str,
) -> Response<Body> {
    respond(
        status,
        frame(
            title,
            viewer,
            html! {
                p role="alert" { (text) }
                p { a href="/ui" { "Back to the providers" } }
            },
        ),
    )
}

/// What a path segment must encode: controls, space, and what would end or split it.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

/// A path segment, percent-encoded for a link.
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// The link to a provider's page (`suffix` after it: `/edit`).
pub fn provider_link(name: &str, suffix: &str) -> String {
    format!("/ui/providers/{}{suffix}", segment(name))
}
