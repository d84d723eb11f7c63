//! `DropGuard` and `DropGuardRef`: a token that triggers itself when a scope ends, unless
//! disarmed.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cancel_token::{CancelToken, ReasonKind};
use common::panic_message;

#[test]
fn dropping_the_guard_triggers_with_reason_dropped() {
    let token = CancelToken::named("scoped");
    let guard = token.clone().drop_guard();
    assert!(!token.is_triggered(), "holding the guard does nothing");
    assert_eq!(guard.token(), &token);
    drop(guard);
    assert!(token.is_triggered());
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Dropped);
    assert_eq!(reason.message(), None);
    assert_eq!(token.triggered_token(), Some(token.clone()));
}

#[test]
fn leaving_a_scope_early_triggers_the_token() {
    fn work(token: CancelToken, fail: bool) -> Result<(), &'static str> {
        let guard = token.drop_guard();
        if fail {
            return Err("failed early");
        }
        guard.disarm();
        Ok(())
    }
    let failed = CancelToken::new();
    assert!(work(failed.clone(), true).is_err());
    assert_eq!(failed.reason().unwrap().kind(), ReasonKind::Dropped);

    let succeeded = CancelToken::new();
    assert!(work(succeeded.clone(), false).is_ok());
    assert!(!succeeded.is_triggered());
}

#[test]
fn disarm_returns_the_token_untriggered() {
    let token = CancelToken::named("kept");
    let back = token.clone().drop_guard().disarm();
    assert_eq!(back, token);
    assert!(!token.is_triggered());
    assert!(!back.is_triggered());
    drop(back);
    assert!(
        !token.is_triggered(),
        "the returned handle is a plain handle"
    );
}

#[test]
fn the_guard_triggers_descendants_and_runs_callbacks() {
    let token = CancelToken::new();
    let child = token.child();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    let _callback = child.on_cancel(move |reason| {
        assert_eq!(reason.kind(), ReasonKind::Dropped);
        counted.fetch_add(1, Ordering::SeqCst);
    });
    drop(token.clone().drop_guard());
    assert_eq!(child.triggered_token(), Some(token));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn a_guard_on_a_child_never_triggers_the_parent() {
    let parent = CancelToken::new();
    let child = parent.child();
    drop(child.clone().drop_guard());
    assert!(child.is_triggered());
    assert!(!parent.is_triggered());
}

#[test]
fn dropping_the_guard_during_a_panic_triggers_the_token() {
    let token = CancelToken::named("unwound");
    let guarded = token.clone();
    let result = panic::catch_unwind(AssertUnwindSafe(move || {
        let _guard = guarded.drop_guard();
        panic!("work failed");
    }));
    let payload = result.expect_err("the closure panicked");
    assert_eq!(panic_message(&*payload), Some("work failed"));
    assert!(token.is_triggered());
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
}

#[test]
fn a_panicking_callback_during_an_unwind_does_not_abort_and_the_token_is_triggered() {
    let token = CancelToken::new();
    let child = token.child();
    let _callback = token.on_cancel(|_| panic!("callback panic"));
    let guarded = token.clone();
    let result = panic::catch_unwind(AssertUnwindSafe(move || {
        let _guard = guarded.drop_guard();
        panic!("original panic");
    }));
    let payload = result.expect_err("the closure panicked");
    assert_eq!(
        panic_message(&*payload),
        Some("original panic"),
        "the original panic is the one that propagates"
    );
    assert!(token.is_triggered());
    assert!(child.is_triggered());
}

#[test]
fn a_panicking_callback_propagates_from_a_normal_drop() {
    let token = CancelToken::new();
    let _callback = token.on_cancel(|_| panic!("callback panic"));
    let guard = token.clone().drop_guard();
    let result = panic::catch_unwind(AssertUnwindSafe(move || drop(guard)));
    let payload = result.expect_err("the callback's panic propagates from the drop");
    assert_eq!(panic_message(&*payload), Some("callback panic"));
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
}

#[test]
fn a_guard_on_an_already_triggered_token_keeps_the_first_reason() {
    let token = CancelToken::new();
    token.trigger_with("first");
    drop(token.clone().drop_guard());
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Manual);
    assert_eq!(reason.message(), Some("first"));
}

