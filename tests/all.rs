//! `CancelToken::all`: triggered once every source is, with the last one's reason and origin;
//! sources already triggered, no sources, duplicates, nesting, deadlines, and no leaks.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use cancel_token::{CancelToken, ReasonKind};
use common::{poll_with, CountingWaker};

#[test]
fn triggers_only_once_every_source_has() {
    let a = CancelToken::named("a");
    let b = CancelToken::named("b");
    let c = CancelToken::named("c");
    let all = CancelToken::all([&a, &b, &c]);
    assert_eq!(all.name(), Some("a:b:c"));

    a.trigger();
    c.trigger_with("c is done");
    assert!(!all.is_triggered(), "one source left");

    assert!(b.trigger_with("b is done"));
    assert!(
        all.is_triggered(),
        "triggered before the last source's trigger returns"
    );
    assert_eq!(all.reason().unwrap().message(), Some("b is done"));
    assert_eq!(all.triggered_token(), Some(b.clone()));
    let error = all.raise_if_triggered().unwrap_err();
    assert_eq!(error.token(), &b);
}

#[test]
fn the_origin_is_the_last_source_s_origin_through_any_depth() {
    let root = CancelToken::named("root");
    let a = CancelToken::new();
    let b = root.child().child();
    let all = CancelToken::all([&a, &b]);
    a.trigger();
    root.trigger_with("root went away");
    assert_eq!(all.triggered_token(), Some(root));
    assert_eq!(all.reason().unwrap().message(), Some("root went away"));
}

#[test]
fn wakes_waiters_and_runs_callbacks_and_reaches_its_own_children() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    let all = CancelToken::all([&a, &b]);
    let child = all.child();
    let counter = CountingWaker::new();
    let mut wait = child.wait();
    assert_eq!(poll_with(&mut wait, &counter), Poll::Pending);
    let ran = Arc::new(AtomicUsize::new(0));
    let _guard = all.on_cancel({
        let ran = ran.clone();
        move |reason| {
            assert_eq!(reason.message(), Some("second"));
            ran.fetch_add(1, Ordering::SeqCst);
        }
    });

    a.trigger_with("first");
    assert_eq!((counter.count(), ran.load(Ordering::SeqCst)), (0, 0));
    b.trigger_with("second");
    assert_eq!(counter.count(), 1);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert!(child.is_triggered());
    assert_eq!(poll_with(&mut wait, &counter), Poll::Ready(()));
}

#[test]
fn sources_already_triggered_count_as_fired() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    a.trigger_with("early");
    let all = CancelToken::all([&a, &b]);
    assert!(!all.is_triggered());
    b.trigger_with("late");
    assert_eq!(all.reason().unwrap().message(), Some("late"));
}

#[test]
fn all_sources_already_triggered_means_born_triggered_with_the_last_in_order() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    b.trigger_with("b first");
    a.trigger_with("a second");
    let all = CancelToken::all([&a, &b]);
    assert!(all.is_triggered());
    assert_eq!(all.triggered_token(), Some(b.clone()));
    assert_eq!(all.reason().unwrap().message(), Some("b first"));
}

#[test]
fn no_sources_means_born_triggered_with_a_message_saying_so() {
    let all = CancelToken::all([]);
    assert!(all.is_triggered());
    let reason = all.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Manual);
    assert_eq!(reason.message(), Some("all() of no tokens"));
    assert_eq!(all.triggered_token(), Some(all.clone()));
}

#[test]
fn one_token_given_twice_counts_twice_and_its_trigger_counts_off_both() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    let all = CancelToken::all([&a, &a, &b]);
    b.trigger();
    assert!(!all.is_triggered());
    a.trigger();
    assert!(all.is_triggered());
    assert_eq!(all.triggered_token(), Some(a));
}

#[test]
fn triggering_it_directly_leaves_the_sources_alone() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    let all = CancelToken::all([&a, &b]);
    assert!(all.trigger_with("given up"));
    assert!(!a.is_triggered() && !b.is_triggered());
    a.trigger();
    b.trigger();
    assert_eq!(all.reason().unwrap().message(), Some("given up"));
    assert_eq!(all.triggered_token(), Some(all.clone()));
}

#[test]
fn nests_with_any_and_chain() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    let c = CancelToken::new();
    // (a and b) or c
    let either = CancelToken::all([&a, &b]).chain(&c);
    a.trigger();
    assert!(!either.is_triggered());
    c.trigger_with("c");
    assert_eq!(either.triggered_token(), Some(c));

    // all of two `any`s
    let x = CancelToken::new();
    let y = CancelToken::new();
    let both = CancelToken::all([&CancelToken::any([&x]), &CancelToken::any([&y])]);
    x.trigger();
    y.trigger_with("y");
    assert_eq!(both.triggered_token(), Some(y));
}

#[test]
fn it_keeps_its_sources_alive_and_lets_them_go_when_dropped() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    let weak_b = b.downgrade();
    let all = CancelToken::all([&a, &b]);
    drop(b);
    assert!(
        weak_b.upgrade().is_some(),
        "held by the `all` token, as a chain holds its sources"
    );
    a.trigger();
    assert!(
        !all.is_triggered(),
        "a source dropped untriggered can never fire"
    );
    drop(all);
    assert!(weak_b.upgrade().is_none(), "released with the `all` token");
}

