//! The conformance checks judge this server on every store (one suite, two uses: the same
//! checks `bifrost-providers conformance` runs against any server), catch planted faults by
//! name, and leave other providers byte-identical.

mod common;

use std::sync::Arc;

use bifrost_providers::Client;
use bifrost_providers_conformance::{self as conformance, Options, Profile, Target, Verdict};
use common::proxy::{Fault, faulty_proxy, same};
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
    // Every check's precondition is met, but the token's: this server runs without one.
    assert!(
        report.outcomes.iter().all(|o| match o.name {
            "auth.token_required" =>
                matches!(&o.verdict, Verdict::Skipped(why) if why.contains("--token")),
            _ => o.verdict == Verdict::Pass,
        }),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_faults_are_caught_by_name() {
    let server = Arc::new(TestServer::start());
    static FAULTS: [(&str, Fault); 16] = [
        // A server whose ETag never changes.
        (
            "etag.every_write_changes_it",
            Fault {
                reply: same,
                request: |request| {
                    request.headers.remove("if-match");
                },
                body: same,
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
                reply: same,
                request: |request| {
                    request.headers.remove("if-match");
                },
                body: same,
                response: |_, _| {},
            },
        ),
        // A server that answers 200 to a DELETE of a missing provider.
        (
            "notfound.delete_missing",
            Fault {
                reply: same,
                request: |_| {},
                body: same,
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
                reply: same,
                request: |request| {
                    request.headers.remove("if-none-match");
                },
                body: same,
                response: |_, response| {
                    response.headers.remove("etag");
                },
            },
        ),
        // A server that shows a provider whose reference does not resolve as active.
        (
            "secrets.unresolved_reference_status",
            Fault {
                reply: |body| {
                    body.replace("\"status\":\"error\"", "\"status\":\"active\"")
                        .replace(
                            "\"provider_status\":\"error\"",
                            "\"provider_status\":\"active\"",
                        )
                },
                request: |_| {},
                body: same,
                response: |_, _| {},
            },
        ),
        // A server that reads a {value, env_var, from_env} secret by its value alone.
        (
            "secrets.env_var_object",
            Fault {
                reply: same,
                request: |_| {},
                body: |body| {
                    body.replace(
                        "\"env_var\":\"env.BFC_CONFORMANCE_UNSET_OBJECT\"",
                        "\"env_var\":\"\"",
                    )
                    .replace("\"from_env\":true", "\"from_env\":false")
                },
                response: |_, _| {},
            },
        ),
        // A server that stores a key value sent as [REDACTED] as the credential.
        (
            "redaction.mismatched_mask_refused",
            Fault {
                reply: same,
                request: |_| {},
                body: |body| body.replace("\"[REDACTED]\"", "\"stored-as-sent-mask\""),
                response: |_, _| {},
            },
        ),
        // A server that ignores If-Match on a DELETE.
        (
            "etag.if_match_delete",
            Fault {
                reply: same,
                request: |request| {
                    if request.method == http::Method::DELETE {
                        request.headers.remove("if-match");
                    }
                },
                body: same,
                response: |_, _| {},
            },
        ),
        // A server whose DELETE answers carry no ETag.
        (
            "etag.on_every_response",
            Fault {
                reply: same,
                request: |_| {},
                body: same,
                response: |request, response| {
                    if request.method == http::Method::DELETE {
                        response.headers.remove("etag");
                    }
                },
            },
        ),
        // A server that refuses no secret form: a number or an array is stored as its text.
        (
            "secrets.unknown_form_refused",
            Fault {
                reply: same,
                request: |_| {},
                body: |body| {
                    body.replace("\"value\":42", "\"value\":\"42\"").replace(
                        "[\"sk-in-an-array-0123456789\"]",
                        "\"[sk-in-an-array-0123456789]\"",
                    )
                },
                response: |_, _| {},
            },
        ),
        // A server whose key responses carry one ETag that never changes.
        (
            "etag.key_after_each_write",
            Fault {
                reply: same,
                request: |request| {
                    if request.uri.path().contains("/keys") {
                        request.headers.remove("if-match");
                    }
                },
                body: same,
                response: |request, response| {
                    if request.uri.path().contains("/keys") && response.headers.contains_key("etag")
                    {
                        response
                            .headers
                            .insert("etag", http::HeaderValue::from_static("\"key-fixed\""));
                    }
                },
            },
        ),
        // A server that resolves a reference in an azure key field and stores its value.
        (
            "secrets.key_references_unresolved",
            Fault {
                reply: same,
                request: |_| {},
                body: |body| {
                    body.replace(
                        "\"env.BFC_CONFORMANCE_UNSET_AZURE_KEY_CONFIG_TENANT_ID\"",
                        "\"resolved-tenant-0123456789\"",
                    )
                },
                response: |_, _| {},
            },
        ),
        // A server that resolves a reference in the proxy password and stores its value.
        (
            "secrets.proxy_references_unresolved",
            Fault {
                reply: same,
                request: |_| {},
                body: |body| {
                    body.replace(
                        "\"env.BFC_CONFORMANCE_UNSET_PROXY_CONFIG_PASSWORD\"",
                        "\"resolved-proxy-password-0123\"",
                    )
                },
                response: |_, _| {},
            },
        ),
        // A server that takes a vault reference for a literal secret.
        (
            "secrets.vault_reference",
            Fault {
                reply: same,
                request: |_| {},
                body: |body| {
                    body.replace(
                        "\"vault.bfc-conformance/unset-secret\"",
                        "\"literal-that-was-a-vault-reference\"",
                    )
                },
                response: |_, _| {},
            },
        ),
        // A server that keeps an env_var without its env. prefix, as Bifrost v1.4 and v1.5 do.
        (
            "secrets.env_var_without_prefix",
            Fault {
                reply: |body| {
                    body.replace(
                        "\"env.BFC_CONFORMANCE_UNPREFIXED\"",
                        "\"BFC_CONFORMANCE_UNPREFIXED\"",
                    )
                },
                request: |_| {},
                body: same,
                response: |_, _| {},
            },
        ),
        // A server that stores a proxy secret sent back as <REDACTED> as the credential.
        (
            "redaction.proxy_secrets_kept",
            Fault {
                reply: same,
                request: |_| {},
                body: |body| body.replace("\"<REDACTED>\"", "\"stored-as-sent-mask\""),
                response: |_, _| {},
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

/// The admin token, on a server that has one.
const TOKEN: &str = "conformance-admin-token-0123456789";

/// The runner given the token judges the token's check on a server that has one (and passes
/// it), and a server that lets requests without it through fails it by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_is_judged() {
    let server = TestServer::start_with(&[("BIFROST_ADMIN_TOKEN", TOKEN)], &[]);
    let guarded = |url: &str| {
        Target::with_token(
            Client::builder(url)
                .retries(0)
                .admin_token(TOKEN)
                .build()
                .unwrap(),
            Client::builder(url).retries(0).build().unwrap(),
        )
    };
    let only_auth = Options {
        only: vec!["auth".into()],
        ..options(Profile::Contract)
    };
    let report = conformance::run(&guarded(&server.url), &only_auth).await;
    assert!(
        report.outcomes.len() == 1 && report.outcomes[0].verdict == Verdict::Pass,
        "{}",
        report.text()
    );
    // A server that does not check the token: every request reaches it with the right one.
    static OPEN: Fault = Fault {
        reply: same,
        request: |request| {
            request.headers.insert(
                "authorization",
                http::HeaderValue::from_static("Bearer conformance-admin-token-0123456789"),
            );
        },
        body: same,
        response: |_, _| {},
    };
    let proxy = faulty_proxy(server.url.clone(), &OPEN).await;
    let report = conformance::run(&guarded(&format!("http://{proxy}")), &only_auth).await;
    let failed: Vec<_> = report.failures().map(|o| o.name).collect();
    assert_eq!(failed, ["auth.token_required"], "{}", report.text());
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
