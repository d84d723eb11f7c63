//! `on_cancel` callbacks: once, in registration order across a tree, on the triggering thread,
//! after the whole tree is visibly triggered, with no lock held, and robust to panics.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use cancel_token::{CallbackGuard, CancelToken, ReasonKind};
use common::{panic_message, poll_once, wait_until, within, LIMIT};

/// A shared, ordered record of what ran.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    /// A callback that records `entry`.
    fn recorder(&self, entry: &'static str) -> impl FnOnce(&cancel_token::Reason) + Send + 'static {
        let log = self.clone();
        move |_| log.push(entry)
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn counter() -> (
    Arc<AtomicUsize>,
    impl FnOnce(&cancel_token::Reason) + Send + 'static,
) {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    (count, move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
    })
}

// ---------------------------------------------------------------------------------------------
// Once, in order, where and when

#[test]
fn a_callback_runs_once() {
    let token = CancelToken::new();
    let (count, callback) = counter();
    let guard = token.on_cancel(callback);
    assert!(guard.is_pending());
    assert_eq!(count.load(Ordering::SeqCst), 0, "not before the trigger");
    token.trigger();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    token.trigger();
    token.trigger_with("again");
    assert!(!guard.is_pending());
    drop(guard);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn callbacks_on_one_token_run_in_registration_order() {
    let token = CancelToken::new();
    let log = Log::default();
    let guards: Vec<CallbackGuard> = (0..20)
        .map(|i| {
            let log = log.clone();
            token.on_cancel(move |_| log.push(i.to_string()))
        })
        .collect();
    token.trigger();
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(log.entries(), expected);
    drop(guards);
}

#[test]
fn callbacks_across_a_tree_run_in_registration_order() {
    let parent = CancelToken::new();
    let child = parent.child();
    let log = Log::default();
    let _g1 = parent.on_cancel(log.recorder("1"));
    let _g2 = child.on_cancel(log.recorder("2"));
    let _g3 = parent.on_cancel(log.recorder("3"));
    parent.trigger();
    assert_eq!(log.entries(), ["1", "2", "3"]);
}

#[test]
fn callbacks_across_children_chains_and_any_run_in_registration_order() {
    let root = CancelToken::new();
    let other = CancelToken::new();
    let child = root.child();
    let chained = child.chain(&other);
    let any = CancelToken::any([&other, &chained]);
    let log = Log::default();
    let _a = any.on_cancel(log.recorder("a"));
    let _b = chained.on_cancel(log.recorder("b"));
    let _c = root.on_cancel(log.recorder("c"));
    let _d = child.on_cancel(log.recorder("d"));
    let _e = any.on_cancel(log.recorder("e"));
    let _f = root.on_cancel(log.recorder("f"));
    root.trigger();
    assert_eq!(log.entries(), ["a", "b", "c", "d", "e", "f"]);
}

#[test]
fn callbacks_run_on_the_triggering_thread() {
    let parent = CancelToken::new();
    let child = parent.child();
    let ran_on = Arc::new(Mutex::new(Vec::new()));
    let guards: Vec<CallbackGuard> = [&parent, &child]
        .into_iter()
        .map(|token| {
            let ran_on = Arc::clone(&ran_on);
            token.on_cancel(move |_| ran_on.lock().unwrap().push(thread::current().id()))
        })
        .collect();
    let trigger = parent.clone();
    let triggerer = thread::spawn(move || {
        trigger.trigger();
        thread::current().id()
    });
    let triggering_thread = triggerer.join().unwrap();
    assert_ne!(triggering_thread, thread::current().id());
    assert_eq!(
        *ran_on.lock().unwrap(),
        [triggering_thread, triggering_thread]
    );
    drop(guards);
}

#[test]
fn callbacks_run_after_the_flag_and_reason_of_the_whole_tree_are_visible() {
    let parent = CancelToken::named("parent");
    let child = parent.child();
    let seen = Arc::new(Mutex::new(None));
    let _guard = parent.on_cancel({
        let parent = parent.clone();
        let child = child.clone();
        let seen = Arc::clone(&seen);
        move |reason| {
            *seen.lock().unwrap() = Some((
                reason.clone(),
                parent.is_triggered(),
                parent.reason(),
                child.is_triggered(),
                child.reason(),
                child.triggered_token(),
                poll_once(&mut child.wait()) == Poll::Ready(()),
            ));
        }
    });
    parent.trigger_with("visible");
    let (reason, parent_flag, parent_reason, child_flag, child_reason, origin, child_ready) =
        seen.lock().unwrap().take().expect("the callback ran");
    assert_eq!(reason.message(), Some("visible"));
    assert!(parent_flag);
    assert_eq!(parent_reason, Some(reason.clone()));
    assert!(
        child_flag,
        "the descendant is triggered before any callback runs"
    );
    assert_eq!(child_reason, Some(reason));
    assert_eq!(origin, Some(parent));
    assert!(child_ready);
}

#[test]
fn a_callback_on_an_already_triggered_token_runs_before_on_cancel_returns() {
    let token = CancelToken::new();
    token.trigger_with("earlier");
    let ran = Arc::new(Mutex::new(None));
    let guard = token.on_cancel({
        let ran = Arc::clone(&ran);
        move |reason| *ran.lock().unwrap() = Some((reason.clone(), thread::current().id()))
    });
    let (reason, thread_id) = ran.lock().unwrap().take().expect("ran during on_cancel");
    assert_eq!(reason.message(), Some("earlier"));
    assert_eq!(thread_id, thread::current().id());
    assert!(!guard.is_pending());
    assert_eq!(guard.token(), &token);
    drop(guard);
}

#[test]
fn a_callback_on_a_born_triggered_descendant_runs_at_once_with_the_origins_reason() {
    let root = CancelToken::named("root");
    root.trigger_with(ReasonKind::Signal);
    let late = root.child().chain(&CancelToken::new());
    let (count, callback) = counter();
    late.on_cancel(callback).detach();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let kind = Arc::new(Mutex::new(None));
    let _guard = late.on_cancel({
        let kind = Arc::clone(&kind);
        move |reason| *kind.lock().unwrap() = Some(reason.kind())
    });
    assert_eq!(*kind.lock().unwrap(), Some(ReasonKind::Signal));
}

// ---------------------------------------------------------------------------------------------
// No lock held while a callback runs

#[test]
fn a_callback_can_register_another_callback_on_its_own_token() {
    let token = CancelToken::new();
    let log = Log::default();
    let _guard = token.on_cancel({
        let token = token.clone();
        let log = log.clone();
        move |_| {
            log.push("outer");
            let inner = token.on_cancel(log.recorder("inner"));
            assert!(
                !inner.is_pending(),
                "ran at once: the token is already triggered"
            );
            drop(inner);
            log.push("outer end");
        }
    });
    within(LIMIT, move || {
        token.trigger();
    });
    assert_eq!(log.entries(), ["outer", "inner", "outer end"]);
}

#[test]
fn a_callback_can_trigger_another_token() {
    let first = CancelToken::named("first");
    let second = CancelToken::named("second");
    let second_child = second.child();
    let log = Log::default();
    let _on_second = second.on_cancel(log.recorder("second's callback"));
    let _on_first = first.on_cancel({
        let second = second.clone();
        let log = log.clone();
        move |reason| {
            log.push("first's callback");
            assert!(second.trigger_with(reason.clone()));
            log.push("first's callback end");
        }
    });
    let trigger = first.clone();
    within(LIMIT, move || {
        trigger.trigger_with("cascade");
    });
    assert_eq!(
        log.entries(),
        [
            "first's callback",
            "second's callback",
            "first's callback end"
        ]
    );
    assert_eq!(second.reason().unwrap().message(), Some("cascade"));
    assert_eq!(second_child.triggered_token(), Some(second));
}

#[test]
fn a_callback_can_trigger_a_token_that_links_back_to_its_own() {
    let a = CancelToken::named("a");
    let b = CancelToken::named("b");
    let either = a.chain(&b);
    let _guard = either.on_cancel({
        let b = b.clone();
        move |_| {
            b.trigger();
        }
    });
    let trigger = a.clone();
    within(LIMIT, move || {
        trigger.trigger();
    });
    assert!(b.is_triggered());
    assert_eq!(
        either.triggered_token(),
        Some(a),
        "the chain keeps its first origin"
    );
}

#[test]
fn a_callback_can_drop_its_own_guard() {
    let token = CancelToken::new();
    let slot: Arc<Mutex<Option<CallbackGuard>>> = Arc::new(Mutex::new(None));
    let (count, count_it) = counter();
    let guard = token.on_cancel({
        let slot = Arc::clone(&slot);
        move |reason| {
            let own = slot.lock().unwrap().take();
            assert!(own.is_some(), "the guard was in the slot");
            drop(own);
            count_it(reason);
        }
    });
    *slot.lock().unwrap() = Some(guard);
    let trigger = token.clone();
    within(LIMIT, move || {
        trigger.trigger();
    });
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(slot.lock().unwrap().is_none());
}

#[test]
fn a_callback_can_drop_the_guard_of_a_later_callback_which_then_never_runs() {
    let token = CancelToken::new();
    let later_slot: Arc<Mutex<Option<CallbackGuard>>> = Arc::new(Mutex::new(None));
    let log = Log::default();
    let _first = token.on_cancel({
        let later_slot = Arc::clone(&later_slot);
        let log = log.clone();
        move |_| {
            log.push("first");
            drop(later_slot.lock().unwrap().take());
        }
    });
    *later_slot.lock().unwrap() = Some(token.on_cancel(log.recorder("later")));
    let _last = token.on_cancel(log.recorder("last"));
    let trigger = token.clone();
    within(LIMIT, move || {
        trigger.trigger();
    });
    assert_eq!(log.entries(), ["first", "last"]);
}

// ---------------------------------------------------------------------------------------------
// Panics

#[test]
fn a_panicking_callback_stops_neither_the_others_nor_the_propagation() {
    let token = CancelToken::named("panicky");
    let child = token.child();
    let grandchild = child.child();
    let log = Log::default();
    let _before = token.on_cancel(log.recorder("before"));
    let _first_panic = token.on_cancel({
        let log = log.clone();
        move |_| {
            log.push("first panic");
            panic!("first callback panic");
        }
    });
    let _second_panic = child.on_cancel({
        let log = log.clone();
        move |_| {
            log.push("second panic");
            panic!("second callback panic");
        }
    });
    let _after = token.on_cancel(log.recorder("after"));
    let _on_grandchild = grandchild.on_cancel(log.recorder("grandchild"));

    let trigger = token.clone();
    let result = within(LIMIT, move || {
        panic::catch_unwind(AssertUnwindSafe(|| trigger.trigger_with("boom")))
    });
    let payload = result.expect_err("trigger resumes the callback's panic");
    assert_eq!(panic_message(&*payload), Some("first callback panic"));
    assert_eq!(
        log.entries(),
        [
            "before",
            "first panic",
            "second panic",
            "after",
            "grandchild"
        ]
    );
    assert!(child.is_triggered());
    assert_eq!(grandchild.reason().unwrap().message(), Some("boom"));
    assert_eq!(grandchild.triggered_token(), Some(token));
}

#[test]
fn a_token_is_fully_usable_after_a_panicking_callback() {
    let token = CancelToken::named("survivor");
    let _guard = token.on_cancel(|_| panic!("callback panic"));
    let result = panic::catch_unwind(AssertUnwindSafe(|| token.trigger_with("boom")));
    assert!(result.is_err());

    assert!(token.is_triggered());
    assert_eq!(token.reason().unwrap().message(), Some("boom"));
    assert!(!token.trigger(), "still triggered once");
    assert_eq!(token.raise_if_triggered().unwrap_err().token(), &token);
    assert_eq!(poll_once(&mut token.wait()), Poll::Ready(()));
    assert!(token.wait_blocking_timeout(Duration::ZERO));
    let child = token.child();
    assert_eq!(child.triggered_token(), Some(token.clone()));
    let (count, callback) = counter();
    let late = token.on_cancel(callback);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    drop(late);
    assert!(format!("{token:?}").contains("survivor"));
}

#[test]
fn a_panicking_callback_on_an_already_triggered_token_panics_in_on_cancel() {
    let token = CancelToken::new();
    token.trigger();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        token.on_cancel(|_| panic!("late callback panic")).detach();
    }));
    let payload = result.expect_err("the panic propagates from on_cancel");
    assert_eq!(panic_message(&*payload), Some("late callback panic"));
    assert!(token.is_triggered());
}

