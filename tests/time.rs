//! Deadline tokens: `with_timeout`, `with_deadline`, `child_with_timeout`, `child_with_deadline`
//! and `deadline()`, driven by the crate's own timer threads.
//!
//! Real time is under test here, so lower bounds are exact (a deadline never fires early) and
//! upper bounds are generous (`LIMIT`, or 5 s where a gross delay should fail loudly).

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use cancel_token::{CancelToken, ReasonKind};
use common::{within, LIMIT};

const TIMEOUT: Duration = Duration::from_millis(50);
/// Loose upper bound on how late a deadline may fire on a loaded 2-core machine.
const GENEROUS: Duration = Duration::from_secs(5);

fn kind(token: &CancelToken) -> Option<ReasonKind> {
    token.reason().map(|reason| reason.kind())
}

#[test]
fn with_timeout_wakes_a_blocking_waiter_with_no_runtime() {
    let start = Instant::now();
    let token = CancelToken::with_timeout(TIMEOUT);
    assert!(!token.is_triggered());
    let deadline = token.deadline().expect("a timeout token has a deadline");
    assert!(deadline >= start + TIMEOUT);

    let waiter = token.clone();
    let woke_at = within(LIMIT, move || {
        waiter.wait_blocking();
        Instant::now()
    });
    assert!(
        woke_at >= deadline,
        "woke {:?} before the deadline",
        deadline - woke_at
    );
    assert!(woke_at - start >= TIMEOUT);
    assert!(woke_at - start < GENEROUS, "took {:?}", woke_at - start);
    assert_eq!(kind(&token), Some(ReasonKind::Timeout));
    assert_eq!(token.triggered_token(), Some(token.clone()));
}

#[test]
fn with_timeout_wakes_an_async_waiter_under_a_plain_block_on() {
    let start = Instant::now();
    let token = CancelToken::with_timeout(TIMEOUT);
    let waiter = token.clone();
    let elapsed = within(LIMIT, move || {
        futures_lite::future::block_on(waiter.wait());
        start.elapsed()
    });
    assert!(elapsed >= TIMEOUT, "woke after {elapsed:?}");
    assert!(elapsed < GENEROUS, "took {elapsed:?}");
    assert_eq!(kind(&token), Some(ReasonKind::Timeout));
}

#[test]
fn with_timeout_runs_callbacks_at_the_deadline() {
    let start = Instant::now();
    let token = CancelToken::with_timeout(TIMEOUT);
    let fired: Arc<Mutex<Vec<(ReasonKind, Instant)>>> = Arc::default();
    let _guard = token.on_cancel({
        let fired = Arc::clone(&fired);
        move |reason| fired.lock().unwrap().push((reason.kind(), Instant::now()))
    });
    assert!(fired.lock().unwrap().is_empty());

    assert!(
        token.wait_blocking_timeout(LIMIT),
        "the deadline never fired"
    );
    // Callbacks run after waiters are woken; give the timer's thread a moment to finish them.
    common::wait_until("the callback", LIMIT, || !fired.lock().unwrap().is_empty());
    let fired = fired.lock().unwrap();
    assert_eq!(fired.len(), 1);
    let (kind, at) = fired[0];
    assert_eq!(kind, ReasonKind::Timeout);
    assert!(at - start >= TIMEOUT, "callback ran after {:?}", at - start);
    assert!(at >= token.deadline().unwrap());
}

