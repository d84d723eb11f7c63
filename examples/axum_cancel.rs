//! Request tokens in an axum server: each request gets a token of its own that fires when its
//! client goes away (mid-body too) or when the server shuts down, and a cancelled request is
//! answered with `503` and the reason. The example starts the server on 127.0.0.1, drives it
//! with reqwest, prints what happened, and exits.
//!
//! Run it with `cargo run --example axum_cancel --features tower`.
//!
//! - `ScopeLayer::new(shutdown)` gives every request a child of the shutdown token, in the
//!   request's extensions (`Extension<CancelToken>` in a handler), triggered with
//!   `ReasonKind::Dropped` when the response future or body is dropped early.
//! - `CancelLayer::from_extensions().responding(503)` cuts a request whose token fires and
//!   answers it with the reason. It is infallible over axum's infallible router, which is what
//!   `Router::layer` requires (the plain `CancelLayer` fails with a boxed error).

use std::future::IntoFuture;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use cancel_token::http::{CancelLayer, ScopeLayer};
use cancel_token::CancelToken;
use tokio::sync::mpsc;

/// A report of ten sections, made by a producer task that holds the request's token: it stops
/// when the client stops reading, instead of running all ten steps for nobody.
async fn report(Extension(token): Extension<CancelToken>) -> Body {
    let (sections, received) = mpsc::channel::<Bytes>(1);
    tokio::spawn(async move {
        for step in 1..=10 {
            let work = tokio::time::sleep(Duration::from_millis(50)); // a slow query
            if let Err(cancelled) = token.run(work).await {
                println!("   producer stopped at step {step} of 10: {cancelled}");
                return;
            }
            let _ = sections
                .send(Bytes::from(format!("section {step}\n")))
                .await;
        }
        println!("   producer ran all 10 steps");
    });
    // The body streams the sections; it ends when the producer does.
    let stream = futures_lite::stream::unfold(received, |mut received| async move {
        let section = received.recv().await?;
        Some((Ok::<_, std::io::Error>(section), received))
    });
    Body::from_stream(stream)
}

/// Works for `ms` milliseconds, unless the layer cuts it first.
async fn work(Path(ms): Path<u64>) -> String {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("done after {ms} ms\n")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shutdown = CancelToken::named("shutdown");
    // `Router::layer`: the last call is the outermost layer, so the scope's token is in the
    // extensions when the cancel layer looks for it.
    let app = Router::new()
        .route("/report", get(report))
        .route("/work/{ms}", get(work))
        .layer(CancelLayer::from_extensions().responding(StatusCode::SERVICE_UNAVAILABLE))
        .layer(ScopeLayer::new(shutdown.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(axum::serve(listener, app).into_future());
    let client = reqwest::Client::builder().no_proxy().build()?;

    println!("1. a client reads the whole report:");
    let text = client
        .get(format!("{base}/report"))
        .send()
        .await?
        .text()
        .await?;
    println!("   received {} sections", text.lines().count());

    println!("2. a client reads two sections and hangs up:");
    let mut response = client.get(format!("{base}/report")).send().await?;
    for _ in 0..2 {
        if let Some(section) = response.chunk().await? {
            print!("   received {}", String::from_utf8_lossy(&section));
        }
    }
    drop(response);
    tokio::time::sleep(Duration::from_millis(100)).await; // let the producer say why it stopped

    println!("3. the server shuts down while a request works:");
    let request = tokio::spawn(client.get(format!("{base}/work/5000")).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.trigger_with("server stopping");
    let response = request.await??;
    println!(
        "   {}: {}",
        response.status(),
        response.text().await?.trim_end()
    );
    Ok(())
}
