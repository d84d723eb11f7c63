//! Regression (found in review): `ServerLayer` copied the raw deadline headers, unbounded and
//! unescaped, into the call token's reason, and so into the `grpc-message` sent back, even
//! when the policy ignored them as invalid. Only values that parse are shown now.
//!
//! A real tonic server under a `ServerLayer` that ignores bad headers, called by a bare hyper
//! HTTP/2 client (tonic's channel would time a `grpc-timeout` itself) that sends an
//! 8000-byte garbage `grpc-timeout`.
#![cfg(feature = "grpc")]

mod support_grpc;

use std::time::Duration;

use cancel_token::grpc::{self, ServerLayer};
use cancel_token::http::{DeadlinePolicy, OnInvalid};
use cancel_token::{CancelToken, ReasonKind};
use http::HeaderValue;
use support_grpc::{bounded, TestServer, WorkRequest};
use tonic::Code;

/// Work that outlasts every test.
const FOREVER: WorkRequest = WorkRequest { millis: 60_000 };

/// 8000 bytes a header may carry, and no deadline header can parse: quotes (which a status
/// message must escape) and letters.
fn garbage() -> HeaderValue {
    HeaderValue::from_str(&"\"x".repeat(4000)).unwrap()
}

/// A request for `FOREVER` with the garbage `grpc-timeout`, and `also` beside it.
fn request(also: Option<(&'static str, &'static str)>) -> tonic::Request<WorkRequest> {
    let mut request = tonic::Request::new(FOREVER);
    let headers = request.metadata_mut().as_mut();
    headers.insert("grpc-timeout", garbage());
    if let Some((name, value)) = also {
        headers.insert(name, HeaderValue::from_static(value));
    }
    request
}

/// Fails unless `text` is short and holds none of the garbage.
fn assert_clean(what: &str, text: &str) {
    assert!(
        text.len() < 200 && !text.contains('"') && !text.contains("xx"),
        "{what} holds the ignored header ({} bytes): {:.120}",
        text.len(),
        text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ignored_garbage_header_stays_out_of_the_answer() {
    bounded("the test", async {
        // A cap of zero: the call is due on arrival, and the layer answers it unserved.
        let policy = ServerLayer::policy()
            .max(Duration::ZERO)
            .on_invalid(OnInvalid::Ignore);
        let layer = ServerLayer::new(CancelToken::new()).deadline(policy);
        let mut server = TestServer::start(layer).await;
        let mut client = server.raw_client();

        let status = bounded("the call", client.work(request(None)))
            .await
            .unwrap_err();
        eprintln!("{:?}: {:?}", status.code(), status.message());
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert_clean("grpc-message", status.message());
        assert_eq!(
            status.message(),
            "cancellation requested by token call: the server's limit of 0ns elapsed"
        );
        assert!(server.no_call(), "the method was called");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_method_and_the_caller_see_the_valid_header_beside_the_garbage() {
    bounded("the test", async {
        // Both deadline headers read: the garbage `grpc-timeout` is ignored, and the call runs
        // under `connect-timeout-ms`, shorter than the cap.
        let policy = DeadlinePolicy::new()
            .max(Duration::from_secs(5))
            .on_invalid(OnInvalid::Ignore);
        let layer = ServerLayer::new(CancelToken::new()).deadline(policy);
        let mut server = TestServer::start(layer).await;
        let mut client = server.raw_client();
        let call = tokio::spawn(async move {
            client
                .work(request(Some(("connect-timeout-ms", "300"))))
                .await
        });

        let expected = "the caller's deadline of 300ms elapsed (connect-timeout-ms: 300)";
        let seen = server.next_call().await;
        bounded("the call's token", seen.token().wait()).await;
        let reason = seen.token().reason().unwrap();
        eprintln!("the method's token: {reason:?}");
        assert_eq!(reason.kind(), ReasonKind::Timeout);
        let message = reason.message().unwrap();
        assert_clean("the call token's reason", message);
        assert_eq!(message, expected);

        let status = bounded("the call", call).await.unwrap().unwrap_err();
        eprintln!("{:?}: {:?}", status.code(), status.message());
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert_clean("grpc-message", status.message());
        assert_eq!(
            status.message(),
            format!("cancellation requested by token call: {expected}")
        );
        let reason = grpc::reason_from_status(&status).unwrap();
        assert_eq!(reason.kind(), ReasonKind::Timeout);
    })
    .await;
}