#[test]
fn all_three_kinds_of_observer_wake_on_one_deadline() {
    let start = Instant::now();
    let token = CancelToken::with_timeout(TIMEOUT);
    let calls = Arc::new(AtomicUsize::new(0));
    let _guard = token.on_cancel({
        let calls = Arc::clone(&calls);
        move |reason| {
            assert_eq!(reason.kind(), ReasonKind::Timeout);
            calls.fetch_add(1, Ordering::SeqCst);
        }
    });
    let blocking = {
        let token = token.clone();
        thread::spawn(move || {
            token.wait_blocking();
            (start.elapsed(), token.reason().unwrap().kind())
        })
    };
    let asynchronous = {
        let token = token.clone();
        thread::spawn(move || {
            futures_lite::future::block_on(token.clone().wait_owned());
            (start.elapsed(), token.reason().unwrap().kind())
        })
    };
    let results = within(LIMIT, move || {
        [blocking.join().unwrap(), asynchronous.join().unwrap()]
    });
    for (elapsed, kind) in results {
        assert!(elapsed >= TIMEOUT, "woke after {elapsed:?}");
        assert_eq!(kind, ReasonKind::Timeout);
    }
    common::wait_until("the callback", LIMIT, || calls.load(Ordering::SeqCst) == 1);
}

#[test]
fn a_manual_trigger_before_the_deadline_keeps_manual_and_the_timer_does_not_fire_again() {
    // A machine that stalls for longer than the timeout between creating the token and
    // triggering it lets the timer win, which proves nothing: that attempt is repeated with a
    // longer timeout.
    for timeout in [TIMEOUT, TIMEOUT * 10, TIMEOUT * 100] {
        let created = Instant::now();
        let token = CancelToken::with_timeout(timeout);
        let child = token.child();
        let calls = Arc::new(AtomicUsize::new(0));
        let kinds: Arc<Mutex<Vec<ReasonKind>>> = Arc::default();
        let _guard = token.on_cancel({
            let calls = Arc::clone(&calls);
            let kinds = Arc::clone(&kinds);
            move |reason| {
                calls.fetch_add(1, Ordering::SeqCst);
                kinds.lock().unwrap().push(reason.kind());
            }
        });
        if !token.trigger_with("user pressed stop") {
            assert!(
                created.elapsed() >= timeout,
                "the timer fired before its deadline"
            );
            continue;
        }
        assert_eq!(kind(&token), Some(ReasonKind::Manual));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Past the deadline, with margin.
        let deadline = created + timeout;
        thread::sleep(deadline.saturating_duration_since(Instant::now()) + TIMEOUT * 2);
        assert_eq!(kind(&token), Some(ReasonKind::Manual));
        assert_eq!(token.reason().unwrap().message(), Some("user pressed stop"));
        assert_eq!(kind(&child), Some(ReasonKind::Manual));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the timer fired again");
        assert_eq!(*kinds.lock().unwrap(), [ReasonKind::Manual]);
        return;
    }
    panic!("the machine stalled past every timeout");
}

#[test]
fn a_deadline_in_the_past_triggers_before_the_constructor_returns() {
    let now = CancelToken::with_deadline(Instant::now());
    assert!(now.is_triggered());
    assert_eq!(kind(&now), Some(ReasonKind::Timeout));

    let earlier = Instant::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or_else(Instant::now);
    let past = CancelToken::with_deadline(earlier);
    assert!(past.is_triggered());
    assert_eq!(kind(&past), Some(ReasonKind::Timeout));
    assert!(
        past.child().is_triggered(),
        "a child of it is born triggered"
    );

    let zero = CancelToken::with_timeout(Duration::ZERO);
    assert_eq!(kind(&zero), Some(ReasonKind::Timeout));

    let parent = CancelToken::new();
    let child = parent.child_with_deadline(earlier);
    assert_eq!(kind(&child), Some(ReasonKind::Timeout));
    assert_eq!(child.triggered_token(), Some(child.clone()));
    assert!(
        !parent.is_triggered(),
        "a child's deadline never triggers its parent"
    );
    let zero_child = parent.child_with_timeout(Duration::ZERO);
    assert_eq!(kind(&zero_child), Some(ReasonKind::Timeout));
    assert!(!parent.is_triggered());
}

