//! The suite's leak check itself: it must fire when a secret does show. A key's `name` is shown
//! in clear, so a secret also sent as a name is a leak the check has to catch when the server
//! is dropped.

mod common;

use common::{TestServer, put};
use serde_json::json;

#[tokio::test]
async fn the_leak_check_catches_a_secret_in_a_response() {
    let server = TestServer::start();
    let secret = "sk-leak-check-canary-0123456789";
    let body = json!({"keys": [{"name": secret, "value": {"value": secret}}]});
    let (status, shown) = put(&server, "openai", &body).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["keys"][0]["name"], secret);

    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(server)))
        .expect_err("the leak check let a secret in a response pass");
    let message = caught.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains(secret) && message.contains("leaked into a response"),
        "{message}"
    );
}

#[tokio::test]
async fn the_leak_check_knows_credentials_outside_secret_fields() {
    // Each credential is also sent where it shows in clear (a header that carries none), so a
    // check that did not collect credential headers and URL user-info would let it pass.
    for credential in [
        json!({"extra_headers": {"x-api-key": "header-canary-0123456789", "x-echo": "header-canary-0123456789"}}),
        json!({"base_url": "https://user:userinfo-canary-0123456789@llm.example.com",
               "extra_headers": {"x-echo": "userinfo-canary-0123456789"}}),
    ] {
        let server = TestServer::start();
        let body = json!({"keys": [], "network_config": credential});
        let (status, shown) = put(&server, "openai", &body).await;
        assert_eq!(status, 200, "{shown}");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(server)))
            .expect_err("the leak check let a credential in a response pass");
        let message = caught.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("canary-0123456789"), "{message}");
    }
}
