//! The leak check of the whole integration suite: every test server sits behind a recording
//! TCP relay, and when the server is dropped, every response it sent and every line it logged
//! is searched for every secret the suite has used so far in this test binary.
//!
//! The secrets are gathered, not listed by hand: each field that `openapi.json` marks with
//! `x-bifrost-secret` in every JSON body sent to a server (secret fields, credential headers,
//! URL user-info), every value of an environment
//! variable given to a server whose name says it is secret (`…KEY`, `…TOKEN`, `…SECRET`,
//! `…PASSWORD`), and every secret of a config file a server was started with.
//!
//! The relay passes bytes through untouched in both directions (it is not an HTTP proxy), so
//! tests see the server's own framing, status and connection behaviour; a connection it cannot
//! forward (the server is down) is closed, as a dead server's would be refused.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How much of each direction of a connection is kept.
const KEEP: usize = 16 << 20;

/// The shortest value searched for: shorter ones match by chance.
const MIN_SECRET: usize = 6;

/// Every secret used so far in this test binary.
static USED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The relays' own runtime, apart from the tests' (which may block their thread).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("leak-relay")
            .enable_all()
            .build()
            .expect("the relay runtime")
    })
}

/// What went through one connection.
#[derive(Default)]
struct Connection {
    sent: Vec<u8>,
    answered: Vec<u8>,
}

/// A recording relay in front of a server.
pub struct Relay {
    pub addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    connections: Arc<Mutex<Vec<Arc<Mutex<Connection>>>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// A relay on a free loopback port that forwards every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> Relay {
        // Bound here, outside any runtime (the caller may be inside the test's own).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the relay's address");
        let upstream = Arc::new(Mutex::new(upstream));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accepting = runtime().spawn(accept(
            listener,
            Arc::clone(&upstream),
            Arc::clone(&connections),
        ));
        Relay {
            addr,
            upstream,
            connections,
            accepting,
        }
    }

    /// Forwards new connections to `upstream` from now on (the server restarted elsewhere).
    pub fn retarget(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }

    /// Every secret in the JSON bodies of the requests sent through the relay.
    fn secrets_sent(&self) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for connection in self.connections.lock().unwrap().iter() {
            for body in request_bodies(&connection.lock().unwrap().sent) {
                if let Ok(json) = serde_json::from_slice::<Value>(&body) {
                    collect(&json, &mut found);
                }
            }
        }
        found
    }

    /// Everything the server answered, connection after connection.
    fn answered(&self) -> Vec<u8> {
        let connections = self.connections.lock().unwrap();
        let mut all = Vec::new();
        for connection in connections.iter() {
            all.extend_from_slice(&connection.lock().unwrap().answered);
            all.push(b'\n');
        }
        all
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(
    listener: std::net::TcpListener,
    upstream: Arc<Mutex<SocketAddr>>,
    connections: Arc<Mutex<Vec<Arc<Mutex<Connection>>>>>,
) {
    let listener = TcpListener::from_std(listener).expect("the relay's listener");
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let target = *upstream.lock().unwrap();
        let record = Arc::new(Mutex::new(Connection::default()));
        connections.lock().unwrap().push(Arc::clone(&record));
        tokio::spawn(async move {
            // The server is down: close, as a refused connection would fail the client.
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::join!(
                pump(client_read, server_write, Arc::clone(&record), true),
                pump(server_read, client_write, record, false),
            );
        });
    }
}

/// Copies one direction until it ends, keeping what passes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    record: Arc<Mutex<Connection>>,
    sent: bool,
) {
    let mut buffer = vec![0; 64 << 10];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut record = record.lock().unwrap();
            let kept = if sent {
                &mut record.sent
            } else {
                &mut record.answered
            };
            let room = KEEP.saturating_sub(kept.len()).min(n);
            kept.extend_from_slice(&buffer[..room]);
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The bodies of the HTTP/1.1 requests in a connection's bytes (those with a Content-Length).
fn request_bodies(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = request.parse(bytes) else {
            return bodies;
        };
        let length = request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| {
                std::str::from_utf8(h.value)
                    .ok()?
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
            .unwrap_or(0);
        let end = (head + length).min(bytes.len());
        bodies.push(bytes[head..end].to_vec());
        bytes = &bytes[end..];
    }
}

/// Where secrets are, read from the spec's `x-bifrost-secret` marks: for each schema, its
/// marked properties and what each holds (`value`, `credential-headers`, `user-info`).
fn marked() -> &'static BTreeMap<String, Vec<(String, String)>> {
    static MARKED: OnceLock<BTreeMap<String, Vec<(String, String)>>> = OnceLock::new();
    MARKED.get_or_init(|| {
        let spec: Value = serde_json::from_str(include_str!("../../openapi.json")).expect("spec");
        let mut marked = BTreeMap::new();
        for (schema, body) in spec["components"]["schemas"].as_object().expect("schemas") {
            let fields: Vec<(String, String)> = body["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(name, p)| {
                    Some((name.clone(), p["x-bifrost-secret"].as_str()?.to_string()))
                })
                .collect();
            if !fields.is_empty() {
                marked.insert(schema.clone(), fields);
            }
        }
        marked
    })
}

