//! `try_stream`, `result_stream` and their owned forms: a stream whose last item after a
//! trigger is the cancellation error, so a cut stream never looks complete.

mod common;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;

use cancel_token::{
    CancelToken, Cancelled, ReasonKind, ResultCancelStreamOwned, TryCancelStreamOwned,
};
use common::{
    assert_send_static, poll_next_once, poll_next_with, wait_until, within, CountingWaker, Dropped,
    Polls, ProbeStream, LIMIT,
};
use futures_core::{FusedStream, Stream};
use futures_lite::{stream, StreamExt};

fn _owned_forms_are_send_and_static() {
    fn assert_send_static<T: Send + 'static>() {}
    assert_send_static::<TryCancelStreamOwned<stream::Pending<u8>>>();
    assert_send_static::<ResultCancelStreamOwned<stream::Pending<io::Result<u8>>>>();
}

#[test]
fn yields_ok_items_then_one_err_at_the_trigger_then_none_and_never_polls_again() {
    let token = CancelToken::named("download");
    let polls = Polls::new();
    let dropped = Dropped::new();
    let inner = ProbeStream::new(&polls, &dropped, (1..=5).map(Some), false);
    let mut s = token.try_stream(inner);
    assert_eq!(poll_next_once(&mut s), Poll::Ready(Some(Ok(1))));
    assert_eq!(poll_next_once(&mut s), Poll::Ready(Some(Ok(2))));
    assert!(!s.is_terminated());

    token.trigger_with("user pressed stop");
    let Poll::Ready(Some(Err(err))) = poll_next_once(&mut s) else {
        panic!("an item is ready, but the cancellation must win and be reported");
    };
    assert_eq!(err.reason().message(), Some("user pressed stop"));
    assert_eq!(err.token(), &token);
    assert!(
        dropped.get(),
        "the inner stream is dropped when the trigger is seen"
    );
    assert!(s.is_terminated());
    for _ in 0..3 {
        assert_eq!(
            poll_next_once(&mut s),
            Poll::Ready(None),
            "one error, then the end"
        );
    }
    assert_eq!(
        polls.get(),
        2,
        "the inner stream was polled after the trigger"
    );
}

#[test]
fn pre_triggered_yields_the_error_first_without_polling_the_inner_stream() {
    let token = CancelToken::new();
    token.trigger_with(ReasonKind::Superseded);
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut s = token.try_stream(ProbeStream::new(&polls, &dropped, [Some(1)], true));
    let Poll::Ready(Some(Err(err))) = poll_next_once(&mut s) else {
        panic!("a pre-triggered token must report the cancellation at the first poll");
    };
    assert_eq!(err.kind(), ReasonKind::Superseded);
    assert_eq!(poll_next_once(&mut s), Poll::Ready(None));
    assert_eq!(polls.get(), 0);
    assert!(dropped.get());
}

#[test]
fn a_natural_end_has_no_error_and_a_later_trigger_adds_none() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let waker = CountingWaker::new();
    let mut s = token.try_stream(ProbeStream::new(
        &polls,
        &dropped,
        [Some('a'), None, Some('b')],
        true,
    ));
    assert_eq!(poll_next_with(&mut s, &waker), Poll::Ready(Some(Ok('a'))));
    assert!(
        poll_next_with(&mut s, &waker).is_pending(),
        "registered on the token"
    );
    assert_eq!(poll_next_with(&mut s, &waker), Poll::Ready(Some(Ok('b'))));
    assert_eq!(poll_next_with(&mut s, &waker), Poll::Ready(None));
    assert!(s.is_terminated());
    assert!(dropped.get(), "released at its end");

    token.trigger();
    assert_eq!(
        waker.count(),
        0,
        "the registration must be released at the natural end"
    );
    assert_eq!(
        poll_next_with(&mut s, &waker),
        Poll::Ready(None),
        "a complete stream stays complete"
    );
    assert_eq!(polls.get(), 4);
}

#[test]
fn a_trigger_while_pending_wakes_the_task_once_and_the_next_poll_reports_it() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let waker = CountingWaker::new();
    let mut s = token.try_stream(ProbeStream::new(&polls, &dropped, [Some(1)], false));
    assert_eq!(poll_next_with(&mut s, &waker), Poll::Ready(Some(Ok(1))));
    assert!(poll_next_with(&mut s, &waker).is_pending());
    assert!(
        poll_next_with(&mut s, &waker).is_pending(),
        "a second pending poll"
    );
    assert_eq!(waker.count(), 0);

    let trigger = token.clone();
    thread::spawn(move || trigger.trigger()).join().unwrap();
    assert_eq!(
        waker.count(),
        1,
        "one registration, however often it was polled"
    );
    assert!(matches!(
        poll_next_with(&mut s, &waker),
        Poll::Ready(Some(Err(_)))
    ));
    assert_eq!(polls.get(), 3);
    assert!(dropped.get());
}

