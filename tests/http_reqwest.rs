//! The `http` feature against a real server with a real client: reqwest under tokio.
//!
//! Every test starts its own HTTP/1.1 server on 127.0.0.1 (tests/support_http), drives reqwest
//! (plain HTTP, no proxy) through `cancel_token::http`, and checks what the server saw: accepts,
//! requests, socket closes and the time they happened, and whether uploads arrived complete.
//! Latencies are printed (`--nocapture`); bounds are generous and only catch hangs and
//! regressions by an order of magnitude.
#![cfg(all(feature = "http", feature = "http-body", feature = "tower"))]

#[path = "common/alloc.rs"]
mod alloc;
mod support_http;
mod support_server;

use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cancel_token::http::{
    find_cancelled, retry, send, CancelBody, CancelError, CancelFutureExt, CancelLayer, Retry,
    WithCancel,
};
use cancel_token::{CancelToken, Cancelled, ReasonKind};

use futures_lite::future::zip;
use futures_lite::StreamExt;
use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame};
use support_http::{
    assert_stopped_by_error, bounded, cut_upload_body, eventually, ms, race_trigger, refused_port,
    stream_chunk, stream_prefix_ok, BodyEvent, CloseKind, SlowBody, TestServer, CLOSE_WITHIN,
    FAST_BODY, FLAKY_OK_BODY, LIMIT,
};
use support_server::{client, serve_hyper};

// Counts the live bytes allocated by threads that opted in, so the random-cancellation loop
// can check that memory stays flat. Threads that did not opt in (the test server, other tests
// running in parallel) are not counted.
#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting::OPTED_IN_THREADS;

// ---------------------------------------------------------------------------------------------

