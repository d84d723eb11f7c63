//! Deterministic tests of the `http` feature with stand-in requests, bodies and services: the
//! rules of `send`, `with_cancel`, `retry`, `CancelBody`, `CancelLayer`, `scope`,
//! `CancelError` and `find_cancelled`. The same rules against real clients and a real server
//! are in `http_reqwest.rs` and `http_hyper_smol.rs`.
#![cfg(all(feature = "http", feature = "http-body", feature = "tower"))]

mod common;

use std::convert::Infallible;
use std::error::Error;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cancel_token::http::{
    find_cancelled, retry, scope, send, CancelBody, CancelError, CancelFutureExt, CancelLayer,
    Retry,
};
use cancel_token::{CancelToken, Cancelled, ReasonKind};
use common::{poll_once, poll_with, CountingWaker, Dropped, Polls, Probe, LIMIT};
use http_body::{Body, Frame};
use tower_layer::Layer;
use tower_service::Service;

type Outcome = Result<u16, io::Error>;

fn ready_probe(polls: &Polls, dropped: &Dropped, at: usize, outcome: Outcome) -> Probe<Outcome> {
    Probe::new(polls, dropped, at, outcome)
}

// ----------------------------------------------------------------------------- send

#[test]
fn send_never_builds_the_request_when_the_token_is_triggered() {
    let token = CancelToken::named("page");
    token.trigger_with("closed");
    let built = AtomicUsize::new(0);
    let mut request = Box::pin(send(&token, || {
        built.fetch_add(1, Ordering::SeqCst);
        async { Ok::<u16, io::Error>(200) }
    }));
    let Poll::Ready(Err(err)) = poll_once(&mut request) else {
        panic!("expected a cancellation")
    };
    assert!(err.is_cancelled());
    assert_eq!(err.reason().unwrap().message(), Some("closed"));
    assert_eq!(built.load(Ordering::SeqCst), 0, "nothing was built or sent");
}

#[test]
fn send_passes_the_response_and_the_clients_error_through() {
    let token = CancelToken::new();
    let ok = futures_lite::future::block_on(send(&token, || async { Ok::<_, io::Error>(204) }));
    assert_eq!(ok.unwrap(), 204);
    let err = futures_lite::future::block_on(send(&token, || async {
        Err::<u16, _>(io::Error::from(io::ErrorKind::ConnectionRefused))
    }))
    .unwrap_err();
    assert!(!err.is_cancelled());
    assert_eq!(
        err.into_inner().unwrap().kind(),
        io::ErrorKind::ConnectionRefused
    );
}

#[test]
fn a_trigger_mid_flight_drops_the_request_at_once_and_wakes_the_task() {
    let token = CancelToken::new();
    let (polls, dropped) = (Polls::new(), Dropped::new());
    let waker = CountingWaker::new();
    let mut request = Box::pin(send(&token, || {
        ready_probe(&polls, &dropped, usize::MAX, Ok(200))
    }));
    assert!(poll_with(&mut request, &waker).is_pending());
    token.trigger_with("stop");
    assert_eq!(waker.count(), 1, "the trigger woke the task");
    let Poll::Ready(Err(err)) = poll_with(&mut request, &waker) else {
        panic!("expected a cancellation")
    };
    assert!(err.is_cancelled());
    assert!(
        dropped.get(),
        "the request is dropped by the poll that sees the trigger"
    );
    assert_eq!(polls.get(), 1, "and never polled again");
}

#[test]
fn cancellation_wins_a_tie_with_a_ready_response() {
    let token = CancelToken::new();
    let (polls, dropped) = (Polls::new(), Dropped::new());
    let mut request = ready_probe(&polls, &dropped, 2, Ok(200)).with_cancel(&token);
    let mut request = Box::pin(&mut request);
    assert!(poll_once(&mut request).is_pending());
    token.trigger();
    assert!(matches!(
        poll_once(&mut request),
        Poll::Ready(Err(CancelError::Cancelled(_)))
    ));
    assert_eq!(polls.get(), 1, "the ready response was never polled");
}

/// A request that triggers the token and then fails, as a transport does when the trigger
/// closed its socket.
struct FailsAfterTrigger(CancelToken);

impl Future for FailsAfterTrigger {
    type Output = Outcome;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Outcome> {
        self.0.trigger_with("closed the socket");
        Poll::Ready(Err(io::Error::from(io::ErrorKind::ConnectionReset)))
    }
}

