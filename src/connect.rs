//! Connecting the typed client to a server that has an admin token.
//!
//! progenitor's client takes any `reqwest::Client`; this one sends the token on every request
//! as a default header, marked sensitive so that reqwest never shows it in `Debug` output.

use std::time::Duration;

use crate::Client;

impl Client {
    /// A client for the server at `baseurl` that sends `Authorization: Bearer TOKEN` with every
    /// request. Fails when the token cannot be a header value (it holds a control character).
    pub fn with_admin_token(baseurl: &str, token: &str) -> Result<Client, String> {
        let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the admin token cannot be sent as a header value".to_string())?;
        value.set_sensitive(true);
        let headers = http::HeaderMap::from_iter([(http::header::AUTHORIZATION, value)]);
        // The same timeouts as progenitor's `Client::new`.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(15))
            .default_headers(headers)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client::new_with_client(baseurl, http))
    }
}
