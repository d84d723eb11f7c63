//! `cancelled()` (the error of a triggered token as an `Option`) and the sleeps a trigger cuts
//! short: `sleep`, `sleep_owned` and `sleep_blocking`. Polled by hand with counting wakers
//! where the outcome does not depend on the clock; real time only where the duration itself is
//! under test.

mod common;

use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use cancel_token::{CancelToken, ReasonKind};
use common::{poll_once, poll_with, within, CountingWaker, LIMIT};

const HOUR: Duration = Duration::from_secs(3600);

// ----- cancelled() -----

#[test]
fn cancelled_is_none_until_the_token_is_triggered() {
    let token = CancelToken::named("job");
    assert!(token.cancelled().is_none());
    token.trigger_with("stop");
    let cancelled = token.cancelled().expect("triggered");
    assert_eq!(Err(cancelled.clone()), token.raise_if_triggered());
    assert_eq!(cancelled.token(), &token);
    assert_eq!(
        cancelled.to_string(),
        "cancellation requested by token job: stop"
    );
}

#[test]
fn cancelled_of_a_descendant_names_the_origin() {
    let parent = CancelToken::named("server");
    let child = parent.child().child();
    parent.trigger_with(ReasonKind::Signal);
    let cancelled = child.cancelled().expect("triggered through its parent");
    assert_eq!(cancelled.token(), &parent);
    assert_eq!(cancelled.reason().kind(), ReasonKind::Signal);
}

// ----- sleep: deterministic outcomes -----

#[test]
fn a_zero_sleep_is_ok_at_the_first_poll() {
    let token = CancelToken::new();
    let mut sleep = token.sleep(Duration::ZERO);
    assert_eq!(poll_once(&mut sleep), Poll::Ready(Ok(())));
}

#[test]
fn a_pre_triggered_token_gives_err_at_the_first_poll_whatever_the_duration() {
    let token = CancelToken::named("pre");
    token.trigger_with("already");
    for duration in [
        Duration::ZERO,
        Duration::from_millis(1),
        HOUR,
        Duration::MAX,
    ] {
        let mut sleep = token.sleep(duration);
        match poll_once(&mut sleep) {
            Poll::Ready(Err(cancelled)) => {
                assert_eq!(cancelled.reason().message(), Some("already"));
                assert_eq!(cancelled.token(), &token);
            }
            other => panic!("{duration:?}: {other:?}"),
        }
    }
}

#[test]
fn cancellation_wins_a_tie_with_an_elapsed_duration() {
    // The zero duration has elapsed before the first poll, and so has the trigger.
    let token = CancelToken::new();
    let mut sleep = token.sleep(Duration::ZERO);
    token.trigger();
    assert!(matches!(poll_once(&mut sleep), Poll::Ready(Err(_))));
}

