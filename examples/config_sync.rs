//! What a gateway node would run: keep a Bifrost `config.json` in step with the store as changes
//! arrive. It lists the providers (the list carries the store's revision), writes the file, then
//! long-polls `/api/changes` from that revision and rewrites the file after each batch of
//! changes; on 410 (it fell behind what the store keeps) it lists again. Secrets are written as
//! `env.` references where the store holds one, else redacted: never in clear.
//!
//! `cargo run --example config_sync -- http://127.0.0.1:8080 ./config.json`
//! (`BIFROST_ADMIN_TOKEN` and `BIFROST_CA_CERT` are used when set; `--once` writes the file and
//! stops.)

use std::path::PathBuf;

use bifrost_providers::Client;
use bifrost_providers::types::{EnvVar, ProviderResponse};
use serde_json::{Map, Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let file = PathBuf::from(args.next().unwrap_or_else(|| "config.json".into()));
    let once = args.any(|a| a == "--once");
    // Long polls last up to 30 s: the request timeout must be longer.
    let mut builder = Client::builder(&url)
        .timeout(std::time::Duration::from_secs(45))
        .retries(5);
    if let Ok(token) = std::env::var("BIFROST_ADMIN_TOKEN") {
        builder = builder.admin_token(&token);
    }
    if let Ok(ca) = std::env::var("BIFROST_CA_CERT") {
        builder = builder.root_certificate_pem(&std::fs::read(ca)?);
    }
    let client = builder.build()?;

    loop {
        // List, and remember the revision this list is the state of.
        let listed = client.list_providers().send().await?;
        let mut since: i64 = listed
            .headers()
            .get("x-bifrost-revision")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut providers: Map<String, Value> = listed
            .into_inner()
            .providers
            .iter()
            .map(|p| (p.name.clone(), entry(p)))
            .collect();
        write(&file, &providers, since)?;
        if once {
            return Ok(());
        }
        // Watch from there: every change after the list, none missed.
        loop {
            let answer = match client.watch_changes().since(since).timeout(30).send().await {
                Ok(answer) => answer.into_inner(),
                Err(bifrost_providers::client::Error::ErrorResponse(e))
                    if e.status().as_u16() == 410 =>
                {
                    eprintln!("fell behind the store's history: listing again");
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            for change in &answer.changes {
                match client
                    .get_provider()
                    .provider(change.provider.as_str())
                    .send()
                    .await
                {
                    Ok(p) => {
                        providers.insert(change.provider.clone(), entry(&p.into_inner()));
                    }
                    Err(bifrost_providers::client::Error::ErrorResponse(e))
                        if e.status().as_u16() == 404 =>
                    {
                        providers.remove(&change.provider);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            since = answer.revision;
            if !answer.changes.is_empty() {
                write(&file, &providers, since)?;
            }
        }
    }
}

/// A provider as a `config.json` entry: the response's blocks, each secret as its reference or
/// its redacted form.
fn entry(provider: &ProviderResponse) -> Value {
    let mut value = serde_json::to_value(provider).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        for response_only in ["name", "status", "provider_status", "config_hash"] {
            object.remove(response_only);
        }
    }
    let keys: Vec<Value> = provider
        .keys
        .iter()
        .map(|key| {
            let mut k = serde_json::to_value(key).unwrap_or(Value::Null);
            for response_only in ["status", "description", "config_hash"] {
                k.as_object_mut().map(|o| o.remove(response_only));
            }
            if let Some(secret) = &key.value {
                k["value"] = json!(secret_text(secret));
            }
            k
        })
        .collect();
    value["keys"] = Value::Array(keys);
    value
}

/// A secret as config.json holds it: `env.NAME` for a reference, else the redacted form the
/// server showed (never the secret: the server never sends it).
fn secret_text(secret: &EnvVar) -> String {
    if !secret.env_var.is_empty() {
        return secret.env_var.clone();
    }
    match &secret.ref_ {
        Some(reference) if !reference.is_empty() => reference.clone(),
        _ => secret.value.clone(),
    }
}

/// Writes the file whole (to a temporary file, then renamed over it), so that a gateway
/// reading it never sees half of one.
fn write(file: &PathBuf, providers: &Map<String, Value>, revision: i64) -> std::io::Result<()> {
    let body = json!({ "providers": providers });
    let temporary = file.with_extension("json.tmp");
    std::fs::write(&temporary, serde_json::to_vec_pretty(&body)?)?;
    std::fs::rename(&temporary, file)?;
    eprintln!(
        "wrote {} ({} providers) at revision {revision}",
        file.display(),
        providers.len()
    );
    Ok(())
}
