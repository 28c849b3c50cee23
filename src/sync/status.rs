//! What each target's sync has done, kept where the API's status endpoint and `/metrics` read
//! it: the last revision applied, how far behind it is and since when, the last error (its
//! message never holds a value from a provider: see [`scrub`]).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::sync::target::Generation;
use crate::telemetry::metrics;

/// Where a target's sync stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not yet reconciled once.
    Starting,
    /// Every revision of the store applied.
    InSync,
    /// Applying revisions it is behind by.
    CatchingUp,
    /// The last attempt failed; retrying with backoff.
    Failing,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::InSync => "in_sync",
            State::CatchingUp => "catching_up",
            State::Failing => "failing",
        }
    }
}

/// The last error a target's sync met.
#[derive(Clone, Debug)]
pub struct LastError {
    pub message: String,
    /// The provider it was about, when it was about one.
    pub provider: Option<String>,
    pub at: DateTime<Utc>,
}

/// One target's status.
#[derive(Clone, Debug)]
pub struct Status {
    /// The target's URL (never with credentials).
    pub target: String,
    pub generation: Option<Generation>,
    pub state: State,
    /// The store revision every change up to which the target has.
    pub applied: Option<i64>,
    /// Since when the target has been behind the store (`None`: it is not).
    pub behind_since: Option<Instant>,
    pub last_error: Option<LastError>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_reconcile_at: Option<DateTime<Utc>>,
    /// Differences found on the target by a reconcile (an edit made on the gateway, a gateway
    /// restarted empty) and corrected.
    pub drift_corrected: u64,
    /// Writes made to the target.
    pub writes: u64,
}

/// A target's status, shared between its sync task and the readers.
#[derive(Clone)]
pub struct Cell(Arc<Mutex<Status>>);

impl Cell {
    pub fn new(target: String, generation: Option<Generation>) -> Cell {
        Cell(Arc::new(Mutex::new(Status {
            target,
            generation,
            state: State::Starting,
            applied: None,
            behind_since: None,
            last_error: None,
            last_success_at: None,
            last_reconcile_at: None,
            drift_corrected: 0,
            writes: 0,
        })))
    }

    /// A copy of the status now.
    pub fn get(&self) -> Status {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `change` to the status.
    pub fn update(&self, change: impl FnOnce(&mut Status)) {
        change(&mut self.lock());
    }

    /// Every change up to `revision` is on the target; the store is at `latest`.
    pub fn applied(&self, revision: i64, latest: i64) {
        let mut status = self.lock();
        status.applied = Some(revision);
        status.last_success_at = Some(Utc::now());
        if revision >= latest {
            status.behind_since = None;
            status.state = State::InSync;
        } else {
            status.state = State::CatchingUp;
        }
        metrics::sync_applied(&status.target, revision, latest - revision);
    }

    /// The store moved to `latest`.
    pub fn store_at(&self, latest: i64) {
        let mut status = self.lock();
        let behind = status.applied.is_none_or(|a| a < latest);
        if behind && status.behind_since.is_none() {
            status.behind_since = Some(Instant::now());
        }
        if let Some(applied) = status.applied {
            metrics::sync_applied(&status.target, applied, latest - applied);
        }
    }

    /// An attempt failed.
    pub fn failed(&self, message: String, provider: Option<&str>) {
        let mut status = self.lock();
        status.state = State::Failing;
        status.last_error = Some(LastError {
            message,
            provider: provider.map(str::to_string),
            at: Utc::now(),
        });
        metrics::sync_error(&status.target);
    }

    /// A write was made (`corrected`: by a reconcile, to undo a difference found there).
    pub fn wrote(&self, corrected: bool) {
        let mut status = self.lock();
        status.writes += 1;
        if corrected {
            status.drift_corrected += 1;
        }
        metrics::sync_write(&status.target, corrected);
    }
}

/// `message` without any string of `secrets` in it (each literal of the provider it was about:
/// a gateway's error text could quote what it was sent), and at most 300 characters long.
pub fn scrub(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret.as_str(), "[redacted]");
    }
    if out.chars().count() > 300 {
        out = out.chars().take(300).collect::<String>() + "…";
    }
    out
}
