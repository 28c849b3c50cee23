//! `import-bifrost`: reads a real Bifrost config store (SQLite or PostgreSQL, v1.4.x or v1.5.x,
//! read-only, secrets opened with Bifrost's key) and writes the providers it holds into a store
//! of this server through the store's normal write path, each write a revision with source
//! `import` and actor `import-bifrost`. It decides everything before it writes anything: a
//! wrong key or an unreadable store leaves the target untouched.

use std::io::IsTerminal;
use std::sync::Arc;

use crate::cli::remote::{Exit, interruptible};
use crate::domain::error::Error;
use crate::domain::history::{Retention, WriteMeta};
use crate::domain::provider::{self, StoredProvider};
use crate::store::bifrost::{self, Generation, Imported, KeyOutcome, cipher::Cipher};
use crate::store::{self, Change, Codec, Sealer, Store, shown_url};

#[derive(clap::Args)]
pub struct ImportBifrost {
    /// The Bifrost config store to read: sqlite://PATH/config.db (opened read-only) or
    /// postgres://USER@HOST:PORT/DATABASE (read in a read-only transaction; TLS as `serve`'s
    /// --store). Nothing is ever written to it.
    #[arg(long, value_name = "URL")]
    from: String,
    /// Bifrost's encryption key (its `encryption_key`, the passphrase Bifrost ran with), needed
    /// when rows of the store are encrypted. Prefer the environment variable: other users can
    /// read a command line.
    #[arg(long, env = "BIFROST_SOURCE_ENCRYPTION_KEY", hide_env_values = true)]
    encryption_key: Option<String>,
    /// Read the store as this generation instead of the one its schema shows (`v1.5` when
    /// `config_keys` has `aliases_json`): it decides whether a key's `models: []` means every
    /// model (v1.4) or none (v1.5).
    #[arg(long, value_enum, default_value = "auto")]
    generation: GenerationArg,
    /// This server's store to write into: sqlite://PATH (created when missing),
    /// postgres://USER@HOST:PORT/DATABASE or memory:// (a trial run that keeps nothing).
    #[arg(long, env = "BIFROST_STORE", value_name = "URL")]
    to: String,
    /// The target store's at-rest key, as `serve --encryption-key` takes it (32 random bytes in
    /// base64); the target's secrets are sealed with it.
    #[arg(long, env = "BIFROST_ENCRYPTION_KEY", hide_env_values = true)]
    store_encryption_key: Option<String>,
    /// Replace a provider that already exists in the target with a different configuration
    /// (a full replacement: keys matched by id, the target's other keys removed). Without it
    /// such a provider is left as it is and reported as refused (exit status 1).
    #[arg(long)]
    replace: bool,
    /// Read and check everything, report what would happen, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// The report's form on stdout.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GenerationArg {
    Auto,
    #[value(name = "v1.4")]
    V14,
    #[value(name = "v1.5")]
    V15,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

/// What happened to one provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Created,
    Replaced,
    Unchanged,
    WouldCreate,
    WouldReplace,
    /// Exists in the target with another configuration, and --replace was not given.
    Refused,
    /// The store's rows do not pass this server's checks.
    Skipped,
    /// The target store failed (the import stopped there).
    Failed,
}

impl Action {
    fn needs_attention(self) -> bool {
        matches!(self, Action::Refused | Action::Skipped)
    }
}

#[derive(serde::Serialize)]
struct ProviderReport {
    name: String,
    action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<i64>,
    keys: Vec<KeyOutcome>,
    notes: Vec<String>,
}

#[derive(serde::Serialize)]
struct Report {
    source: String,
    generation: Generation,
    encrypted_rows: usize,
    target: String,
    dry_run: bool,
    providers: Vec<ProviderReport>,
}

/// Runs the import to its exit status.
pub async fn run(args: ImportBifrost) -> std::process::ExitCode {
    interruptible(import(args)).await.into()
}

