//! Panics in user code whose payload panics again when dropped.
//!
//! A panicking waker or callback must not stop the other wake-ups, the other callbacks or the
//! propagation. The crate catches such panics, and whatever it does with a caught payload it
//! does not need (drop it) is itself user code: a payload type may panic in its `Drop`. These
//! tests register one such waker or callback among ordinary ones and check that every other
//! one still ran, and that what escapes `trigger()` is at most an ordinary unwind.
//!
//! The cases that abort the process today (a payload dropped while already unwinding) live in
//! `tests/panics_abort.rs`, which runs each in a child process so that an abort shows as one
//! failing test.

mod common;

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

use cancel_token::CancelToken;
use common::{defuse, poll_with, within, Bomb, CountingWaker, LIMIT};

/// A waker whose `wake` panics with a [`Bomb`].
struct BombWaker;

impl Wake for BombWaker {
    fn wake(self: Arc<Self>) {
        panic::panic_any(Bomb);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        panic::panic_any(Bomb);
    }
}

/// Runs `f` under `catch_unwind`, defusing whatever payload escapes; returns whether one did.
fn unwinds(f: impl FnOnce()) -> bool {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => false,
        Err(payload) => {
            defuse(payload);
            true
        }
    }
}

/// Guards: a waker that panics with a payload whose `Drop` panics does not keep the other
/// waiters of the token from being woken, nor the trigger from reaching a child. Today the
/// wake loop drops the caught payload on the spot (`let _ = catch_unwind(..)`), its second
/// panic leaves the loop, and the waiters after it are never woken.
#[test]
fn a_waker_panicking_with_a_payload_that_panics_on_drop_does_not_stop_the_others() {
    within(LIMIT, || {
        let token = CancelToken::new();
        let child = token.child();
        let mut waits = Vec::new();
        let mut wakers = Vec::new();
        // The first waiter sits inline, the others in the spill slab; the bomb is second.
        for i in 0..5 {
            let mut wait = token.clone().wait_owned();
            if i == 1 {
                let waker = Waker::from(Arc::new(BombWaker));
                let polled = std::future::Future::poll(
                    std::pin::Pin::new(&mut wait),
                    &mut std::task::Context::from_waker(&waker),
                );
                assert!(polled.is_pending());
            } else {
                let waker = CountingWaker::new();
                assert!(poll_with(&mut wait, &waker).is_pending());
                wakers.push(waker);
            }
            waits.push(wait);
        }
        let child_waker = CountingWaker::new();
        let mut child_wait = child.wait();
        assert!(poll_with(&mut child_wait, &child_waker).is_pending());

        let mut won = false;
        let unwound = unwinds(|| won = token.trigger());
        assert!(token.is_triggered());
        assert!(won || unwound, "the call triggered the token");
        let counts: Vec<usize> = wakers.iter().map(|waker| waker.count()).collect();
        assert_eq!(counts, [1, 1, 1, 1], "every other waiter is woken once");
        assert!(child.is_triggered(), "the trigger reaches the child");
        assert_eq!(child_waker.count(), 1, "the child's waiter is woken");
    });
}

/// Registers `count` callbacks on `token`, detached. Callback `i` panics with the payload
/// `panicking(i)` makes, if it gives one, and otherwise counts its runs; returns the counters.
fn register(
    token: &CancelToken,
    count: usize,
    panicking: impl Fn(usize) -> Option<fn() -> Box<dyn Any + Send>>,
) -> Vec<Arc<AtomicUsize>> {
    let mut counters = Vec::new();
    for i in 0..count {
        match panicking(i) {
            Some(payload) => token
                .on_cancel(move |_| panic::resume_unwind(payload()))
                .detach(),
            None => {
                let counter = Arc::new(AtomicUsize::new(0));
                let ran = Arc::clone(&counter);
                token
                    .on_cancel(move |_| {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })
                    .detach();
                counters.push(counter);
            }
        }
    }
    counters
}

fn bomb() -> Box<dyn Any + Send> {
    Box::new(Bomb)
}

fn plain() -> Box<dyn Any + Send> {
    Box::new("first")
}

/// Guards: a callback that panics with a payload whose `Drop` panics, after another callback
/// already panicked, does not keep the callbacks after it from running, and the trigger ends
/// in an ordinary unwind. Today the first panic's payload is kept and the bomb is dropped at
/// once (`first_panic.get_or_insert(payload)`): its second panic leaves the callback loop and
/// the callbacks after it never run.
#[test]
fn a_later_callback_panic_whose_payload_panics_on_drop_does_not_stop_the_others() {
    within(LIMIT, || {
        let token = CancelToken::new();
        let counters = register(&token, 6, |i| match i {
            1 => Some(plain),
            2 => Some(bomb),
            _ => None,
        });
        let unwound = unwinds(|| {
            token.trigger();
        });
        assert!(token.is_triggered());
        assert!(
            unwound,
            "a callback panicked, so the trigger resumes a panic"
        );
        let ran: Vec<usize> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        assert_eq!(ran, [1, 1, 1, 1], "every other callback runs once");
    });
}

/// Guards: a callback that panics with a payload whose `Drop` panics, as the only panic, does
/// not keep the others from running; the trigger ends in an ordinary unwind (the test defuses
/// whatever payload it gets).
#[test]
fn a_first_callback_panic_whose_payload_panics_on_drop_does_not_stop_the_others() {
    within(LIMIT, || {
        let token = CancelToken::new();
        let child = token.child();
        let counters = register(&token, 5, |i| (i == 0).then_some(bomb as fn() -> _));
        let child_counters = register(&child, 2, |_| None);
        let unwound = unwinds(|| {
            token.trigger();
        });
        assert!(
            unwound,
            "a callback panicked, so the trigger resumes a panic"
        );
        let ran: Vec<usize> = counters
            .iter()
            .chain(&child_counters)
            .map(|c| c.load(Ordering::SeqCst))
            .collect();
        assert_eq!(ran, [1, 1, 1, 1, 1, 1], "every other callback runs once");
    });
}
