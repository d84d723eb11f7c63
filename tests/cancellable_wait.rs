//! `CancelToken::cancellable_wait`: the first of several futures, unless cancelled or timed out.

mod common;

use std::error::Error as _;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use cancel_token::{CancelToken, Cancelled, ReasonKind, TimedOut, WaitError};
use common::{
    poll_once, poll_with, wait_until, within, CountingWaker, Dropped, Polls, Probe, LIMIT,
};

const SHORT: Duration = Duration::from_millis(20);

/// Probes for `n` futures: their poll counters and drop flags.
fn probes(n: usize) -> (Vec<Polls>, Vec<Dropped>) {
    (
        (0..n).map(|_| Polls::new()).collect(),
        (0..n).map(|_| Dropped::new()).collect(),
    )
}

fn all_dropped(dropped: &[Dropped]) -> bool {
    dropped.iter().all(Dropped::get)
}

#[test]
fn first_output_wins_and_all_others_are_dropped_before_it_returns() {
    let token = CancelToken::new();
    let (polls, dropped) = probes(3);
    let futures = vec![
        Probe::new(&polls[0], &dropped[0], usize::MAX, "never"),
        Probe::new(&polls[1], &dropped[1], 2, "second poll"),
        Probe::new(&polls[2], &dropped[2], usize::MAX, "never either"),
    ];
    let mut wait = token.cancellable_wait(futures, None);
    assert!(poll_once(&mut wait).is_pending());
    assert!(
        !dropped.iter().any(Dropped::get),
        "nothing is dropped while pending"
    );

    assert_eq!(poll_once(&mut wait), Poll::Ready(Ok("second poll")));
    assert!(
        all_dropped(&dropped),
        "every future must be dropped by the poll that returns, before the adapter is: {:?}",
        dropped.iter().map(Dropped::get).collect::<Vec<_>>()
    );
    drop(wait);
}

#[test]
fn the_earliest_ready_future_in_order_wins_and_later_ones_are_not_needed() {
    let token = CancelToken::new();
    let (polls, dropped) = probes(3);
    let futures = vec![
        Probe::new(&polls[0], &dropped[0], usize::MAX, 0),
        Probe::new(&polls[1], &dropped[1], 1, 1),
        Probe::new(&polls[2], &dropped[2], 1, 2),
    ];
    let mut wait = token.cancellable_wait(futures, None);
    assert_eq!(poll_once(&mut wait), Poll::Ready(Ok(1)));
    assert_eq!(polls[0].get(), 1);
    assert_eq!(polls[1].get(), 1);
    assert!(all_dropped(&dropped));
}

#[test]
fn mixed_futures_boxed_into_one_type() {
    let token = CancelToken::new();
    let slow: Pin<Box<dyn Future<Output = &str>>> = Box::pin(futures_lite::future::pending());
    let fast: Pin<Box<dyn Future<Output = &str>>> = Box::pin(async { "fast" });
    let first = futures_lite::future::block_on(token.cancellable_wait([slow, fast], None));
    assert_eq!(first, Ok("fast"));
}

#[test]
fn an_error_inside_the_output_passes_through_as_ok_err() {
    let token = CancelToken::new();
    let futures =
        [async { Err::<u32, io::Error>(io::Error::new(io::ErrorKind::NotFound, "gone")) }];
    let result = futures_lite::future::block_on(token.cancellable_wait(futures, Some(SHORT)));
    match result {
        Ok(Err(err)) => {
            assert_eq!(err.kind(), io::ErrorKind::NotFound);
            assert_eq!(err.to_string(), "gone");
        }
        other => panic!("expected Ok(Err(..)), got {other:?}"),
    }
}

#[test]
fn pre_triggered_polls_no_future_and_returns_cancelled_with_the_reason() {
    let token = CancelToken::named("job");
    token.trigger_with("shutdown");
    let (polls, dropped) = probes(2);
    let futures = vec![
        Probe::new(&polls[0], &dropped[0], 1, ()),
        Probe::new(&polls[1], &dropped[1], 1, ()),
    ];
    let mut wait = token.cancellable_wait(futures, Some(Duration::ZERO));
    let result = poll_once(&mut wait);
    let Poll::Ready(Err(WaitError::Cancelled(cancelled))) = result else {
        panic!("expected Err(WaitError::Cancelled), got {result:?}");
    };
    assert_eq!(cancelled.reason().message(), Some("shutdown"));
    assert_eq!(cancelled.token(), &token);
    assert_eq!(polls[0].get() + polls[1].get(), 0, "a future was polled");
    assert!(all_dropped(&dropped));
}