#[test]
fn a_transport_error_after_the_trigger_reads_as_the_cancellation() {
    let token = CancelToken::new();
    let result =
        futures_lite::future::block_on(FailsAfterTrigger(token.clone()).with_cancel(&token));
    let err = result.unwrap_err();
    assert!(err.is_cancelled(), "not the transport error: {err:?}");
    assert_eq!(err.reason().unwrap().message(), Some("closed the socket"));
}

// ----------------------------------------------------------------------------- retry

#[test]
fn retry_stops_at_done_and_returns_the_last_outcome_when_the_backoff_runs_out() {
    let token = CancelToken::new();
    let attempts = AtomicUsize::new(0);
    let result = futures_lite::future::block_on(retry(
        &token,
        [Duration::from_millis(1); 2],
        |_: &Outcome| Retry::Retry,
        || {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Ok::<u16, io::Error>(503) }
        },
    ));
    assert_eq!(result.unwrap(), 503, "the last outcome, as it is");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "one attempt plus one per back-off step"
    );
}

#[test]
fn retry_checks_the_token_before_every_attempt() {
    let token = CancelToken::new();
    let attempts = AtomicUsize::new(0);
    let result = futures_lite::future::block_on(retry(
        &token,
        [Duration::ZERO; 5],
        |_: &Outcome| {
            // The trigger lands exactly as the back-off ends.
            token.trigger_with("enough");
            Retry::Retry
        },
        || {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Ok::<u16, io::Error>(503) }
        },
    ));
    assert!(result.unwrap_err().is_cancelled());
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "nothing more was sent");
}

#[test]
fn a_long_backoff_ends_the_instant_the_token_triggers() {
    let token = CancelToken::new();
    let attempts = Arc::new(AtomicUsize::new(0));
    let trigger = token.clone();
    let counted = attempts.clone();
    let start = Instant::now();
    let triggerer = thread::spawn(move || {
        common::wait_until("the first attempt", LIMIT, || {
            counted.load(Ordering::SeqCst) == 1
        });
        thread::sleep(Duration::from_millis(50));
        trigger.trigger_with("user gave up");
    });
    let result = futures_lite::future::block_on(retry(
        &token,
        [Duration::from_secs(10)],
        |_: &Outcome| Retry::Retry,
        || {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Ok::<u16, io::Error>(503) }
        },
    ));
    triggerer.join().unwrap();
    assert_eq!(
        result.unwrap_err().reason().unwrap().message(),
        Some("user gave up")
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the 10 s sleep was cut short"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failed_outcome_is_dropped_before_sleeping() {
    let token = CancelToken::new();
    let previous: Mutex<Option<Dropped>> = Mutex::new(None);
    let result = futures_lite::future::block_on(retry(
        &token,
        [Duration::from_millis(1)],
        |outcome: &Result<common::DropFlag, io::Error>| {
            if outcome.is_ok() && previous.lock().unwrap().as_ref().is_some_and(|d| !d.get()) {
                Retry::Retry
            } else {
                Retry::Done
            }
        },
        || {
            let mut slot = previous.lock().unwrap();
            if let Some(dropped) = slot.as_ref() {
                assert!(
                    dropped.get(),
                    "the failed response is dropped before the next attempt"
                );
            }
            let dropped = Dropped::new();
            let response = dropped.guard();
            *slot = Some(dropped);
            async move { Ok::<_, io::Error>(response) }
        },
    ));
    assert!(result.is_ok());
}

#[test]
fn retry_after_uses_its_own_delay_and_a_cancellation_is_never_retried() {
    let token = CancelToken::new();
    let attempts = AtomicUsize::new(0);
    let start = Instant::now();
    let result = futures_lite::future::block_on(retry(
        &token,
        [Duration::from_secs(3600)],
        |outcome: &Outcome| match outcome {
            Ok(503) => Retry::After(Duration::from_millis(5)),
            _ => Retry::Done,
        },
        || {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<u16, io::Error>(if attempt == 0 { 503 } else { 200 }) }
        },
    ));
    assert_eq!(result.unwrap(), 200);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "the server's delay, not the back-off's"
    );

    let token = CancelToken::new();
    let attempts = AtomicUsize::new(0);
    let result = futures_lite::future::block_on(retry(
        &token,
        [Duration::ZERO; 3],
        |_: &Outcome| Retry::Retry,
        || {
            attempts.fetch_add(1, Ordering::SeqCst);
            FailsAfterTrigger(token.clone())
        },
    ));
    assert!(result.unwrap_err().is_cancelled());
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "a cancellation is never retried"
    );
}

