//! Optimistic concurrency: entity tags and the `If-Match` / `If-None-Match` preconditions.
//!
//! A provider's `ETag` is an opaque random tag the store assigns at every accepted write (not a
//! hash of the configuration, which would let anyone holding it guess short secrets offline).
//! Preconditions are checked inside the store's mutation, against the state the write replaces,
//! so a check and its write are one atomic step.

use crate::domain::error::Error;
use crate::domain::provider::StoredProvider;

/// The preconditions of a write, as the request's `If-Match` and `If-None-Match` give them
/// (each a list of entity tags, or `*`).
#[derive(Debug, Default)]
pub struct WriteConditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
}

/// The `ETag` header value of a provider's state: its tag, quoted (a strong entity tag).
pub fn etag_of(provider: &StoredProvider) -> String {
    format!("\"{}\"", provider.etag)
}

/// A fresh opaque tag for a new state.
pub fn new_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl WriteConditions {
    /// Whether the write may replace `current`.
    /// An empty header (an empty list of tags) is no condition.
    pub fn check(&self, current: Option<&StoredProvider>) -> Result<(), Error> {
        let given = |h: &Option<String>| h.clone().filter(|h| !h.trim().is_empty());
        if let Some(header) = given(&self.if_match) {
            let holds = match current {
                None => false,
                Some(_) if header.trim() == "*" => true,
                Some(p) => tags(&header).any(|(weak, tag)| !weak && tag == p.etag),
            };
            if !holds {
                return Err(Error::PreconditionFailed(match current {
                    None => "If-Match: the provider does not exist".into(),
                    Some(_) => "If-Match: the provider has changed since that ETag".into(),
                }));
            }
        }
        if let Some(header) = given(&self.if_none_match) {
            let fails = match current {
                None => false,
                Some(_) if header.trim() == "*" => true,
                Some(p) => tags(&header).any(|(_, tag)| tag == p.etag),
            };
            if fails {
                return Err(Error::PreconditionFailed(
                    "If-None-Match: the provider exists in that state".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The entity tags of a header value, as (weak, opaque tag). Quotes are optional, as clients
/// often leave them out.
fn tags(header: &str) -> impl Iterator<Item = (bool, &str)> {
    header
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            let (weak, t) = match t.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, t),
            };
            (weak, t.trim_matches('"'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(etag: &str) -> StoredProvider {
        StoredProvider {
            name: "p".into(),
            config: Default::default(),
            config_hash: None,
            etag: etag.into(),
        }
    }

    fn conditions(if_match: Option<&str>, if_none_match: Option<&str>) -> WriteConditions {
        WriteConditions {
            if_match: if_match.map(Into::into),
            if_none_match: if_none_match.map(Into::into),
        }
    }

    #[test]
    fn if_match() {
        let p = stored("abc");
        assert!(conditions(Some("\"abc\""), None).check(Some(&p)).is_ok());
        assert!(
            conditions(Some("\"x\", \"abc\""), None)
                .check(Some(&p))
                .is_ok()
        );
        assert!(conditions(Some("abc"), None).check(Some(&p)).is_ok());
        assert!(conditions(Some("*"), None).check(Some(&p)).is_ok());
        assert!(
            conditions(Some("W/\"abc\""), None).check(Some(&p)).is_err(),
            "weak tags never match If-Match"
        );
        assert!(conditions(Some("\"old\""), None).check(Some(&p)).is_err());
        assert!(conditions(Some("*"), None).check(None).is_err());
    }

    #[test]
    fn if_none_match() {
        let p = stored("abc");
        assert!(conditions(None, Some("*")).check(None).is_ok());
        assert!(conditions(None, Some("*")).check(Some(&p)).is_err());
        assert!(conditions(None, Some("W/\"abc\"")).check(Some(&p)).is_err());
        assert!(conditions(None, Some("\"other\"")).check(Some(&p)).is_ok());
    }
}
