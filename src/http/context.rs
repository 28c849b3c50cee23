//! What every handler sees: the store, the tokens in force and the stop signal. Its own module so
//! that the extractors ([`super::auth`]) can name it without knowing the handlers.

use std::sync::Arc;

use crate::http::console::session::Console;
use crate::http::token_file::TokenFile;
use crate::store::Store;
use crate::sync::Fleet;

/// What every handler sees.
pub struct Context {
    pub store: Arc<dyn Store>,
    /// The tokens an `/api/*` request may carry (when any are required).
    pub tokens: TokenFile,
    /// Becomes `true` when the server stops.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The gateways kept in step (none: an empty fleet).
    pub sync: Fleet,
    /// The web console's sessions.
    pub console: Console,
}
