//! Revisions: every accepted write is one, numbered store-wide. What a revision records (who,
//! when, what action, from which source, which fields changed), how the changed fields are found,
//! and how long revisions are kept.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::domain::provider::StoredProvider;
use crate::types::{ProviderChange, Revision as RevisionBody, RevisionAction, RevisionSource};

/// Where a write came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Api,
    ConfigFile,
    Rollback,
    /// `import-bifrost`: what a Bifrost config store held.
    Import,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::ConfigFile => "config_file",
            Source::Rollback => "rollback",
            Source::Import => "import",
        }
    }

    pub fn parse(text: &str) -> Source {
        match text {
            "config_file" => Source::ConfigFile,
            "rollback" => Source::Rollback,
            "import" => Source::Import,
            _ => Source::Api,
        }
    }
}

/// Who wrote and from where; the store records it with the revision.
#[derive(Clone, Debug)]
pub struct WriteMeta {
    pub source: Source,
    /// Who made the write, as verified (a token's name), or as the contract says without tokens.
    pub actor: String,
    /// What the request's `X-Bifrost-Actor` header claimed, unchecked.
    pub unverified_actor: Option<String>,
}

impl WriteMeta {
    /// A write of `import-bifrost` into a store (actor `import-bifrost`).
    pub fn import() -> Self {
        WriteMeta {
            source: Source::Import,
            actor: "import-bifrost".into(),
            unverified_actor: None,
        }
    }

    pub fn config_file() -> Self {
        WriteMeta {
            source: Source::ConfigFile,
            actor: "config_file".into(),
            unverified_actor: None,
        }
    }
}

/// The longest actor name kept.
const MAX_ACTOR: usize = 128;

/// Who made a request's write: the name of the token it carried (`token`), and what its
/// `X-Bifrost-Actor` header claimed (printable, trimmed, at most 128 characters), kept apart and
/// unverified. On a server without tokens (`token` is `None`) the claim is all there is: the
/// actor is the claim, else `anonymous`.
pub fn attribution(headers: &http::HeaderMap, token: Option<&str>) -> (String, Option<String>) {
    let claimed = headers
        .get("x-bifrost-actor")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.chars().any(char::is_control))
        .map(|a| a.chars().take(MAX_ACTOR).collect::<String>());
    let actor = match (token, &claimed) {
        (Some(token), _) => token.to_string(),
        (None, Some(claimed)) => claimed.clone(),
        (None, None) => "anonymous".into(),
    };
    (actor, claimed)
}

/// One revision as a store keeps it (its snapshot aside).
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    pub revision: i64,
    pub provider: String,
    /// RFC 3339, UTC.
    pub at: String,
    pub action: RevisionAction,
    pub source: Source,
    pub actor: String,
    pub unverified_actor: Option<String>,
    pub changed: Vec<String>,
    pub etag: Option<String>,
}

impl Revision {
    /// The revision of a write of `provider` from `before` to `after`, which changed the paths
    /// `changed` (see [`changed`]).
    pub fn of_write(
        revision: i64,
        provider: &str,
        before: Option<&StoredProvider>,
        after: Option<&StoredProvider>,
        meta: &WriteMeta,
        changed: Vec<String>,
    ) -> Revision {
        let action = match (before, after) {
            (None, _) => RevisionAction::Create,
            (Some(_), None) => RevisionAction::Delete,
            (Some(_), Some(_)) => RevisionAction::Update,
        };
        Revision {
            revision,
            provider: provider.to_string(),
            at: now(),
            action,
            source: meta.source,
            actor: meta.actor.clone(),
            unverified_actor: meta.unverified_actor.clone(),
            changed,
            etag: after.map(|a| a.etag.clone()),
        }
    }

    pub fn body(&self) -> RevisionBody {
        RevisionBody {
            revision: self.revision,
            at: self.at.clone(),
            action: self.action,
            source: match self.source {
                Source::Api => RevisionSource::Api,
                Source::ConfigFile => RevisionSource::ConfigFile,
                Source::Rollback => RevisionSource::Rollback,
                Source::Import => RevisionSource::Import,
            },
            actor: self.actor.clone(),
            unverified_actor: self.unverified_actor.clone(),
            changed: self.changed.clone(),
            etag: self.etag.clone(),
        }
    }

    pub fn change(&self) -> ProviderChange {
        ProviderChange {
            revision: self.revision,
            provider: self.provider.clone(),
            action: self.action,
            etag: self.etag.clone(),
            at: self.at.clone(),
        }
    }
}

/// The current time, RFC 3339 in UTC with milliseconds.
pub fn now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_millis())
}

