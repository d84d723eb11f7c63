//! Condition tokens (`CancelToken::when`): polled on the crate's timer threads until the
//! predicate holds, stopped by any trigger or by dropping the token, safe against predicates
//! that panic or block, and cheap enough that ten thousand share a few threads.
//!
//! Real time is under test here. Lower bounds are exact (the timer never fires early, so a
//! predicate is never evaluated sooner than one interval after the last evaluation returned);
//! upper bounds are generous, for a loaded 2-core machine. Whether polling stopped is checked
//! by the predicate's drop (a captured `Arc` whose count falls back to one) rather than by
//! waiting for calls that do not come, and then confirmed over a few intervals.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use cancel_token::{CancelToken, ReasonKind, WeakCancelToken};
use common::{wait_until, within, LIMIT};

const INTERVAL: Duration = Duration::from_millis(5);
/// Loose upper bound on how late the timer may be on a loaded machine, where a gross delay
/// (a deadline waiting behind a blocked predicate) must still fail.
const GENEROUS: Duration = Duration::from_secs(1);

/// The tests that flood the timer, or measure how late it is, run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A predicate that counts its calls in `calls` and holds `witness` (so its drop shows), and
/// returns `true` from call number `true_at` on (1-based; `usize::MAX` means never).
fn counting(
    calls: &Arc<AtomicUsize>,
    witness: &Arc<()>,
    true_at: usize,
) -> impl FnMut() -> bool + Send + 'static {
    let (calls, witness) = (Arc::clone(calls), Arc::clone(witness));
    move || {
        let _held = &witness;
        calls.fetch_add(1, Ordering::SeqCst) + 1 >= true_at
    }
}

/// Waits until the predicate holding `witness` has been dropped.
fn wait_dropped(witness: &Arc<()>) {
    wait_until("the predicate to be dropped", LIMIT, || {
        Arc::strong_count(witness) == 1
    });
}

/// Checks that `calls` does not move over a few intervals.
fn assert_still(calls: &AtomicUsize) {
    let before = calls.load(Ordering::SeqCst);
    thread::sleep(INTERVAL * 10);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "polled after it stopped"
    );
}

#[test]
fn triggers_with_condition_when_the_predicate_turns_true() {
    let calls = Arc::new(AtomicUsize::new(0));
    let witness = Arc::new(());
    let token = CancelToken::when(INTERVAL, counting(&calls, &witness, 3));

    assert!(
        token.wait_blocking_timeout(LIMIT),
        "the condition never fired"
    );
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Condition);
    assert_eq!(reason.message(), None);
    assert_eq!(reason.to_string(), "condition met");
    assert_eq!(token.triggered_token(), Some(token.clone()));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "triggered by the third call"
    );
}

#[test]
fn the_predicate_is_not_called_again_after_it_returned_true() {
    let calls = Arc::new(AtomicUsize::new(0));
    let witness = Arc::new(());
    let token = CancelToken::when(INTERVAL, counting(&calls, &witness, 2));
    assert!(token.wait_blocking_timeout(LIMIT));
    wait_dropped(&witness);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_still(&calls);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_manual_trigger_stops_the_polling_and_drops_the_predicate() {
    let calls = Arc::new(AtomicUsize::new(0));
    let witness = Arc::new(());
    let token = CancelToken::when(INTERVAL, counting(&calls, &witness, usize::MAX));
    wait_until("a few evaluations", LIMIT, || {
        calls.load(Ordering::SeqCst) >= 2
    });

    assert!(token.trigger_with("operator"));
    wait_dropped(&witness);
    assert_still(&calls);
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Manual, "the first reason stands");
    assert_eq!(reason.message(), Some("operator"));
}

#[test]
fn dropping_the_token_stops_the_polling_and_drops_the_predicate() {
    let calls = Arc::new(AtomicUsize::new(0));
    let witness = Arc::new(());
    let token = CancelToken::when(INTERVAL, counting(&calls, &witness, usize::MAX));
    let weak = token.downgrade();
    wait_until("a few evaluations", LIMIT, || {
        calls.load(Ordering::SeqCst) >= 2
    });

    drop(token);
    wait_dropped(&witness);
    assert!(weak.upgrade().is_none(), "nothing else holds the token");
    assert_still(&calls);
}