// ----------------------------------------------------------------------------- CancelBody

/// A body that yields its frames, then stays pending (or ends), recording its drop.
struct ScriptBody {
    frames: Vec<&'static [u8]>,
    ends: bool,
    _dropped: common::DropFlag,
}

impl Body for ScriptBody {
    type Data = Bytes;
    type Error = io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.frames.is_empty() {
            return if self.ends {
                Poll::Ready(None)
            } else {
                Poll::Pending
            };
        }
        let frame = self.frames.remove(0);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(frame)))))
    }
}

/// What one poll of a body gives.
type FramePoll<B> = Poll<Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>>;

fn poll_frame<B: Body + Unpin>(body: &mut B, waker: &Arc<CountingWaker>) -> FramePoll<B> {
    let waker = waker.waker();
    Pin::new(body).poll_frame(&mut Context::from_waker(&waker))
}

#[test]
fn a_body_cut_by_a_trigger_yields_one_error_frame_and_never_a_clean_end() {
    let token = CancelToken::named("download");
    let dropped = Dropped::new();
    let inner = ScriptBody {
        frames: vec![b"a", b"b"],
        ends: false,
        _dropped: dropped.guard(),
    };
    let mut body = CancelBody::new(token.clone(), inner);
    let waker = CountingWaker::new();
    for expected in [&b"a"[..], b"b"] {
        let Poll::Ready(Some(Ok(frame))) = poll_frame(&mut body, &waker) else {
            panic!()
        };
        assert_eq!(frame.into_data().unwrap(), expected);
    }
    assert!(poll_frame(&mut body, &waker).is_pending());
    assert!(!body.is_end_stream());
    token.trigger_with("user left");
    assert_eq!(waker.count(), 1, "the trigger woke the reader");
    assert!(
        !body.is_end_stream(),
        "a cancellation frame is still to come"
    );
    let Poll::Ready(Some(Err(err))) = poll_frame(&mut body, &waker) else {
        panic!("expected the cancellation frame")
    };
    assert_eq!(err.reason().unwrap().message(), Some("user left"));
    assert!(dropped.get(), "the wrapped body was dropped at the trigger");
    assert!(
        matches!(poll_frame(&mut body, &waker), Poll::Ready(None)),
        "then it ends"
    );
    assert!(body.is_end_stream());
}

#[test]
fn a_body_that_finishes_first_ends_cleanly_and_a_later_trigger_changes_nothing() {
    let token = CancelToken::new();
    let dropped = Dropped::new();
    let inner = ScriptBody {
        frames: vec![b"all"],
        ends: true,
        _dropped: dropped.guard(),
    };
    let mut body = CancelBody::new(token.clone(), inner);
    let waker = CountingWaker::new();
    assert!(matches!(
        poll_frame(&mut body, &waker),
        Poll::Ready(Some(Ok(_)))
    ));
    assert!(matches!(poll_frame(&mut body, &waker), Poll::Ready(None)));
    token.trigger();
    assert!(matches!(poll_frame(&mut body, &waker), Poll::Ready(None)));
    assert!(body.is_end_stream());
}

// ----------------------------------------------------------------------------- tower

fn counting_service(
    calls: Arc<AtomicUsize>,
) -> impl Service<
    http::Request<()>,
    Response = http::Response<http_body_util::Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<http_body_util::Full<Bytes>>, Infallible>>,
> + Clone {
    tower::service_fn(move |_request: http::Request<()>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async {
            Ok(http::Response::new(http_body_util::Full::new(
                Bytes::from_static(b"ok"),
            )))
        }
    })
}