/// Seconds since the epoch as RFC 3339 (civil-from-days, Howard Hinnant's algorithm).
fn rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The dotted paths of the fields that differ between two states of a provider; keys by id
/// (`keys.<id>.weight`), a secret by its path only.
pub fn changed(before: Option<&StoredProvider>, after: Option<&StoredProvider>) -> Vec<String> {
    // The common case of a write that changes nothing (a re-sent body) costs one comparison.
    if let (Some(b), Some(a)) = (before, after)
        && b.config == a.config
    {
        return Vec::new();
    }
    let view = |p: Option<&StoredProvider>| {
        let mut value = p
            .map(|p| serde_json::to_value(&p.config).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        if let Some(keys) = value.get_mut("keys").map(Value::take) {
            let by_id: serde_json::Map<String, Value> = keys
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| (k["id"].as_str().unwrap_or_default().to_string(), k.clone()))
                .collect();
            value["keys"] = Value::Object(by_id);
        }
        value
    };
    // A provider that appears or disappears changes its blocks, named at the top level.
    if before.is_none() || after.is_none() {
        let present = view(before.or(after));
        return present
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
    }
    let mut out = BTreeSet::new();
    diff(&view(before), &view(after), String::new(), &mut out);
    out.into_iter().collect()
}

fn diff(a: &Value, b: &Value, path: String, out: &mut BTreeSet<String>) {
    // Something that appears or disappears is compared member by member with nothing.
    let empty = Value::Object(serde_json::Map::new());
    let (a, b) = match (a, b) {
        (Value::Null, Value::Object(_)) => (&empty, b),
        (Value::Object(_), Value::Null) => (a, &empty),
        _ => (a, b),
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) if !is_secret(x) && !is_secret(y) => {
            let names: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for name in names {
                let child = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                diff(
                    x.get(name).unwrap_or(&Value::Null),
                    y.get(name).unwrap_or(&Value::Null),
                    child,
                    out,
                );
            }
        }
        _ if a != b => {
            out.insert(if path.is_empty() { "*".into() } else { path });
        }
        _ => {}
    }
}

/// A secret object (`{value, env_var, from_env, …}`) is compared whole: its path is named, not
/// which of its members changed.
fn is_secret(object: &serde_json::Map<String, Value>) -> bool {
    object.contains_key("value") && object.contains_key("from_env")
}

/// How long revisions are kept (`--history-revisions`, `--history-days`).
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// The newest revisions of each provider whose state is kept (for `history/{revision}` and
    /// rollback).
    pub per_provider: usize,
    /// Revisions older than this many days are dropped, summary and state.
    pub days: u64,
    /// The most revisions kept store-wide (the change feed's reach); older ones are compacted.
    pub feed: i64,
}

impl Retention {
    /// How many revisions pass between two compactions: 1024, or a quarter of a small feed.
    pub fn compact_every(&self) -> i64 {
        (self.feed / 4).clamp(1, 1024)
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            per_provider: 100,
            days: 90,
            feed: 100_000,
        }
    }
}

/// RFC 3339 of `days` ago, to compare with stored times.
pub fn cutoff(days: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64 - (days as i64) * 86_400, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::UpdateProviderRequest;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000, 5), "2026-11-18T11:06:40.005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn changed_fields_are_named_and_secrets_by_path_only() {
        let state = |json: serde_json::Value| StoredProvider {
            name: "p".into(),
            config: serde_json::from_value::<UpdateProviderRequest>(json).unwrap(),
            config_hash: None,
            etag: "e".into(),
        };
        let a = state(
            serde_json::json!({"keys": [{"id": "k", "value": {"value": "sk-a", "from_env": false}, "weight": 1.0}],
                                         "network_config": {"max_retries": 1}}),
        );
        let b = state(
            serde_json::json!({"keys": [{"id": "k", "value": {"value": "sk-b", "from_env": false}, "weight": 2.0}],
                                         "network_config": {"max_retries": 1}}),
        );
        assert_eq!(
            changed(Some(&a), Some(&b)),
            ["keys.k.value", "keys.k.weight"]
        );
        assert!(changed(Some(&a), Some(&a)).is_empty());
        let created = changed(None, Some(&a));
        assert!(created.contains(&"keys".to_string()), "{created:?}");
        assert!(
            created.contains(&"network_config".to_string()),
            "{created:?}"
        );
        let mut added = b.clone();
        added.config.keys.as_mut().unwrap()[0].id = Some("k2".into());
        assert!(changed(Some(&a), Some(&added)).contains(&"keys.k2.weight".to_string()));
    }
}
