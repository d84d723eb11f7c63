//! Regression (found in review): when the channel's own `Endpoint::timeout` (shorter than the
//! token's deadline) failed a call with `tonic::TimeoutExpired`, `ClientLayer` took it for the
//! header's timer and waited for the token's deadline, however far off. It now waits only when
//! the token's deadline is due within the margin.
#![cfg(feature = "grpc")]

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cancel_token::grpc::ClientLayer;
use cancel_token::CancelToken;
use tower_layer::Layer;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Stands for a tonic Channel whose `Endpoint::timeout(10ms)` fired (tonic's GrpcTimeout takes
/// the min of that and the request's grpc-timeout, and fails with `TimeoutExpired`).
#[derive(Clone)]
struct ChannelTimedOut;

impl Service<http::Request<()>> for ChannelTimedOut {
    type Response = http::Response<http_body_util::Empty<bytes::Bytes>>;
    type Error = BoxError;
    type Future = Ready<Result<Self::Response, BoxError>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        ready(Err(Box::new(tonic::TimeoutExpired(()))))
    }
}

#[test]
fn channel_timeout_shorter_than_token_waits_for_the_token() {
    let _ = Infallible::clone;
    let token = CancelToken::with_timeout(Duration::from_secs(3));
    let mut service = ClientLayer::with_token(token.clone()).layer(ChannelTimedOut);
    let started = Instant::now();
    let result = futures_lite::future::block_on(service.call(http::Request::new(())));
    let took = started.elapsed();
    println!("took {took:?}, error: {:?}", result.as_ref().err());
    assert!(
        took < Duration::from_secs(1),
        "the channel's timeout fired at once, but the call returned only after {took:?} \
         (when the token's own deadline fired)"
    );
}
