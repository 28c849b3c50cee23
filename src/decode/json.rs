//! Typed decoding of JSON values, with errors a client can act on and a secret cannot leak
//! through: the field at fault is named by its dotted path (`keys[2].weight`), and any string the
//! client sent is removed from serde's message, since it may have been a secret.

use serde::de::DeserializeOwned;

use crate::domain::error::Error;

/// The 400 of a body that is not JSON at all.
pub fn syntax_error(error: &serde_json::Error) -> Error {
    Error::invalid_request(
        "invalid_json",
        format!(
            "Invalid JSON body: {}",
            without_strings(&strip_position(&error.to_string()))
        ),
    )
}

/// Decodes a JSON value found at `base` (a dotted path, empty for a whole body) into `T`.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value, base: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| decode_error(e, base))
}

fn decode_error(error: serde_path_to_error::Error<serde_json::Error>, base: &str) -> Error {
    let path = match (base, error.path().to_string()) {
        ("", path) => path,
        (base, path) if path == "." => base.to_string(),
        (base, path) => format!("{base}.{path}"),
    };
    let inner = error.into_inner();
    let text = without_strings(&strip_position(&inner.to_string()));
    if !inner.is_data() {
        return Error::invalid_request("invalid_json", format!("Invalid JSON body: {text}"));
    }
    // The path ends at the struct that refused, or (for an unknown field) at the field itself.
    let join = |field: &str| {
        if path == "." {
            field.to_string()
        } else if path == field || path.ends_with(&format!(".{field}")) {
            path.clone()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(field) = quoted(&text, "unknown field `") {
        let param = join(field);
        return Error::invalid(
            "unknown_field",
            param.clone(),
            format!("Unknown field: {param}"),
        );
    }
    if let Some(field) = quoted(&text, "missing field `") {
        let param = join(field);
        return Error::invalid(
            "missing_field",
            param.clone(),
            format!("Missing required field: {param}"),
        );
    }
    if path == "." {
        return Error::invalid_request("invalid_body", format!("Invalid request body: {text}"));
    }
    Error::invalid(
        "invalid_field",
        path.clone(),
        format!("Invalid value for {path}: {text}"),
    )
}

/// The name in "…`name`…" that follows `prefix`, cut to a sane length.
fn quoted<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(prefix)?;
    let name = &rest[..rest.find('`')?];
    Some(&name[..name.char_indices().nth(64).map_or(name.len(), |(i, _)| i)])
}

/// serde_json appends " at line L column C"; the param already says where.
fn strip_position(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// serde quotes the offending string in its messages (`invalid type: string "sk-…"`, ``unknown
/// variant `sk-…` ``). Any string the client sent may be a secret, so each quoted string becomes
/// `a string`, and an unknown variant goes unnamed.
pub fn without_strings(text: &str) -> String {
    let text = match text.strip_prefix("unknown variant `") {
        Some(rest) => match rest.find("`, ") {
            Some(end) => format!("unknown variant, {}", &rest[end + 3..]),
            None => "unknown variant".to_string(),
        },
        None => text.to_string(),
    };
    let text = text.as_str();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("string \"") {
        out.push_str(&rest[..start]);
        let quoted = &rest[start + "string \"".len()..];
        let mut end = None;
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        out.push_str("a string");
        rest = match end {
            Some(i) => &quoted[i + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_are_removed() {
        let text = r#"invalid type: string "sk-secret\"quoted", expected a boolean"#;
        assert_eq!(
            without_strings(text),
            "invalid type: a string, expected a boolean"
        );
        let text = "unknown variant `sk-secret`, expected one of `none`, `http`";
        assert_eq!(
            without_strings(text),
            "unknown variant, expected one of `none`, `http`"
        );
    }
}
