//! The server's environment is never readable through the API: every field that takes a
//! reference (each found in the spec, not listed here), probed with the variables a server runs
//! with, on every store; `--env-allow`; config.json; and credentials outside the secret fields.

mod common;

use common::{Backend, TestServer, assert_error, get, put};
use serde_json::{Value, json};

/// A variable a reference may name, and its value (the leak check searches every byte for it).
const ALLOWED: (&str, &str) = ("PROBE_API_KEY", "probe-resolved-value-0123456789");

/// Variables no reference may name, with values that must never show.
const DENIED: [(&str, &str); 3] = [
    ("BIFROST_PROBE_SETTING", "bifrost-setting-value-0123456789"),
    ("PGPASSWORD", "pg-password-value-0123456789"),
    (
        "DATABASE_URL",
        "postgres://app:db-password-0123456789@db/app",
    ),
];

/// Every field that takes a reference, from `openapi.json`: its path in a provider body, the
/// provider it belongs to, and whether it takes a secret object (`Secret`) or a string
/// (`StringSecret`).
fn reference_fields() -> Vec<(String, String, bool)> {
    let spec: Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    let schemas = &spec["components"]["schemas"];
    let target = |p: &Value| -> Option<String> {
        let text = p.to_string();
        let at = text.find("#/components/schemas/")? + "#/components/schemas/".len();
        Some(text[at..].split('"').next()?.to_string())
    };
    let takes = |p: &Value| target(p).filter(|t| t == "Secret" || t == "StringSecret");
    let mut fields = Vec::new();
    for (name, p) in schemas["Key"]["properties"].as_object().unwrap() {
        if takes(p).is_some() {
            fields.push((format!("keys.0.{name}"), "openai".to_string(), true));
        }
        let Some(block) = target(p).filter(|t| t.ends_with("KeyConfig")) else {
            continue;
        };
        let provider = name.strip_suffix("_key_config").unwrap().to_string();
        for (field, fp) in schemas[&block]["properties"].as_object().unwrap() {
            if takes(fp).is_some() {
                fields.push((format!("keys.0.{name}.{field}"), provider.clone(), true));
            }
        }
    }
    for (block, schema) in [
        ("network_config", "NetworkConfig"),
        ("proxy_config", "ProxyConfig"),
    ] {
        for (field, p) in schemas[schema]["properties"].as_object().unwrap() {
            if let Some(kind) = takes(p) {
                fields.push((
                    format!("{block}.{field}"),
                    "openai".to_string(),
                    kind == "Secret",
                ));
            }
        }
    }
    fields
}

/// A provider body with `reference` at `path` (dots between names, numbers index arrays).
fn body_with(path: &str, object: bool, reference: &str) -> Value {
    let value = if object {
        json!({"value": reference})
    } else {
        json!(reference)
    };
    let mut body = json!({"keys": [{"name": "probe", "value": "sk-probe-literal-0123456789"}]});
    if path.starts_with("proxy_config.") {
        body["proxy_config"] = json!({"type": "http", "url": "http://proxy.local:3128"});
    }
    let mut at = &mut body;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        at = match part.parse::<usize>() {
            Ok(n) => &mut at[n],
            Err(_) if last => {
                at[*part] = value.clone();
                break;
            }
            Err(_) => {
                if at.get(*part).is_none() {
                    at[*part] = json!({});
                }
                &mut at[*part]
            }
        };
    }
    body
}

fn env() -> Vec<(&'static str, &'static str)> {
    let mut env = vec![ALLOWED];
    env.extend(DENIED);
    env
}

async fn no_field_reads_the_servers_environment(backend: Backend) {
    let server = TestServer::on_with(&backend, &env(), &[]);
    let fields = reference_fields();
    assert!(fields.len() >= 29, "the spec names {} fields", fields.len());
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    for (path, provider, object) in &fields {
        let param = path.replace(".0.", "[0].");
        for name in [
            "HOME",
            "PATH",
            "USER",
            DENIED[0].0,
            DENIED[1].0,
            DENIED[2].0,
        ] {
            let body = body_with(path, *object, &format!("env.{name}"));
            let (status, err) = put(&server, provider, &body).await;
            assert_error(status, &err, 400, "env_var_not_allowed");
            assert_eq!(err["error"]["param"], param.as_str(), "{err}");
            assert_eq!(get(&server, provider).await.0, 404, "nothing is stored");
        }
        // An allowed variable: stored as a reference, shown as itself with a redacted value,
        // whether the field is a secret or not.
        let body = body_with(path, *object, &format!("env.{}", ALLOWED.0));
        let (status, shown) = put(&server, provider, &body).await;
        assert_eq!(status, 200, "{path}: {shown}");
        let text = shown.to_string();
        assert!(
            !text.contains(ALLOWED.1),
            "{path} shows the variable's value: {text}"
        );
        assert!(!text.contains(&home), "{path}: {text}");
        assert!(
            text.contains(&format!("env.{}", ALLOWED.0)),
            "{path}: {text}"
        );
        let (status, _, _) = common::raw(
            "DELETE",
            &format!("{}/api/providers/{provider}", server.url),
            None,
        )
        .await;
        assert_eq!(status, 200);
    }
}