/// The schema a property of `schema` refers to, if any (`allOf: [{$ref}]` or `$ref`).
fn schema_of(schema: &str, property: &str) -> Option<String> {
    let spec: &Value = {
        static SPEC: OnceLock<Value> = OnceLock::new();
        SPEC.get_or_init(|| serde_json::from_str(include_str!("../../openapi.json")).unwrap())
    };
    let p = &spec["components"]["schemas"][schema]["properties"][property];
    let text = p["$ref"]
        .as_str()
        .or_else(|| p["allOf"][0]["$ref"].as_str())?;
    text.rsplit('/').next().map(str::to_string)
}

/// Adds the secrets the spec marks in `value`, an instance of `schema`, and in the objects it
/// holds (one level of blocks: a key's configs, a provider's network and proxy blocks).
fn collect_in(schema: &str, value: &Value, found: &mut BTreeSet<String>, depth: usize) {
    let mut add = |text: &str| {
        if is_secret_value(text) {
            found.insert(text.to_string());
        }
    };
    for (field, kind) in marked().get(schema).into_iter().flatten() {
        let held = &value[field];
        match kind.as_str() {
            "value" => match held {
                Value::String(s) => add(s),
                Value::Object(o) => add(o.get("value").and_then(Value::as_str).unwrap_or_default()),
                _ => {}
            },
            "credential-headers" => {
                for (name, v) in held.as_object().into_iter().flatten() {
                    if bifrost_providers::domain::credentials::is_credential_header(name) {
                        add(v.as_str().unwrap_or_default());
                    }
                }
            }
            "user-info" => {
                if let Some(url) = held.as_str().and_then(|u| url::Url::parse(u).ok()) {
                    add(url.username());
                    add(url.password().unwrap_or_default());
                }
            }
            other => panic!("unknown x-bifrost-secret {other:?} on {schema}.{field}"),
        }
    }
    if depth == 0 {
        return;
    }
    for (field, inner) in value.as_object().into_iter().flatten() {
        if let Some(block) = schema_of(schema, field)
            && inner.is_object()
        {
            collect_in(&block, inner, found, depth - 1);
        }
    }
}

/// Adds the secrets of a provider configuration (a request body or a config-file entry).
fn collect(provider: &Value, found: &mut BTreeSet<String>) {
    collect_in("UpdateProviderRequest", provider, found, 1);
    for key in provider["keys"].as_array().into_iter().flatten() {
        collect_in("Key", key, found, 1);
    }
}

/// Whether a value is a secret to search for: long enough, and neither a mask nor a reference.
fn is_secret_value(value: &str) -> bool {
    value.chars().count() >= MIN_SECRET
        && !value.starts_with("env.")
        && !value.starts_with("vault.")
        && !value.chars().all(|c| c == '*')
        && !value.contains("********")
        && value != "<REDACTED>"
        && value != "[REDACTED]"
}

/// The secrets a server was started with: secret-named environment values, and the secret
/// fields of a `--config` file.
pub fn secrets_given(env: &[(String, String)], args: &[String]) -> BTreeSet<String> {
    let mut found: BTreeSet<String> = env
        .iter()
        .filter(|(name, value)| {
            ["KEY", "TOKEN", "SECRET", "PASSWORD"]
                .iter()
                .any(|word| name.to_ascii_uppercase().contains(word))
                && is_secret_value(value)
        })
        .map(|(_, value)| value.clone())
        .collect();
    let file = args
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1));
    if let Some(json) = file
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    {
        for provider in json["providers"].as_object().into_iter().flatten() {
            collect(provider.1, &mut found);
        }
    }
    found
}

/// Fails the test if any secret used so far shows in what the server answered through `relay`
/// or in `logs`. `given` are the secrets the server was started with.
pub fn check(relay: &Relay, given: BTreeSet<String>, logs: &str) {
    let secrets = {
        let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
        used.extend(relay.secrets_sent());
        used.extend(given);
        used.clone()
    };
    let secrets: Vec<&String> = secrets.iter().collect();
    let searcher = aho_corasick::AhoCorasick::new(&secrets).expect("a searcher for the secrets");
    let answered = relay.answered();
    for (place, text) in [
        ("a response", answered.as_slice()),
        ("the server log", logs.as_bytes()),
    ] {
        if let Some(found) = searcher.find(text) {
            let context =
                &text[found.start().saturating_sub(200)..(found.end() + 200).min(text.len())];
            panic!(
                "secret {:?} leaked into {place} (one of {} secrets checked): …{}…",
                secrets[found.pattern().as_usize()],
                secrets.len(),
                String::from_utf8_lossy(context)
            );
        }
    }
}
