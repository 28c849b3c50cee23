//! What every handler sees: the store, the admin token and the stop signal. Its own module so
//! that the extractors ([`super::auth`]) can name it without knowing the handlers.

use std::sync::Arc;

use crate::http::admin_token::AdminToken;
use crate::store::Store;

/// What every handler sees.
pub struct Context {
    pub store: Arc<dyn Store>,
    /// When set, every `/api/*` request must carry it.
    pub admin_token: Option<AdminToken>,
    /// Becomes `true` when the server stops.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}
