//! `token new`: makes a random API token and the `[[token]]` entry that grants it.

use crate::domain::tokens::{self, Scope};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Print a new random token, once, and the `[[token]]` entry that grants it (the entry holds
    /// only the token's SHA-256: paste it into the tokens file; the running servers take it
    /// within a second).
    New {
        /// The token's name: history's actor and the request log's `token` (1 to 64 visible
        /// ASCII characters, unique in the file).
        #[arg(long)]
        name: String,
        /// What it may do: read, write (read too), admin (everything), metrics (/metrics only).
        /// Repeatable.
        #[arg(long = "scope", value_enum, required = true)]
        scopes: Vec<ScopeArg>,
        /// The providers it reaches, as glob patterns (`team-a-*`); repeatable. Without it,
        /// every provider.
        #[arg(long = "providers")]
        providers: Vec<String>,
        /// When it stops working, RFC 3339 (`2027-01-31T00:00:00Z`).
        #[arg(long)]
        expires: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ScopeArg {
    Read,
    Write,
    Admin,
    Metrics,
}

impl From<ScopeArg> for Scope {
    fn from(scope: ScopeArg) -> Scope {
        match scope {
            ScopeArg::Read => Scope::Read,
            ScopeArg::Write => Scope::Write,
            ScopeArg::Admin => Scope::Admin,
            ScopeArg::Metrics => Scope::Metrics,
        }
    }
}

/// Runs a `token` subcommand: usage errors exit 2.
pub fn run(command: TokenCommand) -> std::process::ExitCode {
    let TokenCommand::New {
        name,
        scopes,
        providers,
        expires,
    } = command;
    let scopes: Vec<Scope> = scopes.into_iter().map(Scope::from).collect();
    match tokens::new_token(&name, &scopes, &providers, expires) {
        Ok((token, entry)) => {
            eprintln!(
                "The token (shown once; the server keeps only its SHA-256). Give it to its holder:"
            );
            println!("{token}");
            eprintln!("\nThe entry to add to the tokens file:\n");
            println!("\n{entry}");
            std::process::ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("bifrost-providers: {message}");
            std::process::ExitCode::from(2)
        }
    }
}
