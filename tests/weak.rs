//! `WeakCancelToken`: a handle that does not keep its token alive, for callbacks that must
//! name a related token without making a cycle (DESIGN.md, "No leaks": a strong handle in a
//! detached callback is a cycle, as with `Rc`).
//!
//! The contract: `CancelToken::downgrade(&self) -> WeakCancelToken` and
//! `WeakCancelToken::upgrade(&self) -> Option<CancelToken>`, `Some` while the token exists
//! (while a handle of it lives, or a descendant keeps it linked) and `None` once it is freed;
//! the weak handle is `Clone + Debug + Send + Sync`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cancel_token::{CancelToken, ReasonKind, WeakCancelToken};
use common::{within, LIMIT};

/// Counts its own drops, to tell that a closure's captures were freed.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Guards the auto traits and derives the contract names.
#[test]
fn a_weak_token_is_clone_debug_send_sync_and_static() {
    fn assert_traits<T: Clone + std::fmt::Debug + Send + Sync + 'static>() {}
    assert_traits::<WeakCancelToken>();

    let token = CancelToken::named("watched");
    let weak = token.downgrade();
    let copy = weak.clone();
    assert_eq!(
        copy.upgrade(),
        Some(token.clone()),
        "a clone names the same token"
    );
    let shown = format!("{weak:?}");
    assert!(
        shown.contains("WeakCancelToken"),
        "Debug names the type: {shown}"
    );
}

/// Guards: `upgrade` gives back the same token while a handle lives, and `None` once the last
/// handle is dropped.
#[test]
fn upgrade_works_while_a_handle_lives_and_fails_after_the_last_is_dropped() {
    let token = CancelToken::new();
    let other_handle = token.clone();
    let weak = token.downgrade();
    let upgraded = weak.upgrade().expect("a handle lives");
    assert_eq!(upgraded, token, "the same token, by identity");
    drop(upgraded);
    drop(token);
    assert_eq!(
        weak.upgrade(),
        Some(other_handle.clone()),
        "one handle is left"
    );
    drop(other_handle);
    assert_eq!(weak.upgrade(), None, "every handle is gone");
    assert_eq!(weak.clone().upgrade(), None);
}

/// Guards: a token whose handles are gone but that a descendant keeps linked is freed (and its
/// weak handle stops upgrading) once that descendant is dropped too. While the descendant
/// lives, an upgraded handle, if there is one, is the child's parent for real: triggering it
/// reaches the child.
#[test]
fn upgrade_fails_once_the_last_descendant_keeping_the_token_is_dropped() {
    let parent = CancelToken::new();
    let weak = parent.downgrade();
    let child = parent.child();
    let grandchild = child.child();
    drop(parent);
    drop(child);
    if let Some(parent) = weak.upgrade() {
        assert!(parent.trigger(), "the upgraded parent is untriggered");
        assert!(
            grandchild.is_triggered(),
            "and still linked to its descendants"
        );
        assert_eq!(grandchild.triggered_token(), Some(parent));
    }
    drop(grandchild);
    assert_eq!(weak.upgrade(), None, "nothing keeps the token any more");

    // The same without the trigger: only the descendant was holding it.
    let parent = CancelToken::new();
    let weak = parent.downgrade();
    let child = parent.child();
    drop(parent);
    drop(child);
    assert_eq!(weak.upgrade(), None);
}

/// Guards the reason to have weak handles: a detached callback on a parent that names its
/// child through a weak handle makes no cycle, so dropping every handle frees the closure and
/// its captures (the parent's callback slab goes with the parent). With a strong handle the
/// child would keep the parent, the parent the callback and the callback the child.
#[test]
fn a_detached_callback_holding_a_weak_child_leaks_nothing() {
    let drops = Arc::new(AtomicUsize::new(0));
    let parent = CancelToken::new();
    let child = parent.child();
    let weak_child = child.downgrade();
    let captured = DropCounter(Arc::clone(&drops));
    parent
        .on_cancel(move |_| {
            let _keep = &captured;
            if let Some(child) = weak_child.upgrade() {
                child.trigger_with("from the parent's callback");
            }
        })
        .detach();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "the callback is registered"
    );
    drop(child);
    drop(parent);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the closure and its captures were dropped with the parent: no cycle"
    );
}

/// Guards: a callback can reach a live token through a weak handle when it runs, and sees it
/// triggered with the reason the trigger carried.
#[test]
fn a_callback_upgrades_a_weak_child_when_it_runs() {
    within(LIMIT, || {
        let parent = CancelToken::new();
        let child = parent.child();
        let weak_child = child.downgrade();
        let seen = Arc::new(Mutex::new(None));
        parent
            .on_cancel({
                let seen = Arc::clone(&seen);
                move |_| {
                    let child = weak_child.upgrade().expect("the child is alive");
                    *seen.lock().unwrap() = Some((child.is_triggered(), child.reason()));
                }
            })
            .detach();
        assert!(parent.trigger_with("shutting down"));
        let (triggered, reason) = seen.lock().unwrap().take().expect("the callback ran");
        assert!(triggered, "callbacks run after the flags are set");
        assert_eq!(reason.unwrap().message(), Some("shutting down"));
    });
}

/// Guards: a weak handle of a triggered token upgrades (the token lives) and reports the
/// reason; one taken before the trigger sees it as well.
#[test]
fn a_weak_token_of_a_triggered_token_upgrades_and_reports_the_reason() {
    let token = CancelToken::named("job");
    let before = token.downgrade();
    assert!(token.trigger_with(ReasonKind::Timeout));
    let after = token.downgrade();
    for weak in [before, after] {
        let upgraded = weak.upgrade().expect("the token lives");
        assert!(upgraded.is_triggered());
        assert_eq!(upgraded.reason().unwrap().kind(), ReasonKind::Timeout);
        assert_eq!(upgraded.triggered_token(), Some(token.clone()));
        assert_eq!(upgraded.name(), Some("job"));
    }
}

/// Guards: a weak handle of a token born triggered (a child of a triggered token) upgrades
/// while the child lives and reports the origin's reason.
#[test]
fn a_weak_token_of_a_child_born_triggered_reports_the_origin() {
    let origin = CancelToken::new();
    origin.trigger_with("early");
    let child = origin.child();
    let weak = child.downgrade();
    let upgraded = weak.upgrade().expect("the child lives");
    assert_eq!(upgraded.reason().unwrap().message(), Some("early"));
    assert_eq!(upgraded.triggered_token(), Some(origin));
    drop(upgraded);
    drop(child);
    assert_eq!(weak.upgrade(), None);
}
