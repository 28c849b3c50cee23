//! bifrost-providers: the provider-management API of the Bifrost AI gateway, spec-first.
//!
//! `openapi.json` is the source of truth. The models typify generates from it ([`types`]) and
//! the typed progenitor client on those same models ([`client`]) live in the client crate,
//! `bifrost-providers-client`, which a client-only dependent uses alone; this crate is the
//! dropshot server that serves those models on a SQLite, PostgreSQL or in-memory store.

pub use bifrost_providers_client::{Client, client, convert, types};

pub mod cli;
pub mod decode;
pub mod domain;
pub mod front;
pub mod http;
pub mod store;
pub mod sync;
pub mod telemetry;
