//! No user code under a crate lock: a waker (when woken *and* when dropped) and a callback may
//! touch their own token in any way (trigger it, wait on it, register on it, make children of
//! it, drop guards and futures of it) without deadlocking.
//!
//! The first group drops a waker inside the token's machinery: a `Wait` polled with one waker
//! and then re-polled with another lets go of the first, and if that was its last clone, the
//! waker's own `Drop` runs. If the crate drops it while holding the token's lock, anything the
//! `Drop` does with the token takes that lock again on the same thread and hangs, which
//! `within` turns into a failure. The other groups (a waker's `wake`, a callback) are guards of
//! behaviour that already holds.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use cancel_token::{CallbackGuard, CancelToken, ReasonKind};
use common::{poll_once, poll_with, within, CountingWaker, Dropped, LIMIT};

/// A waker that does nothing when woken and runs its action when its last clone is dropped.
struct ActOnDrop {
    action: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Wake for ActOnDrop {
    fn wake(self: Arc<Self>) {}

    fn wake_by_ref(self: &Arc<Self>) {}
}

impl Drop for ActOnDrop {
    fn drop(&mut self) {
        let action = self
            .action
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(action) = action {
            action();
        }
    }
}

/// A waker that runs `action` when its last clone is dropped.
fn waker_acting_on_drop(action: impl FnOnce() + Send + 'static) -> Waker {
    Waker::from(Arc::new(ActOnDrop {
        action: Mutex::new(Some(Box::new(action))),
    }))
}

/// Polls `wait` pending with a waker whose drop runs `action`, lets go of the test's own clone
/// of that waker (so the token's registration holds the last one), then polls again with a
/// fresh counting waker, which makes the token replace, and so drop, the first waker. Returns
/// the second poll's result and the second waker.
fn replace_a_waker_acting_on_drop<F>(
    wait: &mut F,
    action: impl FnOnce() + Send + 'static,
) -> (Poll<()>, Arc<CountingWaker>)
where
    F: Future<Output = ()> + Unpin,
{
    let first = waker_acting_on_drop(action);
    let polled = Pin::new(&mut *wait).poll(&mut Context::from_waker(&first));
    assert!(polled.is_pending(), "the token is not triggered yet");
    drop(first);
    let second = CountingWaker::new();
    let polled = poll_with(wait, &second);
    (polled, second)
}

/// Guards: a waker dropped when a `Wait` moves to a new waker may trigger the token, through
/// a `DropGuard` it owns. Today the old waker is dropped under the token's lock
/// (`clone_from` in `register_waiter`) and the trigger takes that lock again: a self-deadlock.
#[test]
fn a_replaced_waker_whose_drop_triggers_the_token_through_a_drop_guard() {
    within(LIMIT, || {
        let token = CancelToken::new();
        let guard = token.clone().drop_guard();
        let mut wait = token.wait();
        let (polled, second) = replace_a_waker_acting_on_drop(&mut wait, move || drop(guard));
        assert!(
            token.is_triggered(),
            "the first waker's drop dropped the guard, which triggers the token"
        );
        assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
        assert!(
            polled.is_ready() || second.count() == 1,
            "either the second poll saw the trigger, or the trigger woke the second waker \
             (woken {} times)",
            second.count()
        );
        assert!(poll_with(&mut wait, &second).is_ready());
    });
}

/// Guards: a waker dropped when a `Wait` moves to a new waker may drop another registered
/// waiter of the same token (a `WaitOwned` it owns), which unregisters it. Today that
/// unregistration takes the lock the replacement holds: a self-deadlock.
#[test]
fn a_replaced_waker_whose_drop_drops_a_registered_wait_owned_of_the_token() {
    within(LIMIT, || {
        let token = CancelToken::new();
        let mut owned = token.clone().wait_owned();
        let owned_waker = CountingWaker::new();
        assert!(poll_with(&mut owned, &owned_waker).is_pending());
        let dropped = Dropped::new();
        let flag = dropped.guard();
        let mut wait = token.wait();
        let (polled, second) = replace_a_waker_acting_on_drop(&mut wait, move || {
            drop(owned);
            drop(flag);
        });
        assert!(polled.is_pending());
        assert!(
            dropped.get(),
            "the first waker was dropped, and the WaitOwned with it"
        );

        assert!(token.trigger());
        assert_eq!(second.count(), 1, "the live waiter is woken once");
        assert_eq!(
            owned_waker.count(),
            0,
            "the dropped WaitOwned was unregistered and is not woken"
        );
        assert!(poll_with(&mut wait, &second).is_ready());
    });
}

/// Guards: a waker dropped when a `Wait` moves to a new waker may register a callback on the
/// same token. Today the registration takes the lock the replacement holds: a self-deadlock.
#[test]
fn a_replaced_waker_whose_drop_registers_a_callback_on_the_token() {
    within(LIMIT, || {
        let token = CancelToken::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let mut wait = token.wait();
        let (polled, second) = replace_a_waker_acting_on_drop(&mut wait, {
            let token = token.clone();
            let ran = Arc::clone(&ran);
            move || {
                token
                    .on_cancel(move |_| {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })
                    .detach();
            }
        });
        assert!(polled.is_pending());
        assert_eq!(ran.load(Ordering::SeqCst), 0, "not triggered yet");

        assert!(token.trigger());
        assert_eq!(
            ran.load(Ordering::SeqCst),
            1,
            "the callback the waker's drop registered runs once"
        );
        assert_eq!(second.count(), 1);
        assert!(poll_with(&mut wait, &second).is_ready());
    });
}

/// Guards: a waker dropped when a `Wait` moves to a new waker may make a child of the same
/// token. Today linking the child takes the lock the replacement holds: a self-deadlock.
#[test]
fn a_replaced_waker_whose_drop_makes_a_child_of_the_token() {
    within(LIMIT, || {
        let token = CancelToken::new();
        let slot: Arc<Mutex<Option<CancelToken>>> = Arc::new(Mutex::new(None));
        let mut wait = token.wait();
        let (polled, second) = replace_a_waker_acting_on_drop(&mut wait, {
            let token = token.clone();
            let slot = Arc::clone(&slot);
            move || *slot.lock().unwrap() = Some(token.child())
        });
        assert!(polled.is_pending());
        let child = slot
            .lock()
            .unwrap()
            .take()
            .expect("the first waker's drop ran");
        assert!(!child.is_triggered());

        assert!(token.trigger());
        assert!(child.is_triggered(), "the child made in the drop is linked");
        assert_eq!(child.triggered_token(), Some(token.clone()));
        assert_eq!(second.count(), 1);
    });
}

/// Guards: a waker dropped when a `Wait` moves to a new waker may own the last handle of a
/// child of the same token, whose drop unlinks it from the token. Today the unlinking takes
/// the lock the replacement holds: a self-deadlock.
#[test]
fn a_replaced_waker_whose_drop_drops_the_last_handle_of_a_child_of_the_token() {
    within(LIMIT, || {
        let token = CancelToken::new();
        let child = token.child();
        let dropped = Dropped::new();
        let flag = dropped.guard();
        let mut wait = token.wait();
        let (polled, second) = replace_a_waker_acting_on_drop(&mut wait, move || {
            drop(child);
            drop(flag);
        });
        assert!(polled.is_pending());
        assert!(
            dropped.get(),
            "the first waker was dropped, and the child with it"
        );

        assert!(token.trigger());
        assert_eq!(second.count(), 1);
    });
}

/// A waker that runs its action each time it is woken.
struct ActOnWake {
    action: Box<dyn Fn() + Send + Sync>,
}

impl Wake for ActOnWake {
    fn wake(self: Arc<Self>) {
        (self.action)();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        (self.action)();
    }
}

/// Guards: a waker whose `wake` uses the token that is waking it: triggers it again, waits on
/// it (async and blocking), makes a child of it, registers a callback on it and drops a
/// `DropGuard` of it. Everything sees the token triggered and nothing hangs.
#[test]
fn a_waker_may_use_its_own_token_when_woken() {
    within(LIMIT, || {
        let token = CancelToken::new();
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let action = {
            let token = token.clone();
            let seen = Arc::clone(&seen);
            move || {
                let mut log = Vec::new();
                log.push(format!("trigger again: {}", token.trigger()));
                token.wait_blocking();
                log.push(format!(
                    "wait ready: {}",
                    poll_once(&mut token.wait()).is_ready()
                ));
                let child = token.child();
                log.push(format!("child triggered: {}", child.is_triggered()));
                let ran = Arc::new(AtomicUsize::new(0));
                let counter = Arc::clone(&ran);
                token
                    .on_cancel(move |_| {
                        counter.fetch_add(1, Ordering::SeqCst);
                    })
                    .detach();
                log.push(format!("callback ran: {}", ran.load(Ordering::SeqCst)));
                drop(token.clone().drop_guard());
                seen.lock().unwrap().extend(log);
            }
        };
        let waker = Waker::from(Arc::new(ActOnWake {
            action: Box::new(action),
        }));
        let mut wait = token.wait();
        assert!(Pin::new(&mut wait)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        drop(waker);

        assert!(token.trigger());
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "trigger again: false",
                "wait ready: true",
                "child triggered: true",
                "callback ran: 1",
            ]
        );
        assert!(poll_once(&mut wait).is_ready());
    });
}

