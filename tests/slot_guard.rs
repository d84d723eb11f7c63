//! `CancelSlot` handles share one slot, and the `SlotGuard` that `replace()` returns finishes
//! its operation when dropped: a completed (or panicked) operation never stays current, and a
//! superseded one never clears its successor.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::thread;

use cancel_token::{CancelSlot, CancelToken, ReasonKind};

#[test]
fn clones_share_one_slot() {
    let slot = CancelSlot::new();
    let other = slot.clone();
    let first = slot.replace();
    assert_eq!(other.current().as_ref(), Some(first.token()));

    let second = other.replace();
    assert_eq!(
        first.token().reason().unwrap().kind(),
        ReasonKind::Superseded,
        "a replace through one handle supersedes the other's operation"
    );
    assert_eq!(slot.current().as_ref(), Some(second.token()));
    assert!(slot.cancel("closed"));
    assert!(second.token().is_triggered());
    assert!(other.current().is_none());
}

#[test]
fn dropping_the_guard_finishes_the_operation_without_triggering_it() {
    let slot = CancelSlot::new();
    let guard = slot.replace();
    let token = guard.token().clone();
    assert!(guard.is_current());
    drop(guard);
    assert!(
        slot.current().is_none(),
        "a finished operation is not current"
    );
    assert!(!token.is_triggered(), "finishing is not cancelling");

    let next = slot.replace();
    assert!(
        !token.is_triggered(),
        "a finished operation is never superseded later"
    );
    assert!(!next.token().is_triggered());
}

#[test]
fn a_superseded_guard_leaves_its_successor_current() {
    let slot = CancelSlot::new();
    let old = slot.replace();
    let current = slot.replace();
    assert!(!old.is_current());
    drop(old);
    assert_eq!(slot.current().as_ref(), Some(current.token()));
    assert!(current.is_current());
}

#[test]
fn a_guard_after_cancel_changes_nothing() {
    let slot = CancelSlot::new();
    let guard = slot.replace();
    assert!(slot.cancel("page closed"));
    let next = slot.replace().disarm();
    assert!(!guard.finish(), "cancelled: not current any more");
    assert_eq!(slot.current(), Some(next));
}

#[test]
fn finish_reports_whether_the_operation_was_current() {
    let slot = CancelSlot::new();
    let first = slot.replace();
    let second = slot.replace();
    assert!(!first.finish());
    assert!(second.finish());
    assert!(slot.current().is_none());
}

#[test]
fn disarm_leaves_the_token_current_as_a_slot_without_guards_would() {
    let slot = CancelSlot::new();
    let token = slot.replace().disarm();
    assert_eq!(slot.current(), Some(token.clone()));
    let next = slot.replace();
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Superseded);
    assert!(!slot.finish(&token));
    drop(next);
    assert!(slot.current().is_none());
}

#[test]
fn a_guard_dropped_at_once_leaves_nothing_to_supersede() {
    let slot = CancelSlot::new();
    let token = slot.replace().token().clone(); // the guard is dropped at the `;`
    assert!(slot.current().is_none());
    let _next = slot.replace();
    assert!(!token.is_triggered(), "what the docs warn about");
}

#[test]
fn an_operation_that_panics_is_finished_by_the_unwinding() {
    let slot = CancelSlot::new();
    let worker = {
        let slot = slot.clone();
        thread::spawn(move || {
            let guard = slot.replace();
            let token = guard.token().clone();
            let outcome = panic::catch_unwind(AssertUnwindSafe(move || {
                let _guard = guard;
                panic!("the request handler failed");
            }));
            (token, outcome.is_err())
        })
    };
    let (token, panicked) = common::within(common::LIMIT, move || worker.join().unwrap());
    assert!(panicked);
    assert!(slot.current().is_none());
    assert!(!token.is_triggered());
}

#[test]
fn guards_move_to_other_threads_and_finish_there() {
    let slot = CancelSlot::new();
    let guard = common::assert_send_static(slot.replace());
    let token = guard.token().clone();
    let handle = thread::spawn(move || {
        assert!(guard.is_current());
        drop(guard);
    });
    common::within(common::LIMIT, move || handle.join().unwrap());
    assert!(slot.current().is_none());
    assert!(!token.is_triggered());
}

#[test]
fn a_guard_outliving_its_slot_is_harmless() {
    let slot = CancelSlot::new();
    let guard = slot.replace();
    drop(slot);
    assert!(!guard.is_current(), "no slot, nothing current");
    assert!(!guard.finish());
}

#[test]
fn a_panicking_callback_of_the_previous_token_finishes_the_new_operation() {
    let slot = CancelSlot::new();
    let first = slot.replace();
    first
        .token()
        .on_cancel(|_| panic!("a callback of the superseded request"))
        .detach();
    let replaced = panic::catch_unwind(AssertUnwindSafe(|| slot.replace()));
    assert!(
        replaced.is_err(),
        "the callback's panic propagates from replace"
    );
    assert!(first.token().is_triggered());
    assert!(
        slot.current().is_none(),
        "the new operation's guard was dropped by the unwinding and finished it"
    );
}

#[test]
fn with_parent_guards_hold_children_of_the_parent() {
    let shutdown = CancelToken::named("shutdown");
    let slot = CancelSlot::with_parent(&shutdown);
    let request = slot.replace();
    shutdown.trigger_with("maintenance");
    assert_eq!(request.token().triggered_token(), Some(shutdown));
    assert!(
        request.is_current(),
        "triggered by the parent, still the slot's current one"
    );
}

#[test]
fn debug_shows_the_token_and_whether_it_is_current() {
    let slot = CancelSlot::new();
    let guard = slot.replace();
    let text = format!("{guard:?}");
    assert!(
        text.contains("SlotGuard") && text.contains("current: true"),
        "{text}"
    );
    let _next = slot.replace();
    assert!(format!("{guard:?}").contains("current: false"));
}
