//! The decode layer: request JSON of every Bifrost generation into the typed models.
//!
//! [`generations`] brings a body to the one form the models decode, whichever generation wrote
//! it; [`json`] decodes that form into a model and words its errors. [`decode`] is the two in
//! order, for a whole request body.

pub mod config_file;
pub mod generations;
pub mod json;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::domain::error::Error;

/// Decodes a JSON body into `T`, naming the field at fault on failure. The body is first
/// brought to the form the model decodes, whichever Bifrost generation wrote it ([`generations`]).
pub fn decode<T: DeserializeOwned + JsonSchema>(bytes: &[u8]) -> Result<T, Error> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| json::syntax_error(&e))?;
    generations::normalize(&mut value, &T::schema_name())?;
    json::from_value(value, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::Error;

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let err = decode::<crate::types::UpdateProviderRequest>(
            br#"{"network_config":{"base_urll":""}}"#,
        )
        .unwrap_err();
        match err {
            Error::Invalid { code, param, .. } => {
                assert_eq!(code, "unknown_field");
                assert_eq!(param.as_deref(), Some("network_config.base_urll"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_secret_in_the_wrong_place_is_not_echoed() {
        let err = decode::<crate::types::UpdateProviderRequest>(
            br#"{"keys":[{"weight":"sk-live-abcdefghijklmnop"}]}"#,
        )
        .unwrap_err();
        let text = format!("{err:?}");
        assert!(!text.contains("sk-live"), "{text}");
        assert!(text.contains("keys[0].weight"), "{text}");
    }
}