async fn import(args: ImportBifrost) -> Exit {
    match plan_and_write(&args).await {
        Ok(report) => {
            print(&report, args.output);
            if report.providers.iter().any(|p| p.action == Action::Failed) {
                eprintln!(
                    "bifrost-providers import-bifrost: the target store failed; the providers \
                     reported before it were written, re-run to finish"
                );
                return Exit::Usage;
            }
            let attention = report
                .providers
                .iter()
                .any(|p| p.action.needs_attention() || p.keys.iter().any(|k| k.skipped.is_some()));
            if attention {
                Exit::Differences
            } else {
                Exit::Done
            }
        }
        Err(message) => {
            eprintln!("bifrost-providers import-bifrost: {message}");
            Exit::Usage
        }
    }
}

/// Reads, maps, and (unless a dry run) writes; `Err` is a usage, connection or key error, before
/// anything was written.
async fn plan_and_write(args: &ImportBifrost) -> Result<Report, String> {
    let source = shown_url(&args.from);
    let tables = bifrost::read(&args.from).await?;
    let generation = match args.generation {
        GenerationArg::Auto => Generation::detect(&tables),
        GenerationArg::V14 => Generation::V14,
        GenerationArg::V15 => Generation::V15,
    };
    let encrypted_rows = bifrost::encrypted_rows(&tables);
    let cipher = match args.encryption_key.as_deref().filter(|k| !k.is_empty()) {
        Some(passphrase) if encrypted_rows > 0 => {
            let passphrase = passphrase.to_string();
            Some(
                tokio::task::spawn_blocking(move || Cipher::derive(&passphrase))
                    .await
                    .map_err(|e| format!("cannot derive the encryption key: {e}"))??,
            )
        }
        _ => None,
    };
    let imported =
        bifrost::map(&tables, generation, cipher.as_ref()).map_err(|fatal| fatal.to_string())?;

    let target = shown_url(&args.to);
    let store = open_target(args).await?;
    let progress = progress_bar(imported.len());
    let mut providers = Vec::with_capacity(imported.len());
    for item in imported {
        progress.set_message(item.name.clone());
        let name = item.name.clone();
        match write(store.as_deref(), item, args).await {
            Ok(report) => providers.push(report),
            Err(reason) => {
                providers.push(ProviderReport {
                    name,
                    action: Action::Failed,
                    reason: Some(reason),
                    revision: None,
                    keys: Vec::new(),
                    notes: Vec::new(),
                });
                break;
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(Report {
        source,
        generation,
        encrypted_rows,
        target,
        dry_run: args.dry_run,
        providers,
    })
}

/// The target store; `None` for a dry run into a SQLite file that does not exist yet (opening
/// it would create it).
async fn open_target(args: &ImportBifrost) -> Result<Option<Arc<dyn Store>>, String> {
    if args.dry_run
        && let Some(path) = args
            .to
            .strip_prefix("sqlite://")
            .or_else(|| args.to.strip_prefix("sqlite:"))
        && !std::path::Path::new(path).exists()
    {
        return Ok(None);
    }
    let codec = match args.store_encryption_key.as_deref() {
        Some(key) => Codec::sealing(Sealer::from_base64(key).map_err(|e| {
            format!(
                "--store-encryption-key (BIFROST_ENCRYPTION_KEY, the target's key; Bifrost's own \
                 passphrase goes in BIFROST_SOURCE_ENCRYPTION_KEY): {e}"
            )
        })?),
        None => Codec::plain(),
    };
    let store = store::open(
        &args.to,
        store::Options {
            codec,
            timeout: store::DEFAULT_TIMEOUT,
            retention: Retention::default(),
        },
    )
    .await
    .map_err(|e| format!("cannot open the target store: {e}"))?;
    Ok(Some(store))
}

/// Writes (or, in a dry run, judges) one provider.
async fn write(
    store: Option<&dyn Store>,
    item: Imported,
    args: &ImportBifrost,
) -> Result<ProviderReport, String> {
    let Imported {
        name,
        state,
        keys,
        notes,
    } = item;
    let report = |action, reason: Option<String>, revision| ProviderReport {
        name: name.clone(),
        action,
        reason,
        revision,
        keys: keys.clone(),
        notes: notes.clone(),
    };
    let state = match state {
        Ok(state) => state,
        Err(reason) => return Ok(report(Action::Skipped, Some(reason), None)),
    };
    let current = match store {
        Some(store) => store
            .get(&name)
            .await
            .map_err(|e| format!("cannot read the target store: {e}"))?,
        None => None,
    };
    let differs = current.as_ref().map(|c| c.config != state.config);
    if args.dry_run {
        return Ok(match differs {
            None => report(Action::WouldCreate, None, None),
            Some(false) => report(Action::Unchanged, None, None),
            Some(true) if args.replace => report(Action::WouldReplace, None, None),
            Some(true) => report(Action::Refused, Some(refused()), None),
        });
    }
    let Some(store) = store else {
        return Err("no target store".into());
    };
    if differs == Some(false) {
        return Ok(report(Action::Unchanged, None, None));
    }
    let replace = args.replace;
    let provider_name = name.clone();
    let written = store
        .modify(
            &name,
            Box::new(move |current| decide(&provider_name, state, current, replace)),
            WriteMeta::import(),
        )
        .await;
    Ok(match written {
        Ok(written) => match (&written.before, written.revision) {
            (_, None) => report(Action::Unchanged, None, None),
            (None, revision) => report(Action::Created, None, revision),
            (Some(_), revision) => report(Action::Replaced, None, revision),
        },
        Err(Error::Invalid { message, .. }) if message == refused() => {
            report(Action::Refused, Some(refused()), None)
        }
        Err(e @ Error::Invalid { .. }) => report(Action::Refused, Some(e.to_string()), None),
        Err(e) => return Err(format!("cannot write to the target store: {e}")),
    })
}

/// The decision against what the target holds at the moment of the write.
fn decide(
    name: &str,
    imported: StoredProvider,
    current: Option<&StoredProvider>,
    replace: bool,
) -> Result<Change, Error> {
    let Some(current) = current else {
        return Ok(Change::Put(Box::new(imported)));
    };
    if current.config == imported.config {
        return Ok(Change::Keep);
    }
    if !replace {
        return Err(Error::invalid("exists", "name", refused()));
    }
    // A replacement passes the rules an API PUT would (a custom provider's base stays fixed).
    let mut next = provider::desired_state(name, imported.config.clone(), Some(current))?;
    next.config.keys = imported.config.keys;
    next.config_hash = None;
    Ok(Change::Put(Box::new(next)))
}

fn refused() -> String {
    "exists in the target with a different configuration; left as it is (pass --replace to overwrite it)"
        .into()
}

/// A progress bar on stderr when it is a terminal; nothing otherwise.
fn progress_bar(len: usize) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar
}

fn print(report: &Report, output: Output) {
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("a report serializes")
        );
        return;
    }
    println!(
        "import-bifrost: {} (Bifrost {} schema, {} encrypted rows) -> {}{}",
        report.source,
        report.generation.as_str(),
        report.encrypted_rows,
        report.target,
        if report.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut keys_skipped = 0;
    for p in &report.providers {
        let action = static_name(p.action);
        *counts.entry(action).or_default() += 1;
        let imported = p.keys.iter().filter(|k| k.skipped.is_none()).count();
        match &p.reason {
            Some(reason) => println!("{}: {action}: {reason}", p.name),
            None => println!("{}: {action} ({imported} keys)", p.name),
        }
        for k in &p.keys {
            match &k.skipped {
                Some(reason) => {
                    keys_skipped += 1;
                    println!("  key {} {:?}: skipped: {reason}", k.id, k.name);
                }
                None => println!("  key {} {:?}: imported", k.id, k.name),
            }
        }
        for note in &p.notes {
            println!("  note: {note}");
        }
    }
    let summary: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
    println!(
        "summary: {} providers: {}; {keys_skipped} keys skipped",
        report.providers.len(),
        if summary.is_empty() {
            "none".to_string()
        } else {
            summary.join(", ")
        }
    );
}

fn static_name(action: Action) -> &'static str {
    match action {
        Action::Created => "created",
        Action::Replaced => "replaced",
        Action::Unchanged => "unchanged",
        Action::WouldCreate => "would_create",
        Action::WouldReplace => "would_replace",
        Action::Refused => "refused",
        Action::Skipped => "skipped",
        Action::Failed => "failed",
    }
}
