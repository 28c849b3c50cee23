//! `import-bifrost` through the real binary: Bifrost config stores built here as Bifrost v1.4.3
//! and v1.5.1 create them (the DDL GORM's SQLite dialect emits for their table models), filled
//! with providers of every kind, plain and encrypted exactly as Bifrost encrypts, imported into a
//! fresh SQLite store of this server and read back through the store, field by field.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine;
use bifrost_providers::domain::provider::StoredProvider;
use bifrost_providers::store::{self, Codec, Store};
use bifrost_providers::types::{EnvVar, Key};
use rusqlite::Connection;
use serde_json::{Value, json};

/// Bifrost v1.4.3 (`transports/v1.4.3`): `framework/configstore/tables/provider.go` and
/// `tables/key.go` as GORM's SQLite migrator creates them (bool → numeric, *float64 → real,
/// time.Time → datetime, string → text unless the tag names a type). No encryption yet.
const V143_DDL: &str = "
CREATE TABLE `config_providers` (`id` integer PRIMARY KEY AUTOINCREMENT,`name` varchar(50) NOT NULL,
  `network_config_json` text,`concurrency_buffer_json` text,`proxy_config_json` text,
  `custom_provider_config_json` text,`send_back_raw_request` numeric,`send_back_raw_response` numeric,
  `created_at` datetime NOT NULL,`updated_at` datetime NOT NULL,`budget_id` varchar(255),
  `rate_limit_id` varchar(255),`config_hash` varchar(255) NULL);
CREATE UNIQUE INDEX `idx_config_providers_name` ON `config_providers`(`name`);
CREATE TABLE `config_keys` (`id` integer PRIMARY KEY AUTOINCREMENT,`name` varchar(255) NOT NULL,
  `provider_id` integer NOT NULL,`provider` varchar(50),`key_id` varchar(255) NOT NULL,`value` text NOT NULL,
  `models_json` text,`weight` real,`enabled` numeric DEFAULT true,`created_at` datetime NOT NULL,
  `updated_at` datetime NOT NULL,`config_hash` varchar(255) NULL,`azure_endpoint` text,
  `azure_api_version` varchar(50),`azure_deployments_json` text,`azure_client_id` varchar(255),
  `azure_client_secret` text,`azure_tenant_id` varchar(255),`vertex_project_id` varchar(255),
  `vertex_project_number` varchar(255),`vertex_region` varchar(100),`vertex_auth_credentials` text,
  `vertex_deployments_json` text,`bedrock_access_key` varchar(255),`bedrock_secret_key` text,
  `bedrock_session_token` text,`bedrock_region` varchar(100),`bedrock_arn` text,
  `bedrock_deployments_json` text,`bedrock_batch_s3_config_json` text,`use_for_batch_api` numeric DEFAULT false,
  CONSTRAINT `fk_config_providers_keys` FOREIGN KEY (`provider_id`) REFERENCES `config_providers`(`id`) ON DELETE CASCADE);
CREATE UNIQUE INDEX `idx_key_name` ON `config_keys`(`name`);
CREATE UNIQUE INDEX `idx_key_id` ON `config_keys`(`key_id`);
";

/// Bifrost v1.5.1 (commit a78707d1, "1.5.1 cut"): the same two models after the v1.5
/// migrations (`aliases_json` replaces the deployment columns; `encryption_status`,
/// `blacklisted_models_json`, the vLLM/Replicate/Ollama/SGL columns, `open_ai_config_json`,
/// `store_raw_request_response`, `status`, `description`).
const V151_DDL: &str = "
CREATE TABLE `config_providers` (`id` integer PRIMARY KEY AUTOINCREMENT,`name` varchar(50) NOT NULL,
  `network_config_json` text,`concurrency_buffer_json` text,`proxy_config_json` text,
  `custom_provider_config_json` text,`open_ai_config_json` text,`send_back_raw_request` numeric,
  `send_back_raw_response` numeric,`store_raw_request_response` numeric,`created_at` datetime NOT NULL,
  `updated_at` datetime NOT NULL,`budget_id` varchar(255),`rate_limit_id` varchar(255),
  `config_hash` varchar(255) NULL,`status` varchar(50) DEFAULT 'unknown',`description` text,
  `encryption_status` varchar(20) DEFAULT 'plain_text');
CREATE UNIQUE INDEX `idx_config_providers_name` ON `config_providers`(`name`);
CREATE TABLE `config_keys` (`id` integer PRIMARY KEY AUTOINCREMENT,`name` varchar(255) NOT NULL,
  `provider_id` integer NOT NULL,`provider` varchar(50),`key_id` varchar(255) NOT NULL,`value` text NOT NULL,
  `models_json` text,`blacklisted_models_json` text,`weight` real,`enabled` numeric DEFAULT true,
  `created_at` datetime NOT NULL,`updated_at` datetime NOT NULL,`config_hash` varchar(255) NULL,
  `aliases_json` text,`azure_endpoint` text,`azure_api_version` text,`azure_client_id` text,
  `azure_client_secret` text,`azure_tenant_id` text,`azure_scopes` text,`vertex_project_id` text,
  `vertex_project_number` text,`vertex_region` text,`vertex_auth_credentials` text,
  `bedrock_access_key` text,`bedrock_secret_key` text,`bedrock_session_token` text,`bedrock_region` text,
  `bedrock_arn` text,`bedrock_role_arn` text,`bedrock_external_id` text,`bedrock_role_session_name` text,
  `bedrock_batch_s3_config_json` text,`vllm_url` text,`vllm_model_name` varchar(255),
  `replicate_use_deployments_endpoint` numeric,`ollama_url` text,`sgl_url` text,
  `use_for_batch_api` numeric DEFAULT false,`status` varchar(50) DEFAULT 'unknown',`description` text,
  `encryption_status` varchar(20) DEFAULT 'plain_text',
  CONSTRAINT `fk_config_providers_keys` FOREIGN KEY (`provider_id`) REFERENCES `config_providers`(`id`) ON DELETE CASCADE);
