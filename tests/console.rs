//! The web console under `/ui`, through the real binary, as a browser without script uses it:
//! every page (snapshots), the headers every answer carries, login and sessions (a revoked or
//! rotated token ends them), the refusal of a post from another origin or without the form
//! token, the leak check over every page, the conflict view, errors at their field, history,
//! rollback, delete and restore, and the no-op round trip: each form posted back as it was
//! drawn leaves its provider exactly as it was (same body, same `ETag`, no new revision).

mod common;

use std::time::{Duration, Instant};

use bifrost_providers::domain::tokens::digest_hex;
use common::{Backend, TestServer};
use serde_json::{Value, json};

const ADMIN: &str = "bfp_console-admin-0123456789";
const READER: &str = "bfp_console-reader-012345678";

/// A browser without script: cookies of `/ui`, no redirects followed, `Origin` on every post.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

/// One answer.
struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The fields form `action` would send as drawn: inputs, the selected option of each
    /// select, each textarea's text.
    fn form(&self, action: &str) -> Vec<(String, String)> {
        let html = scraper::Html::parse_document(&self.body);
        let selector = scraper::Selector::parse(&format!("form[action=\"{action}\"]")).unwrap();
        let form = html
            .select(&selector)
            .next()
            .unwrap_or_else(|| panic!("no form posts to {action}:\n{}", self.body));
        let controls = scraper::Selector::parse("input, select, textarea").unwrap();
        let selected = scraper::Selector::parse("option[selected]").unwrap();
        let mut fields = Vec::new();
        for control in form.select(&controls) {
            let element = control.value();
            let Some(name) = element.attr("name") else {
                continue;
            };
            let value = match element.name() {
                "select" => control
                    .select(&selected)
                    .next()
                    .and_then(|o| o.value().attr("value"))
                    .unwrap_or_default()
                    .to_string(),
                "textarea" => control.text().collect(),
                _ => element.attr("value").unwrap_or_default().to_string(),
            };
            fields.push((name.to_string(), value));
        }
        fields
    }

    fn has(&self, text: &str) -> bool {
        self.body.contains(text)
    }
}

