//! Talking to one gateway through Bifrost's provider API: reading what it holds (in the form of
//! either generation: keys inside the provider body, or under `/keys`), and writing the store's
//! state to it.
//!
//! Reads go through the typed client, which decodes every generation's answers. Writes are sent
//! as JSON built from the stored state, each secret as the one string every generation reads
//! the same way (Bifrost's `EnvVar` and `SecretVar` both take `"env.NAME"` as a reference and any
//! other string as the literal): the stored literal in full (the gateway needs it), a reference
//! as itself. The object forms differ between generations; the string form does not.

use std::time::Duration;

use bifrost_providers_client::Client;
use bifrost_providers_client::client::ClientInfo;
use serde_json::Value;

use crate::domain::key_models::{self, View};
use crate::domain::plan;
use crate::domain::provider::StoredProvider;
use crate::sync::target::{Credentials, Generation, Target};
use crate::types::{Key, UpdateProviderRequest};

/// Why a request to a gateway did not do what it was for.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What happened, without any value from the request.
    pub message: String,
    /// The gateway's status, when it answered.
    pub status: Option<u16>,
}

impl Failure {
    /// The gateway refused this one request (a 4xx other than auth): retrying the same body
    /// cannot help, while the other providers can go on.
    pub fn refused(&self) -> bool {
        self.status
            .is_some_and(|s| (400..500).contains(&s) && !matches!(s, 401 | 403 | 408 | 429))
    }
}

/// What a gateway holds of one provider, as a request body in the store's form (keys' `models`
/// as the store keeps them), with the generation its answer showed.
#[derive(Debug, Clone)]
pub struct Held {
    pub config: UpdateProviderRequest,
    pub generation: Generation,
}

/// One gateway's API.
pub struct Gateway {
    client: Client,
}

impl Gateway {
    /// A client for `target`: no retries of its own (the sync retries with backoff), each
    /// request bounded by `timeout`.
    pub fn new(target: &Target, timeout: Duration) -> Result<Gateway, String> {
        let mut builder = Client::builder(target.url.as_str().trim_end_matches('/'))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .retries(0)
            .user_agent(concat!(
                "bifrost-providers-sync/",
                env!("CARGO_PKG_VERSION")
            ));
        match &target.credentials {
            Credentials::None => {}
            Credentials::Bearer(token) => builder = builder.admin_token(token),
            Credentials::Basic { user, password } => builder = builder.basic_auth(user, password),
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        Ok(Gateway { client })
    }

    /// The names of the providers the gateway holds.
    pub async fn names(&self) -> Result<Vec<String>, Failure> {
        let list = self
            .client
            .list_providers()
            .send()
            .await
            .map_err(failure)?
            .into_inner();
        Ok(list.providers.into_iter().map(|p| p.name).collect())
    }

    /// What the gateway holds of provider `name` (`None`: it has none). A GET that shows no
    /// `keys` is a v1.5+ gateway's: its keys are read from `/keys`.
    pub async fn read(&self, name: &str) -> Result<Option<Held>, Failure> {
        let response = match self.client.get_provider().provider(name).send().await {
            Ok(answer) => answer.into_inner(),
            Err(bifrost_providers_client::Error::ErrorResponse(e)) if e.status() == 404 => {
                return Ok(None);
            }
            Err(e) => return Err(failure(e)),
        };
        let mut config = UpdateProviderRequest::from(response);
        let generation = match config.keys.as_mut() {
            Some(keys) => {
                for key in keys.iter_mut() {
                    key.models = stored_models(std::mem::take(&mut key.models), View::Inline);
                }
                Generation::G1
            }
            None => {
                let keys = self
                    .client
                    .list_provider_keys()
                    .provider(name)
                    .send()
                    .await
                    .map_err(failure)?
                    .into_inner()
                    .keys;
                config.keys = Some(
                    keys.into_iter()
                        .map(|mut key| {
                            key.models = stored_models(std::mem::take(&mut key.models), View::Keys);
                            key
                        })
                        .collect(),
                );
                Generation::G2
            }
        };
        Ok(Some(Held { config, generation }))
    }

    /// Makes the gateway's provider `name` the stored state `want`, as `generation` takes it:
    /// G1, one PUT with the keys inside; G2, a PUT of the settings, then each key through
    /// `/keys` (`held`: the keys it has now). A gateway of unknown generation is written as G1
    /// (what it shows afterwards tells which it is); one that refuses keys in a provider body
    /// is a G2 gateway, and answered as such.
    pub async fn write(
        &self,
        want: &StoredProvider,
        held: Option<&Held>,
        generation: Option<Generation>,
    ) -> Result<Option<Generation>, Failure> {
        let name = want.name.as_str();
        if generation != Some(Generation::G2) {
            match self.put(name, body(&want.config, Some(View::Inline))).await {
                Ok(()) => return Ok(generation),
                // Bifrost 2.x refuses keys in a provider body: it is a `/keys` gateway.
                Err(f)
                    if generation.is_none()
                        && f.status == Some(400)
                        && f.message.contains("keys") => {}
                Err(f) => return Err(f),
            }
        }
        self.put(name, body(&want.config, None)).await?;
        let wanted = want.config.keys.as_deref().unwrap_or_default();
        let held_keys = held
            .and_then(|h| h.config.keys.as_deref())
            .unwrap_or_default();
        for gone in held_keys
            .iter()
            .filter_map(|k| k.id.as_deref())
            .filter(|id| !wanted.iter().any(|w| w.id.as_deref() == Some(*id)))
        {
            self.send(
                self.request(reqwest::Method::DELETE, &key_path(name, Some(gone))),
                true,
            )
            .await?;
        }
        for key in wanted {
            let id = key
                .id
                .as_deref()
                .filter(|id| held_keys.iter().any(|h| h.id.as_deref() == Some(*id)));
            let request = match id {
                Some(id) => self.request(reqwest::Method::PUT, &key_path(name, Some(id))),
                None => self.request(reqwest::Method::POST, &key_path(name, None)),
            };
            self.send(request.json(&key_body(key)), false).await?;
        }
        Ok(Some(Generation::G2))
    }

    /// Deletes provider `name` (one already gone is no failure).
    pub async fn delete(&self, name: &str) -> Result<(), Failure> {
        self.send(
            self.request(reqwest::Method::DELETE, &provider_path(name)),
            true,
        )
        .await
    }

    async fn put(&self, name: &str, body: Value) -> Result<(), Failure> {
        self.send(
            self.request(reqwest::Method::PUT, &provider_path(name))
                .json(&body),
            false,
        )
        .await
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .client()
            .request(method, format!("{}{path}", self.client.baseurl()))
    }

    /// Sends a write; a 2xx is done (and a 404, when `gone_is_done`).
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        gone_is_done: bool,
    ) -> Result<(), Failure> {
        let answer = request.send().await.map_err(|e| Failure {
            message: unanswered(&e),
            status: None,
        })?;
        let status = answer.status().as_u16();
        if answer.status().is_success() || (gone_is_done && status == 404) {
            return Ok(());
        }
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        let said = body["error"]["message"]
            .as_str()
            .or_else(|| body["message"].as_str())
            .unwrap_or("no error message");
        Err(Failure {
            message: format!("{status}: {said}"),
            status: Some(status),
        })
    }
}

