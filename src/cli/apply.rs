//! `apply FILE`: makes a server match a configuration file, provider by provider, each write
//! conditional on the `ETag` the dump recorded (or, without one, the one the plan read), so an
//! edit made underneath is never silently undone.

use std::io::IsTerminal;

use crate::cli::config_doc::Current;
use crate::cli::diff::{self, Output};
use crate::cli::remote::{Exit, Remote, interruptible};
use crate::domain::plan::{Action, Plan};
use crate::domain::secrets::looks_redacted;

/// The options of `apply`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file (JSON, or YAML when named `.yaml`/`.yml`).
    pub file: std::path::PathBuf,
    /// Only the providers matching these glob patterns (repeatable); without it, those the
    /// file's dump selected, or every provider.
    #[arg(long = "provider")]
    pub providers: Vec<String>,
    /// Also delete the selected providers the file does not hold.
    #[arg(long)]
    pub prune: bool,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// How the plan is printed.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub remote: Remote,
}

/// Runs `apply`: exit 0 when the server matches the file, 1 when a provider was refused (a
/// stale `ETag`, an invalid entry, a mask a gateway would store), 2 when nothing could be done.
pub async fn run(args: Args) -> std::process::ExitCode {
    interruptible(apply(args)).await.into()
}

async fn apply(args: Args) -> Exit {
    let (plan, doc, current) =
        match diff::planned(&args.file, &args.providers, args.prune, &args.remote).await {
            Ok(planned) => planned,
            Err(message) => {
                eprintln!("bifrost-providers: {message}");
                return Exit::Usage;
            }
        };
    diff::print(&plan, args.output);
    if plan.summary().invalid > 0 {
        eprintln!("bifrost-providers: the file holds invalid providers: nothing was written");
        return Exit::Differences;
    }
    // A server without ETags is a Bifrost gateway: it would store a mask as the credential.
    let gateway = current.values().any(|c| c.etag.is_none());
    // A gateway that keeps keys under /keys only (Bifrost v1.5+) ignores them in a provider body.
    let keys_apart = current.values().any(|c| c.keys_apart);
    if gateway {
        let masked = masks_sent(&plan, &doc.providers);
        if !masked.is_empty() {
            for path in &masked {
                eprintln!(
                    "bifrost-providers: {path}: a redacted value, which a Bifrost gateway would store as the credential: give the secret or a reference (env.NAME)"
                );
            }
            return Exit::Differences;
        }
    }
    if !plan.differs() || args.dry_run {
        return if plan.differs() {
            Exit::Differences
        } else {
            Exit::Done
        };
    }
    if !args.yes && !confirmed() {
        return Exit::Usage;
    }
    let client = match args.remote.client() {
        Ok(client) => client,
        Err(message) => {
            eprintln!("bifrost-providers: {message}");
            return Exit::Usage;
        }
    };
    let mut exit = Exit::Done;
    for step in &plan.steps {
        let name = &step.provider;
        let recorded = doc.meta.etags.get(name).cloned();
        let now = current.get(name).and_then(|c: &Current| c.etag.clone());
        let outcome = match &step.action {
            Action::Create { .. } if recorded.is_some() => Err(Refusal::Refused(format!(
                "provider {name} was deleted since the file was dumped: not created again (dump again, or drop it from the file's ETags)"
            ))),
            Action::Create { .. } | Action::Update { .. } => {
                let Ok(mut body) = diff::request_for(&doc.providers[name], current.get(name))
                else {
                    continue;
                };
                let keys = if keys_apart { body.keys.take() } else { None };
                let mut put = client.update_provider().provider(name.as_str()).body(body);
                put = match (&step.action, recorded.or(now)) {
                    (Action::Create { .. }, _) => put.if_none_match("*"),
                    (_, Some(etag)) => put.if_match(etag),
                    (_, None) => put,
                };
                match put.send().await.map_err(refusal) {
                    Ok(_) => match keys {
                        Some(keys) => {
                            let held = current.get(name).and_then(|c| c.shown.keys.as_deref());
                            sync_keys(&client, name, keys, held.unwrap_or_default()).await
                        }
                        None => Ok("updated"),
                    },
                    Err(refused) => Err(refused),
                }
            }
            Action::Delete => {
                let mut delete = client.delete_provider().provider(name.as_str());
                if let Some(etag) = recorded.or(now) {
                    delete = delete.if_match(etag);
                }
                delete.send().await.map(|_| "deleted").map_err(refusal)
            }
            Action::Keep | Action::Unchanged | Action::Invalid { .. } => continue,
        };
        match outcome {
            Ok(done) => {
                let done = if matches!(step.action, Action::Create { .. }) {
                    "created"
                } else {
                    done
                };
                eprintln!("{done} provider {name}");
            }
            Err(Refusal::Refused(message)) => {
                eprintln!("bifrost-providers: {name}: {message}");
                exit = Exit::Differences;
            }
            Err(Refusal::Unreachable(message)) => {
                eprintln!("bifrost-providers: {name}: {message}");
                return Exit::Usage;
            }
        }
    }
    exit
}

