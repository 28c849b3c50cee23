//! The client crate as a user meets it: over HTTPS to a server serving a certificate that a CA
//! made here signed (trusted through the builder, refused without it), and retrying a read
//! across a server restart.

mod common;

use std::time::Duration;

use bifrost_providers::Client;
use common::{TestServer, certificates};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reaches_the_server_over_tls() {
    let (ca, chain, key) = certificates();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, chain).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let server = TestServer::start_with(
        &[],
        &[
            "--tls-cert",
            cert_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
    );
    let url = server.url.replace("http://", "https://");

    let client = Client::builder(&url)
        .root_certificate_pem(ca.as_bytes())
        .retries(0)
        .build()
        .unwrap();
    let body: bifrost_providers::types::UpdateProviderRequest = serde_json::from_value(
        json!({"keys": [{"name": "tls", "value": {"value": "sk-over-tls-0123456789"}}]}),
    )
    .unwrap();
    let written = client
        .update_provider()
        .provider("openai")
        .body(body)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.keys[0].name, "tls");
    let listed = client.list_providers().send().await.unwrap().into_inner();
    assert_eq!(listed.total, 1);

    // Without the CA the certificate is not trusted; plain HTTP gets no answer.
    let untrusted = Client::builder(&url).retries(0).build().unwrap();
    assert!(untrusted.list_providers().send().await.is_err());
    let plain = Client::builder(&server.url).retries(0).build().unwrap();
    assert!(plain.list_providers().send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_retried_across_a_restart_and_posts_are_not() {
    let mut server = TestServer::start();
    let patient = Client::builder(&server.url)
        .retries(8)
        .backoff(Duration::from_millis(200), Duration::from_millis(500))
        .build()
        .unwrap();
    let impatient = Client::builder(&server.url).retries(0).build().unwrap();
    common::put(&server, "openai", &json!({})).await;

    assert!(server.stop());
    let read = tokio::spawn(async move { patient.get_provider().provider("openai").send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Not safe to repeat, so sent once: it fails while the server is down.
    let add: bifrost_providers::types::AddProviderRequest =
        serde_json::from_value(json!({"provider": "groq"})).unwrap();
    assert!(impatient.add_provider().body(add).send().await.is_err());
    server.restart();

    let shown = read
        .await
        .unwrap()
        .expect("the read succeeded once the server was back");
    assert_eq!(shown.into_inner().name, "openai");
}
