//! Loom models: every interleaving of the crate's races, within a preemption bound.
//!
//! Run with
//! `RUSTFLAGS="--cfg cancel_token_loom" LOOM_MAX_PREEMPTIONS=6 cargo test --release --test loom`
//! (`.ci/run` does, in its own target directory). Under that cfg the crate's mutexes, condvar,
//! atomics, fences and once-cells are loom's, so loom explores the orders in which they can
//! interleave; a lost wake-up shows as a deadlock of `loom::future::block_on`, and every model
//! asserts its property after joining its threads. `docs/reliability.md` lists what each proves.
#![cfg(cancel_token_loom)]

mod support_loom;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cancel_token::{CancelToken, ReasonKind};
use loom::future::block_on;
use loom::thread;
use support_loom::model;

/// Runs a three-thread model `f` under loom with at most `bound` preemptions (or
/// `LOOM_MAX_PREEMPTIONS`, if lower): three threads at CI's bound of 6 would take hours.
/// Every interleaving that breaks the state-word handshake needs two preemptions at most.
fn model_three(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(bound, |b| b.min(bound)));
    // Three threads, two of them polling futures, take longer paths than the default allows.
    builder.max_branches = 20_000;
    builder.check(f);
}

/// What the callbacks registered on `tokens` heard: the index of each token whose callback ran,
/// with the reason it received.
type Heard = Arc<std::sync::Mutex<Vec<(usize, cancel_token::Reason)>>>;

/// Registers a callback on each of `tokens` that records its index and reason in the returned
/// log; the guards keep them registered.
fn listen(tokens: &[&CancelToken]) -> (Heard, Vec<cancel_token::CallbackGuard>) {
    let heard: Heard = Arc::default();
    let guards = tokens
        .iter()
        .enumerate()
        .map(|(k, token)| {
            let heard = Arc::clone(&heard);
            token.on_cancel(move |reason| heard.lock().unwrap().push((k, reason.clone())))
        })
        .collect();
    (heard, guards)
}

#[test]
fn a_waiter_registering_during_a_trigger_is_never_lost() {
    model(|| {
        let token = CancelToken::new();
        let trigger = token.clone();
        let t = thread::spawn(move || {
            assert!(trigger.trigger());
        });
        // Deadlocks (and fails the model) if the wake-up is lost.
        block_on(token.wait());
        t.join().unwrap();
        assert_eq!(
            token.__loom_registrations().2,
            0,
            "no waiter left registered"
        );
    });
}

#[test]
fn a_waiter_on_a_child_is_never_lost() {
    model(|| {
        let parent = CancelToken::new();
        let child = parent.child();
        let trigger = parent.clone();
        let t = thread::spawn(move || {
            trigger.trigger();
        });
        block_on(child.wait());
        t.join().unwrap();
    });
}

#[test]
fn concurrent_triggers_have_one_winner_whose_reason_everyone_sees() {
    model(|| {
        let token = CancelToken::new();
        let (a, b) = (token.clone(), token.clone());
        let observer = token.clone();
        let ta = thread::spawn(move || a.trigger_with("a"));
        let tb = thread::spawn(move || b.trigger_with("b"));
        // Never "triggered without a reason".
        if observer.is_triggered() {
            assert!(observer.reason().is_some());
            assert!(observer.triggered_token().is_some());
        }
        let (won_a, won_b) = (ta.join().unwrap(), tb.join().unwrap());
        assert!(won_a ^ won_b, "exactly one trigger wins");
        let winner = if won_a { "a" } else { "b" };
        assert_eq!(token.reason().unwrap().message(), Some(winner));
    });
}

#[test]
fn a_child_created_during_a_trigger_ends_triggered_once_with_the_origins_reason() {
    model(|| {
        let parent = CancelToken::named("parent");
        let trigger = parent.clone();
        let t = thread::spawn(move || trigger.trigger_with("stop"));
        let child = parent.child();
        t.join().unwrap();
        assert!(child.is_triggered());
        assert_eq!(child.reason().unwrap().message(), Some("stop"));
        assert_eq!(child.triggered_token(), Some(parent));
        assert!(!child.trigger(), "the child was triggered exactly once");
    });
}

#[test]
fn a_chain_created_during_a_trigger_ends_triggered_with_the_origins_reason() {
    model(|| {
        let a = CancelToken::new();
        let b = CancelToken::new();
        let trigger = b.clone();
        let t = thread::spawn(move || trigger.trigger_with("b"));
        let chained = a.chain(&b);
        t.join().unwrap();
        assert_eq!(chained.reason().unwrap().message(), Some("b"));
        assert_eq!(chained.triggered_token(), Some(b));
        assert!(!a.is_triggered());
    });
}

