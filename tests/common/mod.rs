//! The test harness: the real `bifrost-providers` binary on a real port, on a real SQLite file
//! in a temporary folder, with its JSON logs kept for inspection.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bifrost_providers::Client;

pub struct TestServer {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    log: PathBuf,
    env: Vec<(String, String)>,
    extra_args: Vec<String>,
}

impl TestServer {
    /// A server on a new SQLite file.
    pub fn start() -> Self {
        Self::start_with(&[], &[])
    }

    /// A server with extra environment variables and arguments.
    pub fn start_with(env: &[(&str, &str)], args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let env: Vec<_> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let extra_args: Vec<_> = args.iter().map(|a| a.to_string()).collect();
        let log = dir.path().join("server-0.log");
        let (child, url) = spawn(&dir, &log, &env, &extra_args);
        TestServer {
            child,
            url,
            dir,
            log,
            env,
            extra_args,
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("providers.db")
    }

    /// Kills the server with SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// Stops the server with SIGTERM and waits for it to exit; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("send SIGTERM");
        self.child.wait().expect("reap the server").success()
    }

    /// Starts the server again on the same store, with `env` replacing the environment given
    /// at first start.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let n = std::fs::read_dir(self.dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        self.log = self.dir.path().join(format!("server-{n}.log"));
        let (child, url) = spawn(&self.dir, &self.log, &self.env, &self.extra_args);
        self.child = child;
        self.url = url;
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
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(
    dir: &tempfile::TempDir,
    log: &PathBuf,
    env: &[(String, String)],
    args: &[String],
) -> (Child, String) {
    let db = dir.path().join("providers.db");
    let log_file = std::fs::File::create(log).expect("create the log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--store",
        ])
        .arg(format!("sqlite://{}", db.display()))
        .args(args)
        .env_remove("BIFROST_BIND")
        .env_remove("BIFROST_STORE")
        .env("RUST_LOG", "info")
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
                return (child, format!("http://{addr}"));
            }
        }
        if let Some(status) = child.try_wait().expect("poll the server") {
            panic!(
                "server exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "server did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
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
    let http = reqwest::Client::new();
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
