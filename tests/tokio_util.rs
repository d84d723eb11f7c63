//! Feature `tokio-util`: bridges between a `CancelToken` and tokio-util's
//! `CancellationToken`, in either direction (`from_tokio_util`, `to_tokio_util`) and both ways
//! (`link_tokio_util`), under tokio and with no runtime at all, and when both sides fire at
//! once. Memory is in `tokio_util_memory.rs`.

#![cfg(feature = "tokio-util")]

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::Poll;
use std::thread;

use cancel_token::{CancelToken, ReasonKind};
use common::{poll_with, scaled, within, CountingWaker, LIMIT};
use tokio_util::sync::CancellationToken;

const MESSAGE: &str = "tokio-util token cancelled";

/// A counter bumped by a callback registered on `token` for the rest of its life.
fn count_callbacks(token: &CancelToken) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    token
        .on_cancel(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .detach();
    count
}

/// A tokio-util waiter on `token`, polled once with a counting waker, kept pending.
fn tokio_util_waiter(
    token: &CancellationToken,
) -> (
    std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    Arc<CountingWaker>,
) {
    let waker = CountingWaker::new();
    let mut waiter = Box::pin(token.clone().cancelled_owned());
    assert!(poll_with(&mut waiter, &waker).is_pending());
    (waiter, waker)
}

// ----- tokio-util -> ours -----

#[test]
fn cancel_triggers_the_bridged_token_on_its_thread_before_it_returns() {
    let source = CancellationToken::new();
    let token = CancelToken::from_tokio_util(&source);
    let child = token.child();
    let ran_on = Arc::new(Mutex::new(None));
    let _callback = child.on_cancel({
        let ran_on = Arc::clone(&ran_on);
        move |reason| {
            assert_eq!(reason.message(), Some(MESSAGE));
            *ran_on.lock().unwrap() = Some(thread::current().id());
        }
    });
    assert!(!token.is_triggered());

    source.cancel();
    assert!(token.is_triggered() && child.is_triggered());
    assert_eq!(*ran_on.lock().unwrap(), Some(thread::current().id()));
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Manual);
    assert_eq!(reason.message(), Some(MESSAGE));
    assert_eq!(child.triggered_token(), Some(token.clone()));
    assert_eq!(
        token.raise_if_triggered().unwrap_err().to_string(),
        format!("cancellation requested: {MESSAGE}")
    );
}

#[test]
fn born_triggered_when_the_source_is_cancelled_already() {
    let source = CancellationToken::new();
    source.cancel();
    let token = CancelToken::from_tokio_util(&source);
    assert_eq!(token.reason().unwrap().message(), Some(MESSAGE));
}

#[test]
fn one_way_a_trigger_of_the_bridged_token_leaves_the_source_alone() {
    let source = CancellationToken::new();
    let token = CancelToken::from_tokio_util(&source);
    let sibling = CancelToken::from_tokio_util(&source);
    token.trigger_with("local stop");
    assert!(!source.is_cancelled());
    assert!(!sibling.is_triggered());
    source.cancel();
    assert_eq!(token.reason().unwrap().message(), Some("local stop"));
    assert_eq!(sibling.reason().unwrap().message(), Some(MESSAGE));
}

#[test]
fn a_tokio_util_parent_reaches_the_bridged_token_after_the_child_handle_is_dropped() {
    let parent = CancellationToken::new();
    let child = parent.child_token();
    let token = CancelToken::from_tokio_util(&child);
    drop(child);
    parent.cancel();
    assert!(token.is_triggered());
}

