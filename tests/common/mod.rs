//! The test harness: the real `bifrost-providers` binary on a real port, on a real store (a
//! SQLite file in a temporary folder, or a fresh database on the PostgreSQL server that
//! `BIFROST_TEST_POSTGRES_URL` names), with its JSON logs kept for inspection.
//!
//! A test that holds for every store takes a [`Backend`] and is listed in [`on_every_store!`],
//! which makes one test per store of it.

#![allow(dead_code)] // each test binary uses its own part of the harness

mod leaks;
pub mod proxy;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bifrost_providers::Client;
use serde_json::{Value, json};

/// Makes, for each named `async fn test(backend: Backend)`, one `#[tokio::test]` per store:
/// `sqlite::test` and `postgres::test` (which says it skipped when no PostgreSQL is configured).
#[macro_export]
macro_rules! on_every_store {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(backend) = $crate::common::Backend::postgres(stringify!($test)) {
                        super::$test(backend).await
                    }
                }
            )*
        }
    };
}

/// The environment variable naming the PostgreSQL server the tests may use (a URL to an
/// existing database; each test creates and drops its own database beside it).
pub const POSTGRES_ENV: &str = "BIFROST_TEST_POSTGRES_URL";

/// Which store a test server runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// The admin URL of a PostgreSQL server.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL, when `BIFROST_TEST_POSTGRES_URL` is set; otherwise says that `test` skipped.
    pub fn postgres(test: &str) -> Option<Backend> {
        match std::env::var(POSTGRES_ENV) {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ => {
                // Straight to stderr, past the test harness's capture, so the skip shows.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {test} on PostgreSQL: {POSTGRES_ENV} is not set"
                );
                None
            }
        }
    }
}

/// A database made for one test, dropped when the last server using it is gone.
pub struct TestDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    fn create(admin_url: &str) -> Self {
        let name = format!("bifrost_test_{}", uuid::Uuid::new_v4().simple());
        pg_admin(admin_url, &format!("CREATE DATABASE {name}"));
        let mut url = url::Url::parse(admin_url).expect("BIFROST_TEST_POSTGRES_URL is a URL");
        url.set_path(&name);
        TestDatabase {
            admin_url: admin_url.to_string(),
            name,
            url: url.to_string(),
        }
    }

    /// Cuts the database off, as if its server were down: open connections are closed and new
    /// ones refused, until [`TestDatabase::restore`].
    pub fn cut_off(&self) {
        pg_admin(
            &self.admin_url,
            &format!(
                "ALTER DATABASE {0} WITH ALLOW_CONNECTIONS false;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}';",
                self.name
            ),
        );
    }

    pub fn restore(&self) {
        pg_admin(
            &self.admin_url,
            &format!("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true", self.name),
        );
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        pg_admin(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs `sql` on the PostgreSQL server at `url` and returns the rows of the last statement, each
/// column as text. It runs on its own thread and runtime, so it works from async tests and Drop.
pub fn pg_admin(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {url}: {e}"));
            tokio::spawn(connection);
            let messages = client
                .simple_query(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            let mut rows = Vec::new();
            for message in messages {
                match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => rows.push(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_string))
                            .collect(),
                    ),
                    tokio_postgres::SimpleQueryMessage::CommandComplete(_) => {}
                    _ => {}
                }
            }
            rows
        })
    })
    .join()
    .expect("the PostgreSQL admin thread")
}

/// Where a server's providers are.
#[derive(Clone)]
enum Storage {
    Sqlite(PathBuf),
    /// A test database, and parameters the store URL adds to its URL (`sslmode=require&…`).
    Postgres(Arc<TestDatabase>, String),
}

impl Storage {
    fn url(&self) -> String {
        match self {
            Storage::Sqlite(path) => format!("sqlite://{}", path.display()),
            Storage::Postgres(db, params) if params.is_empty() => db.url.clone(),
            Storage::Postgres(db, params) => {
                let joint = if db.url.contains('?') { '&' } else { '?' };
                format!("{}{joint}{params}", db.url)
            }
        }
    }
}

