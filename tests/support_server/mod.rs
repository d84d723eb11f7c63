//! Real servers and a real disconnecting client for the server-side tests of the `http`
//! feature (`http_server_scope.rs`, `http_axum.rs`): hyper and axum on tokio, listening on
//! 127.0.0.1, an endless streaming body, and a raw TCP client that reads part of a response
//! and hangs up.

// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::error::Error;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cancel_token::CancelToken;
use futures_core::Stream;
use http_body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::support_http::{bounded, ms, stream_chunk, stream_prefix_ok, LIMIT};

/// Serves `service` with hyper's HTTP/1.1 server on 127.0.0.1, a task per connection, until
/// the test's runtime stops.
pub async fn serve_hyper<S, B>(service: S) -> SocketAddr
where
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Serves `app` with `axum::serve` on 127.0.0.1 until the test's runtime stops.
pub async fn serve_axum(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, app).into_future());
    addr
}

/// An endless body stream: chunk `i` ([`stream_chunk`]) every 10 ms.
pub fn ticks() -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    futures_lite::stream::unfold(0usize, |i| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((Ok(Bytes::from(stream_chunk(i))), i + 1))
    })
}

/// [`ticks`] as body frames.
pub fn tick_frames() -> impl Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static {
    futures_lite::StreamExt::map(ticks(), |chunk| chunk.map(Frame::data))
}

/// A raw HTTP/1.1 client: GETs `path`, reads the response head and the body until `needle`
/// has arrived, then closes the socket. Returns when it closed it.
pub async fn read_until_then_hang_up(addr: SocketAddr, path: &str, needle: &str) -> Instant {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !contains(&received, needle.as_bytes()) {
        let read = bounded(LIMIT, "reading the response", socket.read(&mut buf))
            .await
            .unwrap();
        assert!(read > 0, "the server closed first: {received:?}");
        received.extend_from_slice(&buf[..read]);
    }
    assert!(
        received.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    drop(socket);
    Instant::now()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// GETs `path` from `addr` with reqwest: the response head.
pub async fn http_get(client: &reqwest::Client, addr: SocketAddr, path: &str) -> reqwest::Response {
    bounded(
        LIMIT,
        path,
        client.get(format!("http://{addr}{path}")).send(),
    )
    .await
    .unwrap_or_else(|err| panic!("GET {path}: {err}"))
}

/// The next request token a handler sent.
pub async fn next_token(tokens: &mut mpsc::UnboundedReceiver<CancelToken>) -> CancelToken {
    bounded(LIMIT, "a handler's token", tokens.recv())
        .await
        .expect("the server is running")
}

/// Two clients hang up mid-body on `/stream` (an endless [`ticks`] body whose handler sends
/// its request token to `tokens`): a raw socket closed after three chunks, and a reqwest
/// response dropped after three chunks. Each time the request's token must fire as
/// [`assert_fires_on_leave`] says, and not before.
pub async fn hang_up_mid_body(
    addr: SocketAddr,
    client: &reqwest::Client,
    tokens: &mut mpsc::UnboundedReceiver<CancelToken>,
    server: &CancelToken,
) {
    let left_at = read_until_then_hang_up(addr, "/stream", &stream_chunk(2)).await;
    let token = next_token(tokens).await;
    assert_fires_on_leave(&token, left_at, "response body", server).await;

    let mut response = http_get(client, addr, "/stream").await;
    let token = next_token(tokens).await;
    let mut received = Vec::new();
    while received.len() < 3 * stream_chunk(0).len() {
        let chunk = bounded(LIMIT, "a chunk", response.chunk()).await.unwrap();
        received.extend_from_slice(&chunk.expect("the body goes on"));
    }
    assert!(stream_prefix_ok(&received));
    assert!(
        !token.is_triggered(),
        "the handler returned, the body streams"
    );
    drop(response);
    assert_fires_on_leave(&token, Instant::now(), "response body", server).await;
}

/// How soon after the client went away the request's token must fire (the bound).
pub const FIRES_WITHIN: Duration = Duration::from_millis(500);

/// Waits for `token` (a request's token) to fire after the client went away at `left_at`;
/// checks the bound, that the reason is `ReasonKind::Dropped` with a message containing
/// `what`, and that `server` was left alone.
pub async fn assert_fires_on_leave(
    token: &CancelToken,
    left_at: Instant,
    what: &str,
    server: &CancelToken,
) {
    bounded(LIMIT, what, token.wait()).await;
    let latency = left_at.elapsed();
    let reason = token.reason().unwrap();
    eprintln!(
        "{what}: the request's token fired {:.2} ms after the client left ({reason})",
        ms(latency)
    );
    assert!(latency < FIRES_WITHIN, "{what}: fired after {latency:?}");
    assert_eq!(reason.kind(), cancel_token::ReasonKind::Dropped, "{reason}");
    assert!(reason.to_string().contains(what), "{what}: {reason}");
    assert_eq!(token.triggered_token().as_ref(), Some(token));
    assert!(!server.is_triggered());
}

/// A plain-HTTP client that ignores any proxy settings of the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}
