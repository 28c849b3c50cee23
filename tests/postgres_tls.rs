//! TLS to PostgreSQL through the real server, on a real PostgreSQL with TLS on (the tests that
//! need one run when `BIFROST_TEST_POSTGRES_URL` is set): `sslmode` and `sslrootcert` as libpq
//! means them, the pool's and the change listener's connections encrypted, as the database
//! itself reports, and a refusal at start, naming the parameter, for what cannot be honoured.
//!
//! The CA is the database's certificate, `BIFROST_TEST_POSTGRES_CA` (default: Debian's
//! self-signed snakeoil certificate, issued to `localhost` only).

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestServer, get, pg_admin, put};
use serde_json::{Value, json};

/// The admin URL of the test PostgreSQL, or `None` (the test says it skipped).
fn admin(test: &str) -> Option<String> {
    match Backend::postgres(test)? {
        Backend::Postgres(url) => Some(url),
        Backend::Sqlite => None,
    }
}

/// The PEM certificate the test PostgreSQL presents (its own CA).
fn server_ca() -> String {
    std::env::var("BIFROST_TEST_POSTGRES_CA")
        .unwrap_or_else(|_| "/etc/ssl/certs/ssl-cert-snakeoil.pem".into())
}

/// The connections open to `server`'s database (those of every server on it): what each ran
/// last and whether it is encrypted, as PostgreSQL reports them; waits until `listeners`
/// change listeners (connections that ran `LISTEN`) are among them.
fn connections(admin: &str, server: &TestServer, listeners: usize) -> Vec<(String, bool)> {
    let name = &server.database().expect("a PostgreSQL store").name;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows: Vec<(String, bool)> = pg_admin(
            admin,
            &format!(
                "SELECT a.query, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                 WHERE a.datname = '{name}'"
            ),
        )
        .into_iter()
        .map(|row| {
            (
                row[0].clone().unwrap_or_default(),
                row[1].as_deref() == Some("t"),
            )
        })
        .collect();
        let listening = rows
            .iter()
            .filter(|(query, _)| query == "LISTEN bifrost_changes")
            .count();
        if listening >= listeners {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{listeners} change listeners never connected: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A write through `server` and the read that follows it.
async fn write_and_read(server: &TestServer) {
    let body = json!({"keys": [{"name": "k", "value": {"value": "sk-over-tls-0000000001"},
                                "models": ["gpt-4o"]}]});
    let (status, written) = put(server, "openai", &body).await;
    assert_eq!(status, 200, "{written}");
    let (status, read) = get(server, "openai").await;
    assert_eq!(status, 200);
    assert_eq!(read, written);
}

/// Starts a server on a new database with the store URL's `params`, or panics with its log.
fn start(admin: &str, params: &str) -> TestServer {
    TestServer::try_on_postgres(admin, params)
        .unwrap_or_else(|log| panic!("the server did not start with {params}: {log}"))
}

/// What a server that must refuse to start with `params` logged.
fn refused(admin: &str, params: &str) -> String {
    match TestServer::try_on_postgres(admin, params) {
        Ok(_) => panic!("the server started with {params}"),
        Err(log) => log,
    }
}

#[tokio::test]
async fn sslmode_require_encrypts_the_pool_and_the_change_listener() {
    let Some(admin) = admin("sslmode_require_encrypts_the_pool_and_the_change_listener") else {
        return;
    };
    let server = start(&admin, "sslmode=require");
    write_and_read(&server).await;
    let open = connections(&admin, &server, 1);
    assert!(open.len() >= 2, "the pool and the listener: {open:?}");
    assert!(
        open.iter().all(|(_, encrypted)| *encrypted),
        "a connection in clear: {open:?}"
    );
}

/// Without `sslmode`, libpq's default, `prefer`: TLS when the database offers it; `disable`
/// speaks in clear.
#[tokio::test]
async fn without_sslmode_tls_is_preferred_and_disable_turns_it_off() {
    let Some(admin) = admin("without_sslmode_tls_is_preferred_and_disable_turns_it_off") else {
        return;
    };
    let server = start(&admin, "");
    write_and_read(&server).await;
    let open = connections(&admin, &server, 1);
    assert!(
        open.iter().all(|(_, e)| *e),
        "a connection in clear: {open:?}"
    );

    let server = start(&admin, "sslmode=disable");
    write_and_read(&server).await;
    let open = connections(&admin, &server, 1);
    assert!(
        open.iter().all(|(_, e)| !*e),
        "a connection in TLS: {open:?}"
    );
}

/// `verify-ca` checks the chain (the database's certificate is for `localhost`, not the
/// `127.0.0.1` connected to, and passes): the database's CA passes, another CA is refused.
#[tokio::test]
async fn verify_ca_accepts_the_databases_ca_and_refuses_another() {
    let Some(admin) = admin("verify_ca_accepts_the_databases_ca_and_refuses_another") else {
        return;
    };
    let server = start(
        &admin,
        &format!("sslmode=verify-ca&sslrootcert={}", server_ca()),
    );
    write_and_read(&server).await;
    let open = connections(&admin, &server, 1);
    assert!(
        open.iter().all(|(_, e)| *e),
        "a connection in clear: {open:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(&other, ca.cert.pem()).unwrap();
    for mode in ["verify-ca", "require"] {
        let log = refused(
            &admin,
            &format!("sslmode={mode}&sslrootcert={}", other.display()),
        );
        assert!(log.contains("invalid peer certificate"), "{mode}: {log}");
        assert!(
            log.contains("cannot set up PostgreSQL store"),
            "{mode}: {log}"
        );
    }
}

/// `verify-full` checks the host name too: the database's certificate names `localhost`, so
/// `127.0.0.1` is refused at start, and `localhost` passes.
#[tokio::test]
async fn verify_full_refuses_a_host_the_certificate_does_not_name() {
    let Some(admin) = admin("verify_full_refuses_a_host_the_certificate_does_not_name") else {
        return;
    };
    let mut by_ip = url::Url::parse(&admin).unwrap();
    by_ip.set_host(Some("127.0.0.1")).unwrap();
    let params = format!("sslmode=verify-full&sslrootcert={}", server_ca());
    let log = refused(by_ip.as_str(), &params);
    assert!(log.contains("cannot set up PostgreSQL store"), "{log}");
    assert!(
        log.contains("certificate not valid for name \"127.0.0.1\""),
        "{log}"
    );

    let mut by_name = by_ip;
    by_name.set_host(Some("localhost")).unwrap();
    let server = start(by_name.as_str(), &params);
    write_and_read(&server).await;
    let open = connections(&admin, &server, 1);
    assert!(
        open.iter().all(|(_, e)| *e),
        "a connection in clear: {open:?}"
    );
}

/// A write through one server wakes a watcher on a second server on the same database at once:
/// the notification came over the second's encrypted listener connection (watchers otherwise
/// re-read every second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_listener_hears_other_replicas_over_tls() {
    let Some(admin) = admin("the_change_listener_hears_other_replicas_over_tls") else {
        return;
    };
    let first = start(
        &admin,
        &format!("sslmode=verify-ca&sslrootcert={}", server_ca()),
    );
    let second = first.replica();
    let open = connections(&admin, &first, 2);
    assert!(
        open.iter().all(|(_, e)| *e),
        "a connection in clear: {open:?}"
    );
    let listed = common::http()
        .get(format!("{}/api/providers", second.url))
        .send()
        .await
        .unwrap();
    let mut since: i64 = listed.headers()["x-bifrost-revision"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    for i in 0..3 {
        let url = format!("{}/api/changes?since={since}&timeout=20", second.url);
        let waiter = tokio::spawn(async move {
            let body: Value = common::http()
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (body, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let written = Instant::now();
        let body = json!({"network_config": {"max_retries": i}});
        assert_eq!(put(&first, "openai", &body).await.0, 200);
        let (body, seen) = waiter.await.unwrap();
        since += 1;
        assert_eq!(body["changes"][0]["revision"], since, "{body}");
        let waited = seen.duration_since(written);
        assert!(
            waited < Duration::from_millis(400),
            "the watcher on the other server waited {waited:?} (no notification woke it)"
        );
    }
}

/// An `sslmode` that does not exist, or a CA file that cannot be read, stops the server at
/// start with a message naming the parameter, and never the password (no database needed).
#[test]
fn a_bad_sslmode_or_sslrootcert_refuses_to_start_and_says_which() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let empty_ca = empty.path().display();
    let cases = [
        (
            "sslmode=bogus".to_string(),
            "invalid sslmode \"bogus\"".to_string(),
        ),
        (
            "sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem".into(),
            "cannot read sslrootcert /nonexistent/ca.pem".into(),
        ),
        (
            format!("sslmode=require&sslrootcert={empty_ca}"),
            format!("cannot read sslrootcert {empty_ca}: no PEM certificate"),
        ),
    ];
    for (params, says) in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
            .args(["serve", "--bind", "127.0.0.1:0", "--store"])
            .arg(format!(
                "postgres://nobody:hunter2-secret@127.0.0.1:1/none?{params}"
            ))
            .output()
            .unwrap();
        assert!(!output.status.success(), "{params}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&says), "{params}: {stderr}");
        assert!(
            !stderr.contains("hunter2-secret"),
            "the password leaked: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
