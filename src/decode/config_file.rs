//! Reading a Bifrost `config.json`: each entry of its `providers` section, as any generation
//! writes it, decoded and checked like an API request and hashed as `domain::config_file`
//! describes, before anything is written.

use std::path::Path;

use serde_json::Value;

use crate::decode::{generations, json};
use crate::domain::config_file::{FileProvider, hash};
use crate::domain::error::Error;
use crate::domain::{provider, validate};
use crate::types::UpdateProviderRequest;

/// Reads and checks every provider of the file at `path`. An error names the file, and where it
/// concerns a provider, the provider and the field; it never quotes a value from the file.
pub fn read(path: &Path) -> Result<Vec<FileProvider>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {shown}: {e}"))?;
    let root: Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "config file {shown} is not valid JSON: {}",
            json::without_strings(&e.to_string())
        )
    })?;
    let Value::Object(mut root) = root else {
        return Err(format!(
            "config file {shown}: the top level must be an object"
        ));
    };
    let providers = match root.remove("providers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(providers)) => providers,
        Some(_) => {
            return Err(format!(
                "config file {shown}: \"providers\" must be an object of provider name to configuration"
            ));
        }
    };
    let mut seen = std::collections::HashSet::new();
    providers
        .into_iter()
        .map(|(name, entry)| {
            let name = name.to_lowercase();
            if !seen.insert(name.clone()) {
                return Err(format!(
                    "config file {shown}: provider {name:?} is given twice (names are read in lower case)"
                ));
            }
            entry_state(&name, entry)
                .map_err(|e| format!("config file {shown}: provider {name:?}: {e}"))
        })
        .collect()
}

/// One entry as a stored state, with its hashes.
fn entry_state(name: &str, entry: Value) -> Result<FileProvider, String> {
    validate::provider_name(name, "providers").map_err(describe)?;
    let key_hashes: Vec<String> = match entry.get("keys") {
        Some(Value::Array(keys)) => keys.iter().map(hash).collect(),
        _ => Vec::new(),
    };
    let provider_hash = match &entry {
        Value::Object(fields) => {
            let mut settings = fields.clone();
            settings.remove("keys");
            hash(&Value::Object(settings))
        }
        other => hash(other),
    };
    let request = entry_request(entry).map_err(describe)?;
    let mut state = provider::desired_state(name, request, None).map_err(describe)?;
    state.config_hash = Some(provider_hash);
    for (key, hash) in state.config.keys.iter_mut().flatten().zip(key_hashes) {
        key.config_hash = Some(hash);
    }
    Ok(FileProvider {
        name: name.to_string(),
        state,
    })
}

/// One entry of a `providers` section as the request body it amounts to, read as the API reads
/// one (every generation's members, `null` as absent), with `keys` present: a file's provider
/// has exactly the keys it lists.
pub fn entry_request(mut entry: Value) -> Result<UpdateProviderRequest, Error> {
    generations::normalize(&mut entry, "UpdateProviderRequest")?;
    let mut request: UpdateProviderRequest = json::from_value(entry, "")?;
    request.keys.get_or_insert_with(Vec::new);
    Ok(request)
}

fn describe(error: Error) -> String {
    match error {
        Error::Invalid {
            message,
            param: Some(param),
            ..
        } => format!("field {param}: {message}"),
        other => other.to_string(),
    }
}
