//! The console's two static files, built into the binary: its style sheet and its script.

use dropshot::{Body, Path, RequestContext};
use http::{Response, StatusCode, header};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Answer, page};
use crate::http::context::Context;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The `{file}` of an asset's path.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AssetPath {
    pub file: String,
}

/// `GET /ui/assets/{file}`.
pub async fn serve(_rqctx: RequestContext<Context>, path: Path<AssetPath>) -> Answer {
    let (body, content_type) = match path.into_inner().file.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => {
            return Ok(page::message(
                StatusCode::NOT_FOUND,
                "Not found",
                None,
                "No such file.",
            ));
        }
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, page::CSP)
        .body(Body::from(body))
        .expect("an asset is a valid response"))
}
