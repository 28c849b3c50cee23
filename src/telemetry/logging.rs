//! Structured logs through tracing, dropshot's slog records included.
//!
//! What is logged: requests (request id, method, URI, status, latency), store failures, start and
//! stop. What never is: a request body, a secret. Error messages that reach the log are the ones
//! clients see, from which any client-sent string has been removed.

use std::fmt::Arguments;

use slog::{KV, Key, OwnedKVList, Record, Serializer};
use tracing_subscriber::EnvFilter;

/// The log formats.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Keeps the log writer running; dropping it writes out what is buffered.
pub type Guard = crate::telemetry::log_writer::Guard;

/// Crates whose records at `debug` and below carry request or query data (tokio_postgres logs
/// every statement's parameters, stored secrets among them; hyper and h2 log frames): they are
/// capped at `info` whatever `RUST_LOG` asks, so no level shows a secret.
const CAPPED: &[&str] = &[
    "tokio_postgres",
    "postgres_protocol",
    "deadpool_postgres",
    "hyper",
    "h2",
    "reqwest",
    "rustls",
];

/// Whether a record of `target` at `level` may be written: records of a [`CAPPED`] crate (or any
/// of its modules) above `info` never are, whatever `RUST_LOG` asks. A cap on the record itself
/// rather than a directive, so that no more specific directive (`tokio_postgres::query=debug`,
/// a span filter) can outrank it.
pub fn allowed(target: &str, level: &tracing::Level) -> bool {
    let capped = CAPPED.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    !capped || *level <= tracing::Level::INFO
}

/// The filter for `RUST_LOG` (default `info`), with [`CAPPED`] crates capped at `info`.
pub fn filter<S>(directives: Option<&str>) -> impl tracing_subscriber::layer::Filter<S> + use<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::filter::FilterExt;
    let directives = directives
        .and_then(|d| EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    directives.and(tracing_subscriber::filter::filter_fn(|meta| {
        allowed(meta.target(), meta.level())
    }))
}

/// Sends tracing events to stderr, filtered by `RUST_LOG` (see [`filter`]).
///
/// Request lines are buffered and written a few times a second, others at once
/// ([`crate::telemetry::log_writer`]): a request does not wait for a write to stderr.
pub fn init(format: Format) -> Guard {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = crate::telemetry::log_writer::Lines::start();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(colour);
    let layer = match format {
        Format::Text => layer.with_filter(filter).boxed(),
        Format::Json => layer.json().flatten_event(true).with_filter(filter).boxed(),
    };
    tracing_subscriber::registry().with(layer).init();
    guard
}

/// A slog logger for dropshot whose records become tracing events.
pub fn dropshot_logger() -> slog::Logger {
    slog::Logger::root(SlogToTracing, slog::o!())
}

/// Turns dropshot's slog records, with the request's context (`req_id`, `method`, `uri`, …) that
/// dropshot keeps on the logger rather than the record, into tracing events with those fields.
struct SlogToTracing;

/// The fields dropshot logs that an operator wants; others are dropped.
#[derive(Default)]
struct Fields {
    req_id: Option<String>,
    method: Option<String>,
    uri: Option<String>,
    remote_addr: Option<String>,
    token: Option<String>,
    response_code: Option<String>,
    latency_us: Option<String>,
    error: Option<String>,
}

impl Serializer for Fields {
    fn emit_arguments(&mut self, key: Key, val: &Arguments) -> slog::Result {
        let slot = match key.as_ref() {
            "req_id" => &mut self.req_id,
            "method" => &mut self.method,
            "uri" => &mut self.uri,
            "remote_addr" => &mut self.remote_addr,
            // The client's address, as the front passed it on (it wins over the front's own).
            "hdr_x_bifrost_remote_addr" => {
                self.remote_addr = Some(val.to_string());
                return Ok(());
            }
            // The name of the request's token, as the front passed it on.
            "hdr_x_bifrost_token_name" | "token" => &mut self.token,
            "response_code" => &mut self.response_code,
            "latency_us" => &mut self.latency_us,
            "error_message_internal" => &mut self.error,
            _ => return Ok(()),
        };
        let mut text = val.to_string();
        // The API takes no query parameters; a query string is dropped rather than logged, in
        // case a client put something secret there.
        if key.as_ref() == "uri"
            && let Some(query) = text.find('?')
        {
            text.truncate(query);
            text.push_str("?…");
        }
        if !text.is_empty() {
            slot.get_or_insert(text);
        }
        Ok(())
    }
}

impl slog::Drain for SlogToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut f = Fields::default();
        let _ = record.kv().serialize(record, &mut f);
        let _ = values.serialize(record, &mut f);
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(
                    target: "dropshot",
                    $level,
                    req_id = f.req_id,
                    method = f.method,
                    uri = f.uri,
                    remote_addr = f.remote_addr,
                    token = f.token,
                    status = f.response_code,
                    latency_us = f.latency_us,
                    error = f.error,
                    "{}",
                    record.msg()
                )
            };
        }
        // A server error is an operator's concern whatever level dropshot gave it.
        let server_error = f
            .response_code
            .as_deref()
            .is_some_and(|c| c.starts_with('5'));
        // A read that succeeded is routine: logged at `debug` (`RUST_LOG=info,dropshot=debug`
        // shows them); writes, refusals and failures stay at `info` and above.
        let read_served = matches!(f.method.as_deref(), Some("GET" | "HEAD"))
            && f.response_code.as_deref().is_some_and(|c| c < "400");
        match record.level() {
            _ if server_error => emit!(tracing::Level::ERROR),
            slog::Level::Info if read_served => emit!(tracing::Level::DEBUG),
            slog::Level::Critical | slog::Level::Error => emit!(tracing::Level::ERROR),
            slog::Level::Warning => emit!(tracing::Level::WARN),
            slog::Level::Info => emit!(tracing::Level::INFO),
            slog::Level::Debug => emit!(tracing::Level::DEBUG),
            slog::Level::Trace => emit!(tracing::Level::TRACE),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn no_level_opens_the_crates_that_log_query_data() {
        for directives in [
            "trace",
            "trace,tokio_postgres=trace",
            "tokio_postgres=debug,hyper=trace",
            "tokio_postgres::query=debug",
            "info,tokio_postgres::query=trace,hyper::proto::h1=trace,h2::codec=trace",
            "[{sql}]=trace,postgres_protocol::message=trace",
        ] {
            // What the directives alone enable at `info`, which the cap leaves as it is.
            let uncapped = tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .with_filter(tracing_subscriber::EnvFilter::new(directives)),
            );
            let info = tracing::subscriber::with_default(
                uncapped,
                || tracing::enabled!(target: "tokio_postgres", tracing::Level::INFO),
            );
            let subscriber = tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer().with_filter(super::filter(Some(directives))),
            );
            tracing::subscriber::with_default(subscriber, || {
                assert!(
                    !tracing::enabled!(target: "tokio_postgres::query", tracing::Level::DEBUG),
                    "{directives}"
                );
                assert!(
                    !tracing::enabled!(target: "hyper::proto", tracing::Level::DEBUG),
                    "{directives}"
                );
                assert_eq!(
                    tracing::enabled!(target: "tokio_postgres", tracing::Level::INFO),
                    info,
                    "{directives}"
                );
            });
        }
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_filter(super::filter(Some("trace"))));
        tracing::subscriber::with_default(subscriber, || {
            assert!(tracing::enabled!(target: "bifrost_providers", tracing::Level::TRACE));
            // A crate whose name only starts like a capped one is not capped.
            assert!(tracing::enabled!(target: "hyperloglog", tracing::Level::TRACE));
        });
    }
}