#[test]
fn wakes_blocking_and_async_waiters_with_no_runtime() {
    let source = CancellationToken::new();
    let token = CancelToken::from_tokio_util(&source);
    within(LIMIT, move || {
        let blocking = thread::spawn({
            let token = token.clone();
            move || token.wait_blocking()
        });
        let polled = thread::spawn({
            let token = token.clone();
            move || futures_lite::future::block_on(token.wait_owned())
        });
        let waker = CountingWaker::new();
        let mut wait = token.wait();
        assert!(poll_with(&mut wait, &waker).is_pending());
        source.cancel();
        assert_eq!(
            waker.count(),
            1,
            "woken once, by cancel(), with no executor"
        );
        assert_eq!(poll_with(&mut wait, &waker), Poll::Ready(()));
        blocking.join().unwrap();
        polled.join().unwrap();
    });
}

#[test]
fn a_panicking_callback_does_not_stop_tokio_util_from_waking_its_other_waiters() {
    let source = CancellationToken::new();
    let before = CancelToken::from_tokio_util(&source);
    let (mut waiter_before, woken_before) = tokio_util_waiter(&source);
    let panicking = CancelToken::from_tokio_util(&source);
    let _callback = panicking.on_cancel(|_| panic!("callback panic"));
    let after = CancelToken::from_tokio_util(&source);
    let (mut waiter_after, woken_after) = tokio_util_waiter(&source);
    let tokio_child = source.child_token();
    let (_waiter_child, woken_child) = tokio_util_waiter(&tokio_child);

    let cancelled = panic::catch_unwind(AssertUnwindSafe(|| source.cancel()));
    assert!(cancelled.is_ok(), "the callback's panic reached cancel()");
    assert!(before.is_triggered() && panicking.is_triggered() && after.is_triggered());
    assert_eq!(
        (
            woken_before.count(),
            woken_after.count(),
            woken_child.count()
        ),
        (1, 1, 1)
    );
    assert!(poll_with(&mut waiter_before, &woken_before).is_ready());
    assert!(poll_with(&mut waiter_after, &woken_after).is_ready());
}

#[test]
fn a_callback_may_use_the_tokio_util_token_from_inside_its_cancel() {
    within(LIMIT, || {
        let source = CancellationToken::new();
        let token = CancelToken::from_tokio_util(&source);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let _callback = token.on_cancel({
            let source = source.clone();
            let seen = Arc::clone(&seen);
            move |_| {
                let mut seen = seen.lock().unwrap();
                seen.push(source.is_cancelled());
                seen.push(source.child_token().is_cancelled());
                source.cancel(); // again, from inside the first cancel()
                seen.push(CancelToken::from_tokio_util(&source).is_triggered());
                seen.push(CancelToken::new().to_tokio_util().is_cancelled());
                drop(source);
            }
        });
        source.cancel();
        assert_eq!(*seen.lock().unwrap(), [true, true, true, false]);
    });
}

// ----- ours -> tokio-util -----

#[test]
fn a_trigger_cancels_every_returned_token_before_it_returns() {
    let token = CancelToken::named("request");
    let first = token.to_tokio_util();
    let second = token.to_tokio_util();
    let grandchild = second.child_token();
    let (_waiter, woken) = tokio_util_waiter(&first);
    assert!(!first.is_cancelled() && !second.is_cancelled());

    token.trigger();
    assert!(first.is_cancelled() && second.is_cancelled() && grandchild.is_cancelled());
    assert_eq!(woken.count(), 1);
    assert!(token.to_tokio_util().is_cancelled(), "born cancelled");
}

#[test]
fn one_way_cancelling_a_returned_token_triggers_nothing_else() {
    let token = CancelToken::new();
    let first = token.to_tokio_util();
    let second = token.to_tokio_util();
    first.cancel();
    assert!(!token.is_triggered());
    assert!(!second.is_cancelled(), "siblings are independent");
    token.trigger();
    assert!(second.is_cancelled());
}

#[test]
fn a_parent_trigger_reaches_the_tokens_returned_for_a_child() {
    let shutdown = CancelToken::new();
    let request = shutdown.child();
    let cancel = request.to_tokio_util();
    drop(request);
    shutdown.trigger();
    assert!(cancel.is_cancelled());
}

