//! `validate FILE`: offline, every rule the server applies to each provider of a configuration
//! file, with the server's error codes and field paths; no server is asked.

use crate::cli::config_doc::Document;
use crate::cli::remote::Exit;
use crate::decode::config_file::entry_request;
use crate::domain::error::Error;
use crate::domain::plan::shown_state;
use crate::domain::provider::desired_state;

/// The options of `validate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file (JSON, or YAML when named `.yaml`/`.yml`).
    pub file: std::path::PathBuf,
}

/// Runs `validate`: exit 0 when every provider is valid, 1 when one is not, 2 when the file
/// cannot be read.
pub fn run(args: Args) -> std::process::ExitCode {
    let doc = match Document::read(&args.file) {
        Ok(doc) => doc,
        Err(message) => {
            eprintln!("bifrost-providers: {message}");
            return Exit::Usage.into();
        }
    };
    let mut invalid = 0;
    for (name, entry) in &doc.providers {
        if let Err(error) = check(name, entry) {
            invalid += 1;
            let (code, param) = match &error {
                Error::Invalid { code, param, .. } => (*code, param.clone()),
                _ => ("invalid_request", None),
            };
            let at = param.map(|p| format!(".{p}")).unwrap_or_default();
            println!("providers.{name}{at}: {error} ({code})");
        }
    }
    let total = doc.providers.len();
    if invalid > 0 {
        println!("{invalid} of {total} providers invalid");
        Exit::Differences.into()
    } else {
        println!("{total} providers valid");
        Exit::Done.into()
    }
}

/// The server's checks of one entry. A redacted secret stands for the one the server holds, as
/// it does on the server (whether it matches can only be known there: `diff` asks).
fn check(name: &str, entry: &serde_json::Value) -> Result<(), Error> {
    crate::domain::validate::provider_name(name, "name")?;
    let mut request = entry_request(entry.clone())?;
    // A key without an id stands for the server's key it will be matched with.
    for (i, key) in request.keys.iter_mut().flatten().enumerate() {
        if key.id.as_deref().is_none_or(str::is_empty) {
            key.id = Some(format!("validate-{i}"));
        }
    }
    let held = shown_state(name, request.clone());
    desired_state(name, request, Some(&held)).map(|_| ())
}
