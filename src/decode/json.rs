//! The JSON request body extractor.
//!
//! dropshot's `TypedBody` reports a bad body as one flat message, rejects anything not labelled
//! `application/json`, and answers an oversized body with a 400. This extractor keeps
//! `TypedBody`'s place in the OpenAPI document but reads the bytes itself: an oversized body is a
//! 413, and a body that does not decode names the field at fault (`keys[2].weight`) with a message
//! from which any string the client sent has been removed, since it may have been a secret.

use dropshot::{
    ApiEndpointBodyContentType, ExclusiveExtractor, ExtractorMetadata, HttpError, RequestContext,
    ServerContext, TypedBody,
};
use http_body_util::BodyExt;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::domain::error::Error;

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
        let bytes = read_limited(request, limit).await?;
        decode(&bytes).map(JsonBody).map_err(to_http)
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        TypedBody::<T>::metadata(content_type)
    }
}

/// The 413 a request hears before any of its body is read, if it is to hear one: a client
/// waiting for `100 Continue` has not sent the body yet, and one that announces more than we
/// would drain will not be read.
pub fn refused_unread(headers: &http::HeaderMap, limit: usize) -> Option<Error> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())?;
    let waiting = headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let cap = if waiting { limit } else { DRAIN_LIMIT };
    (declared > cap as u64).then_some(Error::TooLarge(limit))
}

/// Reads the whole body, or fails with a 413 once it passes `limit` bytes.
async fn read_limited(
    request: hyper::Request<dropshot::Body>,
    limit: usize,
) -> Result<Vec<u8>, HttpError> {
    let mut body = request.into_body();
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    let deadline = tokio::time::Instant::now() + BODY_DEADLINE;
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
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            while seen < DRAIN_LIMIT {
                match tokio::time::timeout(BODY_IDLE, body.frame()).await {
                    Ok(Some(Ok(frame))) => seen += frame.data_ref().map_or(0, |d| d.len()),
                    _ => break,
                }
            }
            return Err(to_http(Error::TooLarge(limit)));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The error travels through dropshot as an `HttpError` and comes back to [`ApiError`] by its
/// `From<HttpError>`; the code, message and param survive the trip in the error's fields.
fn to_http(error: Error) -> HttpError {
    crate::http::error::ApiError::from(error).into_http_error()
}

/// Decodes a JSON body into `T`, naming the field at fault on failure. The body is first
/// brought to the form the model decodes, whichever Bifrost generation wrote it (`wire`).
pub fn decode<T: DeserializeOwned + JsonSchema>(bytes: &[u8]) -> Result<T, Error> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        Error::invalid_request(
            "invalid_json",
            format!(
                "Invalid JSON body: {}",
                without_strings(&strip_position(&e.to_string()))
            ),
        )
    })?;
    crate::decode::generations::normalize(&mut value, &T::schema_name())?;
    from_value(value, "")
}

/// Decodes a JSON value found at `base` (a dotted path, empty for a whole body) into `T`.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value, base: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| decode_error(e, base))
}

fn decode_error(error: serde_path_to_error::Error<serde_json::Error>, base: &str) -> Error {
    let path = match (base, error.path().to_string()) {
        ("", path) => path,
        (base, path) if path == "." => base.to_string(),
        (base, path) => format!("{base}.{path}"),
    };
    let inner = error.into_inner();
    let text = without_strings(&strip_position(&inner.to_string()));
    if !inner.is_data() {
        return Error::invalid_request("invalid_json", format!("Invalid JSON body: {text}"));
    }
    // The path ends at the struct that refused, or (for an unknown field) at the field itself.
    let join = |field: &str| {
        if path == "." {
            field.to_string()
        } else if path == field || path.ends_with(&format!(".{field}")) {
            path.clone()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(field) = quoted(&text, "unknown field `") {
        let param = join(field);
        return Error::invalid(
            "unknown_field",
            param.clone(),
            format!("Unknown field: {param}"),
        );
    }
    if let Some(field) = quoted(&text, "missing field `") {
        let param = join(field);
        return Error::invalid(
            "missing_field",
            param.clone(),
            format!("Missing required field: {param}"),
        );
    }
    if path == "." {
        return Error::invalid_request("invalid_body", format!("Invalid request body: {text}"));
    }
    Error::invalid(
        "invalid_field",
        path.clone(),
        format!("Invalid value for {path}: {text}"),
    )
}

/// The name in "…`name`…" that follows `prefix`, cut to a sane length.
fn quoted<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(prefix)?;
    let name = &rest[..rest.find('`')?];
    Some(&name[..name.char_indices().nth(64).map_or(name.len(), |(i, _)| i)])
}

/// serde_json appends " at line L column C"; the param already says where.
fn strip_position(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// serde quotes the offending string in its messages (`invalid type: string "sk-…"`, ``unknown
/// variant `sk-…` ``). Any string the client sent may be a secret, so each quoted string becomes
/// `a string`, and an unknown variant goes unnamed.
pub fn without_strings(text: &str) -> String {
    let text = match text.strip_prefix("unknown variant `") {
        Some(rest) => match rest.find("`, ") {
            Some(end) => format!("unknown variant, {}", &rest[end + 3..]),
            None => "unknown variant".to_string(),
        },
        None => text.to_string(),
    };
    let text = text.as_str();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("string \"") {
        out.push_str(&rest[..start]);
        let quoted = &rest[start + "string \"".len()..];
        let mut end = None;
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        out.push_str("a string");
        rest = match end {
            Some(i) => &quoted[i + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_are_removed() {
        let text = r#"invalid type: string "sk-secret\"quoted", expected a boolean"#;
        assert_eq!(
            without_strings(text),
            "invalid type: a string, expected a boolean"
        );
        let text = "unknown variant `sk-secret`, expected one of `none`, `http`";
        assert_eq!(
            without_strings(text),
            "unknown variant, expected one of `none`, `http`"
        );
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let err = decode::<crate::types::UpdateProviderRequest>(
            br#"{"network_config":{"base_urll":""}}"#,
        )
        .unwrap_err();
        match err {
            Error::Invalid { code, param, .. } => {
                assert_eq!(code, "unknown_field");
                assert_eq!(param.as_deref(), Some("network_config.base_urll"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_secret_in_the_wrong_place_is_not_echoed() {
        let err = decode::<crate::types::UpdateProviderRequest>(
            br#"{"keys":[{"weight":"sk-live-abcdefghijklmnop"}]}"#,
        )
        .unwrap_err();
        let text = format!("{err:?}");
        assert!(!text.contains("sk-live"), "{text}");
        assert!(text.contains("keys[0].weight"), "{text}");
    }
}
