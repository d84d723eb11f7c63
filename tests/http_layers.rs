//! Deterministic tests of the server-side pieces with stand-in services and bodies (no
//! network): when `ScopedBody` and `scope_response` leave a request's token alone (a body that
//! ends, fails or is empty; a handler that fails), which reason says what was dropped, and how
//! `CancelLayer::responding` and `ScopeLayer` treat the inner service's errors and an outer
//! layer's token. The same pieces in real servers are in `http_server_scope.rs` and
//! `http_axum.rs`.
#![cfg(all(feature = "http", feature = "http-body", feature = "tower"))]

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll};

use bytes::Bytes;
use cancel_token::http::{scope_response, CancelLayer, ScopeLayer, ScopedBody};
use cancel_token::{CancelToken, Cancelled, ReasonKind};
use futures_lite::future::block_on;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use tower_layer::Layer;
use tower_service::Service;

/// One data frame, then an error.
struct Failing(bool);

impl Body for Failing {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let first = std::mem::replace(&mut self.0, false);
        Poll::Ready(Some(if first {
            Ok(Frame::data(Bytes::from("part")))
        } else {
            Err(io::Error::other("disk failed"))
        }))
    }
}

#[test]
fn a_scoped_body_that_ends_fails_or_is_empty_leaves_its_token_alone() {
    // Polled until `is_end_stream` says it ended, never to its `None` (as hyper does).
    let token = CancelToken::new();
    let mut body = ScopedBody::new(token.clone(), Full::new(Bytes::from("all")));
    let frame = block_on(body.frame()).unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "all");
    assert!(body.is_end_stream());
    assert_eq!(body.token(), None, "ended: nothing left to guard");
    drop(body);
    assert!(!token.is_triggered());

    // Failed on its own: the error passes through untouched.
    let token = CancelToken::new();
    let mut body = ScopedBody::new(token.clone(), Failing(true));
    assert!(block_on(body.frame()).unwrap().is_ok());
    assert_eq!(body.token(), Some(&token), "mid-body: still guarded");
    let err = block_on(body.frame()).unwrap().unwrap_err();
    assert_eq!(err.to_string(), "disk failed");
    drop(body);
    assert!(!token.is_triggered());

    // Empty: ended before it was polled.
    let token = CancelToken::new();
    drop(ScopedBody::new(token.clone(), Empty::<Bytes>::new()));
    assert!(!token.is_triggered());

    // Dropped mid-body: fired, saying so.
    let token = CancelToken::named("request");
    let mut body = ScopedBody::new(token.clone(), Failing(true));
    assert!(block_on(body.frame()).unwrap().is_ok());
    drop(body);
    let err = token.raise_if_triggered().unwrap_err();
    assert_eq!(err.reason().kind(), ReasonKind::Dropped);
    assert_eq!(
        err.to_string(),
        "cancellation requested by token request: the response body was dropped before it ended (client gone)"
    );
}

#[test]
fn scope_response_fires_for_a_dropped_handler_and_not_for_a_failed_one() {
    let server = CancelToken::named("server");
    let (tx, rx) = mpsc::channel();

    let tokens = tx.clone();
    let pending = scope_response(&server, move |token| {
        tokens.send(token).unwrap();
        std::future::pending::<Result<http::Response<Empty<Bytes>>, io::Error>>()
    });
    drop(pending);
    let reason = rx.recv().unwrap().reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Dropped);
    assert!(reason.to_string().contains("request handler"), "{reason}");

    let tokens = tx.clone();
    let failed = scope_response(&server, move |token| {
        tokens.send(token).unwrap();
        async { Err::<http::Response<Empty<Bytes>>, _>(io::Error::other("bad gateway")) }
    });
    assert_eq!(block_on(failed).unwrap_err().to_string(), "bad gateway");
    assert!(!rx.recv().unwrap().is_triggered());

    // Read to the end through a multi-frame body.
    let read = scope_response(&server, move |token| {
        tx.send(token).unwrap();
        let frames = futures_lite::stream::iter(
            ["a", "b"].map(|s| Ok::<_, Infallible>(Frame::data(Bytes::from(s)))),
        );
        async { Ok::<_, Infallible>(http::Response::new(StreamBody::new(frames))) }
    });
    let body = block_on(read).unwrap().into_body();
    assert_eq!(block_on(body.collect()).unwrap().to_bytes(), "ab");
    assert!(!rx.recv().unwrap().is_triggered());
    assert!(!server.is_triggered());
}

