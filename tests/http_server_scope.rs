//! `scope_response` in a real hyper server on tokio (127.0.0.1), against real clients (reqwest
//! and a raw TCP socket): a request's token covers the response body, so a client that hangs
//! up mid-body triggers it with `ReasonKind::Dropped` within 500 ms, whether the body is
//! writing (a chunk every 10 ms) or quiet (waiting for its producer); a body read to its end
//! leaves it alone; a server token reaches it.
#![cfg(all(feature = "http", feature = "http-body", feature = "tower"))]

mod support_http;
mod support_server;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use cancel_token::http::scope_response;
use cancel_token::CancelToken;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use support_http::{bounded, stream_chunk, LIMIT};
use support_server::{
    assert_fires_on_leave, client, hang_up_mid_body, http_get, next_token, read_until_then_hang_up,
    serve_hyper, tick_frames,
};
use tokio::sync::mpsc;

/// Three endpoints under `scope_response`, each handing its token to the test:
/// `/done` (a short body), `/stream` (endless, a chunk every 10 ms) and `/quiet` (one chunk,
/// then nothing until the token fires).
async fn server(
    server_token: &CancelToken,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<CancelToken>) {
    let (tokens_tx, tokens) = mpsc::unbounded_channel();
    let server_token = server_token.clone();
    let addr = serve_hyper(hyper::service::service_fn(
        move |request: http::Request<hyper::body::Incoming>| {
            let tokens_tx = tokens_tx.clone();
            scope_response(&server_token, move |token| async move {
                tokens_tx.send(token.clone()).unwrap();
                let body: BoxBody<Bytes, Infallible> = match request.uri().path() {
                    "/stream" => StreamBody::new(tick_frames()).boxed(),
                    "/quiet" => {
                        let first = futures_lite::stream::once(Ok(Bytes::from(stream_chunk(0))));
                        // The producer has nothing more to say until the token fires.
                        let rest = futures_lite::stream::once_future(async move {
                            token.wait().await;
                            Ok(Bytes::from("stopped\n"))
                        });
                        let frames = futures_lite::StreamExt::map(
                            futures_lite::StreamExt::chain(first, rest),
                            |chunk| chunk.map(hyper::body::Frame::data),
                        );
                        StreamBody::new(frames).boxed()
                    }
                    _ => Full::new(Bytes::from("done")).boxed(),
                };
                Ok::<_, Infallible>(http::Response::new(body))
            })
        },
    ))
    .await;
    (addr, tokens)
}

#[tokio::test]
async fn a_client_hanging_up_mid_body_triggers_the_request_token() {
    let server_token = CancelToken::named("server");
    let (addr, mut tokens) = server(&server_token).await;
    let client = client();

    // A body read to its end leaves the token alone.
    let response = http_get(&client, addr, "/done").await;
    assert_eq!(response.text().await.unwrap(), "done");
    let done = next_token(&mut tokens).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!done.is_triggered(), "{:?}", done.reason());

    // A raw socket, then reqwest, hang up while the body is being written.
    hang_up_mid_body(addr, &client, &mut tokens, &server_token).await;

    // A quiet body: nothing is being written when the client leaves; the server sees the
    // socket close by itself.
    let left_at = read_until_then_hang_up(addr, "/quiet", &stream_chunk(0)).await;
    let token = next_token(&mut tokens).await;
    assert_fires_on_leave(&token, left_at, "response body", &server_token).await;

    // The server token reaches a request whose body is streaming.
    let response = http_get(&client, addr, "/quiet").await;
    let token = next_token(&mut tokens).await;
    server_token.trigger_with("server stopping");
    let text = bounded(LIMIT, "the rest of /quiet", response.text())
        .await
        .unwrap();
    assert_eq!(text, format!("{}stopped\n", stream_chunk(0)));
    assert_eq!(token.triggered_token(), Some(server_token.clone()));
    assert!(
        done.is_triggered(),
        "request tokens are children of the server's"
    );
}
