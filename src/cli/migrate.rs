//! `migrate`: moves a whole store to another (SQLite to PostgreSQL and back), history included,
//! its secrets re-sealed under the target's key, in one transaction on the target.
//!
//! The source is read in one snapshot ([`store::Store::export`]) and never rewritten (it is
//! opened with [`Codec::as_stored`]); the target is opened the same way, compared with the
//! source, and written only when it is empty (or `--replace-target` says so), then read back
//! and compared again. No secret value reaches any output: keys come from flags or the
//! environment and are named only by their fingerprints.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::remote::{Exit, interruptible};
use crate::domain::history::Retention;
use crate::store::transfer::{Imported, Mode, Snapshot};
use crate::store::{self, Codec, Sealer};

#[derive(clap::Args)]
pub struct Migrate {
    /// The store to copy from, as `serve --store` takes it: sqlite://PATH (an existing file;
    /// stop the server on it first, it holds the file) or postgres://USER@HOST/DATABASE. It is
    /// only read.
    #[arg(long, env = "BIFROST_MIGRATE_FROM", hide_env_values = true)]
    from: String,
    /// The store to copy to: sqlite://PATH (created when missing) or postgres://…. It must be
    /// empty (a new file, a new database, or one no write ever reached), already hold this very
    /// migration (then nothing is done), or be named for replacing with --replace-target.
    #[arg(long, env = "BIFROST_MIGRATE_TO", hide_env_values = true)]
    to: String,
    /// The key the source's secrets are sealed with: what `serve --encryption-key`
    /// (BIFROST_ENCRYPTION_KEY) was for it, 32 bytes in base64. Needed when the source is
    /// sealed; a wrong one changes nothing and exits 2.
    #[arg(long, env = "BIFROST_FROM_ENCRYPTION_KEY", hide_env_values = true)]
    from_encryption_key: Option<String>,
    /// The key to seal the target's secrets with, every revision's included: what the target's
    /// `serve --encryption-key` will be. Without it the target holds its secrets in clear.
    #[arg(long, env = "BIFROST_TO_ENCRYPTION_KEY", hide_env_values = true)]
    to_encryption_key: Option<String>,
    /// Replace whatever the target holds (providers and history alike, gone for good) with the
    /// source, in the same transaction. Without it a target holding anything else is refused
    /// (exit 1) and left as it was.
    #[arg(long)]
    replace_target: bool,
    /// The most each step waits on a PostgreSQL store (reading the source, writing the target),
    /// in seconds.
    #[arg(long, env = "BIFROST_MIGRATE_TIMEOUT", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    store_timeout: u64,
}

/// What a run ends with: its exit status and the line that says why.
type Outcome = (Exit, String);

/// Runs the migration; prints its summary on stdout (or its refusal on stderr). The stores'
/// warnings go to stderr, as text.
pub async fn run(args: Migrate) -> std::process::ExitCode {
    let log = crate::telemetry::logging::init(crate::telemetry::logging::Format::Text);
    bifrost_providers_client::connect::install_tls_provider();
    let exit = interruptible(async {
        let (exit, line) = migrate(&args).await.unwrap_or_else(|e| e);
        match exit {
            Exit::Done => println!("{line}"),
            _ => eprintln!("bifrost-providers migrate: {line}"),
        }
        exit
    })
    .await;
    drop(log);
    exit.into()
}

/// Nothing is ever pruned or compacted while a store is open here: every revision is carried,
/// and the target's server applies its own retention from its next write on.
const KEEP_EVERYTHING: Retention = Retention {
    per_provider: usize::MAX,
    days: 20_000,
    feed: i64::MAX,
};

fn usage(message: impl Into<String>) -> Outcome {
    (Exit::Usage, message.into())
}

/// A key as `serve` takes it (the message never repeats it).
fn sealer(key: Option<&str>, which: &str) -> Result<Option<Sealer>, Outcome> {
    key.map(|k| Sealer::from_base64(k).map_err(|e| usage(format!("{which}: {e}"))))
        .transpose()
}

/// The file of a `sqlite:` URL.
fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
}

/// What a run says of a snapshot.
fn counted(snapshot: &Snapshot) -> String {
    format!(
        "{} providers, {} revisions, change feed at revision {}",
        snapshot.providers.len(),
        snapshot.revisions.len(),
        snapshot.head
    )
}