/// A key's `models` read from a gateway, in the store's form.
fn stored_models(models: Vec<String>, view: View) -> Vec<String> {
    key_models::read(models.clone(), None, view, "models").unwrap_or(models)
}

/// The JSON of a provider body, secrets as strings; keys inside it as `view` reads them, or
/// none (`None`: a G2 gateway, whose keys go through `/keys`).
fn body(config: &UpdateProviderRequest, view: Option<View>) -> Value {
    let mut config = config.clone();
    match view {
        Some(view) => {
            for key in config.keys.iter_mut().flatten() {
                key.models = key_models::render(&key.models, view);
                key_models::show_aliases(key, view);
            }
        }
        None => config.keys = None,
    }
    let mut value = serde_json::to_value(&config).unwrap_or_default();
    plan::flatten_secrets(&mut value);
    value
}

/// The JSON of a key sent through `/keys`.
fn key_body(key: &Key) -> Value {
    let mut key = key.clone();
    key.models = key_models::render(&key.models, View::Keys);
    key_models::show_aliases(&mut key, View::Keys);
    let mut value = serde_json::to_value(&key).unwrap_or_default();
    plan::flatten_secrets(&mut value);
    value
}

fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn provider_path(name: &str) -> String {
    format!("/api/providers/{}", segment(name))
}

fn key_path(name: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("/api/providers/{}/keys/{}", segment(name), segment(id)),
        None => format!("/api/providers/{}/keys", segment(name)),
    }
}

/// A request that got no answer, said without its URL's path or any value.
fn unanswered(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer in time".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        "the connection failed".into()
    }
}

fn failure(error: bifrost_providers_client::Error<crate::types::BifrostError>) -> Failure {
    match error {
        bifrost_providers_client::Error::ErrorResponse(answer) => {
            let status = answer.status().as_u16();
            Failure {
                message: format!("{status}: {}", answer.into_inner().error.message),
                status: Some(status),
            }
        }
        bifrost_providers_client::Error::CommunicationError(e) => Failure {
            message: unanswered(&e),
            status: None,
        },
        other => Failure {
            message: format!(
                "an answer that cannot be read ({})",
                crate::decode::json::without_strings(&other.to_string())
            ),
            status: other.status().map(|s| s.as_u16()),
        },
    }
}
