//! Structured logs through tracing, dropshot's slog records included.
//!
//! What is logged: requests (method, URI, status, latency, request id), store failures, start and
//! stop. What never is: a request body, a secret. Error messages that reach the log are the ones
//! clients see, from which any client-sent string has been removed.

use tracing_subscriber::EnvFilter;

/// The log formats.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Sends tracing events to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init(format: Format) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        Format::Text => builder.init(),
        Format::Json => builder.json().flatten_event(true).init(),
    }
}

/// A slog logger for dropshot whose records become tracing events.
pub fn dropshot_logger() -> slog::Logger {
    slog::Logger::root(tracing_slog::TracingSlogDrain, slog::o!())
}
