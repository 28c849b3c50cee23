//! `cargo bench --bench api`: the release server on a SQLite file in a temporary folder, driven
//! over loopback at fixed concurrency and request counts, each figure beside a baseline measured
//! in the same run:
//!
//! - GET one provider vs a bare hyper server answering the same bytes from memory (the limit of
//!   the HTTP stack), both in a process of their own;
//! - PUT (full replacement, 5 keys, durable) at 1, 8 and 64 writers over 100 providers vs raw
//!   SQLite transactions writing the same rows (provider and history) with the same settings
//!   (the limit of the disk);
//! - with `BIFROST_TEST_POSTGRES_URL`: the same on PostgreSQL against raw transactions of the
//!   same shape through the same driver, and change propagation across two replicas;
//! - GET list at 10, 1,000 and 10,000 providers, per provider;
//! - the server's peak RSS holding 10,000 providers with 5 keys each.
//!
//! Machines here are noisy: read the ratios, not the absolute figures. Bounded to a few minutes.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use support::{Server, Stats, call, connect};

/// Set in the environment of the bench binary re-run as the baseline HTTP server; its value is
/// the file holding the bytes to answer with.
const BASELINE_ROLE: &str = "BIFROST_BENCH_BASELINE_BODY";

/// Providers the PUT benchmark spreads its writes over.
const PUT_PROVIDERS: usize = 100;

