//! The telemetry layer: the server's log and the writer behind it.

pub mod log_writer;
pub mod logging;