#[test]
fn no_timeout_means_pending_stays_pending() {
    let token = CancelToken::new();
    let (polls, dropped) = probes(2);
    let futures = vec![
        Probe::pending(&polls[0], &dropped[0]),
        Probe::pending(&polls[1], &dropped[1]),
    ];
    let waker = CountingWaker::new();
    let mut wait = token.cancellable_wait(futures, None);
    for _ in 0..5 {
        assert!(poll_with(&mut wait, &waker).is_pending());
    }
    thread::sleep(Duration::from_millis(30));
    assert!(poll_with(&mut wait, &waker).is_pending());
    assert_eq!(
        waker.count(),
        0,
        "no timer may wake a wait without a timeout"
    );
    assert_eq!(polls[0].get(), 6);
    assert_eq!(polls[1].get(), 6);
    assert!(!dropped.iter().any(Dropped::get));
}

#[test]
fn zero_timeout_still_lets_an_already_ready_future_win() {
    let token = CancelToken::new();
    let (polls, dropped) = probes(2);
    let futures = vec![
        Probe::new(&polls[0], &dropped[0], usize::MAX, 0),
        Probe::new(&polls[1], &dropped[1], 1, 1),
    ];
    let mut wait = token.cancellable_wait(futures, Some(Duration::ZERO));
    assert_eq!(poll_once(&mut wait), Poll::Ready(Ok(1)));
    assert!(all_dropped(&dropped));
}

#[test]
fn zero_timeout_with_only_pending_futures_times_out_at_the_first_poll() {
    let token = CancelToken::new();
    let (polls, dropped) = probes(2);
    let futures = vec![
        Probe::pending(&polls[0], &dropped[0]),
        Probe::pending(&polls[1], &dropped[1]),
    ];
    let mut wait = token.cancellable_wait(futures, Some(Duration::ZERO));
    let result = poll_once(&mut wait);
    let Poll::Ready(Err(err)) = result else {
        panic!("expected a timeout at once, got {result:?}");
    };
    assert!(err.is_timed_out());
    assert_eq!(err.timed_out().unwrap().timeout(), Duration::ZERO);
    assert_eq!(
        polls[0].get(),
        1,
        "futures are polled before the timer is checked"
    );
    assert!(all_dropped(&dropped));
}

#[test]
fn short_timeout_with_pending_futures_times_out_and_drops_them() {
    let (polls, dropped) = probes(3);
    let flags = dropped.clone();
    let (result, elapsed) = within(LIMIT, move || {
        let token = CancelToken::new();
        let futures: Vec<_> = (0..3)
            .map(|i| Probe::pending(&polls[i], &dropped[i]))
            .collect();
        let start = Instant::now();
        let result = futures_lite::future::block_on(token.cancellable_wait(futures, Some(SHORT)));
        (result, start.elapsed())
    });
    let err = result.unwrap_err();
    assert!(err.is_timed_out());
    assert!(!err.is_cancelled());
    assert_eq!(err.timed_out().unwrap().timeout(), SHORT);
    assert!(err.cancelled().is_none());
    assert!(
        elapsed >= SHORT,
        "timed out after {elapsed:?}, before {SHORT:?}"
    );
    assert!(all_dropped(&flags));
}

#[test]
fn the_timer_wakes_the_task_without_any_runtime() {
    let token = CancelToken::new();
    let waker = CountingWaker::new();
    let mut wait = token.cancellable_wait([futures_lite::future::pending::<()>()], Some(SHORT));
    let start = Instant::now();
    assert!(poll_with(&mut wait, &waker).is_pending());
    wait_until("the timer to wake the task", LIMIT, || waker.count() >= 1);
    assert!(start.elapsed() >= SHORT, "woken before the timeout");
    let result = poll_with(&mut wait, &waker);
    assert!(matches!(result, Poll::Ready(Err(WaitError::TimedOut(t))) if t.timeout() == SHORT));
}

/// Timeouts for the tests below in which the first poll must finish inside the timeout: a
/// run whose first poll took longer (a stalled machine, valgrind) proves nothing, and is
/// repeated with the next, longer one.
const FIRST_POLL_TIMEOUTS: [Duration; 3] = [
    Duration::from_millis(300),
    Duration::from_secs(2),
    Duration::from_secs(10),
];

#[test]
fn the_timeout_starts_at_the_first_poll() {
    for timeout in FIRST_POLL_TIMEOUTS {
        let token = CancelToken::new();
        let mut wait =
            token.cancellable_wait([futures_lite::future::pending::<()>()], Some(timeout));
        thread::sleep(timeout + timeout / 2);
        let first_poll = Instant::now();
        let result = poll_once(&mut wait);
        if result.is_pending() {
            return;
        }
        assert!(
            first_poll.elapsed() >= timeout,
            "the timeout must start at the first poll, not at construction"
        );
    }
    panic!("every first poll outlasted its timeout");
}

