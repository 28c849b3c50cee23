//! The decode layer: request JSON of every Bifrost generation into the typed models.

pub mod generations;
pub mod json;