/// Makes the keys under `/keys` of provider `name` match `keys`, one key at a time: each
/// held key the file keeps is replaced, each new one created, each one the file lacks deleted.
async fn sync_keys(
    client: &bifrost_providers_client::Client,
    name: &str,
    keys: Vec<crate::types::Key>,
    held: &[crate::types::Key],
) -> Result<&'static str, Refusal> {
    let wanted: std::collections::HashSet<&str> =
        keys.iter().filter_map(|k| k.id.as_deref()).collect();
    for gone in held
        .iter()
        .filter_map(|k| k.id.as_deref())
        .filter(|id| !wanted.contains(id))
    {
        client
            .delete_provider_key()
            .provider(name)
            .key_id(gone)
            .send()
            .await
            .map_err(refusal)?;
    }
    for key in keys {
        let same = held.iter().find(|h| h.id.is_some() && h.id == key.id);
        match (same, key.id.clone()) {
            (Some(held), _) if *held == key => {}
            (Some(_), Some(id)) => {
                client
                    .update_provider_key()
                    .provider(name)
                    .key_id(id.as_str())
                    .body(key)
                    .send()
                    .await
                    .map_err(refusal)?;
            }
            _ => {
                client
                    .create_provider_key()
                    .provider(name)
                    .body(key)
                    .send()
                    .await
                    .map_err(refusal)?;
            }
        }
    }
    Ok("updated")
}

/// Why a write was not made.
enum Refusal {
    /// The server answered no (412, 400, …): this provider is left as it was.
    Refused(String),
    /// No answer (connection, authentication): stop.
    Unreachable(String),
}

fn refusal(error: bifrost_providers_client::Error<crate::types::BifrostError>) -> Refusal {
    match error {
        bifrost_providers_client::Error::ErrorResponse(answer) => {
            let status = answer.status().as_u16();
            let body = answer.into_inner();
            match status {
                401 | 403 => Refusal::Unreachable(body.error.message),
                412 => Refusal::Refused(format!(
                    "changed on the server since the plan (412): nothing of it written; dump or diff again ({})",
                    body.error.message
                )),
                _ => {
                    let at = body
                        .error
                        .param_text()
                        .map(|p| format!("{p}: "))
                        .unwrap_or_default();
                    Refusal::Refused(format!("{at}{} ({status})", body.error.message))
                }
            }
        }
        other => Refusal::Unreachable(other.to_string()),
    }
}

/// The fields of the providers the plan writes whose file value is a mask.
fn masks_sent(
    plan: &Plan,
    providers: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Vec<String> {
    let mut out = Vec::new();
    for step in &plan.steps {
        if matches!(step.action, Action::Create { .. } | Action::Update { .. }) {
            masked(
                &format!("providers.{}", step.provider),
                &providers[&step.provider],
                &mut out,
            );
        }
    }
    out
}

fn masked(path: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) if looks_redacted(text) => out.push(path.to_string()),
        serde_json::Value::Object(members) => {
            // Model lists hold `*` (every model), which is no mask.
            for (name, value) in members
                .iter()
                .filter(|(name, _)| !matches!(name.as_str(), "models" | "blacklisted_models"))
            {
                masked(&format!("{path}.{name}"), value, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                masked(&format!("{path}[{i}]"), value, out);
            }
        }
        _ => {}
    }
}

/// Asks on the terminal; without one, says `--yes` is needed.
fn confirmed() -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("bifrost-providers: not applied: stdin is not a terminal; pass --yes to apply");
        return false;
    }
    eprint!("Apply these changes? [y/N] ");
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes")
}