/// GETs `/fast` (tagged) and checks the body byte for byte.
async fn fast_exact(client: &reqwest::Client, server: &TestServer, tag: &str) {
    let url = server.url(&format!("/fast?{tag}"));
    let response = bounded(LIMIT, "GET /fast", client.get(&url).send())
        .await
        .unwrap_or_else(|err| panic!("GET {url}: {err}"));
    assert_eq!(response.status(), 200, "{url}");
    let body = bounded(LIMIT, "read /fast", response.bytes())
        .await
        .unwrap();
    assert_eq!(&body[..], FAST_BODY, "{url}: stale or truncated bytes");
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn pre_triggered_token_never_reaches_the_server() {
    let server = TestServer::start();
    let client = client();
    let token = CancelToken::named("request");
    token.trigger_with("user navigated away");

    // `send`: the closure that would build the request is never called.
    let mut called = false;
    let err = bounded(
        LIMIT,
        "send",
        send(&token, || {
            called = true;
            client.get(server.url("/fast?pre")).send()
        }),
    )
    .await
    .unwrap_err();
    assert!(!called, "send called the closure of a triggered token");
    assert!(err.is_cancelled());
    assert_eq!(err.reason().unwrap().message(), Some("user navigated away"));
    assert_eq!(err.cancelled().unwrap().token(), &token);

    // `with_cancel`: a request future already built is never polled.
    let request = client.get(server.url("/fast?pre-built")).send();
    let err = bounded(LIMIT, "with_cancel", request.with_cancel(&token))
        .await
        .unwrap_err();
    assert!(err.is_cancelled());

    // Give a stray connection time to show up: there must be none.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.accepts(), 0, "a connection reached the server");
    assert_eq!(server.request_count(), 0, "a request reached the server");

    // Control: the same client with a live token does reach this server.
    let live = CancelToken::new();
    let response = bounded(
        LIMIT,
        "live send",
        send(&live, || client.get(server.url("/fast?live")).send()),
    )
    .await
    .unwrap();
    assert_eq!(&response.bytes().await.unwrap()[..], FAST_BODY);
    assert_eq!(server.accepts(), 1);
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn trigger_mid_flight_returns_cancelled_and_closes_the_socket() {
    let server = TestServer::start();
    let client = client();
    let token = CancelToken::named("page");
    let target = "/never?case=mid-flight";

    // The request inside `send` must be gone at the trigger, not when `send` is dropped.
    let request = server.await_then_closed(
        target,
        send(&token, || client.get(server.url(target)).send()),
    );
    let trigger = async {
        assert!(
            eventually(LIMIT, || server.request(target).is_some()).await,
            "the request never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let at = Instant::now();
        assert!(token.trigger_with("user clicked stop"));
        at
    };
    let ((result, returned_at), triggered_at) =
        bounded(LIMIT, "mid-flight", zip(request, trigger)).await;

    let err = result.unwrap_err();
    assert!(err.is_cancelled(), "{err:?}");
    let reason = err.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Manual);
    assert_eq!(reason.message(), Some("user clicked stop"));
    assert!(err.to_string().contains("user clicked stop"), "{err}");
    assert_eq!(err.cancelled().unwrap().token(), &token);
    let returned = returned_at.duration_since(triggered_at);
    assert!(
        returned < Duration::from_secs(1),
        "send returned {returned:?} after the trigger"
    );

    // The socket closes now, while the client (and its pool) is still alive.
    let (close, kind) = server.wait_closed(target, triggered_at).await;
    eprintln!(
        "reqwest mid-flight: send returned {:.2} ms after the trigger, server saw the socket close ({kind:?}) after {:.2} ms",
        ms(returned),
        ms(close)
    );
    assert!(
        close < CLOSE_WITHIN,
        "server saw the close {close:?} after the trigger"
    );
    assert!(matches!(kind, CloseKind::Eof | CloseKind::Reset));
    assert_eq!(server.requests_to("/never"), 1);
    drop(client);
}

/// A storable `WithCancel` triggered from a plain OS thread (no runtime on that thread).
#[tokio::test]
async fn with_cancel_stored_request_triggered_from_a_plain_thread() {
    struct InFlight<'a, F> {
        request: WithCancel<'a, F>,
    }

    let server = TestServer::start();
    let client = client();
    let token = CancelToken::named("stored");
    let target = "/never?case=stored";
    let in_flight = InFlight {
        request: client.get(server.url(target)).send().with_cancel(&token),
    };

    let remote = token.clone();
    let trigger = async {
        assert!(eventually(LIMIT, || server.request(target).is_some()).await);
        let thread = std::thread::spawn(move || {
            let at = Instant::now();
            remote.trigger_with("stopped from a thread");
            at
        });
        // Join without blocking the executor.
        let thread = tokio::task::spawn_blocking(move || thread.join().unwrap());
        thread.await.unwrap()
    };
    let (result, triggered_at) = bounded(LIMIT, "stored", zip(in_flight.request, trigger)).await;
    let err = result.unwrap_err();
    assert_eq!(
        err.reason().unwrap().message(),
        Some("stopped from a thread")
    );
    let (close, _) = server.wait_closed(target, triggered_at).await;
    eprintln!(
        "reqwest with_cancel from a thread: server saw the close after {:.2} ms",
        ms(close)
    );
    assert!(close < CLOSE_WITHIN);
}

#[tokio::test]
async fn trigger_mid_download_stops_the_body_and_the_pool_stays_healthy() {
    let server = TestServer::start();
    let client = client();
    let token = CancelToken::named("download");
    let target = "/stream?case=download";

    let response = bounded(
        LIMIT,
        "GET /stream",
        send(&token, || client.get(server.url(target)).send()),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = token.stream(response.bytes_stream());
    let mut received = Vec::new();
    while received.len() < 3 * stream_chunk(0).len() {
        let chunk = bounded(LIMIT, "next chunk", body.next())
            .await
            .expect("the stream ended by itself")
            .expect("body error before the trigger");
        received.extend_from_slice(&chunk);
    }
    assert!(stream_prefix_ok(&received), "garbled stream bytes");

    let triggered_at = Instant::now();
    token.trigger_with("download aborted");
    assert!(
        bounded(LIMIT, "after trigger", body.next()).await.is_none(),
        "the body went on after the trigger"
    );
    let ended = triggered_at.elapsed();

    // The body was dropped at the trigger: the socket closes while the adapter is still alive.
    let (close, _) = server.wait_closed(target, triggered_at).await;
    eprintln!(
        "reqwest mid-download: body ended {:.2} ms after the trigger, server saw the close after {:.2} ms",
        ms(ended),
        ms(close)
    );
    assert!(close < CLOSE_WITHIN);
    drop(body);

    // The next request on the same client succeeds byte for byte, on another connection.
    fast_exact(&client, &server, "after=download").await;
    let stream_conn = server.request(target).unwrap().conn;
    let fast_conn = server.request("/fast?after=download").unwrap().conn;
    assert_ne!(stream_conn, fast_conn, "the cut connection was reused");
}

/// `CancelBody` over reqwest's own `http_body::Body`: one cancellation error frame, then the
/// end; never a clean end.
#[tokio::test]
async fn cancel_body_over_a_reqwest_response_yields_an_error_not_a_clean_end() {
    let server = TestServer::start();
    let client = client();
    let token = CancelToken::named("body");
    let target = "/stream?case=cancel-body";

    let response = bounded(LIMIT, "GET", client.get(server.url(target)).send())
        .await
        .unwrap();
    let response: http::Response<reqwest::Body> = response.into();
    let mut body = CancelBody::new(token.clone(), response.into_body());
    let mut frames = 0;
    while frames < 3 {
        let frame = bounded(LIMIT, "frame", body.frame())
            .await
            .expect("ended early")
            .expect("error before the trigger");
        if frame.is_data() {
            frames += 1;
        }
    }
    let triggered_at = Instant::now();
    token.trigger_with(ReasonKind::Superseded);
    let err = bounded(LIMIT, "frame after trigger", body.frame())
        .await
        .expect("a clean end after the trigger")
        .expect_err("data after the trigger");
    assert!(err.is_cancelled());
    assert_eq!(err.reason().unwrap().kind(), ReasonKind::Superseded);
    assert!(body.frame().await.is_none(), "ends after the error frame");
    let (close, _) = server.wait_closed(target, triggered_at).await;
    eprintln!(
        "reqwest CancelBody download: server saw the close after {:.2} ms",
        ms(close)
    );
    assert!(close < CLOSE_WITHIN);
    fast_exact(&client, &server, "after=cancel-body").await;
}

/// Uploads: a `CancelBody` cut mid-upload is never recorded as complete, with
/// `Content-Length` or chunked; uncut, the same upload is (the control).
#[tokio::test]
async fn cancelled_upload_is_never_recorded_complete() {
    let server = TestServer::start();
    let client = client();

    // Controls: uncut, both encodings complete.
    for (exact, tag) in [(true, "control-length"), (false, "control-chunked")] {
        let target = format!("/upload?case={tag}");
        let body = SlowBody::new(16, 1024, Duration::from_millis(1), exact);
        let token = CancelToken::new();
        let body = reqwest::Body::wrap(CancelBody::new(token.clone(), body));
        let response = bounded(
            LIMIT,
            "control upload",
            send(&token, || {
                client.post(server.url(&target)).body(body).send()
            }),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "received 16384\n");
        server.assert_upload_complete(&target, exact.then_some(16384));
    }

    for (exact, tag) in [(true, "cut-length"), (false, "cut-chunked")] {
        let target = format!("/upload?case={tag}");
        let token = CancelToken::named("upload");
        // 200 KiB over ~2 s: the trigger lands after a few KiB.
        let (watched, events) = cut_upload_body(&token, exact);
        let body = reqwest::Body::wrap(watched);
        let request = send(&token, || {
            client.post(server.url(&target)).body(body).send()
        });
        let (result, returned_at, triggered_at) = server
            .trigger_mid_upload(&target, 4096, &token, "upload cancelled", request)
            .await;
        let err = result.unwrap_err();
        assert!(err.is_cancelled(), "{tag}: {err:?}");
        assert_eq!(err.reason().unwrap().message(), Some("upload cancelled"));

        let upload = server
            .assert_cut_upload("reqwest", &target, triggered_at, returned_at)
            .await;
        assert!(upload.received < 200 * 1024, "{upload:?}");

        // What the client read from the CancelBody: data, then at most the cancellation error
        // (`send` dropped the request at the trigger, so the client may never have polled the
        // body again), and never a clean end.
        let events = events.lock().unwrap().clone();
        assert!(
            !events.contains(&BodyEvent::End),
            "{tag}: clean end: {events:?}"
        );
        for event in &events[..events.len() - 1] {
            assert!(matches!(event, BodyEvent::Data(_)), "{tag}: {events:?}");
        }
        if let Some(BodyEvent::Error(message)) = events.last() {
            assert!(message.contains("upload cancelled"), "{message}");
        }
    }
    assert_eq!(server.completed_uploads(), 2, "only the two controls");
    fast_exact(&client, &server, "after=uploads").await;
}

/// The client's own error, as reqwest reports a failed upload body, still leads to the
/// `Cancelled` through its chain of sources.
#[tokio::test]
async fn find_cancelled_finds_the_cancellation_inside_reqwest_errors() {
    let server = TestServer::start();
    let client = client();
    let token = CancelToken::named("upload");
    let target = "/upload?case=raw";
    let (watched, events) = cut_upload_body(&token, false);
    let body = reqwest::Body::wrap(watched);
    // No `send`: the raw reqwest future, so the error is reqwest's own.
    let request = client.post(server.url(target)).body(body).send();
    let (result, ..) = server
        .trigger_mid_upload(target, 1, &token, "disk full", request)
        .await;
    let err: reqwest::Error = result.unwrap_err();
    let found = find_cancelled(&err).unwrap_or_else(|| panic!("no Cancelled in {err:?}"));
    assert_eq!(found.reason().message(), Some("disk full"));
    assert_eq!(found.token(), &token);
    // Nobody dropped the request here: the client read the body's one error frame, and it
    // was never told the body ended.
    assert_stopped_by_error(&events.lock().unwrap(), "disk full");

    // Wrapped once more, in an io::Error and in an application error.
    let io_err = io::Error::other(err);
    assert!(find_cancelled(&io_err).is_some());
    let app_err = AppError(Box::new(io_err));
    assert_eq!(
        find_cancelled(&app_err).unwrap().reason().message(),
        Some("disk full")
    );
    assert!(!server.wait_upload_finished(target).await.complete);
}

#[derive(Debug)]
struct AppError(Box<dyn Error + Send + Sync>);

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the app failed")
    }
}