fn main() {
    if let Some(body) = std::env::var_os(BASELINE_ROLE) {
        return baseline_server(std::fs::read(body).expect("the baseline body"));
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks for test names; this harness has none to list
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let started = Instant::now();
    let server = Server::start(&dir, None);
    let mut rows = Vec::new();

    // GET one provider, beside hyper answering the same bytes.
    if wanted("get") {
        let (status, shown) = call(server.addr, "PUT", "/api/providers/bench-get", &body(0)).await;
        assert_eq!(status, 200);
        let get_body = dir.path().join("get-body.json");
        std::fs::write(&get_body, &shown).expect("write the baseline body");
        let baseline = Baseline::start(&get_body);
        // Alternating rounds, so that a slow spell of the machine hits both sides.
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            theirs.push(
                load(baseline.addr, 8, 2_000, |_, _| {
                    get("/api/providers/bench-get")
                })
                .await,
            );
            ours.push(
                load(server.addr, 8, 2_000, |_, _| {
                    get("/api/providers/bench-get")
                })
                .await,
            );
        }
        drop(baseline);
        rows.push(Row::new("GET one: hyper baseline", 8, &median(theirs)));
        rows.push(Row::new("GET one: server", 8, &median(ours)));
    }

    // GET list at 10 providers (bench-get and 9 more), before the PUT benchmark adds 100.
    let mut per_provider = Vec::new();
    if wanted("list") {
        fill(server.addr, 0, 9).await;
        list(server.addr, 6_000, &mut rows, &mut per_provider).await;
    }

    // PUT beside raw SQLite transactions of the same shape, alternating for one writer.
    if wanted("put") {
        let stored = stored_bytes(&body(0));
        let raw_db = dir.path().join("raw.db");
        // The same server with secrets sealed at rest (its own folder and store) alternates too.
        let sealed_dir = tempfile::tempdir().expect("a temporary folder");
        let sealed = Server::start(&sealed_dir, Some(SEALING_KEY));
        let (mut ours, mut theirs, mut sealed_rounds) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            theirs.push(raw_sqlite(&raw_db, &stored, 1_000));
            ours.push(put_load(server.addr, 1, 1_000).await);
            sealed_rounds.push(put_load(sealed.addr, 1, 1_000).await);
        }
        rows.push(Row::new("PUT: raw SQLite txn baseline", 1, &median(theirs)));
        rows.push(Row::new("PUT: server, 1 writer", 1, &median(ours)));
        rows.push(Row::new(
            "PUT: server, secrets sealed, 1 writer",
            1,
            &median(sealed_rounds),
        ));
        let (mut plain64, mut sealed64) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            plain64.push(put_load(server.addr, 64, 100).await);
            sealed64.push(put_load(sealed.addr, 64, 100).await);
        }
        drop(sealed);
        rows.push(Row::new(
            "PUT: server, 64 writers (alternating with sealed)",
            64,
            &median(plain64),
        ));
        rows.push(Row::new(
            "PUT: server, secrets sealed, 64 writers",
            64,
            &median(sealed64),
        ));
        for (writers, per_writer) in [(8, 500), (64, 100)] {
            let stats = put_load(server.addr, writers, per_writer).await;
            rows.push(Row::new(
                &format!("PUT: server, {writers} writers"),
                writers,
                &stats,
            ));
        }
    }

    // GET list as the store grows to 1,000 and 10,000 providers.
    let mut rss = (0, 0);
    if wanted("list") {
        fill(server.addr, 0, 999).await;
        list(server.addr, 600, &mut rows, &mut per_provider).await;
        fill(server.addr, 1_000, 9_999).await;
        let rss_held = server.peak_rss_kib();
        list(server.addr, 60, &mut rows, &mut per_provider).await;
        rss = (rss_held, server.peak_rss_kib());
    }

    // Change propagation: from a PUT's 200 to a watcher's answer, on this server.
    if wanted("propagation") {
        rows.push(Row::new(
            "change propagation: PUT 200 -> watcher, one server",
            1,
            &propagation(server.addr, server.addr, 200).await,
        ));
    }
    // PostgreSQL, when the bench has one: two replicas on a fresh database.
    if let Ok(admin) = std::env::var("BIFROST_TEST_POSTGRES_URL")
        && (wanted("postgres") || wanted("propagation"))
    {
        let database = format!("bifrost_bench_{}", std::process::id());
        let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL for the replica bench");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .expect("create the bench database");
        let mut url = url::Url::parse(&admin).expect("a PostgreSQL URL");
        url.set_path(&database);
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // In clear, as the raw transactions it is compared with (the store's default, `prefer`,
        // would add TLS to one side only).
        let mut store = url.clone();
        store.query_pairs_mut().append_pair("sslmode", "disable");
        let a = Server::start_on(&dir_a, store.as_str());
        let b = Server::start_on(&dir_b, store.as_str());
        if wanted("propagation") {
            rows.push(Row::new(
                "change propagation: PUT 200 on A -> watcher on B, PostgreSQL",
                1,
                &propagation(a.addr, b.addr, 200).await,
            ));
        }
        if wanted("postgres") {
            postgres(&a, url.as_str(), &mut rows).await;
        }
        drop((a, b));
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            .await;
    }

    print_report(&rows, &per_provider, rss);
    println!(
        "\ntotal bench time: {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// Whether a stage runs: all by default, or those `BIFROST_BENCH_ONLY` names (comma-separated:
/// get, list, put, propagation, postgres).
fn wanted(stage: &str) -> bool {
    std::env::var("BIFROST_BENCH_ONLY").map_or(true, |only| only.split(',').any(|s| s == stage))
}

/// The server on PostgreSQL (`server`, one of two replicas of `url`) beside raw transactions
/// through the same driver on the same database: GET at 8, PUT at 1 and 64.
async fn postgres(server: &Server, url: &str, rows: &mut Vec<Row>) {
    let stored = stored_bytes(&body(0));
    let raw = RawPostgres::connect(url, 64, &stored).await;
    fill(server.addr, 0, PUT_PROVIDERS - 1).await;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        theirs.push(raw.get(8, 1_000).await);
        ours.push(
            load(server.addr, 8, 1_000, |w, i| {
                get(&format!(
                    "/api/providers/bench-{:05}",
                    (w * 31 + i) % PUT_PROVIDERS
                ))
            })
            .await,
        );
    }
    rows.push(Row::new(
        "PostgreSQL GET: raw SELECT baseline",
        8,
        &median(theirs),
    ));
    rows.push(Row::new("PostgreSQL GET: server", 8, &median(ours)));
    for (writers, per_writer) in [(1, 300), (64, 20)] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            theirs.push(raw.put(writers, per_writer).await);
            ours.push(put_load(server.addr, writers, per_writer).await);
        }
        rows.push(Row::new(
            &format!("PostgreSQL PUT: raw txn baseline, {writers} writers"),
            writers,
            &median(theirs),
        ));
        rows.push(Row::new(
            &format!("PostgreSQL PUT: server, {writers} writers"),
            writers,
            &median(ours),
        ));
    }
}

/// Raw transactions on PostgreSQL through tokio-postgres, on tables shaped like the server's
/// (`raw_providers`, `raw_history`, `raw_revision`) in the same database.
struct RawPostgres {
    clients: Vec<Arc<deadpool_postgres::Object>>,
    config: Arc<String>,
}

