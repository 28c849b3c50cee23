//! The `bifrost-providers-conformance` binary: the conformance runner alone, for CI jobs that
//! judge a server without building one (`cargo install --path conformance`).

use bifrost_providers_conformance::command;
use clap::Parser;

/// Check a running server (this project's, a Bifrost, another implementation) against the
/// contract of the Bifrost provider-management API, black-box, and say what passes.
///
/// Safe against a live deployment: it creates only providers whose names it makes unique
/// (`bfc-<run id>-<n>`, custom providers), deletes them at the end and on Ctrl-C, and never
/// reads, lists or writes any other provider. Exit status 1 when a check fails, 2 when the run
/// could not start.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    args: command::Args,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    command::main(Cli::parse().args).await
}