#[test]
fn an_any_created_during_a_trigger_ends_triggered_with_the_origins_reason() {
    model(|| {
        let a = CancelToken::new();
        let b = CancelToken::new();
        let c = CancelToken::new();
        let trigger = c.clone();
        let t = thread::spawn(move || trigger.trigger_with("c"));
        let any = CancelToken::any([&a, &b, &c]);
        t.join().unwrap();
        assert_eq!(any.reason().unwrap().message(), Some("c"));
        assert_eq!(any.triggered_token(), Some(c));
    });
}

/// `any` racing a trigger of its second source: whether the trigger reaches the new token
/// through its link, before `any` links it, or while `any` is linking it (when `any` triggers
/// it itself), a later trigger of the first source, which may walk to it, leaves it with the
/// second source's reason and origin.
#[test]
fn an_any_triggered_while_linking_keeps_its_reason_when_an_earlier_source_fires() {
    model(|| {
        let a = CancelToken::named("a");
        let b = CancelToken::named("b");
        let trigger = b.clone();
        let t = thread::spawn(move || trigger.trigger_with("b"));
        let any = CancelToken::any([&a, &b]);
        t.join().unwrap();
        assert!(any.is_triggered());
        assert!(a.trigger_with("a"));
        assert_eq!(any.triggered_token().as_ref(), Some(&b));
        assert_eq!(any.reason().unwrap().message(), Some("b"));
        assert_eq!(any.child().triggered_token().as_ref(), Some(&b));
    });
}

#[test]
fn dropping_a_child_during_a_trigger_neither_panics_nor_leaks() {
    model(|| {
        let parent = CancelToken::new();
        let child = parent.child();
        let keep = parent.child();
        let trigger = parent.clone();
        let t = thread::spawn(move || trigger.trigger());
        drop(child);
        t.join().unwrap();
        assert!(keep.is_triggered(), "the sibling was not missed");
        drop(keep);
        assert_eq!(
            parent.__loom_registrations().0,
            0,
            "every child link is gone"
        );
    });
}

#[test]
fn dropping_an_intermediate_link_during_a_trigger_misses_no_descendant() {
    model(|| {
        let root = CancelToken::new();
        let middle = root.child();
        let leaf = middle.child();
        let trigger = root.clone();
        let t = thread::spawn(move || trigger.trigger_with("root"));
        drop(middle);
        t.join().unwrap();
        assert_eq!(leaf.reason().unwrap().message(), Some("root"));
        drop(leaf);
        assert_eq!(
            root.__loom_registrations().0,
            0,
            "the branch unlinked itself"
        );
    });
}

/// A root and a middle token triggered at once: each trigger finishes what it claimed, so
/// when the root's trigger returns, everything it claimed is triggered; the middle's subtree
/// is the root's only if the root's walk reached the middle first.
#[test]
fn overlapping_triggers_each_finish_what_they_claimed() {
    model(|| {
        let root = CancelToken::new();
        let middle = root.child();
        let leaf = middle.child();
        let (r, m) = (root.clone(), middle.clone());
        let observer = leaf.clone();
        let tm = thread::spawn(move || m.trigger_with("middle"));
        let won = r.trigger_with("root");
        let leaf_at_return = observer.is_triggered();
        let middle_won = tm.join().unwrap();
        assert!(won, "nothing else triggers the root");
        assert!(leaf.is_triggered(), "both triggers returned");
        if middle.triggered_token().as_ref() == Some(&root) {
            assert!(!middle_won);
            assert!(
                leaf_at_return,
                "the root claimed the middle, so the leaf too"
            );
        } else {
            assert!(middle_won);
        }
        // The leaf lies below the middle, so it carries whatever the middle carries.
        assert_eq!(leaf.triggered_token(), middle.triggered_token());
        assert_eq!(leaf.reason(), middle.reason());
    });
}