#[test]
fn a_token_triggered_while_guarded_keeps_its_reason() {
    let token = CancelToken::new();
    let guard = token.clone().drop_guard();
    token.trigger_with(ReasonKind::Timeout);
    drop(guard);
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Timeout);
}

#[test]
fn drop_guard_with_triggers_with_the_given_reason_and_disarm_still_works() {
    let token = CancelToken::named("job");
    drop(token.clone().drop_guard_with("job aborted"));
    assert_eq!(token.reason().unwrap().message(), Some("job aborted"));
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Manual);

    let kept = CancelToken::new();
    let back = kept.clone().drop_guard_with(ReasonKind::Signal).disarm();
    assert!(!back.is_triggered() && !kept.is_triggered());
}

// ----- drop_guard_ref -----

#[test]
fn dropping_a_guard_ref_triggers_with_reason_dropped_without_a_handle_of_its_own() {
    let token = CancelToken::named("borrowed");
    let child = token.child();
    let ran = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&ran);
    let _callback = child.on_cancel(move |reason| {
        assert_eq!(reason.kind(), ReasonKind::Dropped);
        counted.fetch_add(1, Ordering::SeqCst);
    });
    let guard = token.drop_guard_ref();
    assert!(std::ptr::eq(guard.token(), &token), "it borrows, no clone");
    assert!(!token.is_triggered(), "holding the guard does nothing");
    drop(guard);
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
    assert_eq!(child.triggered_token(), Some(token.clone()));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn a_disarmed_guard_ref_gives_back_the_borrow_and_leaves_the_token_alone() {
    let token = CancelToken::new();
    let back = token.drop_guard_ref().disarm();
    assert!(std::ptr::eq(back, &token));
    assert!(!token.is_triggered());
}

#[test]
fn a_guard_ref_on_a_field_cancels_on_an_early_return() {
    struct Worker {
        token: CancelToken,
    }
    impl Worker {
        fn step(&self, fail: bool) -> Result<(), &'static str> {
            let guard = self.token.drop_guard_ref();
            if fail {
                return Err("failed");
            }
            guard.disarm();
            Ok(())
        }
    }
    let worker = Worker {
        token: CancelToken::new(),
    };
    worker.step(false).unwrap();
    worker.step(false).unwrap();
    assert!(!worker.token.is_triggered());
    worker.step(true).unwrap_err();
    assert_eq!(worker.token.reason().unwrap().kind(), ReasonKind::Dropped);
}

#[test]
fn a_guard_ref_dropped_during_a_panic_triggers_and_swallows_a_callback_panic() {
    let token = CancelToken::new();
    let _callback = token.on_cancel(|_| panic!("callback panic"));
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let _guard = token.drop_guard_ref();
        panic!("original panic");
    }));
    let payload = result.expect_err("the closure panicked");
    assert_eq!(panic_message(&*payload), Some("original panic"));
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
}

#[test]
fn a_guard_ref_propagates_a_callback_panic_from_a_normal_drop() {
    let token = CancelToken::new();
    let _callback = token.on_cancel(|_| panic!("callback panic"));
    let guard = token.drop_guard_ref();
    let payload = panic::catch_unwind(AssertUnwindSafe(move || drop(guard)))
        .expect_err("the callback's panic propagates from the drop");
    assert_eq!(panic_message(&*payload), Some("callback panic"));
    assert!(token.is_triggered());
}

#[test]
fn drop_guard_ref_with_uses_the_reason_and_the_first_reason_wins() {
    let token = CancelToken::named("session");
    drop(token.drop_guard_ref_with(ReasonKind::Superseded));
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Superseded);
    drop(token.drop_guard_ref_with("later"));
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Superseded);

    let guarded = CancelToken::new();
    let guard = guarded.drop_guard_ref_with("never used");
    assert_eq!(
        format!("{guard:?}"),
        "DropGuardRef { token: Some(CancelToken { triggered: false }), \
         reason: Reason { kind: Manual, message: \"never used\" } }"
    );
    guarded.trigger_with(ReasonKind::Timeout);
    drop(guard);
    assert_eq!(guarded.reason().unwrap().kind(), ReasonKind::Timeout);
}