#[test]
fn a_future_ready_at_the_poll_where_the_timer_has_elapsed_still_wins() {
    for timeout in FIRST_POLL_TIMEOUTS {
        let token = CancelToken::new();
        let polls = Polls::new();
        let dropped = Dropped::new();
        let waker = CountingWaker::new();
        let mut wait = token.cancellable_wait(
            [Probe::new(&polls, &dropped, 2, "late but ready")],
            Some(timeout),
        );
        let first_poll = Instant::now();
        let first = poll_with(&mut wait, &waker);
        if first.is_ready() {
            assert!(
                first_poll.elapsed() >= timeout,
                "timed out before the timeout: {first:?}"
            );
            continue;
        }
        wait_until("the timer to wake the task", LIMIT, || waker.count() >= 1);
        assert_eq!(
            poll_with(&mut wait, &waker),
            Poll::Ready(Ok("late but ready")),
            "the timer is checked after the futures"
        );
        return;
    }
    panic!("every first poll outlasted its timeout");
}

#[test]
fn a_timeout_too_large_to_represent_means_never() {
    let token = CancelToken::new();
    let waker = CountingWaker::new();
    let mut wait =
        token.cancellable_wait([futures_lite::future::pending::<()>()], Some(Duration::MAX));
    assert!(poll_with(&mut wait, &waker).is_pending());
    assert!(poll_with(&mut wait, &waker).is_pending());
    token.trigger();
    assert!(waker.count() >= 1);
    assert!(matches!(
        poll_with(&mut wait, &waker),
        Poll::Ready(Err(WaitError::Cancelled(_)))
    ));
}

#[test]
fn cancellation_wins_over_an_elapsed_timeout() {
    let token = CancelToken::new();
    token.trigger_with(ReasonKind::Signal);
    let none: Vec<std::future::Pending<()>> = Vec::new();
    let mut wait = token.cancellable_wait(none, Some(Duration::ZERO));
    let result = poll_once(&mut wait);
    assert!(
        matches!(&result, Poll::Ready(Err(WaitError::Cancelled(c))) if c.kind() == ReasonKind::Signal),
        "got {result:?}"
    );
}

#[test]
fn no_futures_times_out_like_wait_with_a_timeout() {
    let (result, elapsed) = within(LIMIT, || {
        let token = CancelToken::new();
        let none: [std::future::Pending<()>; 0] = [];
        let start = Instant::now();
        let result = futures_lite::future::block_on(token.cancellable_wait(none, Some(SHORT)));
        (result, start.elapsed())
    });
    let err = result.unwrap_err();
    assert_eq!(err.timed_out().map(TimedOut::timeout), Some(SHORT));
    assert!(elapsed >= SHORT);
}

#[test]
fn no_futures_is_cancelled_by_a_trigger() {
    let token = CancelToken::new();
    let waker = CountingWaker::new();
    let none: Vec<std::future::Pending<()>> = Vec::new();
    let mut wait = token.cancellable_wait(none, None);
    assert!(poll_with(&mut wait, &waker).is_pending());
    assert!(poll_with(&mut wait, &waker).is_pending());
    let trigger = token.clone();
    thread::spawn(move || trigger.trigger_with("stop"))
        .join()
        .unwrap();
    assert!(waker.count() >= 1);
    match poll_with(&mut wait, &waker) {
        Poll::Ready(Err(WaitError::Cancelled(c))) => assert_eq!(c.reason().message(), Some("stop")),
        other => panic!("expected Cancelled, got {other:?}"),
    }

    // Pre-triggered, with a timeout too: cancelled at once.
    let none: Vec<std::future::Pending<()>> = Vec::new();
    let result = futures_lite::future::block_on(token.cancellable_wait(none, Some(SHORT)));
    assert!(result.unwrap_err().is_cancelled());
}

#[test]
fn dropping_the_wait_drops_every_inner_future() {
    let token = CancelToken::new();
    let (polls, dropped) = probes(4);
    let futures: Vec<_> = (0..4)
        .map(|i| Probe::pending(&polls[i], &dropped[i]))
        .collect();
    let mut wait = token.cancellable_wait(futures, Some(Duration::from_secs(3600)));
    assert!(poll_once(&mut wait).is_pending());
    assert!(!dropped.iter().any(Dropped::get));
    drop(wait);
    assert!(all_dropped(&dropped));
    assert!(!token.is_triggered());

    let (_, dropped) = probes(2);
    let futures: Vec<_> = (0..2)
        .map(|i| Probe::pending(&Polls::new(), &dropped[i]))
        .collect();
    drop(token.cancellable_wait(futures, None));
    assert!(
        all_dropped(&dropped),
        "an unpolled wait drops its futures too"
    );
}