impl Browser {
    fn new(server: &TestServer) -> Self {
        bifrost_providers_client::connect::install_tls_provider();
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.url.clone(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", format!("bifrost_console={cookie}")),
            None => request,
        };
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let value = set
                .strip_prefix("bifrost_console=")
                .and_then(|rest| rest.split(';').next())
                .unwrap_or_default();
            self.cookie = (!value.is_empty()).then(|| value.to_string());
        }
        Page {
            status,
            headers,
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// A post as a page of this console makes it.
    async fn post(&mut self, path: &str, fields: &[(String, String)]) -> Page {
        let origin = self.base.clone();
        self.post_from(path, fields, Some(&origin)).await
    }

    async fn post_from(
        &mut self,
        path: &str,
        fields: &[(String, String)],
        origin: Option<&str>,
    ) -> Page {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        self.send(request).await
    }

    /// Opens `path`, then posts its form `action` as drawn with `changes` applied.
    async fn submit(&mut self, path: &str, action: &str, changes: &[(&str, &str)]) -> Page {
        let page = self.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let mut fields = page.form(action);
        for (name, value) in changes {
            match fields.iter_mut().find(|(n, _)| n == name) {
                Some(field) => field.1 = value.to_string(),
                None => fields.push((name.to_string(), value.to_string())),
            }
        }
        self.post(action, &fields).await
    }

    async fn login(&mut self, token: &str) -> Page {
        let fields = vec![("token".to_string(), token.to_string())];
        self.post("/ui/login", &fields).await
    }
}

fn entry(name: &str, token: &str, rest: &str) -> String {
    format!(
        "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\n{rest}\n\n",
        digest_hex(token)
    )
}

fn tokens_file(admin: &str) -> String {
    [
        entry("ops", admin, "scopes = [\"admin\"]"),
        entry(
            "viewer",
            READER,
            "scopes = [\"read\"]\nproviders = [\"open*\"]",
        ),
    ]
    .concat()
}

/// A server on `backend` with [`tokens_file`]; the file's folder lives as long as the server.
fn guarded(backend: &Backend) -> (TestServer, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    std::fs::write(&path, tokens_file(ADMIN)).unwrap();
    let server = TestServer::on_with(backend, &[], &["--tokens", path.to_str().unwrap()]);
    (server, path, dir)
}

/// A JSON request to the API, with the admin token when `auth`.
async fn api(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
    auth: bool,
) -> (u16, Value, String) {
    let http = common::http();
    let mut request = http.request(method.parse().unwrap(), format!("{}{path}", server.url));
    if auth {
        request = request.bearer_auth(ADMIN);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        etag,
    )
}

/// What must not change when a form is posted back as drawn: the body, the `ETag`, and the
/// number of revisions.
async fn fingerprint(server: &TestServer, name: &str, auth: bool) -> (Value, String, Value) {
    let (status, body, etag) =
        api(server, "GET", &format!("/api/providers/{name}"), None, auth).await;
    assert_eq!(status, 200, "{body}");
    let (_, history, _) = api(
        server,
        "GET",
        &format!("/api/providers/{name}/history"),
        None,
        auth,
    )
    .await;
    (body, etag, history["total"].clone())
}

/// Providers of every kind of block: proxy, headers, CA, custom provider, and each kind of
/// key configuration; secrets given through the API (so the harness's leak check knows them).
async fn seed(server: &TestServer, auth: bool) {
    let providers = [
        json!({"provider": "openai",
            "network_config": {"base_url": "https://user:pw-console-0001@api.openai.example/v1",
                "extra_headers": {"Authorization": "Bearer hdr-console-secret-0002", "X-Team": "ml"},
                "max_retries": 2, "retry_backoff_initial": "1s"},
            "proxy_config": {"type": "http", "url": "http://proxy.example:3128", "username": "u", "password": "proxy-console-secret-0003"},
            "concurrency_and_buffer_size": {"concurrency": 10, "buffer_size": 100},
            "send_back_raw_response": true,
            "keys": [{"id": "k-main", "name": "main", "value": "sk-console-secret-0004", "models": ["gpt-4o"], "weight": 1.0},
                     {"id": "k-env", "name": "from-env", "value": "env.CONSOLE_TEST_KEY", "models": [], "weight": 0.5, "enabled": false}]}),
        json!({"provider": "azure",
            "keys": [{"id": "az1", "name": "az", "value": "az-console-secret-0005", "models": ["gpt-4o"], "weight": 1.0,
                "azure_key_config": {"endpoint": "https://az.example.com", "api_version": "2024-10-21",
                    "deployments": {"gpt-4o": "prod-4o"}, "client_secret": "azcs-console-secret-0006"}}]}),
        json!({"provider": "bedrock",
            "keys": [{"id": "br1", "name": "br", "value": "", "models": [], "weight": 1.0,
                "bedrock_key_config": {"access_key": "AKIACONSOLESECRET0007", "secret_key": "brsk-console-secret-0008", "region": "us-east-1",
                    "deployments": {"claude": "arn:aws:bedrock:claude"}}}]}),
        json!({"provider": "vertex",
            "keys": [{"id": "vx1", "name": "vx", "value": "", "models": [], "weight": 1.0,
                "vertex_key_config": {"project_id": "proj-1", "region": "us-central1", "auth_credentials": "vxcred-console-secret-0009"}}]}),
        json!({"provider": "vllm",
            "keys": [{"id": "vl1", "name": "vl", "value": "", "models": [], "weight": 1.0,
                "vllm_key_config": {"url": "http://vllm.local:8000", "model_name": "llama"}}]}),
        json!({"provider": "openrouter-eu",
            "custom_provider_config": {"base_provider_type": "openai", "allowed_requests": {"chat_completion": true, "chat_completion_stream": true},
                "request_path_overrides": {"chat_completion": "/v2/chat"}},
            "network_config": {"base_url": "https://eu.openrouter.example"},
            "keys": [{"id": "or1", "name": "or", "value": "or-console-secret-0010", "models": ["*"], "weight": 1.0}]}),
    ];
    for provider in providers {
        let name = provider["provider"].as_str().unwrap().to_string();
        let (status, body, _) = api(server, "POST", "/api/providers", Some(provider), auth).await;
        assert_eq!(status, 200, "{name}: {body}");
    }
}

fn keys_of(body: &Value) -> Vec<String> {
    body["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["id"].as_str().map(String::from))
        .collect()
}

fn link(name: &str, suffix: &str) -> String {
    format!("/ui/providers/{name}{suffix}")
}

async fn every_form_posted_back_as_drawn_changes_nothing(backend: Backend) {
    let server = TestServer::on_with(
        &backend,
        &[("CONSOLE_TEST_KEY", "sk-env-console-secret-0011")],
        &[],
    );
    seed(&server, false).await;
    let mut browser = Browser::new(&server);
    for name in [
        "openai",
        "azure",
        "bedrock",
        "vertex",
        "vllm",
        "openrouter-eu",
    ] {
        let before = fingerprint(&server, name, false).await;
        let page = browser
            .submit(&link(name, "/edit"), &link(name, "/edit"), &[])
            .await;
        assert_eq!(page.status, 303, "{name}: {}", page.body);
        assert_eq!(
            fingerprint(&server, name, false).await,
            before,
            "{name}: the settings form changed it"
        );
        for id in keys_of(&before.0) {
            let key = link(name, &format!("/keys/{id}"));
            let page = browser.submit(&key, &key, &[]).await;
            assert_eq!(page.status, 303, "{name}/{id}: {}", page.body);
            assert_eq!(
                fingerprint(&server, name, false).await,
                before,
                "{name}/{id}: the key form changed it"
            );
        }
    }
}

async fn a_change_made_in_a_form_is_stored_as_the_api_would_store_it(backend: Backend) {
    let server = TestServer::on(&backend);
    seed(&server, false).await;
    let mut browser = Browser::new(&server);
    let page = browser
        .submit(
            &link("openai", "/edit"),
            &link("openai", "/edit"),
            &[
                ("network_config.max_retries", "5"),
                (
                    "network_config.extra_headers",
                    "Authorization=Bearer hdr-console-secret-0002\nX-Team=search",
                ),
                ("proxy_config.password", ""),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let (_, body, _) = api(&server, "GET", "/api/providers/openai", None, false).await;
    assert_eq!(body["network_config"]["max_retries"], 5);
    assert_eq!(body["network_config"]["extra_headers"]["X-Team"], "search");
    let before = body["proxy_config"]["password"].clone();
    assert!(
        !before.is_null(),
        "an empty secret input keeps the secret: {body}"
    );
    // A new key, toggled, rotated, deleted.
    let page = browser
        .submit(
            &link("openai", "/new-key"),
            &link("openai", "/new-key"),
            &[
                ("id", "k-new"),
                ("name", "new"),
                ("value", "sk-console-typed-0012"),
                ("models", "gpt-4o\ngpt-4o-mini"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let shown = browser.get(&link("openai", "")).await;
    assert!(
        !shown.has("sk-console-typed-0012"),
        "the page shows a typed secret"
    );
    let (_, keys, _) = api(
        &server,
        "GET",
        "/api/providers/openai/keys/k-new",
        None,
        false,
    )
    .await;
    assert_eq!(keys["models"], json!(["gpt-4o", "gpt-4o-mini"]));
    let toggle = link("openai", "/keys/k-new/toggle");
    let fields = shown.form(&toggle);
    assert_eq!(browser.post(&toggle, &fields).await.status, 303);
    let (_, key, _) = api(
        &server,
        "GET",
        "/api/providers/openai/keys/k-new",
        None,
        false,
    )
    .await;
    assert_eq!(key["enabled"], false, "{key}");
    let rotate = link("openai", "/keys/k-new/rotate");
    let page = browser
        .submit(&rotate, &rotate, &[("value", "sk-console-rotated-0013")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let (_, key, _) = api(
        &server,
        "GET",
        "/api/providers/openai/keys/k-new",
        None,
        false,
    )
    .await;
    assert!(
        key["value"]["value"].as_str().unwrap().ends_with("0013"),
        "{key}"
    );
    assert_eq!(key["enabled"], false, "rotation keeps the rest of the key");
    let delete = link("openai", "/keys/k-new/delete");
    assert_eq!(browser.submit(&delete, &delete, &[]).await.status, 303);
    let (status, _, _) = api(
        &server,
        "GET",
        "/api/providers/openai/keys/k-new",
        None,
        false,
    )
    .await;
    assert_eq!(status, 404);
}

async fn an_error_is_shown_at_its_field_in_the_apis_words(backend: Backend) {
    let server = TestServer::on(&backend);
    seed(&server, false).await;
    let before = fingerprint(&server, "openai", false).await;
    let (_, refused, _) = api(
        &server,
        "PUT",
        "/api/providers/openai",
        Some(json!({"concurrency_and_buffer_size": {"concurrency": 0, "buffer_size": 100}})),
        false,
    )
    .await;
    let message = refused["error"]["message"].as_str().unwrap().to_string();
    let mut browser = Browser::new(&server);
    let page = browser
        .submit(
            &link("openai", "/edit"),
            &link("openai", "/edit"),
            &[("concurrency_and_buffer_size.concurrency", "0")],
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    let html = scraper::Html::parse_document(&page.body);
    let at_field =
        scraper::Selector::parse("[id=\"f-concurrency_and_buffer_size.concurrency-error\"]")
            .unwrap();
    let shown: String = html
        .select(&at_field)
        .next()
        .expect("the error at its field")
        .text()
        .collect();
    assert_eq!(shown, message);
    assert!(page.has("value=\"0\""), "the form keeps what was typed");
    let page = browser
        .submit(
            &link("openai", "/edit"),
            &link("openai", "/edit"),
            &[("network_config.max_retries", "many")],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(
        page.has("network_config.max_retries: must be a whole number"),
        "{}",
        page.body
    );
    assert_eq!(
        fingerprint(&server, "openai", false).await,
        before,
        "a refused form changed the provider"
    );
}

async fn a_stale_edit_shows_the_conflict_and_can_save_over_it(backend: Backend) {
    let server = TestServer::on(&backend);
    seed(&server, false).await;
    let (mut first, mut second) = (Browser::new(&server), Browser::new(&server));
    let edit = link("openai", "/edit");
    let drawn = second.get(&edit).await;
    let page = first
        .submit(&edit, &edit, &[("network_config.max_retries", "7")])
        .await;
    assert_eq!(page.status, 303);
    let mut fields = drawn.form(&edit);
    for field in &mut fields {
        if field.0 == "network_config.max_retries" {
            field.1 = "9".into();
        }
    }
    let conflict = second.post(&edit, &fields).await;
    assert_eq!(conflict.status, 412, "{}", conflict.body);
    assert!(conflict.has("Someone else changed this since you opened it"));
    let html = scraper::Html::parse_document(&conflict.body);
    let row = scraper::Selector::parse("#conflict tbody tr").unwrap();
    let rows: Vec<Vec<String>> = html
        .select(&row)
        .map(|r| {
            r.children()
                .filter_map(scraper::ElementRef::wrap)
                .map(|c| c.text().collect())
                .collect()
        })
        .collect();
    assert!(
        rows.contains(&vec![
            "network_config.max_retries".to_string(),
            "2".into(),
            "7".into(),
            "9".into()
        ]),
        "{rows:?}"
    );
    let (_, body, _) = api(&server, "GET", "/api/providers/openai", None, false).await;
    assert_eq!(
        body["network_config"]["max_retries"], 7,
        "nothing saved on a conflict"
    );
    let over = conflict.form(&edit);
    assert!(
        over.contains(&("network_config.max_retries".into(), "9".into())),
        "the form keeps the unsaved value"
    );
    assert_eq!(second.post(&edit, &over).await.status, 303);
    let (_, body, _) = api(&server, "GET", "/api/providers/openai", None, false).await;
    assert_eq!(body["network_config"]["max_retries"], 9);
}

async fn history_diff_rollback_delete_and_restore(backend: Backend) {
    let server = TestServer::on(&backend);
    seed(&server, false).await;
    let mut browser = Browser::new(&server);
    let edit = link("vllm", "/edit");
    assert_eq!(
        browser
            .submit(&edit, &edit, &[("network_config.max_retries", "4")])
            .await
            .status,
        303
    );
    let history = browser.get(&link("vllm", "/history")).await;
    assert_eq!(history.status, 200);
    assert!(
        history.has("network_config.max_retries"),
        "the changed field is listed"
    );
    let (_, revisions, _) = api(&server, "GET", "/api/providers/vllm/history", None, false).await;
    let (newest, first) = (
        revisions["revisions"][0]["revision"].clone(),
        revisions["revisions"][1]["revision"].clone(),
    );
    let diff = browser
        .get(&link("vllm", &format!("/diff?from={first}&to={newest}")))
        .await;
    let html = scraper::Html::parse_document(&diff.body);
    let row = scraper::Selector::parse("table.diff tbody tr").unwrap();
    let rows: Vec<String> = html
        .select(&row)
        .map(|r| r.text().collect::<Vec<_>>().join("|"))
        .collect();
    assert_eq!(
        rows,
        vec!["network_config.max_retries|0|4".to_string()],
        "{}",
        diff.body
    );
    // Roll back to revision 1.
    let rollback = link("vllm", "/rollback");
    let fields: Vec<(String, String)> = history
        .form(&rollback)
        .into_iter()
        .map(|(n, v)| {
            if n == "revision" {
                (n, first.to_string())
            } else {
                (n, v)
            }
        })
        .collect();
    assert_eq!(browser.post(&rollback, &fields).await.status, 303);
    let (_, body, _) = api(&server, "GET", "/api/providers/vllm", None, false).await;
    assert_eq!(body["network_config"]["max_retries"], 0);
    // Delete, then restore.
    let delete = link("vllm", "/delete");
    assert_eq!(browser.submit(&delete, &delete, &[]).await.status, 303);
    assert_eq!(
        api(&server, "GET", "/api/providers/vllm", None, false)
            .await
            .0,
        404
    );
    let deleted = browser.get("/ui/deleted").await;
    assert!(deleted.has("Restore vllm"), "{}", deleted.body);
    let fields = deleted.form("/ui/deleted/vllm");
    assert_eq!(browser.post("/ui/deleted/vllm", &fields).await.status, 303);
    let (_, body, _) = api(&server, "GET", "/api/providers/vllm", None, false).await;
    assert_eq!(body["keys"][0]["vllm_key_config"]["model_name"], "llama");
    // Restoring again (no longer deleted) is refused and changes nothing.
    let again = browser.post("/ui/deleted/vllm", &fields).await;
    assert_eq!(again.status, 412, "{}", again.body);
}

async fn sessions_logins_and_forged_posts(backend: Backend) {
    let (server, tokens, _dir) = guarded(&backend);
    seed(&server, true).await;
    let mut browser = Browser::new(&server);
    let page = browser.get("/ui").await;
    assert_eq!((page.status, page.location()), (303, "/ui/login"));
    let login = browser.get("/ui/login").await;
    assert!(login.has("type=\"password\""));
    let refused = browser.login("bfp_not-a-token-00000000000").await;
    assert_eq!(refused.status, 401);
    assert!(browser.cookie.is_none(), "a refused login opens no session");
    let cross = browser
        .post_from(
            "/ui/login",
            &[("token".into(), ADMIN.into())],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(cross.status, 403, "a login from another origin");
    let opened = browser.login(ADMIN).await;
    assert_eq!((opened.status, opened.location()), (303, "/ui"));
    let cookie = opened
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure");
    assert!(browser.get("/ui").await.has("Signed in as"));
    // The API stays bearer-only: the session cookie opens nothing there.
    let api_with_cookie = common::http()
        .get(format!("{}/api/providers", server.url))
        .header(
            "cookie",
            format!("bifrost_console={}", browser.cookie.clone().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(api_with_cookie.status().as_u16(), 401);
    // Forged posts change nothing.
    let before = fingerprint(&server, "openai", true).await;
    let edit = link("openai", "/edit");
    let drawn = browser.get(&edit).await;
    let fields: Vec<(String, String)> = drawn
        .form(&edit)
        .into_iter()
        .map(|(n, v)| {
            if n == "network_config.max_retries" {
                (n, "8".into())
            } else {
                (n, v)
            }
        })
        .collect();
    let without_token: Vec<_> = fields
        .iter()
        .filter(|(n, _)| n != "_csrf")
        .cloned()
        .collect();
    assert_eq!(browser.post(&edit, &without_token).await.status, 403);
    let wrong_token: Vec<_> = fields
        .iter()
        .map(|(n, v)| {
            if n == "_csrf" {
                (n.clone(), "x".repeat(43))
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect();
    assert_eq!(browser.post(&edit, &wrong_token).await.status, 403);
    assert_eq!(
        browser
            .post_from(&edit, &fields, Some("http://evil.example"))
            .await
            .status,
        403
    );
    assert_eq!(
        browser.post_from(&edit, &fields, Some("null")).await.status,
        403
    );
    assert_eq!(
        browser.post_from(&edit, &fields, None).await.status,
        403,
        "no Origin, no Sec-Fetch-Site"
    );
    let mut stranger = Browser::new(&server);
    assert_eq!(
        stranger.post(&edit, &fields).await.status,
        401,
        "a post without a session"
    );
    assert_eq!(
        fingerprint(&server, "openai", true).await,
        before,
        "a refused post changed the provider"
    );
    // Rotating the token ends the session at its next request.
    let rotated = "bfp_console-admin-rotated-012";
    std::fs::write(&tokens, tokens_file(rotated)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = browser.get("/ui").await;
        if page.status == 303 {
            assert_eq!(page.location(), "/ui/login");
            break;
        }
        assert!(Instant::now() < deadline, "the session outlived its token");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        browser.post(&edit, &fields).await.status,
        401,
        "an ended session posts nothing"
    );
    // Logging out ends a session.
    assert_eq!(browser.login(rotated).await.status, 303);
    let page = browser.get("/ui").await;
    let logout = page.form("/ui/logout");
    let out = browser.post("/ui/logout", &logout).await;
    assert_eq!((out.status, out.location()), (303, "/ui/login"));
    assert!(browser.cookie.is_none(), "logout clears the cookie");
}

async fn a_read_token_gets_a_read_only_console_within_its_patterns(backend: Backend) {
    let (server, _tokens, _dir) = guarded(&backend);
    seed(&server, true).await;
    let mut browser = Browser::new(&server);
    assert_eq!(browser.login(READER).await.status, 303);
    let list = browser.get("/ui").await;
    assert!(list.has("Read-only"), "{}", list.body);
    assert!(list.has(">openai<") && list.has(">openrouter-eu<"));
    assert!(
        !list.has(">azure<"),
        "a provider outside the token's patterns is listed"
    );
    assert!(!list.has("href=\"/ui/new\""));
    let page = browser.get(&link("openai", "")).await;
    assert!(
        !page.has("Edit settings") && !page.has("/toggle"),
        "{}",
        page.body
    );
    assert_eq!(browser.get(&link("azure", "")).await.status, 404);
    assert_eq!(browser.get(&link("openai", "/edit")).await.status, 403);
    let mut admin = Browser::new(&server);
    assert_eq!(admin.login(ADMIN).await.status, 303);
    let fields = admin
        .get(&link("openai", "/edit"))
        .await
        .form(&link("openai", "/edit"));
    let mut own: Vec<_> = fields.into_iter().filter(|(n, _)| n != "_csrf").collect();
    let token = list
        .form("/ui/logout")
        .into_iter()
        .find(|(n, _)| n == "_csrf")
        .unwrap();
    own.push(token);
    let before = fingerprint(&server, "openai", true).await;
    assert_eq!(
        browser.post(&link("openai", "/edit"), &own).await.status,
        403
    );
    assert_eq!(fingerprint(&server, "openai", true).await, before);
    assert_eq!(
        browser.get("/ui/sync").await.status,
        403,
        "the sync status needs more than read within patterns"
    );
}

/// The console's pages, as a browser reaches them.
fn pages() -> Vec<String> {
    [
        "/ui",
        "/ui/new",
        "/ui/deleted",
        "/ui/sync",
        "/ui/providers/openai",
        "/ui/providers/openai/edit",
        "/ui/providers/openai/new-key",
        "/ui/providers/openai/keys/k-main",
        "/ui/providers/openai/keys/k-main/rotate",
        "/ui/providers/openai/keys/k-main/delete",
        "/ui/providers/openai/delete",
        "/ui/providers/openai/history",
        "/ui/providers/openai/diff?from=1&to=7",
        "/ui/providers/azure",
        "/ui/providers/azure/keys/az1",
        "/ui/providers/bedrock/keys/br1",
        "/ui/providers/vertex/keys/vx1",
        "/ui/providers/vllm/keys/vl1",
        "/ui/providers/openrouter-eu",
        "/ui/providers/openrouter-eu/edit",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect()
}

/// Every page: the headers, and no secret (typed or stored, nor what a reference resolves to).
async fn no_page_shows_a_secret_and_every_answer_has_the_headers(backend: Backend) {
    let env_secret = "sk-env-console-secret-0011";
    let server = TestServer::on_with(&backend, &[("CONSOLE_TEST_KEY", env_secret)], &[]);
    seed(&server, false).await;
    let mut browser = Browser::new(&server);
    let edit = link("openai", "/edit");
    assert_eq!(
        browser
            .submit(
                &edit,
                &edit,
                &[("proxy_config.password", "proxy-typed-console-0014")]
            )
            .await
            .status,
        303
    );
    let secrets = [
        "pw-console-0001",
        "hdr-console-secret-0002",
        "proxy-console-secret-0003",
        "sk-console-secret-0004",
        "az-console-secret-0005",
        "azcs-console-secret-0006",
        "AKIACONSOLESECRET0007",
        "brsk-console-secret-0008",
        "vxcred-console-secret-0009",
        "or-console-secret-0010",
        env_secret,
        "proxy-typed-console-0014",
    ];
    let mut all = pages();
    all.push("/ui/assets/console.css".into());
    all.push("/ui/assets/console.js".into());
    all.push("/ui/providers/nope".into());
    for path in all {
        let page = browser.get(&path).await;
        let expected = if path.ends_with("/nope") { 404 } else { 200 };
        assert_eq!(page.status, expected, "{path}: {}", page.body);
        for secret in secrets {
            // Redacted forms keep the last four characters; no longer run of a secret shows.
            let telling = &secret[..secret.len() - 4];
            assert!(!page.body.contains(telling), "{path} shows {secret}");
        }
        let header = |name: &str| {
            page.headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let csp = header("content-security-policy").unwrap_or_default();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: CSP {csp:?}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        if !path.starts_with("/ui/assets/") {
            assert_eq!(
                header("cache-control").as_deref(),
                Some("no-store"),
                "{path}"
            );
            assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
            assert!(
                header("content-type").unwrap().starts_with("text/html"),
                "{path}"
            );
            assert!(
                page.has("requires no token"),
                "{path}: the open server's banner"
            );
            assert!(
                !page.has("<script>") && !page.has(" style=\""),
                "{path}: inline script or style"
            );
        }
    }
    // A reference is shown as itself, with whether it resolves here.
    let page = browser.get(&link("openai", "")).await;
    assert!(
        page.has("env.CONSOLE_TEST_KEY (resolves on this host)"),
        "{}",
        page.body
    );
}

on_every_store!(
    every_form_posted_back_as_drawn_changes_nothing,
    a_change_made_in_a_form_is_stored_as_the_api_would_store_it,
    an_error_is_shown_at_its_field_in_the_apis_words,
    a_stale_edit_shows_the_conflict_and_can_save_over_it,
    history_diff_rollback_delete_and_restore,
    sessions_logins_and_forged_posts,
    a_read_token_gets_a_read_only_console_within_its_patterns,
    no_page_shows_a_secret_and_every_answer_has_the_headers,
);

/// A page's HTML, one element a line, with what differs between runs (form tokens, tags,
/// times) replaced.
fn normalized(body: &str) -> String {
    let replacements = [
        (
            r#"name="_csrf" value="[^"]+""#,
            r#"name="_csrf" value="[form token]""#,
        ),
        (
            r#"name="_etag" value="[0-9a-f]{32}""#,
            r#"name="_etag" value="[etag]""#,
        ),
        (r#"data-etag="[0-9a-f]{32}""#, r#"data-etag="[etag]""#),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[time]"),
    ];
    let mut text = body.replace("><", ">\n<");
    for (pattern, with) in replacements {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, with)
            .into_owned();
    }
    text
}

#[tokio::test]
async fn every_page_renders_as_its_snapshot() {
    let server = TestServer::start_with(&[("CONSOLE_TEST_KEY", "sk-env-console-secret-0011")], &[]);
    seed(&server, false).await;
    let mut browser = Browser::new(&server);
    let edit = link("openai", "/edit");
    assert_eq!(
        browser
            .submit(&edit, &edit, &[("network_config.max_retries", "3")])
            .await
            .status,
        303
    );
    let mut shots: Vec<(String, String)> = Vec::new();
    for path in pages() {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        shots.push((path, normalized(&page.body)));
    }
    let conflict = {
        let drawn = browser.get(&edit).await;
        assert_eq!(
            browser
                .submit(&edit, &edit, &[("network_config.max_retries", "4")])
                .await
                .status,
            303
        );
        let fields: Vec<(String, String)> = drawn
            .form(&edit)
            .into_iter()
            .map(|(n, v)| {
                if n == "network_config.max_retries" {
                    (n, "5".into())
                } else {
                    (n, v)
                }
            })
            .collect();
        browser.post(&edit, &fields).await
    };
    assert_eq!(conflict.status, 412);
    shots.push(("conflict".into(), normalized(&conflict.body)));
    let refused = browser
        .submit(
            &edit,
            &edit,
            &[("concurrency_and_buffer_size.concurrency", "0")],
        )
        .await;
    assert_eq!(refused.status, 400);
    shots.push(("refused".into(), normalized(&refused.body)));
    let (guarded_server, _tokens, _dir) = guarded(&Backend::Sqlite);
    let login = Browser::new(&guarded_server).get("/ui/login").await;
    shots.push(("login".into(), normalized(&login.body)));
    for (path, html) in shots {
        let name = match path.strip_prefix("/ui") {
            Some(rest) => format!("console{}", rest.replace(['/', '?', '=', '&'], "_")),
            None => format!("console_{path}"),
        };
        insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"), prepend_module_to_snapshot => false, description => path.clone()}, {
            insta::assert_snapshot!(name, html);
        });
    }
}
