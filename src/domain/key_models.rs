//! A key's `models`, as each Bifrost generation means it, over one stored form.
//!
//! v1.4 clients send keys inside the provider body, where `models: []` means every model. v1.5+
//! clients use `/keys`, where `[]` means no model and `["*"]` every model. The store keeps the
//! v1.5 form, which can say all three (all, a list, none); each path reads and renders what its
//! generation means. "None" cannot be said in v1.4, so a v1.4 client that sends back `[]` for a
//! key stored with no models (what it was shown) keeps it that way.
//!
//! terraform-provider-bifrost (v0.1.x) says "every model" with `models: [""]`, and compares what
//! it reads back with what it sent: that spelling is stored as sent, means every model on every
//! path, and shows as `[""]` to the v1.4 view that wrote it (`["*"]` to `/keys`).
//!
//! Model aliases likewise have two forms: v1.4's `deployments` inside a key's provider block and
//! v1.5's key-level `aliases`. Both are stored as sent; each view fills in its own form from the
//! other when it is empty, so neither generation loses sight of them.

use std::collections::{BTreeMap, HashSet};

use crate::domain::error::Error;
use crate::types::Key;

/// Every model.
const ALL: &str = "*";

/// Every model, as terraform-provider-bifrost spells it: a list of one empty name.
fn is_terraform_all(models: &[String]) -> bool {
    models.len() == 1 && models[0].is_empty()
}

/// Which generation's reading of a key applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Keys inside a provider body (v1.4): `[]` is every model.
    Inline,
    /// The `/keys` sub-resource (v1.5+): `[]` is none, `["*"]` every model.
    Keys,
}

/// The stored form of `models` sent through `view`, given the stored key it replaces.
pub fn read(
    models: Vec<String>,
    stored: Option<&Key>,
    view: View,
    param: &str,
) -> Result<Vec<String>, Error> {
    if is_terraform_all(&models) {
        return Ok(models);
    }
    check_list(&models, param, "models")?;
    if !models.is_empty() || view == View::Keys {
        return Ok(models);
    }
    let stored_none = stored.is_some_and(|k| k.models.is_empty());
    Ok(if stored_none {
        Vec::new()
    } else {
        vec![ALL.to_string()]
    })
}

/// Stored `models` as `view` shows them.
pub fn render(models: &[String], view: View) -> Vec<String> {
    match view {
        View::Inline if is_all(models) => Vec::new(),
        View::Keys if is_terraform_all(models) => vec![ALL.to_string()],
        _ => models.to_vec(),
    }
}

fn is_all(models: &[String]) -> bool {
    models.len() == 1 && models[0] == ALL
}

/// A model list as Bifrost checks it (`WhiteList`/`BlackList.Validate`): `*` stands alone, no
/// name twice, and no empty name; at most [`crate::domain::validate::MAX_MODELS`] names.
pub fn check_list(models: &[String], param: &str, what: &str) -> Result<(), Error> {
    crate::domain::validate::count(param, models.len(), crate::domain::validate::MAX_MODELS)?;
    if models.len() > 1 && models.iter().any(|m| m == ALL) {
        return Err(Error::invalid(
            "invalid_models",
            param,
            format!("Invalid {param}: wildcard '*' cannot be used with other values in the {what}"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, model) in models.iter().enumerate() {
        if model.trim().is_empty() || model.chars().any(char::is_control) {
            return Err(Error::invalid(
                "invalid_models",
                format!("{param}[{i}]"),
                "A model name is non-empty and has no control characters",
            ));
        }
        if !seen.insert(model.as_str()) {
            return Err(Error::invalid(
                "invalid_models",
                format!("{param}[{i}]"),
                format!("Invalid {param}: duplicate value in the {what}"),
            ));
        }
    }
    Ok(())
}

/// Fills in the alias form `view` reads from the other one, when it is empty.
pub fn show_aliases(key: &mut Key, view: View) {
    let deployments = [
        key.azure_key_config.as_mut().map(|c| &mut c.deployments),
        key.vertex_key_config.as_mut().map(|c| &mut c.deployments),
        key.bedrock_key_config.as_mut().map(|c| &mut c.deployments),
        key.replicate_key_config
            .as_mut()
            .map(|c| &mut c.deployments),
        key.huggingface_key_config
            .as_mut()
            .map(|c| &mut c.deployments),
    ];
    match view {
        View::Keys if key.aliases.is_empty() => {
            let merged: BTreeMap<String, String> = deployments
                .into_iter()
                .flatten()
                .flat_map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())))
                .collect();
            key.aliases = merged;
        }
        View::Inline if !key.aliases.is_empty() => {
            for d in deployments.into_iter().flatten() {
                if d.is_empty() {
                    d.extend(key.aliases.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(models: &[&str]) -> Key {
        Key {
            models: models.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn each_generation_reads_its_own_meaning() {
        let all = vec!["*".to_string()];
        assert_eq!(read(vec![], None, View::Inline, "m").unwrap(), all);
        assert!(read(vec![], None, View::Keys, "m").unwrap().is_empty());
        // A v1.4 client echoing what it was shown for a key with no models keeps "none".
        let none = key(&[]);
        assert!(
            read(vec![], Some(&none), View::Inline, "m")
                .unwrap()
                .is_empty()
        );
        assert_eq!(render(&all, View::Inline), Vec::<String>::new());
        assert_eq!(render(&all, View::Keys), all);
    }

    #[test]
    fn terraform_spelling_of_all_is_kept_for_its_view() {
        let terraform = vec![String::new()];
        for view in [View::Inline, View::Keys] {
            assert_eq!(read(terraform.clone(), None, view, "m").unwrap(), terraform);
        }
        assert_eq!(render(&terraform, View::Inline), terraform);
        assert_eq!(render(&terraform, View::Keys), vec!["*".to_string()]);
        // An empty name beside others is still refused.
        let mixed = vec![String::new(), "gpt-4o".to_string()];
        assert!(read(mixed, None, View::Inline, "m").is_err());
    }

    #[test]
    fn lists_are_checked_as_bifrost_does() {
        let list = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_list(&list(&["*", "gpt-4o"]), "models", "models").is_err());
        assert!(check_list(&list(&["a", "a"]), "models", "models").is_err());
        assert!(check_list(&list(&["a", "b"]), "models", "models").is_ok());
    }
}
