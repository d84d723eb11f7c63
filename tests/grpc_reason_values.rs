//! Regression (found in review): ServerLayer copied the raw deadline headers, unbounded and
//! unescaped, into the call token's reason, and so into the `grpc-message` sent back, even
//! when the policy ignored them as invalid. Only values that parse are shown now.
#![cfg(feature = "grpc")]

use std::future::Ready;
use std::task::{Context, Poll};
use std::time::Duration;

use cancel_token::grpc::ServerLayer;
use cancel_token::http::OnInvalid;
use cancel_token::CancelToken;
use tower_layer::Layer;
use tower_service::Service;

#[derive(Clone)]
struct Never;
impl Service<http::Request<()>> for Never {
    type Response = http::Response<http_body_util::Empty<bytes::Bytes>>;
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Self::Response, Self::Error>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        unreachable!("the call is answered by the layer")
    }
}

#[test]
fn ignored_garbage_header_ends_up_whole_in_the_status_message() {
    let policy = ServerLayer::policy()
        .max(Duration::ZERO)
        .on_invalid(OnInvalid::Ignore);
    let mut service = ServerLayer::new(CancelToken::new())
        .deadline(policy)
        .layer(Never);
    let garbage = "\"x".repeat(4000); // 8000 bytes, quotes included
    let request = http::Request::builder()
        .header("grpc-timeout", garbage.as_str())
        .body(())
        .unwrap();
    let response = futures_lite::future::block_on(service.call(request)).unwrap();
    let message = response.headers().get("grpc-message").unwrap();
    println!(
        "grpc-status {:?}, grpc-message is {} bytes",
        response.headers().get("grpc-status"),
        message.len()
    );
    assert!(
        message.len() < 1000,
        "the ignored 8000-byte header was echoed back"
    );
}
