//! A typed client for the provider-management API of the [Bifrost](https://github.com/maximhq/bifrost)
//! AI gateway, generated from `openapi.json` (progenitor over typify's models), as served by
//! `bifrost-providers` and by Bifrost itself.
//!
//! It speaks both generations of the API: keys inside the provider body (Bifrost v1.4) and the
//! `/keys` sub-resource (v1.5+). HTTPS works out of the box (rustls; `native-tls` as a feature).
//!
//! ```no_run
//! use bifrost_providers_client::{Client, types::{EnvVar, Key, UpdateProviderRequest}};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("https://bifrost.internal:8443")
//!     .admin_token(&std::env::var("BIFROST_ADMIN_TOKEN")?)
//!     .retries(3)
//!     .build()?;
//!
//! // A provider's settings, then a key through /keys; a secret is built from a &str.
//! let provider = client.get_provider().provider("openai").send().await?.into_inner();
//! let mut edit = UpdateProviderRequest::from(provider); // the redacted GET body, as a PUT body
//! edit.keys = None; // leave the keys alone
//! edit.network_config.get_or_insert_with(Default::default).max_retries = 2;
//! client.update_provider().provider("openai").body(edit).send().await?;
//!
//! let key = Key { name: "primary".into(), value: Some(EnvVar::from("env.OPENAI_API_KEY")),
//!                 models: vec!["*".into()], ..Default::default() };
//! client.create_provider_key().provider("openai").body(key).send().await?;
//! # Ok(()) }
//! ```
//!
//! Against a Bifrost gateway itself, authenticate as its admin API expects, with HTTP Basic
//! (`.basic_auth(user, password)`); a `bifrost-providers` server takes a bearer token
//! (`.admin_token(…)`). The models read the answers of every Bifrost generation: a member one
//! leaves out is optional, `null` reads as absent, and an enum value a later release adds is kept
//! (`ProviderStatus::Other("list_models_failed")`).
//!
//! Errors are [`Error::ErrorResponse`] carrying the API's [`types::BifrostError`] (`error.code`,
//! `error.message`, `error.param`, read as text by [`types::ErrorField::param_text`]; Bifrost's own
//! errors carry only the message, and its `param` may be any JSON value).

/// The request and response models, generated from `openapi.json` by typify.
#[allow(clippy::all, dead_code, missing_docs)]
pub mod types {
    include!("../generated/types.rs");
    pub use crate::lenient::StringSecret;
}

/// The typed client, generated from `openapi.json` by progenitor on the models of [`types`]:
/// one builder per operation (`client.get_provider().provider("openai").send()`).
#[allow(clippy::all, dead_code, missing_docs)]
pub mod client {
    include!("../generated/client.rs");
}

pub mod connect;
pub mod convert;
mod hooks;
pub mod lenient;

pub use client::{Client, Error, ResponseValue};
pub use connect::{ClientBuilder, Options};
