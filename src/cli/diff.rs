//! `diff FILE`: what `apply FILE` would do to a server, decK-style (`creating / updating /
//! deleting provider X`, the changed fields, a summary), or as JSON for machines; and the plan
//! itself, which `apply` carries out.

use std::collections::BTreeMap;

use crate::cli::config_doc::{Current, Document, Selection, fetch};
use crate::cli::remote::{Exit, Remote, interruptible};
use crate::decode::config_file::entry_request;
use crate::domain::error::Error;
use crate::domain::plan::{self, Action, Plan, Step};
use crate::domain::provider::desired_state;
use crate::types::UpdateProviderRequest;

/// The options of `diff`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file (JSON, or YAML when named `.yaml`/`.yml`).
    pub file: std::path::PathBuf,
    /// Only the providers matching these glob patterns (repeatable); without it, those the
    /// file's dump selected, or every provider.
    #[arg(long = "provider")]
    pub providers: Vec<String>,
    /// Show the deletions `apply --prune` would make (selected providers not in the file).
    #[arg(long)]
    pub prune: bool,
    /// `text` for people, `json` for machines.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub remote: Remote,
}

/// How a plan is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Runs `diff`: exit 0 without a difference, 1 with one, 2 when it could not tell.
pub async fn run(args: Args) -> std::process::ExitCode {
    interruptible(async {
        match planned(&args.file, &args.providers, args.prune, &args.remote).await {
            Ok((plan, _, _)) => {
                print(&plan, args.output);
                if plan.differs() {
                    Exit::Differences
                } else {
                    Exit::Done
                }
            }
            Err(message) => {
                eprintln!("bifrost-providers: {message}");
                Exit::Usage
            }
        }
    })
    .await
    .into()
}

/// Prints a plan on stdout.
pub fn print(plan: &Plan, output: Output) {
    match output {
        Output::Text => print!("{}", plan.text()),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "steps": plan.steps,
                "summary": plan.summary(),
            }))
            .expect("a plan is JSON")
        ),
    }
}

/// The file, what the server holds, and the plan between them.
pub async fn planned(
    file: &std::path::Path,
    providers: &[String],
    prune: bool,
    remote: &Remote,
) -> Result<(Plan, Document, BTreeMap<String, Current>), String> {
    let doc = Document::read(file)?;
    let selection = Selection::new(providers, &doc.meta)?;
    let client = remote.client()?;
    let current = fetch(&client, &selection).await?;
    Ok((make(&doc, &current, &selection, prune), doc, current))
}

/// The plan that makes the selected providers of the server match the file.
pub fn make(
    doc: &Document,
    current: &BTreeMap<String, Current>,
    selection: &Selection,
    prune: bool,
) -> Plan {
    let mut steps = Vec::new();
    for (name, entry) in doc.providers.iter().filter(|(n, _)| selection.has(n)) {
        let action = match desired(name, entry, current.get(name)) {
            Err(error) => invalid(error),
            Ok((from, to, clear)) => {
                let mut fields = plan::fields(&from, &to);
                for secret in clear {
                    if !fields.iter().any(|f| f.path == secret.path) {
                        fields.push(secret);
                    }
                }
                match (current.contains_key(name), fields.is_empty()) {
                    (false, _) => Action::Create { fields },
                    (true, true) => Action::Unchanged,
                    (true, false) => Action::Update { fields },
                }
            }
        };
        steps.push(Step {
            provider: name.clone(),
            action,
        });
    }
    for name in current.keys().filter(|n| !doc.providers.contains_key(*n)) {
        steps.push(Step {
            provider: name.clone(),
            action: if prune { Action::Delete } else { Action::Keep },
        });
    }
    steps.sort_by(|a, b| a.provider.cmp(&b.provider));
    Plan { steps }
}

/// The provider as the server shows it now (`{}` when absent) and as it would after the file's
/// entry is applied, and the secrets the entry gives in clear; or the error the server would
/// answer.
fn desired(
    name: &str,
    entry: &serde_json::Value,
    current: Option<&Current>,
) -> Result<(serde_json::Value, serde_json::Value, Vec<plan::FieldChange>), Error> {
    crate::domain::validate::provider_name(name, "providers")?;
    let request = request_for(entry, current)?;
    let known: std::collections::HashSet<String> = request
        .keys
        .iter()
        .flatten()
        .filter_map(|k| k.id.clone())
        .collect();
    let now = current.map(|c| plan::shown_state(name, c.shown.clone()));
    let after = desired_state(name, request, now.as_ref())?;
    let from = now
        .as_ref()
        .map_or_else(|| serde_json::json!({}), plan::view);
    let mut to = plan::view(&after);
    plan::mark_new_keys(&mut to, &known);
    Ok((from, to, plan::clear_secrets(now.as_ref(), &after)))
}

/// The PUT body for a file's entry: as the API reads it, each key without an id given the id
/// of the server's key of the same name.
pub fn request_for(
    entry: &serde_json::Value,
    current: Option<&Current>,
) -> Result<UpdateProviderRequest, Error> {
    let mut request = entry_request(entry.clone())?;
    if let Some(current) = current {
        plan::adopt_key_ids(&mut request, &current.shown);
    }
    Ok(request)
}

fn invalid(error: Error) -> Action {
    let (code, param) = match &error {
        Error::Invalid { code, param, .. } => (*code, param.clone().unwrap_or_default()),
        _ => ("invalid_request", String::new()),
    };
    Action::Invalid {
        code: code.to_string(),
        param,
        message: error.to_string(),
    }
}
