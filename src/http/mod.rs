//! The HTTP layer: the API trait and its handlers, the token extractor and file, the JSON body
//! extractor, the mapping of errors to HTTP responses and the server's startup.

pub mod api;
pub mod auth;
pub mod body_budget;
pub mod conditional_headers;
pub mod console;
pub mod context;
pub mod error;
pub mod handlers;
pub mod json_body;
pub mod method_not_allowed;
pub mod metrics_endpoint;
pub mod startup;
pub mod token_file;