impl RawPostgres {
    async fn connect(url: &str, connections: usize, config: &str) -> Self {
        let manager = deadpool_postgres::Manager::from_config(
            url.parse().expect("a PostgreSQL URL"),
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig::default(),
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(connections)
            .build()
            .expect("a pool");
        let mut clients = Vec::new();
        for _ in 0..connections {
            clients.push(Arc::new(pool.get().await.expect("a raw connection")));
        }
        clients[0]
            .batch_execute(
                "CREATE TABLE raw_providers (name TEXT PRIMARY KEY, config JSONB NOT NULL,
                    config_hash TEXT, etag TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                    sealed_with TEXT);
                 CREATE TABLE raw_history (revision BIGINT PRIMARY KEY, provider TEXT NOT NULL,
                    at TEXT NOT NULL, action TEXT NOT NULL, source TEXT NOT NULL, actor TEXT NOT NULL,
                    changed TEXT NOT NULL, etag TEXT, config JSONB, config_hash TEXT, sealed_with TEXT);
                 CREATE INDEX raw_history_provider ON raw_history (provider, revision);
                 CREATE TABLE raw_revision (id INTEGER PRIMARY KEY, head BIGINT NOT NULL);
                 INSERT INTO raw_revision (id, head) VALUES (1, 0);",
            )
            .await
            .expect("the raw tables");
        let config = Arc::new(config.to_string());
        for n in 0..PUT_PROVIDERS {
            Self::write(&clients[0], &config, n).await;
        }
        RawPostgres { clients, config }
    }

