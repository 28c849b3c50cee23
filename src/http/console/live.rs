//! `GET /ui/changes`: the change feed for the console's own script, under the session's token
//! (a page's script cannot send a bearer token: it never holds one). Same answer as
//! `/api/changes`, waiting at most 25 seconds.

use std::time::Duration;

use dropshot::{Body, Query, RequestContext};
use http::{Response, StatusCode, header};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Answer, page};
use crate::domain::error::Error;
use crate::http::context::Context;
use crate::http::error::ApiError;
use crate::http::handlers::changes_after;

/// The longest the console's script waits for a change.
const WAIT: Duration = Duration::from_secs(25);

/// Where the script's watch starts.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LiveQuery {
    /// The last revision the page knows of.
    pub since: i64,
}

/// The changes after `since` this session may see (JSON, as the change feed's body).
pub async fn changes(rqctx: RequestContext<Context>, query: Query<LiveQuery>) -> Answer {
    let visit = match super::Visit::begin(&rqctx) {
        Ok(visit) => visit,
        Err(_) => return Err(ApiError::from(Error::Unauthorized)),
    };
    let since = query.into_inner().since.max(0);
    let answer = changes_after(&rqctx, visit.caller.clone(), since, WAIT).await?;
    let body =
        serde_json::to_vec(&answer).map_err(|e| ApiError::from(Error::Store(e.to_string())))?;
    Ok(visit.finish(
        page::with_headers(Response::builder().status(StatusCode::OK))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .map_err(|e| ApiError::from(Error::Store(e.to_string())))?,
    ))
}
