//! One target's sync: a task of its own, so that a slow or failing gateway never delays another
//! or the API. It reconciles at start and at every interval (the gateway's providers compared
//! with the store's and corrected, extra ones deleted), and in between follows the store's
//! change feed, applying each changed provider in revision order. A failure is retried with
//! backoff from the same revision; a gateway that did not answer at all may have restarted
//! empty, so once it answers again it is reconciled; a feed compacted past the target's
//! revision means a full reconcile.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use serde_json::Value;

use crate::domain::plan;
use crate::domain::provider::StoredProvider;
use crate::store::{Feed, Store};
use crate::sync::gateway::{Failure, Gateway, Held};
use crate::sync::status::{Cell, scrub};
use crate::sync::target::{Generation, Target};

/// How a sync runs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Between two full reconciles.
    pub interval: Duration,
    /// The most one request to a gateway may take.
    pub timeout: Duration,
}

/// The log target of the sync.
const TARGET: &str = "bifrost_providers::sync";

/// The most changes read from the feed at once.
const PAGE: usize = 1000;

/// What was last written to the gateway of one provider: the store state's `ETag`, and the
/// gateway's view of it right after (a gateway fills in its own defaults and drops what it does
/// not know; comparing with what it showed then tells an edit made there from its own form).
struct Written {
    etag: String,
    view: Value,
}

pub struct Worker {
    store: Arc<dyn Store>,
    gateway: Gateway,
    generation: Option<Generation>,
    status: Cell,
    options: Options,
    backoff: backon::ExponentialBackoff,
    written: HashMap<String, Written>,
    /// Providers the gateway refused (4xx), by the `ETag` of the state refused: passed over
    /// until they change, or until the next reconcile.
    refused: HashMap<String, String>,
    /// The gateway did not answer: once it does and has caught up from the feed, it is
    /// reconciled (it may have restarted empty).
    unanswered: bool,
}

/// What a step that did not finish leads to.
enum Next {
    /// Retry the same step after the backoff.
    Retry,
    /// Compare the whole gateway again (after the backoff): the feed no longer reaches the
    /// target's revision.
    Reconcile(&'static str),
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        target: &Target,
        status: Cell,
        options: Options,
    ) -> Result<Worker, String> {
        Ok(Worker {
            store,
            gateway: Gateway::new(target, options.timeout)?,
            generation: target.generation,
            status,
            options,
            backoff: backoff(),
            written: HashMap::new(),
            refused: HashMap::new(),
            unanswered: false,
        })
    }