#[test]
fn unrepresentable_and_far_deadlines_never_fire_and_do_not_panic() {
    let max = CancelToken::with_timeout(Duration::MAX);
    assert!(!max.is_triggered());
    assert_eq!(max.deadline(), None, "Duration::MAX means no deadline");

    let parent = CancelToken::new();
    let max_child = parent.child_with_timeout(Duration::MAX);
    assert!(!max_child.is_triggered());
    assert_eq!(max_child.deadline(), None);

    let year = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let far = CancelToken::with_deadline(year);
    assert!(!far.is_triggered());
    assert_eq!(far.deadline(), Some(year));
    let far_child = parent.child_with_deadline(year);
    assert_eq!(far_child.deadline(), Some(year));

    // As far as an Instant reaches on this platform.
    let mut extreme = None;
    for secs in [u64::MAX / 2, i64::MAX as u64 / 2, 1 << 50, 1 << 40] {
        if let Some(deadline) = Instant::now().checked_add(Duration::from_secs(secs)) {
            extreme = Some(deadline);
            break;
        }
    }
    let extreme = extreme.expect("some far deadline is representable");
    let very_far = CancelToken::with_deadline(extreme);
    assert_eq!(very_far.deadline(), Some(extreme));

    // The timer, sleeping towards those, still serves an earlier deadline.
    let soon = CancelToken::with_timeout(Duration::from_millis(20));
    assert!(
        soon.wait_blocking_timeout(LIMIT),
        "a near deadline did not fire"
    );
    assert!(!far.wait_blocking_timeout(Duration::from_millis(20)));
    assert!(!very_far.is_triggered());
    assert!(!max.is_triggered());
    assert!(!max_child.is_triggered());
}

#[test]
fn a_child_with_a_longer_timeout_reports_and_obeys_the_parents_deadline() {
    let start = Instant::now();
    let parent = CancelToken::with_timeout(Duration::from_millis(60));
    let child = parent.child_with_timeout(Duration::from_secs(3600));
    assert_eq!(child.deadline(), parent.deadline(), "capped by the parent");
    assert!(child.deadline().is_some());

    assert!(
        child.wait_blocking_timeout(LIMIT),
        "the parent's deadline never reached the child"
    );
    assert!(start.elapsed() >= Duration::from_millis(60));
    assert_eq!(kind(&child), Some(ReasonKind::Timeout));
    assert_eq!(
        child.triggered_token(),
        Some(parent.clone()),
        "the parent's timer fired"
    );
    assert_eq!(kind(&parent), Some(ReasonKind::Timeout));
}

#[test]
fn a_child_with_a_shorter_timeout_triggers_alone() {
    let start = Instant::now();
    let parent = CancelToken::with_timeout(Duration::from_secs(3600));
    let sibling = parent.child();
    let child = parent.child_with_timeout(Duration::from_millis(30));
    assert!(child.deadline().unwrap() < parent.deadline().unwrap());
    assert!(child.deadline().unwrap() >= start + Duration::from_millis(30));

    assert!(child.wait_blocking_timeout(LIMIT));
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(kind(&child), Some(ReasonKind::Timeout));
    assert_eq!(child.triggered_token(), Some(child.clone()));
    assert!(
        !parent.is_triggered(),
        "the child's timeout must not touch its parent"
    );
    assert!(!sibling.is_triggered());
}

#[test]
fn child_with_deadline_takes_the_earlier_deadline() {
    let parent_deadline = Instant::now() + Duration::from_secs(600);
    let parent = CancelToken::with_deadline(parent_deadline);
    let earlier = parent_deadline - Duration::from_secs(300);
    let later = parent_deadline + Duration::from_secs(300);
    assert_eq!(
        parent.child_with_deadline(earlier).deadline(),
        Some(earlier)
    );
    assert_eq!(
        parent.child_with_deadline(later).deadline(),
        Some(parent_deadline)
    );
    assert_eq!(
        parent.deadline(),
        Some(parent_deadline),
        "children never change the parent"
    );

    let plain = CancelToken::new();
    let own = plain.child_with_deadline(later);
    assert_eq!(own.deadline(), Some(later));
    assert_eq!(plain.deadline(), None);
}

