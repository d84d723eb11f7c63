//! A production-style axum server shut down gracefully on SIGTERM or SIGINT.
//!
//! - Each request gets its own token, a child of the shutdown's hard token, and is counted in
//!   the shutdown's tracker while its handler runs.
//! - The first signal stops accepting: the listener is closed, so new connections are refused,
//!   and requests in flight get the grace period to finish.
//! - When the grace period ends, the hard token cancels what is left; a cancelled handler
//!   answers `503` with the reason ("grace period of 2s elapsed").
//! - A second signal forces the shutdown at once.
//! - The report ("shutdown drained in ...", or "shutdown forced after ... with 1 task left:
//!   ...") is printed at exit.
//!
//! ```text
//! cargo run --example graceful_shutdown --features signal            # grace period of 2 s
//! cargo run --example graceful_shutdown --features signal -- 500     # grace period of 500 ms
//! curl 127.0.0.1:<port>/work/300       # answers after 300 ms, unless cancelled
//! kill -TERM <pid>
//! ```
//!
//! It prints `listening on <address>` first, and `started <path>` when a handler starts;
//! `tests/graceful_shutdown.rs` drives it with real requests and real signals.

use std::future::IntoFuture;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cancel_token::signal::SHUTDOWN_SIGNALS;
use cancel_token::Shutdown;

/// A handler that works for `ms` milliseconds under the request's token: 200 when done, 503
/// with the reason when the shutdown cancels it first.
async fn work(State(shutdown): State<Shutdown>, Path(ms): Path<u64>) -> Response {
    let token = shutdown.hard().child_named("request");
    println!("started /work/{ms}");
    let outcome = token
        .run(tokio::time::sleep(Duration::from_millis(ms)))
        .await;
    match outcome {
        Ok(()) => (StatusCode::OK, format!("done after {ms} ms\n")).into_response(),
        Err(cancelled) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cancelled: {cancelled}\n"),
        )
            .into_response(),
    }
}

/// Counts every request in the shutdown's tracker while its handler runs.
async fn track(State(shutdown): State<Shutdown>, request: Request, next: Next) -> Response {
    let _counted = shutdown.tracker().enter();
    next.run(request).await
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let grace_ms = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(2000);
    let shutdown = Shutdown::new(Duration::from_millis(grace_ms));
    // The first SIGTERM/SIGINT requests the shutdown, the second forces it. The handler runs
    // on the registration's own thread, never in the signal handler.
    let _signals = shutdown.on_signals(&SHUTDOWN_SIGNALS)?;

    let app = Router::new()
        .route("/work/{ms}", get(work))
        .layer(middleware::from_fn_with_state(shutdown.clone(), track))
        .with_state(shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);

    // axum stops accepting (and drops the listener) once the soft token fires, then waits for
    // the connections in flight.
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.soft().clone().wait_owned())
        .into_future();
    let server = tokio::spawn(server);

    let report = shutdown.wait().await;
    // A cancelled handler answers at once; give its response a moment to be written.
    let _ = tokio::time::timeout(Duration::from_millis(100), server).await;
    println!("{report}");
    Ok(())
}