async fn migrate(args: &Migrate) -> Result<Outcome, Outcome> {
    let from_sealer = sealer(args.from_encryption_key.as_deref(), "--from-encryption-key")?;
    let to_sealer = sealer(args.to_encryption_key.as_deref(), "--to-encryption-key")?;
    let (from, to) = (store::shown_url(&args.from), store::shown_url(&args.to));
    for url in [&args.from, &args.to] {
        if matches!(url.as_str(), "memory://" | "memory:") {
            return Err(usage(
                "memory:// holds nothing beyond one process: migrate between sqlite:// and \
                 postgres:// stores",
            ));
        }
    }
    if args.from == args.to {
        return Err(usage(format!(
            "--from and --to name the same store ({from})"
        )));
    }
    if let Some(path) = sqlite_path(&args.from)
        && !std::path::Path::new(path).is_file()
    {
        return Err(usage(format!("no SQLite store at {path}")));
    }
    let shown_key = |s: &Option<Sealer>| {
        s.as_ref().map_or("in clear".to_string(), |s| {
            format!("sealed with key {}", s.id())
        })
    };
    let (from_keys, to_keys) = (shown_key(&from_sealer), shown_key(&to_sealer));
    let to_id = to_sealer.as_ref().map(|s| s.id().to_string());
    // The shown `config_hash` is keyed by the encryption key when there is one, else by the
    // store's key (which is carried): it is kept only when both sides use the same.
    let hashes_kept = from_sealer.as_ref().map(Sealer::id) == to_id.as_deref();
    let timeout = Duration::from_secs(args.store_timeout);
    let options = |sealer: Option<Sealer>| store::Options {
        codec: sealer.map_or_else(Codec::plain, Codec::sealing).as_stored(),
        timeout,
        retention: KEEP_EVERYTHING,
    };

    let bar = Bar::new();
    bar.say(&format!("reading {from}"));
    let source = store::open(&args.from, options(from_sealer))
        .await
        .map_err(|e| usage(format!("source {from}: {e}")))?;
    let snapshot = Arc::new(
        source
            .export()
            .await
            .map_err(|e| usage(format!("source {from}: {e}")))?,
    );
    drop(source);

    bar.say(&format!("checking {to}"));
    let target = store::open(&args.to, options(to_sealer))
        .await
        .map_err(|e| usage(format!("target {to}: {e}")))?;
    let held = target
        .export()
        .await
        .map_err(|e| usage(format!("target {to}: {e}")))?;
    let sealed_as_asked = held.sealed_with.iter().all(|id| *id == to_id);
    if held.same_content(&snapshot) && sealed_as_asked {
        bar.finish();
        return Ok((
            Exit::Done,
            format!(
                "{to} already holds this migration of {from} ({}), {to_keys}: nothing written",
                counted(&snapshot)
            ),
        ));
    }
    let mode = if args.replace_target {
        Mode::Replace
    } else {
        Mode::IntoEmpty
    };
    if !held.is_empty() && mode == Mode::IntoEmpty {
        bar.finish();
        if held.same_content(&snapshot) {
            return Err((
                Exit::Differences,
                format!(
                    "target {to} holds this migration of {from}, but not {to_keys}: nothing \
                     written; a server started on it with its key re-seals it, or pass \
                     --replace-target to write it again"
                ),
            ));
        }
        return Err((Exit::Differences, refusal(&to, &held)));
    }

    bar.count(snapshot.records(), &format!("writing {to}"));
    let progress = {
        let bar = bar.clone();
        Arc::new(move |written: usize| bar.at(written))
    };
    let imported = target
        .import(Arc::clone(&snapshot), mode, progress)
        .await
        .map_err(|e| usage(format!("target {to}: {e}; nothing was written")))?;
    if imported == Imported::NotEmpty {
        bar.finish();
        return Err((Exit::Differences, refusal(&to, &held)));
    }
    let written = target
        .export()
        .await
        .map_err(|e| usage(format!("target {to} cannot be read back: {e}")))?;
    bar.finish();
    if !written.same_content(&snapshot) {
        return Err(usage(format!(
            "target {to} does not read back as the source was read: check it before use"
        )));
    }
    if !hashes_kept {
        eprintln!(
            "bifrost-providers migrate: note: the config_hash values responses show change: a \
             server with an encryption key keys them with it, and the keys differ"
        );
    }
    Ok((
        Exit::Done,
        format!(
            "migrated {} from {from} ({from_keys}) to {to} ({to_keys})",
            counted(&snapshot)
        ),
    ))
}

/// Why a target that holds something else is left alone.
fn refusal(to: &str, held: &Snapshot) -> String {
    format!(
        "target {to} holds something else ({}): nothing written; to replace it, and lose what \
         it holds, pass --replace-target",
        counted(held)
    )
}

/// The progress shown on stderr when it is a terminal (nothing otherwise).
#[derive(Clone)]
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(indicatif::ProgressBar::hidden());
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar(bar)
    }

    /// A step without a count.
    fn say(&self, step: &str) {
        self.0.set_message(step.to_string());
    }

    /// A step of `total` records.
    fn count(&self, total: usize, step: &str) {
        self.0.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} records ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.0.set_length(total as u64);
        self.0.set_position(0);
        self.say(step);
    }

    fn at(&self, written: usize) {
        self.0.set_position(written as u64);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
