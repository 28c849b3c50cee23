//! The keys sub-resource (Bifrost v1.5+): one key of a provider at a time.
//!
//! Keys here and keys inside a provider body are two views of one stored key set: each
//! operation is a decision about the whole provider, made in the store's atomic mutation, so a
//! key write and a provider write never interleave. The same rules apply as inside a body
//! (ids, secrets and their round trip, validation); `models` reads as v1.5 means it.

use crate::domain::error::Error;
use crate::domain::key_models::View;
use crate::domain::provider::{self, StoredProvider};
use crate::domain::secrets;
use crate::domain::validate;
use crate::types::Key;

/// The provider `name`, which a key operation needs to exist.
fn existing<'a>(
    name: &str,
    current: Option<&'a StoredProvider>,
) -> Result<&'a StoredProvider, Error> {
    current.ok_or_else(|| Error::NotFound(name.to_string()))
}

fn refuse_key_less(current: &StoredProvider, what: &str) -> Result<(), Error> {
    if current.is_key_less() {
        return Err(Error::invalid_request(
            "keys_not_allowed",
            format!("Cannot {what} keys on a keyless provider"),
        ));
    }
    Ok(())
}

/// The stored key `id` of a provider, and where it is.
fn find<'a>(current: &'a StoredProvider, id: &str) -> Result<(usize, &'a Key), Error> {
    current
        .keys()
        .iter()
        .enumerate()
        .find(|(_, k)| k.id.as_deref() == Some(id))
        .ok_or_else(|| Error::KeyNotFound(format!("{}/{id}", current.name)))
}

/// A non-empty key name that another key of the provider (not `except`) already has.
fn name_taken(current: &StoredProvider, name: &str, except: Option<&str>) -> Result<(), Error> {
    let taken = !name.is_empty()
        && current
            .keys()
            .iter()
            .any(|k| k.name == name && k.id.as_deref() != except);
    if taken {
        return Err(Error::KeyExists {
            message: "The provider already has a key with that name".into(),
            param: "name",
        });
    }
    Ok(())
}

/// Providers whose keys need no `value` (Bifrost v1.5's list): their credentials live elsewhere.
const VALUELESS: &[&str] = &["vertex", "bedrock", "vllm", "azure", "ollama", "sgl"];

/// The checks Bifrost v1.5 makes on a key written through `/keys`: a value, unless the
/// provider's credentials live elsewhere, and a server URL for Ollama and SGLang keys.
fn check_v15(key: &Key, base: &str) -> Result<(), Error> {
    let empty = |v: Option<&crate::types::EnvVar>| {
        v.is_none_or(|v| secrets::kind(v) == secrets::Kind::Literal(String::new()))
    };
    if !VALUELESS.contains(&base) && empty(key.value.as_ref()) {
        return Err(Error::invalid(
            "missing_key_value",
            "value",
            "Key value must not be empty",
        ));
    }
    let url = match base {
        "ollama" => Some((
            "ollama_key_config.url",
            "Ollama",
            key.ollama_key_config.as_ref().and_then(|c| c.url.as_ref()),
        )),
        "sgl" => Some((
            "sgl_key_config.url",
            "SGL",
            key.sgl_key_config.as_ref().and_then(|c| c.url.as_ref()),
        )),
        _ => None,
    };
    if let Some((param, what, value)) = url
        && empty(value)
    {
        return Err(Error::invalid(
            "missing_key_url",
            param,
            format!("{param} is required for {what} keys"),
        ));
    }
    Ok(())
}

/// The provider with `key` added under `id` (see [`provider::key_id`]).
pub fn create(
    name: &str,
    current: Option<&StoredProvider>,
    id: String,
    key: Key,
) -> Result<StoredProvider, Error> {
    let current = existing(name, current)?;
    refuse_key_less(current, "add")?;
    if find(current, &id).is_ok() {
        return Err(Error::KeyExists {
            message: format!("The provider already has a key with id {id:?}"),
            param: "id",
        });
    }
    name_taken(current, &key.name, None)?;
    check_v15(&key, &current.base())?;
    validate::count("keys", current.keys().len() + 1, validate::MAX_KEYS)?;
    let key = provider::merge_key(key, id, None, &current.base(), "", View::Keys)?;
    let mut next = current.clone();
    next.config.keys.get_or_insert_with(Vec::new).push(key);
    Ok(next)
}

/// The provider with key `id` replaced by `key`, whose own `id` (if any) is ignored.
pub fn update(
    name: &str,
    current: Option<&StoredProvider>,
    id: &str,
    key: Key,
) -> Result<StoredProvider, Error> {
    let current = existing(name, current)?;
    let (at, stored) = find(current, id)?;
    refuse_key_less(current, "update")?;
    name_taken(current, &key.name, Some(id))?;
    check_v15(&key, &current.base())?;
    let key = provider::merge_key(
        key,
        id.to_string(),
        Some(stored),
        &current.base(),
        "",
        View::Keys,
    )?;
    let mut next = current.clone();
    next.config.keys.get_or_insert_with(Vec::new)[at] = key;
    Ok(next)
}

/// The provider without key `id`.
pub fn delete(
    name: &str,
    current: Option<&StoredProvider>,
    id: &str,
) -> Result<StoredProvider, Error> {
    let current = existing(name, current)?;
    let (at, _) = find(current, id)?;
    let mut next = current.clone();
    next.config.keys.get_or_insert_with(Vec::new).remove(at);
    Ok(next)
}