#[test]
fn a_source_dropped_with_it_alive_releases_nothing_early_and_leaks_nothing() {
    let marker = Arc::new(());
    let a = CancelToken::new();
    let b = CancelToken::new();
    let all = CancelToken::all([&a, &b]);
    all.on_cancel({
        let marker = marker.clone();
        move |_| drop(marker)
    })
    .detach();
    drop((a, b));
    assert_eq!(Arc::strong_count(&marker), 2);
    drop(all);
    assert_eq!(
        Arc::strong_count(&marker),
        1,
        "everything freed with the last handle"
    );
}

#[test]
fn its_deadline_is_the_latest_of_its_sources_if_each_has_one() {
    let soon = Instant::now() + Duration::from_secs(60);
    let later = soon + Duration::from_secs(60);
    let a = CancelToken::with_deadline(soon);
    let b = CancelToken::with_deadline(later);
    assert_eq!(CancelToken::all([&a, &b]).deadline(), Some(later));
    assert_eq!(CancelToken::all([&a, &CancelToken::new()]).deadline(), None);

    let all = CancelToken::all([&a, &b]);
    assert!(
        all.trigger_after(Duration::from_secs(1)),
        "its own, earlier, deadline applies"
    );
    assert!(all.deadline().unwrap() < soon);
}

#[test]
fn deadlines_of_the_sources_trigger_it_with_the_last_timeout() {
    // Two deadlines due at once may fire on two firer threads in either order (a slow machine
    // or valgrind makes them due together), so `b` gets its deadline only after `a` has fired.
    let a = CancelToken::with_timeout(Duration::from_millis(10));
    let b = CancelToken::new();
    let all = CancelToken::all([&a, &b]);
    assert!(a.wait_blocking_timeout(Duration::from_secs(10)));
    assert!(!all.is_triggered(), "one source of two has fired");
    assert!(b.trigger_after(Duration::from_millis(20)));
    assert!(all.wait_blocking_timeout(Duration::from_secs(10)));
    assert_eq!(all.reason().unwrap().kind(), ReasonKind::Timeout);
    assert_eq!(all.triggered_token(), Some(b));
}

#[test]
fn concurrent_triggers_of_the_sources_trigger_it_exactly_once() {
    for _ in 0..common::scaled(200) {
        let sources: Vec<CancelToken> = (0..4).map(|_| CancelToken::new()).collect();
        let all = CancelToken::all(&sources);
        let runs = Arc::new(AtomicUsize::new(0));
        let _guard = all.on_cancel({
            let runs = runs.clone();
            move |_| {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        });
        let threads: Vec<_> = sources
            .iter()
            .cloned()
            .map(|source| std::thread::spawn(move || source.trigger()))
            .collect();
        for thread in threads {
            assert!(thread.join().unwrap());
        }
        assert!(all.is_triggered());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let origin = all.triggered_token().unwrap();
        assert!(sources.contains(&origin));
    }
}

#[test]
fn concurrent_with_its_making_it_still_triggers() {
    for _ in 0..common::scaled(200) {
        let a = CancelToken::new();
        let b = CancelToken::new();
        let (ta, tb) = (a.clone(), b.clone());
        let trigger = std::thread::spawn(move || {
            ta.trigger();
            tb.trigger();
        });
        let all = CancelToken::all([&a, &b]);
        trigger.join().unwrap();
        assert!(all.is_triggered());
    }
}

/// A tower of `all` tokens, each the only source of the next, triggers in a loop: no stack per
/// level (each level's trigger is handed back to the walk instead of nested in it).
#[test]
fn a_tower_of_all_tokens_triggers_on_a_small_stack() {
    let depth = common::scaled(100_000);
    common::on_thread_with_stack(2 << 20, move || {
        let root = CancelToken::named("root");
        let mut top = root.clone();
        for _ in 0..depth {
            top = CancelToken::all([&top]);
        }
        root.trigger_with("down it goes");
        assert!(top.is_triggered());
        assert_eq!(top.triggered_token(), Some(root));
        drop(top);
    });
}

/// `deadline()` through a tower of `all` tokens uses no stack per level, and through
/// diamonds (`all([&top, &top])`, 40 deep) costs one evaluation per node, not 2^40.
#[test]
fn deadline_through_towers_and_diamonds_of_all_tokens() {
    let depth = common::scaled(100_000);
    common::on_thread_with_stack(2 << 20, move || {
        let root = CancelToken::with_timeout(Duration::from_secs(3600));
        let mut top = root.clone();
        for _ in 0..depth {
            top = CancelToken::all([&top]);
        }
        assert_eq!(top.deadline(), root.deadline());
        assert!(
            !top.trigger_after(Duration::from_secs(7200)),
            "the sources' deadline is earlier"
        );
        drop(top);
    });
    common::within(common::LIMIT, || {
        let root = CancelToken::with_timeout(Duration::from_secs(3600));
        let mut top = root.clone();
        for _ in 0..40 {
            top = CancelToken::all([&top, &top]);
        }
        assert_eq!(top.deadline(), root.deadline());
        let other = CancelToken::new();
        assert_eq!(CancelToken::all([&top, &other]).deadline(), None);
    });
}

/// A panicking callback on one level of a tower does not stop the levels above, and its panic
/// comes out of the trigger once all are triggered.
#[test]
fn a_panicking_callback_inside_a_tower_stops_nothing() {
    let root = CancelToken::new();
    let middle = CancelToken::all([&root]);
    let _bomb = middle.on_cancel(|_| panic!("callback on the middle"));
    let top = CancelToken::all([&middle]);
    let trigger = root.clone();
    let outcome = std::panic::catch_unwind(move || trigger.trigger());
    assert!(outcome.is_err(), "the callback's panic is resumed");
    assert!(top.is_triggered(), "after every level was triggered");
}