pub struct TestServer {
    child: Child,
    /// The server's URL, through the recording relay of the leak check.
    pub url: String,
    relay: leaks::Relay,
    pub dir: tempfile::TempDir,
    log: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
    storage: Storage,
}

impl TestServer {
    /// A server on a new SQLite file.
    pub fn start() -> Self {
        Self::on(&Backend::Sqlite)
    }

    /// A server on a new store of `backend`.
    pub fn on(backend: &Backend) -> Self {
        Self::on_with(backend, &[], &[])
    }

    /// A server on a new SQLite file with extra environment variables and arguments.
    pub fn start_with(env: &[(&str, &str)], args: &[&str]) -> Self {
        Self::on_with(&Backend::Sqlite, env, args)
    }

    /// A server on a new store of `backend`, with extra environment variables and arguments.
    pub fn on_with(backend: &Backend, env: &[(&str, &str)], args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let storage = match backend {
            Backend::Sqlite => Storage::Sqlite(dir.path().join("providers.db")),
            Backend::Postgres(admin) => {
                Storage::Postgres(Arc::new(TestDatabase::create(admin)), String::new())
            }
        };
        Self::spawn_on(storage, dir, env, args)
    }

    /// A server on a new database of the PostgreSQL server at `admin`, its store URL carrying
    /// `params` besides (`sslmode=require&…`); when it does not start, what it logged.
    pub fn try_on_postgres(admin: &str, params: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temporary folder");
        let storage = Storage::Postgres(Arc::new(TestDatabase::create(admin)), params.into());
        Self::try_spawn_on(storage, dir, &[], &[])
    }