/// Guards: a waker whose `wake` triggers another token that is a parent of the token being
/// woken (`n = any(root, other)`, woken by `root`, the waker triggers `other`): the second
/// trigger meets `n` mid-wake on the same thread and must not wait for the wake-up it is part
/// of.
#[test]
fn a_waker_may_trigger_another_parent_of_its_token_when_woken() {
    within(LIMIT, || {
        let root = CancelToken::new();
        let other = CancelToken::new();
        let n = CancelToken::any([&root, &other]);
        let below = n.child();
        let results = Arc::new(Mutex::new(Vec::new()));
        let waker = Waker::from(Arc::new(ActOnWake {
            action: Box::new({
                let other = other.clone();
                let results = Arc::clone(&results);
                move || results.lock().unwrap().push(other.trigger())
            }),
        }));
        let mut wait = n.wait();
        assert!(Pin::new(&mut wait)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        drop(waker);

        assert!(root.trigger());
        assert_eq!(
            *results.lock().unwrap(),
            [true],
            "woken once, and its trigger won"
        );
        assert!(other.is_triggered() && n.is_triggered() && below.is_triggered());
        assert_eq!(n.triggered_token(), Some(root.clone()));
        assert_eq!(below.triggered_token(), Some(root.clone()));
    });
}

/// Guards: a callback may use its own token: make a child (born triggered), register another
/// callback (runs at once, before `on_cancel` returns), wait on it (async and blocking),
/// trigger it again (`false`) and drop its own guard (which must not wait for itself).
#[test]
fn a_callback_may_use_its_own_token() {
    within(LIMIT, || {
        let token = CancelToken::named("self");
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let own_guard: Arc<Mutex<Option<CallbackGuard>>> = Arc::new(Mutex::new(None));
        let guard = token.on_cancel({
            let token = token.clone();
            let log = Arc::clone(&log);
            let own_guard = Arc::clone(&own_guard);
            move |reason| {
                let mut lines = vec![format!("reason: {reason}")];
                let child = token.child();
                lines.push(format!(
                    "child triggered by self: {}",
                    child.triggered_token().as_ref() == Some(&token)
                ));
                let nested = Arc::new(AtomicUsize::new(0));
                let counter = Arc::clone(&nested);
                let nested_guard = token.on_cancel(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                });
                lines.push(format!("nested ran: {}", nested.load(Ordering::SeqCst)));
                drop(nested_guard);
                lines.push(format!(
                    "wait ready: {}",
                    poll_once(&mut token.wait()).is_ready()
                ));
                token.wait_blocking();
                lines.push(format!("trigger again: {}", token.trigger()));
                let guard = own_guard.lock().unwrap().take();
                drop(guard);
                lines.push("dropped own guard".to_string());
                log.lock().unwrap().extend(lines);
            }
        });
        *own_guard.lock().unwrap() = Some(guard);

        assert!(token.trigger_with("stop"));
        assert_eq!(
            *log.lock().unwrap(),
            [
                "reason: stop",
                "child triggered by self: true",
                "nested ran: 1",
                "wait ready: true",
                "trigger again: false",
                "dropped own guard",
            ]
        );
    });
}
