//! What the client does around each request, through progenitor's `ClientHooks`: retries, with
//! exponential backoff, of requests that are safe to repeat.
//!
//! Safe to repeat: reads, and a PUT or DELETE that carries `If-Match` (a repeat of a write that
//! did land meets a changed `ETag` and gets 412, never a second write). A POST, or a PUT without
//! `If-Match`, is sent once. Retried on: a connection that could not be made or broke before a
//! response, and 502, 503 and 504 (a 503's `Retry-After`, in seconds, is honoured up to the
//! longest backoff).
//!
//! A long poll of the change feed (`GET /api/changes?timeout=S`) waits up to S seconds (30 by
//! default, at most 60) before the server answers, so its attempt may take the client's timeout
//! plus that wait; a quiet watch is an answer, never a timeout to retry.

use std::time::Duration;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::{Method, Request, Response, StatusCode};

use crate::{Client, Options};

impl ClientHooks<Options> for Client {
    async fn exec(&self, request: Request, _info: &OperationInfo) -> reqwest::Result<Response> {
        let options = self.inner();
        let mut wait = options.backoff;
        let mut left = if repeatable(&request) {
            options.retries
        } else {
            0
        };
        let mut request = request;
        if let Some(wait) = long_poll_wait(&request) {
            *request.timeout_mut() = Some(options.timeout + wait);
        }
        loop {
            let again = if left > 0 { request.try_clone() } else { None };
            let outcome = self.client().execute(request).await;
            let Some(next) = again else {
                return outcome;
            };
            let pause = match &outcome {
                Ok(response) if retry_status(response.status()) => {
                    retry_after(response, options.max_backoff).unwrap_or(wait)
                }
                Err(e) if e.is_connect() || e.is_request() || e.is_timeout() => wait,
                _ => return outcome,
            };
            tokio::time::sleep(pause).await;
            wait = (wait * 2).min(options.max_backoff);
            left -= 1;
            request = next;
        }
    }
}

/// How long the server may hold `request` before it answers: the change feed's `timeout`.
fn long_poll_wait(request: &Request) -> Option<Duration> {
    if request.method() != Method::GET || !request.url().path().ends_with("/api/changes") {
        return None;
    }
    let seconds = request
        .url()
        .query_pairs()
        .find(|(name, _)| name == "timeout")
        .and_then(|(_, value)| value.parse::<u64>().ok())
        .unwrap_or(30);
    Some(Duration::from_secs(seconds.min(60)))
}

/// Whether repeating the request cannot apply it twice.
fn repeatable(request: &Request) -> bool {
    match *request.method() {
        Method::GET | Method::HEAD | Method::OPTIONS => true,
        Method::PUT | Method::DELETE => request.headers().contains_key(reqwest::header::IF_MATCH),
        _ => false,
    }
}

fn retry_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// A `Retry-After` in seconds, when it is no longer than `max`.
fn retry_after(response: &Response, max: Duration) -> Option<Duration> {
    let seconds: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds)).filter(|d| *d <= max)
}