#[test]
fn a_triggered_token_means_the_inner_service_is_never_called() {
    let calls = Arc::new(AtomicUsize::new(0));
    let shutdown = CancelToken::named("shutdown");
    let mut service = CancelLayer::new(shutdown.clone()).layer(counting_service(calls.clone()));
    shutdown.trigger_with("stopping");
    let err = futures_lite::future::block_on(service.call(http::Request::new(()))).unwrap_err();
    let cancelled = err
        .downcast_ref::<Cancelled>()
        .expect("a boxed Cancelled, like Elapsed");
    assert_eq!(cancelled.reason().message(), Some("stopping"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn the_layer_wraps_the_response_body_and_takes_tokens_from_extensions() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service = CancelLayer::from_extensions().layer(counting_service(calls.clone()));

    // No token in the extensions: the request runs uncancelled.
    let response = futures_lite::future::block_on(service.call(http::Request::new(()))).unwrap();
    assert!(!response.body().token().is_triggered());

    let token = CancelToken::named("request 9");
    let mut request = http::Request::new(());
    request.extensions_mut().insert(token.clone());
    let response = futures_lite::future::block_on(service.call(request)).unwrap();
    assert_eq!(
        response.body().token(),
        &token,
        "the body stops on the request's token"
    );
    token.trigger_with("client left");
    let mut body = response.into_body();
    let Poll::Ready(Some(Err(err))) = poll_frame(&mut body, &CountingWaker::new()) else {
        panic!("the body yields the cancellation")
    };
    assert!(err.is_cancelled());
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let mut refused = http::Request::new(());
    refused.extensions_mut().insert(token);
    assert!(futures_lite::future::block_on(service.call(refused)).is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "a triggered request token refuses the call"
    );
}

#[test]
fn a_trigger_while_the_response_is_awaited_drops_the_inner_future() {
    let token = CancelToken::new();
    let dropped = Dropped::new();
    let polls = Polls::new();
    let (d, p) = (dropped.clone(), polls.clone());
    let inner = tower::service_fn(move |_request: http::Request<()>| {
        Probe::new(
            &p,
            &d,
            usize::MAX,
            Ok::<http::Response<http_body_util::Empty<Bytes>>, Infallible>(http::Response::new(
                http_body_util::Empty::new(),
            )),
        )
    });
    let mut service = CancelLayer::new(token.clone()).layer(inner);
    let mut response = Box::pin(service.call(http::Request::new(())));
    let waker = CountingWaker::new();
    assert!(poll_with(&mut response, &waker).is_pending());
    token.trigger();
    assert_eq!(waker.count(), 1);
    assert!(matches!(
        poll_with(&mut response, &waker),
        Poll::Ready(Err(_))
    ));
    assert!(
        dropped.get(),
        "the inner future was dropped by the poll that saw the trigger"
    );
    assert_eq!(polls.get(), 1);
}

// ----------------------------------------------------------------------------- scope

#[test]
fn a_dropped_handler_triggers_its_token_and_a_finished_one_does_not() {
    let server = CancelToken::named("server");
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let kept = tokens.clone();
    let handler = scope(&server, move |token| {
        kept.lock().unwrap().push(token);
        futures_lite::future::pending::<()>()
    });
    drop(handler); // the client went away
    let kept = tokens.clone();
    let finished = scope(&server, move |token| {
        kept.lock().unwrap().push(token);
        async { 200 }
    });
    assert_eq!(futures_lite::future::block_on(finished), 200);

    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens[0].reason().unwrap().kind(), ReasonKind::Dropped);
    assert!(!tokens[1].is_triggered());
    assert!(!server.is_triggered());
    server.trigger();
    assert!(
        tokens[1].is_triggered(),
        "request tokens are children of the server's"
    );
}

// ----------------------------------------------------------------------------- errors

#[test]
fn cancel_error_display_source_and_io_conversion() {
    let token = CancelToken::named("b");
    token.trigger_with("user clicked stop");
    let err: CancelError<io::Error> = token.raise_if_triggered().unwrap_err().into();
    assert_eq!(
        err.to_string(),
        "cancellation requested by token b: user clicked stop"
    );
    let source = err.source().unwrap();
    assert!(source.downcast_ref::<Cancelled>().is_some());
    let io_err: io::Error = err.into();
    assert_ne!(io_err.kind(), io::ErrorKind::Interrupted);

    let inner = CancelError::Inner(io::Error::other("refused"));
    assert_eq!(inner.to_string(), "refused");
    assert!(find_cancelled(&inner).is_none());
}

#[test]
fn find_cancelled_looks_through_io_errors_and_source_chains() {
    #[derive(Debug)]
    struct ClientError(io::Error);
    impl std::fmt::Display for ClientError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error")
        }
    }
    impl Error for ClientError {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
    let token = CancelToken::named("deep");
    token.trigger();
    let wrapped = ClientError(token.raise_if_triggered().unwrap_err().into());
    assert_eq!(find_cancelled(&wrapped).unwrap().token(), &token);
}
