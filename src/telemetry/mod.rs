//! The telemetry layer: the server's log and the writer behind it, and its metrics.

pub mod log_writer;
pub mod logging;
pub mod metrics;