#[test]
fn plain_children_and_chains_report_the_inherited_deadline() {
    let parent = CancelToken::with_timeout(Duration::from_secs(3600));
    let deadline = parent.deadline();
    assert!(deadline.is_some());
    assert_eq!(parent.child().deadline(), deadline);
    assert_eq!(
        parent.child_named("c").child().deadline(),
        deadline,
        "through any depth"
    );

    let other = CancelToken::new();
    assert_eq!(parent.chain(&other).deadline(), deadline);
    assert_eq!(other.chain(&parent).deadline(), deadline);
    assert_eq!(CancelToken::any([&other, &parent]).deadline(), deadline);

    let sooner = CancelToken::with_timeout(Duration::from_secs(60));
    assert_eq!(
        parent.chain(&sooner).deadline(),
        sooner.deadline(),
        "the earlier one"
    );
    assert_eq!(sooner.chain(&parent).deadline(), sooner.deadline());

    assert_eq!(CancelToken::new().deadline(), None);
    assert_eq!(CancelToken::new().child().deadline(), None);
    assert_eq!(other.chain(&CancelToken::new()).deadline(), None);
}

#[test]
fn a_chain_of_a_deadline_token_fires_with_it() {
    let start = Instant::now();
    let timed = CancelToken::named("timed").child_with_timeout(Duration::from_millis(30));
    let user = CancelToken::named("user");
    let chained = user.chain(&timed);
    assert!(chained.wait_blocking_timeout(LIMIT));
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(kind(&chained), Some(ReasonKind::Timeout));
    assert_eq!(chained.triggered_token(), Some(timed));
    assert!(!user.is_triggered());
}

#[test]
fn a_deadline_token_kept_alive_only_by_its_child_still_fires() {
    let parent = CancelToken::with_timeout(Duration::from_millis(30));
    let child = parent.child();
    drop(parent);
    assert!(
        child.wait_blocking_timeout(LIMIT),
        "the dropped parent's timer was lost"
    );
    assert_eq!(kind(&child), Some(ReasonKind::Timeout));
}

#[test]
fn a_child_of_a_triggered_parent_keeps_the_parents_reason() {
    let parent = CancelToken::new();
    parent.trigger_with("already gone");
    let child = parent.child_with_timeout(Duration::from_millis(1));
    assert_eq!(kind(&child), Some(ReasonKind::Manual));
    thread::sleep(Duration::from_millis(20));
    assert_eq!(child.reason().unwrap().message(), Some("already gone"));
}

#[test]
fn ten_thousand_live_deadlines_all_fire_none_early() {
    const N: u32 = 10_000;
    let base = Instant::now() + Duration::from_millis(50);
    let early = Arc::new(AtomicUsize::new(0));
    let fired = Arc::new(AtomicUsize::new(0));
    let mut tokens = Vec::with_capacity(N as usize);
    let mut guards = Vec::with_capacity(N as usize);
    for i in 0..N {
        // Spread over ~200 ms, in an interleaved order so that insertion is not sorted.
        let j = (i * 7919) % N;
        let deadline = base + Duration::from_micros(u64::from(j) * 20);
        let token = CancelToken::with_deadline(deadline);
        guards.push(token.on_cancel({
            let early = Arc::clone(&early);
            let fired = Arc::clone(&fired);
            move |reason| {
                if Instant::now() < deadline || reason.kind() != ReasonKind::Timeout {
                    early.fetch_add(1, Ordering::SeqCst);
                }
                fired.fetch_add(1, Ordering::SeqCst);
            }
        }));
        tokens.push((token, deadline));
    }
    let start = Instant::now();
    for (token, deadline) in &tokens {
        let remaining = GENEROUS
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(1));
        assert!(
            token.wait_blocking_timeout(remaining),
            "a deadline never fired"
        );
        assert!(Instant::now() >= *deadline);
        assert_eq!(kind(token), Some(ReasonKind::Timeout));
    }
    common::wait_until("every callback", LIMIT, || {
        fired.load(Ordering::SeqCst) == N as usize
    });
    assert_eq!(
        early.load(Ordering::SeqCst),
        0,
        "some deadlines fired early"
    );
}

