//! The HTTP layer: the API trait, its handlers, the admin-token extractor and startup.

pub mod api;
pub mod auth;
pub mod handlers;
pub mod method_not_allowed;
