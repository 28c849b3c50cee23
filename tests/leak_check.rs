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
