//! Starting the dropshot server: its settings, the API description it serves (the handlers plus
//! the hidden method-not-allowed endpoints) and the header the front names each client in.

use std::net::SocketAddr;
use std::sync::Arc;

use dropshot::{ApiDescription, ConfigDropshot, ConfigTls, HttpServer, ServerBuilder};

use crate::http::api::providers_api_mod;
use crate::http::context::Context;
use crate::http::handlers::Server;
use crate::http::token_file::TokenFile;
use crate::store::Store;

/// The default request body limit: 4 MiB (dropshot's own default is 1024 bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;

/// How to run the server.
pub struct Settings {
    pub bind: SocketAddr,
    pub store: Arc<dyn Store>,
    pub max_body_bytes: usize,
    pub tokens: TokenFile,
    /// HTTPS: a PEM certificate chain and its PEM (PKCS #8) private key; plain HTTP without.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Whether requests come through the front, which names each one's client in
    /// [`CLIENT_ADDR_HEADER`] (trusted, and logged, only then).
    pub behind_front: bool,
    /// Becomes `true` when the server stops: long polls answer at once.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The gateways kept in step, for the status endpoint.
    pub sync: crate::sync::Fleet,
    /// Whether browsers reach the server over TLS (the console's cookie is then `Secure`).
    pub https: bool,
}

/// The header the front passes each forwarded request's client address in (any such header a
/// client sent is replaced), logged as the request's `remote_addr`.
pub const CLIENT_ADDR_HEADER: &str = "x-bifrost-remote-addr";

/// The header the front passes the name of each forwarded request's token in (any such header
/// a client sent is removed), logged as the request's `token`.
pub const TOKEN_NAME_HEADER: &str = "x-bifrost-token-name";

/// Starts the server; it runs until closed. Its request body limit is `max_body_bytes`; beyond
/// it, a 413. With `tls`, it serves HTTPS only.
pub fn start(settings: Settings, log: slog::Logger) -> Result<HttpServer<Context>, String> {
    let config = ConfigDropshot {
        bind_address: settings.bind,
        default_request_body_max_bytes: settings.max_body_bytes,
        // No task per request: a handler whose client goes away is dropped. Safe for every
        // handler here: a write is committed whole or not at all whether or not its caller
        // still waits (the SQLite writer commits it; a PostgreSQL transaction dropped before
        // its commit rolls back), and a long poll that nobody reads should stop.
        default_handler_task_mode: dropshot::HandlerTaskMode::CancelOnDisconnect,
        log_headers: if settings.behind_front {
            vec![
                CLIENT_ADDR_HEADER.to_string(),
                TOKEN_NAME_HEADER.to_string(),
            ]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    ServerBuilder::new(
        api(),
        Context {
            store: settings.store,
            tokens: settings.tokens,
            stopping: settings.stopping,
            sync: settings.sync,
            console: crate::http::console::session::Console::new(settings.https),
        },
        log,
    )
    .config(config)
    .tls(settings.tls.map(|(cert_file, key_file)| ConfigTls::AsFile {
        cert_file,
        key_file,
    }))
    .start()
    .map_err(|e| format!("cannot start the server on {}: {e}", settings.bind))
}

/// The API's endpoints, plus hidden ones that answer every other method on its paths with the
/// contract's error body and `Allow` (dropshot's router would answer in its own shape), and
/// `/metrics` and the console under `/ui`.
pub fn api() -> ApiDescription<Context> {
    let mut api =
        providers_api_mod::api_description::<Server>().expect("the API description is valid");
    crate::http::method_not_allowed::register(&mut api);
    crate::http::metrics_endpoint::register(&mut api);
    crate::http::console::register(&mut api);
    api
}