/// Triggers `root` and, on another thread, `middle` (a child of the root with two levels
/// below it), each with `message` (`None`: `trigger()`), and checks that every node from the
/// middle down names the winner of the middle (the middle itself if its own trigger won, the
/// root otherwise) and carries that winner's reason, that their callbacks receive it once,
/// and that the root's trigger returned with them triggered if it won the middle.
fn race_root_and_middle(message: fn(&str) -> Option<&str>) {
    model(move || {
        let trigger = move |token: &CancelToken, name: &str| match message(name) {
            Some(message) => token.trigger_with(message),
            None => token.trigger(),
        };
        let root = CancelToken::named("root");
        let middle = root.child_named("middle");
        let inner = middle.child();
        let leaf = inner.child();
        // Whichever walk runs a callback, it gets the reason of the callback's own token.
        let (heard, guards) = listen(&[&middle, &inner]);
        let m = middle.clone();
        let tm = thread::spawn(move || trigger(&m, "middle"));
        assert!(trigger(&root, "root"), "nothing else triggers the root");
        let below_at_return = [&middle, &inner, &leaf].map(CancelToken::is_triggered);
        let middle_won = tm.join().unwrap();
        let expected = if middle_won { &middle } else { &root };
        if !middle_won {
            assert_eq!(below_at_return, [true; 3], "what the root claimed was done");
        }
        assert_eq!(root.triggered_token().as_ref(), Some(&root));
        for token in [&middle, &inner, &leaf] {
            assert!(token.is_triggered());
            assert_eq!(token.triggered_token().as_ref(), Some(expected));
            let reason = token.reason().expect("a triggered token has a reason");
            assert_eq!(reason.kind(), ReasonKind::Manual);
            assert_eq!(reason.message(), message(expected.name().unwrap()));
        }
        let mut heard = heard.lock().unwrap().clone();
        heard.sort_by_key(|(k, _)| *k);
        let expected_reason = middle.reason();
        assert_eq!(heard.len(), 2, "each callback ran once");
        for (_, reason) in heard {
            assert_eq!(Some(reason), expected_reason);
        }
        drop(guards);
    });
}

#[test]
fn a_subtree_walked_by_two_triggers_keeps_the_reason_of_its_own_origin_all_the_way_down() {
    race_root_and_middle(|name| Some(name));
}

/// The same race with `trigger()` on both sides (reasons without a message).
#[test]
fn overlapping_triggers_without_messages_name_the_right_origin() {
    race_root_and_middle(|_| None);
}

/// Triggers `leaf`, a child of `root` (with a callback), on one thread with `leaf_reason` and
/// `root` on another, and checks that the leaf ends triggered with exactly one of the two,
/// naming whichever trigger reached it first, and that its callback runs once with that reason.
fn race_leaf_and_parent(leaf_reason: &'static str) {
    model(move || {
        let root = CancelToken::new();
        let leaf = root.child();
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&heard);
        let guard = leaf.on_cancel(move |reason| log.lock().unwrap().push(reason.clone()));
        let l = leaf.clone();
        let tl = thread::spawn(move || l.trigger_with(leaf_reason));
        assert!(root.trigger_with("root"));
        assert!(leaf.is_triggered(), "the root's trigger returned");
        let leaf_won = tl.join().unwrap();
        drop(guard);
        let (expected, message) = if leaf_won {
            (&leaf, leaf_reason)
        } else {
            (&root, "root")
        };
        assert_eq!(leaf.triggered_token().as_ref(), Some(expected));
        assert_eq!(leaf.reason().unwrap().message(), Some(message));
        let heard = heard.lock().unwrap().clone();
        assert_eq!(heard.len(), 1, "the callback runs once");
        assert_eq!(heard[0].message(), Some(message));
    });
}

/// A trigger with a message stores its reason before its state word: losing the word to the
/// parent's walk after storing it must leave the parent's reason in force.
#[test]
fn a_leaf_triggered_with_a_message_raced_by_its_parent() {
    race_leaf_and_parent("leaf");
}

