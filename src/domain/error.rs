//! The one error type of the layers below HTTP: what went wrong, in words a client may read.
//!
//! It knows no status code and no transport: `http::error` maps each variant to its status and
//! Bifrost's error body, in one place. Messages never carry a secret.

/// What went wrong while handling a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is invalid: a 400 with a stable `code` and, where there is one, the dotted
    /// path of the offending field.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        param: Option<String>,
    },
    /// The server has tokens and the request carried none of them (or an expired one).
    #[error("Missing, unknown or expired token: send Authorization: Bearer TOKEN")]
    Unauthorized,
    /// The request's token may not do this (a scope it lacks, a provider outside its patterns).
    #[error("{0}")]
    Forbidden(String),
    #[error("Provider not found: {0}")]
    NotFound(String),
    #[error("Provider already exists: {0}")]
    Exists(String),
    #[error("Provider key not found: {0}")]
    KeyNotFound(String),
    #[error("Revision not found: {0}")]
    RevisionNotFound(String),
    /// The change feed no longer holds the revisions after the one asked for.
    #[error(
        "Revision {0} is older than the oldest change kept: list the providers again, then watch from the list's X-Bifrost-Revision"
    )]
    Compacted(i64),
    /// A revision newer than any the store made (the store was replaced or restored).
    #[error(
        "Revision {0} is newer than the store's latest: the store was replaced or restored; list the providers again, then watch from the list's X-Bifrost-Revision"
    )]
    UnknownRevision(i64),
    /// A key with that id, or that non-empty name, exists (the field names which).
    #[error("{message}")]
    KeyExists {
        message: String,
        param: &'static str,
    },
    #[error("Precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("Request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// The body stopped arriving, or took too long.
    #[error("The request body stopped arriving (more than 10 s between two parts, or 30 s in all)")]
    BodyTimeout,
    #[error("No route for {0}")]
    RouteNotFound(String),
    #[error("Method {0} is not allowed on this path")]
    MethodNotAllowed(String),
    /// The server holds as many request bodies as its budget allows, and none gave way in time.
    #[error("The server is holding as many request bodies as it may at once; retry the request")]
    Busy,
    /// The store failed; the detail is for the log only.
    #[error("store failure: {0}")]
    Store(String),
    /// The store does not answer (health check).
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl Error {
    /// A 400 for the field at `param`.
    pub fn invalid(
        code: &'static str,
        param: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            code,
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// A 400 that concerns the request as a whole.
    pub fn invalid_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            code,
            message: message.into(),
            param: None,
        }
    }
}
