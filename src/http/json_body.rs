//! The JSON request body extractor.
//!
//! dropshot's `TypedBody` reports a bad body as one flat message, rejects anything not labelled
//! `application/json`, and answers an oversized body with a 400. This extractor keeps
//! `TypedBody`'s place in the OpenAPI document but reads the bytes itself: an oversized body is a
//! 413, a body that stops arriving a 408, and the bytes are decoded by [`crate::decode`], which
//! names the field at fault without quoting what the client sent.

use dropshot::{
    ApiEndpointBodyContentType, ExclusiveExtractor, ExtractorMetadata, HttpError, RequestContext,
    ServerContext, TypedBody,
};
use http_body_util::BodyExt;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::decode::decode;
use crate::domain::error::Error;
use crate::http::body_budget::Reservation;
use crate::http::error::ApiError;

/// How much of an oversized body is read and thrown away, so that the client sees the 413
/// rather than a reset connection; past this the connection is simply closed.
const DRAIN_LIMIT: usize = 64 << 20;

/// The longest pause between two parts of a body: a body that stops arriving is dropped (408),
/// and the memory it held with it.
pub const BODY_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// The longest a whole body may take to arrive (a body trickled in byte by byte included).
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// A request body decoded from JSON into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

#[async_trait::async_trait]
impl<T> ExclusiveExtractor for JsonBody<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
        request: hyper::Request<dropshot::Body>,
    ) -> Result<Self, HttpError> {
        let limit = rqctx.request_body_max_bytes();
        if let Some(refused) = refused_unread(request.headers(), limit) {
            return Err(to_http(refused));
        }
        let (bytes, _reserved) = read_limited(request, limit).await?;
        decode(&bytes).map(JsonBody).map_err(to_http)
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        TypedBody::<T>::metadata(content_type)
    }
}

/// A form's fields (`application/x-www-form-urlencoded`, the console's), read under the same
/// limit, budget and timeouts as a JSON body.
#[derive(Debug)]
pub struct FormBody(pub Vec<(String, String)>);

#[async_trait::async_trait]
impl ExclusiveExtractor for FormBody {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
        request: hyper::Request<dropshot::Body>,
    ) -> Result<Self, HttpError> {
        let limit = rqctx.request_body_max_bytes();
        if let Some(refused) = refused_unread(request.headers(), limit) {
            return Err(to_http(refused));
        }
        let (bytes, _reserved) = read_limited(request, limit).await?;
        serde_urlencoded::from_bytes(&bytes)
            .map(FormBody)
            .map_err(|_| {
                to_http(Error::invalid_request(
                    "invalid_body",
                    "The form could not be read",
                ))
            })
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        dropshot::UntypedBody::metadata(content_type)
    }
}

/// The 413 a request hears before any of its body is read, if it is to hear one: a client
/// waiting for `100 Continue` has not sent the body yet, and one that announces more than we
/// would drain will not be read.
pub fn refused_unread(headers: &http::HeaderMap, limit: usize) -> Option<Error> {
    let declared = declared_length(headers)?;
    let waiting = headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let cap = if waiting { limit } else { DRAIN_LIMIT };
    (declared > cap as u64).then_some(Error::TooLarge(limit))
}

/// Reads the whole body, or fails with a 413 once it passes `limit` bytes. The bytes are
/// reserved in the server's budget before they are held (`buffered`), and stay reserved until
/// the returned reservation is dropped, after the body is decoded.
async fn read_limited(
    request: hyper::Request<dropshot::Body>,
    limit: usize,
) -> Result<(Vec<u8>, Reservation), HttpError> {
    let declared = declared_length(request.headers());
    let mut body = request.into_body();
    let deadline = tokio::time::Instant::now() + BODY_DEADLINE;
    if declared.is_some_and(|length| length > limit as u64) {
        drain(&mut body, 0).await;
        return Err(to_http(Error::TooLarge(limit)));
    }
    let mut reserved = Reservation::default();
    let mut bytes = Vec::new();
    if let Some(length) = declared {
        let length = length as usize;
        reserved.grow(length).await.map_err(to_http)?;
        bytes.reserve_exact(length);
    }
    loop {
        let wait = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(BODY_IDLE);
        let Ok(next) = tokio::time::timeout(wait, body.frame()).await else {
            return Err(to_http(Error::BodyTimeout));
        };
        let Some(frame) = next else {
            break;
        };
        let frame = frame.map_err(|e| {
            to_http(Error::invalid_request(
                "invalid_body",
                format!("Error reading the request body: {e}"),
            ))
        })?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        let seen = bytes.len().saturating_add(chunk.len());
        if seen > limit {
            drain(&mut body, seen).await;
            return Err(to_http(Error::TooLarge(limit)));
        }
        if seen > reserved.bytes() {
            // A chunked body: reserve in doubling steps, as the vector would grow.
            let target = seen.max(2 * reserved.bytes()).clamp(64 << 10, limit);
            reserved
                .grow(target - reserved.bytes())
                .await
                .map_err(to_http)?;
            bytes.reserve_exact(target.saturating_sub(bytes.len()));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((bytes, reserved))
}

/// The body's declared length, if it declares one.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads and throws away what remains of an oversized body, up to [`DRAIN_LIMIT`] in all, so
/// that the client sees the 413 rather than a reset connection.
async fn drain(body: &mut dropshot::Body, mut seen: usize) {
    while seen < DRAIN_LIMIT {
        match tokio::time::timeout(BODY_IDLE, body.frame()).await {
            Ok(Some(Ok(frame))) => seen += frame.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
}

/// The error travels through dropshot as an `HttpError` and comes back to [`ApiError`] by its
/// `From<HttpError>`; the code, message and param survive the trip in the error's fields.
fn to_http(error: Error) -> HttpError {
    ApiError::from(error).into_http_error()
}
