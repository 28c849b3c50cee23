//! The headers of conditional requests as the API declares them: `If-Match` and `If-None-Match`
//! on writes, `ETag` on answers. Each becomes the domain's [`WriteConditions`] or comes from
//! [`precondition::etag_of`], where the rules live.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::precondition::{self, WriteConditions};
use crate::domain::provider::StoredProvider;

/// The preconditions of a PUT.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct PutConditions {
    /// Apply the request only if the provider's current `ETag` is one of these entity tags
    /// (`*`: only if it exists); otherwise 412.
    #[serde(rename = "If-Match")]
    pub if_match: Option<String>,
    /// `*`: create only; 412 when the provider exists. A list of entity tags: 412 when the
    /// current `ETag` is one of them.
    #[serde(rename = "If-None-Match")]
    pub if_none_match: Option<String>,
}

/// The precondition of a DELETE.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct DeleteConditions {
    /// Delete only if the provider's current `ETag` is one of these entity tags (`*`: only if it
    /// exists); otherwise 412.
    #[serde(rename = "If-Match")]
    pub if_match: Option<String>,
}

impl From<PutConditions> for WriteConditions {
    fn from(p: PutConditions) -> Self {
        WriteConditions {
            if_match: p.if_match,
            if_none_match: p.if_none_match,
        }
    }
}

impl From<DeleteConditions> for WriteConditions {
    fn from(d: DeleteConditions) -> Self {
        WriteConditions {
            if_match: d.if_match,
            if_none_match: None,
        }
    }
}

/// The `ETag` header of a provider response.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EtagHeader {
    /// Strong entity tag of the provider's current state.
    #[serde(rename = "ETag")]
    pub etag: String,
}

impl EtagHeader {
    pub fn of(provider: &StoredProvider) -> Self {
        EtagHeader {
            etag: precondition::etag_of(provider),
        }
    }
}
