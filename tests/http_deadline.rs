//! Deadlines in request headers across a real axum server on 127.0.0.1, with reqwest, a
//! hyper client behind `PropagateDeadlineLayer`, and a raw TCP client for bytes no client
//! library would send:
//!
//! - the client writes its token's remaining time, rounded down; the server's request token
//!   gets a deadline no later than the client's, and triggers at it with `Timeout`;
//! - the server's cap bounds every request, with a header or without;
//! - every class of bad header (empty, no unit, unknown unit, not a digit, whitespace,
//!   negative, too many digits, not ASCII, repeated) is a `400` naming the header under
//!   `OnInvalid::Reject`, and under `OnInvalid::Ignore` runs with the cap only; no panic.
#![cfg(all(feature = "http", feature = "http-body", feature = "tower"))]

mod support_http;
mod support_server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use cancel_token::http::{
    send, DeadlineHeaders, DeadlinePolicy, HeaderError, OnInvalid, PropagateDeadlineLayer,
    ScopeLayer,
};
use cancel_token::{CancelToken, ReasonKind};
use support_http::{bounded, LIMIT};
use support_server::{client, next_token, serve_axum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tower::ServiceExt;
use tower_layer::Layer;

const CAP: Duration = Duration::from_secs(20);

/// The margin the clients here take off for the trip: the default 5 ms covers an idle
/// machine, but a first request on two busy cores was seen to take 9 ms.
const MARGIN: Duration = Duration::from_millis(100);

/// A server whose `/` answers `400` with a rejected header's error, or `200` with the
/// milliseconds left before its request token's deadline ("none" without one), and sends
/// each request's token to the returned receiver. `/slow` waits for its token.
async fn server(on_invalid: OnInvalid) -> (SocketAddr, mpsc::UnboundedReceiver<CancelToken>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let slow_tx = tx.clone();
    let app = Router::new()
        .route(
            "/",
            get(
                move |Extension(token): Extension<CancelToken>,
                      rejected: Option<Extension<HeaderError>>| async move {
                    tx.send(token.clone()).unwrap();
                    if let Some(Extension(err)) = rejected {
                        return (StatusCode::BAD_REQUEST, err.to_string());
                    }
                    let left = token
                        .deadline()
                        .map(|deadline| deadline.saturating_duration_since(Instant::now()));
                    let text = left.map_or("none".to_owned(), |left| left.as_millis().to_string());
                    (StatusCode::OK, text)
                },
            ),
        )
        .route(
            "/slow",
            get(move |Extension(token): Extension<CancelToken>| async move {
                slow_tx.send(token.clone()).unwrap();
                token.wait().await;
                (
                    StatusCode::GATEWAY_TIMEOUT,
                    token.reason().unwrap().to_string(),
                )
            }),
        )
        .layer(
            ScopeLayer::new(CancelToken::named("server"))
                .deadline(DeadlinePolicy::new().max(CAP).on_invalid(on_invalid)),
        );
    (serve_axum(app).await, rx)
}

#[tokio::test]
async fn a_deadline_crosses_with_reqwest_and_send() {
    let (addr, mut tokens) = server(OnInvalid::Reject).await;
    let client = client();
    let token = CancelToken::with_timeout(Duration::from_millis(1500));
    let url = format!("http://{addr}/");
    let response = send(&token, || {
        client
            .get(&url)
            .headers(DeadlineHeaders::new().margin(MARGIN).header_map(&token))
            .send()
    })
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let left: u64 = response.text().await.unwrap().parse().unwrap();
    assert!(left <= 1500, "the server was given {left} ms of 1500");

    let server_token = next_token(&mut tokens).await;
    let server_deadline = server_token.deadline().unwrap();
    assert!(
        server_deadline <= token.deadline().unwrap(),
        "the callee's deadline is no later than the caller's"
    );
}

#[tokio::test]
async fn the_request_token_triggers_at_the_callers_deadline() {
    let (addr, mut tokens) = server(OnInvalid::Reject).await;
    let client = client();
    let start = Instant::now();
    let response = bounded(
        LIMIT,
        "a slow request",
        client
            .get(format!("http://{addr}/slow"))
            .header("grpc-timeout", "200m")
            .send(),
    )
    .await
    .unwrap();
    let took = start.elapsed();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(took >= Duration::from_millis(200), "fired after {took:?}");
    let text = response.text().await.unwrap();
    assert!(
        text.contains("the caller's deadline of 200ms elapsed"),
        "{text}"
    );
    let token = next_token(&mut tokens).await;
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Timeout);
}

#[tokio::test]
async fn propagate_layer_writes_the_headers_of_a_hyper_client() {
    let (addr, mut tokens) = server(OnInvalid::Reject).await;
    let hyper_client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let token = CancelToken::with_timeout(Duration::from_secs(3));
    let service = PropagateDeadlineLayer::from_extensions()
        .headers(DeadlineHeaders::new().margin(MARGIN))
        .layer(hyper_client);

    let mut request = http::Request::get(format!("http://{addr}/"))
        .body(http_body_util::Empty::new())
        .unwrap();
    request.extensions_mut().insert(token.clone());
    let response = bounded(LIMIT, "hyper request", service.oneshot(request))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let server_token = next_token(&mut tokens).await;
    assert!(server_token.deadline().unwrap() <= token.deadline().unwrap());
    let left = server_token
        .deadline()
        .unwrap()
        .saturating_duration_since(Instant::now());
    assert!(left <= Duration::from_secs(3) && left > Duration::from_secs(1));
}