CREATE UNIQUE INDEX `idx_key_name` ON `config_keys`(`name`);
CREATE UNIQUE INDEX `idx_key_id` ON `config_keys`(`key_id`);
";

/// Bifrost's encryption passphrase in these tests.
const PASSPHRASE: &str = "correct horse battery staple, bifrost";

/// Every literal secret the fixtures hold: none may appear in any output.
const SECRETS: &[&str] = &[
    "sk-openai-primary-0123456789abcdef",
    "sk-openai-disabled-zyxwvut987654",
    "azure-api-key-literal-abcdef123456",
    "azure-client-secret-XYZ0987654321",
    "bedrock-secret-key-literal-abcdefghij",
    "AKIAEXAMPLEACCESS01",
    "vertex-secret-PK-123",
    "proxy-pass-LITERAL-1234",
    "resolved-proxy-pass-from-env",
    PASSPHRASE,
];

#[derive(Clone, Copy, PartialEq)]
enum Version {
    V143,
    V151,
}

/// Seals `clear` as Bifrost's `encrypt.Encrypt` does: Argon2id(passphrase, fixed salt, t=1,
/// 64 MiB, 4 lanes) → AES-256-GCM, random nonce, base64(nonce ‖ ciphertext ‖ tag).
fn bifrost_encrypt(passphrase: &str, clear: &str) -> String {
    let params = argon2::Params::new(64 * 1024, 1, 4, Some(32)).unwrap();
    let mut key = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(
            passphrase.as_bytes(),
            b"bifrost-encryption-v1-salt-2024",
            &mut key,
        )
        .unwrap();
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    let nonce: [u8; 12] = rand_nonce();
    let mut data = clear.as_bytes().to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
        .unwrap();
    let mut out = nonce.to_vec();
    out.extend(data);
    base64::engine::general_purpose::STANDARD.encode(out)
}

fn rand_nonce() -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..12]);
    nonce
}