/// Triggers its token from inside its own poll, then is pending.
struct TriggersWhilePolled(CancelToken);

impl Stream for TriggersWhilePolled {
    type Item = u8;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<u8>> {
        self.0.trigger();
        Poll::Pending
    }
}

#[test]
fn a_trigger_that_lands_while_the_inner_stream_is_polled_is_reported_at_that_poll() {
    let token = CancelToken::new();
    let mut s = token.try_stream(TriggersWhilePolled(token.clone()));
    assert!(matches!(poll_next_once(&mut s), Poll::Ready(Some(Err(_)))));
    assert_eq!(poll_next_once(&mut s), Poll::Ready(None));
}

#[test]
fn the_error_names_the_ancestor_that_fired() {
    let shutdown = CancelToken::named("shutdown");
    let request = shutdown.child();
    let mut s = request.try_stream(stream::pending::<()>());
    assert!(poll_next_once(&mut s).is_pending());
    shutdown.trigger_with("maintenance");
    let Poll::Ready(Some(Err(err))) = poll_next_once(&mut s) else {
        panic!("expected the cancellation");
    };
    assert_eq!(err.token(), &shutdown);
    assert_eq!(
        err.to_string(),
        "cancellation requested by token shutdown: maintenance"
    );
}

#[test]
fn dropping_the_adapter_drops_the_inner_stream_and_leaves_the_token_alone() {
    let token = CancelToken::new();
    let dropped = Dropped::new();
    let waker = CountingWaker::new();
    let mut s = token.try_stream(ProbeStream::new(
        &Polls::new(),
        &dropped,
        [None::<u8>],
        false,
    ));
    assert!(poll_next_with(&mut s, &waker).is_pending());
    drop(s);
    assert!(dropped.get());
    token.trigger();
    assert_eq!(waker.count(), 0, "the registration went with the adapter");
}

#[test]
fn size_hint_counts_the_error_and_is_zero_at_the_end() {
    let token = CancelToken::new();
    let mut s = token.try_stream(stream::iter(0..10));
    assert_eq!(s.size_hint(), (0, Some(11)));
    let mut unbounded = token.try_stream(stream::repeat(0));
    assert_eq!(unbounded.size_hint(), (0, None));
    token.trigger();
    assert!(matches!(poll_next_once(&mut s), Poll::Ready(Some(Err(_)))));
    assert_eq!(s.size_hint(), (0, Some(0)));
    assert!(matches!(
        poll_next_once(&mut unbounded),
        Poll::Ready(Some(Err(_)))
    ));
    assert_eq!(unbounded.size_hint(), (0, Some(0)));
}

#[test]
fn debug_shows_the_token_and_whether_it_ended() {
    let token = CancelToken::named("feed");
    let mut s = token.try_stream(stream::iter([1]));
    assert_eq!(
        format!("{s:?}"),
        "TryCancelStream { token: CancelToken { name: \"feed\", triggered: false }, ended: false }"
    );
    token.trigger();
    let _ = poll_next_once(&mut s);
    assert!(format!("{s:?}").ends_with("ended: true }"), "{s:?}");
    let owned = token
        .clone()
        .result_stream_owned(stream::iter([io::Result::Ok(1)]));
    assert!(format!("{owned:?}")
        .starts_with("ResultCancelStreamOwned { token: CancelToken { name: \"feed\""));
}

// ----- result_stream -----

#[test]
fn result_stream_passes_errors_through_and_merges_the_cancellation_into_io_error() {
    let token = CancelToken::named("upload");
    let polls = Polls::new();
    let dropped = Dropped::new();
    let script = [
        Some(Ok(1)),
        Some(Err(io::Error::new(io::ErrorKind::BrokenPipe, "flaky"))),
        Some(Ok(2)),
        Some(Ok(3)),
    ];
    let mut s = token.result_stream(ProbeStream::new(&polls, &dropped, script, false));
    assert_eq!(
        poll_next_once(&mut s).map(|i| i.map(Result::unwrap)),
        Poll::Ready(Some(1))
    );
    let Poll::Ready(Some(Err(flaky))) = poll_next_once(&mut s) else {
        panic!("the wrapped stream's own error passes through");
    };
    assert_eq!(flaky.kind(), io::ErrorKind::BrokenPipe);
    assert!(
        Cancelled::from_io_error(&flaky).is_none(),
        "it is not a cancellation"
    );
    assert_eq!(
        poll_next_once(&mut s).map(|i| i.map(Result::unwrap)),
        Poll::Ready(Some(2))
    );

    token.trigger_with("client went away");
    let Poll::Ready(Some(Err(err))) = poll_next_once(&mut s) else {
        panic!("the cancellation becomes the stream's error");
    };
    let cancelled = Cancelled::from_io_error(&err).expect("the Cancelled inside the io::Error");
    assert_eq!(cancelled.reason().message(), Some("client went away"));
    assert_eq!(cancelled.token(), &token);
    assert!(matches!(poll_next_once(&mut s), Poll::Ready(None)));
    assert_eq!(polls.get(), 3, "item 3 was never taken");
    assert!(dropped.get());
    assert!(s.is_terminated());
}

