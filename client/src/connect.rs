//! Building a [`Client`]: base URL, admin token, timeouts, user agent, extra headers, extra root
//! certificates and retries.
//!
//! ```no_run
//! use std::time::Duration;
//! use bifrost_providers_client::Client;
//! # fn run() -> Result<(), bifrost_providers_client::connect::BuildError> {
//! let client = Client::builder("https://bifrost.internal:8443")
//!     .admin_token("a-long-random-admin-token")
//!     .connect_timeout(Duration::from_secs(3))
//!     .timeout(Duration::from_secs(10))
//!     .user_agent("gateway-sync/1.2")
//!     .header("X-Bifrost-Actor", "gateway-sync")
//!     .root_certificate_pem(b"-----BEGIN CERTIFICATE-----\n...")
//!     .retries(3)
//!     .build()?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::Client;

/// What the client applies around each request (progenitor's inner type): the retry policy.
/// The admin token travels as a default header of the HTTP client, marked sensitive.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many times a request that is safe to repeat is retried after a connection failure
    /// or a 502, 503 or 504.
    pub retries: u32,
    /// The first wait between attempts; each next one doubles, up to `max_backoff`.
    pub backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// The most time for one attempt; a long poll of the change feed gets its wait on top.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retries: 2,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Why a client could not be built. It never quotes the admin token.
#[derive(Debug)]
pub struct BuildError(String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// Builds a [`Client`]; see the module documentation.
#[derive(Debug)]
pub struct ClientBuilder {
    base_url: String,
    headers: HeaderMap,
    connect_timeout: Duration,
    user_agent: String,
    roots: Vec<Vec<u8>>,
    options: Options,
    failure: Option<String>,
}

/// Makes ring the process's rustls crypto provider, unless the application installed one of its
/// own. [`ClientBuilder::build`] does it; call it first if the application builds `reqwest`
/// clients of its own before any of ours while it has no TLS provider of its own (reqwest then
/// shares this crate's provider-less rustls and would refuse to build them).
pub fn install_tls_provider() {
    #[cfg(feature = "rustls")]
    {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl Client {
    /// A builder for a client of the server at `base_url` (scheme, host, port, and a path stem
    /// if the API is mounted below one).
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.trim_end_matches('/').to_string(),
            headers: HeaderMap::new(),
            connect_timeout: Duration::from_secs(15),
            user_agent: concat!("bifrost-providers-client/", env!("CARGO_PKG_VERSION")).to_string(),
            roots: Vec::new(),
            options: Options::default(),
            failure: None,
        }
    }

    /// A client that sends `Authorization: Bearer TOKEN` with every request.
    pub fn with_admin_token(base_url: &str, token: &str) -> Result<Client, BuildError> {
        Client::builder(base_url).admin_token(token).build()
    }
}

impl ClientBuilder {
    /// Sends `Authorization: Bearer TOKEN` with every request (never shown by `Debug`).
    pub fn admin_token(mut self, token: &str) -> Self {
        match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(mut value) => {
                value.set_sensitive(true);
                self.headers.insert(reqwest::header::AUTHORIZATION, value);
            }
            Err(_) => {
                self.failure = Some("the admin token cannot be sent as a header value".into());
            }
        }
        self
    }

    /// Sends `Authorization: Basic …` with every request (never shown by `Debug`): the
    /// authentication of Bifrost's own admin API (its `auth_config` user name and password).
    /// This server takes a bearer token instead ([`Self::admin_token`]).
    pub fn basic_auth(mut self, username: &str, password: &str) -> Self {
        use base64::Engine;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        match HeaderValue::from_str(&format!("Basic {encoded}")) {
            Ok(mut value) => {
                value.set_sensitive(true);
                self.headers.insert(reqwest::header::AUTHORIZATION, value);
            }
            Err(_) => self.failure = Some("the credentials cannot be sent as a header".into()),
        }
        self
    }

    /// The most time to open a connection (TLS included). Default 15 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The most time for one attempt of a request, from sending it to the end of its response.
    /// Default 15 s. A long poll of the change feed (`watch_changes`, which waits up to its
    /// `timeout` query, 30 s by default and at most 60 s, before it answers) gets that wait on top.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// The `User-Agent` header. Default `bifrost-providers-client/VERSION`.
    pub fn user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = user_agent.to_string();
        self
    }

    /// A header sent with every request.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                self.headers.insert(name, value);
            }
            _ => self.failure = Some(format!("header {name:?} is not a valid header")),
        }
        self
    }

    /// Trusts this PEM certificate (one or more) as a root, besides the platform's: for a server
    /// whose certificate a private CA signed.
    pub fn root_certificate_pem(mut self, pem: &[u8]) -> Self {
        self.roots.push(pem.to_vec());
        self
    }

    /// Retries of a request that is safe to repeat (a read, or a PUT or DELETE that carries
    /// `If-Match`) after a connection failure or a 502, 503 or 504. Default 2; 0 turns them off.
    pub fn retries(mut self, retries: u32) -> Self {
        self.options.retries = retries;
        self
    }

    /// The first wait between attempts (doubling each time, up to `max`). Default 100 ms, 2 s.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.options.backoff = first;
        self.options.max_backoff = max.max(first);
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, BuildError> {
        if let Some(failure) = self.failure {
            return Err(BuildError(failure));
        }
        install_tls_provider();
        let mut http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.options.timeout)
            .user_agent(self.user_agent)
            .default_headers(self.headers);
        let roots = self
            .roots
            .iter()
            .map(|pem| reqwest::Certificate::from_pem_bundle(pem))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BuildError(format!("a root certificate is not PEM: {e}")))?;
        if !roots.is_empty() {
            http = http.tls_certs_merge(roots.into_iter().flatten());
        }
        let http = http
            .build()
            .map_err(|e| BuildError(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client::new_with_client(&self.base_url, http, self.options))
    }
}
