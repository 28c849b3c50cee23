//! Keeping a fleet of Bifrost gateways in step with the store (`serve --sync-to`): every
//! accepted write is applied to every target through Bifrost's own provider API, in revision
//! order, each target by a task of its own; a full reconcile at start and at an interval
//! corrects what was changed on a gateway behind the store's back. Bifrost's open-source nodes
//! apply a change made through their API at once, so this gives a fleet of them one store.
//!
//! A layer above `store` (it reads the store and its change feed) and below `http` (whose status
//! endpoint reads [`Fleet::status`]).

pub mod gateway;
pub mod status;
pub mod target;
mod worker;

use std::sync::Arc;

use crate::store::Store;
pub use status::{State, Status};
pub use target::{Credentials, Generation, Target};
pub use worker::Options;

/// The targets being kept in step, and where each stands.
#[derive(Clone, Default)]
pub struct Fleet {
    cells: Vec<status::Cell>,
}

impl Fleet {
    /// Starts one sync task per target (none: an empty fleet).
    pub fn start(
        store: &Arc<dyn Store>,
        targets: &[Target],
        options: Options,
    ) -> Result<Fleet, String> {
        let mut cells = Vec::new();
        let mut workers = Vec::new();
        for target in targets {
            let cell = status::Cell::new(target.shown(), target.generation);
            workers.push(worker::Worker::new(
                Arc::clone(store),
                target,
                cell.clone(),
                options,
            )?);
            cells.push(cell);
        }
        for worker in workers {
            tokio::spawn(worker.run());
        }
        Ok(Fleet { cells })
    }

    /// Each target's status now, in the order the targets were given.
    pub fn status(&self) -> Vec<Status> {
        self.cells.iter().map(status::Cell::get).collect()
    }

    /// Whether any target is kept in step.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}
