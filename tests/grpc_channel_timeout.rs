//! Regression (found in review): when the channel's own `Endpoint::timeout`, shorter than the
//! token's deadline, failed a call with `tonic::TimeoutExpired`, `ClientLayer` took it for the
//! channel's timer of the `grpc-timeout` the layer had written, and held the call until the
//! token's deadline, however far off. It now waits for the token only when the token's
//! deadline is due within the header's margin.
//!
//! Both tests run a real tonic `Channel` under a `ClientLayer` against a real tonic server
//! whose method does not answer for a minute: only a timer can end the call.
#![cfg(feature = "grpc")]

mod support_grpc;

use std::time::{Duration, Instant};

use cancel_token::grpc::{self, ClientLayer, ServerLayer};
use cancel_token::http::parse_grpc_timeout;
use cancel_token::{CancelToken, ReasonKind};
use http::HeaderValue;
use support_grpc::{bounded, ms, TestServer, WorkRequest, WorkerClient};
use tonic::transport::Channel;
use tonic::Code;

/// Work that outlasts every test.
const FOREVER: WorkRequest = WorkRequest { millis: 60_000 };

/// A client on `channel` whose every call is cut by `token`.
fn client_with_token(
    channel: Channel,
    token: &CancelToken,
) -> WorkerClient<grpc::ClientService<Channel>> {
    let layered = tower::ServiceBuilder::new()
        .layer(ClientLayer::with_token(token.clone()))
        .service(channel);
    WorkerClient::new(layered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_channel_timeout_fails_the_call_at_once_and_leaves_the_token_alone() {
    bounded("the test", async {
        let channel_timeout = Duration::from_millis(100);
        let mut server = TestServer::start(ServerLayer::new(CancelToken::new())).await;
        let channel = server
            .channel_with(|endpoint| endpoint.timeout(channel_timeout))
            .await;
        let token = CancelToken::named_with_timeout("client", Duration::from_secs(30));
        let mut client = client_with_token(channel, &token);

        let started = Instant::now();
        // The old bug held the call for the token's 30 s: `bounded` fails it after 10 s.
        let status = bounded("the call", client.work(FOREVER)).await.unwrap_err();
        let took = started.elapsed();
        eprintln!("the call failed after {:.1} ms: {status:?}", ms(took));

        // The channel's own error, as tonic reports a `TimeoutExpired`.
        assert_eq!(status.code(), Code::Cancelled, "{status:?}");
        assert_eq!(status.message(), "Timeout expired", "{status:?}");
        assert!(
            took >= channel_timeout,
            "failed before the channel's timeout: {took:?}"
        );
        assert!(
            took < Duration::from_secs(5),
            "the channel's {channel_timeout:?} elapsed, but the call failed only after {took:?}"
        );
        // The layer only watches its token: a channel's timeout is not the token's deadline.
        assert!(!token.is_triggered(), "{:?}", token.reason());

        // The server got the token's deadline, not the channel's, and saw its client go.
        let seen = server.next_call().await;
        let header = seen.timeout.as_deref().expect("a grpc-timeout");
        let sent = parse_grpc_timeout(&HeaderValue::from_str(header).unwrap()).unwrap();
        assert!(sent > Duration::from_secs(29), "grpc-timeout: {header}");
        bounded("the call's token", seen.token().wait()).await;
        let reason = seen.token().reason().unwrap();
        assert_eq!(reason.kind(), ReasonKind::Dropped, "{reason}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_token_deadline_fails_the_call_with_deadline_exceeded() {
    bounded("the test", async {
        // The channel's timer for the `grpc-timeout` the layer wrote (the token's remaining
        // time less the 5 ms margin) usually fires first, and the layer then waits for the
        // token; the server's answer to the same deadline (tonic's server times the header
        // too, and `ServerLayer` answers a due deadline itself) can come first on a busy
        // machine. Either way the call fails with `DEADLINE_EXCEEDED`.
        let mut server = TestServer::start(ServerLayer::new(CancelToken::new())).await;
        let channel = server
            .channel_with(|endpoint| endpoint.timeout(Duration::from_secs(20)))
            .await;

        for round in 0..3 {
            let token = CancelToken::named_with_timeout("client", Duration::from_millis(300));
            let deadline = token.deadline().unwrap();
            let mut client = client_with_token(channel.clone(), &token);

            let status = bounded("the call", client.work(FOREVER)).await.unwrap_err();
            let failed = Instant::now();
            eprintln!(
                "round {round}: {:.1} ms after the token's deadline: {status:?}",
                ms(failed.saturating_duration_since(deadline))
            );
            assert_eq!(status.code(), Code::DeadlineExceeded, "{round}: {status:?}");
            let tokens = "cancellation requested by token client: deadline of 300ms elapsed";
            if status.message() == tokens {
                assert!(
                    failed >= deadline,
                    "{round}: failed before the token's deadline"
                );
            } else {
                assert!(
                    status.message().contains("the caller's deadline of "),
                    "{round}: {status:?}"
                );
            }
            let reason = grpc::reason_from_status(&status).unwrap();
            assert_eq!(reason.kind(), ReasonKind::Timeout, "{round}");

            bounded("the token", token.wait()).await;
            assert_eq!(
                token.reason().unwrap().kind(),
                ReasonKind::Timeout,
                "{round}"
            );

            let seen = server.next_call().await;
            bounded("the call's token", seen.token().wait()).await;
            let reason = seen.token().reason().unwrap();
            assert!(
                matches!(reason.kind(), ReasonKind::Timeout | ReasonKind::Dropped),
                "{round}: {reason}"
            );
        }
    })
    .await;
}
