//! Waiting for a token: the `Wait`/`WaitOwned` futures driven by a counting waker, the blocking
//! waits, and a trigger from a plain OS thread waking tasks on every executor we support.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use cancel_token::CancelToken;
use common::{poll_once, poll_with, within, CountingWaker, LIMIT};

/// Tasks per runtime in the runtime matrix.
const TASKS: usize = 100;

// ---------------------------------------------------------------------------------------------
// Futures, polled by hand

#[test]
fn wait_is_ready_at_the_first_poll_when_already_triggered() {
    let token = CancelToken::new();
    token.trigger();
    let waker = CountingWaker::new();
    assert_eq!(poll_with(&mut token.wait(), &waker), Poll::Ready(()));
    assert_eq!(
        poll_with(&mut token.clone().wait_owned(), &waker),
        Poll::Ready(())
    );
    assert_eq!(waker.count(), 0, "a ready future does not wake anyone");
}

#[test]
fn a_pending_wait_is_woken_exactly_once_before_trigger_returns() {
    let token = CancelToken::new();
    let mut wait = token.wait();
    let waker = CountingWaker::new();
    assert_eq!(poll_with(&mut wait, &waker), Poll::Pending);
    assert_eq!(
        poll_with(&mut wait, &waker),
        Poll::Pending,
        "re-polling stays pending"
    );
    assert_eq!(waker.count(), 0);

    token.trigger();
    assert_eq!(
        waker.count(),
        1,
        "woken exactly once, by the time trigger returns"
    );
    assert_eq!(poll_with(&mut wait, &waker), Poll::Ready(()));
    assert_eq!(poll_with(&mut wait, &waker), Poll::Ready(()), "stays ready");
    assert_eq!(waker.count(), 1);
}

#[test]
fn a_pending_wait_owned_is_woken_exactly_once_before_trigger_returns() {
    let token = CancelToken::new();
    let mut wait = token.clone().wait_owned();
    let waker = CountingWaker::new();
    assert_eq!(poll_with(&mut wait, &waker), Poll::Pending);
    token.trigger();
    assert_eq!(waker.count(), 1);
    assert_eq!(poll_with(&mut wait, &waker), Poll::Ready(()));
    assert_eq!(wait.into_token(), token);
}

#[test]
fn a_wait_repolled_with_a_new_waker_wakes_the_new_one() {
    let token = CancelToken::new();
    let mut wait = token.wait();
    let old = CountingWaker::new();
    let new = CountingWaker::new();
    assert!(poll_with(&mut wait, &old).is_pending());
    assert!(poll_with(&mut wait, &new).is_pending());
    token.trigger();
    assert_eq!(new.count(), 1, "the latest waker is the one woken");
    assert!(poll_with(&mut wait, &new).is_ready());
}

#[test]
fn a_trigger_wakes_every_waiter() {
    const WAITERS: usize = 50;
    let token = CancelToken::new();
    let mut waits: Vec<_> = (0..WAITERS).map(|_| token.wait()).collect();
    let wakers: Vec<_> = (0..WAITERS).map(|_| CountingWaker::new()).collect();
    for (wait, waker) in waits.iter_mut().zip(&wakers) {
        assert!(poll_with(wait, waker).is_pending());
    }
    token.trigger();
    for (i, (wait, waker)) in waits.iter_mut().zip(&wakers).enumerate() {
        assert_eq!(waker.count(), 1, "waiter {i} was not woken exactly once");
        assert!(poll_with(wait, waker).is_ready(), "waiter {i}");
    }
}

#[test]
fn waiters_on_descendants_are_woken_before_trigger_returns() {
    let root = CancelToken::new();
    let other = CancelToken::new();
    let leaf = root.child().chain(&other).child();
    let mut wait = leaf.wait();
    let waker = CountingWaker::new();
    assert!(poll_with(&mut wait, &waker).is_pending());
    root.trigger();
    assert_eq!(waker.count(), 1);
    assert!(poll_with(&mut wait, &waker).is_ready());
}

/// A waker that triggers a token when woken: the kind of adapter that turns one wake-up into
/// a cancellation.
struct TriggerOnWake(CancelToken);

impl std::task::Wake for TriggerOnWake {
    fn wake(self: Arc<Self>) {
        self.0.trigger_with("from a waker");
    }
}