#[test]
fn a_returned_token_follows_every_ancestor_of_a_dropped_chain_of_children() {
    // A chain far deeper than any recursion could handle on a 2 MiB stack.
    let depth = scaled(100_000);
    let (middle_cancel, leaf_cancel, root) = common::on_thread_with_stack(2 << 20, move || {
        let root = CancelToken::new();
        let mut middle = None;
        let mut node = root.clone();
        for level in 0..depth {
            node = node.child();
            if level == depth / 2 {
                middle = Some(node.clone());
            }
        }
        let leaf_cancel = node.to_tokio_util();
        drop(node);
        let middle = middle.unwrap();
        let middle_cancel = middle.to_tokio_util();
        middle.trigger();
        (middle_cancel, leaf_cancel, root)
    });
    assert!(middle_cancel.is_cancelled());
    assert!(
        leaf_cancel.is_cancelled(),
        "a dropped leaf follows its ancestors"
    );
    drop(root);
}

#[test]
fn a_chain_token_is_followed_while_it_lives() {
    let (user, shutdown) = (CancelToken::new(), CancelToken::new());
    let request = user.chain(&shutdown);
    let cancel = request.to_tokio_util();
    shutdown.trigger();
    assert!(cancel.is_cancelled());
    assert!(!user.is_triggered());
}

#[test]
fn a_deadline_reaches_the_returned_token() {
    let token = CancelToken::with_timeout(std::time::Duration::from_millis(20));
    let cancel = token.to_tokio_util();
    within(LIMIT, move || {
        futures_lite::future::block_on(cancel.cancelled_owned())
    });
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Timeout);
}

#[test]
fn a_plain_thread_blocked_on_a_returned_token_wakes_with_no_runtime() {
    let token = CancelToken::new();
    within(LIMIT, move || {
        let cancel = token.to_tokio_util();
        let waiter =
            thread::spawn(move || futures_lite::future::block_on(cancel.cancelled_owned()));
        token.trigger();
        waiter.join().unwrap();
    });
}

#[test]
fn a_library_built_on_tokio_util_stops_under_tokio() {
    // Two common shapes of tokio-util code: `run_until_cancelled` and `select!`.
    async fn poll_forever(cancel: CancellationToken) -> Option<()> {
        cancel.run_until_cancelled(std::future::pending()).await
    }
    async fn serve(cancel: CancellationToken) -> &'static str {
        tokio::select! {
            _ = cancel.cancelled() => "stopped",
            _ = std::future::pending::<()>() => "unreachable",
        }
    }
    let rt = common::multi_thread_runtime();
    let token = CancelToken::new();
    let outcome = rt.block_on(async {
        let polling = tokio::spawn(poll_forever(token.to_tokio_util()));
        let serving = tokio::spawn(serve(token.to_tokio_util()));
        let trigger = token.clone();
        thread::spawn(move || trigger.trigger_with("deploy"));
        let both = async { (polling.await.unwrap(), serving.await.unwrap()) };
        tokio::time::timeout(LIMIT, both)
            .await
            .expect("the library did not see the trigger")
    });
    assert_eq!(outcome, (None, "stopped"));
}

#[test]
fn a_tokio_task_on_a_bridged_token_wakes_when_tokio_util_cancels() {
    let rt = common::current_thread_runtime();
    let source = CancellationToken::new();
    let token = CancelToken::from_tokio_util(&source);
    let message = rt.block_on(async {
        let task = tokio::spawn({
            let token = token.clone();
            async move { token.run(std::future::pending::<()>()).await }
        });
        tokio::task::yield_now().await;
        source.cancel();
        tokio::time::timeout(LIMIT, task).await.unwrap().unwrap()
    });
    let err = message.unwrap_err();
    assert_eq!(err.reason().message(), Some(MESSAGE));
}

// ----- both ways -----

