//! The configuration file `dump` writes and `diff`, `apply` and `validate` read: a Bifrost
//! `config.json` (`{"providers": {NAME: entry}}`, which `serve --config` and Bifrost both load),
//! in JSON or YAML, plus one member of our own, `bifrost_providers`, that both ignore: the
//! `ETag` of each provider when it was dumped (so that `apply` can tell what changed underneath)
//! and the `--provider` patterns the dump selected (so that `apply --prune` deletes only among
//! them). Also: reading what a server holds now, for the plan.

use std::collections::BTreeMap;
use std::path::Path;

use bifrost_providers_client::Client;
use bifrost_providers_client::types::{ProviderResponse, UpdateProviderRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The file's own member: what a dump knew.
pub const META: &str = "bifrost_providers";

/// A file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Yaml,
}

/// What the dump knew, under [`META`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// The server the dump read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The `--provider` patterns of the dump; empty: every provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select: Vec<String>,
    /// Each provider's `ETag` when it was dumped.
    #[serde(default)]
    pub etags: BTreeMap<String, String>,
}

/// A configuration file, read.
#[derive(Clone, Debug, Default)]
pub struct Document {
    /// Each provider's entry, as written (checked when planned).
    pub providers: BTreeMap<String, Value>,
    pub meta: Meta,
}

impl Document {
    /// Reads a file: YAML when its name ends in `.yaml` or `.yml`, JSON otherwise. An error
    /// names the file and never quotes a value from it.
    pub fn read(path: &Path) -> Result<Document, String> {
        let shown = path.display();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        let root: Value = if yaml {
            serde_yaml_ng::from_str(&text).map_err(|e| {
                let at = e
                    .location()
                    .map(|l| format!(" at line {} column {}", l.line(), l.column()))
                    .unwrap_or_default();
                format!("{shown} is not valid YAML{at}")
            })?
        } else {
            serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{shown} is not valid JSON at line {} column {}",
                    e.line(),
                    e.column()
                )
            })?
        };
        let Value::Object(mut root) = root else {
            return Err(format!("{shown}: the top level must be an object"));
        };
        let providers = match root.remove("providers") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(providers)) => providers.into_iter().collect(),
            Some(_) => {
                return Err(format!(
                    "{shown}: \"providers\" must be an object of provider name to configuration"
                ));
            }
        };
        let meta = match root.remove(META) {
            None | Some(Value::Null) => Meta::default(),
            Some(meta) => serde_json::from_value(meta).map_err(|e| {
                format!(
                    "{shown}: \"{META}\" is not what a dump writes: {}",
                    crate::decode::json::without_strings(&e.to_string())
                )
            })?,
        };
        Ok(Document { providers, meta })
    }

    /// The file's text in `format`.
    pub fn render(&self, format: Format) -> Result<String, String> {
        let mut root = serde_json::Map::new();
        root.insert(
            "providers".into(),
            Value::Object(self.providers.clone().into_iter().collect()),
        );
        root.insert(
            META.into(),
            serde_json::to_value(&self.meta).map_err(|e| e.to_string())?,
        );
        let root = Value::Object(root);
        match format {
            Format::Json => serde_json::to_string_pretty(&root)
                .map(|text| text + "\n")
                .map_err(|e| e.to_string()),
            Format::Yaml => serde_yaml_ng::to_string(&root).map_err(|e| e.to_string()),
        }
    }
}

/// Which providers a command reaches: those matching any pattern, or all without one.
pub struct Selection {
    patterns: Option<globset::GlobSet>,
}

impl Selection {
    /// The patterns of `--provider`, or else those the file's dump selected.
    pub fn new(given: &[String], meta: &Meta) -> Result<Selection, String> {
        let patterns = if given.is_empty() {
            &meta.select
        } else {
            given
        };
        if patterns.is_empty() {
            return Ok(Selection { patterns: None });
        }
        let mut set = globset::GlobSetBuilder::new();
        for pattern in patterns {
            set.add(
                globset::GlobBuilder::new(pattern)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| format!("--provider {pattern:?}: {e}"))?,
            );
        }
        Ok(Selection {
            patterns: Some(set.build().map_err(|e| e.to_string())?),
        })
    }

    /// Whether `name` is selected.
    pub fn has(&self, name: &str) -> bool {
        self.patterns.as_ref().is_none_or(|set| set.is_match(name))
    }
}

/// A provider as a server holds it now.
#[derive(Clone, Debug)]
pub struct Current {
    /// What its GET showed, as a request body (keys read from `/keys` where the GET shows none).
    pub shown: UpdateProviderRequest,
    /// Its `ETag`; `None` from a server that sends none (a Bifrost gateway).
    pub etag: Option<String>,
    /// Its keys live under `/keys` only (a Bifrost v1.5+ gateway, whose GET shows none).
    pub keys_apart: bool,
}

/// A failure to read a server: the connection, authentication or an unexpected answer.
pub fn unreachable(error: impl std::fmt::Display) -> String {
    format!("cannot read the server: {error}")
}

/// Every selected provider the server holds, by name.
pub async fn fetch(
    client: &Client,
    selection: &Selection,
) -> Result<BTreeMap<String, Current>, String> {
    let list = client
        .list_providers()
        .send()
        .await
        .map_err(unreachable)?
        .into_inner();
    let mut out = BTreeMap::new();
    let selected: Vec<String> = list
        .providers
        .into_iter()
        .map(|p| p.name)
        .filter(|name| selection.has(name))
        .collect();
    let progress = crate::cli::remote::progress(selected.len() as u64, "reading providers");
    for name in selected {
        progress.inc(1);
        let answer = match client.get_provider().provider(name.as_str()).send().await {
            Ok(answer) => answer,
            // Deleted between the list and the GET: not there.
            Err(bifrost_providers_client::Error::ErrorResponse(e)) if e.status() == 404 => {
                continue;
            }
            Err(e) => return Err(unreachable(e)),
        };
        let etag = answer
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let response: ProviderResponse = answer.into_inner();
        let mut shown = UpdateProviderRequest::from(response);
        let mut keys_apart = false;
        if shown.keys.is_none() {
            // No keys shown: a Bifrost v1.5+ GET shows none, they are under /keys (which a v1.4
            // gateway does not serve: its empty list was the truth).
            let keys = match client
                .list_provider_keys()
                .provider(name.as_str())
                .send()
                .await
            {
                Ok(keys) => {
                    let keys = keys.into_inner().keys;
                    keys_apart = !keys.is_empty();
                    keys
                }
                Err(e) if e.status().is_some_and(|s| matches!(s.as_u16(), 404 | 405)) => Vec::new(),
                Err(e) => return Err(unreachable(e)),
            };
            shown.keys = Some(keys);
        }
        out.insert(
            name,
            Current {
                shown,
                etag,
                keys_apart,
            },
        );
    }
    progress.finish_and_clear();
    Ok(out)
}