/// A waker called by a trigger triggers an ancestor of the token it was woken for: the
/// ancestor's walk reaches that token while its wake-ups are still in progress on this very
/// thread, and must not wait for them (it would wait for itself).
#[test]
fn a_waker_that_triggers_an_ancestor_of_its_own_token_does_not_hang() {
    let trigger_ran = within(LIMIT, || {
        let root = CancelToken::named("root");
        let middle = root.child_named("middle");
        let leaf = middle.child();
        let waker = std::task::Waker::from(Arc::new(TriggerOnWake(root.clone())));
        let mut wait = middle.wait();
        assert!(poll_with_waker(&mut wait, &waker).is_pending());
        assert!(middle.trigger_with("middle"));
        assert!(root.is_triggered(), "the waker ran during the trigger");
        assert!(leaf.is_triggered());
        assert_eq!(leaf.triggered_token(), Some(middle.clone()));
        assert_eq!(root.reason().unwrap().message(), Some("from a waker"));
        true
    });
    assert!(trigger_ran);
}

fn poll_with_waker<F: Future + Unpin>(future: &mut F, waker: &std::task::Waker) -> Poll<F::Output> {
    std::pin::Pin::new(future).poll(&mut std::task::Context::from_waker(waker))
}

#[test]
fn dropping_a_pending_wait_leaves_the_token_and_other_waiters_alone() {
    let token = CancelToken::new();
    let mut kept = token.wait();
    let kept_waker = CountingWaker::new();
    assert!(poll_with(&mut kept, &kept_waker).is_pending());

    let mut dropped = token.wait();
    let dropped_waker = CountingWaker::new();
    assert!(poll_with(&mut dropped, &dropped_waker).is_pending());
    drop(dropped);
    let mut dropped_owned = token.clone().wait_owned();
    assert!(poll_once(&mut dropped_owned).is_pending());
    drop(dropped_owned);
    let never_polled = token.wait();
    drop(never_polled);

    assert!(
        !token.is_triggered(),
        "dropping a wait does not trigger the token"
    );
    assert!(token.trigger(), "nor does it count as a trigger");
    assert_eq!(kept_waker.count(), 1, "the remaining waiter is still woken");
    assert_eq!(dropped_waker.count(), 0, "a dropped wait is not woken");
    assert!(poll_with(&mut kept, &kept_waker).is_ready());
}

#[test]
fn a_trigger_from_a_plain_thread_wakes_waiters_registered_before_it() {
    let token = CancelToken::new();
    let mut wait = token.wait();
    let mut owned = token.clone().wait_owned();
    let waker = CountingWaker::new();
    let owned_waker = CountingWaker::new();
    assert!(poll_with(&mut wait, &waker).is_pending());
    assert!(poll_with(&mut owned, &owned_waker).is_pending());

    let trigger = token.clone();
    thread::spawn(move || assert!(trigger.trigger()))
        .join()
        .unwrap();
    assert_eq!(waker.count(), 1);
    assert_eq!(owned_waker.count(), 1);
    assert!(poll_with(&mut wait, &waker).is_ready());
    assert!(poll_with(&mut owned, &owned_waker).is_ready());
}

#[test]
fn wait_owned_is_send_and_static_and_completes_on_another_thread() {
    fn assert_send_static<F: Future + Send + 'static>(f: F) -> F {
        f
    }
    let token = CancelToken::new();
    let wait = assert_send_static(token.clone().wait_owned());
    let waiter = thread::spawn(move || futures_lite::future::block_on(wait));
    token.trigger();
    within(LIMIT, move || waiter.join().unwrap());
}

