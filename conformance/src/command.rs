//! The command line of a run: parse the options, build the client, run the checks, print the
//! report (and JUnit XML), and exit with what the checks found. Shared by this crate's binary and
//! the server's `bifrost-providers conformance`.

use bifrost_providers_client::Client;

use crate::{Options, Profile, Target, checks, run};

// The options of a run (`bifrost-providers conformance`, or this crate's own binary); the
// command that holds them gives the help its summary.
#[derive(clap::Args)]
pub struct Args {
    /// The server's base URL (http:// or https://).
    #[arg(long)]
    pub url: String,
    /// The admin token to send as `Authorization: Bearer TOKEN`.
    #[arg(long, env = "BIFROST_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// HTTP Basic credentials, `USER:PASSWORD`, for a Bifrost gateway whose admin API is
    /// protected that way (Bifrost's own auth); instead of --token.
    #[arg(
        long,
        env = "BIFROST_BASIC_AUTH",
        hide_env_values = true,
        conflicts_with = "token"
    )]
    pub basic_auth: Option<String>,
    /// Also trust this PEM CA certificate (a server whose certificate a private CA signed).
    #[arg(long)]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Write the results as JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<std::path::PathBuf>,
    /// What the server claims: this contract, or a Bifrost generation (g1: v1.4, keys in the
    /// provider body; g2: v1.5+, keys under /keys), whose known deviations are reported as such.
    #[arg(long, value_enum, default_value = "contract")]
    pub profile: Profile,
    /// Run only these checks or groups (comma-separated, e.g. `keys,etag.if_match`).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Leave out these checks or groups (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// List the checks and exit.
    #[arg(long)]
    pub list: bool,
}

/// Runs the conformance checks against a server and reports; removes what it created, also on
/// Ctrl-C.
pub async fn main(args: Args) -> std::process::ExitCode {
    if args.list {
        for check in checks() {
            println!("{:45} {}", check.name, check.about);
        }
        return std::process::ExitCode::SUCCESS;
    }
    let ca_cert = match &args.ca_cert {
        Some(path) => match std::fs::read(path) {
            Ok(pem) => Some(pem),
            Err(e) => {
                eprintln!("bifrost-providers: cannot read {}: {e}", path.display());
                return std::process::ExitCode::from(2);
            }
        },
        None => None,
    };
    // The same client with the token and without (for the checks that it is required).
    let builder = || {
        let builder = Client::builder(&args.url).retries(0);
        match &ca_cert {
            Some(pem) => builder.root_certificate_pem(pem),
            None => builder,
        }
    };
    let credentials = match (&args.token, &args.basic_auth) {
        (Some(token), _) => Some(builder().admin_token(token)),
        (None, Some(pair)) => match pair.split_once(':') {
            Some((user, password)) => Some(builder().basic_auth(user, password)),
            None => {
                eprintln!("bifrost-providers: --basic-auth takes USER:PASSWORD");
                return std::process::ExitCode::from(2);
            }
        },
        (None, None) => None,
    };
    let built = match credentials {
        Some(authorized) => authorized
            .build()
            .and_then(|client| Ok(Target::with_token(client, builder().build()?))),
        None => builder().build().map(Target::new),
    };
    let target = match built {
        Ok(target) => target,
        Err(e) => {
            eprintln!("bifrost-providers: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let options = Options {
        profile: args.profile,
        only: args.only,
        skip: args.skip,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    if let Some(name) = options.unknown_names().first() {
        eprintln!("bifrost-providers: --only/--skip {name:?} names no check or group (see --list)");
        return std::process::ExitCode::from(2);
    }
    if options.selected() == 0 {
        eprintln!("bifrost-providers: --only/--skip select no check");
        return std::process::ExitCode::from(2);
    }
    let report = tokio::select! {
        report = run(&target, &options) => report,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted: removing the providers this run created");
            target.clean_up().await;
            return std::process::ExitCode::from(130);
        }
    };
    print!("{}", report.text());
    if let Some(path) = &args.junit {
        let xml = match report.junit("bifrost-providers conformance") {
            Ok(xml) => xml,
            Err(e) => {
                eprintln!("bifrost-providers: cannot write JUnit XML: {e}");
                return std::process::ExitCode::from(2);
            }
        };
        if let Err(e) = std::fs::write(path, xml) {
            eprintln!("bifrost-providers: cannot write {}: {e}", path.display());
            return std::process::ExitCode::from(2);
        }
    }
    if report.failures().next().is_some() {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
