//! The typed client against a running server: create a provider, read it back (secrets
//! redacted), edit one field through the redacted GET body (the round trip keeps the secret), and
//! delete it.
//!
//! Start a server (`cargo run --release -- serve`), then:
//! `cargo run --example client_roundtrip -- http://127.0.0.1:8080`
//!
//! Against a server with an admin token (`BIFROST_ADMIN_TOKEN=… cargo run --release -- serve`),
//! give the client the same token: `BIFROST_ADMIN_TOKEN=… cargo run --example client_roundtrip`.
//! It is sent as `Authorization: Bearer TOKEN` with every request. Against a server over HTTPS
//! whose certificate a private CA signed, give the CA: `BIFROST_CA_CERT=ca.pem`.

use bifrost_providers::Client;
use bifrost_providers::types::{AddProviderRequest, EnvVar, Key, UpdateProviderRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
    // Timeouts, retries of what is safe to repeat, the admin token and a private CA, if any.
    let mut builder = Client::builder(&url)
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(10))
        .retries(3);
    if let Ok(token) = std::env::var("BIFROST_ADMIN_TOKEN") {
        builder = builder.admin_token(&token);
    }
    if let Ok(ca) = std::env::var("BIFROST_CA_CERT") {
        builder = builder.root_certificate_pem(&std::fs::read(ca)?);
    }
    let client = builder.build()?;
    let name = "example-openai-compatible";

    // Create: a custom provider built on the OpenAI API shape, with one key.
    let key = Key::builder()
        .name("primary".to_string())
        .value(Some(EnvVar::from("sk-example-0123456789abcdef")))
        .models(vec!["gpt-4o-mini".to_string()]);
    let custom = bifrost_providers::types::CustomProviderConfig::builder()
        .base_provider_type(bifrost_providers::types::ModelProvider::Openai);
    let add = AddProviderRequest::builder()
        .provider(name)
        .keys(Some(vec![key.try_into()?]))
        .custom_provider_config(Some(custom.try_into()?));
    let created = client.add_provider().body(add).send().await?.into_inner();
    println!(
        "created {} with key {}",
        created.name,
        created.keys[0].id.as_deref().unwrap_or_default()
    );

    // Read: the key's secret comes back redacted.
    let fetched = client
        .get_provider()
        .provider(name)
        .send()
        .await?
        .into_inner();
    println!(
        "stored secret shows as {}",
        fetched.keys[0]
            .value
            .as_ref()
            .map(|v| v.value.as_str())
            .unwrap_or_default()
    );

    // Edit through the redacted body: the redacted secret stands for the stored one.
    let mut edit = UpdateProviderRequest::from(fetched);
    edit.keys_mut()[0].weight = 0.5;
    let updated = client
        .update_provider()
        .provider(name)
        .body(edit.clone())
        .send()
        .await?
        .into_inner();
    println!(
        "weight is now {}, secret still {}",
        updated.keys[0].weight,
        updated.keys[0]
            .value
            .as_ref()
            .map(|v| v.value.as_str())
            .unwrap_or_default()
    );

    // A mistake is a typed error with the contract's body.
    let mut bad = edit;
    bad.keys_mut()[0].weight = -1.0;
    if let Err(progenitor_client::Error::ErrorResponse(error)) = client
        .update_provider()
        .provider(name)
        .body(bad)
        .send()
        .await
    {
        println!(
            "refused: {} ({}, at {})",
            error.error.message,
            error.error.code.as_deref().unwrap_or("no code"),
            error.error.param_text().unwrap_or("-".into())
        );
    }

    let deleted = client
        .delete_provider()
        .provider(name)
        .send()
        .await?
        .into_inner();
    println!("deleted {}", deleted.name);
    Ok(())
}