    /// Runs until the process stops.
    pub async fn run(mut self) {
        let mut heads = self.store.watch();
        let mut applied: Option<i64> = None;
        let mut reconcile_due = tokio::time::Instant::now();
        loop {
            let latest = *heads.borrow_and_update();
            self.status.store_at(latest);
            let now = tokio::time::Instant::now();
            let result = match applied {
                Some(from) if now < reconcile_due && from >= latest => Ok(from),
                Some(from) if now < reconcile_due => self.follow(from).await,
                _ => {
                    let reconciled = self.reconcile().await;
                    if reconciled.is_ok() {
                        reconcile_due = tokio::time::Instant::now() + self.options.interval;
                    }
                    reconciled
                }
            };
            match result {
                Ok(revision) => {
                    if std::mem::take(&mut self.unanswered) {
                        reconcile_due = tokio::time::Instant::now();
                    }
                    applied = Some(revision);
                    self.backoff = backoff();
                    self.status.applied(revision, *heads.borrow());
                    if revision >= *heads.borrow() {
                        let wait =
                            reconcile_due.saturating_duration_since(tokio::time::Instant::now());
                        tokio::select! {
                            _ = heads.changed() => {}
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                }
                Err(next) => {
                    if let Next::Reconcile(why) = next {
                        tracing::info!(target: TARGET, target = self.status.get().target, why, "reconciling the target");
                        applied = None;
                    }
                    let wait = self.backoff.next().unwrap_or(Duration::from_secs(10));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Applies the changes after `from` (a page at a time), each changed provider once, in the
    /// order of its last change; answers the revision reached.
    async fn follow(&mut self, from: i64) -> Result<i64, Next> {
        let (changes, latest) = match self.store.changes(from, PAGE).await {
            Ok(Feed::Changes(changes, latest)) => (changes, latest),
            Ok(Feed::Compacted) => {
                return Err(Next::Reconcile(
                    "the change feed no longer reaches the target's revision",
                ));
            }
            Err(e) => return Err(self.store_failed(e)),
        };
        let reached = changes.last().map_or(latest.max(from), |c| c.revision);
        let mut order: Vec<&str> = Vec::new();
        for change in changes.iter().rev() {
            if !order.contains(&change.provider.as_str()) {
                order.push(&change.provider);
            }
        }
        order.reverse();
        for name in order {
            let want = match self.store.get(name).await {
                Ok(want) => want,
                Err(e) => return Err(self.store_failed(e)),
            };
            self.push(name, want.as_deref(), false).await?;
        }
        Ok(reached)
    }

    /// Compares every provider of the gateway with the store's and corrects each difference
    /// (a provider the store does not hold is deleted); answers the store revision the gateway
    /// now matches.
    async fn reconcile(&mut self) -> Result<i64, Next> {
        let (providers, revision) = match self.store.list().await {
            Ok(listed) => listed,
            Err(e) => return Err(self.store_failed(e)),
        };
        let held = match self.gateway.names().await {
            Ok(names) => names,
            Err(f) => return Err(self.failed(f, None)),
        };
        self.refused.clear();
        for want in &providers {
            self.push(&want.name, Some(want), true).await?;
        }
        for extra in held
            .iter()
            .filter(|name| !providers.iter().any(|p| &p.name == *name))
        {
            self.push(extra, None, true).await?;
        }
        let generation = self.generation;
        self.status.update(|s| {
            s.last_reconcile_at = Some(chrono::Utc::now());
            s.generation = generation.or(s.generation);
        });
        Ok(revision)
    }

    /// Makes the gateway's provider `name` the store's `want` (`None`: deleted). A reconcile
    /// compares first and writes only a difference; a change from the feed is written unless
    /// this very state was written and the gateway still shows what it showed then.
    async fn push(
        &mut self,
        name: &str,
        want: Option<&StoredProvider>,
        reconciling: bool,
    ) -> Result<(), Next> {
        let secrets = want.map(secrets_of).unwrap_or_default();
        let etag = want.map(|w| w.etag.as_str());
        let held = match self.gateway.read(name).await {
            Ok(held) => held,
            Err(f) => return self.refusal(f, name, etag, &secrets),
        };
        self.detect(held.as_ref());
        let Some(want) = want else {
            self.written.remove(name);
            if held.is_none() {
                return Ok(());
            }
            if let Err(f) = self.gateway.delete(name).await {
                return self.refusal(f, name, None, &secrets);
            }
            self.status.wrote(reconciling);
            if reconciling {
                tracing::warn!(target: TARGET, target = self.status.get().target, provider = name, "drift corrected: a provider the store does not hold was deleted");
            }
            return Ok(());
        };
        if self.refused.get(name) == Some(&want.etag) {
            return Ok(());
        }
        let desired = plan::view(want);
        let held_view = held.as_ref().map(|h| view(name, h));
        let in_sync = match (self.written.get(name), &held_view) {
            (Some(w), Some(v)) if w.etag == want.etag => *v == w.view,
            (None, Some(v)) if reconciling => *v == desired,
            _ => false,
        };
        if in_sync {
            return Ok(());
        }
        if reconciling {
            let changed: Vec<String> = match &held_view {
                Some(v) => plan::fields(v, &desired)
                    .into_iter()
                    .map(|c| c.path)
                    .collect(),
                None => vec!["(missing on the target)".into()],
            };
            tracing::warn!(target: TARGET, target = self.status.get().target, provider = name, fields = ?changed, "drift corrected: the target differed from the store");
        }
        // A G1 gateway enables every key new to it: a second write sets what the first could not.
        let mut held = held;
        for attempt in 0..2 {
            match self
                .gateway
                .write(want, held.as_ref(), self.generation)
                .await
            {
                Ok(generation) => self.generation = self.generation.or(generation),
                Err(f) => return self.refusal(f, name, Some(&want.etag), &secrets),
            }
            self.status.wrote(reconciling && attempt == 0);
            held = match self.gateway.read(name).await {
                Ok(held) => held,
                Err(f) => return self.refusal(f, name, Some(&want.etag), &secrets),
            };
            self.detect(held.as_ref());
            let now = held.as_ref().map(|h| view(name, h)).unwrap_or(Value::Null);
            if now == desired || attempt == 1 {
                self.written.insert(
                    name.to_string(),
                    Written {
                        etag: want.etag.clone(),
                        view: now,
                    },
                );
                break;
            }
        }
        Ok(())
    }

    /// Learns the generation of a gateway not configured with one from what it showed.
    fn detect(&mut self, held: Option<&Held>) {
        if let (None, Some(held)) = (self.generation, held) {
            self.generation = Some(held.generation);
            self.status.update(|s| s.generation = Some(held.generation));
        }
    }

    /// A failed request about provider `name`: a refusal of that provider's state (`etag`) is
    /// recorded and passed over, so the other providers go on; anything else stops the step.
    fn refusal(
        &mut self,
        failure: Failure,
        name: &str,
        etag: Option<&str>,
        secrets: &[String],
    ) -> Result<(), Next> {
        let failure = Failure {
            message: scrub(&failure.message, secrets),
            ..failure
        };
        match etag {
            Some(etag) if failure.refused() => {
                tracing::warn!(target: TARGET, target = self.status.get().target, provider = name, error = failure.message, "the target refused a provider: passed over until it changes");
                self.status.failed(failure.message, Some(name));
                self.refused.insert(name.to_string(), etag.to_string());
                Ok(())
            }
            _ => Err(self.failed(failure, Some(name))),
        }
    }

    fn failed(&mut self, failure: Failure, provider: Option<&str>) -> Next {
        tracing::warn!(target: TARGET, target = self.status.get().target, provider, error = failure.message, "the target failed: retrying");
        self.unanswered |= failure.status.is_none();
        self.status.failed(failure.message, provider);
        Next::Retry
    }

    fn store_failed(&mut self, error: crate::domain::error::Error) -> Next {
        let message = format!("the store did not answer: {error}");
        tracing::warn!(target: TARGET, target = self.status.get().target, error = message, "sync paused");
        self.status.failed(message, None);
        Next::Retry
    }
}

/// The backoff between failed attempts: 100 ms doubling to 10 s, with jitter, without end.
fn backoff() -> backon::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}

/// A gateway's provider as the plan compares it (the store's side is [`plan::view`]).
fn view(name: &str, held: &Held) -> Value {
    plan::view(&plan::shown_state(name, held.config.clone()))
}

/// The literal secrets and credentials of a stored provider, which no message may quote.
fn secrets_of(stored: &StoredProvider) -> Vec<String> {
    let mut out = Vec::new();
    collect(
        &serde_json::to_value(&stored.config).unwrap_or_default(),
        &mut out,
    );
    out
}

fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            if members.contains_key("env_var")
                && let Some(text) = members.get("value").and_then(Value::as_str)
            {
                out.push(text.to_string());
            }
            for (name, member) in members {
                match (name.as_str(), member) {
                    ("extra_headers" | "headers", Value::Object(headers)) => out.extend(
                        headers
                            .values()
                            .filter_map(Value::as_str)
                            .map(str::to_string),
                    ),
                    (_, Value::String(text)) if text.contains("://") && text.contains('@') => {
                        if let Ok(url) = url::Url::parse(text) {
                            out.extend(url.password().map(str::to_string));
                            out.push(url.username().to_string());
                        }
                    }
                    _ => collect(member, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect(item, out)),
        _ => {}
    }
}
