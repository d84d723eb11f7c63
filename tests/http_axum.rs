//! The tower layers in a real axum 0.8 server on tokio (127.0.0.1), against reqwest and a raw
//! TCP socket:
//!
//! - `CancelLayer::responding` is accepted by `Router::layer` as it is (the plain layer's boxed
//!   error is not), answers a request cancelled in flight or refused after a trigger with
//!   `503` and the reason, and never calls the handler of a refused request.
//! - `ScopeLayer` gives each handler its own token (`Extension<CancelToken>`), triggered with
//!   `ReasonKind::Dropped` within 500 ms when the client goes away while the handler runs or
//!   mid-body, and by the server token for every request in flight.
//! - The two stacked: the server token cuts a request with a `503` that names it.
#![cfg(all(feature = "http", feature = "http-body", feature = "tower"))]

mod support_http;
mod support_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Router};
use cancel_token::http::{send, CancelLayer, ScopeLayer};
use cancel_token::CancelToken;
use futures_lite::future::zip;
use support_http::{bounded, ms, LIMIT};
use support_server::{
    assert_fires_on_leave, client, hang_up_mid_body, http_get, next_token, serve_axum, ticks,
    FIRES_WITHIN,
};
use tokio::sync::mpsc;

// ----------------------------------------------------------------------------- CancelLayer

/// How many times the handlers started, and how many of their futures were dropped unfinished.
#[derive(Clone, Default)]
struct Counts {
    started: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

/// Counts a drop of the handler future that holds it.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

async fn ok(State(counts): State<Counts>) -> &'static str {
    counts.started.fetch_add(1, Ordering::SeqCst);
    "ok"
}

/// Never answers on its own.
async fn slow(State(counts): State<Counts>) -> &'static str {
    let _dropped = DropCount(counts.dropped.clone());
    counts.started.fetch_add(1, Ordering::SeqCst);
    std::future::pending().await
}

#[tokio::test]
async fn cancel_layer_responding_answers_cancelled_requests_in_axum() {
    let shutdown = CancelToken::named("shutdown");
    let counts = Counts::default();
    let app = Router::new()
        .route("/ok", get(ok))
        .route("/slow", get(slow))
        .with_state(counts.clone())
        .layer(CancelLayer::new(shutdown.clone()).responding(StatusCode::SERVICE_UNAVAILABLE));
    let addr = serve_axum(app).await;
    let client = client();

    let response = http_get(&client, addr, "/ok").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");

    // Cancelled in flight: the handler future is dropped, the client gets 503 and the reason.
    let request = client.get(format!("http://{addr}/slow")).send();
    let trigger = async {
        while counts.started.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        shutdown.trigger_with("server stopping");
        Instant::now()
    };
    let (response, triggered_at) = bounded(LIMIT, "GET /slow", zip(request, trigger)).await;
    let answered = triggered_at.elapsed();
    let response = response.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        response.text().await.unwrap(),
        "cancellation requested by token shutdown: server stopping\n"
    );
    eprintln!(
        "axum: 503 answered {:.2} ms after the trigger",
        ms(answered)
    );
    assert!(answered < FIRES_WITHIN, "answered after {answered:?}");
    assert_eq!(counts.dropped.load(Ordering::SeqCst), 1);

    // Refused after the trigger: the handler is never called.
    let response = http_get(&client, addr, "/ok").await;
    assert_eq!(response.status(), 503);
    assert!(response.text().await.unwrap().contains("server stopping"));
    assert_eq!(counts.started.load(Ordering::SeqCst), 2);
}

// ----------------------------------------------------------------------------- ScopeLayer

type Tokens = mpsc::UnboundedSender<CancelToken>;

/// Tells the test its token's name and state.
async fn hello(State(tokens): State<Tokens>, Extension(token): Extension<CancelToken>) -> String {
    tokens.send(token.clone()).unwrap();
    format!("{:?} {}", token.name(), token.is_triggered())
}

/// Works until its token fires, then says why.
async fn wait(
    State(tokens): State<Tokens>,
    Extension(token): Extension<CancelToken>,
) -> impl IntoResponse {
    tokens.send(token.clone()).unwrap();
    token.wait().await;
    let reason = token.reason().unwrap();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("stopped: {reason}"),
    )
}

