//! Configuration as code against the real server on both stores: `dump` → edit → `diff` →
//! `apply` round trips with an edit made underneath, `--prune` only among the selected
//! providers, YAML, `validate`, and the exit statuses (0 no difference, 1 differences or a
//! refused write, 2 usage or connection). No literal secret ever reaches a file or an output.

mod common;

use std::process::{Command, Stdio};

use common::{Backend, TestServer};
use serde_json::{Value, json};

const LITERAL: &str = "sk-proj-literal-0123456789abcdefghijklmnop";
const PROXY_PASSWORD: &str = "proxy-password-literal-42";

/// Runs the binary with `args` against `url`: (exit status, stdout, stderr).
fn cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args(args)
        .env("BIFROST_URL", url)
        .env_remove("BIFROST_TOKEN")
        .env_remove("BIFROST_BASIC_AUTH")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    for secret in [LITERAL, PROXY_PASSWORD] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret in the output of {args:?}: {stdout}{stderr}"
        );
    }
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

async fn put(server: &TestServer, name: &str, body: Value) -> Value {
    let answer = common::http()
        .put(format!("{}/api/providers/{name}", server.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "PUT {name}");
    answer.json().await.unwrap()
}

async fn get(server: &TestServer, name: &str) -> (u16, Value) {
    let answer = common::http()
        .get(format!("{}/api/providers/{name}", server.url))
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap())
}