#[test]
fn link_works_both_ways_and_the_guard_unlinks() {
    let ours = CancelToken::new();
    let theirs = CancellationToken::new();
    let link = ours.link_tokio_util(&theirs);
    theirs.cancel();
    assert_eq!(ours.reason().unwrap().message(), Some(MESSAGE));
    drop(link);

    let ours = CancelToken::new();
    let theirs = CancellationToken::new();
    let link = ours.link_tokio_util(&theirs);
    assert!(link.is_pending());
    ours.trigger_with("ours");
    assert!(theirs.is_cancelled(), "cancelled before trigger returned");
    assert!(!link.is_pending());

    let ours = CancelToken::new();
    let theirs = CancellationToken::new();
    drop(ours.link_tokio_util(&theirs));
    theirs.cancel();
    assert!(!ours.is_triggered(), "unlinked one way");
    let theirs = CancellationToken::new();
    drop(ours.link_tokio_util(&theirs));
    ours.trigger();
    assert!(!theirs.is_cancelled(), "unlinked the other way");
}

#[test]
fn a_detached_link_lives_as_long_as_our_token() {
    let ours = CancelToken::new();
    let theirs = CancellationToken::new();
    ours.link_tokio_util(&theirs).detach();
    ours.trigger();
    assert!(theirs.is_cancelled());
}

#[test]
fn linking_to_a_cancelled_side_cancels_the_other_at_once() {
    let ours = CancelToken::new();
    let theirs = CancellationToken::new();
    theirs.cancel();
    let link = ours.link_tokio_util(&theirs);
    assert_eq!(ours.reason().unwrap().message(), Some(MESSAGE));
    assert!(!link.is_pending());

    let ours = CancelToken::new();
    ours.trigger();
    let theirs = CancellationToken::new();
    let _link = ours.link_tokio_util(&theirs);
    assert!(theirs.is_cancelled());
}

/// Both sides of each pair `make` returns fire at once, from two threads, many times: each
/// side ends cancelled exactly once (one run of our callbacks, one wake of a tokio-util
/// waiter), and our reason is that of whichever trigger won.
fn fire_both_sides(make: fn() -> (CancelToken, CancellationToken), ours_can_lose: bool) {
    within(LIMIT, move || {
        for round in 0..scaled(2_000) {
            let (ours, theirs) = make();
            let ran = count_callbacks(&ours);
            let (_waiter, woken) = tokio_util_waiter(&theirs);
            let barrier = Arc::new(Barrier::new(2));
            let ours_side = thread::spawn({
                let (ours, barrier) = (ours.clone(), Arc::clone(&barrier));
                move || {
                    barrier.wait();
                    ours.trigger_with("ours")
                }
            });
            barrier.wait();
            theirs.cancel();
            let won = ours_side.join().unwrap();
            assert!(
                ours.is_triggered() && theirs.is_cancelled(),
                "round {round}"
            );
            assert_eq!(ran.load(Ordering::SeqCst), 1, "round {round}");
            assert_eq!(woken.count(), 1, "round {round}");
            let expected = if won { "ours" } else { MESSAGE };
            assert_eq!(
                ours.reason().unwrap().message(),
                Some(expected),
                "round {round}"
            );
            assert!(won || ours_can_lose, "round {round}");
        }
    });
}

#[test]
fn link_both_sides_at_once_each_ends_cancelled_exactly_once() {
    fire_both_sides(
        || {
            let (ours, theirs) = (CancelToken::new(), CancellationToken::new());
            ours.link_tokio_util(&theirs).detach();
            (ours, theirs)
        },
        true,
    );
}

#[test]
fn from_tokio_util_both_sides_at_once_each_ends_cancelled_exactly_once() {
    fire_both_sides(
        || {
            let theirs = CancellationToken::new();
            (CancelToken::from_tokio_util(&theirs), theirs)
        },
        true,
    );
}

#[test]
fn to_tokio_util_both_sides_at_once_each_ends_cancelled_exactly_once() {
    fire_both_sides(
        || {
            let ours = CancelToken::new();
            let theirs = ours.to_tokio_util();
            (ours, theirs)
        },
        false,
    );
}