/// An endless body, a chunk every 10 ms.
async fn stream(State(tokens): State<Tokens>, Extension(token): Extension<CancelToken>) -> Body {
    tokens.send(token).unwrap();
    Body::from_stream(ticks())
}

fn scoped_app(tokens: Tokens) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/wait", get(wait))
        .route("/stream", get(stream))
        .with_state(tokens)
}

#[tokio::test]
async fn scope_layer_gives_each_axum_handler_a_token_that_fires_when_its_client_leaves() {
    let server = CancelToken::named("server");
    let (tokens_tx, mut tokens) = mpsc::unbounded_channel();
    let app = scoped_app(tokens_tx).layer(ScopeLayer::new(server.clone()));
    let addr = serve_axum(app).await;
    let client = client();

    // The handler sees its own token, untriggered; a completed request leaves it alone.
    let response = http_get(&client, addr, "/hello").await;
    assert_eq!(response.text().await.unwrap(), "Some(\"request\") false");
    let hello_token = next_token(&mut tokens).await;
    assert_ne!(hello_token, server);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!hello_token.is_triggered());

    // The client gives up while the handler runs: the response future is dropped.
    let user = CancelToken::named("user");
    let request = send(&user, || client.get(format!("http://{addr}/wait")).send());
    let leave = async {
        let token = next_token(&mut tokens).await;
        user.trigger_with("closed the tab");
        (token, Instant::now())
    };
    let (result, (token, left_at)) = bounded(LIMIT, "GET /wait", zip(request, leave)).await;
    assert!(result.unwrap_err().is_cancelled());
    assert_fires_on_leave(&token, left_at, "request handler", &server).await;

    // A raw socket, then reqwest, hang up mid-body: the response body is dropped.
    hang_up_mid_body(addr, &client, &mut tokens, &server).await;

    // The server token reaches every request in flight, each with a token of its own.
    let requests: Vec<_> = (0..3)
        .map(|_| tokio::spawn(client.get(format!("http://{addr}/wait")).send()))
        .collect();
    let mut in_flight = Vec::new();
    for _ in 0..3 {
        in_flight.push(next_token(&mut tokens).await);
    }
    assert!(in_flight.iter().all(|token| !token.is_triggered()));
    assert!(in_flight[0] != in_flight[1] && in_flight[1] != in_flight[2]);
    server.trigger_with("server stopping");
    for request in requests {
        let response = bounded(LIMIT, "GET /wait", request).await.unwrap().unwrap();
        assert_eq!(response.status(), 503);
        let text = response.text().await.unwrap();
        assert_eq!(text, "stopped: server stopping");
    }
    for token in in_flight.iter().chain([&hello_token]) {
        assert_eq!(token.triggered_token().as_ref(), Some(&server));
    }
}

#[tokio::test]
async fn scope_layer_and_a_responding_cancel_layer_stack_in_axum() {
    let server = CancelToken::named("server");
    let (tokens_tx, mut tokens) = mpsc::unbounded_channel();
    // `Router::layer`: the last call is the outermost, so the scope's token is in the request
    // extensions when the cancel layer looks for it.
    let app = scoped_app(tokens_tx)
        .layer(CancelLayer::from_extensions().responding(StatusCode::SERVICE_UNAVAILABLE))
        .layer(ScopeLayer::new(server.clone()));
    let addr = serve_axum(app).await;
    let client = client();

    let request = client.get(format!("http://{addr}/wait")).send();
    let trigger = async {
        let token = next_token(&mut tokens).await;
        server.trigger_with("server stopping");
        token
    };
    let (response, token) = bounded(LIMIT, "GET /wait", zip(request, trigger)).await;
    let response = response.unwrap();
    assert_eq!(response.status(), 503);
    // The cancel layer answered first (cancellation wins the tie with the handler's own 503).
    assert_eq!(
        response.text().await.unwrap(),
        "cancellation requested by token server: server stopping\n"
    );
    assert_eq!(token.triggered_token(), Some(server));
}