fn read(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write(path: &std::path::Path, doc: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
}

async fn dump_edit_diff_apply_round_trips(backend: Backend) {
    let mut server = TestServer::on(&backend);
    let url = server.url.clone();
    let url = url.as_str();
    put(
        &server,
        "openai",
        json!({
            "keys": [
                {"name": "primary", "value": LITERAL, "models": ["gpt-4o"], "weight": 1},
                {"name": "from-env", "value": "env.BFP_TEST_UNSET_OPENAI_KEY"}
            ],
            "proxy_config": {"type": "http", "url": "http://proxy.internal:3128", "password": PROXY_PASSWORD}
        }),
    )
    .await;
    put(
        &server,
        "anthropic",
        json!({"keys": [{"name": "a", "value": "env.BFP_TEST_UNSET_ANTHROPIC"}]}),
    )
    .await;
    put(&server, "groq", json!({})).await;

    let file = server.dir.path().join("providers.json");
    let (code, _, stderr) = cli(url, &["dump", "-o", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(LITERAL) && !text.contains(PROXY_PASSWORD),
        "{text}"
    );
    let mut doc = read(&file);
    assert_eq!(
        doc["providers"]["openai"]["keys"][1]["value"],
        "env.BFP_TEST_UNSET_OPENAI_KEY"
    );
    assert_eq!(
        doc["providers"]["openai"]["keys"][0]["value"],
        "sk-p************************mnop"
    );
    assert!(
        doc["bifrost_providers"]["etags"]["openai"].is_string(),
        "{doc}"
    );

    // Nothing changed: no difference, and applying it changes nothing.
    let (code, out, _) = cli(url, &["diff", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("0 to create, 0 to update, 0 to delete, 3 unchanged"),
        "{out}"
    );
    let (_, before) = get(&server, "openai").await;
    let (code, out, stderr) = cli(url, &["apply", "--yes", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{stderr}");
    let (_, after) = get(&server, "openai").await;
    assert_eq!(before, after, "a no-op apply leaves the provider as it was");

    // Edit: a weight, a new key by reference, a new provider; groq dropped from the file.
    doc["providers"]["openai"]["keys"][0]["weight"] = json!(0.25);
    doc["providers"]["openai"]["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "third", "value": "env.BFP_TEST_THIRD"}));
    doc["providers"]["mistral"] = json!({"keys": [{"name": "m", "value": "env.BFP_TEST_MISTRAL"}]});
    doc["providers"].as_object_mut().unwrap().remove("groq");
    write(&file, &doc);
    let (code, out, _) = cli(url, &["diff", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    for line in [
        "creating provider mistral",
        "updating provider openai",
        "keys[primary].weight: 1.0 -> 0.25",
        "keys[third].value: + \"env.BFP_TEST_THIRD\"",
        "keeping provider groq (not in the file; --prune deletes it)",
        "1 to create, 1 to update, 0 to delete, 1 unchanged, 1 kept",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    let (code, out, _) = cli(url, &["diff", "--output", "json", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["summary"]["create"], 1, "{plan}");

    // Without --yes and without a terminal: nothing is written.
    let (code, _, stderr) = cli(url, &["apply", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(get(&server, "mistral").await.0, 404);

    // An edit underneath, after the dump: anthropic changes on the server.
    doc["providers"]["anthropic"]["network_config"]["max_retries"] = json!(3);
    write(&file, &doc);
    let underneath = put(&server, "anthropic", json!({"keys": [{"name": "a", "value": "env.BFP_TEST_UNSET_ANTHROPIC"}], "network_config": {"max_retries": 7}})).await;
    let (code, out, stderr) = cli(url, &["apply", "--yes", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{stderr}");
    assert!(
        stderr.contains("anthropic: changed on the server since the plan (412)"),
        "{stderr}"
    );
    assert_eq!(
        get(&server, "anthropic").await.1,
        underneath,
        "the stale provider is left as it was"
    );
    // The others were applied, and the literal secret kept.
    assert_eq!(get(&server, "mistral").await.0, 200);
    let (_, openai) = get(&server, "openai").await;
    assert_eq!(openai["keys"][0]["weight"], 0.25);
    assert_eq!(
        openai["keys"][0]["value"]["value"],
        "sk-p************************mnop"
    );
    assert_eq!(openai["keys"][2]["name"], "third");
    assert_eq!(
        openai["keys"][0]["id"], before["keys"][0]["id"],
        "keys updated in place"
    );
    assert_eq!(
        get(&server, "groq").await.0,
        200,
        "not deleted without --prune"
    );

    // Dump again, apply the same edit: converged.
    let (code, _, _) = cli(url, &["dump", "-o", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    let mut doc = read(&file);
    doc["providers"]["anthropic"]["network_config"]["max_retries"] = json!(3);
    write(&file, &doc);
    let (code, _, stderr) = cli(url, &["apply", "--yes", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        get(&server, "anthropic").await.1["network_config"]["max_retries"],
        3
    );
    let (code, out, _) = cli(url, &["diff", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");

    // A secret given in clear cannot be compared with the stored one: always reported, never shown.
    doc["providers"]["openai"]["proxy_config"]["password"] = json!(PROXY_PASSWORD);
    write(&file, &doc);
    let (code, out, _) = cli(url, &["diff", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("proxy_config.password: secret changed"),
        "{out}"
    );

    // Every apply sent masks back: the stored literals are the ones first given.
    server.stop();
    let stored = String::from_utf8_lossy(&server.raw_store()).into_owned();
    assert!(stored.contains(LITERAL), "the key's literal is kept");
    assert!(
        stored.contains(PROXY_PASSWORD),
        "the proxy password is kept"
    );
}

async fn prune_deletes_only_among_the_selected(backend: Backend) {
    let server = TestServer::on(&backend);
    let url = server.url.as_str();
    for name in ["team-a-1", "team-a-2", "team-b-1"] {
        put(
            &server,
            name,
            json!({"custom_provider_config": {"base_provider_type": "openai"}}),
        )
        .await;
    }
    let file = server.dir.path().join("team-a.yaml");
    let (code, _, _) = cli(
        url,
        &[
            "dump",
            "--provider",
            "team-a-*",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("team-a-2") && !text.contains("team-b-1"),
        "{text}"
    );
    let mut doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(doc["bifrost_providers"]["select"], json!(["team-a-*"]));
    let (code, out, _) = cli(url, &["diff", "--prune", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");

    doc["providers"].as_object_mut().unwrap().remove("team-a-2");
    std::fs::write(&file, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    let (code, out, _) = cli(url, &["apply", "--yes", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        get(&server, "team-a-2").await.0,
        200,
        "nothing deleted without --prune"
    );
    let (code, out, stderr) = cli(url, &["apply", "--yes", "--prune", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{stderr}");
    assert!(out.contains("deleting provider team-a-2"), "{out}");
    assert_eq!(get(&server, "team-a-2").await.0, 404);
    assert_eq!(get(&server, "team-a-1").await.0, 200);
    assert_eq!(
        get(&server, "team-b-1").await.0,
        200,
        "outside the selection: kept"
    );
    // --provider narrows further than the file's selection.
    let (code, out, _) = cli(
        url,
        &[
            "diff",
            "--prune",
            "--provider",
            "team-b-*",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("deleting provider team-b-1") && !out.contains("team-a-1"),
        "{out}"
    );
}

on_every_store!(
    dump_edit_diff_apply_round_trips,
    prune_deletes_only_among_the_selected
);

#[test]
fn validate_applies_the_servers_rules_offline() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    write(
        &file,
        &json!({"providers": {
            "openai": {"keys": [{"name": "k", "value": "env.OPENAI_API_KEY"}]},
            "anthropic": {"concurrency_and_buffer_size": {"concurrency": 10, "buffer_size": 5}},
            "my-llm": {"keys": []}
        }}),
    );
    let (code, out, _) = cli("http://127.0.0.1:9", &["validate", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("providers.anthropic.concurrency_and_buffer_size"),
        "{out}"
    );
    assert!(
        out.contains("providers.my-llm"),
        "a custom name needs custom_provider_config: {out}"
    );
    assert!(out.contains("2 of 3 providers invalid"), "{out}");
    write(
        &file,
        &json!({"providers": {"openai": {"keys": [{"name": "k", "value": "sk-p************************mnop"}]}}}),
    );
    let (code, out, _) = cli("http://127.0.0.1:9", &["validate", file.to_str().unwrap()]);
    assert_eq!(code, 0, "a dump's masks are valid: {out}");
    let (code, _, _) = cli(
        "http://127.0.0.1:9",
        &["validate", "/nonexistent/file.json"],
    );
    assert_eq!(code, 2);
}

#[test]
fn usage_and_connection_errors_exit_2_never_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.json");
    write(&file, &json!({"providers": {}}));
    let f = file.to_str().unwrap();
    // Nothing listens on port 9 of loopback.
    for args in [
        vec!["diff", f],
        vec!["apply", "--yes", f],
        vec!["dump"],
        vec!["diff", "--prnue", f],
        vec!["diff", "/nonexistent.json"],
    ] {
        let (code, _, stderr) = cli("http://127.0.0.1:9", &args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bifrost_gateway_gets_its_keys_through_keys_and_never_a_mask() {
    let server = TestServer::start();
    let gateway = format!(
        "http://{}",
        common::proxy::faulty_proxy(server.url.clone(), &common::proxy::BIFROST_V15).await
    );
    let held = put(
        &server,
        "openai",
        json!({"keys": [
            {"name": "one", "value": "env.BFP_TEST_ONE"},
            {"name": "two", "value": "env.BFP_TEST_TWO"}
        ]}),
    )
    .await;
    let file = server.dir.path().join("gateway.json");
    let (code, _, stderr) = cli(&gateway, &["dump", "-o", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let mut doc = read(&file);
    assert_eq!(
        doc["providers"]["openai"]["keys"].as_array().unwrap().len(),
        2,
        "keys read from /keys: {doc}"
    );
    assert!(
        doc["bifrost_providers"]["etags"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    let (code, out, _) = cli(&gateway, &["diff", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");

    let keys = doc["providers"]["openai"]["keys"].as_array_mut().unwrap();
    keys[0]["weight"] = json!(0.5);
    keys.remove(1);
    keys.push(json!({"name": "three", "value": "env.BFP_TEST_THREE"}));
    write(&file, &doc);
    let (code, out, stderr) = cli(&gateway, &["apply", "--yes", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{stderr}");
    let (_, now) = get(&server, "openai").await;
    let names: Vec<&str> = now["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "three"], "{now}");
    assert_eq!(
        now["keys"][0]["id"], held["keys"][0]["id"],
        "updated in place"
    );
    assert_eq!(now["keys"][0]["weight"], 0.5);
    let (code, out, _) = cli(&gateway, &["diff", file.to_str().unwrap()]);
    assert_eq!(code, 0, "converged: {out}");

    // A mask sent to a gateway would become the credential: refused, nothing written.
    put(
        &server,
        "groq",
        json!({"keys": [{"name": "g", "value": LITERAL}]}),
    )
    .await;
    let (code, _, _) = cli(&gateway, &["dump", "-o", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    let mut doc = read(&file);
    doc["providers"]["groq"]["keys"][0]["weight"] = json!(0.5);
    write(&file, &doc);
    let before = get(&server, "groq").await.1;
    let (code, _, stderr) = cli(&gateway, &["apply", "--yes", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("providers.groq.keys[0].value: a redacted value"),
        "{stderr}"
    );
    assert_eq!(get(&server, "groq").await.1, before);
}

#[test]
fn an_interrupted_command_exits_130() {
    // A server that accepts and never answers: the command waits until it is interrupted.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.json");
    write(&file, &json!({"providers": {}}));
    let mut child = Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args(["diff", file.to_str().unwrap()])
        .env("BIFROST_URL", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _held = silent.accept().unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().unwrap().code(), Some(130));
}