    /// One write of the server's shape: the next revision (the counter row, locked to commit),
    /// the history row with the state, the provider row.
    async fn write(client: &deadpool_postgres::Object, config: &str, n: usize) {
        let name = format!("bench-{n:05}");
        let etag = uuid::Uuid::new_v4().simple().to_string();
        client.batch_execute("BEGIN").await.expect("BEGIN");
        let next = client
            .prepare_cached("UPDATE raw_revision SET head = head + 1 WHERE id = 1 RETURNING head")
            .await
            .expect("prepare");
        let revision: i64 = client
            .query_one(&next, &[])
            .await
            .expect("the revision")
            .get(0);
        let history = client
            .prepare_cached(
                "INSERT INTO raw_history (revision, provider, at, action, source, actor, changed,
                    etag, config, config_hash, sealed_with)
                 VALUES ($1, $2, $3, 'update', 'api', 'anonymous', '[\"keys\"]', $4,
                    $5::text::jsonb, NULL, NULL)",
            )
            .await
            .expect("prepare");
        client
            .execute(
                &history,
                &[&revision, &name, &now_rfc3339(), &etag, &config],
            )
            .await
            .expect("the history row");
        let upsert = client
            .prepare_cached(
                "INSERT INTO raw_providers (name, config, config_hash, etag, sealed_with)
                 VALUES ($1, $2::text::jsonb, NULL, $3, NULL)
                 ON CONFLICT (name) DO UPDATE SET config = excluded.config,
                    config_hash = excluded.config_hash, etag = excluded.etag,
                    sealed_with = excluded.sealed_with, updated_at = now()",
            )
            .await
            .expect("prepare");
        client
            .execute(&upsert, &[&name, &config, &etag])
            .await
            .expect("the provider row");
        client.batch_execute("COMMIT").await.expect("COMMIT");
    }

    /// `writers` connections, each `per_writer` writes one after another.
    async fn put(&self, writers: usize, per_writer: usize) -> Stats {
        self.run(writers, per_writer, |client, config, w, i| async move {
            Self::write(&client, &config, (w * 31 + i * 7) % PUT_PROVIDERS).await;
        })
        .await
    }

    /// `readers` connections, each `per_reader` reads of one provider's row.
    async fn get(&self, readers: usize, per_reader: usize) -> Stats {
        self.run(readers, per_reader, |client, _, w, i| async move {
            let select = client
                .prepare_cached(
                    "SELECT name, config::text, config_hash, etag, sealed_with
                     FROM raw_providers WHERE name = $1",
                )
                .await
                .expect("prepare");
            let name = format!("bench-{:05}", (w * 31 + i) % PUT_PROVIDERS);
            let row = client.query_one(&select, &[&name]).await.expect("a row");
            assert!(row.get::<_, String>(1).len() > 100);
        })
        .await
    }

    async fn run<F, Fut>(&self, workers: usize, per_worker: usize, op: F) -> Stats
    where
        F: Fn(Arc<deadpool_postgres::Object>, Arc<String>, usize, usize) -> Fut
            + Copy
            + Send
            + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let barrier = Arc::new(tokio::sync::Barrier::new(workers + 1));
        let tasks: Vec<_> = (0..workers)
            .map(|w| {
                let (client, config) = (Arc::clone(&self.clients[w]), Arc::clone(&self.config));
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    for i in 0..per_worker.min(5) {
                        op(Arc::clone(&client), Arc::clone(&config), w, i).await;
                    }
                    barrier.wait().await;
                    let mut latencies = Vec::with_capacity(per_worker);
                    for i in 0..per_worker {
                        let started = Instant::now();
                        op(Arc::clone(&client), Arc::clone(&config), w, i).await;
                        latencies.push(started.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        gather(&barrier, tasks).await
    }
}

/// `samples` times: a watcher long-polls `watcher` for the next revision, a PUT goes to `writer`;
/// the latency is from the PUT's 200 to the watcher's answer (0 when the answer came first).
async fn propagation(writer: SocketAddr, watcher: SocketAddr, samples: usize) -> Stats {
    let revision = |body: &[u8]| -> i64 {
        serde_json::from_slice::<Value>(body).expect("JSON")["revision"]
            .as_i64()
            .expect("a revision")
    };
    let (_, first) = call(watcher, "GET", "/api/changes?timeout=0&since=0", b"").await;
    let mut since = revision(&first);
    let mut latencies = Vec::with_capacity(samples);
    let started = Instant::now();
    for i in 0..samples {
        let path = format!("/api/changes?since={since}&timeout=10");
        let waiting = tokio::spawn(async move {
            let (status, body) = call(watcher, "GET", &path, b"").await;
            assert_eq!(status, 200);
            (body, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (status, _) = call(writer, "PUT", "/api/providers/bench-watch", &body(i)).await;
        assert_eq!(status, 200);
        let written = Instant::now();
        let (answer, seen) = waiting.await.expect("the watcher");
        since = revision(&answer);
        latencies.push(seen.saturating_duration_since(written));
    }
    Stats::of(latencies, started.elapsed())
}

/// The encryption key of the sealed server (a fixed test key: 32 bytes in base64).
const SEALING_KEY: &str = "YmVuY2gtb25seSBrZXk6IHNlYWxpbmcgY29zdCEhISE=";

/// How many alternating rounds of a measurement and its baseline are run; the median counts.
const ROUNDS: usize = 3;

/// The round with the median rate.
fn median(mut rounds: Vec<Stats>) -> Stats {
    rounds.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    rounds.swap_remove(rounds.len() / 2)
}

/// PUTs of 5-key bodies by `writers` writers over the 100 benchmark providers.
async fn put_load(addr: SocketAddr, writers: usize, per_writer: usize) -> Stats {
    load(addr, writers, per_writer, |w, i| {
        let n = (w * 31 + i * 7) % PUT_PROVIDERS;
        put(&format!("/api/providers/bench-{n:05}"), body(n))
    })
    .await
}

/// A PUT body: full replacement with 5 keys, derived from `n`.
fn body(n: usize) -> Vec<u8> {
    let keys: Vec<Value> = (0..5)
        .map(|k| {
            json!({"id": format!("key-{k}"), "name": format!("key {k}"),
                   "value": {"value": format!("sk-bench-{n:05}-{k}-0123456789abcdefghij")},
                   "models": ["gpt-4o", "gpt-4o-mini", "o3"], "weight": 1.0})
        })
        .collect();
    serde_json::to_vec(&json!({
        "keys": keys,
        "network_config": {"base_url": "https://api.example.com/v1", "max_retries": 2,
                           "extra_headers": {"x-team": "bench"}},
        "concurrency_and_buffer_size": {"concurrency": 100, "buffer_size": 1000},
        "custom_provider_config": {"base_provider_type": "openai"}
    }))
    .expect("JSON")
}

/// What the store writes for a body: the normalized configuration, as the server stores it.
fn stored_bytes(body: &[u8]) -> String {
    let request: bifrost_providers::types::UpdateProviderRequest =
        serde_json::from_slice(body).expect("a valid body");
    let state = bifrost_providers::domain::provider::desired_state("bench-00000", request, None)
        .expect("a valid provider");
    serde_json::to_string(&state.config).expect("JSON")
}

/// Creates providers `bench-FROM` to `bench-TO` (inclusive), 64 writers at a time.
async fn fill(addr: SocketAddr, from: usize, to: usize) {
    let todo = to + 1 - from;
    let writers = 64.min(todo);
    let per_writer = todo.div_ceil(writers);
    load(addr, writers, per_writer, move |w, i| {
        let n = from + (w * per_writer + i).min(todo - 1);
        put(&format!("/api/providers/bench-{n:05}"), body(n))
    })
    .await;
}

/// `requests` GETs of the whole list, 2 at a time: a row, and the p50 cost per provider.
async fn list(
    addr: SocketAddr,
    requests: usize,
    rows: &mut Vec<Row>,
    per_provider: &mut Vec<(usize, f64)>,
) {
    let path = "/api/providers";
    let (status, listed) = call(addr, "GET", path, &[]).await;
    assert_eq!(status, 200);
    let count = serde_json::from_slice::<Value>(&listed).expect("JSON")["total"]
        .as_u64()
        .expect("a total") as usize;
    let stats = load(addr, 2, requests / 2, |_, _| get(path)).await;
    per_provider.push((count, stats.p50.as_secs_f64() * 1e6 / count as f64));
    rows.push(Row::new(
        &format!("GET list: {count} providers ({} KiB)", listed.len() / 1024),
        2,
        &stats,
    ));
}

fn get(path: &str) -> hyper::Request<Full<Bytes>> {
    hyper::Request::get(path)
        .header("host", "bench")
        .body(Full::new(Bytes::new()))
        .expect("a request")
}

fn put(path: &str, body: Vec<u8>) -> hyper::Request<Full<Bytes>> {
    hyper::Request::put(path)
        .header("host", "bench")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a request")
}

/// Requests per second over the whole run.
impl Stats {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// `workers` connections, each sending `per_worker` requests one after another (after a short
/// warm-up); every response must be a 200.
async fn load(
    addr: SocketAddr,
    workers: usize,
    per_worker: usize,
    request: impl Fn(usize, usize) -> hyper::Request<Full<Bytes>> + Send + Sync + 'static,
) -> Stats {
    let request = Arc::new(request);
    let barrier = Arc::new(tokio::sync::Barrier::new(workers + 1));
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (request, barrier) = (Arc::clone(&request), Arc::clone(&barrier));
            tokio::spawn(async move {
                let mut sender = connect(addr).await;
                for i in 0..per_worker.min(20) {
                    send(&mut sender, request(w, i)).await;
                }
                barrier.wait().await;
                let mut latencies = Vec::with_capacity(per_worker);
                for i in 0..per_worker {
                    let started = Instant::now();
                    send(&mut sender, request(w, i)).await;
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    gather(&barrier, tasks).await
}

/// Releases the warmed-up workers at once (the last party of `barrier`) and gathers their
/// latencies, timed from the release to the last answer.
async fn gather(
    barrier: &tokio::sync::Barrier,
    tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>>,
) -> Stats {
    barrier.wait().await;
    let started = Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a load worker"));
    }
    Stats::of(all, started.elapsed())
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, request: hyper::Request<Full<Bytes>>) {
    sender.ready().await.expect("connection ready");
    let response = sender.send_request(request).await.expect("a response");
    let status = response.status();
    let body = response.into_body().collect().await.expect("a body");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body.to_bytes()));
}

/// `count` transactions of the shape a server write commits: the provider row upserted with
/// `config` and its history row (the revision, its summary and the same state) inserted, in
/// tables shaped like the server's, on a file with the server's settings (WAL,
/// synchronous=FULL, exclusive locking).
fn raw_sqlite(path: &std::path::Path, config: &str, count: usize) -> Stats {
    let mut conn = rusqlite::Connection::open(path).expect("open the raw database");
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
        .unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS providers (name TEXT PRIMARY KEY NOT NULL, config TEXT NOT NULL,
            config_hash TEXT, etag TEXT NOT NULL, sealed_with TEXT) STRICT, WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS history (revision INTEGER PRIMARY KEY, provider TEXT NOT NULL,
            at TEXT NOT NULL, action TEXT NOT NULL, source TEXT NOT NULL, actor TEXT NOT NULL,
            changed TEXT NOT NULL, etag TEXT, config TEXT, config_hash TEXT, sealed_with TEXT) STRICT;
         CREATE INDEX IF NOT EXISTS history_provider ON history (provider, revision);",
    )
    .unwrap();
    let mut revision: i64 = conn
        .query_row("SELECT coalesce(max(revision), 0) FROM history", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut latencies = Vec::with_capacity(count);
    let started = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        let name = format!("bench-{:05}", i % PUT_PROVIDERS);
        let etag = uuid::Uuid::new_v4().simple().to_string();
        revision += 1;
        let tx = conn.transaction().unwrap();
        tx.prepare_cached(
            "INSERT INTO history (revision, provider, at, action, source, actor, changed, etag,
                 config, config_hash, sealed_with)
             VALUES (?1, ?2, ?3, 'update', 'api', 'anonymous', '[\"keys\"]', ?4, ?5, NULL, NULL)",
        )
        .unwrap()
        .execute(rusqlite::params![
            revision,
            name,
            now_rfc3339(),
            etag,
            config
        ])
        .unwrap();
        tx.prepare_cached(
            "INSERT INTO providers (name, config, config_hash, etag, sealed_with)
             VALUES (?1, ?2, NULL, ?3, NULL)
             ON CONFLICT (name) DO UPDATE SET config = excluded.config,
                 config_hash = excluded.config_hash, etag = excluded.etag,
                 sealed_with = excluded.sealed_with",
        )
        .unwrap()
        .execute(rusqlite::params![name, config, etag])
        .unwrap();
        tx.commit().unwrap();
        latencies.push(t.elapsed());
    }
    Stats::of(latencies, started.elapsed())
}

/// A timestamp as the server writes one (its text, not its meaning, matters here).
fn now_rfc3339() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}Z", since.as_secs(), since.subsec_nanos())
}

impl Server {
    /// A release server on a new SQLite file in `dir`, sealing secrets with `key` if given.
    fn start(dir: &tempfile::TempDir, key: Option<&str>) -> Self {
        let store = format!("sqlite://{}", dir.path().join("providers.db").display());
        Server::launch(&dir.path().join("server.log"), key, &["--store", &store])
    }

    /// A release server on the store at `url` (a PostgreSQL replica), its log in `dir`.
    fn start_on(dir: &tempfile::TempDir, url: &str) -> Self {
        Server::launch(&dir.path().join("server.log"), None, &["--store", url])
    }

    /// The server's peak resident set size so far (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }
}

/// The baseline: this binary re-run as a bare hyper server in a process of its own.
struct Baseline {
    child: Child,
    addr: SocketAddr,
}

impl Baseline {
    fn start(body: &std::path::Path) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
            .env(BASELINE_ROLE, body)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the baseline server");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("the baseline's address");
        let addr = line.trim().parse().expect("an address");
        Baseline { child, addr }
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Answers every request with `body` (and the headers a provider GET has), on the same kind of
/// runtime as the server: tokio, multi-threaded, hyper HTTP/1.1.
fn baseline_server(body: Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let body = Bytes::from(body);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("an address"));
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            stream.set_nodelay(true).expect("nodelay");
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| {
                    let body = body.clone();
                    async move {
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .header("etag", "\"0123456789abcdef0123456789abcdef\"")
                            .body(Full::new(body))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

struct Row {
    label: String,
    concurrency: usize,
    rate: f64,
    p50: Duration,
    p99: Duration,
}

impl Row {
    fn new(label: &str, concurrency: usize, stats: &Stats) -> Self {
        Row {
            label: label.to_string(),
            concurrency,
            rate: stats.rate(),
            p50: stats.p50,
            p99: stats.p99,
        }
    }
}

fn print_report(rows: &[Row], per_provider: &[(usize, f64)], (held, listed): (u64, u64)) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| measurement | concurrency | req/s | p50 ms | p99 ms | p99/p50 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {:.3} | {:.3} | {:.1} |",
            r.label,
            r.concurrency,
            r.rate,
            ms(r.p50),
            ms(r.p99),
            r.p99.as_secs_f64() / r.p50.as_secs_f64()
        );
    }
    let rate = |label: &str| {
        rows.iter()
            .find(|r| r.label == label)
            .map(|r| r.rate)
            .unwrap_or(f64::NAN)
    };
    let raw = rate("PUT: raw SQLite txn baseline");
    let p8 = rows.iter().find(|r| r.label == "PUT: server, 8 writers");
    println!("\n| ratio | value | target |");
    println!("|---|---:|---|");
    println!(
        "| GET one: server / hyper | {:.2} | >= 0.7 |",
        rate("GET one: server") / rate("GET one: hyper baseline")
    );
    println!(
        "| PUT 1 writer: server / raw SQLite | {:.2} | >= 0.8 |",
        rate("PUT: server, 1 writer") / raw
    );
    println!(
        "| PUT 1 writer: secrets sealed / in clear | {:.2} | |",
        rate("PUT: server, secrets sealed, 1 writer") / rate("PUT: server, 1 writer")
    );
    println!(
        "| PUT 64 writers: secrets sealed / in clear | {:.2} | |",
        rate("PUT: server, secrets sealed, 64 writers")
            / rate("PUT: server, 64 writers (alternating with sealed)")
    );
    println!(
        "| PUT 8 writers: server / raw SQLite | {:.2} | |",
        rate("PUT: server, 8 writers") / raw
    );
    println!(
        "| PUT 64 writers: server / raw SQLite (1 writer) | {:.2} | >= 3 |",
        rate("PUT: server, 64 writers") / raw
    );
    let ms_of = |label: &str| {
        rows.iter()
            .find(|r| r.label == label)
            .map(|r| (ms(r.p50), ms(r.p99)))
    };
    if let Some((p50, p99)) = ms_of("change propagation: PUT 200 -> watcher, one server") {
        println!(
            "| change propagation, one server: p50 / p99 ms | {p50:.2} / {p99:.2} | p99 <= 10 |"
        );
    }
    if let Some((p50, p99)) = ms_of("change propagation: PUT 200 on A -> watcher on B, PostgreSQL")
    {
        println!(
            "| change propagation, two PostgreSQL replicas: p50 / p99 ms | {p50:.2} / {p99:.2} | p99 <= 100 |"
        );
    }
    for (what, ours, theirs, target) in [
        (
            "PostgreSQL GET: server / raw SELECT",
            "PostgreSQL GET: server",
            "PostgreSQL GET: raw SELECT baseline",
            ">= 0.7",
        ),
        (
            "PostgreSQL PUT 1 writer: server / raw txn",
            "PostgreSQL PUT: server, 1 writers",
            "PostgreSQL PUT: raw txn baseline, 1 writers",
            ">= 0.8",
        ),
        (
            "PostgreSQL PUT 64 writers: server / raw txn (1 writer)",
            "PostgreSQL PUT: server, 64 writers",
            "PostgreSQL PUT: raw txn baseline, 1 writers",
            ">= 3",
        ),
        (
            "PostgreSQL PUT 64 writers: server / raw txn (64 writers)",
            "PostgreSQL PUT: server, 64 writers",
            "PostgreSQL PUT: raw txn baseline, 64 writers",
            "",
        ),
    ] {
        if rows.iter().any(|r| r.label == ours) {
            println!("| {what} | {:.2} | {target} |", rate(ours) / rate(theirs));
        }
    }
    if let Some(r) = p8 {
        println!(
            "| PUT 8 writers: p99 / p50 | {:.2} | <= 5 |",
            r.p99.as_secs_f64() / r.p50.as_secs_f64()
        );
    }
    let at = |n: usize| {
        per_provider
            .iter()
            .find(|(c, _)| *c >= n && *c < n * 2)
            .map(|(_, us)| *us)
            .unwrap_or(f64::NAN)
    };
    for (count, us) in per_provider {
        println!("| GET list, {count} providers: µs per provider (p50) | {us:.2} | |");
    }
    println!(
        "| GET list per provider: 10,000 / 1,000 | {:.2} | <= 1 |",
        at(10_000) / at(1_000)
    );
    println!(
        "| peak RSS holding 10,000 providers × 5 keys, filled by PUTs | {:.1} MiB | |",
        held as f64 / 1024.0
    );
    println!(
        "| peak RSS after listing them, 2 lists at a time | {:.1} MiB | |",
        listed as f64 / 1024.0
    );
}
