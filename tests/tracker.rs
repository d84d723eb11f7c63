//! `TaskTracker`: counting tracked futures and guards, closing and reopening, and waiting for
//! "closed and empty" from futures (any executor) and plain threads.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use cancel_token::{CancelToken, TaskTracker, TrackerGuard};
use common::{assert_send_static, poll_once, poll_with, within, CountingWaker, LIMIT};

#[test]
fn a_tracked_future_counts_until_it_completes() {
    let tracker = TaskTracker::new();
    let mut task = Box::pin(tracker.track(async { 7 }));
    assert_eq!(
        tracker.len(),
        1,
        "counted from the call, not the first poll"
    );
    assert_eq!(poll_once(&mut task), Poll::Ready(7));
    assert_eq!(
        tracker.len(),
        0,
        "no longer counted once complete, though still alive"
    );
    drop(task);
    assert!(tracker.is_empty());
}

#[test]
fn a_tracked_future_dropped_unfinished_stops_counting() {
    let tracker = TaskTracker::new();
    let mut task = Box::pin(tracker.track(std::future::pending::<()>()));
    assert_eq!(poll_once(&mut task), Poll::Pending);
    assert_eq!(tracker.len(), 1);
    drop(task);
    assert_eq!(tracker.len(), 0);
}

#[test]
fn guards_count_while_they_live_and_know_their_tracker() {
    let tracker = TaskTracker::new();
    let guards: Vec<TrackerGuard> = (0..5).map(|_| tracker.enter()).collect();
    assert_eq!(tracker.len(), 5);
    assert!(guards[0].tracker().len() == 5);
    drop(guards);
    assert!(tracker.is_empty());
}

#[test]
fn waiting_needs_closed_and_empty() {
    let tracker = TaskTracker::new();
    let mut wait = tracker.wait();
    assert_eq!(
        poll_once(&mut wait),
        Poll::Pending,
        "open and empty is not done"
    );

    let guard = tracker.enter();
    let counter = CountingWaker::new();
    assert!(tracker.close());
    assert_eq!(
        poll_with(&mut wait, &counter),
        Poll::Pending,
        "closed, one task left"
    );
    assert_eq!(counter.count(), 0);

    drop(guard);
    assert_eq!(counter.count(), 1, "the last task out wakes the waiter");
    assert_eq!(poll_with(&mut wait, &counter), Poll::Ready(()));
    assert_eq!(
        poll_once(&mut tracker.wait()),
        Poll::Ready(()),
        "a new wait is ready at once"
    );
}

#[test]
fn closing_an_empty_tracker_wakes_its_waiters() {
    let tracker = TaskTracker::new();
    let counter = CountingWaker::new();
    let mut wait = tracker.wait();
    let mut owned = tracker.clone().wait_owned();
    assert_eq!(poll_with(&mut wait, &counter), Poll::Pending);
    assert_eq!(poll_with(&mut owned, &counter), Poll::Pending);
    assert!(tracker.close());
    assert_eq!(counter.count(), 2, "both waiters woken");
    assert_eq!(poll_with(&mut wait, &counter), Poll::Ready(()));
    assert_eq!(poll_with(&mut owned, &counter), Poll::Ready(()));
    assert!(!tracker.close(), "closed already");
}

#[test]
fn tasks_tracked_after_closing_delay_the_waiters() {
    let tracker = TaskTracker::new();
    tracker.close();
    let late = tracker.enter();
    let counter = CountingWaker::new();
    let mut wait = tracker.wait();
    assert_eq!(poll_with(&mut wait, &counter), Poll::Pending);
    drop(late);
    assert_eq!(counter.count(), 1);
    assert_eq!(poll_with(&mut wait, &counter), Poll::Ready(()));
}

#[test]
fn reopening_makes_waiters_wait_again_and_finished_waits_stay_finished() {
    let tracker = TaskTracker::new();
    tracker.close();
    tracker.wait_blocking();
    assert!(tracker.reopen());
    assert!(!tracker.is_closed());
    assert!(!tracker.reopen(), "open already");

    let mut wait = tracker.wait();
    assert_eq!(poll_once(&mut wait), Poll::Pending, "open again");
    assert!(!tracker.wait_blocking_timeout(Duration::from_millis(5)));
    let counter = CountingWaker::new();
    assert_eq!(poll_with(&mut wait, &counter), Poll::Pending);
    tracker.close();
    assert_eq!(counter.count(), 1, "closing it again wakes the new waiters");
    assert_eq!(poll_with(&mut wait, &counter), Poll::Ready(()));
}

