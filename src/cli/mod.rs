//! The command line: one module per subcommand, each turning its arguments into a run of the
//! layers beneath and an exit status. `main.rs` only picks the allocator and calls [`run`].

pub mod apply;
pub mod config_doc;
pub mod diff;
pub mod dump;
pub mod import_bifrost;
pub mod migrate;
pub mod remote;
pub mod serve;
pub mod token;
pub mod validate;

use bifrost_providers_conformance as conformance;
use clap::{Parser, Subcommand};

use crate::http::api;

#[derive(Parser)]
#[command(
    version,
    about = "Store and serve the provider configurations of a Bifrost AI gateway"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the provider-management API.
    Serve(Box<serve::Serve>),
    /// Print the OpenAPI document the server describes (for drift checks).
    Openapi,
    /// Check a running server (this one, a Bifrost, another implementation) against the
    /// contract, black-box, and say what passes.
    ///
    /// Safe against a live deployment: it creates only providers whose names it makes unique
    /// (`bfc-<run id>-<n>`, custom providers), deletes them at the end and on Ctrl-C, and never
    /// reads, lists or writes any other provider. Exit status 1 when a check fails, 2 when the
    /// run could not start.
    Conformance(conformance::command::Args),
    /// Import the providers of a real Bifrost config store (its SQLite or PostgreSQL database,
    /// v1.4.x or v1.5.x, read-only) into a store of this server.
    ///
    /// Secrets are copied as they are stored (encrypted rows opened with Bifrost's key,
    /// `env.NAME` references kept as references); the report on stdout names every provider and
    /// key and what happened to it, never a secret. Safe to re-run: an identical provider is left
    /// alone. Exit status 0 when everything was imported or already there, 1 when a provider or
    /// key was skipped or refused (the report says why), 2 for a usage, connection or unreadable
    /// store or a wrong encryption key (nothing written), 130 when interrupted.
    ImportBifrost(Box<import_bifrost::ImportBifrost>),
    /// Move this server's whole store to another (SQLite to PostgreSQL and back): every
    /// provider, every revision with its state (deleted providers' too), the change feed's
    /// position and the config_hash key, the secrets re-sealed under the target's key.
    ///
    /// The source is only read; the target is written in one transaction, and only when it is
    /// empty, unless --replace-target. Run again, it says the target already holds the
    /// migration and writes nothing. Exit status 0 done (or nothing to do), 1 the target holds
    /// something else (nothing written), 2 a usage, connection or key error (nothing written),
    /// 130 interrupted (nothing written).
    Migrate(Box<migrate::Migrate>),
    /// Make API tokens for the `--tokens` file.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Write a server's providers as a Bifrost config.json (or YAML): references as references,
    /// literal secrets only as their masks, each provider's ETag recorded for `apply`.
    Dump(dump::Args),
    /// Show what `apply FILE` would change on a server, field by field (exit 1 when something
    /// would, 0 when nothing would).
    Diff(diff::Planning),
    /// Make a server match FILE, provider by provider, each write conditional on the ETag the
    /// dump recorded; deletes only with --prune, and only among the selected providers.
    Apply(apply::Args),
    /// Check FILE offline against every rule the server applies, with its error codes.
    Validate(validate::Args),
}

/// Parses the command line and runs the subcommand it names.
pub async fn run() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&api::openapi()).expect("JSON")
            );
            std::process::ExitCode::SUCCESS
        }
        Command::Conformance(args) => conformance::command::main(args).await,
        Command::Token(command) => token::run(command),
        Command::Serve(args) => serve::run(*args).await,
        Command::Dump(args) => dump::run(args).await,
        Command::Diff(args) => diff::run(args).await,
        Command::Apply(args) => apply::run(args).await,
        Command::Validate(args) => validate::run(args),
        Command::ImportBifrost(args) => import_bifrost::run(*args).await,
        Command::Migrate(args) => migrate::run(*args).await,
    }
}