    /// A second server on this server's store (PostgreSQL: another replica).
    pub fn replica(&self) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        Self::spawn_on(self.storage.clone(), dir, &env, &args)
    }

    fn spawn_on(
        storage: Storage,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        Self::try_spawn_on(storage, dir, env, args)
            .unwrap_or_else(|log| panic!("the server did not start: {log}"))
    }

    fn try_spawn_on(
        storage: Storage,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Result<Self, String> {
        let env: Vec<_> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let args: Vec<_> = args.iter().map(|a| a.to_string()).collect();
        let log = dir.path().join("server-0.log");
        let (child, addr) = spawn(&storage.url(), &log, &env, &args)?;
        let relay = leaks::Relay::start(addr);
        Ok(TestServer {
            child,
            url: format!("http://{}", relay.addr),
            relay,
            dir,
            log,
            env,
            args,
            storage,
        })
    }

    pub fn client(&self) -> Client {
        // No retries: a test sees each answer the server gives.
        Client::builder(&self.url)
            .retries(0)
            .build()
            .expect("a client")
    }

    /// The store URL the server runs on.
    pub fn store_url(&self) -> String {
        self.storage.url()
    }

    /// The test database, on PostgreSQL.
    pub fn database(&self) -> Option<&TestDatabase> {
        match &self.storage {
            Storage::Postgres(db, _) => Some(db),
            Storage::Sqlite(_) => None,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("providers.db")
    }

    /// Every stored row, read from the store itself (not through the server): name, the
    /// configuration as stored, its config hash. On SQLite, stop the server first (it holds the
    /// file exclusively).
    pub fn stored_rows(&self) -> Vec<(String, String, Option<String>)> {
        match &self.storage {
            Storage::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the SQLite store");
                let mut stmt = conn
                    .prepare("SELECT name, config, config_hash FROM providers ORDER BY name")
                    .expect("query the SQLite store");
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .expect("read the SQLite store")
                    .map(|r| r.expect("a row"))
                    .collect()
            }
            Storage::Postgres(db, _) => pg_admin(
                &db.url,
                "SELECT name, config::text, config_hash FROM providers ORDER BY name COLLATE \"C\"",
            )
            .into_iter()
            .map(|mut row| {
                let hash = row.pop().flatten();
                let config = row.pop().flatten().expect("config");
                let name = row.pop().flatten().expect("name");
                (name, config, hash)
            })
            .collect(),
        }
    }

    /// Everything the store holds, as bytes, read past the server: on SQLite the database file
    /// and its write-ahead log (stop the server first), on PostgreSQL every column of every row.
    pub fn raw_store(&self) -> Vec<u8> {
        match &self.storage {
            Storage::Sqlite(path) => ["", "-wal", "-journal"]
                .iter()
                .flat_map(|suffix| {
                    std::fs::read(format!("{}{suffix}", path.display())).unwrap_or_default()
                })
                .collect(),
            Storage::Postgres(db, _) => pg_admin(&db.url, "SELECT p::text FROM providers p")
                .into_iter()
                .flatten()
                .flatten()
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes(),
        }
    }

    /// Every stored row, every column, as text, read past the server (on SQLite, stop it first).
    pub fn dump(&self) -> Vec<String> {
        match &self.storage {
            Storage::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the SQLite store");
                let mut stmt = conn
                    .prepare(
                        "SELECT json_array(name, config, config_hash, etag, sealed_with)
                         FROM providers ORDER BY name",
                    )
                    .expect("query the SQLite store");
                stmt.query_map([], |r| r.get(0))
                    .expect("read the SQLite store")
                    .map(|r| r.expect("a row"))
                    .collect()
            }
            Storage::Postgres(db, _) => pg_admin(
                &db.url,
                "SELECT p::text FROM providers p ORDER BY name COLLATE \"C\"",
            )
            .into_iter()
            .flatten()
            .flatten()
            .collect(),
        }
    }

    /// Kills the server with SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// Stops the server with SIGTERM and waits for it to exit; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        self.terminate();
        self.wait()
    }

    /// Sends the server SIGTERM, without waiting for it to exit.
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    /// Freezes the server (SIGSTOP): its port still takes connections, but nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("signal the server");
    }

    /// Waits for the server to exit; returns whether it exited cleanly.
    pub fn wait(&mut self) -> bool {
        self.child.wait().expect("reap the server").success()
    }

    /// Whether the server has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().expect("poll the server").is_some()
    }

    /// Starts the server again on the same store, with `env` replacing the environment given
    /// at first start.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.set_env(env);
        self.restart();
    }

    /// Replaces the environment the server gets at its next start.
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// Replaces the arguments the server gets at its next start.
    pub fn set_args(&mut self, args: &[&str]) {
        self.args = args.iter().map(|a| a.to_string()).collect();
    }

    /// Starts the server again on the same store, with its environment and arguments.
    pub fn restart(&mut self) {
        self.try_restart()
            .unwrap_or_else(|log| panic!("the server did not start again: {log}"));
    }

    /// Starts the server again; on failure, returns what it logged.
    pub fn try_restart(&mut self) -> Result<(), String> {
        let n = std::fs::read_dir(self.dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        self.log = self.dir.path().join(format!("server-{n}.log"));
        let (child, addr) = spawn(&self.storage.url(), &self.log, &self.env, &self.args)?;
        self.child = child;
        self.relay.retarget(addr);
        Ok(())
    }

    /// Everything every run of this server logged so far.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(self.dir.path())
            .expect("read the folder")
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                all.push_str(&std::fs::read_to_string(path).unwrap_or_default());
            }
        }
        all
    }
}

impl Drop for TestServer {
    /// Stops the server, then runs the leak check over all it answered and logged (unless the
    /// test already failed).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let given = leaks::secrets_given(&self.env, &self.args);
            leaks::check(&self.relay, given, &self.logs());
        }
    }
}