impl Error for AppError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

#[tokio::test]
async fn clients_own_errors_pass_through_distinguishable_from_cancellation() {
    let server = TestServer::start();
    let token = CancelToken::named("live");

    // Connection refused: a port that was bound, then released.
    let port = refused_port();
    let client = client();
    let err = bounded(
        LIMIT,
        "refused",
        send(&token, || {
            client.get(format!("http://127.0.0.1:{port}/fast")).send()
        }),
    )
    .await
    .unwrap_err();
    assert!(!err.is_cancelled(), "{err:?}");
    assert!(err.reason().is_none());
    assert!(find_cancelled(&err).is_none());
    let inner = err.into_inner().expect("the client's error");
    assert!(inner.is_connect(), "{inner:?}");

    // reqwest's own timeout on `/never`.
    let timing_out = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = bounded(
        LIMIT,
        "timeout",
        send(&token, || {
            timing_out.get(server.url("/never?case=timeout")).send()
        }),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    assert!(!err.is_cancelled(), "{err:?}");
    assert!(find_cancelled(&err).is_none());
    let CancelError::Inner(inner) = &err else {
        panic!("{err:?}")
    };
    assert!(inner.is_timeout(), "{inner:?}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(
        !token.is_triggered(),
        "the client's errors do not touch the token"
    );

    // And a client with its own timeout cancelled first: told apart by the type, not by
    // guessing. Its timeout is long, so a stalled machine cannot let it win the race.
    let patient = reqwest::Client::builder()
        .no_proxy()
        .timeout(LIMIT)
        .build()
        .unwrap();
    let cancelled = CancelToken::named("user");
    let request = send(&cancelled, || {
        patient.get(server.url("/never?case=beat-timeout")).send()
    });
    let trigger = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancelled.trigger_with("beat the timeout");
    };
    let (result, ()) = bounded(LIMIT, "cancel before timeout", zip(request, trigger)).await;
    let err = result.unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(
        find_cancelled(&err).unwrap().reason().message(),
        Some("beat the timeout")
    );
}