#[test]
fn a_child_keeps_its_condition_polled_and_inherits_its_reason() {
    let calls = Arc::new(AtomicUsize::new(0));
    let witness = Arc::new(());
    let condition = CancelToken::when(INTERVAL, counting(&calls, &witness, 3));
    let origin = condition.downgrade();
    let child = condition.child();
    drop(condition);

    assert!(child.wait_blocking_timeout(LIMIT), "the child never fired");
    assert_eq!(child.reason().unwrap().kind(), ReasonKind::Condition);
    assert_eq!(child.triggered_token(), origin.upgrade());
    assert!(origin.upgrade().is_some(), "the child holds its parent");
    wait_dropped(&witness);
}

#[test]
fn the_first_evaluation_is_one_interval_later_on_a_timer_thread() {
    let interval = Duration::from_millis(50);
    let (tx, rx) = mpsc::channel();
    let created = Instant::now();
    let token = CancelToken::when(interval, move || {
        let current = thread::current();
        let _ = tx.send((
            Instant::now(),
            current.id(),
            current.name().map(str::to_owned),
        ));
        true
    });
    let (at, thread_id, name) = rx.recv_timeout(LIMIT).expect("never evaluated");
    assert!(
        at - created >= interval,
        "evaluated after {:?}",
        at - created
    );
    assert_ne!(thread_id, thread::current().id());
    assert!(
        name.as_deref()
            .is_some_and(|name| name.starts_with("cancel-token-timer")),
        "evaluated on {name:?}"
    );
    assert!(token.wait_blocking_timeout(LIMIT));
}

#[test]
fn a_panicking_predicate_triggers_the_token_with_a_message() {
    let witness = Arc::new(());
    let held = Arc::clone(&witness);
    let token = CancelToken::when(INTERVAL, move || {
        let _held = &held;
        panic!("sensor offline")
    });
    assert!(token.wait_blocking_timeout(LIMIT), "a panic must trigger");
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Condition);
    assert_eq!(
        reason.message(),
        Some("condition predicate panicked: sensor offline")
    );
    wait_dropped(&witness);

    let opaque = CancelToken::when(INTERVAL, || std::panic::panic_any(42_u32));
    assert!(opaque.wait_blocking_timeout(LIMIT));
    let reason = opaque.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Condition);
    assert_eq!(reason.message(), Some("condition predicate panicked"));

    // The timer threads survived both panics.
    let after = CancelToken::with_timeout(INTERVAL);
    assert!(after.wait_blocking_timeout(LIMIT));
}

/// A predicate that blocks (here until the test releases it) holds one timer thread, and
/// nothing else: a deadline and another condition due meanwhile fire on time.
#[test]
fn a_slow_predicate_delays_no_deadline_and_no_other_condition() {
    let _serial = serial();
    within(LIMIT, || {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let slow = CancelToken::when(INTERVAL, move || {
            let _ = entered_tx.send(());
            // Blocks far longer than the deadline below, until released.
            let _ = release_rx.recv_timeout(LIMIT);
            false
        });
        entered_rx.recv_timeout(LIMIT).expect("never evaluated");

        let start = Instant::now();
        let deadline = CancelToken::with_timeout(Duration::from_millis(30));
        let quick = CancelToken::when(Duration::from_millis(30), || true);
        assert!(deadline.wait_blocking_timeout(LIMIT), "the deadline waited");
        let deadline_at = start.elapsed();
        assert!(quick.wait_blocking_timeout(LIMIT), "the condition waited");
        let quick_at = start.elapsed();

        assert!(deadline_at >= Duration::from_millis(30));
        assert!(
            deadline_at < GENEROUS,
            "the deadline fired after {deadline_at:?}"
        );
        assert!(
            quick_at < GENEROUS,
            "the condition fired after {quick_at:?}"
        );
        assert_eq!(deadline.reason().unwrap().kind(), ReasonKind::Timeout);
        assert!(!slow.is_triggered());
        release_tx.send(()).expect("the slow predicate is gone");
    });
}