/// Starts the binary on `store`; returns it with its address once it listens, or what it
/// logged if it exited first.
fn spawn(
    store: &str,
    log: &PathBuf,
    env: &[(String, String)],
    args: &[String],
) -> Result<(Child, std::net::SocketAddr), String> {
    let log_file = std::fs::File::create(log).expect("create the log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--store",
            store,
        ])
        .args(args)
        .env_remove("BIFROST_BIND")
        .env_remove("BIFROST_STORE")
        .env_remove("BIFROST_CONFIG")
        // The most verbose level, so that the leak check reads every line any level could show.
        .env("RUST_LOG", "trace")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start bifrost-providers");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let file = std::fs::File::open(log).expect("open the log file");
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if event["message"] == "listening" && event["target"] == "bifrost_providers" {
                let addr = event["local_addr"].as_str().expect("local_addr in the log");
                return Ok((child, addr.parse().expect("local_addr is an address")));
            }
        }
        if let Some(status) = child.try_wait().expect("poll the server") {
            return Err(format!(
                "exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "did not start in time: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw HTTP call, for what the typed client cannot send: returns status, content type and
/// the body as JSON (or `Null` when it is not JSON).
pub async fn raw(
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
) -> (u16, String, serde_json::Value) {
    let http = http();
    let mut request = http.request(method.parse().expect("method"), url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("send the request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = response.bytes().await.expect("read the body");
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// A plain HTTP client for raw calls (with the TLS provider the typed client uses).
pub fn http() -> reqwest::Client {
    bifrost_providers_client::connect::install_tls_provider();
    reqwest::Client::new()
}

/// PUT of a JSON body to a provider.
pub async fn put(
    server: &TestServer,
    provider: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let url = format!("{}/api/providers/{provider}", server.url);
    let (status, _, body) = raw("PUT", &url, Some(serde_json::to_vec(body).expect("JSON"))).await;
    (status, body)
}

/// GET of a provider.
pub async fn get(server: &TestServer, provider: &str) -> (u16, serde_json::Value) {
    let (status, _, body) = raw(
        "GET",
        &format!("{}/api/providers/{provider}", server.url),
        None,
    )
    .await;
    (status, body)
}

/// Asserts that a response is the contract's error body with this status and code.
pub fn assert_error(status: u16, body: &serde_json::Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "body: {body}");
    assert_eq!(body["is_bifrost_error"], false, "body: {body}");
    assert_eq!(body["status_code"], want_status, "body: {body}");
    assert_eq!(body["error"]["code"], want_code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "body: {body}"
    );
    assert!(body["extra_fields"].is_object(), "body: {body}");
}

/// A whole provider configuration in which every field is derived from `tag`, so a response
/// that mixes two writes is detectable.
pub fn config(tag: u64) -> Value {
    json!({
        "keys": (0..3).map(|i| json!({"id": format!("k{i}"), "name": format!("key-{tag}-{i}"),
                                      "value": {"value": format!("sk-{tag:08}-{i}-secretvalue")},
                                      "weight": tag as f64, "models": [format!("model-{tag}")]})).collect::<Vec<_>>(),
        "network_config": {"max_retries": tag % 100, "base_url": format!("https://h{tag}.example/v1")},
        "concurrency_and_buffer_size": {"concurrency": tag + 1, "buffer_size": tag + 100}
    })
}

/// The tag a response was written with, if all its fields agree on one.
pub fn consistent_tag(shown: &Value) -> Option<u64> {
    let tag = shown["concurrency_and_buffer_size"]["concurrency"].as_u64()? - 1;
    let expected_url = format!("https://h{tag}.example/v1");
    let agrees = shown["concurrency_and_buffer_size"]["buffer_size"] == tag + 100
        && shown["network_config"]["max_retries"] == tag % 100
        && shown["network_config"]["base_url"] == expected_url.as_str()
        && shown["keys"].as_array()?.iter().enumerate().all(|(i, k)| {
            k["name"] == format!("key-{tag}-{i}").as_str()
                && k["weight"] == tag as f64
                && k["models"][0] == format!("model-{tag}").as_str()
        });
    agrees.then_some(tag)
}

/// `writers` concurrent writers, writer `w` through `servers[w % len]`, each PUTting `writes`
/// whole configurations (tags `w * 100 + i`) of provider `openai` and checking each answer is
/// the whole write it sent. The last write of some writer (a tag ending in `writes - 1`) is left.
pub async fn tagged_writers(servers: &[Arc<TestServer>], writers: u64, writes: u64) {
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let server = Arc::clone(&servers[w as usize % servers.len()]);
            tokio::spawn(async move {
                for i in 0..writes {
                    let (status, shown) = put(&server, "openai", &config(w * 100 + i)).await;
                    assert_eq!(status, 200, "{shown}");
                    assert_eq!(consistent_tag(&shown), Some(w * 100 + i));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a writer");
    }
}

/// A CA, and a certificate for 127.0.0.1 and localhost it signed: (CA PEM, chain PEM, key PEM).
pub fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), key.serialize_pem())
}