#[tokio::test]
async fn retry_back_off_of_10s_cancelled_at_50ms_returns_at_once_after_one_attempt() {
    let server = TestServer::with_flaky_failures(1000);
    let client = client();
    let token = CancelToken::named("retry");
    let attempts = AtomicUsize::new(0);
    let retrying = retry(
        &token,
        std::iter::repeat_n(Duration::from_secs(10), 5),
        |outcome: &Result<reqwest::Response, reqwest::Error>| match outcome {
            Ok(response) if response.status() == 503 => Retry::Retry,
            Ok(_) => Retry::Done,
            Err(_) => Retry::Retry,
        },
        || {
            attempts.fetch_add(1, Ordering::SeqCst);
            client.get(server.url("/flaky")).send()
        },
    );
    server
        .assert_retry_cancelled_mid_back_off("reqwest", &token, retrying, tokio::time::sleep)
        .await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retry_without_cancellation_gets_200_after_the_503s() {
    let server = TestServer::with_flaky_failures(3);
    let client = client();
    let token = CancelToken::named("retry");
    let attempts = AtomicUsize::new(0);
    let started = Instant::now();
    let response = bounded(
        LIMIT,
        "retry",
        retry(
            &token,
            std::iter::repeat_n(Duration::from_millis(20), 5),
            |outcome: &Result<reqwest::Response, reqwest::Error>| match outcome {
                Ok(response) if response.status() == 503 => {
                    // Honour the server's Retry-After (0 s here).
                    match response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                    {
                        Some(secs) => Retry::After(Duration::from_secs(secs)),
                        None => Retry::Retry,
                    }
                }
                Ok(_) => Retry::Done,
                Err(_) => Retry::Retry,
            },
            || {
                attempts.fetch_add(1, Ordering::SeqCst);
                client.get(server.url("/flaky")).send()
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..], FLAKY_OK_BODY);
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert_eq!(server.requests_to("/flaky"), 4);
    eprintln!(
        "reqwest retry to 200: 4 attempts in {:.2} ms over {} connection(s)",
        ms(started.elapsed()),
        server.accepts()
    );

    // Back-off exhausted: the last 503 comes back as it is (not an error of ours).
    let server = TestServer::with_flaky_failures(1000);
    let response = bounded(
        LIMIT,
        "retry exhausted",
        retry(
            &token,
            [Duration::from_millis(1); 2],
            |outcome: &Result<reqwest::Response, reqwest::Error>| match outcome {
                Ok(response) if response.status() == 503 => Retry::Retry,
                _ => Retry::Done,
            },
            || client.get(server.url("/flaky")).send(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.requests_to("/flaky"), 3);
}

/// 200 requests to `/stream` or `/never` cut at random points (before the request, while it
/// connects, while it waits for the head, mid-body), each followed by a `/fast` whose body must
/// be exact. Afterwards the server's open connections return to the pool's idle ones, then to
/// zero once the client is dropped, and the memory this thread allocated stays flat.
#[tokio::test]
async fn random_cancellations_leave_no_stale_bytes_and_no_leaks() {
    const WARM_UP: usize = 20;
    const ROUNDS: usize = 200;
    let server = TestServer::start();
    let mut rng = fastrand::Rng::with_seed(0x5eed_6006);
    // One long-lived parent: every request's token is a child, created and dropped.
    let session = CancelToken::named("session");
    // Count this thread's allocations: with the current-thread runtime of `#[tokio::test]`,
    // the client, its connection tasks and the tokens all live here.
    alloc::count_this_thread(true);
    let mut live = Vec::new();
    let mut outcomes = [0usize; 2]; // cut before a response, mid-body
    let mut open_after_loop = 0;
    let started = Instant::now();

    // A warm-up with its own client (lazily allocated runtime and timer structures), then the
    // measured loop with one client; each measured once its client is dropped and the server
    // saw every connection close.
    for (phase, rounds) in [("warm-up", WARM_UP), ("loop", ROUNDS)] {
        let client = client();
        for round in 0..rounds {
            let token = session.child();
            let path = if rng.bool() { "/stream" } else { "/never" };
            let target = format!("{path}?{phase}={round}");
            let delay = Duration::from_micros(rng.u64(0..15_000));
            let request = async {
                match send(&token, || client.get(server.url(&target)).send()).await {
                    Err(err) => {
                        assert!(err.is_cancelled(), "{target}: {err:?}");
                        0
                    }
                    Ok(response) => {
                        let mut body = token.stream(response.bytes_stream());
                        let mut received = Vec::new();
                        while let Some(chunk) = body.next().await {
                            received.extend_from_slice(&chunk.expect("body error"));
                        }
                        assert!(stream_prefix_ok(&received), "{target}: garbled");
                        1
                    }
                }
            };
            outcomes[race_trigger(request, &token, delay, tokio::time::sleep).await] += 1;
            drop(token);
            fast_exact(&client, &server, &format!("{phase}={round}")).await;
        }
        // Cut connections close; only idle pooled ones (the `/fast` one) stay open.
        open_after_loop = server
            .wait_open_at_most(2, &format!("after the {phase}"))
            .await;
        drop(client);
        server
            .wait_open_at_most(0, "after the client was dropped")
            .await;
        // Let the connection tasks see their sockets closed and finish.
        live.push(settled_live().await);
    }
    alloc::count_this_thread(false);
    let elapsed = started.elapsed();
    let growth = live[1] - live[0];
    eprintln!(
        "reqwest random loop: {WARM_UP}+{ROUNDS} rounds in {:.0} ms ({} cut before the response, {} mid-body), {} connections accepted, {open_after_loop} open after the loop, 0 after dropping the client; live bytes {} after the warm-up, {} after the loop (growth {growth})",
        ms(elapsed),
        outcomes[0],
        outcomes[1],
        server.accepts(),
        live[0],
        live[1],
    );
    assert!(
        outcomes[0] > 10 && outcomes[1] > 10,
        "{outcomes:?}: not random enough"
    );
    assert_eq!(server.requests_to("/fast"), WARM_UP + ROUNDS);
    // A leaked child token per round alone would add ~78 KB here; the loop measures ~0.
    assert!(
        growth < 16 * 1024,
        "memory grew by {growth} bytes over {ROUNDS} cancelled requests"
    );
}

/// Live bytes once they stop changing (sampled every 10 ms; at most a second): the connection
/// tasks of dropped requests finish in their own time.
async fn settled_live() -> isize {
    let mut last = alloc::live();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = alloc::live();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

// ---------------------------------------------------------------------------------------------
// Server side: hyper on tokio (tests/support_server).

/// `scope` in a hyper handler: the client going away (its request dropped by `send`) drops
/// the handler future, which triggers the handler's token with `ReasonKind::Dropped`.
#[tokio::test]
async fn scope_triggers_the_handler_token_when_the_client_goes_away() {
    use cancel_token::http::scope;

    let shutdown = CancelToken::named("server");
    let (tokens_tx, mut tokens) = tokio::sync::mpsc::unbounded_channel::<CancelToken>();
    let handler_shutdown = shutdown.clone();
    let addr = serve_hyper(hyper::service::service_fn(
        move |request: http::Request<_>| {
            let tokens_tx = tokens_tx.clone();
            scope(&handler_shutdown, move |token| async move {
                tokens_tx.send(token.clone()).unwrap();
                if request.uri().path() == "/slow" {
                    // Work that only the token can stop early.
                    token.wait().await;
                }
                Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(Bytes::from(
                    "done",
                ))))
            })
        },
    ))
    .await;

    let client = client();
    // A handler that completes leaves its token alone.
    let response = bounded(
        LIMIT,
        "GET /done",
        client.get(format!("http://{addr}/done")).send(),
    )
    .await
    .unwrap();
    assert_eq!(response.text().await.unwrap(), "done");
    let done_token = tokens.recv().await.unwrap();
    assert!(!done_token.is_triggered());

    // The client gives up on a slow request.
    let user = CancelToken::named("user");
    let request = send(&user, || client.get(format!("http://{addr}/slow")).send());
    let server_side = async {
        let handler_token = tokens.recv().await.unwrap();
        assert!(!handler_token.is_triggered());
        let at = Instant::now();
        user.trigger_with("closed the tab");
        handler_token.wait().await;
        (handler_token, at.elapsed())
    };
    let (result, (handler_token, latency)) =
        bounded(LIMIT, "scope", zip(request, server_side)).await;
    assert!(result.unwrap_err().is_cancelled());
    let reason = handler_token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Dropped, "{reason}");
    assert!(!shutdown.is_triggered());
    eprintln!(
        "hyper server on tokio: the handler's token fired {:.2} ms after the client gave up",
        ms(latency)
    );
    assert!(latency < Duration::from_secs(2));

    // A server-wide shutdown reaches every handler's token.
    let request = client.get(format!("http://{addr}/slow")).send();
    let server_side = async {
        let handler_token = tokens.recv().await.unwrap();
        shutdown.trigger_with("server stopping");
        handler_token.wait().await;
        handler_token
    };
    let (response, handler_token) = bounded(LIMIT, "shutdown", zip(request, server_side)).await;
    assert_eq!(
        handler_token.reason().unwrap().message(),
        Some("server stopping")
    );
    assert_eq!(handler_token.triggered_token().unwrap(), shutdown);
    // That handler then finished its response.
    assert_eq!(response.unwrap().text().await.unwrap(), "done");
}

/// `CancelLayer` in front of a real hyper server: a shutdown trigger ends a streaming response
/// with an error the client sees (not a clean end), and a triggered token means the inner
/// service is never called.
#[tokio::test]
async fn cancel_layer_in_a_hyper_server() {
    use tower::ServiceExt;
    use tower_layer::Layer;

    let shutdown = CancelToken::named("shutdown");
    let calls = Arc::new(AtomicUsize::new(0));
    let inner_calls = Arc::clone(&calls);
    let inner = tower::service_fn(move |_request: http::Request<ReqBody>| {
        inner_calls.fetch_add(1, Ordering::SeqCst);
        async {
            // An endless response: a chunk every 10 ms.
            let ticks = futures_lite::stream::unfold(0usize, |i| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let chunk = Frame::data(Bytes::from(stream_chunk(i)));
                Some((Ok::<_, Infallible>(chunk), i + 1))
            });
            Ok::<_, Infallible>(http::Response::new(http_body_util::StreamBody::new(ticks)))
        }
    });
    let service = CancelLayer::new(shutdown.clone()).layer(inner);
    let in_process = service.clone();
    let addr = serve_hyper(hyper::service::service_fn(
        move |request: http::Request<hyper::body::Incoming>| {
            service.clone().oneshot(request.map(BodyExt::boxed))
        },
    ))
    .await;

    let client = client();
    let response = bounded(
        LIMIT,
        "GET",
        client.get(format!("http://{addr}/ticks")).send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = Vec::new();
    while received.len() < 3 * stream_chunk(0).len() {
        received.extend_from_slice(&bounded(LIMIT, "chunk", body.next()).await.unwrap().unwrap());
    }
    assert!(stream_prefix_ok(&received));
    let triggered_at = Instant::now();
    shutdown.trigger_with("server stopping");
    // The client sees the body fail, never a clean end (the chunked body lacks its last
    // chunk).
    let outcome = loop {
        match bounded(LIMIT, "chunk after trigger", body.next()).await {
            Some(Ok(chunk)) => received.extend_from_slice(&chunk),
            other => break other,
        }
    };
    let ended = triggered_at.elapsed();
    assert!(matches!(outcome, Some(Err(_))), "clean end: {outcome:?}");
    eprintln!(
        "CancelLayer: the client saw the body fail {:.2} ms after the shutdown trigger",
        ms(ended)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Triggered: the inner service is never called; hyper closes the connection unanswered.
    let result = bounded(
        LIMIT,
        "GET after shutdown",
        client.get(format!("http://{addr}/ticks")).send(),
    )
    .await;
    assert!(result.is_err(), "{result:?}");
    // In process, the error downcasts to `Cancelled`, like tower's `Elapsed`.
    let err = in_process
        .oneshot(http::Request::new(
            http_body_util::Empty::new()
                .map_err(|never: Infallible| match never {})
                .boxed(),
        ))
        .await
        .unwrap_err();
    let cancelled = err.downcast_ref::<Cancelled>().expect("a boxed Cancelled");
    assert_eq!(cancelled.reason().message(), Some("server stopping"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the inner service was called"
    );
}

/// The request body the tower stack sees: hyper's `Incoming` from the network, or an empty
/// body for an in-process call.
type ReqBody = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;