// ---------------------------------------------------------------------------------------------
// Guards

#[test]
fn dropping_the_guard_before_the_trigger_means_the_callback_never_runs() {
    let token = CancelToken::new();
    let captured = Arc::new(());
    let ran = Arc::new(AtomicBool::new(false));
    let guard = token.on_cancel({
        let captured = Arc::clone(&captured);
        let ran = Arc::clone(&ran);
        move |_| {
            let _keep = &captured;
            ran.store(true, Ordering::SeqCst);
        }
    });
    assert_eq!(
        Arc::strong_count(&captured),
        2,
        "the closure holds the capture"
    );
    drop(guard);
    assert_eq!(
        Arc::strong_count(&captured),
        1,
        "the closure was dropped with its guard"
    );
    token.trigger();
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn dropping_the_guard_after_the_callback_ran_is_harmless() {
    let token = CancelToken::new();
    let (count, callback) = counter();
    let guard = token.on_cancel(callback);
    token.trigger();
    drop(guard);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn a_detached_callback_still_runs_on_trigger() {
    let token = CancelToken::new();
    let (count, callback) = counter();
    token.on_cancel(callback).detach();
    assert_eq!(count.load(Ordering::SeqCst), 0);
    token.trigger();
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn a_detached_callback_is_dropped_unrun_with_its_token() {
    let token = CancelToken::new();
    let captured = Arc::new(());
    let ran = Arc::new(AtomicBool::new(false));
    token
        .on_cancel({
            let captured = Arc::clone(&captured);
            let ran = Arc::clone(&ran);
            move |_| {
                let _keep = &captured;
                ran.store(true, Ordering::SeqCst);
            }
        })
        .detach();
    assert_eq!(Arc::strong_count(&captured), 2);
    drop(token);
    assert_eq!(
        Arc::strong_count(&captured),
        1,
        "freed with the token's node"
    );
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn a_guard_keeps_its_token_alive() {
    let parent = CancelToken::new();
    let (count, callback) = counter();
    let guard = parent.child().on_cancel(callback);
    assert!(guard.is_pending());
    parent.trigger();
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "the dropped child is kept by its guard"
    );
    assert!(guard.token().is_triggered());
    drop(guard);
}

#[test]
fn dropping_the_guard_while_the_callback_runs_on_another_thread_waits_for_it() {
    let token = CancelToken::new();
    let started = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let guard = token.on_cancel({
        let started = Arc::clone(&started);
        let finished = Arc::clone(&finished);
        move |_| {
            started.store(true, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(100));
            finished.store(true, Ordering::SeqCst);
        }
    });
    let trigger = token.clone();
    let triggerer = thread::spawn(move || trigger.trigger());
    within(LIMIT, move || {
        wait_until("the callback to start", LIMIT, || {
            started.load(Ordering::SeqCst)
        });
        drop(guard);
        assert!(
            finished.load(Ordering::SeqCst),
            "the guard's drop returned while its callback was still running"
        );
        assert!(triggerer.join().unwrap());
    });
}

#[test]
fn callbacks_on_descendants_run_with_the_origins_reason() {
    let root = CancelToken::named("root");
    let other = CancelToken::new();
    let child = root.child();
    let chained = child.chain(&other);
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let guards: Vec<CallbackGuard> = [&root, &child, &chained]
        .into_iter()
        .map(|token| {
            let reasons = Arc::clone(&reasons);
            token.on_cancel(move |reason| reasons.lock().unwrap().push(reason.clone()))
        })
        .collect();
    root.trigger_with(cancel_token::Reason::with_message(
        ReasonKind::Condition,
        "disk full",
    ));
    let reasons = reasons.lock().unwrap();
    assert_eq!(reasons.len(), 3);
    for reason in reasons.iter() {
        assert_eq!(reason.kind(), ReasonKind::Condition);
        assert_eq!(reason.message(), Some("disk full"));
    }
    drop(guards);
}

#[test]
fn callbacks_on_a_self_triggered_descendant_keep_its_own_reason() {
    let root = CancelToken::new();
    let child = root.child();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let _guard = child.on_cancel({
        let reasons = Arc::clone(&reasons);
        move |reason| reasons.lock().unwrap().push(reason.clone())
    });
    child.trigger_with("child first");
    root.trigger_with("root later");
    let reasons = reasons.lock().unwrap();
    assert_eq!(reasons.len(), 1, "the callback ran once");
    assert_eq!(reasons[0].message(), Some("child first"));
}

// ---------------------------------------------------------------------------------------------
// Races with the trigger

#[test]
fn callbacks_registered_while_the_token_triggers_each_run_exactly_once() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 500;
    for _round in 0..10 {
        let token = CancelToken::new();
        let runs: Arc<Vec<AtomicUsize>> = Arc::new(
            (0..THREADS * PER_THREAD)
                .map(|_| AtomicUsize::new(0))
                .collect(),
        );
        let start = Arc::new(std::sync::Barrier::new(THREADS + 1));
        let registrars: Vec<_> = (0..THREADS)
            .map(|t| {
                let token = token.clone();
                let runs = Arc::clone(&runs);
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    (0..PER_THREAD)
                        .map(|i| {
                            let runs = Arc::clone(&runs);
                            token.on_cancel(move |_| {
                                runs[t * PER_THREAD + i].fetch_add(1, Ordering::SeqCst);
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        start.wait();
        token.trigger();
        let guards = within(LIMIT, move || {
            registrars
                .into_iter()
                .flat_map(|r| r.join().unwrap())
                .collect::<Vec<_>>()
        });
        for (i, count) in runs.iter().enumerate() {
            assert_eq!(count.load(Ordering::SeqCst), 1, "callback {i}");
        }
        drop(guards);
    }
}

#[test]
fn a_guard_dropped_while_the_token_triggers_never_lets_its_callback_run_afterwards() {
    for _round in 0..500 {
        let token = CancelToken::new();
        let ran = Arc::new(AtomicBool::new(false));
        let guard = token.on_cancel({
            let ran = Arc::clone(&ran);
            move |_| ran.store(true, Ordering::SeqCst)
        });
        let start = Arc::new(std::sync::Barrier::new(2));
        let go = Arc::clone(&start);
        let trigger = token.clone();
        let triggerer = thread::spawn(move || {
            go.wait();
            trigger.trigger();
        });
        start.wait();
        drop(guard);
        let ran_before_drop_returned = ran.load(Ordering::SeqCst);
        within(LIMIT, move || triggerer.join().unwrap());
        assert_eq!(
            ran.load(Ordering::SeqCst),
            ran_before_drop_returned,
            "the callback ran after its guard's drop returned"
        );
    }
}
