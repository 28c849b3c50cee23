//! The domain layer: what a provider, its keys and its secrets mean, as pure functions over the
//! generated types.

pub mod config_file;
pub mod credentials;
pub mod error;
pub mod history;
pub mod key_models;
pub mod keys;
pub mod plan;
pub mod precondition;
pub mod provider;
pub mod secret_places;
pub mod secrets;
pub mod tokens;
pub mod validate;
