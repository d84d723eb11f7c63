//! Malformed `grpc-timeout` values sent by a real tonic client (the header set by hand) to a
//! real tonic server under a `ServerLayer`: rejected with `INVALID_ARGUMENT` without calling
//! the method, or ignored (only the server's cap applies), and never a panic.
#![cfg(feature = "grpc")]

mod support_grpc;

use std::time::Duration;

use cancel_token::grpc::ServerLayer;
use cancel_token::http::{DeadlinePolicy, OnInvalid};
use cancel_token::{CancelToken, ReasonKind};
use http::HeaderValue;
use support_grpc::{bounded, TestServer, WorkRequest};
use tonic::Code;

/// Each malformed value, and what makes it so.
fn bad_values() -> Vec<(&'static str, HeaderValue)> {
    vec![
        ("empty", HeaderValue::from_static("")),
        ("no unit", HeaderValue::from_static("250")),
        ("bad unit", HeaderValue::from_static("250x")),
        ("unit only", HeaderValue::from_static("m")),
        ("9 digits", HeaderValue::from_static("123456789m")),
        (
            "20 digits",
            HeaderValue::from_static("99999999999999999999S"),
        ),
        ("negative", HeaderValue::from_static("-5m")),
        ("plus sign", HeaderValue::from_static("+5m")),
        ("decimal", HeaderValue::from_static("1.5S")),
        (
            "non-ASCII",
            HeaderValue::from_bytes("5µ".as_bytes()).unwrap(),
        ),
        (
            "non-ASCII digits",
            HeaderValue::from_bytes("٣m".as_bytes()).unwrap(),
        ),
        ("inner space", HeaderValue::from_static("5 m")),
        ("tab", HeaderValue::from_static("5\tm")),
        ("repeated", HeaderValue::from_static("1S")),
    ]
}

/// A request that carries `grpc-timeout: value`, or two of them for "repeated".
fn request_with(what: &str, value: &HeaderValue) -> tonic::Request<WorkRequest> {
    let mut request = tonic::Request::new(WorkRequest { millis: 1 });
    let headers = request.metadata_mut().as_mut();
    headers.insert("grpc-timeout", value.clone());
    if what == "repeated" {
        headers.append("grpc-timeout", HeaderValue::from_static("2S"));
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_mode_answers_invalid_argument_without_calling_the_method() {
    let mut server = TestServer::start(ServerLayer::new(CancelToken::new())).await;
    let mut client = server.client().await;
    for (what, value) in bad_values() {
        let status = bounded(what, client.work(request_with(what, &value)))
            .await
            .expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert!(
            status.message().starts_with("invalid grpc-timeout header"),
            "{what}: {status:?}"
        );
        eprintln!("{what}: {}", status.message());
        assert!(server.no_call(), "{what}: the method was called");
    }
    // The server is still up and serving.
    let value = HeaderValue::from_static("5S");
    bounded("a good call", client.work(request_with("", &value)))
        .await
        .unwrap();
    let seen = server.next_call().await;
    assert_eq!(seen.timeout.as_deref(), Some("5S"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_mode_runs_the_call_under_the_cap_only() {
    let cap = Duration::from_secs(5);
    let policy = ServerLayer::policy().max(cap).on_invalid(OnInvalid::Ignore);
    let layer = ServerLayer::new(CancelToken::new()).deadline(policy);
    let mut server = TestServer::start(layer).await;
    let mut client = server.client().await;
    for (what, value) in bad_values() {
        let done = bounded(what, client.work(request_with(what, &value)))
            .await
            .unwrap_or_else(|status| panic!("{what}: {status:?}"));
        assert_eq!(done.into_inner().millis, 1, "{what}");
        let seen = server.next_call().await;
        let deadline = seen.token().deadline().expect("the cap applies");
        assert!(deadline <= seen.arrived + cap, "{what}");
        assert!(
            deadline + Duration::from_secs(1) > seen.arrived + cap,
            "{what}"
        );
        assert!(!seen.token().is_triggered(), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_mode_takes_the_offset_off_a_valid_header_beside_a_bad_one() {
    bounded("the test", async {
        // Both headers read: the bad `grpc-timeout` is ignored, and `connect-timeout-ms`
        // (350 ms) less the offset (100 ms) comes before the cap (300 ms), as it would with
        // no bad header beside it. (The server once took the cap here.)
        let policy = DeadlinePolicy::new()
            .max(Duration::from_millis(300))
            .on_invalid(OnInvalid::Ignore);
        let layer = ServerLayer::new(CancelToken::new())
            .deadline(policy)
            .deadline_offset(Duration::from_millis(100));
        let mut server = TestServer::start(layer).await;
        let mut raw = server.raw_client();
        let mut request = request_with("", &HeaderValue::from_static("soon"));
        request.get_mut().millis = 60_000;
        let headers = request.metadata_mut().as_mut();
        headers.insert("connect-timeout-ms", HeaderValue::from_static("350"));
        let call = tokio::spawn(async move { raw.work(request).await });

        let seen = server.next_call().await;
        let deadline = seen.token().deadline().expect("a deadline");
        assert!(deadline <= seen.arrived + Duration::from_millis(250));
        bounded("the call's token", seen.token().wait()).await;
        let reason = seen.token().reason().unwrap();
        assert_eq!(reason.kind(), ReasonKind::Timeout);
        assert_eq!(
            reason.message(),
            Some(
                "the caller's deadline of 350ms, less the server's offset of 100ms, elapsed \
                 (connect-timeout-ms: 350)"
            )
        );
        let status = bounded("the call", call).await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_mode_without_a_cap_runs_the_call_without_a_deadline() {
    let policy = ServerLayer::policy().on_invalid(OnInvalid::Ignore);
    let layer = ServerLayer::new(CancelToken::new()).deadline(policy);
    let mut server = TestServer::start(layer).await;
    let mut client = server.client().await;
    let value = HeaderValue::from_static("soon");
    bounded("the call", client.work(request_with("", &value)))
        .await
        .unwrap();
    let seen = server.next_call().await;
    assert_eq!(seen.token().deadline(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_valid_values_neither_panic_nor_overflow() {
    let mut server = TestServer::start(ServerLayer::new(CancelToken::new())).await;
    let mut client = server.client().await;

    // The largest the header can say: about 11,000 years, a deadline far away or "never".
    let value = HeaderValue::from_static("99999999H");
    bounded("the call", client.work(request_with("", &value)))
        .await
        .unwrap();
    let seen = server.next_call().await;
    assert!(!seen.token().is_triggered());

    // Zero: the deadline has passed when the call arrives; the method is never called.
    let mut raw = server.raw_client();
    let value = HeaderValue::from_static("0n");
    let status = bounded("the call", raw.work(request_with("", &value)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(server.no_call());
    let reason = cancel_token::grpc::reason_from_status(&status).unwrap();
    assert_eq!(reason.kind(), ReasonKind::Timeout);
}