#[test]
fn a_trigger_while_pending_wakes_the_task_and_the_next_poll_is_cancelled() {
    let token = CancelToken::named("req");
    let (polls, dropped) = probes(2);
    let futures = vec![
        Probe::pending(&polls[0], &dropped[0]),
        // Would be ready at its second poll: cancellation wins that tie.
        Probe::new(&polls[1], &dropped[1], 2, ()),
    ];
    let waker = CountingWaker::new();
    let mut wait = token.cancellable_wait(futures, Some(Duration::from_secs(3600)));
    assert!(poll_with(&mut wait, &waker).is_pending());
    assert_eq!(waker.count(), 0);

    token.trigger_with("client went away");
    assert!(waker.count() >= 1, "the trigger did not wake the task");
    let result = poll_with(&mut wait, &waker);
    let Poll::Ready(Err(WaitError::Cancelled(cancelled))) = result else {
        panic!("expected Cancelled, got {result:?}");
    };
    assert_eq!(cancelled.reason().message(), Some("client went away"));
    assert_eq!(polls[0].get(), 1);
    assert_eq!(polls[1].get(), 1, "a future was polled after the trigger");
    assert!(all_dropped(&dropped));
}

#[test]
fn a_parent_trigger_cancels_a_wait_on_a_child() {
    let parent = CancelToken::named("parent");
    let child = parent.child();
    let mut wait = child.cancellable_wait([futures_lite::future::pending::<()>()], None);
    assert!(poll_once(&mut wait).is_pending());
    parent.trigger();
    let Poll::Ready(Err(WaitError::Cancelled(cancelled))) = poll_once(&mut wait) else {
        panic!("expected Cancelled");
    };
    assert_eq!(cancelled.token(), &parent);
}

// ----- WaitError -----

fn cancelled_error(name: &'static str, reason: &'static str) -> Cancelled {
    let token = CancelToken::named(name);
    token.trigger_with(reason);
    token.raise_if_triggered().unwrap_err()
}

async fn timed_out_error(timeout: Duration) -> WaitError {
    let never = [futures_lite::future::pending::<()>()];
    CancelToken::new()
        .cancellable_wait(never, Some(timeout))
        .await
        .unwrap_err()
}

#[test]
fn wait_error_display() {
    let cancelled = WaitError::from(cancelled_error("job", "shutdown"));
    assert_eq!(
        cancelled.to_string(),
        "cancellation requested by token job: shutdown"
    );
    let timed_out = futures_lite::future::block_on(timed_out_error(Duration::from_millis(5)));
    assert_eq!(timed_out.to_string(), "timed out after 5ms");
}

#[test]
fn wait_error_source_is_the_inner_error() {
    let cancelled = WaitError::from(cancelled_error("job", "shutdown"));
    let source = cancelled.source().expect("Cancelled has a source");
    let inner = source
        .downcast_ref::<Cancelled>()
        .expect("the source is the Cancelled");
    assert_eq!(inner.reason().message(), Some("shutdown"));

    let timed_out = futures_lite::future::block_on(timed_out_error(Duration::ZERO));
    let source = timed_out.source().expect("TimedOut has a source");
    let inner = source
        .downcast_ref::<TimedOut>()
        .expect("the source is the TimedOut");
    assert_eq!(inner.timeout(), Duration::ZERO);
}

#[test]
fn wait_error_predicates_and_accessors() {
    let cancelled = WaitError::from(cancelled_error("a", "b"));
    assert!(cancelled.is_cancelled());
    assert!(!cancelled.is_timed_out());
    assert_eq!(cancelled.cancelled().unwrap().reason().message(), Some("b"));
    assert!(cancelled.timed_out().is_none());

    let timed_out = futures_lite::future::block_on(timed_out_error(Duration::ZERO));
    assert!(timed_out.is_timed_out());
    assert!(!timed_out.is_cancelled());
    assert!(timed_out.cancelled().is_none());
    assert_eq!(timed_out.timed_out().unwrap().timeout(), Duration::ZERO);
}