#[test]
fn responding_passes_the_inner_services_errors_through() {
    let token = CancelToken::named("shutdown");
    let inner = tower::service_fn(|request: http::Request<&'static str>| async move {
        match *request.body() {
            "fail" => Err(io::Error::other("inner failure")),
            _ => Ok(http::Response::new(Full::new(Bytes::from("ok")))),
        }
    });
    let mut service = CancelLayer::new(token.clone())
        .responding(http::StatusCode::GATEWAY_TIMEOUT)
        .layer(inner);
    let ok = block_on(service.call(http::Request::new("ok"))).unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.extensions().get::<Cancelled>().is_none());
    let err: io::Error = block_on(service.call(http::Request::new("fail"))).unwrap_err();
    assert_eq!(err.to_string(), "inner failure");

    token.trigger_with("deadline of 300ms elapsed");
    let answer = block_on(service.call(http::Request::new("fail"))).unwrap();
    assert_eq!(answer.status(), 504);
    let cancelled = answer.extensions().get::<Cancelled>().unwrap();
    assert_eq!(cancelled.token(), &token);
    let expected = "cancellation requested by token shutdown: deadline of 300ms elapsed\n";
    assert_eq!(
        answer.body().size_hint().exact(),
        Some(expected.len() as u64)
    );
    let text = block_on(answer.into_body().collect()).unwrap().to_bytes();
    assert_eq!(text, expected);
}

#[test]
fn scope_layer_links_an_outer_token_and_passes_errors_through() {
    let server = CancelToken::named("server");
    let (tx, rx) = mpsc::channel();
    let inner = tower::service_fn(move |request: http::Request<()>| {
        tx.send(request.extensions().get::<CancelToken>().cloned().unwrap())
            .unwrap();
        async { Err::<http::Response<Empty<Bytes>>, _>(io::Error::other("refused")) }
    });
    let mut service = ScopeLayer::new(server.clone()).layer(inner);

    let outer = CancelToken::named("deadline");
    let mut request = http::Request::new(());
    request.extensions_mut().insert(outer.clone());
    let err = block_on(service.call(request)).unwrap_err();
    assert_eq!(err.to_string(), "refused");
    let token = rx.recv().unwrap();
    assert_eq!(token.name(), Some("request"));
    assert!(
        !token.is_triggered(),
        "a failed request leaves its token alone"
    );
    outer.trigger_with("300ms elapsed");
    assert_eq!(token.triggered_token(), Some(outer));
    assert!(!server.is_triggered());
}

/// Under an outer token, a request's token is still named `request`, and triggered by the
/// server token and by the outer one.
#[test]
fn under_an_outer_token_the_request_token_is_still_named_request() {
    use tower_layer::Layer;
    use tower_service::Service;

    let (tx, rx) = std::sync::mpsc::channel();
    let handler = tower::service_fn(move |request: http::Request<()>| {
        tx.send(request.extensions().get::<CancelToken>().cloned().unwrap())
            .unwrap();
        async {
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<
                bytes::Bytes,
            >::new()))
        }
    });
    let server = CancelToken::named("server");
    let mut service = cancel_token::http::ScopeLayer::new(server.clone()).layer(handler);
    let mut request = http::Request::new(());
    let outer = CancelToken::named("outer");
    request.extensions_mut().insert(outer.clone());
    let response = futures_lite::future::block_on(service.call(request)).unwrap();
    let token = rx.recv().unwrap();
    assert_eq!(token.name(), Some("request"));
    outer.trigger_with("outer gave up");
    assert_eq!(token.triggered_token(), Some(outer));
    drop(response);
}
