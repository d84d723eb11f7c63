//! `CancelToken::stream` and `stream_owned`: a stream that ends when the token is triggered.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::thread;

use cancel_token::{CancelStreamOwned, CancelToken};
use common::{
    assert_send_static, poll_next_once, poll_next_with, wait_until, within, CountingWaker, Dropped,
    Polls, ProbeStream, LIMIT,
};
use futures_core::{FusedStream, Stream};
use futures_lite::{stream, StreamExt};

/// A stream that stays pending (it never wakes anyone) and sets `dropped` when dropped.
fn pending_probe(dropped: &Dropped) -> ProbeStream<u8> {
    ProbeStream::new(&Polls::new(), dropped, [None], false)
}

#[test]
fn yields_items_until_the_trigger_then_none_and_never_polls_the_inner_stream_again() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let inner = ProbeStream::new(&polls, &dropped, (1..=5).map(Some), false);
    let mut s = token.stream(inner);
    assert_eq!(poll_next_once(&mut s), Poll::Ready(Some(1)));
    assert_eq!(poll_next_once(&mut s), Poll::Ready(Some(2)));
    assert_eq!(polls.get(), 2);
    assert!(!s.is_terminated());

    token.trigger();
    assert_eq!(
        poll_next_once(&mut s),
        Poll::Ready(None),
        "an item is ready but cancellation wins"
    );
    for _ in 0..3 {
        assert_eq!(
            poll_next_once(&mut s),
            Poll::Ready(None),
            "fused after the end"
        );
    }
    assert_eq!(
        polls.get(),
        2,
        "the inner stream was polled after the trigger"
    );
    assert!(s.is_terminated());
}

#[test]
fn pre_triggered_yields_none_at_once_without_polling_the_inner_stream() {
    let token = CancelToken::new();
    token.trigger();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut s = token.stream(ProbeStream::new(&polls, &dropped, [Some(1)], true));
    assert_eq!(poll_next_once(&mut s), Poll::Ready(None));
    assert_eq!(polls.get(), 0);
    assert!(dropped.get(), "dropped as soon as cancellation is seen");
    assert!(s.is_terminated());
}

#[test]
fn pre_triggered_collects_nothing() {
    let token = CancelToken::new();
    token.trigger();
    let items: Vec<u32> = futures_lite::future::block_on(token.stream(stream::iter(0..)).collect());
    assert!(items.is_empty());
}

#[test]
fn the_inner_stream_is_dropped_when_cancellation_is_seen_not_when_the_adapter_is() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut s = token.stream(ProbeStream::new(&polls, &dropped, [Some(1)], false));
    assert_eq!(poll_next_once(&mut s), Poll::Ready(Some(1)));
    assert!(poll_next_once(&mut s).is_pending());
    token.trigger();
    assert_eq!(poll_next_once(&mut s), Poll::Ready(None));
    assert!(
        dropped.get(),
        "the inner stream must be dropped while the adapter lives"
    );
    drop(s);
}

#[test]
fn dropping_the_adapter_drops_the_inner_stream() {
    let token = CancelToken::new();
    let dropped = Dropped::new();
    let mut s = token.stream(pending_probe(&dropped));
    assert!(poll_next_once(&mut s).is_pending());
    drop(s);
    assert!(dropped.get());
    assert!(!token.is_triggered());
}

#[test]
fn natural_end_returns_none_and_is_terminated() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut s = token.stream(ProbeStream::new(
        &polls,
        &dropped,
        [Some('a'), Some('b')],
        true,
    ));
    assert!(!s.is_terminated());
    assert_eq!(poll_next_once(&mut s), Poll::Ready(Some('a')));
    assert_eq!(poll_next_once(&mut s), Poll::Ready(Some('b')));
    assert!(!s.is_terminated());
    assert_eq!(poll_next_once(&mut s), Poll::Ready(None));
    assert!(
        s.is_terminated(),
        "FusedStream::is_terminated after the natural end"
    );
    assert!(
        dropped.get(),
        "the finished inner stream is released at its end"
    );
    assert_eq!(polls.get(), 3);

    assert_eq!(poll_next_once(&mut s), Poll::Ready(None));
    assert_eq!(polls.get(), 3, "an ended inner stream is not polled again");
    assert!(
        !token.is_triggered(),
        "a natural end does not trigger the token"
    );
}

#[test]
fn natural_end_collects_every_item() {
    let token = CancelToken::new();
    let items: Vec<u32> =
        futures_lite::future::block_on(token.stream(stream::iter(1..=4)).collect());
    assert_eq!(items, [1, 2, 3, 4]);
}

#[test]
fn items_yielded_before_the_trigger_are_kept() {
    let token = CancelToken::new();
    let mut seen = Vec::new();
    futures_lite::future::block_on(async {
        let mut numbers = token.stream(stream::iter(1..));
        while let Some(n) = numbers.next().await {
            seen.push(n);
            if n == 3 {
                token.trigger_with("enough");
            }
        }
    });
    assert_eq!(seen, [1, 2, 3]);
}

#[test]
fn a_trigger_while_the_inner_stream_is_pending_wakes_the_task() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let waker = CountingWaker::new();
    let mut s = token.stream(ProbeStream::new(&polls, &dropped, [Some(1)], false));
    assert_eq!(poll_next_with(&mut s, &waker), Poll::Ready(Some(1)));
    assert!(poll_next_with(&mut s, &waker).is_pending());
    assert_eq!(waker.count(), 0);

    token.trigger();
    assert!(waker.count() >= 1, "the trigger did not wake the task");
    assert_eq!(poll_next_with(&mut s, &waker), Poll::Ready(None));
    assert_eq!(polls.get(), 2);
    assert!(dropped.get());
}

