//! `dump`: a server's providers as a Bifrost-shaped `config.json` (or YAML) that `serve
//! --config`, Bifrost and `apply` all read. Safe to commit: references stay references, and a
//! literal secret appears only as its mask (which `apply` sends back to keep the stored one).

use crate::cli::config_doc::{Document, Format, Meta, Selection, fetch};
use crate::cli::remote::{Exit, Remote, interruptible};
use crate::domain::plan::flatten_secrets;

/// The options of `dump`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only the providers matching these glob patterns (repeatable; recorded in the file, so
    /// that `apply --prune` deletes only among them).
    #[arg(long = "provider")]
    pub providers: Vec<String>,
    /// Write to this file instead of stdout (replaced whole, never left half written).
    #[arg(short = 'o', long)]
    pub output: Option<std::path::PathBuf>,
    /// The file's format; default: YAML for a `-o` name ending in `.yaml`/`.yml`, else JSON.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub remote: Remote,
}

/// Runs `dump`: exit 0, or 2 when the server could not be read or the file not written.
pub async fn run(args: Args) -> std::process::ExitCode {
    interruptible(async {
        match dump(&args).await {
            Ok(count) => {
                if args.output.is_some() {
                    eprintln!("dumped {count} providers");
                }
                Exit::Done
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

async fn dump(args: &Args) -> Result<usize, String> {
    let meta = Meta {
        url: Some(args.remote.url.clone()),
        select: args.providers.clone(),
        ..Meta::default()
    };
    let selection = Selection::new(&args.providers, &meta)?;
    let client = args.remote.client()?;
    let current = fetch(&client, &selection).await?;
    let mut doc = Document {
        meta,
        ..Document::default()
    };
    for (name, provider) in current {
        let mut entry = serde_json::to_value(&provider.shown).map_err(|e| e.to_string())?;
        if let serde_json::Value::Object(members) = &mut entry {
            // What only a response says (the name is the entry's, the status the server's).
            for member in [
                "name",
                "status",
                "provider_status",
                "description",
                "config_hash",
            ] {
                members.remove(member);
            }
        }
        for key in entry["keys"].as_array_mut().into_iter().flatten() {
            if let serde_json::Value::Object(members) = key {
                for member in ["status", "description", "config_hash"] {
                    members.remove(member);
                }
            }
        }
        flatten_secrets(&mut entry);
        if let Some(etag) = provider.etag {
            doc.meta.etags.insert(name.clone(), etag);
        }
        doc.providers.insert(name, entry);
    }
    let yaml_name = args
        .output
        .as_ref()
        .and_then(|p| p.extension())
        .is_some_and(|e| e == "yaml" || e == "yml");
    let format = args.format.unwrap_or(if yaml_name {
        Format::Yaml
    } else {
        Format::Json
    });
    let text = doc.render(format)?;
    match &args.output {
        None => print!("{text}"),
        Some(path) => write_whole(path, &text)?,
    }
    Ok(doc.providers.len())
}

/// Writes `text` to `path` through a temporary file beside it, renamed into place.
fn write_whole(path: &std::path::Path, text: &str) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.persist(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}
