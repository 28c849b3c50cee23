//! `cargo bench --bench sync`: how long a change takes to reach a fleet of gateways kept in step
//! by `serve --sync-to`, beside the store's own change feed measured in the same run.
//!
//! Sixteen release servers on memory stores stand for the gateways (this server speaks Bifrost's
//! provider API). For 1, 4 and 16 of them, a release store on a new SQLite file syncs to them;
//! each sample is one PUT to the store, and its latency runs from the store's 200 to the moment
//! the last target answers with the change (its change feed wakes and its GET shows the new
//! value). The baseline is a watcher on the store's own change feed, woken by the same PUT: the
//! floor any push from the store can reach. Bounded: 100 samples per fleet, a few seconds each.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, Stats, call};

/// PUTs measured per fleet size.
const SAMPLES: usize = 100;

/// The fleet sizes measured.
const FLEETS: [usize; 3] = [1, 4, 16];

/// The longest a sample may take to reach every target before the benchmark fails.
const PATIENCE: Duration = Duration::from_secs(30);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks for test names; this harness has none to list
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let fleet: Vec<Server> = (0..FLEETS[FLEETS.len() - 1])
        .map(|t| {
            let log = dir.path().join(format!("target-{t}.log"));
            Server::launch(&log, None, &["--store", "memory://"])
        })
        .collect();
    println!(
        "| targets | samples | store's change feed p50 / p99 ms | every target p50 / p99 ms | p99: targets / feed |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for size in FLEETS {
        let targets = &fleet[..size];
        let urls: Vec<String> = targets
            .iter()
            .map(|t| format!("http://{}", t.addr))
            .collect();
        let store_url = format!(
            "sqlite://{}",
            dir.path().join(format!("store-{size}.db")).display()
        );
        let store = Server::launch(
            &dir.path().join(format!("store-{size}.log")),
            None,
            &["--store", &store_url, "--sync-to", &urls.join(",")],
        );
        in_sync(&store, size).await;
        let (feed, every) = measure(&store, targets).await;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {size} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.1} |",
            every.requests,
            ms(feed.p50),
            ms(feed.p99),
            ms(every.p50),
            ms(every.p99),
            every.p99.as_secs_f64() / feed.p99.as_secs_f64().max(1e-6),
        );
        eprintln!(
            "{size} target(s): {} samples in {:.1} s",
            every.requests,
            every.elapsed.as_secs_f64()
        );
    }
}

/// Waits until the store reports every one of its `size` targets in step.
async fn in_sync(store: &Server, size: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = call(store.addr, "GET", "/api/sync", b"").await;
        assert_eq!(
            status,
            200,
            "GET /api/sync: {}",
            String::from_utf8_lossy(&body)
        );
        let shown: Value = serde_json::from_slice(&body).expect("JSON");
        let targets = shown["targets"].as_array().expect("targets");
        if targets.len() == size && targets.iter().all(|t| t["state"] == "in_sync") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the fleet did not come into step: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `SAMPLES` PUTs to the store, each timed to the store's own watcher and to the last target.
async fn measure(store: &Server, targets: &[Server]) -> (Stats, Stats) {
    let mut store_since = revision(store.addr).await;
    let mut since = Vec::with_capacity(targets.len());
    for target in targets {
        since.push(revision(target.addr).await);
    }
    let (mut feed, mut every) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for sample in 0..SAMPLES {
        let marker = format!("\"https://api.example.com/v{sample}\"");
        let watcher = tokio::spawn(next_change(store.addr, store_since));
        let arrivals: Vec<_> = targets
            .iter()
            .zip(&since)
            .map(|(target, &from)| tokio::spawn(arrival(target.addr, from, marker.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (status, shown) = call(store.addr, "PUT", "/api/providers/openai", &body(sample)).await;
        assert_eq!(status, 200, "PUT: {}", String::from_utf8_lossy(&shown));
        let written = Instant::now();
        let (seen, revision) = watcher.await.expect("the store's watcher");
        store_since = revision;
        feed.push(seen.saturating_duration_since(written));
        let mut last = written;
        for (at, arrival) in arrivals.into_iter().enumerate() {
            let (seen, revision) = tokio::time::timeout(PATIENCE, arrival)
                .await
                .unwrap_or_else(|_| panic!("target {at} never showed sample {sample}"))
                .expect("a target's watcher");
            since[at] = revision;
            last = last.max(seen);
        }
        every.push(last - written);
    }
    let elapsed = started.elapsed();
    (Stats::of(feed, elapsed), Stats::of(every, elapsed))
}

/// The revision a server's change feed stands at.
async fn revision(addr: std::net::SocketAddr) -> i64 {
    let (_, body) = call(addr, "GET", "/api/changes?since=0&timeout=0", b"").await;
    revision_of(&body)
}

fn revision_of(body: &[u8]) -> i64 {
    serde_json::from_slice::<Value>(body).expect("JSON")["revision"]
        .as_i64()
        .expect("a revision")
}

/// When the change feed of `addr` moved past `since`, and to which revision.
async fn next_change(addr: std::net::SocketAddr, since: i64) -> (Instant, i64) {
    let path = format!("/api/changes?since={since}&timeout=10");
    let (status, body) = call(addr, "GET", &path, b"").await;
    assert_eq!(status, 200);
    (Instant::now(), revision_of(&body))
}

/// When the target at `addr` first answered with `marker` in its provider, following its change
/// feed from `since`; and the revision its feed then stood at.
async fn arrival(addr: std::net::SocketAddr, mut since: i64, marker: String) -> (Instant, i64) {
    loop {
        let (_, revision) = next_change(addr, since).await;
        since = revision;
        let (status, shown) = call(addr, "GET", "/api/providers/openai", b"").await;
        if status == 200 && String::from_utf8_lossy(&shown).contains(&marker) {
            return (Instant::now(), since);
        }
    }
}

/// The store's PUT body of `sample`: two keys, a base URL that marks the sample.
fn body(sample: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "keys": [
            {"id": "key-0", "name": "primary", "value": format!("sk-bench-{sample:05}-primary-0123456789"),
             "models": ["gpt-4o"], "weight": 1.0},
            {"id": "key-1", "name": "secondary", "value": "env.OPENAI_API_KEY", "models": [], "weight": 0.5}
        ],
        "network_config": {"base_url": format!("https://api.example.com/v{sample}"), "max_retries": 2},
        "concurrency_and_buffer_size": {"concurrency": 100, "buffer_size": 1000}
    }))
    .expect("a body")
}
