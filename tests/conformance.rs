//! The conformance checks judge this server on every store (one suite, two uses: the same
//! checks `bifrost-providers conformance` runs against any server), catch planted faults by
//! name, and leave other providers byte-identical.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bifrost_providers::Client;
use bifrost_providers_conformance::{self as conformance, Options, Profile, Target, Verdict};
use common::{Backend, TestServer, get, put};
use serde_json::json;

fn options(profile: Profile) -> Options {
    Options {
        profile,
        only: Vec::new(),
        skip: Vec::new(),
        progress: false,
    }
}

fn target(url: &str) -> Target {
    Target::new(Client::builder(url).retries(0).build().unwrap())
}

async fn this_server_conforms_and_others_are_untouched(backend: Backend) {
    let server = TestServer::on(&backend);
    let (status, _) = put(
        &server,
        "openai",
        &json!({"keys": [{"name": "prod", "value": "sk-live-production-0123456789"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let before = server_rows(&server).await;

    let report = conformance::run(&target(&server.url), &options(Profile::Contract)).await;
    let failures: Vec<_> = report
        .failures()
        .map(|o| (o.name, o.verdict.clone()))
        .collect();
    assert!(failures.is_empty(), "{}", report.text());
    assert!(
        report.outcomes.iter().all(|o| o.verdict == Verdict::Pass),
        "this server meets every check's precondition: {}",
        report.text()
    );
    assert_eq!(report.outcomes.len(), conformance::checks().len());
    assert_eq!(
        server_rows(&server).await,
        before,
        "the run touched another provider"
    );

    // JUnit XML names every check, in suites per group.
    let xml = report.junit("conformance").unwrap();
    for check in conformance::checks() {
        assert!(xml.contains(&format!("name=\"{}\"", check.name)), "{xml}");
    }
    assert!(xml.contains("<testsuite name=\"etag\""), "{xml}");

    // Against a Bifrost generation's profile, what this server does better is an unexpected pass.
    let report = conformance::run(&target(&server.url), &options(Profile::G1)).await;
    assert!(report.failures().next().is_none(), "{}", report.text());
    assert!(
        report
            .outcomes
            .iter()
            .any(|o| o.name == "keys.left_out_stay"
                && matches!(o.verdict, Verdict::UnexpectedPass(_)))
    );
}

/// Every provider, as the API shows it (read after the run, through the API).
async fn server_rows(server: &TestServer) -> Vec<(String, serde_json::Value)> {
    let (_, _, listed) = common::raw("GET", &format!("{}/api/providers", server.url), None).await;
    let mut out = Vec::new();
    for p in listed["providers"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_string();
        out.push((name.clone(), get(server, &name).await.1));
    }
    out
}

on_every_store!(this_server_conforms_and_others_are_untouched);

/// A fault planted between the runner and the server: on the request on its way in, and on the
/// response on its way out.
struct Fault {
    request: fn(&mut http::request::Parts),
    response: fn(&http::request::Parts, &mut http::response::Parts),
}

/// A proxy in front of `upstream` that applies `fault` to each exchange.
async fn faulty_proxy(upstream: String, fault: &'static Fault) -> SocketAddr {
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = common::http();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let (http, upstream) = (http.clone(), upstream.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let (http, upstream) = (http.clone(), upstream.clone());
                    async move {
                        let (mut parts, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        (fault.request)(&mut parts);
                        let url = format!("{upstream}{}", parts.uri);
                        let answer = http
                            .request(parts.method.clone(), url)
                            .headers(parts.headers.clone())
                            .body(body.to_vec())
                            .send()
                            .await
                            .unwrap();
                        let mut out = http::Response::builder().status(answer.status());
                        for (k, v) in answer.headers() {
                            out = out.header(k, v);
                        }
                        let bytes = answer.bytes().await.unwrap();
                        let (mut head, body) = out.body(Full::new(bytes)).unwrap().into_parts();
                        (fault.response)(&parts, &mut head);
                        Ok::<_, Infallible>(http::Response::from_parts(head, body))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_faults_are_caught_by_name() {
    let server = Arc::new(TestServer::start());
    static FAULTS: [(&str, Fault); 4] = [
        // A server whose ETag never changes.
        (
            "etag.every_write_changes_it",
            Fault {
                request: |request| {
                    request.headers.remove("if-match");
                },
                response: |_, response| {
                    if response.headers.contains_key("etag") {
                        response
                            .headers
                            .insert("etag", http::HeaderValue::from_static("\"fixed\""));
                    }
                },
            },
        ),
        // A server that ignores If-Match.
        (
            "etag.if_match",
            Fault {
                request: |request| {
                    request.headers.remove("if-match");
                },
                response: |_, _| {},
            },
        ),
        // A server that answers 200 to a DELETE of a missing provider.
        (
            "notfound.delete_missing",
            Fault {
                request: |_| {},
                response: |request, response| {
                    if request.method == http::Method::DELETE && response.status == 404 {
                        response.status = http::StatusCode::OK;
                    }
                },
            },
        ),
        // A server that sends no ETag.
        (
            "etag.if_none_match_creates_only",
            Fault {
                request: |request| {
                    request.headers.remove("if-none-match");
                },
                response: |_, response| {
                    response.headers.remove("etag");
                },
            },
        ),
    ];
    for (name, fault) in &FAULTS {
        let proxy = faulty_proxy(server.url.clone(), fault).await;
        let report = conformance::run(
            &target(&format!("http://{proxy}")),
            &options(Profile::Contract),
        )
        .await;
        let failed: Vec<_> = report.failures().map(|o| o.name).collect();
        assert!(
            failed.contains(name),
            "{name} not caught: {}",
            report.text()
        );
        // And under the profile of a Bifrost generation known to behave so, not a failure.
        if *name == "notfound.delete_missing" {
            let report =
                conformance::run(&target(&format!("http://{proxy}")), &options(Profile::G2)).await;
            assert!(
                report
                    .outcomes
                    .iter()
                    .any(|o| o.name == *name && matches!(o.verdict, Verdict::KnownDeviation(_))),
                "{}",
                report.text()
            );
        }
    }
}

/// `--only` or `--skip` naming no check or group, or selecting none, is a usage error (exit 2)
/// before anything is sent, never a green run of zero checks.
#[test]
fn a_selection_of_no_check_is_refused() {
    let bin = env!("CARGO_BIN_EXE_bifrost-providers");
    for args in [
        &["--only", "keys,no_such_group"][..],
        &["--skip", "etag.no_such_check"][..],
        &["--only", "etag", "--skip", "etag"][..],
    ] {
        let out = std::process::Command::new(bin)
            .args(["conformance", "--url", "http://127.0.0.1:9"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("--only/--skip"), "{args:?}: {said}");
    }
    let listed = std::process::Command::new(bin)
        .args(["conformance", "--url", "http://127.0.0.1:9", "--list"])
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listed.stdout);
    assert!(names.contains("etag.every_write_changes_it"));
    assert!(names.contains("redaction.foreign_mask_refused"));
}