#[test]
fn wait_completes_under_block_on_when_triggered_from_another_thread() {
    let token = CancelToken::new();
    let trigger = token.clone();
    within(LIMIT, move || {
        let start = Arc::new(Barrier::new(2));
        let go = Arc::clone(&start);
        let triggerer = thread::spawn(move || {
            go.wait();
            trigger.trigger_with("from a thread");
        });
        start.wait();
        futures_lite::future::block_on(token.wait());
        assert_eq!(token.reason().unwrap().message(), Some("from a thread"));
        triggerer.join().unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// Blocking waits

#[test]
fn wait_blocking_returns_when_another_thread_triggers() {
    let token = CancelToken::new();
    let waiter = token.clone();
    let started = Arc::new(Barrier::new(2));
    let go = Arc::clone(&started);
    let handle = thread::spawn(move || {
        go.wait();
        waiter.wait_blocking();
        waiter.reason().unwrap()
    });
    started.wait();
    token.trigger_with("wake up");
    let reason = within(LIMIT, move || handle.join().unwrap());
    assert_eq!(reason.message(), Some("wake up"));
}

#[test]
fn wait_blocking_returns_at_once_when_already_triggered() {
    let token = CancelToken::new();
    token.trigger();
    within(LIMIT, move || token.wait_blocking());
}

#[test]
fn wait_blocking_timeout_is_false_on_timeout() {
    let token = CancelToken::new();
    assert!(!token.wait_blocking_timeout(Duration::from_millis(20)));
    assert!(!token.wait_blocking_timeout(Duration::ZERO));
    assert!(
        !token.is_triggered(),
        "a timeout does not trigger the token"
    );
}

#[test]
fn wait_blocking_timeout_is_true_when_triggered() {
    let token = CancelToken::new();
    token.trigger();
    assert!(token.wait_blocking_timeout(Duration::ZERO));
    assert!(token.wait_blocking_timeout(Duration::from_secs(60)));

    let token = CancelToken::new();
    let trigger = token.clone();
    let triggerer = thread::spawn(move || trigger.trigger());
    assert!(token.wait_blocking_timeout(LIMIT));
    triggerer.join().unwrap();
}

#[test]
fn wait_blocking_timeout_with_duration_max_does_not_overflow() {
    let token = CancelToken::new();
    token.trigger();
    assert!(token.wait_blocking_timeout(Duration::MAX));

    let token = CancelToken::new();
    let trigger = token.clone();
    let triggered = within(LIMIT, move || {
        let triggerer = thread::spawn(move || trigger.trigger());
        let triggered = token.wait_blocking_timeout(Duration::MAX);
        triggerer.join().unwrap();
        triggered
    });
    assert!(
        triggered,
        "Duration::MAX means no timeout: only the trigger ends the wait"
    );
}

#[test]
fn wait_blocking_on_a_descendant_returns_when_the_root_triggers() {
    let root = CancelToken::named("root");
    let leaf = root.child().chain(&CancelToken::new());
    let handle = thread::spawn(move || {
        leaf.wait_blocking();
        leaf.triggered_token()
    });
    root.trigger();
    let origin = within(LIMIT, move || handle.join().unwrap());
    assert_eq!(origin, Some(root));
}

// ---------------------------------------------------------------------------------------------
// Runtime matrix: 100 registered waiters, one trigger from a fresh plain thread

struct Counters {
    registered: AtomicUsize,
    done: AtomicUsize,
}

impl Counters {
    fn new() -> Arc<Counters> {
        Arc::new(Counters {
            registered: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        })
    }

    fn registered(&self) -> usize {
        self.registered.load(Ordering::SeqCst)
    }

    fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }
}

/// Polls a wait once with the task's own context (it must be pending: the test triggers only
/// after every task registered), counts the registration, then awaits it. Even tasks use
/// `wait`, odd ones `wait_owned`.
async fn register_then_wait(index: usize, token: CancelToken, counters: Arc<Counters>) {
    if index % 2 == 0 {
        register_then_await(token.wait(), &counters).await;
    } else {
        register_then_await(token.clone().wait_owned(), &counters).await;
    }
    assert!(token.is_triggered());
    counters.done.fetch_add(1, Ordering::SeqCst);
}

/// [`register_then_wait`] for one wait, a `Wait` or a `WaitOwned`.
async fn register_then_await(mut wait: impl Future<Output = ()> + Unpin, counters: &Counters) {
    let first = futures_lite::future::poll_once(&mut wait).await;
    assert!(
        first.is_none(),
        "not triggered before every task registered"
    );
    counters.registered.fetch_add(1, Ordering::SeqCst);
    wait.await;
}

/// Triggers `token` from a freshly spawned plain thread, with no executor involved.
fn trigger_from_a_plain_thread(token: &CancelToken) -> thread::JoinHandle<bool> {
    let token = token.clone();
    thread::spawn(move || token.trigger_with("from a plain thread"))
}

/// The runtime matrix: [`TASKS`] tasks, each spawned by `spawn` (given its index, the token
/// and the counters), register a wait on one token; once all have (checked every millisecond
/// with the executor's own timer `sleep`), a plain thread triggers the token and every task
/// completes.
async fn wake_matrix<T, S>(
    spawn: impl Fn(usize, CancelToken, Arc<Counters>) -> T,
    sleep: impl Fn(Duration) -> S,
) where
    T: Future<Output = ()>,
    S: Future,
{
    let token = CancelToken::new();
    let counters = Counters::new();
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| spawn(i, token.clone(), Arc::clone(&counters)))
        .collect();
    while counters.registered() < TASKS {
        sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(counters.done(), 0);
    let triggerer = trigger_from_a_plain_thread(&token);
    for task in tasks {
        task.await;
    }
    assert_eq!(counters.done(), TASKS);
    assert!(triggerer.join().unwrap());
}

/// The matrix on whatever tokio runtime runs it, within [`LIMIT`].
async fn tokio_matrix() {
    let matrix = wake_matrix(
        |i, token, counters| {
            let task = tokio::spawn(register_then_wait(i, token, counters));
            async { task.await.expect("task panicked") }
        },
        tokio::time::sleep,
    );
    tokio::time::timeout(LIMIT, matrix)
        .await
        .expect("tasks were not all woken within the limit");
}

#[test]
fn tokio_multi_thread_tasks_wake_on_a_trigger_from_a_plain_thread() {
    common::multi_thread_runtime().block_on(tokio_matrix());
}

#[test]
fn tokio_current_thread_tasks_wake_on_a_trigger_from_a_plain_thread() {
    common::current_thread_runtime().block_on(tokio_matrix());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_test_attribute_tasks_wake_on_a_trigger_from_a_plain_thread() {
    tokio_matrix().await;
}

#[test]
fn smol_tasks_wake_on_a_trigger_from_a_plain_thread() {
    within(LIMIT, || {
        smol::block_on(wake_matrix(
            |i, token, counters| smol::spawn(register_then_wait(i, token, counters)),
            smol::Timer::after,
        ));
    });
}

#[test]
fn async_std_tasks_wake_on_a_trigger_from_a_plain_thread() {
    within(LIMIT, || {
        async_std::task::block_on(wake_matrix(
            |i, token, counters| async_std::task::spawn(register_then_wait(i, token, counters)),
            async_std::task::sleep,
        ));
    });
}

#[test]
fn plain_threads_blocked_in_wait_blocking_wake_on_a_trigger_from_a_plain_thread() {
    within(LIMIT, || {
        let token = CancelToken::new();
        let counters = Counters::new();
        let threads: Vec<_> = (0..TASKS)
            .map(|_| {
                let token = token.clone();
                let counters = Arc::clone(&counters);
                thread::Builder::new()
                    .stack_size(256 << 10)
                    .spawn(move || {
                        counters.registered.fetch_add(1, Ordering::SeqCst);
                        token.wait_blocking();
                        counters.done.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap()
            })
            .collect();
        common::wait_until("every thread to start waiting", LIMIT, || {
            counters.registered() == TASKS
        });
        let triggerer = trigger_from_a_plain_thread(&token);
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(counters.done(), TASKS);
        assert!(triggerer.join().unwrap());
    });
}

/// The first waiter of a token is kept inline and the others beside it: a waiter that leaves
/// frees its place for the next, and a trigger wakes every one, wherever it is kept.
#[test]
fn waiters_leaving_and_arriving_are_all_woken_wherever_they_are_kept() {
    let token = CancelToken::new();
    let (first, second, third) = (
        CountingWaker::new(),
        CountingWaker::new(),
        CountingWaker::new(),
    );
    let mut a = token.wait();
    let mut b = token.wait();
    assert!(poll_with(&mut a, &first).is_pending());
    assert!(poll_with(&mut b, &second).is_pending());
    drop(a);
    let mut c = token.wait();
    assert!(poll_with(&mut c, &third).is_pending());
    // Re-polling keeps one registration each.
    assert!(poll_with(&mut b, &second).is_pending());
    assert!(poll_with(&mut c, &third).is_pending());
    token.trigger();
    assert_eq!((first.count(), second.count(), third.count()), (0, 1, 1));
    assert!(poll_with(&mut b, &second).is_ready());
    assert!(poll_with(&mut c, &third).is_ready());
}