#[test]
fn a_trigger_wakes_a_pending_sleep_once_and_it_resolves_to_err() {
    let token = CancelToken::new();
    let waker = CountingWaker::new();
    let mut sleep = token.sleep(HOUR);
    assert_eq!(poll_with(&mut sleep, &waker), Poll::Pending);
    assert_eq!(poll_with(&mut sleep, &waker), Poll::Pending);
    assert_eq!(waker.count(), 0);

    token.trigger_with("user pressed stop");
    assert_eq!(waker.count(), 1, "one registration, one wake-up");
    match poll_with(&mut sleep, &waker) {
        Poll::Ready(Err(cancelled)) => {
            assert_eq!(cancelled.reason().message(), Some("user pressed stop"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn duration_max_sleeps_until_the_token_is_triggered() {
    let token = CancelToken::new();
    let waker = CountingWaker::new();
    let mut sleep = token.sleep(Duration::MAX);
    assert_eq!(poll_with(&mut sleep, &waker), Poll::Pending);
    token.trigger();
    assert_eq!(waker.count(), 1);
    assert!(matches!(poll_with(&mut sleep, &waker), Poll::Ready(Err(_))));
}

#[test]
fn a_trigger_through_a_parent_ends_the_sleep_with_the_parents_reason() {
    let parent = CancelToken::named("shutdown");
    let token = parent.child();
    let waker = CountingWaker::new();
    let mut sleep = token.sleep(HOUR);
    assert_eq!(poll_with(&mut sleep, &waker), Poll::Pending);
    parent.trigger_with("maintenance");
    assert_eq!(waker.count(), 1);
    match poll_with(&mut sleep, &waker) {
        Poll::Ready(Err(cancelled)) => assert_eq!(cancelled.token(), &parent),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dropping_a_pending_sleep_leaves_the_token_alone() {
    let token = CancelToken::new();
    let mut sleep = token.sleep(HOUR);
    assert_eq!(poll_once(&mut sleep), Poll::Pending);
    drop(sleep);
    assert!(!token.is_triggered());
    assert_eq!(
        token.deadline(),
        None,
        "the sleep's timer was never the token's"
    );
    // The token works as before.
    let mut again = token.sleep(Duration::ZERO);
    assert_eq!(poll_once(&mut again), Poll::Ready(Ok(())));
}

#[test]
fn sleep_and_sleep_owned_show_their_token() {
    let token = CancelToken::named("poller");
    let sleep = token.sleep(HOUR);
    assert_eq!(sleep.token(), &token);
    let text = format!("{sleep:?}");
    assert!(
        text.starts_with("Sleep") && text.contains("poller"),
        "{text}"
    );

    let owned = common::assert_send_static(token.clone().sleep_owned(HOUR));
    assert_eq!(owned.token(), &token);
    assert!(format!("{owned:?}").starts_with("SleepOwned"));
}

// ----- sleep: real time -----

#[test]
fn a_sleep_ends_with_ok_after_its_duration() {
    let token = CancelToken::new();
    let outcome = within(LIMIT, move || {
        let start = Instant::now();
        let outcome = futures_lite::future::block_on(token.sleep(Duration::from_millis(30)));
        (outcome, start.elapsed())
    });
    assert_eq!(outcome.0, Ok(()));
    assert!(outcome.1 >= Duration::from_millis(30), "never early");
}

#[test]
fn the_tokens_own_deadline_ends_the_sleep_with_err() {
    let token = CancelToken::with_timeout(Duration::from_millis(10));
    let err = within(LIMIT, move || {
        futures_lite::future::block_on(token.sleep(HOUR)).unwrap_err()
    });
    assert_eq!(err.reason().kind(), ReasonKind::Timeout);
    assert_eq!(err.reason().message(), Some("deadline of 10ms elapsed"));
}

#[test]
fn sleep_owned_is_cut_short_from_another_thread_on_tokio() {
    let token = CancelToken::new();
    let sleep = token.clone().sleep_owned(HOUR);
    let trigger = token.clone();
    let outcome = within(LIMIT, move || {
        let runtime = common::current_thread_runtime();
        thread::spawn(move || trigger.trigger_with("from a thread"));
        runtime.block_on(sleep)
    });
    assert_eq!(
        outcome.unwrap_err().reason().message(),
        Some("from a thread")
    );
}

// ----- sleep_blocking -----

#[test]
fn sleep_blocking_follows_the_same_rules() {
    let token = CancelToken::new();
    assert_eq!(token.sleep_blocking(Duration::ZERO), Ok(()));
    let start = Instant::now();
    assert_eq!(token.sleep_blocking(Duration::from_millis(20)), Ok(()));
    assert!(start.elapsed() >= Duration::from_millis(20), "never early");

    token.trigger_with("done");
    for duration in [Duration::ZERO, HOUR, Duration::MAX] {
        let err = token.sleep_blocking(duration).unwrap_err();
        assert_eq!(err.reason().message(), Some("done"), "{duration:?}");
    }
}

#[test]
fn sleep_blocking_returns_err_as_soon_as_another_thread_triggers() {
    for duration in [HOUR, Duration::MAX] {
        let token = CancelToken::new();
        let sleeper = {
            let token = token.clone();
            thread::spawn(move || token.sleep_blocking(duration))
        };
        token.trigger_with("wake up");
        let outcome = within(LIMIT, move || sleeper.join().unwrap());
        assert_eq!(outcome.unwrap_err().reason().message(), Some("wake up"));
    }
}
