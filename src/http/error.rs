//! The one place where errors become HTTP responses.
//!
//! Every failure, dropshot's own included (bad path, unknown route, wrong method, oversized or
//! malformed body), leaves as Bifrost's error body: `{"is_bifrost_error":false,"status_code":N,
//! "error":{"message","code","param"},"extra_fields":{}}`. Messages never carry a secret; a 500
//! never shows internals (those go to the log, which carries no secret either).

use dropshot::{ErrorStatusCode, HttpError, HttpResponseError};
use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::error::Error;
use crate::types::{BifrostError, BifrostErrorExtraFields, ErrorField};

/// The HTTP form of an [`Error`]: a status and Bifrost's error body. Handlers return it; dropshot
/// serializes it as the `BifrostError` schema.
#[derive(Debug)]
pub struct ApiError {
    status: ErrorStatusCode,
    body: BifrostError,
    /// What the log shows; for a 500 more than the body does, never a secret.
    internal: String,
}

impl ApiError {
    fn new(status: ErrorStatusCode, code: &str, message: String, param: Option<String>) -> Self {
        let internal = message.clone();
        Self::with_internal(status, code, message, param, internal)
    }

    fn with_internal(
        status: ErrorStatusCode,
        code: &str,
        message: String,
        param: Option<String>,
        internal: String,
    ) -> Self {
        let body = BifrostError {
            is_bifrost_error: false,
            status_code: Some(i64::from(status.as_u16())),
            error: ErrorField {
                code: Some(code.to_string()),
                message,
                param: param.map(serde_json::Value::String),
            },
            extra_fields: BifrostErrorExtraFields::default(),
        };
        ApiError {
            status,
            body,
            internal,
        }
    }

    /// The response status.
    pub fn status(&self) -> http::StatusCode {
        self.status.as_status()
    }

    /// The response body.
    pub fn body(&self) -> &BifrostError {
        &self.body
    }

    /// What the log shows of it (never a secret).
    pub fn internal(&self) -> &str {
        &self.internal
    }

    /// The whole response, with extra headers (for answers that need one, such as a 405's
    /// `Allow`).
    pub fn into_response(
        self,
        headers: &[(http::HeaderName, String)],
    ) -> http::Response<dropshot::Body> {
        let mut response = http::Response::builder()
            .status(self.status.as_u16())
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            response = response.header(name, value);
        }
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        response
            .body(dropshot::Body::from(body))
            .unwrap_or_else(|_| http::Response::new(dropshot::Body::empty()))
    }

    /// For extractors, which must fail with an `HttpError`: the error field travels as JSON in
    /// the internal message, marked by `error_code`, and `From<HttpError>` restores it whole.
    pub fn into_http_error(self) -> HttpError {
        HttpError {
            status_code: self.status,
            error_code: Some(CARRIED.to_string()),
            external_message: self.body.error.message.clone(),
            internal_message: serde_json::to_string(&self.body.error).unwrap_or_default(),
            headers: None,
        }
    }
}

