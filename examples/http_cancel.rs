//! Cancelling real HTTP requests with one token: a request in flight, a download mid-body,
//! and a retry loop in its back-off, against a small local server this example starts
//! itself (127.0.0.1 only, no internet); then the server side: a hyper handler whose token
//! fires when its client goes away.
//!
//! Run it with `cargo run --example http_cancel --features http`.

use std::time::{Duration, Instant};

use cancel_token::http::{retry, scope, send, CancelError, Retry};
use cancel_token::CancelToken;
use futures_lite::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A tiny HTTP/1.1 server: `/slow` answers after 10 s, `/stream` sends a chunk every 50 ms
/// forever, `/busy` is always 503.
async fn serve(listener: TcpListener) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let Ok(read) = socket.read(&mut request).await else {
                return;
            };
            let head = String::from_utf8_lossy(&request[..read]);
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let _ = respond(&mut socket, &path).await;
        });
    }
}

async fn respond(socket: &mut TcpStream, path: &str) -> std::io::Result<()> {
    match path {
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
        }
        "/stream" => {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await?;
            loop {
                socket.write_all(b"6\r\nchunk\n\r\n").await?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        _ => {
            socket
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .await
        }
    }
}

/// Triggers `token` with `why` after `delay`, from a plain thread.
fn trigger_after(token: &CancelToken, delay: Duration, why: &'static str) {
    let token = token.clone();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        token.trigger_with(why);
    });
}

#[tokio::main]
async fn main() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(serve(listener));
    let client = reqwest::Client::new();

    // 1. A request in flight: the server would answer in 10 s; the user gives up at 200 ms.
    let token = CancelToken::named("request");
    trigger_after(&token, Duration::from_millis(200), "user pressed stop");
    let started = Instant::now();
    let result = send(&token, || client.get(format!("{base}/slow")).send()).await;
    match result {
        Err(CancelError::Cancelled(cancelled)) => {
            println!(
                "1. request stopped after {:?}: {cancelled}",
                started.elapsed()
            )
        }
        other => println!("1. unexpected: {other:?}"),
    }

    // 2. A download mid-body: chunks arrive until the token triggers.
    let token = CancelToken::named("download");
    let response = send(&token, || client.get(format!("{base}/stream")).send())
        .await
        .expect("the response head");
    trigger_after(&token, Duration::from_millis(180), "disk quota reached");
    let mut body = token.stream(response.bytes_stream());
    let mut received = 0;
    while let Some(chunk) = body.next().await {
        received += chunk.expect("a chunk").len();
    }
    let why = token.raise_if_triggered().unwrap_err();
    println!("2. download stopped after {received} bytes: {why}");

    // 3. A retry loop against a server that stays busy, with a 5 s back-off, cancelled in
    //    its first sleep.
    let token = CancelToken::named("sync");
    trigger_after(
        &token,
        Duration::from_millis(100),
        "app going to background",
    );
    let started = Instant::now();
    let outcome = retry(
        &token,
        [Duration::from_secs(5); 3],
        |outcome: &Result<reqwest::Response, reqwest::Error>| match outcome {
            Ok(response) if response.status().is_server_error() => Retry::Retry,
            _ => Retry::Done,
        },
        || client.get(format!("{base}/busy")).send(),
    )
    .await;
    let cancelled = outcome.expect_err("cancelled in the back-off");
    println!(
        "3. retry loop stopped after {:?}: {cancelled}",
        started.elapsed()
    );

    // 4. The client is still healthy: a new request works normally.
    let token = CancelToken::new();
    let status = send(&token, || client.get(format!("{base}/busy")).send())
        .await
        .expect("a response")
        .status();
    println!("4. the same client answers the next request: {status}");

    // 5. Server side: a hyper server whose handler hands its `scope` token to background
    //    work. The client gives up after 150 ms; the server drops the handler future, and
    //    the token fires with ReasonKind::Dropped.
    let shutdown = CancelToken::named("server");
    let (handler_tokens, mut tokens) = tokio::sync::mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let addr = listener.local_addr().expect("an address");
    let server_shutdown = shutdown.clone();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("a connection");
        let service = hyper::service::service_fn(move |_request| {
            let handler_tokens = handler_tokens.clone();
            scope(&server_shutdown, move |token| async move {
                let _ = handler_tokens.send(token);
                tokio::time::sleep(Duration::from_secs(10)).await; // a slow report
                Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("report")))
            })
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
            .await;
    });
    let client_gives_up = CancelToken::named("impatient client");
    trigger_after(
        &client_gives_up,
        Duration::from_millis(150),
        "took too long",
    );
    let _ = send(&client_gives_up, || {
        client.get(format!("http://{addr}/report")).send()
    })
    .await;
    let token = tokens.recv().await.expect("the handler's token");
    token.wait().await;
    println!(
        "5. the handler's token fired when the client left: {}",
        token.reason().expect("triggered")
    );
}