#[test]
fn a_zero_interval_polls_at_most_once_a_millisecond() {
    let calls = Arc::new(AtomicUsize::new(0));
    let witness = Arc::new(());
    let start = Instant::now();
    let token = CancelToken::when(Duration::ZERO, counting(&calls, &witness, usize::MAX));
    wait_until("a few evaluations", LIMIT, || {
        calls.load(Ordering::SeqCst) >= 5
    });
    thread::sleep(Duration::from_millis(100));
    let count = calls.load(Ordering::SeqCst);
    let elapsed = start.elapsed();
    // Each evaluation is at least 1 ms after the previous one returned.
    let most = elapsed.as_millis() as usize + 1;
    assert!(count <= most, "{count} evaluations in {elapsed:?}");
    assert!(!token.is_triggered());
    drop(token);
    wait_dropped(&witness);
}

#[test]
fn an_unrepresentable_interval_is_never_polled() {
    let calls = Arc::new(AtomicUsize::new(0));
    let witness = Arc::new(());
    let token = CancelToken::when(Duration::MAX, counting(&calls, &witness, 1));
    thread::sleep(INTERVAL * 10);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(!token.is_triggered());
    assert_eq!(token.deadline(), None);
    assert!(token.trigger(), "it still triggers directly");
    wait_dropped(&witness);
}

#[test]
fn a_condition_token_has_no_deadline_and_links_like_any_token() {
    let condition = CancelToken::when(Duration::from_secs(3600), || false);
    assert_eq!(condition.deadline(), None);
    assert_eq!(condition.child().deadline(), None);
    let timeout = CancelToken::with_timeout(Duration::from_secs(60));
    let either = condition.chain(&timeout);
    assert_eq!(either.deadline(), timeout.deadline());

    condition.trigger();
    assert!(either.is_triggered());
    assert_eq!(either.triggered_token(), Some(condition));
}

/// The predicate runs with no lock of the crate held: it may trigger its own token.
#[test]
fn the_predicate_may_trigger_its_own_token() {
    let witness = Arc::new(());
    let held = Arc::clone(&witness);
    let own: Arc<OnceLock<WeakCancelToken>> = Arc::default();
    let token = CancelToken::when(INTERVAL, {
        let own = Arc::clone(&own);
        move || {
            let _held = &held;
            if let Some(token) = own.get().and_then(WeakCancelToken::upgrade) {
                token.trigger_with("from inside");
            }
            false
        }
    });
    own.set(token.downgrade()).unwrap();
    assert!(token.wait_blocking_timeout(LIMIT));
    assert_eq!(token.reason().unwrap().message(), Some("from inside"));
    wait_dropped(&witness);
}

/// The process's thread count, from `/proc/self/status`.
#[cfg(target_os = "linux")]
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("a Threads: line")
}

#[cfg(target_os = "linux")]
#[test]
fn ten_thousand_condition_tokens_share_a_few_threads() {
    const TOKENS: usize = 10_000;
    /// Each predicate holds from its third call on.
    const CALLS: usize = 3;
    /// Far below a thread per token; room for the other tests of this binary.
    const MORE_THREADS: usize = 100;

    let _serial = serial();
    within(LIMIT, || {
        let before = threads();
        let total = Arc::new(AtomicUsize::new(0));
        let tokens: Vec<CancelToken> = (0..TOKENS)
            .map(|_| {
                let total = Arc::clone(&total);
                // Each predicate's own count lives in the closure: it is `FnMut`.
                let mut calls = 0;
                CancelToken::when(INTERVAL, move || {
                    calls += 1;
                    total.fetch_add(1, Ordering::SeqCst);
                    calls >= CALLS
                })
            })
            .collect();
        let every = CancelToken::all(&tokens);
        let mut peak = threads();
        while !every.wait_blocking_timeout(Duration::from_millis(1)) {
            peak = peak.max(threads());
        }
        peak = peak.max(threads());
        assert!(
            peak <= before + MORE_THREADS,
            "{peak} threads at the peak, {before} before"
        );
        assert!(tokens
            .iter()
            .all(|token| token.reason().unwrap().kind() == ReasonKind::Condition));
        // Every predicate is dropped once its token is triggered: then no call can come.
        wait_until("every predicate to be dropped", LIMIT, || {
            Arc::strong_count(&total) == 1
        });
        assert_eq!(total.load(Ordering::SeqCst), TOKENS * CALLS);
    });
}
