//! What the server counts and measures, in the Prometheus text format (`/metrics`).
//!
//! Every metric is named and described here, and recorded through these functions, so that the
//! list in the README and the labels in use are one list: labels are operations, statuses,
//! outcomes and store kinds, never a provider's name, a token or any value a client sent. The
//! `metrics` facade carries the records to `metrics-exporter-prometheus`, which renders them.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by operation and status.
pub const REQUESTS: &str = "bifrost_http_requests_total";
/// Seconds from a request's head to its answer, by operation.
pub const REQUEST_SECONDS: &str = "bifrost_http_request_duration_seconds";
/// Store operations, by operation and outcome (`ok`, `error`, `timeout`).
pub const STORE_OPERATIONS: &str = "bifrost_store_operations_total";
/// Seconds a store operation took, by operation.
pub const STORE_SECONDS: &str = "bifrost_store_operation_duration_seconds";
/// Connections open on the public listener.
pub const CONNECTIONS_OPEN: &str = "bifrost_connections_open";
/// Connections closed at the cap to make room (`evicted`) or refused there (`refused`).
pub const CONNECTIONS_AT_CAP: &str = "bifrost_connections_at_cap_total";
/// Change-feed long polls waiting now.
pub const WATCHERS: &str = "bifrost_change_feed_watchers";
/// The store's latest revision, as this server last saw it.
pub const LATEST_REVISION: &str = "bifrost_store_latest_revision";
/// config.json providers loaded at start, by outcome.
pub const CONFIG_LOADS: &str = "bifrost_config_file_providers_total";
/// Readings of the tokens file, by outcome (`taken`, `refused`).
pub const TOKEN_RELOADS: &str = "bifrost_token_file_reloads_total";

/// The store revision each sync target has every change up to, by target (its URL).
pub const SYNC_APPLIED: &str = "bifrost_sync_applied_revision";
/// How many revisions each sync target is behind the store, by target.
pub const SYNC_LAG: &str = "bifrost_sync_lag_revisions";
/// Writes made to sync targets, by target and `reason` (`change`, `drift`).
pub const SYNC_WRITES: &str = "bifrost_sync_writes_total";
/// Failed attempts to reach or write a sync target, by target.
pub const SYNC_ERRORS: &str = "bifrost_sync_errors_total";
/// When each sync target last failed, as a Unix time, by target.
pub const SYNC_LAST_ERROR: &str = "bifrost_sync_last_error_timestamp_seconds";

/// Bucket bounds for durations, in seconds: a cached read is tens of microseconds, a long poll
/// up to a minute.
const SECONDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 60.0,
];

/// The installed recorder's handle, to render from.
static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();

/// Everything recorded so far, as Prometheus text; `None` before [`install`].
pub fn render() -> Option<String> {
    HANDLE.get().map(PrometheusHandle::render)
}

/// Installs the process's recorder (once, at start) and describes every metric.
pub fn install() -> Result<(), String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), &SECONDS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    describe_counter!(REQUESTS, "Requests answered, by operation and status.");
    describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time from a request's head to its answer, by operation."
    );
    describe_counter!(
        STORE_OPERATIONS,
        "Store operations, by operation and outcome."
    );
    describe_histogram!(
        STORE_SECONDS,
        metrics::Unit::Seconds,
        "Time a store operation took, by operation."
    );
    describe_gauge!(CONNECTIONS_OPEN, "Connections open on the public listener.");
    describe_counter!(
        CONNECTIONS_AT_CAP,
        "Connections closed at the cap to make room (evicted) or refused there (refused)."
    );
    describe_gauge!(WATCHERS, "Change-feed long polls waiting now.");
    describe_gauge!(
        LATEST_REVISION,
        "The store's latest revision, as this server last saw it."
    );
    describe_counter!(
        CONFIG_LOADS,
        "config.json providers loaded at start, by outcome."
    );
    describe_counter!(TOKEN_RELOADS, "Readings of the tokens file, by outcome.");
    describe_gauge!(
        SYNC_APPLIED,
        "The store revision each sync target has every change up to, by target."
    );
    describe_gauge!(
        SYNC_LAG,
        "How many revisions each sync target is behind the store, by target."
    );
    describe_counter!(
        SYNC_WRITES,
        "Writes made to sync targets, by target and reason (change, drift)."
    );
    describe_counter!(
        SYNC_ERRORS,
        "Failed attempts to reach or write a sync target, by target."
    );
    describe_gauge!(
        SYNC_LAST_ERROR,
        "When each sync target last failed, as a Unix time, by target."
    );
    // Once the recorder is installed, its exporter must be rendered from now and then, or the
    // histograms' samples pile up unread: a scrape does, and so does this, every few seconds.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| e.to_string())?;
    HANDLE
        .set(handle)
        .map_err(|_| "the metrics recorder is installed once".to_string())
}