#[tokio::test]
async fn the_cap_bounds_every_request() {
    let (addr, mut tokens) = server(OnInvalid::Reject).await;
    for header in [
        None,
        Some(("grpc-timeout", "99999999H")),
        Some(("connect-timeout-ms", "9999999999")),
    ] {
        let mut lines = String::new();
        if let Some((name, value)) = header {
            lines = format!("{name}: {value}\r\n");
        }
        let (status, body) = raw_get(addr, lines.as_bytes()).await;
        assert_eq!(status, 200, "{header:?}: {body}");
        let left: u64 = body.parse().unwrap();
        assert!(left <= CAP.as_millis() as u64, "{header:?} got {left} ms");
        let token = next_token(&mut tokens).await;
        assert!(token.deadline().is_some());
    }
}

/// Every class of bad header value, as raw bytes on the wire.
const BAD: [(&str, &[u8], &str); 11] = [
    ("empty", b"grpc-timeout:\r\n", "the value is empty"),
    ("no unit", b"grpc-timeout: 100\r\n", "the unit is missing"),
    (
        "unknown unit",
        b"grpc-timeout: 5s\r\n",
        "the unit is not one of",
    ),
    ("not a digit", b"connect-timeout-ms: 1.5\r\n", "not a digit"),
    ("inner whitespace", b"grpc-timeout: 5 S\r\n", "not a digit"),
    ("negative", b"grpc-timeout: -5S\r\n", "negative"),
    (
        "negative millis",
        b"connect-timeout-ms: -100\r\n",
        "negative",
    ),
    (
        "too many digits",
        b"grpc-timeout: 123456789S\r\n",
        "too many digits",
    ),
    (
        "overlong millis",
        b"connect-timeout-ms: 99999999999999999999\r\n",
        "too many digits",
    ),
    ("not ascii", b"grpc-timeout: 5\xc2\xb5\r\n", "not ASCII"),
    (
        "repeated",
        b"grpc-timeout: 1S\r\ngrpc-timeout: 2S\r\n",
        "more than once",
    ),
];

#[tokio::test]
async fn bad_headers_are_rejected_with_400() {
    let (addr, mut tokens) = server(OnInvalid::Reject).await;
    for (class, lines, says) in BAD {
        let (status, body) = raw_get(addr, lines).await;
        assert_eq!(status, 400, "{class}: {body}");
        assert!(body.starts_with("invalid "), "{class}: {body}");
        assert!(body.contains(says), "{class}: {body}");
        // The rejected request's token still has the cap: it never gets more.
        let token = next_token(&mut tokens).await;
        let deadline = token.deadline().expect("the cap");
        assert!(deadline <= Instant::now() + CAP, "{class}");
    }
}

#[tokio::test]
async fn bad_headers_are_ignored_when_configured() {
    let (addr, mut tokens) = server(OnInvalid::Ignore).await;
    for (class, lines, _) in BAD {
        let (status, body) = raw_get(addr, lines).await;
        assert_eq!(status, 200, "{class}: {body}");
        let left: u64 = body.parse().unwrap();
        assert!(
            left <= CAP.as_millis() as u64 && left > CAP.as_millis() as u64 - 5_000,
            "{class}: runs under the cap only, got {left} ms"
        );
        next_token(&mut tokens).await;
    }
    // A good header beside a bad one still counts.
    let (status, body) =
        raw_get(addr, b"grpc-timeout: 1500m\r\nconnect-timeout-ms: soon\r\n").await;
    assert_eq!(status, 200);
    let left: u64 = body.parse().unwrap();
    assert!(left <= 1500, "{left}");
}

/// GETs `/` with extra raw header lines over a plain TCP socket; the status and body.
async fn raw_get(addr: SocketAddr, header_lines: &[u8]) -> (u16, String) {
    bounded(LIMIT, "a raw request", async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut request = b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n".to_vec();
        request.extend_from_slice(header_lines);
        request.extend_from_slice(b"\r\n");
        stream.write_all(&request).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text[9..12].parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    })
    .await
}

/// A plain hyper server: the handler that `scope_response` runs applies the policy itself.
#[tokio::test]
async fn a_hyper_handler_applies_the_policy_in_its_scope() {
    let server = CancelToken::named("server");
    let policy = DeadlinePolicy::new().max(CAP);
    let (tx, mut tokens) = mpsc::unbounded_channel();
    let service =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let (tx, policy) = (tx.clone(), policy.clone());
            cancel_token::http::scope_response(&server, move |token| async move {
                tx.send(token.clone()).unwrap();
                let (status, text) = match policy.apply(request.headers(), &token) {
                    Err(err) => (err.status(), err.to_string()),
                    Ok(_) => {
                        token.wait().await;
                        (
                            StatusCode::GATEWAY_TIMEOUT,
                            token.reason().unwrap().to_string(),
                        )
                    }
                };
                let mut response =
                    http::Response::new(http_body_util::Full::new(bytes::Bytes::from(text)));
                *response.status_mut() = status;
                Ok::<_, std::convert::Infallible>(response)
            })
        });
    let addr = support_server::serve_hyper(service).await;

    let (status, body) = raw_get(addr, b"connect-timeout-ms: 50\r\n").await;
    assert_eq!(status, 504, "{body}");
    assert!(
        body.contains("the caller's deadline of 50ms elapsed"),
        "{body}"
    );
    assert_eq!(
        next_token(&mut tokens).await.reason().unwrap().kind(),
        ReasonKind::Timeout
    );

    let (status, body) = raw_get(addr, b"connect-timeout-ms: 0x10\r\n").await;
    assert_eq!(status, 400, "{body}");
    next_token(&mut tokens).await;
}
