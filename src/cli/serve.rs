//! `serve`: opens the store, loads a config.json, starts the API behind the front, and stops
//! gracefully on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::decode::config_file;
use crate::domain::tokens::Tokens;
use crate::http::body_budget;
use crate::http::startup;
use crate::http::token_file::TokenFile;
use crate::store::{Codec, Sealer};
use crate::telemetry::{logging, metrics};
use crate::{front, store};

/// The log target of the server's own lines (`listening`, `stopped`, …), as before they moved
/// here from the binary: operators' filters and the tests' start detection read it.
const TARGET: &str = "bifrost_providers";

#[derive(clap::Args)]
pub struct Serve {
    /// Address to listen on; port 0 picks a free port (the log says which).
    #[arg(long, env = "BIFROST_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Where providers are stored: sqlite://PATH (a file, created on first start),
    /// postgres://USER@HOST:PORT/DATABASE (shared by replicas; migrated at start; TLS as libpq:
    /// ?sslmode=disable|prefer|require|verify-ca|verify-full, default prefer, and
    /// &sslrootcert=FILE, a PEM CA bundle) or memory://.
    #[arg(long, env = "BIFROST_STORE", default_value = store::DEFAULT_URL)]
    store: String,
    /// The most a request waits on a PostgreSQL store, in seconds (connection checkout,
    /// statements and commit together); beyond it the request gets 503 `store_unavailable`.
    #[arg(long, env = "BIFROST_STORE_TIMEOUT", default_value_t = store::DEFAULT_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=300))]
    store_timeout: u64,
    /// How many of each provider's newest revisions keep the whole state they left (for
    /// `history/{revision}` and rollback); older ones keep only their summary.
    #[arg(long, env = "BIFROST_HISTORY_REVISIONS", default_value_t = 100,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    history_revisions: usize,
    /// Revisions older than this many days are dropped (history and change feed).
    #[arg(long, env = "BIFROST_HISTORY_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u64).range(1..=36_500))]
    history_days: u64,
    /// The most revisions kept store-wide, the change feed's reach: a watcher further behind
    /// gets 410 and lists again.
    #[arg(long, env = "BIFROST_HISTORY_FEED", default_value_t = 100_000,
          value_parser = clap::value_parser!(i64).range(1..=100_000_000))]
    history_feed: i64,
    /// The most connections open at once; beyond it new ones are closed at once. Default: half
    /// the open file limit (raised to its hard limit at start) less a reserve, at most 10000.
    /// 0 serves without the front (dropshot listens itself: no cap, and a connection that sends
    /// nothing is then never closed).
    #[arg(long, env = "BIFROST_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds a connection may move no byte either way before it is closed (a new connection
    /// must send its first byte within 10 s). Above 60, the longest long poll.
    #[arg(long, env = "BIFROST_IDLE_TIMEOUT", default_value_t = 75,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_timeout: u64,
    /// Seconds a request head may take from its first byte to its last (on HTTP/2, the preface
    /// and first request; a TLS handshake likewise); a slower one is closed.
    #[arg(long, env = "BIFROST_HEAD_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=30))]
    head_timeout: u64,
    /// Seconds a stop (SIGTERM, Ctrl-C) waits for requests in progress to finish and be
    /// answered, after it stops accepting; what is still running then is cut off.
    #[arg(long, env = "BIFROST_SHUTDOWN_GRACE", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    shutdown_grace: u64,
    /// Largest accepted request body, in bytes; a larger one is answered with 413.
    #[arg(long, env = "BIFROST_MAX_BODY_BYTES", default_value_t = startup::DEFAULT_MAX_BODY_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..=(64 << 20)))]
    max_body_bytes: usize,
    /// The most request body bytes held in memory at once, all requests together (decoding a
    /// body takes a few times its size again); a body that finds no room waits up to 10 s,
    /// then hears 503 `server_busy`. Raised to `--max-body-bytes` if below it.
    #[arg(long, env = "BIFROST_MAX_BUFFERED_BODY_BYTES", default_value_t = body_budget::DEFAULT_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..=(16 << 30)))]
    max_buffered_body_bytes: usize,
    /// A Bifrost config.json whose `providers` section is loaded at start: new providers are
    /// created, changed ones replaced, unchanged ones keep their API edits.
    #[arg(long, env = "BIFROST_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// When set, every /api/* request must carry `Authorization: Bearer TOKEN` (401 otherwise);
    /// /health stays open. At least 16 visible ASCII characters; prefer the environment variable,
    /// which other users cannot read from the process list. It is the token named `admin`, with
    /// every scope, beside those of --tokens.
    #[arg(long, env = "BIFROST_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// A TOML file of named, scoped tokens (`[[token]]` with name, sha256, scopes, and optional
    /// providers and expires; `bifrost-providers token new` makes entries). Every /api/* request
    /// then needs one of them (or --admin-token). Read again within a second of a change, and
    /// on SIGHUP; a version that does not parse keeps the tokens in force.
    #[arg(long, env = "BIFROST_TOKENS")]
    tokens: Option<std::path::PathBuf>,
    /// Encrypt every secret in the store with this key: 32 random bytes in base64
    /// (`openssl rand -base64 32`). A store written without one is encrypted at the first start
    /// with one; a store encrypted with another key refuses to start.
    #[arg(long, env = "BIFROST_ENCRYPTION_KEY", hide_env_values = true)]
    encryption_key: Option<String>,
    /// To rotate keys: the key the store was encrypted with until now. Providers sealed with it
    /// are re-sealed with --encryption-key at start (or stored in clear, without one); once the
    /// server has started with both, this one can be dropped.
    #[arg(long, env = "BIFROST_PREVIOUS_ENCRYPTION_KEY", hide_env_values = true)]
    previous_encryption_key: Option<String>,
    /// The environment variables an `env.NAME` reference may name, as glob patterns
    /// (comma-separated, case-sensitive, e.g. `OPENAI_*,*_API_KEY`). Without it, any name but the
    /// server's own settings (`BIFROST_*`) and the system's variables (PATH, HOME, PG*, …; the
    /// README lists them), which no pattern can allow. A reference to another name is refused
    /// with 400, and one already stored resolves to nothing.
    #[arg(long, env = "BIFROST_ENV_ALLOW", value_delimiter = ',')]
    env_allow: Vec<String>,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, env = "BIFROST_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM (PKCS #8) private key of --tls-cert.
    #[arg(long, env = "BIFROST_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Serve without an admin token on an address other than loopback (refused otherwise).
    #[arg(long, env = "BIFROST_ALLOW_UNAUTHENTICATED")]
    allow_unauthenticated: bool,
    /// Keep this gateway in step with the store (repeatable; comma-separated in the
    /// environment): every accepted write is applied to it through Bifrost's provider API, and
    /// it is reconciled at start and every --sync-interval. Its credentials come from
    /// BIFROST_SYNC_TOKEN (bearer) or BIFROST_SYNC_BASIC_AUTH (USER:PASSWORD), never the URL.
    /// Plain HTTP only on loopback.
    #[arg(
        long = "sync-to",
        env = "BIFROST_SYNC_TO",
        value_delimiter = ',',
        value_name = "URL"
    )]
    sync_to: Vec<String>,
    /// A TOML file of sync targets (`[[target]]` with url, generation g1|g2|auto, and one of
    /// bearer_token_file, bearer_token_env, basic_auth_file, basic_auth_env).
    #[arg(long, env = "BIFROST_SYNC_TARGETS", value_name = "FILE")]
    sync_targets: Option<std::path::PathBuf>,
    /// Seconds between two full reconciles of each sync target (what it holds compared with
    /// the store and corrected).
    #[arg(long, env = "BIFROST_SYNC_INTERVAL", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    sync_interval: u64,
    /// The most one request to a sync target may take, in seconds.
    #[arg(long, env = "BIFROST_SYNC_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    sync_timeout: u64,
    /// Log format, to stderr; the level comes from RUST_LOG (default info).
    #[arg(long, env = "BIFROST_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: logging::Format,
}

