//! bifrost-providers: the provider-management API of the Bifrost AI gateway, spec-first.
//!
//! `openapi.json` is the source of truth. The models typify generates from it ([`types`]) and
//! the typed progenitor client on those same models ([`client`]) live in the client crate,
//! `bifrost-providers-client`, which a client-only dependent uses alone; this crate is the
//! dropshot server that serves those models on a SQLite, PostgreSQL or in-memory store.

pub use bifrost_providers_client::{Client, client, convert, types};

pub mod api;
pub mod auth;
pub mod body;
pub mod buffered;
pub mod config_file;
pub mod conformance;
pub mod credentials;
pub mod error;
pub mod front;
pub mod history;
pub mod keys;
pub mod log_writer;
pub mod logging;
pub mod metrics;
pub mod models;
pub mod not_allowed;
pub mod precondition;
pub mod presented;
pub mod provider;
pub mod secrets;
pub mod server;
pub mod store;
pub mod token_file;
pub mod tokens;
pub mod validate;
pub mod wire;