#[derive(Debug, PartialEq)]
enum FetchError {
    Network(&'static str),
    Cancelled(ReasonKind),
}

impl From<Cancelled> for FetchError {
    fn from(cancelled: Cancelled) -> Self {
        FetchError::Cancelled(cancelled.kind())
    }
}

#[test]
fn result_stream_with_a_users_error_enum_and_question_mark() {
    async fn fetch(
        body: impl Stream<Item = Result<&'static str, FetchError>>,
        token: &CancelToken,
    ) -> Result<String, FetchError> {
        let mut text = String::new();
        let mut body = std::pin::pin!(token.result_stream(body));
        while let Some(chunk) = body.next().await {
            text.push_str(chunk?);
        }
        Ok(text)
    }
    futures_lite::future::block_on(async {
        let token = CancelToken::new();
        let body = || stream::iter([Ok("a"), Ok("b")]);
        assert_eq!(fetch(body(), &token).await, Ok("ab".to_string()));
        let failing = stream::iter([Ok("a"), Err(FetchError::Network("reset"))]);
        assert_eq!(
            fetch(failing, &token).await,
            Err(FetchError::Network("reset"))
        );
        token.trigger_with(ReasonKind::Timeout);
        assert_eq!(
            fetch(body(), &token).await,
            Err(FetchError::Cancelled(ReasonKind::Timeout))
        );
    });
}

#[test]
fn result_stream_natural_end_has_no_error() {
    let token = CancelToken::new();
    let items: Vec<io::Result<u8>> =
        futures_lite::future::block_on(token.result_stream(stream::iter([Ok(1), Ok(2)])).collect());
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(Result::is_ok));
}

// ----- owned forms on executors -----

#[test]
fn try_stream_owned_under_tokio_ends_with_the_error_on_a_trigger_from_a_plain_thread() {
    let rt = common::multi_thread_runtime();
    let token = CancelToken::new();
    let (oks, last) = rt.block_on(async {
        // The trigger comes once the five items are out, however slowly the task gets going.
        let yielded = Arc::new(AtomicUsize::new(0));
        let seen = yielded.clone();
        let items = stream::iter(0u32..5).inspect(move |_| {
            yielded.fetch_add(1, Ordering::SeqCst);
        });
        let s = assert_send_static(
            token
                .clone()
                .try_stream_owned(items.chain(stream::pending::<u32>())),
        );
        let task = tokio::spawn(s.collect::<Vec<_>>());
        let trigger = token.clone();
        let triggerer = thread::spawn(move || {
            wait_until("five items", LIMIT, || seen.load(Ordering::SeqCst) == 5);
            trigger.trigger_with("stop")
        });
        let mut items = tokio::time::timeout(LIMIT, task)
            .await
            .expect("the stream did not end on the trigger")
            .unwrap();
        triggerer.join().unwrap();
        let last = items.pop();
        (items, last)
    });
    assert_eq!(oks, (0..5).map(Ok).collect::<Vec<_>>());
    let err = last.unwrap().unwrap_err();
    assert_eq!(err.reason().message(), Some("stop"));
}

#[test]
fn result_stream_owned_under_smol_and_a_plain_block_on() {
    for run in 0..2 {
        let token = CancelToken::new();
        let trigger = token.clone();
        let items = within(LIMIT, move || {
            let yielded = Arc::new(AtomicUsize::new(0));
            let seen = yielded.clone();
            let triggerer = thread::spawn(move || {
                wait_until("two items", LIMIT, || seen.load(Ordering::SeqCst) == 2);
                trigger.trigger()
            });
            let chunks = stream::iter([Ok(1), Ok(2)]).inspect(move |_| {
                yielded.fetch_add(1, Ordering::SeqCst);
            });
            let s = token.result_stream_owned(chunks.chain(stream::pending::<io::Result<u8>>()));
            let items: Vec<io::Result<u8>> = match run {
                0 => smol::block_on(s.collect()),
                _ => futures_lite::future::block_on(s.collect()),
            };
            triggerer.join().unwrap();
            items
        });
        assert_eq!(items.len(), 3, "run {run}");
        assert!(Cancelled::from_io_error(items[2].as_ref().unwrap_err()).is_some());
    }
}