/// A counter and a histogram recorded together, as one thread keeps them.
type Pair = (metrics::Counter, metrics::Histogram);

thread_local! {
    /// Each thread's handles to the request and store metrics it has recorded, by their labels:
    /// a hot read then costs a few atomic updates, not keys built, hashed and looked up in the
    /// registry (which cost a tenth of its throughput).
    static REQUEST_HANDLES: std::cell::RefCell<std::collections::HashMap<(&'static str, u16), Pair>> =
        std::cell::RefCell::default();
    static STORE_HANDLES: std::cell::RefCell<std::collections::HashMap<(&'static str, &'static str), Pair>> =
        std::cell::RefCell::default();
}

/// A request answered.
pub fn request(operation: &'static str, status: u16, seconds: f64) {
    REQUEST_HANDLES.with_borrow_mut(|handles| {
        let (count, latency) = handles.entry((operation, status)).or_insert_with(|| {
            (
                counter!(REQUESTS, "operation" => operation, "status" => status.to_string()),
                histogram!(REQUEST_SECONDS, "operation" => operation),
            )
        });
        count.increment(1);
        latency.record(seconds);
    });
}

/// A store operation done.
pub fn store(operation: &'static str, outcome: &'static str, seconds: f64) {
    STORE_HANDLES.with_borrow_mut(|handles| {
        let (count, latency) = handles.entry((operation, outcome)).or_insert_with(|| {
            (
                counter!(STORE_OPERATIONS, "operation" => operation, "outcome" => outcome),
                histogram!(STORE_SECONDS, "operation" => operation),
            )
        });
        count.increment(1);
        latency.record(seconds);
    });
}

/// A connection opened (`1.0`) or closed (`-1.0`).
pub fn connections(delta: f64) {
    gauge!(CONNECTIONS_OPEN).increment(delta);
}

/// A connection evicted or refused at the cap.
pub fn at_cap(what: &'static str) {
    counter!(CONNECTIONS_AT_CAP, "what" => what).increment(1);
}

/// A watcher began (`1.0`) or ended (`-1.0`) waiting.
fn watchers(delta: f64) {
    gauge!(WATCHERS).increment(delta);
}

/// A change-feed watcher, counted in [`WATCHERS`] while it lives.
pub struct Watching(());

impl Watching {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        watchers(1.0);
        Watching(())
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        watchers(-1.0);
    }
}

/// The store's latest revision.
pub fn latest_revision(revision: i64) {
    gauge!(LATEST_REVISION).set(revision as f64);
}

/// A config.json provider loaded, with its outcome (`created`, `replaced`, `kept`, …).
pub fn config_load(outcome: &'static str) {
    counter!(CONFIG_LOADS, "outcome" => outcome).increment(1);
}

/// The tokens file read again.
pub fn token_reload(taken: bool) {
    let outcome = if taken { "taken" } else { "refused" };
    counter!(TOKEN_RELOADS, "outcome" => outcome).increment(1);
}

/// A sync target has every change up to `applied`, `lag` revisions behind the store.
pub fn sync_applied(target: &str, applied: i64, lag: i64) {
    gauge!(SYNC_APPLIED, "target" => target.to_string()).set(applied as f64);
    gauge!(SYNC_LAG, "target" => target.to_string()).set(lag.max(0) as f64);
}

/// A write made to a sync target (`drift`: by a reconcile, to undo a difference found there).
pub fn sync_write(target: &str, drift: bool) {
    let reason = if drift { "drift" } else { "change" };
    counter!(SYNC_WRITES, "target" => target.to_string(), "reason" => reason).increment(1);
}

/// An attempt to reach or write a sync target failed, now.
pub fn sync_error(target: &str) {
    counter!(SYNC_ERRORS, "target" => target.to_string()).increment(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    gauge!(SYNC_LAST_ERROR, "target" => target.to_string()).set(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_as_prometheus_text_with_their_labels() {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), &SECONDS)
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            request("provider_put", 200, 0.002);
            request("provider_put", 200, 0.003);
            store("write", "ok", 0.001);
            connections(1.0);
            at_cap("evicted");
            latest_revision(42);
            token_reload(false);
        });
        let text = handle.render();
        assert!(
            text.contains(
                r#"bifrost_http_requests_total{operation="provider_put",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"bifrost_http_request_duration_seconds_bucket{operation="provider_put",le="0.0025"} 1"#),
            "{text}"
        );
        assert!(text.contains("bifrost_store_latest_revision 42"), "{text}");
        assert!(
            text.contains(r#"bifrost_token_file_reloads_total{outcome="refused"} 1"#),
            "{text}"
        );
    }
}
