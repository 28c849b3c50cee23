//! A proxy that plants a fault between a client and the server: on each request (head and
//! body) on its way in and each response (head and body) on its way out. The conformance tests
//! make faulty servers of it; the configuration-as-code and sync tests a Bifrost gateway (no `ETag`, keys
//! only under `/keys`).

use std::convert::Infallible;
use std::net::SocketAddr;

/// A fault planted between the runner and the server: on the request (head and body) on its
/// way in, and on the response (head and body) on its way out.
pub struct Fault {
    pub request: fn(&mut http::request::Parts),
    pub body: fn(&str) -> String,
    pub response: fn(&http::request::Parts, &mut http::response::Parts),
    pub reply: fn(&str) -> String,
}

/// The body (request or response) of a fault that leaves bodies alone.
pub fn same(body: &str) -> String {
    body.to_string()
}

/// A Bifrost v1.5+ gateway made of this server: no `ETag`, a provider GET shows no keys, and a
/// provider body's `keys` are ignored; keys live under `/keys` only.
pub static BIFROST_V15: Fault = Fault {
    request: |_| {},
    body: |body| match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut members)) => {
            members.remove("keys");
            serde_json::Value::Object(members).to_string()
        }
        _ => body.to_string(),
    },
    response: |_, head| {
        head.headers.remove("etag");
    },
    reply: |body| match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut shown) => {
            if let Some(provider) = shown
                .as_object_mut()
                .filter(|p| p.contains_key("network_config"))
            {
                provider.remove("keys");
            }
            for provider in shown["providers"].as_array_mut().into_iter().flatten() {
                provider.as_object_mut().unwrap().remove("keys");
            }
            shown.to_string()
        }
        Err(_) => body.to_string(),
    },
};

/// A proxy in front of `upstream` that applies `fault` to each exchange.
pub async fn faulty_proxy(upstream: String, fault: &'static Fault) -> SocketAddr {
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = super::http();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let (http, upstream) = (http.clone(), upstream.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let (http, upstream) = (http.clone(), upstream.clone());
                    async move {
                        let (mut parts, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        (fault.request)(&mut parts);
                        let body = (fault.body)(&String::from_utf8_lossy(&body));
                        // The body may have changed length: the client sends its own.
                        parts.headers.remove(http::header::CONTENT_LENGTH);
                        let url = format!("{upstream}{}", parts.uri);
                        let answer = http
                            .request(parts.method.clone(), url)
                            .headers(parts.headers.clone())
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        let mut out = http::Response::builder().status(answer.status());
                        for (k, v) in answer.headers() {
                            out = out.header(k, v);
                        }
                        let bytes = answer.bytes().await.unwrap();
                        let bytes = (fault.reply)(&String::from_utf8_lossy(&bytes)).into_bytes();
                        let (mut head, body) = out
                            .body(Full::new(hyper::body::Bytes::from(bytes)))
                            .unwrap()
                            .into_parts();
                        head.headers.remove(http::header::CONTENT_LENGTH);
                        (fault.response)(&parts, &mut head);
                        Ok::<_, Infallible>(http::Response::from_parts(head, body))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    addr
}