#[test]
fn wait_error_into_io_error_kinds() {
    let manual: io::Error = WaitError::from(cancelled_error("job", "stop")).into();
    assert_eq!(manual.kind(), io::ErrorKind::Other);
    assert_eq!(
        Cancelled::from_io_error(&manual)
            .unwrap()
            .reason()
            .message(),
        Some("stop")
    );
    assert_ne!(manual.kind(), io::ErrorKind::Interrupted);

    let deadline = CancelToken::with_deadline(Instant::now());
    let by_timeout: io::Error = WaitError::from(deadline.raise_if_triggered().unwrap_err()).into();
    assert_eq!(
        by_timeout.kind(),
        io::ErrorKind::TimedOut,
        "a Timeout reason maps to TimedOut"
    );

    let timed_out: io::Error =
        futures_lite::future::block_on(timed_out_error(Duration::from_millis(1))).into();
    assert_eq!(timed_out.kind(), io::ErrorKind::TimedOut);
    assert!(timed_out
        .get_ref()
        .unwrap()
        .downcast_ref::<TimedOut>()
        .is_some());
    assert!(Cancelled::from_io_error(&timed_out).is_none());
}

// ----- executors -----

/// One scenario of each outcome, on whatever executor polls it: a winner completed from a
/// plain thread, a timeout, and a trigger from a plain thread.
async fn scenarios() {
    // A future that completes when another token is triggered from a plain thread.
    let token = CancelToken::new();
    let done = CancelToken::new();
    let (polls, dropped) = probes(1);
    let futures: Vec<Pin<Box<dyn Future<Output = &str> + Send>>> = vec![
        Box::pin(Probe::new(&polls[0], &dropped[0], usize::MAX, "never")),
        Box::pin({
            let done = done.clone();
            async move {
                done.wait_owned().await;
                "winner"
            }
        }),
    ];
    let finisher = {
        let done = done.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            done.trigger()
        })
    };
    assert_eq!(
        token.cancellable_wait(futures, Some(LIMIT)).await,
        Ok("winner")
    );
    assert!(dropped[0].get());
    finisher.join().unwrap();

    // A timeout.
    let start = Instant::now();
    let never = [
        futures_lite::future::pending::<()>(),
        futures_lite::future::pending(),
    ];
    let err = token
        .cancellable_wait(never, Some(SHORT))
        .await
        .unwrap_err();
    assert_eq!(err.timed_out().map(TimedOut::timeout), Some(SHORT));
    assert!(start.elapsed() >= SHORT);

    // A trigger from a plain thread.
    let trigger = token.clone();
    let triggerer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(5));
        trigger.trigger_with("from a thread")
    });
    let never = [futures_lite::future::pending::<()>()];
    let err = token
        .cancellable_wait(never, Some(LIMIT))
        .await
        .unwrap_err();
    assert_eq!(
        err.cancelled().unwrap().reason().message(),
        Some("from a thread")
    );
    triggerer.join().unwrap();
}

#[test]
fn under_tokio_current_thread() {
    let rt = common::current_thread_runtime();
    rt.block_on(async { tokio::time::timeout(LIMIT, scenarios()).await.unwrap() });
}

#[test]
fn under_tokio_multi_thread() {
    let rt = common::multi_thread_runtime();
    rt.block_on(async {
        tokio::time::timeout(LIMIT, tokio::spawn(scenarios()))
            .await
            .unwrap()
            .unwrap()
    });
}

#[test]
fn under_tokio_with_tokio_timers_as_the_futures() {
    let rt = common::current_thread_runtime();
    rt.block_on(async {
        let token = CancelToken::new();
        let sleeps = [
            tokio::time::sleep(Duration::from_secs(3600)),
            tokio::time::sleep(Duration::from_millis(1)),
        ];
        assert_eq!(token.cancellable_wait(sleeps, Some(LIMIT)).await, Ok(()));
    });
}

#[test]
fn under_smol() {
    within(LIMIT, || smol::block_on(smol::spawn(scenarios())));
}

#[test]
fn under_async_std() {
    within(LIMIT, || {
        async_std::task::block_on(async_std::task::spawn(scenarios()))
    });
}

#[test]
fn under_futures_lite_block_on_on_a_plain_thread() {
    within(LIMIT, || futures_lite::future::block_on(scenarios()));
}

#[test]
#[should_panic(expected = "polled after it completed")]
fn polling_again_after_it_resolved_panics_as_documented() {
    let token = CancelToken::new();
    let mut wait = token.cancellable_wait([std::future::ready(1)], None);
    assert_eq!(poll_once(&mut wait), Poll::Ready(Ok(1)));
    let _ = poll_once(&mut wait);
}

fn _cancellable_wait_is_send_for_send_futures() {
    fn assert_send<T: Send>(_: &T) {}
    let token = CancelToken::new();
    let wait = token.cancellable_wait([std::future::pending::<()>()], Some(SHORT));
    assert_send(&wait);
}