/// Runs the server until it is stopped; a start that fails exits 1 with its reason.
pub async fn run(args: Serve) -> std::process::ExitCode {
    let log = logging::init(args.log_format);
    let result = serve(args).await;
    if let Err(message) = &result {
        tracing::error!(target: TARGET, "{message}");
    }
    // Flush the log before anything else reaches stderr.
    drop(log);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bifrost-providers: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: Serve) -> Result<(), String> {
    // Two rustls providers are linked (dropshot's and the client crate's); pick one, once.
    bifrost_providers_client::connect::install_tls_provider();
    // Each connection holds a descriptor: raise the soft limit to the hard one, as servers do.
    let files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(target: TARGET, limit, "open file limit");
            limit
        }
        Err(e) => {
            tracing::warn!(target: TARGET, error = %e, "cannot raise the open file limit");
            1024
        }
    };
    // Each connection takes a descriptor, and a request passed on to dropshot two more while it
    // runs (the pool's end and dropshot's); keep some for the store, the log and the listeners.
    let max_connections = args.max_connections.unwrap_or_else(|| {
        usize::try_from(files.saturating_sub(128) / 2)
            .unwrap_or(usize::MAX)
            .clamp(16, 10_000)
    });
    let tokens = match (&args.tokens, &args.admin_token) {
        (Some(path), admin) => TokenFile::watch(path.clone(), admin.clone())
            .map_err(|e| format!("tokens file {}: {e}", path.display()))?,
        (None, Some(admin)) => TokenFile::fixed(Tokens::default().with_admin(admin)?),
        (None, None) => TokenFile::open(),
    };
    if !tokens.required() && !args.bind.ip().is_loopback() && !args.allow_unauthenticated {
        return Err(format!(
            "refusing to serve the API on {} without tokens: set BIFROST_TOKENS (or --tokens) or \
             BIFROST_ADMIN_TOKEN (or --admin-token), or pass --allow-unauthenticated if something \
             in front of the server authenticates requests",
            args.bind
        ));
    }
    metrics::install()?;
    crate::domain::secrets::set_env_policy(crate::domain::secrets::EnvPolicy::new(
        &args.env_allow,
    )?);
    let from_file = args.config.as_deref().map(config_file::read).transpose()?;
    let mut codec = match args.encryption_key.as_deref().map(Sealer::from_base64) {
        Some(sealer) => {
            let sealer = sealer?;
            tracing::info!(target: TARGET, key_id = sealer.id(), "secrets are encrypted at rest");
            crate::domain::secrets::set_hash_key(sealer.hash_key());
            Codec::sealing(sealer)
        }
        None => Codec::plain(),
    };
    if let Some(previous) = args.previous_encryption_key.as_deref() {
        let previous = Sealer::from_base64(previous).map_err(|e| format!("previous key: {e}"))?;
        codec = codec.opening_previous(previous);
    }
    let timeout = std::time::Duration::from_secs(args.store_timeout);
    let retention = crate::domain::history::Retention {
        per_provider: args.history_revisions,
        days: args.history_days,
        feed: args.history_feed,
    };
    let store: Arc<dyn store::Store> = Arc::new(store::Measured(
        store::open(
            &args.store,
            store::Options {
                codec,
                timeout,
                retention,
            },
        )
        .await?,
    ));
    let mut heads = store.watch();
    tokio::spawn(async move {
        loop {
            metrics::latest_revision(*heads.borrow_and_update());
            if heads.changed().await.is_err() {
                return;
            }
        }
    });
    if args.encryption_key.is_none() {
        crate::domain::secrets::set_hash_key(store.hash_key());
    }
    if let (Some(path), Some(providers)) = (&args.config, from_file) {
        let outcomes = store::seed::apply(store.as_ref(), providers)
            .await
            .map_err(|e| format!("cannot load config file {}: {e}", path.display()))?;
        for (provider, outcome) in outcomes {
            metrics::config_load(outcome.as_str());
            tracing::info!(target: TARGET, provider, outcome = outcome.as_str(), file = %path.display(), "config file provider loaded");
        }
    }
    let targets =
        crate::sync::target::targets(&args.sync_to, args.sync_targets.as_deref(), &|name| {
            std::env::var(name).ok()
        })?;
    let sync = crate::sync::Fleet::start(
        &store,
        &targets,
        crate::sync::Options {
            interval: std::time::Duration::from_secs(args.sync_interval),
            timeout: std::time::Duration::from_secs(args.sync_timeout),
        },
    )?;
    for target in &targets {
        tracing::info!(target: TARGET, sync_to = target.shown(), generation = target.generation.map(|g| g.as_str()), credentials = ?target.credentials, "keeping a gateway in step");
    }
    body_budget::set_budget(args.max_buffered_body_bytes.max(args.max_body_bytes));
    let stopping = tokio::sync::watch::Sender::new(false);
    let public_https = args.tls_cert.is_some();
    let mut settings = startup::Settings {
        bind: args.bind,
        store,
        max_body_bytes: args.max_body_bytes,
        tokens: tokens.clone(),
        tls: args.tls_cert.zip(args.tls_key),
        behind_front: max_connections > 0,
        stopping: stopping.subscribe(),
        sync,
        https: public_https,
    };
    let https = settings.tls.is_some();
    let authenticated = tokens.required();
    // With the front, the dropshot server listens on loopback behind it, and TLS ends in front.
    let fronted = if max_connections > 0 {
        let public = tokio::net::TcpListener::bind(args.bind)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
        let tls = settings
            .tls
            .take()
            .map(|(cert, key)| front::tls_acceptor(&cert, &key))
            .transpose()?;
        settings.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        Some((public, tls, tokens, Arc::clone(&settings.store)))
    } else {
        None
    };
    let server = startup::start(settings, logging::dropshot_logger())?;
    let (local_addr, front) = match fronted {
        Some((public, tls, token, store)) => {
            let addr = public.local_addr().map_err(|e| e.to_string())?;
            let guard = front::Guard {
                max_connections,
                first_byte: std::time::Duration::from_secs(10),
                idle: std::time::Duration::from_secs(args.idle_timeout),
                head: std::time::Duration::from_secs(args.head_timeout),
            };
            let front = Arc::new(front::Front::new(
                guard,
                store,
                token,
                tls,
                args.max_body_bytes,
                server.local_addr(),
            ));
            tokio::spawn(front::run(public, Arc::clone(&front)));
            (addr, Some(front))
        }
        None => (server.local_addr(), None),
    };
    tracing::info!(target: TARGET,
        local_addr = %local_addr,
        max_connections,
        store = %store::shown_url(&args.store),
        tokens = authenticated,
        https,
        "listening"
    );
    shutdown_signal().await;
    let grace = std::time::Duration::from_secs(args.shutdown_grace);
    tracing::info!(target: TARGET,
        grace_s = args.shutdown_grace,
        "shutting down: finishing the requests in progress"
    );
    // Long polls answer now, with what they have; everything else runs to its answer.
    stopping.send_replace(true);
    let started = tokio::time::Instant::now();
    if let Some(front) = front {
        let cut = front.shutdown(grace).await;
        if cut > 0 {
            tracing::warn!(target: TARGET,
                connections = cut,
                "shutdown grace over: connections cut off"
            );
        }
    }
    let rest = grace.saturating_sub(started.elapsed());
    match tokio::time::timeout(rest, server.close()).await {
        Ok(closed) => closed?,
        Err(_) => {
            tracing::warn!(target: TARGET, "shutdown grace over: requests in progress cut off")
        }
    }
    tracing::info!(target: TARGET, "stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