#[test]
fn a_trigger_from_another_thread_wakes_the_task() {
    let token = CancelToken::new();
    let waker = CountingWaker::new();
    let mut s = token.stream(stream::pending::<()>());
    assert!(poll_next_with(&mut s, &waker).is_pending());
    let trigger = token.clone();
    thread::spawn(move || trigger.trigger()).join().unwrap();
    assert!(waker.count() >= 1);
    assert_eq!(poll_next_with(&mut s, &waker), Poll::Ready(None));
}

#[test]
fn a_parent_trigger_ends_a_stream_on_a_child() {
    let parent = CancelToken::new();
    let child = parent.child();
    let mut s = child.stream(stream::pending::<()>());
    assert!(poll_next_once(&mut s).is_pending());
    parent.trigger();
    assert_eq!(poll_next_once(&mut s), Poll::Ready(None));
}

#[test]
fn size_hint_allows_an_early_end() {
    let token = CancelToken::new();
    let mut s = token.stream(stream::iter(0..10));
    assert_eq!(s.size_hint(), (0, Some(10)));
    token.trigger();
    assert_eq!(poll_next_once(&mut s), Poll::Ready(None));
    assert_eq!(s.size_hint(), (0, Some(0)));
}

// ----- stream_owned -----

fn _stream_owned_is_send_and_static() {
    fn assert_send_static<T: Send + 'static>() {}
    assert_send_static::<CancelStreamOwned<stream::Pending<u8>>>();
}

#[test]
fn stream_owned_yields_until_the_trigger_and_never_polls_again() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut s = assert_send_static(token.clone().stream_owned(ProbeStream::new(
        &polls,
        &dropped,
        (1..=3).map(Some),
        false,
    )));
    assert_eq!(s.token(), &token);
    assert_eq!(poll_next_once(&mut s), Poll::Ready(Some(1)));
    token.trigger();
    assert_eq!(poll_next_once(&mut s), Poll::Ready(None));
    assert_eq!(poll_next_once(&mut s), Poll::Ready(None));
    assert_eq!(polls.get(), 1);
    assert!(dropped.get());
    assert!(s.is_terminated());
}

#[test]
fn stream_owned_pre_triggered_polls_nothing() {
    let token = CancelToken::new();
    token.trigger();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut s = token.stream_owned(ProbeStream::new(&polls, &dropped, [Some(1)], true));
    assert_eq!(poll_next_once(&mut s), Poll::Ready(None));
    assert_eq!(polls.get(), 0);
    assert!(dropped.get());
}

#[test]
fn stream_owned_natural_end_and_wake_on_trigger() {
    let token = CancelToken::new();
    let mut ended = token.clone().stream_owned(stream::iter([1, 2]));
    assert_eq!(poll_next_once(&mut ended), Poll::Ready(Some(1)));
    assert_eq!(poll_next_once(&mut ended), Poll::Ready(Some(2)));
    assert_eq!(poll_next_once(&mut ended), Poll::Ready(None));
    assert!(ended.is_terminated());

    let waker = CountingWaker::new();
    let mut s = token.clone().stream_owned(stream::pending::<u8>());
    assert!(poll_next_with(&mut s, &waker).is_pending());
    token.trigger();
    assert!(waker.count() >= 1);
    assert_eq!(poll_next_with(&mut s, &waker), Poll::Ready(None));
}

#[test]
fn stream_owned_dropped_while_pending_drops_the_inner_stream() {
    let token = CancelToken::new();
    let dropped = Dropped::new();
    let mut s = token.stream_owned(pending_probe(&dropped));
    assert!(poll_next_once(&mut s).is_pending());
    drop(s);
    assert!(dropped.get());
}

#[test]
fn stream_owned_under_tokio_ends_on_a_trigger_from_a_plain_thread() {
    let rt = common::multi_thread_runtime();
    let token = CancelToken::new();
    let count = rt.block_on(async {
        // The trigger comes once the five items are out, however slowly the task gets going.
        let yielded = Arc::new(AtomicUsize::new(0));
        let seen = yielded.clone();
        let items = stream::iter(0u32..5).inspect(move |_| {
            yielded.fetch_add(1, Ordering::SeqCst);
        });
        let s = token
            .clone()
            .stream_owned(items.chain(stream::pending::<u32>()));
        let task = tokio::spawn(s.count());
        let trigger = token.clone();
        let triggerer = thread::spawn(move || {
            wait_until("five items", LIMIT, || seen.load(Ordering::SeqCst) == 5);
            trigger.trigger()
        });
        let count = tokio::time::timeout(LIMIT, task)
            .await
            .expect("the stream did not end on the trigger")
            .unwrap();
        triggerer.join().unwrap();
        count
    });
    assert_eq!(count, 5);
}

#[test]
fn stream_under_smol_async_std_and_a_plain_block_on() {
    for run in 0..3 {
        let token = CancelToken::new();
        let trigger = token.clone();
        let count = within(LIMIT, move || {
            // The trigger comes once the three items are out, however slowly the executor
            // gets going, so the count does not depend on timing.
            let yielded = Arc::new(AtomicUsize::new(0));
            let seen = yielded.clone();
            let triggerer = thread::spawn(move || {
                wait_until("three items", LIMIT, || seen.load(Ordering::SeqCst) == 3);
                trigger.trigger()
            });
            let items = stream::iter([1, 2, 3]).inspect(move |_| {
                yielded.fetch_add(1, Ordering::SeqCst);
            });
            let s = token.stream(items.chain(stream::pending()));
            let count = match run {
                0 => smol::block_on(s.count()),
                1 => async_std::task::block_on(s.count()),
                _ => futures_lite::future::block_on(s.count()),
            };
            triggerer.join().unwrap();
            count
        });
        assert_eq!(count, 3, "run {run}");
    }
}