/// One row to insert: column → value (`None`: NULL).
type Row = Vec<(&'static str, Value)>;

/// Inserts a row, sealing the `sealed` columns first when `passphrase` is given (and marking
/// the row encrypted), as Bifrost's BeforeSave hooks do.
fn insert(db: &Connection, table: &str, row: Row, sealed: &[&str], passphrase: Option<&str>) {
    let mut columns = vec!["created_at", "updated_at"];
    let mut values: Vec<rusqlite::types::Value> = vec![
        "2026-05-01 10:00:00".to_string().into(),
        "2026-05-01 10:00:00".to_string().into(),
    ];
    for (column, value) in row {
        columns.push(column);
        let value = match value {
            Value::Null => rusqlite::types::Value::Null,
            Value::Bool(b) => rusqlite::types::Value::Integer(b as i64),
            Value::Number(n) if n.is_i64() => n.as_i64().unwrap().into(),
            Value::Number(n) => n.as_f64().unwrap().into(),
            Value::String(s) => {
                let seal = passphrase.is_some()
                    && sealed.contains(&column)
                    && !s.is_empty()
                    && !s.starts_with("env.");
                if seal {
                    bifrost_encrypt(passphrase.unwrap(), &s).into()
                } else {
                    s.into()
                }
            }
            other => other.to_string().into(),
        };
        values.push(value);
    }
    if passphrase.is_some() {
        columns.push("encryption_status");
        values.push("encrypted".to_string().into());
    }
    let marks = vec!["?"; columns.len()].join(",");
    db.execute(
        &format!(
            "INSERT INTO {table} ({}) VALUES ({marks})",
            columns.join(",")
        ),
        rusqlite::params_from_iter(values),
    )
    .unwrap();
}

const KEY_SEALED: &[&str] = &[
    "value",
    "azure_endpoint",
    "azure_api_version",
    "azure_client_id",
    "azure_client_secret",
    "azure_tenant_id",
    "vertex_project_id",
    "vertex_project_number",
    "vertex_region",
    "vertex_auth_credentials",
    "bedrock_access_key",
    "bedrock_secret_key",
    "bedrock_session_token",
    "bedrock_region",
    "bedrock_arn",
    "bedrock_role_arn",
    "bedrock_external_id",
    "bedrock_role_session_name",
    "bedrock_batch_s3_config_json",
    "aliases_json",
    "vllm_url",
    "ollama_url",
    "sgl_url",
];

/// A Bifrost config store of `version` at `path`; with `passphrase`, rows encrypted as Bifrost
/// does (all but the azure key, left `plain_text` as a row saved before the key was set).
fn bifrost_store(path: &Path, version: Version, passphrase: Option<&str>) {
    let db = Connection::open(path).unwrap();
    db.execute_batch(match version {
        Version::V143 => V143_DDL,
        Version::V151 => V151_DDL,
    })
    .unwrap();
    let v15 = version == Version::V151;
    let sealing = if v15 { passphrase } else { None };
    let proxy = if v15 {
        json!({"type": "http",
               "url": {"value": "http://proxy.internal:3128", "env_var": "", "from_env": false},
               "username": {"value": "svc", "env_var": "", "from_env": false},
               "password": {"value": "resolved-proxy-pass-from-env", "env_var": "env.PROXY_PASSWORD", "from_env": true},
               "ca_cert_pem": null})
    } else {
        json!({"type": "http", "url": "http://proxy.internal:3128", "username": "svc",
               "password": "proxy-pass-LITERAL-1234", "ca_cert_pem": ""})
    };
    let network = json!({"base_url": "https://api.openai.example/v1", "extra_headers": {"X-Team": "ml"},
                         "default_request_timeout_in_seconds": 45, "max_retries": 3,
                         "retry_backoff_initial": 500, "retry_backoff_max": 5000});
    let provider = |id: i64, name: &'static str, mut extra: Row| {
        let mut row: Row = vec![
            ("id", json!(id)),
            ("name", json!(name)),
            ("send_back_raw_request", json!(false)),
            ("send_back_raw_response", json!(id == 1)),
        ];
        row.append(&mut extra);
        row
    };
    let proxy_text = proxy.to_string();
    insert(
        &db,
        "config_providers",
        provider(
            1,
            "openai",
            vec![
                ("network_config_json", json!(network.to_string())),
                (
                    "concurrency_buffer_json",
                    json!(r#"{"concurrency":20,"buffer_size":200}"#),
                ),
                ("proxy_config_json", json!(proxy_text)),
                ("budget_id", json!("budget-1")),
            ],
        ),
        &["proxy_config_json"],
        sealing,
    );
    for (id, name) in [(2, "azure"), (3, "bedrock"), (4, "vertex")] {
        insert(
            &db,
            "config_providers",
            provider(id, name, vec![]),
            &[],
            None,
        );
    }
    insert(
        &db,
        "config_providers",
        provider(
            5,
            "my-gateway",
            vec![
                (
                    "custom_provider_config_json",
                    json!(json!({"is_key_less": false, "base_provider_type": "openai",
                                 "allowed_requests": {"chat_completion": true, "chat_completion_stream": true}})
                    .to_string()),
                ),
                (
                    "network_config_json",
                    json!(r#"{"base_url":"https://gateway.example/v1","default_request_timeout_in_seconds":30,"max_retries":1,"retry_backoff_initial":100,"retry_backoff_max":1000}"#),
                ),
            ],
        ),
        &[],
        None,
    );
    if v15 {
        insert(
            &db,
            "config_providers",
            provider(6, "vllm", vec![]),
            &[],
            None,
        );
    }

    let key = |pid: i64, id: &'static str, name: &'static str, mut extra: Row| {
        let mut row: Row = vec![
            ("provider_id", json!(pid)),
            ("key_id", json!(id)),
            ("name", json!(name)),
        ];
        row.append(&mut extra);
        row
    };
    let keys: Vec<(Row, bool)> = vec![
        (
            key(
                1,
                "11111111-0000-4000-8000-000000000001",
                "openai-primary",
                vec![
                    ("value", json!("sk-openai-primary-0123456789abcdef")),
                    ("models_json", json!(r#"["gpt-4o","gpt-4o-mini"]"#)),
                    ("weight", json!(0.7)),
                    ("enabled", json!(true)),
                ],
            ),
            true,
        ),
        (
            key(
                1,
                "11111111-0000-4000-8000-000000000002",
                "openai-env",
                vec![
                    ("value", json!("env.OPENAI_API_KEY_2")),
                    ("models_json", json!("[]")),
                    ("weight", json!(0.3)),
                ],
            ),
            true,
        ),
        (
            key(
                1,
                "11111111-0000-4000-8000-000000000003",
                "openai-disabled",
                vec![
                    ("value", json!("sk-openai-disabled-zyxwvut987654")),
                    (
                        "models_json",
                        json!(if v15 {
                            r#"["*"]"#
                        } else {
                            r#"["gpt-3.5-turbo"]"#
                        }),
                    ),
                    ("weight", Value::Null),
                    ("enabled", json!(false)),
                    ("use_for_batch_api", json!(true)),
                ],
            ),
            true,
        ),
        (
            key(2, "22222222-0000-4000-8000-000000000001", "azure-main", {
                let mut row: Row = vec![
                    ("value", json!("azure-api-key-literal-abcdef123456")),
                    ("models_json", json!(r#"["gpt-4o"]"#)),
                    ("weight", json!(1.0)),
                    ("azure_endpoint", json!("https://my-az.openai.azure.com")),
                    ("azure_api_version", json!("2024-10-21")),
                    ("azure_client_id", json!("env.AZURE_CLIENT_ID")),
                    (
                        "azure_client_secret",
                        json!("azure-client-secret-XYZ0987654321"),
                    ),
                    ("azure_tenant_id", json!("tenant-0000-1111")),
                ];
                if v15 {
                    row.push(("aliases_json", json!(r#"{"gpt-4o":"gpt4o-deploy"}"#)));
                    row.push((
                        "azure_scopes",
                        json!(r#"["https://cognitiveservices.azure.com/.default"]"#),
                    ));
                } else {
                    row.push((
                        "azure_deployments_json",
                        json!(r#"{"gpt-4o":"gpt4o-deploy"}"#),
                    ));
                }
                row
            }),
            // The azure key stays plain_text in an encrypted store.
            false,
        ),
        (
            key(3, "33333333-0000-4000-8000-000000000001", "bedrock-main", {
                let mut row: Row = vec![
                    ("value", json!("")),
                    ("models_json", json!(r#"["anthropic.claude-3-5-sonnet"]"#)),
                    ("weight", json!(1.0)),
                    ("bedrock_access_key", json!("AKIAEXAMPLEACCESS01")),
                    (
                        "bedrock_secret_key",
                        json!("bedrock-secret-key-literal-abcdefghij"),
                    ),
                    ("bedrock_session_token", json!("env.AWS_SESSION_TOKEN")),
                    ("bedrock_region", json!("us-east-1")),
                    (
                        "bedrock_batch_s3_config_json",
                        json!(
                            r#"{"buckets":[{"bucket_name":"batch-bucket","prefix":"in/","is_default":true}]}"#
                        ),
                    ),
                ];
                if v15 {
                    row.push((
                        "bedrock_role_arn",
                        json!("arn:aws:iam::123456789012:role/bifrost"),
                    ));
                    row.push((
                        "aliases_json",
                        json!(r#"{"claude":"us.anthropic.claude-3-5"}"#),
                    ));
                } else {
                    row.push((
                        "bedrock_deployments_json",
                        json!(r#"{"claude":"us.anthropic.claude-3-5"}"#),
                    ));
                }
                row
            }),
            true,
        ),
        (
            key(
                4,
                "44444444-0000-4000-8000-000000000001",
                "vertex-main",
                vec![
                    ("value", json!("")),
                    ("models_json", json!(r#"["gemini-1.5-pro"]"#)),
                    ("weight", json!(1.0)),
                    ("vertex_project_id", json!("my-gcp-project")),
                    ("vertex_region", json!("us-central1")),
                    (
                        "vertex_auth_credentials",
                        json!(r#"{"type":"service_account","private_key":"vertex-secret-PK-123"}"#),
                    ),
                ],
            ),
            true,
        ),
        (
            key(
                5,
                "55555555-0000-4000-8000-000000000001",
                "gateway-key",
                vec![
                    ("value", json!("env.GATEWAY_KEY")),
                    ("models_json", json!(r#"["gw-model"]"#)),
                    ("weight", json!(1.0)),
                ],
            ),
            true,
        ),
    ];
    for (row, sealed) in keys {
        let row = if v15 {
            let mut row = row;
            row.push(("blacklisted_models_json", json!("[]")));
            row
        } else {
            row
        };
        insert(
            &db,
            "config_keys",
            row,
            KEY_SEALED,
            if sealed { sealing } else { None },
        );
    }
    if v15 {
        insert(
            &db,
            "config_keys",
            key(
                6,
                "66666666-0000-4000-8000-000000000001",
                "vllm-local",
                vec![
                    ("value", json!("")),
                    ("models_json", json!(r#"["*"]"#)),
                    ("blacklisted_models_json", json!(r#"["llama-2"]"#)),
                    ("weight", json!(1.0)),
                    ("vllm_url", json!("http://vllm.internal:8000")),
                    ("vllm_model_name", json!("llama-3")),
                ],
            ),
            KEY_SEALED,
            sealing,
        );
    }
}

/// Runs the real binary.
fn import(args: &[&str], source_key: Option<&str>) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-providers"));
    command
        .arg("import-bifrost")
        .args(args)
        .env_remove("BIFROST_SOURCE_ENCRYPTION_KEY")
        .env_remove("BIFROST_ENCRYPTION_KEY")
        .env_remove("BIFROST_STORE")
        .env("OPENAI_API_KEY_2", "resolved-openai-env-value")
        .env("PROXY_PASSWORD", "resolved-proxy-pass-from-env");
    if let Some(key) = source_key {
        command.env("BIFROST_SOURCE_ENCRYPTION_KEY", key);
    }
    command.output().expect("the binary runs")
}

/// Asserts that nothing secret (nor any resolved variable) is in the output.
fn no_secret_in(output: &Output) {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for secret in SECRETS.iter().chain(&["resolved-openai-env-value"]) {
        assert!(!text.contains(secret), "{secret:?} printed:\n{text}");
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn open_target(path: &Path) -> std::sync::Arc<dyn Store> {
    store::open(
        &format!("sqlite://{}", path.display()),
        store::Options {
            codec: Codec::plain(),
            timeout: store::DEFAULT_TIMEOUT,
            retention: Default::default(),
        },
    )
    .await
    .unwrap()
}

fn literal(secret: &Option<EnvVar>) -> &str {
    let secret = secret.as_ref().expect("a secret");
    assert!(!secret.from_env, "{secret:?} is a literal");
    &secret.value
}

fn reference(secret: &Option<EnvVar>) -> &str {
    let secret = secret.as_ref().expect("a secret");
    assert!(secret.from_env, "{secret:?} is a reference");
    assert!(secret.value.is_empty(), "a reference is stored unresolved");
    &secret.env_var
}

fn key<'a>(p: &'a StoredProvider, id: &str) -> &'a Key {
    p.keys()
        .iter()
        .find(|k| k.id.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("key {id} in {}", p.name))
}

/// Compares what the target holds with what the fixture put in the Bifrost store.
async fn assert_imported(target: &Path, version: Version) {
    let store = open_target(target).await;
    let (providers, _) = store.list().await.unwrap();
    let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
    let mut expected = vec!["azure", "bedrock", "my-gateway", "openai", "vertex"];
    if version == Version::V151 {
        expected.push("vllm");
    }
    assert_eq!(names, expected);
    let get = |name: &str| {
        providers
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .as_ref()
            .clone()
    };

    let openai = get("openai");
    let network = openai.config.network_config.as_ref().unwrap();
    assert_eq!(network.base_url, "https://api.openai.example/v1");
    assert_eq!(
        network.extra_headers.get("X-Team").map(String::as_str),
        Some("ml")
    );
    assert_eq!(network.default_request_timeout_in_seconds, 45);
    assert_eq!(network.max_retries, 3);
    assert_eq!(network.retry_backoff_initial, 500);
    assert_eq!(network.retry_backoff_max, 5000);
    let concurrency = openai.config.concurrency_and_buffer_size.as_ref().unwrap();
    assert_eq!(
        (concurrency.concurrency, concurrency.buffer_size),
        (20, 200)
    );
    let proxy = openai.config.proxy_config.as_ref().unwrap();
    assert_eq!(proxy.url.as_str(), "http://proxy.internal:3128");
    assert_eq!(proxy.username.as_str(), "svc");
    assert_eq!(
        proxy.password.as_str(),
        match version {
            Version::V143 => "proxy-pass-LITERAL-1234",
            Version::V151 => "env.PROXY_PASSWORD",
        }
    );
    assert!(openai.config.send_back_raw_response);
    assert_eq!(openai.keys().len(), 3);
    let primary = key(&openai, "11111111-0000-4000-8000-000000000001");
    assert_eq!(primary.name, "openai-primary");
    assert_eq!(
        literal(&primary.value),
        "sk-openai-primary-0123456789abcdef"
    );
    assert_eq!(primary.models, ["gpt-4o", "gpt-4o-mini"]);
    assert_eq!(primary.weight, 0.7);
    assert!(primary.enabled);
    let env_key = key(&openai, "11111111-0000-4000-8000-000000000002");
    assert_eq!(reference(&env_key.value), "env.OPENAI_API_KEY_2");
    // `[]`: every model in v1.4, none in v1.5; stored in the v1.5 form.
    match version {
        Version::V143 => assert_eq!(env_key.models, ["*"]),
        Version::V151 => assert!(env_key.models.is_empty(), "{:?}", env_key.models),
    }
    let disabled = key(&openai, "11111111-0000-4000-8000-000000000003");
    assert!(!disabled.enabled);
    assert!(disabled.use_for_batch_api);
    assert_eq!(disabled.weight, 1.0, "a NULL weight is Bifrost's 1.0");
    assert_eq!(literal(&disabled.value), "sk-openai-disabled-zyxwvut987654");

    let azure = get("azure");
    let k = key(&azure, "22222222-0000-4000-8000-000000000001");
    assert_eq!(literal(&k.value), "azure-api-key-literal-abcdef123456");
    let a = k.azure_key_config.as_ref().unwrap();
    assert_eq!(literal(&a.endpoint), "https://my-az.openai.azure.com");
    assert_eq!(literal(&a.api_version), "2024-10-21");
    assert_eq!(reference(&a.client_id), "env.AZURE_CLIENT_ID");
    assert_eq!(
        literal(&a.client_secret),
        "azure-client-secret-XYZ0987654321"
    );
    assert_eq!(literal(&a.tenant_id), "tenant-0000-1111");
    match version {
        Version::V143 => {
            assert_eq!(
                a.deployments.get("gpt-4o").map(String::as_str),
                Some("gpt4o-deploy")
            )
        }
        Version::V151 => {
            assert_eq!(
                k.aliases.get("gpt-4o").map(String::as_str),
                Some("gpt4o-deploy")
            );
            assert_eq!(a.scopes, ["https://cognitiveservices.azure.com/.default"]);
        }
    }

    let bedrock = get("bedrock");
    let k = key(&bedrock, "33333333-0000-4000-8000-000000000001");
    let b = k.bedrock_key_config.as_ref().unwrap();
    assert_eq!(literal(&b.access_key), "AKIAEXAMPLEACCESS01");
    assert_eq!(
        literal(&b.secret_key),
        "bedrock-secret-key-literal-abcdefghij"
    );
    assert_eq!(reference(&b.session_token), "env.AWS_SESSION_TOKEN");
    assert_eq!(literal(&b.region), "us-east-1");
    let buckets = &b.batch_s3_config.as_ref().unwrap().buckets;
    assert_eq!(buckets.len(), 1);
    assert_eq!(buckets[0].bucket_name, "batch-bucket");
    match version {
        Version::V143 => assert_eq!(
            b.deployments.get("claude").map(String::as_str),
            Some("us.anthropic.claude-3-5")
        ),
        Version::V151 => {
            assert_eq!(
                literal(&b.role_arn),
                "arn:aws:iam::123456789012:role/bifrost"
            );
            assert_eq!(
                k.aliases.get("claude").map(String::as_str),
                Some("us.anthropic.claude-3-5")
            );
        }
    }

    let vertex = get("vertex");
    let v = key(&vertex, "44444444-0000-4000-8000-000000000001")
        .vertex_key_config
        .as_ref()
        .unwrap();
    assert_eq!(literal(&v.project_id), "my-gcp-project");
    assert_eq!(literal(&v.region), "us-central1");
    assert_eq!(
        literal(&v.auth_credentials),
        r#"{"type":"service_account","private_key":"vertex-secret-PK-123"}"#
    );

    let gateway = get("my-gateway");
    let custom = gateway.config.custom_provider_config.as_ref().unwrap();
    assert_eq!(custom.base_provider_type.to_string(), "openai");
    assert!(!custom.is_key_less);
    let allowed = custom.allowed_requests.as_ref().unwrap();
    assert!(allowed.chat_completion && allowed.chat_completion_stream && !allowed.embedding);
    assert_eq!(
        gateway.config.network_config.as_ref().unwrap().base_url,
        "https://gateway.example/v1"
    );
    let k = key(&gateway, "55555555-0000-4000-8000-000000000001");
    assert_eq!(reference(&k.value), "env.GATEWAY_KEY");

    if version == Version::V151 {
        let vllm = get("vllm");
        let k = key(&vllm, "66666666-0000-4000-8000-000000000001");
        let c = k.vllm_key_config.as_ref().unwrap();
        assert_eq!(literal(&c.url), "http://vllm.internal:8000");
        assert_eq!(c.model_name.as_deref(), Some("llama-3"));
        assert_eq!(k.models, ["*"]);
        assert_eq!(k.blacklisted_models, ["llama-2"]);
    }

    // Each provider's one revision says where it came from.
    let (revisions, _) = store.history("openai", 10, None).await.unwrap().unwrap();
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0].source.as_str(), "import");
    assert_eq!(revisions[0].actor, "import-bifrost");
}

struct Fixture {
    _dir: tempfile::TempDir,
    source: PathBuf,
    target: PathBuf,
}

fn fixture(version: Version, passphrase: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("config.db");
    bifrost_store(&source, version, passphrase);
    let target = dir.path().join("target").join("providers.db");
    Fixture {
        _dir: dir,
        source,
        target,
    }
}

fn from_to(f: &Fixture) -> Vec<String> {
    vec![
        "--from".into(),
        format!("sqlite://{}", f.source.display()),
        "--to".into(),
        format!("sqlite://{}", f.target.display()),
    ]
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

async fn imports_and_reruns(version: Version, passphrase: Option<&str>) {
    let f = fixture(version, passphrase);
    let before = std::fs::read(&f.source).unwrap();
    let args = from_to(&f);
    let first = import(&strs(&args), passphrase);
    no_secret_in(&first);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&first),
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout(&first).contains("openai: created (3 keys)"),
        "{}",
        stdout(&first)
    );
    assert_imported(&f.target, version).await;
    assert_eq!(
        std::fs::read(&f.source).unwrap(),
        before,
        "the source is read-only"
    );

    // Again: nothing changes, no new revision.
    let again = import(&strs(&args), passphrase);
    no_secret_in(&again);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    let text = stdout(&again);
    assert!(!text.contains("created"), "{text}");
    assert!(text.contains("openai: unchanged"), "{text}");
    let store = open_target(&f.target).await;
    let (_, revision) = store.list().await.unwrap();
    let expected = if version == Version::V151 { 6 } else { 5 };
    assert_eq!(
        revision, expected,
        "one revision per provider, none from the re-run"
    );
}

#[tokio::test]
async fn v1_4_3_plain_store_is_imported_whole() {
    imports_and_reruns(Version::V143, None).await;
}

#[tokio::test]
async fn v1_5_1_plain_store_is_imported_whole() {
    imports_and_reruns(Version::V151, None).await;
}

#[tokio::test]
async fn v1_5_1_encrypted_store_is_opened_with_bifrosts_key() {
    imports_and_reruns(Version::V151, Some(PASSPHRASE)).await;
}

#[tokio::test]
async fn a_wrong_or_missing_key_writes_nothing() {
    let f = fixture(Version::V151, Some(PASSPHRASE));
    let args = from_to(&f);
    let wrong = import(&strs(&args), Some("not the passphrase at all"));
    no_secret_in(&wrong);
    assert_eq!(wrong.status.code(), Some(2));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("encryption key does not open the store"),
        "{err}"
    );
    assert!(!err.contains("not the passphrase at all"), "{err}");
    assert!(!f.target.exists(), "nothing written");
    let missing = import(&strs(&args), None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("encrypted rows"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    assert!(!f.target.exists(), "nothing written");
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_says_what_would_happen() {
    let f = fixture(Version::V151, Some(PASSPHRASE));
    let mut args = from_to(&f);
    args.push("--dry-run".into());
    let dry = import(&strs(&args), Some(PASSPHRASE));
    no_secret_in(&dry);
    assert_eq!(dry.status.code(), Some(0));
    assert!(
        stdout(&dry).contains("openai: would_create"),
        "{}",
        stdout(&dry)
    );
    assert!(!f.target.exists());
    // Into an existing store: still nothing written.
    let real = import(&strs(&from_to(&f)), Some(PASSPHRASE));
    assert_eq!(real.status.code(), Some(0));
    let store = open_target(&f.target).await;
    store
        .modify(
            "vertex",
            Box::new(|_| Ok(bifrost_providers::store::Change::Delete)),
            bifrost_providers::domain::history::WriteMeta::config_file(),
        )
        .await
        .unwrap();
    let (_, revision) = store.list().await.unwrap();
    drop(store);
    let dry = import(&strs(&args), Some(PASSPHRASE));
    assert_eq!(dry.status.code(), Some(0));
    assert!(
        stdout(&dry).contains("vertex: would_create"),
        "{}",
        stdout(&dry)
    );
    assert!(
        stdout(&dry).contains("openai: unchanged"),
        "{}",
        stdout(&dry)
    );
    let store = open_target(&f.target).await;
    assert_eq!(store.list().await.unwrap().1, revision);
    assert!(store.get("vertex").await.unwrap().is_none());
}

#[tokio::test]
async fn a_provider_that_differs_is_refused_unless_replaced_and_bad_rows_are_reported() {
    let f = fixture(Version::V151, None);
    let db = Connection::open(&f.source).unwrap();
    // A key Bifrost could not have saved either: `*` beside another name.
    db.execute(
        "UPDATE config_keys SET blacklisted_models_json = '[\"*\",\"gpt-4\"]' WHERE key_id = ?",
        ["11111111-0000-4000-8000-000000000002"],
    )
    .unwrap();
    drop(db);
    let args = from_to(&f);
    let first = import(&strs(&args), None);
    no_secret_in(&first);
    assert_eq!(first.status.code(), Some(1), "{}", stdout(&first));
    let text = stdout(&first);
    assert!(
        text.contains(
            "key 11111111-0000-4000-8000-000000000002 \"openai-env\": skipped: field keys"
        ),
        "{text}"
    );
    assert!(text.contains("openai: created (2 keys)"), "{text}");
    assert!(text.contains("note: budget_id not imported"), "{text}");

    // The target's openai changes; the import now refuses to overwrite it.
    let store = open_target(&f.target).await;
    store
        .modify(
            "openai",
            Box::new(|current| {
                let mut next = current.unwrap().clone();
                next.config.send_back_raw_request = true;
                Ok(bifrost_providers::store::Change::Put(Box::new(next)))
            }),
            bifrost_providers::domain::history::WriteMeta::config_file(),
        )
        .await
        .unwrap();
    drop(store);
    let mut json_args = args.clone();
    json_args.extend(["--output".into(), "json".into()]);
    let refused = import(&strs(&json_args), None);
    assert_eq!(refused.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let openai = report["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .unwrap();
    assert_eq!(openai["action"], "refused");
    assert_eq!(report["generation"], "v1.5");
    let store = open_target(&f.target).await;
    assert!(
        store
            .get("openai")
            .await
            .unwrap()
            .unwrap()
            .config
            .send_back_raw_request
    );
    drop(store);
    let mut replace = args.clone();
    replace.push("--replace".into());
    let replaced = import(&strs(&replace), None);
    assert_eq!(
        replaced.status.code(),
        Some(1),
        "the bad key is still reported"
    );
    assert!(
        stdout(&replaced).contains("openai: replaced"),
        "{}",
        stdout(&replaced)
    );
    let store = open_target(&f.target).await;
    assert!(
        !store
            .get("openai")
            .await
            .unwrap()
            .unwrap()
            .config
            .send_back_raw_request
    );
}

#[tokio::test]
async fn an_unreadable_source_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let target = dir.path().join("t.db");
    let out = import(
        &[
            "--from",
            &format!("sqlite://{}", missing.display()),
            "--to",
            &format!("sqlite://{}", target.display()),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let not_bifrost = dir.path().join("other.db");
    Connection::open(&not_bifrost)
        .unwrap()
        .execute_batch("CREATE TABLE t (id integer)")
        .unwrap();
    let out = import(
        &[
            "--from",
            &format!("sqlite://{}", not_bifrost.display()),
            "--to",
            &format!("sqlite://{}", target.display()),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a Bifrost config store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!target.exists());
}

/// Bifrost v1.5.1's two tables as GORM's PostgreSQL migrator creates them (uint → bigint,
/// autoIncrement → bigserial, bool → boolean, *float64 → decimal, time.Time → timestamptz).
const V151_POSTGRES_DDL: &str = "
CREATE TABLE config_providers (id bigserial PRIMARY KEY, name varchar(50) NOT NULL UNIQUE,
  network_config_json text, concurrency_buffer_json text, proxy_config_json text,
  custom_provider_config_json text, open_ai_config_json text, send_back_raw_request boolean,
  send_back_raw_response boolean, store_raw_request_response boolean, created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL, budget_id varchar(255), rate_limit_id varchar(255),
  config_hash varchar(255) NULL, status varchar(50) DEFAULT 'unknown', description text,
  encryption_status varchar(20) DEFAULT 'plain_text');
CREATE TABLE config_keys (id bigserial PRIMARY KEY, name varchar(255) NOT NULL UNIQUE,
  provider_id bigint NOT NULL REFERENCES config_providers(id) ON DELETE CASCADE, provider varchar(50),
  key_id varchar(255) NOT NULL UNIQUE, value text NOT NULL, models_json text, blacklisted_models_json text,
  weight decimal, enabled boolean DEFAULT true, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
  config_hash varchar(255) NULL, aliases_json text, azure_endpoint text, azure_api_version text,
  azure_client_id text, azure_client_secret text, azure_tenant_id text, azure_scopes text,
  vertex_project_id text, vertex_project_number text, vertex_region text, vertex_auth_credentials text,
  bedrock_access_key text, bedrock_secret_key text, bedrock_session_token text, bedrock_region text,
  bedrock_arn text, bedrock_role_arn text, bedrock_external_id text, bedrock_role_session_name text,
  bedrock_batch_s3_config_json text, vllm_url text, vllm_model_name varchar(255),
  replicate_use_deployments_endpoint boolean, ollama_url text, sgl_url text,
  use_for_batch_api boolean DEFAULT false, status varchar(50) DEFAULT 'unknown', description text,
  encryption_status varchar(20) DEFAULT 'plain_text');
";

/// The rows of a SQLite fixture as PostgreSQL INSERTs (every value a quoted literal, which
/// PostgreSQL reads as the column's type: `1` as true, `0.7` as a decimal).
fn as_postgres_inserts(source: &Path) -> String {
    let db = Connection::open(source).unwrap();
    let mut sql = String::new();
    for table in ["config_providers", "config_keys"] {
        let mut statement = db.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let columns: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(String::from)
            .collect();
        let mut rows = statement.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let values: Vec<String> = (0..columns.len())
                .map(|i| match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Null => "NULL".to_string(),
                    rusqlite::types::ValueRef::Integer(n) => format!("'{n}'"),
                    rusqlite::types::ValueRef::Real(x) => format!("'{x}'"),
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        format!("'{}'", String::from_utf8_lossy(t).replace('\'', "''"))
                    }
                })
                .collect();
            sql.push_str(&format!(
                "INSERT INTO {table} ({}) VALUES ({});\n",
                columns.join(","),
                values.join(",")
            ));
        }
    }
    sql
}

#[tokio::test]
async fn a_postgres_bifrost_store_is_read_read_only() {
    let Some(common::Backend::Postgres(admin)) =
        common::Backend::postgres("a_postgres_bifrost_store_is_read_read_only")
    else {
        return;
    };
    let f = fixture(Version::V151, Some(PASSPHRASE));
    let name = format!("bifrost_source_{}", uuid::Uuid::new_v4().simple());
    common::pg_admin(&admin, &format!("CREATE DATABASE {name}"));
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    let source = url.to_string();
    common::pg_admin(&source, V151_POSTGRES_DDL);
    common::pg_admin(&source, &as_postgres_inserts(&f.source));
    let count = || common::pg_admin(&source, "SELECT count(*) FROM config_keys")[0][0].clone();
    let before = count();
    let out = import(
        &[
            "--from",
            &source,
            "--to",
            &format!("sqlite://{}", f.target.display()),
        ],
        Some(PASSPHRASE),
    );
    no_secret_in(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_imported(&f.target, Version::V151).await;
    assert_eq!(count(), before);
    common::pg_admin(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

/// Every file of a SQLite target (the database and its WAL), as text.
fn target_bytes(target: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(target.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        out.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
    }
    out
}

#[tokio::test]
async fn the_target_is_sealed_with_its_own_key() {
    let f = fixture(Version::V151, Some(PASSPHRASE));
    let mut args = from_to(&f);
    let target_key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    args.extend(["--store-encryption-key".into(), target_key.clone()]);
    let out = import(&strs(&args), Some(PASSPHRASE));
    no_secret_in(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = target_bytes(&f.target);
    for secret in SECRETS {
        assert!(!raw.contains(secret), "{secret:?} in clear in the target");
    }
    // Without a target key the same import keeps the literal in clear (so the check above can
    // fail).
    let plain = fixture(Version::V151, Some(PASSPHRASE));
    let out = import(&strs(&from_to(&plain)), Some(PASSPHRASE));
    assert_eq!(out.status.code(), Some(0));
    assert!(target_bytes(&plain.target).contains("sk-openai-primary-0123456789abcdef"));
    let store = store::open(
        &format!("sqlite://{}", f.target.display()),
        store::Options {
            codec: Codec::sealing(store::Sealer::from_base64(&target_key).unwrap()),
            timeout: store::DEFAULT_TIMEOUT,
            retention: Default::default(),
        },
    )
    .await
    .unwrap();
    let openai = store.get("openai").await.unwrap().unwrap();
    assert_eq!(
        literal(&key(&openai, "11111111-0000-4000-8000-000000000001").value),
        "sk-openai-primary-0123456789abcdef"
    );
}

#[test]
fn an_interrupted_import_exits_130() {
    // A "PostgreSQL" that accepts the connection and never answers: the import waits on it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t.db");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args([
            "import-bifrost",
            "--from",
            &format!("postgres://bifrost@127.0.0.1:{port}/bifrost?sslmode=disable"),
            "--to",
            &format!("sqlite://{}", target.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!target.exists(), "nothing written");
    drop(silent);
}