#[test]
fn a_callback_on_the_timer_thread_may_create_and_drop_deadline_tokens() {
    let first = CancelToken::with_timeout(Duration::from_millis(10));
    let (tx, rx) = std::sync::mpsc::channel();
    let _guard = first.on_cancel(move |_| {
        // Runs on a timer thread: registering and releasing timers from here must not
        // deadlock the timer.
        drop(CancelToken::with_timeout(Duration::from_secs(3600)));
        let dropped_unfired = CancelToken::with_timeout(Duration::from_millis(1));
        dropped_unfired.trigger();
        let _ = tx.send(CancelToken::with_timeout(Duration::from_millis(20)));
    });
    let second = rx
        .recv_timeout(LIMIT)
        .expect("the first deadline's callback never ran");
    assert!(
        second.wait_blocking_timeout(LIMIT),
        "a deadline registered from a timer thread never fired"
    );
    assert_eq!(kind(&second), Some(ReasonKind::Timeout));
}

// ----- executors -----

async fn timeout_wait() -> (Duration, Option<ReasonKind>) {
    let start = Instant::now();
    let token = CancelToken::with_timeout(Duration::from_millis(30));
    token.wait().await;
    (start.elapsed(), kind(&token))
}

fn check((elapsed, kind): (Duration, Option<ReasonKind>)) {
    assert!(
        elapsed >= Duration::from_millis(30),
        "resolved after {elapsed:?}"
    );
    assert_eq!(kind, Some(ReasonKind::Timeout));
}

#[test]
fn timeout_under_tokio_multi_thread() {
    let rt = common::multi_thread_runtime();
    check(rt.block_on(async {
        tokio::time::timeout(LIMIT, tokio::spawn(timeout_wait()))
            .await
            .expect("the deadline did not wake the task")
            .unwrap()
    }));
}

#[test]
fn timeout_under_tokio_current_thread() {
    let rt = common::current_thread_runtime();
    check(rt.block_on(async {
        tokio::time::timeout(LIMIT, timeout_wait())
            .await
            .expect("the deadline did not wake the task")
    }));
}

#[test]
fn timeout_under_smol() {
    check(within(LIMIT, || {
        smol::block_on(smol::spawn(timeout_wait()))
    }));
}

#[test]
fn timeout_under_async_std() {
    check(within(LIMIT, || {
        async_std::task::block_on(async_std::task::spawn(timeout_wait()))
    }));
}

// ----- callbacks that block or panic on the thread that fires them -----

/// How late a deadline may fire while another deadline's callback blocks: generous for a
/// loaded 2-core machine, yet far below the seconds a stalled timer would add.
const LATE: Duration = Duration::from_millis(500);

#[test]
fn a_deadline_callback_that_waits_for_a_later_deadline_sees_it_fire() {
    let start = Instant::now();
    let a = CancelToken::with_timeout(Duration::from_millis(20));
    let b = CancelToken::with_timeout(Duration::from_millis(40));
    let b_fired: Arc<Mutex<Option<Instant>>> = Arc::default();
    let _b_guard = b.on_cancel({
        let b_fired = Arc::clone(&b_fired);
        move |_| *b_fired.lock().unwrap() = Some(Instant::now())
    });
    let (tx, rx) = mpsc::channel();
    let _a_guard = a.on_cancel({
        let b = b.clone();
        move |_| {
            // Blocks the thread that fired `a` until `b` fires, or for 2 s.
            let _ = tx.send(b.wait_blocking_timeout(Duration::from_secs(2)));
        }
    });

    let saw_b = within(LIMIT, move || rx.recv().expect("a's callback never ran"));
    assert!(
        saw_b,
        "a's callback blocked for 2 s: b's deadline did not fire while it waited"
    );
    common::wait_until("b's callback", LIMIT, || b_fired.lock().unwrap().is_some());
    let fired = b_fired.lock().unwrap().unwrap() - start;
    assert!(
        fired >= Duration::from_millis(40),
        "b fired after {fired:?}"
    );
    assert!(
        fired < Duration::from_millis(40) + LATE,
        "b fired after {fired:?}"
    );
    assert_eq!(kind(&a), Some(ReasonKind::Timeout));
    assert_eq!(kind(&b), Some(ReasonKind::Timeout));
}

