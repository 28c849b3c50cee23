//! The operation a request asks for, by method and path, as the metrics label it: the spec's
//! operation ids, `metrics`, or `other` (a path or method the API does not serve). A bounded
//! set, so that no label ever carries what a client wrote (a provider's name above all).

use http::Method;

/// The operation `method` on `path` asks for.
pub fn of(method: &Method, path: &str) -> &'static str {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let named = |s: &&str| !s.is_empty();
    let operation = match segments.as_slice() {
        ["health"] => [("GET", "health")].as_slice(),
        ["metrics"] => &[("GET", "metrics")],
        ["api", "changes"] => &[("GET", "watchChanges")],
        ["api", "sync"] => &[("GET", "getSyncStatus")],
        ["api", "providers"] => &[("GET", "listProviders"), ("POST", "addProvider")],
        ["api", "providers", p] if named(p) => &[
            ("GET", "getProvider"),
            ("PUT", "updateProvider"),
            ("DELETE", "deleteProvider"),
        ],
        ["api", "providers", p, "keys"] if named(p) => {
            &[("GET", "listProviderKeys"), ("POST", "createProviderKey")]
        }
        ["api", "providers", p, "keys", k] if named(p) && named(k) => &[
            ("GET", "getProviderKey"),
            ("PUT", "updateProviderKey"),
            ("DELETE", "deleteProviderKey"),
        ],
        ["api", "providers", p, "history"] if named(p) => &[("GET", "getProviderHistory")],
        ["api", "providers", p, "history", r] if named(p) && named(r) => {
            &[("GET", "getProviderRevision")]
        }
        ["api", "providers", p, "rollback"] if named(p) => &[("POST", "rollbackProvider")],
        _ => &[],
    };
    operation
        .iter()
        .find(|(m, _)| *m == method.as_str())
        .map_or("other", |(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_named_and_nothing_else_is() {
        for (method, path, id) in [
            (Method::GET, "/api/providers", "listProviders"),
            (Method::POST, "/api/providers", "addProvider"),
            (Method::PUT, "/api/providers/openai", "updateProvider"),
            (
                Method::GET,
                "/api/providers/a%20b/keys/k1",
                "getProviderKey",
            ),
            (
                Method::GET,
                "/api/providers/x/history/3",
                "getProviderRevision",
            ),
            (
                Method::POST,
                "/api/providers/x/rollback",
                "rollbackProvider",
            ),
            (Method::GET, "/api/changes", "watchChanges"),
            (Method::GET, "/api/sync", "getSyncStatus"),
            (Method::GET, "/metrics", "metrics"),
            (Method::PATCH, "/api/providers/openai", "other"),
            (Method::GET, "/api/providers/", "other"),
            (Method::GET, "/secret-looking-path", "other"),
        ] {
            assert_eq!(of(&method, path), id, "{method} {path}");
        }
    }

    #[test]
    fn the_table_names_every_operation_of_the_api_as_the_spec_does() {
        let spec = crate::http::api::openapi();
        let mut seen = 0;
        for (path, operations) in spec["paths"].as_object().unwrap() {
            let concrete = path
                .replace("{provider}", "openai")
                .replace("{key_id}", "k1")
                .replace("{revision}", "3");
            for (method, operation) in operations.as_object().unwrap() {
                let method: Method = method.to_uppercase().parse().unwrap();
                let id = operation["operationId"].as_str().unwrap();
                assert_eq!(of(&method, &concrete), id, "{method} {path}");
                seen += 1;
            }
        }
        assert!(seen >= 15, "{seen}");
    }
}
