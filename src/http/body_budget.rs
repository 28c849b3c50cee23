//! The server-wide bound on request body bytes held in memory at once.
//!
//! Each request may buffer up to `--max-body-bytes`, and decoding it takes a few times that;
//! without a bound, 64 clients sending 4 MiB at once make the process hold well over a GiB at
//! its peak, and the allocator keeps much of it afterwards. A body reserves its bytes here before
//! it is read (all of them when its length is declared, in growing steps when it is chunked) and
//! gives them back once it is decoded; a body that finds the budget spent waits for its turn, at
//! most [`WAIT`], then hears 503 `server_busy`. Small bodies, the usual case, never wait long:
//! the budget is many times the largest body.

use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::error::Error;

/// The budget when the server is not told otherwise (`--max-buffered-body-bytes`).
pub const DEFAULT_BYTES: usize = 64 << 20;

/// The longest a body waits for room before it is refused.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The semaphore whose permits are bytes, and its size.
struct Budget {
    bytes: Arc<Semaphore>,
    size: usize,
}

static BUDGET: OnceLock<Budget> = OnceLock::new();

/// Sets the budget, once, at start (later calls change nothing).
pub fn set_budget(bytes: usize) {
    budget_of(bytes);
}

fn budget_of(size: usize) -> &'static Budget {
    BUDGET.get_or_init(|| Budget {
        bytes: Arc::new(Semaphore::new(size)),
        size,
    })
}

fn budget() -> &'static Budget {
    budget_of(DEFAULT_BYTES)
}

/// Bytes reserved for one body; dropped, they return to the budget.
#[derive(Debug, Default)]
pub struct Reservation {
    held: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    /// How many bytes are reserved.
    pub fn bytes(&self) -> usize {
        self.held
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Reserves `more` bytes beside those held, waiting at most [`WAIT`] for them. A body never
    /// holds more than the whole budget, which may be set below one body.
    pub async fn grow(&mut self, more: usize) -> Result<(), Error> {
        let budget = budget();
        let more = more.min(budget.size.saturating_sub(self.bytes()));
        let Ok(more) = u32::try_from(more) else {
            return Err(Error::Busy);
        };
        if more == 0 {
            return Ok(());
        }
        let wait = budget.bytes.clone().acquire_many_owned(more);
        let Ok(Ok(permit)) = tokio::time::timeout(WAIT, wait).await else {
            return Err(Error::Busy);
        };
        match self.held.as_mut() {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }
}