/// A token without children (here with a callback) triggered without a message keeps the kind
/// in its state word and nothing else; a trigger of its parent racing with it must still leave
/// it triggered, naming whichever trigger reached it first.
#[test]
fn a_leaf_triggered_without_a_message_raced_by_its_parent() {
    model(|| {
        let root = CancelToken::new();
        let leaf = root.child();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let guard = leaf.on_cancel(move |reason| {
            assert_eq!(reason.kind(), ReasonKind::Manual);
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let l = leaf.clone();
        let tl = thread::spawn(move || l.trigger());
        assert!(root.trigger());
        assert!(leaf.is_triggered(), "the root's trigger returned");
        let leaf_won = tl.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        drop(guard);
        let expected = if leaf_won { &leaf } else { &root };
        assert_eq!(leaf.triggered_token().as_ref(), Some(expected));
        assert_eq!(root.triggered_token().as_ref(), Some(&root));
        assert_eq!(leaf.reason().unwrap().kind(), ReasonKind::Manual);
    });
}

#[test]
fn a_callback_registered_during_a_trigger_runs_exactly_once() {
    model(|| {
        let token = CancelToken::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let trigger = token.clone();
        let t = thread::spawn(move || trigger.trigger());
        let counted = runs.clone();
        let guard = token.on_cancel(move |reason| {
            assert_eq!(reason.kind(), ReasonKind::Manual);
            counted.fetch_add(1, Ordering::SeqCst);
        });
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        drop(guard);
        assert_eq!(token.__loom_registrations().1, 0);
    });
}

#[test]
fn a_callback_never_runs_after_its_guard_is_dropped() {
    model(|| {
        let token = CancelToken::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let guard = token.on_cancel({
            let (runs, dropped) = (runs.clone(), dropped.clone());
            move |_| {
                assert!(
                    !dropped.load(Ordering::SeqCst),
                    "ran after its guard was dropped"
                );
                runs.fetch_add(1, Ordering::SeqCst);
            }
        });
        let trigger = token.clone();
        let t = thread::spawn(move || trigger.trigger());
        drop(guard);
        dropped.store(true, Ordering::SeqCst);
        t.join().unwrap();
        assert!(runs.load(Ordering::SeqCst) <= 1);
        assert_eq!(token.__loom_registrations().1, 0);
    });
}

#[test]
fn a_drop_guard_and_an_explicit_trigger_race_to_one_reason() {
    model(|| {
        let token = CancelToken::new();
        let guard = token.clone().drop_guard();
        let trigger = token.clone();
        let t = thread::spawn(move || trigger.trigger_with("explicit"));
        drop(guard);
        let explicit_won = t.join().unwrap();
        let kind = token.reason().unwrap().kind();
        if explicit_won {
            assert_eq!(kind, ReasonKind::Manual);
        } else {
            assert_eq!(kind, ReasonKind::Dropped);
        }
    });
}

/// The preemption bound of the three-thread models.
const THREE: usize = 3;

/// Three threads on a fresh token: one triggers it, one waits on it (allocating its cold
/// state), and the main thread waits too. Whichever thread allocates the cold state, both
/// waiters are woken: the registration and the first trigger meet in the state word.
#[test]
fn a_second_waiter_on_a_fresh_token_is_never_lost() {
    model_three(THREE, || {
        let token = CancelToken::new();
        let (trigger, first) = (token.clone(), token.clone());
        let t = thread::spawn(move || assert!(trigger.trigger()));
        let w = thread::spawn(move || block_on(first.wait()));
        block_on(token.wait());
        t.join().unwrap();
        w.join().unwrap();
        assert_eq!(token.__loom_registrations().2, 0, "no waiter left");
    });
}

/// Three threads on a fresh token: one triggers it, one waits on it, and the main thread makes
/// a child: the child ends triggered, with the token's reason. (Reasons without a message in
/// the three-thread models: a message makes the trigger race for the cold state too, which
/// multiplies the interleavings past what CI can explore.)
#[test]
fn a_child_made_beside_a_first_waiter_is_never_missed() {
    model_three(THREE, || {
        let token = CancelToken::new();
        let (trigger, first) = (token.clone(), token.clone());
        let t = thread::spawn(move || trigger.trigger_with(ReasonKind::Signal));
        let w = thread::spawn(move || block_on(first.wait()));
        let child = token.child();
        t.join().unwrap();
        w.join().unwrap();
        assert!(
            child.is_triggered(),
            "the child of a triggered token triggers"
        );
        assert_eq!(child.triggered_token().as_ref(), Some(&token));
        assert_eq!(child.reason().unwrap().kind(), ReasonKind::Signal);
    });
}

/// Three threads on a fresh token: one triggers it, one waits on it, and the main thread
/// registers a callback: the callback runs exactly once.
#[test]
fn a_callback_registered_beside_a_first_waiter_runs_once() {
    model_three(THREE, || {
        let token = CancelToken::new();
        let (trigger, first) = (token.clone(), token.clone());
        let t = thread::spawn(move || trigger.trigger());
        let w = thread::spawn(move || block_on(first.wait()));
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let guard = token.on_cancel(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        t.join().unwrap();
        w.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the callback ran once");
        drop(guard);
    });
}

/// A parent and its child triggered at once, each with a waiter and a callback: every token
/// ends triggered exactly once (one of the two triggers of the child wins), with a reason
/// consistent with its parents, every waiter is woken by someone, and every callback runs
/// once, with its own token's reason.
#[test]
fn a_parent_and_a_child_triggered_at_once_end_consistent() {
    model(|| {
        let parent = CancelToken::named("parent");
        let child = parent.child_named("child");
        let grandchild = child.child();
        let (heard, guards) = listen(&[&parent, &child, &grandchild]);
        let waiter = grandchild.clone();
        let w = thread::spawn(move || block_on(waiter.wait()));
        let c = child.clone();
        let tc = thread::spawn(move || c.trigger_with("child"));
        assert!(parent.trigger_with("parent"));
        let child_won = tc.join().unwrap();
        w.join().unwrap();
        let origin = if child_won { &child } else { &parent };
        assert_eq!(child.triggered_token().as_ref(), Some(origin));
        assert_eq!(grandchild.triggered_token().as_ref(), Some(origin));
        assert_eq!(grandchild.reason(), child.reason());
        let mut heard = heard.lock().unwrap().clone();
        heard.sort_by_key(|(k, _)| *k);
        let messages: Vec<_> = heard
            .iter()
            .map(|(k, reason)| (*k, reason.message().unwrap().to_owned()))
            .collect();
        let expected = origin.name().unwrap().to_owned();
        assert_eq!(
            messages,
            [
                (0, "parent".to_owned()),
                (1, expected.clone()),
                (2, expected)
            ],
            "every callback ran once, with its own token's reason"
        );
        drop(guards);
    });
}

/// `all`: the last two sources triggered on two threads trigger it exactly once, with the
/// reason of one of them, and a waiter on it is woken.
#[test]
fn the_last_two_sources_of_an_all_triggered_together_trigger_it_once() {
    model(|| {
        let a = CancelToken::new();
        let b = CancelToken::new();
        let all = CancelToken::all([&a, &b]);
        let (heard, _guards) = listen(&[&all]);
        let ta = a.clone();
        let t = thread::spawn(move || {
            assert!(ta.trigger_with("a"));
        });
        assert!(b.trigger_with("b"));
        block_on(all.wait());
        t.join().unwrap();
        let heard = heard.lock().unwrap();
        assert_eq!(heard.len(), 1, "triggered exactly once");
        let origin = all.triggered_token().unwrap();
        assert!(origin == a || origin == b);
        assert_eq!(heard[0].1, origin.reason().unwrap());
    });
}

/// `all` made while its sources are triggered on another thread still triggers, once.
#[test]
fn an_all_made_while_its_sources_trigger_ends_triggered_once() {
    model(|| {
        let a = CancelToken::new();
        let b = CancelToken::new();
        let (ta, tb) = (a.clone(), b.clone());
        let t = thread::spawn(move || {
            ta.trigger();
            tb.trigger();
        });
        let all = CancelToken::all([&a, &b]);
        let (heard, _guards) = listen(&[&all]);
        t.join().unwrap();
        assert!(all.is_triggered());
        assert_eq!(heard.lock().unwrap().len(), 1);
        assert_eq!(all.triggered_token(), Some(b));
        assert_eq!(a.__loom_registrations().1, 0);
    });
}

/// `TaskTracker`: closing racing the last task's exit never misses the wake-up of a waiter.
#[test]
fn a_tracker_closed_while_its_last_task_exits_wakes_its_waiter() {
    model(|| {
        let tracker = cancel_token::TaskTracker::new();
        let guard = tracker.enter();
        let t = thread::spawn(move || drop(guard));
        tracker.close();
        // Deadlocks (and fails the model) if the wake-up is lost.
        block_on(tracker.wait());
        t.join().unwrap();
        assert!(tracker.is_empty());
    });
}

/// `TaskTracker`: a task entering a tracker whose event already fired, and leaving again on
/// another thread, while a waiter waits: the waiter is woken once the tracker is closed and
/// empty again, never before.
#[test]
fn a_task_entering_a_drained_tracker_delays_its_waiter_without_losing_it() {
    model(|| {
        let tracker = cancel_token::TaskTracker::new();
        tracker.close();
        let late = tracker.enter();
        let t = thread::spawn(move || drop(late));
        block_on(tracker.wait());
        assert!(tracker.is_empty(), "woken only when empty");
        t.join().unwrap();
    });
}
