//! The owned forms `send_owned` and `with_cancel_owned` spawned on tokio (multi-thread), with
//! reqwest against the real local test server (tests/support_http): they compile as tasks
//! (`Send + 'static`, no borrowed token), complete normally, and a trigger from the test
//! stops the spawned request and closes its socket, as the server sees it, within 500 ms.
#![cfg(all(feature = "http", feature = "http-body", feature = "tower"))]

mod support_http;
mod support_server;

use std::time::{Duration, Instant};

use cancel_token::http::{send_owned, CancelError, CancelFutureExt};
use cancel_token::{CancelToken, ReasonKind};
use support_http::{bounded, eventually, ms, TestServer, CLOSE_WITHIN, FAST_BODY, LIMIT};
use support_server::client;

/// Waits until `target` reached the server, triggers `token`, and checks that the spawned
/// request ends cancelled and its socket closes within [`CLOSE_WITHIN`].
async fn trigger_in_flight<T: std::fmt::Debug>(
    server: &TestServer,
    target: &str,
    token: &CancelToken,
    task: tokio::task::JoinHandle<Result<T, CancelError<reqwest::Error>>>,
) {
    assert!(
        eventually(LIMIT, || server.request(target).is_some()).await,
        "{target}: the request never reached the server"
    );
    let triggered_at = Instant::now();
    assert!(token.trigger_with("user closed the page"));
    let result = bounded(LIMIT, target, task).await.expect("the task ran");
    let err = result.unwrap_err();
    assert!(err.is_cancelled(), "{err:?}");
    assert_eq!(err.reason().unwrap().kind(), ReasonKind::Manual);
    assert_eq!(
        err.reason().unwrap().message(),
        Some("user closed the page")
    );
    let (close, kind) = server.wait_closed(target, triggered_at).await;
    eprintln!(
        "{target}: spawned request stopped, server saw the socket close ({kind:?}) {:.2} ms after the trigger",
        ms(close)
    );
    assert!(
        close < CLOSE_WITHIN,
        "{target}: the server saw the close {close:?} after the trigger"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_owned_is_spawnable_and_stops_on_a_trigger() {
    let server = TestServer::start();
    let client = client();

    // Completes normally as a task.
    let token = CancelToken::named("page");
    let url = server.url("/fast?case=owned");
    let request = client.clone();
    let task = tokio::spawn(send_owned(token.clone(), move || request.get(url).send()));
    let response = bounded(LIMIT, "GET /fast", task).await.unwrap().unwrap();
    assert_eq!(&response.bytes().await.unwrap()[..], FAST_BODY);

    // Stopped in flight by a trigger from the test.
    let target = "/never?case=send-owned";
    let url = server.url(target);
    let request = client.clone();
    let task = tokio::spawn(send_owned(token.clone(), move || request.get(url).send()));
    trigger_in_flight(&server, target, &token, task).await;

    // Already triggered: the spawned request is never built.
    let built = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = built.clone();
    let url = server.url("/fast?case=never-built");
    let task = tokio::spawn(send_owned(token, move || {
        seen.store(true, std::sync::atomic::Ordering::SeqCst);
        client.get(url).send()
    }));
    assert!(bounded(LIMIT, "pre-triggered", task)
        .await
        .unwrap()
        .unwrap_err()
        .is_cancelled());
    assert!(!built.load(std::sync::atomic::Ordering::SeqCst));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(server.request("/fast?case=never-built").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cancel_owned_is_spawnable_and_stops_on_a_trigger() {
    let server = TestServer::start();
    let client = client();

    let token = CancelToken::named("page");
    let request = client.get(server.url("/fast?case=with-owned")).send();
    let task = tokio::spawn(request.with_cancel_owned(token.clone()));
    let response = bounded(LIMIT, "GET /fast", task).await.unwrap().unwrap();
    assert_eq!(&response.bytes().await.unwrap()[..], FAST_BODY);

    let target = "/never?case=with-cancel-owned";
    let request = client.get(server.url(target)).send();
    let task = tokio::spawn(request.with_cancel_owned(token.clone()));
    trigger_in_flight(&server, target, &token, task).await;
}
