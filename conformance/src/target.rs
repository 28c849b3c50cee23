//! The server under test, as the checks see it: the typed client, raw JSON calls through the
//! same HTTP client (same TLS and token), and the providers this run created.

use std::sync::Mutex;

use progenitor_client::ClientInfo;
use serde_json::Value;

use bifrost_providers_client::Client;

/// A server under test.
pub struct Target {
    pub client: Client,
    /// The same client without the admin token, when the run was given one: a run without a
    /// token cannot judge that requests without it are refused.
    anonymous: Option<Client>,
    run_id: String,
    created: Mutex<Vec<String>>,
    next: std::sync::atomic::AtomicUsize,
}

/// A raw answer: status, headers, body as JSON (`Null` when it is not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Target {
    /// A target reached without an admin token.
    pub fn new(client: Client) -> Self {
        Self::build(client, None)
    }

    /// A target reached with an admin token: `client` sends it, `anonymous` is the same client
    /// without it. The target is taken to require the token.
    pub fn with_token(client: Client, anonymous: Client) -> Self {
        Self::build(client, Some(anonymous))
    }

    fn build(client: Client, anonymous: Option<Client>) -> Self {
        let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        Target {
            client,
            anonymous,
            run_id,
            created: Mutex::new(Vec::new()),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// A provider name of this run, never used before; removed at the end of the run.
    pub fn fresh_name(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("bfc-{}-{n}", self.run_id);
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.clone());
        name
    }

    /// Whether `name` is one of this run's (every write of a check goes to one).
    fn ours(&self, path: &str) -> bool {
        path.strip_prefix("/api/providers/")
            .map(|rest| rest.split('/').next().unwrap_or_default())
            .is_some_and(|name| {
                self.created
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .any(|n| n == name)
            })
            || path == "/api/providers"
    }

    /// The client without the admin token, when the run was given one.
    pub fn anonymous(&self) -> Option<&Client> {
        self.anonymous.as_ref()
    }

    /// A raw call with a JSON body and extra headers (an `Authorization` among them replaces
    /// the admin token's).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        self.call_as(&self.client, method, path, body, headers)
            .await
    }

    /// A raw call through `client` (this target's, or [`Self::anonymous`]).
    pub async fn call_as(
        &self,
        client: &Client,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        assert!(
            self.ours(path),
            "a conformance check reached outside its own providers: {path}"
        );
        let url = format!("{}{path}", client.baseurl());
        let mut request = client.client().request(
            method.parse().map_err(|_| format!("bad method {method}"))?,
            url,
        );
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(body).map_err(|e| e.to_string())?);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("{method} {path}: reading the body: {e}"))?;
        Ok(Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    pub async fn put(&self, name: &str, body: &Value) -> Result<Answer, String> {
        self.call("PUT", &format!("/api/providers/{name}"), Some(body), &[])
            .await
    }

    pub async fn get(&self, name: &str) -> Result<Answer, String> {
        self.call("GET", &format!("/api/providers/{name}"), None, &[])
            .await
    }

    /// Deletes every provider this run created (those already gone are fine).
    pub async fn clean_up(&self) {
        let names = self
            .created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for name in names {
            let _ = self
                .call("DELETE", &format!("/api/providers/{name}"), None, &[])
                .await;
        }
    }
}
