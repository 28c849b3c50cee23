//! Optimistic concurrency (CONTRACT.md section 8): `ETag` on every provider response,
//! `If-Match` on PUT and DELETE, `If-None-Match: *` on PUT, through the generated client.

mod common;

use bifrost_providers::client::ResponseValue;
use bifrost_providers::types::{EnvVar, Key, ProviderResponse, UpdateProviderRequest};
use common::{Backend, TestServer, assert_error};

fn etag<T>(response: &ResponseValue<T>) -> String {
    let value = response.headers().get("etag").expect("an ETag header");
    let value = value.to_str().unwrap().to_string();
    assert!(
        value.starts_with('"') && value.ends_with('"') && value.len() > 2,
        "strong tag: {value}"
    );
    value
}

fn with_key(secret: &str) -> UpdateProviderRequest {
    let value = EnvVar {
        value: secret.into(),
        ..Default::default()
    };
    let key = Key {
        id: Some("k".into()),
        value: Some(value),
        ..Default::default()
    };
    UpdateProviderRequest {
        keys: Some(vec![key]),
        ..Default::default()
    }
}

fn status_and_code(
    err: progenitor_client::Error<bifrost_providers::types::BifrostError>,
) -> (u16, String) {
    match err {
        progenitor_client::Error::ErrorResponse(body) => (
            body.status().as_u16(),
            body.error.code.clone().unwrap_or_default(),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

async fn two_writers_with_one_tag_one_wins_and_nothing_is_lost(backend: Backend) {
    let server = TestServer::on(&backend);
    let client = server.client();
    client
        .update_provider()
        .provider("openai")
        .body(with_key("sk-first-0123456789"))
        .send()
        .await
        .unwrap();

    let a = client
        .get_provider()
        .provider("openai")
        .send()
        .await
        .unwrap();
    let b = client
        .get_provider()
        .provider("openai")
        .send()
        .await
        .unwrap();
    let (tag_a, tag_b) = (etag(&a), etag(&b));
    assert_eq!(tag_a, tag_b, "reads do not change the tag");

    let mut edit_a = UpdateProviderRequest::from(a.into_inner());
    edit_a.keys_mut()[0].weight = 2.0;
    let mut edit_b = UpdateProviderRequest::from(b.into_inner());
    edit_b.send_back_raw_request = true;

    let won = client
        .update_provider()
        .provider("openai")
        .if_match(tag_a.as_str())
        .body(edit_a)
        .send()
        .await
        .unwrap();
    let lost = client
        .update_provider()
        .provider("openai")
        .if_match(tag_b.as_str())
        .body(edit_b.clone())
        .send()
        .await;
    assert_eq!(
        status_and_code(lost.unwrap_err()),
        (412, "precondition_failed".into())
    );
    assert_ne!(etag(&won), tag_a, "an accepted write changes the tag");

    // The loser reads again, reapplies its edit on the new state, and succeeds: both edits hold.
    let fresh = client
        .get_provider()
        .provider("openai")
        .send()
        .await
        .unwrap();
    let tag = etag(&fresh);
    let mut retry = UpdateProviderRequest::from(fresh.into_inner());
    retry.send_back_raw_request = true;
    let merged = client
        .update_provider()
        .provider("openai")
        .if_match(tag.as_str())
        .body(retry)
        .send()
        .await
        .unwrap();
    let merged: ProviderResponse = merged.into_inner();
    assert_eq!(merged.keys[0].weight, 2.0);
    assert!(merged.send_back_raw_request);
}

async fn the_tag_changes_on_every_write_and_survives_a_restart(backend: Backend) {
    let mut server = TestServer::on(&backend);
    let client = server.client();
    let first = client
        .update_provider()
        .provider("groq")
        .body(with_key("sk-aaaaaaaaaaaaaaaa1"))
        .send()
        .await
        .unwrap();
    let same = client
        .update_provider()
        .provider("groq")
        .body(with_key("sk-aaaaaaaaaaaaaaaa1"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        etag(&first),
        etag(&same),
        "every accepted write gets a new tag"
    );
    // A change to the secret alone: the redacted form can be identical, the tag is not.
    let secret_only = client
        .update_provider()
        .provider("groq")
        .body(with_key("sk-aaaaXXXXXXXXaaaa1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        secret_only.keys[0].value, same.keys[0].value,
        "same redacted form"
    );
    assert_ne!(etag(&secret_only), etag(&same));

    let tag = etag(&secret_only);
    assert_eq!(
        etag(&client.get_provider().provider("groq").send().await.unwrap()),
        tag
    );
    assert!(server.stop());
    server.restart_with_env(&[]);
    let client = server.client();
    assert_eq!(
        etag(&client.get_provider().provider("groq").send().await.unwrap()),
        tag,
        "the tag is stored"
    );
    let refused = client
        .update_provider()
        .provider("groq")
        .if_match("\"stale\"")
        .body(with_key("sk-new-000000000"))
        .send()
        .await;
    assert_eq!(status_and_code(refused.unwrap_err()).0, 412);
    let shown = client.get_provider().provider("groq").send().await.unwrap();
    assert_eq!(etag(&shown), tag, "a refused write changes nothing");
}

async fn if_none_match_star_creates_only(backend: Backend) {
    let server = TestServer::on(&backend);
    let client = server.client();
    let created = client
        .update_provider()
        .provider("cohere")
        .if_none_match("*")
        .body(with_key("sk-c-0123456789"))
        .send()
        .await;
    assert!(created.is_ok());
    let again = client
        .update_provider()
        .provider("cohere")
        .if_none_match("*")
        .body(with_key("sk-other-01234567"))
        .send()
        .await;
    assert_eq!(
        status_and_code(again.unwrap_err()),
        (412, "precondition_failed".into())
    );
    let missing = client
        .update_provider()
        .provider("mistral")
        .if_match("*")
        .body(UpdateProviderRequest::default())
        .send()
        .await;
    assert_eq!(
        status_and_code(missing.unwrap_err()).0,
        412,
        "If-Match on a missing provider"
    );
    assert_eq!(
        client
            .get_provider()
            .provider("mistral")
            .send()
            .await
            .unwrap_err()
            .status()
            .map(|s| s.as_u16()),
        Some(404)
    );
}

async fn delete_honours_if_match(backend: Backend) {
    let server = TestServer::on(&backend);
    let client = server.client();
    let created = client
        .update_provider()
        .provider("xai")
        .body(UpdateProviderRequest::default())
        .send()
        .await
        .unwrap();
    let tag = etag(&created);
    let stale = client
        .delete_provider()
        .provider("xai")
        .if_match("\"not-the-tag\"")
        .send()
        .await;
    assert_eq!(
        status_and_code(stale.unwrap_err()),
        (412, "precondition_failed".into())
    );
    assert!(
        client.get_provider().provider("xai").send().await.is_ok(),
        "still there"
    );
    let deleted = client
        .delete_provider()
        .provider("xai")
        .if_match(tag.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(etag(&deleted), tag);
    let (status, _, body) =
        common::raw("DELETE", &format!("{}/api/providers/xai", server.url), None).await;
    assert_error(status, &body, 404, "provider_not_found");
}

async fn concurrent_conditional_writers_exactly_one_wins_per_tag(backend: Backend) {
    let server = std::sync::Arc::new(TestServer::on(&backend));
    let client = server.client();
    let base = client
        .update_provider()
        .provider("openai")
        .body(with_key("sk-base-0123456789"))
        .send()
        .await
        .unwrap();
    let tag = etag(&base);
    let writers: Vec<_> = (0..12)
        .map(|n| {
            let (server, tag) = (std::sync::Arc::clone(&server), tag.clone());
            tokio::spawn(async move {
                let mut body = with_key("sk-base-0123456789");
                body.keys_mut()[0].weight = f64::from(n);
                let sent = server
                    .client()
                    .update_provider()
                    .provider("openai")
                    .if_match(tag.as_str())
                    .body(body)
                    .send()
                    .await;
                sent.map(|r| r.into_inner().keys[0].weight)
                    .map_err(|e| status_and_code(e).0)
            })
        })
        .collect();
    let mut won = Vec::new();
    for writer in writers {
        match writer.await.unwrap() {
            Ok(weight) => won.push(weight),
            Err(status) => assert_eq!(status, 412),
        }
    }
    assert_eq!(won.len(), 1, "exactly one writer holding the tag wins");
    let last = client
        .get_provider()
        .provider("openai")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.keys[0].weight, won[0]);
}

on_every_store!(
    two_writers_with_one_tag_one_wins_and_nothing_is_lost,
    the_tag_changes_on_every_write_and_survives_a_restart,
    if_none_match_star_creates_only,
    delete_honours_if_match,
    concurrent_conditional_writers_exactly_one_wins_per_tag,
);