#[test]
fn reopening_before_the_last_task_leaves_keeps_waiters_waiting() {
    let tracker = TaskTracker::new();
    let guard = tracker.enter();
    tracker.close();
    let counter = CountingWaker::new();
    let mut wait = tracker.wait();
    assert_eq!(poll_with(&mut wait, &counter), Poll::Pending);
    tracker.reopen();
    drop(guard);
    assert_eq!(
        counter.count(),
        0,
        "open: the last task leaving is not the end"
    );
    assert_eq!(poll_with(&mut wait, &counter), Poll::Pending);
    tracker.close();
    assert_eq!(poll_with(&mut wait, &counter), Poll::Ready(()));
}

#[test]
fn blocking_waits_from_plain_threads() {
    let tracker = TaskTracker::new();
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let guard = tracker.enter();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(i * 3));
                drop(guard);
            })
        })
        .collect();
    let _blocked = tracker.enter();
    tracker.close();
    assert!(
        !tracker.wait_blocking_timeout(Duration::from_millis(50)),
        "one guard kept here"
    );
    drop(_blocked);
    let waiter = tracker.clone();
    within(LIMIT, move || waiter.wait_blocking());
    assert!(tracker.wait_blocking_timeout(Duration::ZERO));
    assert!(tracker.wait_blocking_timeout(Duration::MAX));
    for worker in workers {
        worker.join().unwrap();
    }
}

#[test]
fn ten_thousand_tasks_on_tokio_then_one_wait() {
    let runtime = common::multi_thread_runtime();
    let tracker = TaskTracker::new();
    let release = CancelToken::new();
    let done = Arc::new(AtomicUsize::new(0));
    let tasks = common::scaled(10_000);
    runtime.block_on(async {
        for _ in 0..tasks {
            let release = release.clone();
            let done = done.clone();
            tokio::spawn(tracker.track(async move {
                release.wait().await;
                done.fetch_add(1, Ordering::Relaxed);
            }));
        }
        assert_eq!(tracker.len(), tasks);
        tracker.close();
        let wait = tokio::spawn(assert_send_static(tracker.clone().wait_owned()));
        release.trigger();
        tokio::time::timeout(LIMIT, wait).await.unwrap().unwrap();
    });
    assert_eq!(done.load(Ordering::Relaxed), tasks);
    assert!(tracker.is_empty());
}

#[test]
fn waits_on_smol_and_async_std() {
    let tracker = TaskTracker::new();
    let task = smol::spawn(tracker.track(async { 1 }));
    tracker.close();
    smol::block_on(async {
        assert_eq!(task.await, 1);
        tracker.wait().await;
    });
    let reopened = TaskTracker::new();
    let guard = reopened.enter();
    reopened.close();
    async_std::task::block_on(async {
        let wait = async_std::task::spawn(reopened.clone().wait_owned());
        thread::spawn(move || drop(guard));
        wait.await;
    });
}

/// Close racing the last task's exit, on two threads, never loses the wake-up.
#[test]
fn close_racing_the_last_exit_never_misses_the_wake_up() {
    within(LIMIT, || {
        for _ in 0..common::scaled(2_000) {
            let tracker = TaskTracker::new();
            let guard = tracker.enter();
            let exit = thread::spawn(move || drop(guard));
            let closer = tracker.clone();
            let close = thread::spawn(move || closer.close());
            tracker.wait_blocking();
            exit.join().unwrap();
            assert!(close.join().unwrap());
        }
    });
}

/// A waker that uses the same tracker when woken (user code touching the tracker from inside
/// a wake-up: a guard, reopen, close) must not deadlock: no waker runs under the tracker's lock.
#[test]
fn a_waker_that_uses_the_same_tracker_does_not_deadlock() {
    struct UseOnWake(TaskTracker, AtomicUsize);
    impl Wake for UseOnWake {
        fn wake(self: Arc<Self>) {
            self.1.fetch_add(1, Ordering::SeqCst);
            drop(self.0.enter());
            self.0.reopen();
            self.0.close();
        }
    }
    within(LIMIT, || {
        let tracker = TaskTracker::new();
        let last = tracker.enter();
        let user = Arc::new(UseOnWake(tracker.clone(), AtomicUsize::new(0)));
        let waker = Waker::from(user.clone());
        tracker.close();
        let mut wait = tracker.wait();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(std::pin::Pin::new(&mut wait).poll(&mut cx).is_pending());
        drop(last);
        assert_eq!(
            user.1.load(Ordering::SeqCst),
            1,
            "woken once, from inside the exit"
        );
        assert!(std::pin::Pin::new(&mut wait).poll(&mut cx).is_ready());
    });
}

#[test]
fn handles_share_one_tracker_and_print_their_state() {
    let tracker = TaskTracker::default();
    let other = tracker.clone();
    let _guard = other.enter();
    assert_eq!(tracker.len(), 1);
    tracker.close();
    assert!(other.is_closed());
    assert_eq!(
        format!("{tracker:?}"),
        "TaskTracker { len: 1, closed: true }"
    );
    let task = tracker.track(async {});
    assert_eq!(format!("{task:?}"), "TrackedFuture { finished: false, .. }");
    drop(assert_send_static(task));
}