async fn the_allow_list_narrows_and_never_widens(backend: Backend) {
    let mut server = TestServer::on_with(
        &backend,
        &[("OPENAI_PROD_KEY", "sk-prod-from-env-0123456789"), ALLOWED],
        &["--env-allow", "OPENAI_*,PROBE_*"],
    );
    let reference = |name: &str| json!({"keys": [{"id": "k", "value": format!("env.{name}")}]});
    assert_eq!(
        put(&server, "openai", &reference("OPENAI_PROD_KEY"))
            .await
            .0,
        200
    );
    let (status, err) = put(&server, "groq", &reference("ANTHROPIC_KEY")).await;
    assert_error(status, &err, 400, "env_var_not_allowed");
    assert_eq!(err["error"]["param"], "keys[0].value");

    // `*` allows every name but the server's settings and the system's.
    server.set_args(&["--env-allow", "*"]);
    assert!(server.stop());
    server.restart();
    assert_eq!(
        put(&server, "groq", &reference("ANTHROPIC_KEY")).await.0,
        200
    );
    for name in ["HOME", "BIFROST_ADMIN_TOKEN", "PGPASSWORD", "LD_PRELOAD"] {
        let (status, err) = put(&server, "mistral", &reference(name)).await;
        assert_error(status, &err, 400, "env_var_not_allowed");
    }

    // A stored reference the list no longer allows resolves to nothing.
    server.set_args(&["--env-allow", "PROBE_*"]);
    assert!(server.stop());
    server.restart();
    let (status, shown) = get(&server, "openai").await;
    assert_eq!(status, 200);
    assert_eq!(shown["keys"][0]["value"]["ref"], "env.OPENAI_PROD_KEY");
    assert_eq!(shown["keys"][0]["value"]["value"], "");
    assert_eq!(shown["status"], "error");
}

async fn a_config_file_naming_a_denied_variable_does_not_start(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let write = |reference: &str| {
        let file = json!({"providers": {"openai": {"keys": [{"name": "k", "value": reference, "weight": 1}]}}});
        std::fs::write(&path, file.to_string()).unwrap();
    };
    write(&format!("env.{}", ALLOWED.0));
    let mut server = TestServer::on_with(&backend, &env(), &["--config", path.to_str().unwrap()]);
    assert_eq!(get(&server, "openai").await.0, 200);
    assert!(server.stop());
    write("env.BIFROST_PROBE_SETTING");
    let log = server.try_restart().expect_err("the server started");
    assert!(log.contains("keys[0].value"), "{log}");
    assert!(log.contains("may not be referenced"), "{log}");
    assert!(!log.contains(DENIED[0].1), "{log}");
}

async fn credentials_outside_secret_fields_are_secrets(backend: Backend) {
    const BEARER: &str = "Bearer sk-header-credential-0123456789";
    const PROXY_PASSWORD: &str = "proxy-userinfo-password-0123456789";
    const BASE_PASSWORD: &str = "base-userinfo-password-0123456789";
    let mut server = TestServer::on_with(
        &backend,
        &[],
        &[
            "--encryption-key",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ],
    );
    let body = json!({
        "keys": [{"id": "k", "value": "sk-literal-0123456789"}],
        "network_config": {
            "base_url": format!("https://gateway-user:{BASE_PASSWORD}@llm.example.com/v1"),
            "extra_headers": {"Authorization": BEARER, "X-Request-Source": "bifrost-console"}
        },
        "proxy_config": {"type": "http", "url": format!("http://proxy-user:{PROXY_PASSWORD}@proxy.local:3128")}
    });
    let (status, shown) = put(&server, "openai", &body).await;
    assert_eq!(status, 200, "{shown}");
    let text = shown.to_string();
    for secret in [
        BEARER,
        "sk-header-credential",
        PROXY_PASSWORD,
        BASE_PASSWORD,
    ] {
        assert!(!text.contains(secret), "{secret} shows: {text}");
    }
    assert_eq!(
        shown["network_config"]["extra_headers"]["X-Request-Source"],
        "bifrost-console"
    );
    assert!(
        shown["proxy_config"]["url"]
            .as_str()
            .unwrap()
            .ends_with("@proxy.local:3128/"),
        "{shown}"
    );

    // The GET body back, one field edited: every credential is kept.
    let mut edited = shown.clone();
    edited["network_config"]["max_retries"] = json!(3);
    let (status, again) = put(&server, "openai", &edited).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["network_config"], {
        let mut n = shown["network_config"].clone();
        n["max_retries"] = json!(3);
        n
    });
    // A mask that is not the stored credential's is refused, and nothing changes.
    let mut foreign = again.clone();
    foreign["network_config"]["extra_headers"]["Authorization"] = json!("********");
    let (status, err) = put(&server, "openai", &foreign).await;
    assert_error(status, &err, 400, "redacted_secret_mismatch");
    assert_eq!(
        err["error"]["param"],
        "network_config.extra_headers.Authorization"
    );
    let mut foreign = again.clone();
    foreign["proxy_config"]["url"] = json!("http://proxy-user:********@proxy.local:3128");
    let (status, err) = put(&server, "openai", &foreign).await;
    assert_error(status, &err, 400, "redacted_secret_mismatch");
    assert_eq!(get(&server, "openai").await.1, again);

    // Sealed at rest, and opened again after a restart.
    assert!(server.stop());
    let raw = String::from_utf8_lossy(&server.raw_store()).into_owned();
    for secret in ["sk-header-credential", PROXY_PASSWORD, BASE_PASSWORD] {
        assert!(!raw.contains(secret), "{secret} is stored in clear");
    }
    server.restart();
    let (_, after) = get(&server, "openai").await;
    assert_eq!(after, again);
}

on_every_store!(
    no_field_reads_the_servers_environment,
    the_allow_list_narrows_and_never_widens,
    a_config_file_naming_a_denied_variable_does_not_start,
    credentials_outside_secret_fields_are_secrets,
);