/// Marks an `HttpError` made by [`ApiError::into_http_error`].
const CARRIED: &str = "bifrost_error";

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let internal = error.to_string();
        match error {
            Error::Invalid {
                code,
                message,
                param,
            } => ApiError::new(ErrorStatusCode::BAD_REQUEST, code, message, param),
            Error::Unauthorized => ApiError::new(
                ErrorStatusCode::UNAUTHORIZED,
                "unauthorized",
                internal,
                None,
            ),
            Error::Forbidden(_) => {
                ApiError::new(ErrorStatusCode::FORBIDDEN, "forbidden", internal, None)
            }
            Error::NotFound(_) => ApiError::new(
                ErrorStatusCode::NOT_FOUND,
                "provider_not_found",
                internal,
                None,
            ),
            Error::Exists(_) => ApiError::new(
                ErrorStatusCode::CONFLICT,
                "provider_already_exists",
                internal,
                Some("provider".to_string()),
            ),
            Error::KeyNotFound(_) => {
                ApiError::new(ErrorStatusCode::NOT_FOUND, "key_not_found", internal, None)
            }
            Error::RevisionNotFound(_) => ApiError::new(
                ErrorStatusCode::NOT_FOUND,
                "revision_not_found",
                internal,
                None,
            ),
            Error::Compacted(_) => ApiError::new(
                ErrorStatusCode::from_u16(410).expect("410 is an error status"),
                "revision_compacted",
                internal,
                Some("since".to_string()),
            ),
            Error::UnknownRevision(_) => ApiError::new(
                ErrorStatusCode::from_u16(410).expect("410 is an error status"),
                "revision_unknown",
                internal,
                Some("since".to_string()),
            ),
            Error::KeyExists { message, param } => ApiError::new(
                ErrorStatusCode::CONFLICT,
                "key_already_exists",
                message,
                Some(param.to_string()),
            ),
            Error::PreconditionFailed(_) => ApiError::new(
                ErrorStatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                internal,
                None,
            ),
            Error::RouteNotFound(_) => ApiError::new(
                ErrorStatusCode::NOT_FOUND,
                "route_not_found",
                internal,
                None,
            ),
            Error::MethodNotAllowed(_) => ApiError::new(
                ErrorStatusCode::from_u16(405).expect("405 is an error status"),
                "method_not_allowed",
                internal,
                None,
            ),
            Error::BodyTimeout => ApiError::new(
                ErrorStatusCode::from_u16(408).expect("408 is an error status"),
                "body_timeout",
                internal,
                None,
            ),
            Error::TooLarge(_) => ApiError::new(
                ErrorStatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                internal,
                None,
            ),
            Error::Busy => ApiError::new(
                ErrorStatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                internal,
                None,
            ),
            Error::Store(_) => ApiError::with_internal(
                ErrorStatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "The provider store failed; retry the request".to_string(),
                None,
                internal,
            ),
            Error::Unavailable(_) => ApiError::with_internal(
                ErrorStatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "The provider store does not answer".to_string(),
                None,
                internal,
            ),
        }
    }
}

/// dropshot's own errors: routing, path parameters, request bodies, panics.
impl From<HttpError> for ApiError {
    fn from(error: HttpError) -> Self {
        let status = error.status_code;
        if error.error_code.as_deref() == Some(CARRIED)
            && let Ok(field) = serde_json::from_str::<ErrorField>(&error.internal_message)
        {
            return ApiError::new(
                status,
                field.code.as_deref().unwrap_or_default(),
                field.message,
                field
                    .param
                    .and_then(|param| param.as_str().map(str::to_string)),
            );
        }
        let code = match status.as_u16() {
            404 => "route_not_found",
            405 => "method_not_allowed",
            413 => "payload_too_large",
            400..=499 => "invalid_request",
            _ => "internal_error",
        };
        let message = if status.is_server_error() {
            "Internal server error".to_string()
        } else {
            error.external_message
        };
        ApiError::with_internal(status, code, message, None, error.internal_message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.internal)
    }
}

impl Serialize for ApiError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.body.serialize(serializer)
    }
}

impl JsonSchema for ApiError {
    fn schema_name() -> String {
        BifrostError::schema_name()
    }

    fn json_schema(generator: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        BifrostError::json_schema(generator)
    }
}

impl HttpResponseError for ApiError {
    fn status_code(&self) -> ErrorStatusCode {
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_shows_no_internals() {
        let error = ApiError::from(Error::Store(
            "disk I/O error in /var/lib/secret/providers.db".into(),
        ));
        assert_eq!(error.status_code().as_u16(), 500);
        let body = serde_json::to_value(&error).unwrap();
        assert_eq!(body["error"]["code"], "internal_error");
        assert!(!body.to_string().contains("/var/lib"), "{body}");
        assert!(
            error.to_string().contains("disk I/O error"),
            "the log keeps the detail"
        );
    }

    #[test]
    fn errors_survive_the_trip_through_dropshot() {
        let error = ApiError::from(Error::invalid(
            "invalid_weight",
            "keys[1].weight",
            "bad weight",
        ));
        let back = ApiError::from(error.into_http_error());
        assert_eq!(back.status_code().as_u16(), 400);
        assert_eq!(back.body().error.code.as_deref(), Some("invalid_weight"));
        assert_eq!(
            back.body().error.param,
            Some(serde_json::json!("keys[1].weight"))
        );
    }

    #[test]
    fn dropshot_errors_get_the_contract_body() {
        let error = ApiError::from(HttpError::for_bad_request(None, "bad path".into()));
        let body = serde_json::to_value(&error).unwrap();
        assert_eq!(body["status_code"], 400);
        assert_eq!(body["is_bifrost_error"], false);
        assert_eq!(body["error"]["code"], "invalid_request");
        assert_eq!(body["extra_fields"], serde_json::json!({}));
    }
}
