//! What the subcommands that talk to a server share: where it is, how to authenticate (from the
//! environment only, never the command line, where other users could read it), and the exit
//! statuses every such subcommand answers with.

use bifrost_providers_client::Client;

/// The exit statuses of the subcommands that talk to a server (`dump`, `diff`, `apply`,
/// `import-bifrost`, `migrate`, …), the same for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done, or no difference.
    Done = 0,
    /// Differences found, or a write the server refused (a stale `If-Match`, say).
    Differences = 1,
    /// A usage, connection or authentication error: nothing was judged.
    Usage = 2,
    /// Interrupted (Ctrl-C, SIGTERM).
    Interrupted = 130,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> std::process::ExitCode {
        std::process::ExitCode::from(exit as u8)
    }
}

/// The server a subcommand talks to.
#[derive(clap::Args, Clone, Debug)]
pub struct Remote {
    /// The server's base URL: this server, or a Bifrost gateway. Authentication comes from the
    /// environment: BIFROST_TOKEN (sent as `Authorization: Bearer`, this server's tokens) or
    /// BIFROST_BASIC_AUTH=USER:PASSWORD (a Bifrost gateway's admin auth).
    #[arg(long, env = "BIFROST_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Also trust this PEM CA certificate (a server whose certificate a private CA signed).
    #[arg(long)]
    pub ca_cert: Option<std::path::PathBuf>,
}

impl Remote {
    /// The typed client for the server, with the environment's credentials.
    pub fn client(&self) -> Result<Client, String> {
        let mut builder = Client::builder(&self.url);
        match (
            std::env::var("BIFROST_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            std::env::var("BIFROST_BASIC_AUTH")
                .ok()
                .filter(|t| !t.is_empty()),
        ) {
            (Some(_), Some(_)) => {
                return Err("set BIFROST_TOKEN or BIFROST_BASIC_AUTH, not both".into());
            }
            (Some(token), None) => builder = builder.admin_token(&token),
            (None, Some(basic)) => match basic.split_once(':') {
                Some((user, password)) => builder = builder.basic_auth(user, password),
                None => return Err("BIFROST_BASIC_AUTH takes USER:PASSWORD".into()),
            },
            (None, None) => {}
        }
        if let Some(path) = &self.ca_cert {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            builder = builder.root_certificate_pem(&pem);
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// A progress bar of `total` steps on stderr when stderr is a terminal; hidden otherwise (a
/// script's output stays clean).
pub fn progress(total: u64, what: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total).with_message(what);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Runs `work` to its exit status, or answers [`Exit::Interrupted`] at Ctrl-C or SIGTERM
/// (what `work` had not finished is dropped: each write it makes is whole or not made).
pub async fn interruptible(work: impl std::future::Future<Output = Exit>) -> Exit {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return work.await,
    };
    tokio::select! {
        exit = work => exit,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("bifrost-providers: interrupted");
            Exit::Interrupted
        }
        _ = term.recv() => {
            eprintln!("bifrost-providers: interrupted");
            Exit::Interrupted
        }
    }
}
