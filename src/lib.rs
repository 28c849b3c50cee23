//! bifrost-providers: the provider-management API of the Bifrost AI gateway, spec-first.
//!
//! `openapi.json` is the source of truth. [`types`] holds the models typify generates from it,
//! [`client`] the typed progenitor client on those same models, and the rest of the crate the
//! dropshot server that serves them on a SQLite (or in-memory) store.

/// The request and response models, generated from `openapi.json` by typify.
#[allow(clippy::all, dead_code, missing_docs)]
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/types.rs"));
}

/// The typed client, generated from `openapi.json` by progenitor on the models of [`types`].
#[allow(clippy::all, dead_code, missing_docs)]
pub mod client {
    include!(concat!(env!("OUT_DIR"), "/client.rs"));
}

pub mod api;
pub mod auth;
pub mod body;
pub mod config_file;
pub mod connect;
pub mod convert;
pub mod error;
pub mod keys;
pub mod logging;
pub mod models;
pub mod not_allowed;
pub mod precondition;
pub mod provider;
pub mod secrets;
pub mod server;
pub mod store;
pub mod validate;
pub mod wire;

pub use client::Client;