#[test]
fn fifty_deadlines_fire_on_time_while_another_deadlines_callback_blocks() {
    const N: u32 = 50;
    within(LIMIT, || {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (returned_tx, returned_rx) = mpsc::channel();
        let blocker = CancelToken::with_timeout(Duration::from_millis(5));
        let blocker_guard = blocker.on_cancel(move |_| {
            let _ = entered_tx.send(());
            // Until the test lets go: as good as forever for every deadline below.
            let _ = release_rx.recv();
            let _ = returned_tx.send(());
        });
        entered_rx.recv().expect("the blocking callback never ran");

        // The checks run while the callback blocks; it is released whatever they find, since
        // dropping its guard waits for it to return.
        let checks = panic::catch_unwind(AssertUnwindSafe(|| {
            // Registered while that callback blocks: 10 ms to 59 ms, interleaved.
            let start = Instant::now();
            let fired: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::default();
            let mut tokens = Vec::new();
            for i in 0..N {
                let deadline = start + Duration::from_millis(10 + u64::from((i * 17) % N));
                let token = CancelToken::with_deadline(deadline);
                let guard = token.on_cancel({
                    let fired = Arc::clone(&fired);
                    move |_| fired.lock().unwrap().push((i, Instant::now()))
                });
                tokens.push((token, deadline, guard));
            }
            common::wait_until("every callback", GENEROUS, || {
                fired.lock().unwrap().len() == N as usize
            });
            for &(i, at) in fired.lock().unwrap().iter() {
                let (token, deadline, _) = &tokens[i as usize];
                assert!(
                    at >= *deadline,
                    "token {i} fired {:?} early",
                    *deadline - at
                );
                assert!(
                    at < *deadline + LATE,
                    "token {i} fired {:?} late",
                    at - *deadline
                );
                assert_eq!(kind(token), Some(ReasonKind::Timeout));
            }
            assert!(
                returned_rx.try_recv().is_err(),
                "the blocking callback returned before it was released"
            );
        }));

        release_tx.send(()).unwrap();
        returned_rx
            .recv()
            .expect("the released callback never returned");
        drop(blocker_guard);
        if let Err(payload) = checks {
            panic::resume_unwind(payload);
        }
    });
}

#[test]
fn a_panicking_deadline_callback_does_not_stop_later_deadlines() {
    within(LIMIT, || {
        let panicking = CancelToken::with_timeout(Duration::from_millis(10));
        let _panics = panicking.on_cancel(|_| panic!("a deadline callback panics on purpose"));
        let (after_tx, after_rx) = mpsc::channel();
        let _runs_after = panicking.on_cancel(move |_| {
            let _ = after_tx.send(());
        });
        let later = CancelToken::with_timeout(Duration::from_millis(30));
        assert!(
            later.wait_blocking_timeout(GENEROUS),
            "a deadline due after the panic never fired"
        );
        assert_eq!(kind(&panicking), Some(ReasonKind::Timeout));
        after_rx
            .recv_timeout(GENEROUS)
            .expect("the token's next callback did not run after the panic");

        // The threads that fire deadlines survived: more panics, then more deadlines.
        let again: Vec<_> = (0..3)
            .map(|i| {
                let token = CancelToken::with_timeout(Duration::from_millis(5 + i));
                let guard = token.on_cancel(|_| panic!("again"));
                (token, guard)
            })
            .collect();
        let last = CancelToken::with_timeout(Duration::from_millis(20));
        assert!(
            last.wait_blocking_timeout(GENEROUS),
            "deadlines stopped after several panics"
        );
        for (token, _) in &again {
            assert!(token.wait_blocking_timeout(GENEROUS));
        }
    });
}
