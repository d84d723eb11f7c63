//! Tests of internal bookkeeping that the public API cannot observe: registrations are
//! removed, not just ignored.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};

use crate::CancelToken;

fn poll_pending<F: Future + Unpin>(future: &mut F) {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(future).poll(&mut cx).is_pending());
}

#[test]
fn dropping_a_child_removes_its_link() {
    let parent = CancelToken::new();
    let children: Vec<CancelToken> = (0..10).map(|_| parent.child()).collect();
    assert_eq!(parent.registrations(), (10, 0));
    drop(children);
    assert_eq!(parent.registrations(), (0, 0));
}

#[test]
fn an_intermediate_token_stays_linked_while_it_has_descendants() {
    let root = CancelToken::new();
    let middle = root.child();
    let leaf = middle.child();
    drop(middle);
    assert_eq!(
        root.registrations(),
        (1, 0),
        "the leaf still needs the middle link"
    );
    drop(leaf);
    assert_eq!(root.registrations(), (0, 0), "the whole branch is unlinked");
}

#[test]
fn dropping_a_chain_removes_it_from_both_sources() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    let chained = a.chain(&b);
    assert_eq!((a.registrations(), b.registrations()), ((1, 0), (1, 0)));
    drop(chained);
    assert_eq!((a.registrations(), b.registrations()), ((0, 0), (0, 0)));
}

#[test]
fn dropping_a_callback_guard_removes_the_callback() {
    let token = CancelToken::new();
    let guards: Vec<_> = (0..5).map(|_| token.on_cancel(|_| {})).collect();
    assert_eq!(token.registrations(), (0, 5));
    drop(guards);
    assert_eq!(token.registrations(), (0, 0));
}

#[test]
fn a_trigger_consumes_callbacks_waiters_and_child_links() {
    let token = CancelToken::new();
    let child = token.child();
    let guard = token.on_cancel(|_| {});
    let mut wait = token.wait();
    poll_pending(&mut wait);
    token.trigger();
    assert_eq!(
        token.registrations(),
        (0, 0),
        "child links and callbacks are taken"
    );
    assert_eq!(token.node().waiters(), 0, "waiters are consumed");
    assert!(child.is_triggered());
    drop((child, guard, wait));
    assert_eq!(token.registrations(), (0, 0));
}

#[test]
fn a_self_triggered_child_unlinks_when_dropped() {
    let parent = CancelToken::new();
    let child = parent.child();
    child.trigger();
    assert_eq!(parent.registrations(), (1, 0));
    drop(child);
    assert_eq!(parent.registrations(), (0, 0));
}

#[test]
fn a_wait_registers_once_and_deregisters_on_drop() {
    let token = CancelToken::new();
    let mut wait = token.wait();
    assert_eq!(
        token.node().waiters(),
        0,
        "nothing is registered before the first poll"
    );
    for _ in 0..10 {
        poll_pending(&mut wait);
    }
    assert_eq!(
        token.node().waiters(),
        1,
        "re-polling never adds registrations"
    );
    drop(wait);
    assert_eq!(token.node().waiters(), 0);

    let mut owned = token.clone().wait_owned();
    poll_pending(&mut owned);
    assert_eq!(token.node().waiters(), 1);
    drop(owned);
    assert_eq!(token.node().waiters(), 0);
}

#[test]
fn a_completed_wait_releases_its_registration() {
    let token = CancelToken::new();
    let mut wait = token.wait();
    poll_pending(&mut wait);
    token.trigger();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut wait).poll(&mut cx).is_ready());
    assert_eq!(token.node().waiters(), 0);
}

/// The only unit test that touches the global timer, so the counts below are exact. Covers
/// deadline tokens and condition tokens (`when`), which hold one entry for their next poll.
#[test]
fn timer_entries_are_released_by_drop_and_by_manual_trigger() {
    use std::time::Duration;

    use crate::time;

    let hour = Duration::from_secs(3600);
    let before = time::pending();

    let dropped = CancelToken::with_timeout(hour);
    assert_eq!(time::pending(), before + 1);
    drop(dropped);
    assert_eq!(
        time::pending(),
        before,
        "dropping the token releases its entry"
    );

    let manual = CancelToken::with_timeout(hour);
    manual.trigger();
    assert_eq!(
        time::pending(),
        before,
        "a manual trigger releases the entry"
    );
    assert_eq!(
        manual.reason().unwrap().kind(),
        crate::ReasonKind::Manual,
        "and keeps its own reason"
    );

    let parent = CancelToken::with_timeout(hour);
    let later = parent.child_with_timeout(2 * hour);
    assert_eq!(
        time::pending(),
        before + 1,
        "a later child deadline needs no timer"
    );
    assert_eq!(later.deadline(), parent.deadline());
    let sooner = parent.child_with_timeout(hour / 2);
    assert_eq!(time::pending(), before + 2, "an earlier one does");
    parent.trigger();
    assert_eq!(
        time::pending(),
        before,
        "propagation releases descendants' entries"
    );
    drop((later, sooner));

    let never = CancelToken::with_timeout(Duration::MAX);
    assert_eq!(
        time::pending(),
        before,
        "an unrepresentable deadline registers nothing"
    );
    assert_eq!(never.deadline(), None);

    let token = CancelToken::new();
    assert!(token.trigger_after(2 * hour));
    assert!(token.trigger_after(hour), "an earlier deadline replaces it");
    assert_eq!(
        time::pending(),
        before + 1,
        "and releases the replaced entry"
    );
    assert!(!token.trigger_after(3 * hour));
    assert_eq!(time::pending(), before + 1, "a later one registers nothing");
    let deadline = token.deadline();
    token.trigger();
    assert_eq!(time::pending(), before, "a manual trigger releases it");
    assert_eq!(
        token.deadline(),
        deadline,
        "and the deadline is still reported"
    );
    drop(token);
    assert_eq!(time::pending(), before);

    // A condition token holds one entry at a time, for its next evaluation.
    let dropped = CancelToken::when(hour, || false);
    assert_eq!(time::pending(), before + 1);
    drop(dropped);
    assert_eq!(
        time::pending(),
        before,
        "dropping a condition token releases its entry"
    );
    let manual = CancelToken::when(hour, || false);
    manual.trigger();
    assert_eq!(
        time::pending(),
        before,
        "a trigger releases a condition token's entry"
    );
    let never = CancelToken::when(Duration::MAX, || false);
    assert_eq!(
        time::pending(),
        before,
        "an unrepresentable interval registers nothing"
    );
    assert_eq!(never.deadline(), None);
}

/// An `any` over many parents is linked once to each, fires on any of them naming it, and
/// unlinks from all of them when dropped.
#[test]
fn any_over_many_parents_links_once_to_each_and_unlinks_from_all() {
    let parents: Vec<CancelToken> = (0..10).map(|_| CancelToken::new()).collect();
    let any = CancelToken::any(&parents);
    for parent in &parents {
        assert_eq!(parent.registrations(), (1, 0), "each parent is linked once");
    }
    parents[7].trigger_with("seven");
    assert_eq!(any.triggered_token().as_ref(), Some(&parents[7]));
    assert_eq!(any.reason().unwrap().message(), Some("seven"));
    assert_eq!(
        parents[7].registrations(),
        (0, 0),
        "the trigger took its list"
    );
    drop(any);
    for parent in &parents {
        assert_eq!(parent.registrations(), (0, 0));
    }
}

/// A parent's child list stays dense: after 100,000 children come and go beside one old
/// child, the list is back to one slot (a trigger walks only what is live), and the old
/// child is still linked and still triggered by its parent.
#[test]
fn a_child_list_gives_a_burst_back_while_an_old_child_lives() {
    let parent = CancelToken::new();
    let old = parent.child();
    let burst: Vec<CancelToken> = (0..100_000).map(|_| parent.child()).collect();
    assert_eq!(parent.registrations(), (100_001, 0));
    // Dropped from the front, so every removal moves the last entry into the hole.
    for (i, child) in burst.into_iter().enumerate() {
        drop(child);
        if i == 50_000 {
            assert_eq!(parent.registrations(), (100_001 - 50_001, 0));
        }
    }
    assert_eq!(parent.registrations(), (1, 0));
    assert_eq!(parent.node().child_slots(), 1, "the list is dense again");
    parent.trigger();
    assert!(old.is_triggered());
}

/// Children dropped in any order keep every survivor reachable: each moved entry's key is
/// rewritten, so a later drop removes the right entry and a trigger reaches every survivor.
#[test]
fn moved_child_entries_keep_their_keys() {
    let parent = CancelToken::new();
    let mut children: Vec<CancelToken> = (0..1_000).map(|_| parent.child()).collect();
    let mut rng = 0x2545_f491_u64;
    let mut survivors = Vec::new();
    while let Some(child) = children.pop() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let index = (rng % (children.len() as u64 + 1)) as usize;
        children.push(child);
        let child = children.swap_remove(index);
        if rng % 3 == 0 {
            survivors.push(child);
        } else {
            drop(child);
        }
        assert_eq!(
            parent.registrations().0,
            children.len() + survivors.len(),
            "exactly one entry goes per drop"
        );
    }
    parent.trigger();
    assert!(survivors.iter().all(CancelToken::is_triggered));
}

/// Waiter and callback slabs give a burst's slots back while an older registration lives.
#[test]
fn waiter_and_callback_slabs_give_a_burst_back_while_an_old_entry_lives() {
    let token = CancelToken::new();
    let mut old_wait = token.wait();
    poll_pending(&mut old_wait);
    let old_guard = token.on_cancel(|_| {});
    let mut waits: Vec<_> = (0..10_000).map(|_| token.wait()).collect();
    for wait in &mut waits {
        poll_pending(wait);
    }
    let guards: Vec<_> = (0..10_000).map(|_| token.on_cancel(|_| {})).collect();
    assert_eq!(token.node().waiters(), 10_001);
    drop(waits);
    drop(guards);
    assert_eq!(token.node().waiters(), 1);
    assert_eq!(token.registrations(), (0, 1));
    assert_eq!(
        token.node().registration_slots(),
        (1, 1),
        "slots given back"
    );
    drop((old_wait, old_guard));
}

/// A token born triggered keeps only the origin of its reason alive, not the source it was
/// made from: here a callback's closure on a source that nothing else holds is released.
#[test]
fn a_token_born_triggered_keeps_only_its_origin_alive() {
    use std::sync::Arc;

    let origin = CancelToken::named("origin");
    let other = CancelToken::new();
    let any = CancelToken::any([&origin, &other]);
    let marker = Arc::new(());
    let held = Arc::clone(&marker);
    other.on_cancel(move |_| drop(held)).detach();
    drop(other);
    origin.trigger();
    let born = any.child();
    drop(any);
    assert_eq!(
        Arc::strong_count(&marker),
        1,
        "the untriggered source and its callback are released"
    );
    assert_eq!(born.triggered_token().as_ref(), Some(&origin));
    assert_eq!(origin.registrations(), (0, 0));
}

/// A node is 40 bytes and its cold state 248 (64-bit targets): the first child of a plain
/// token costs the child (56 with the `Arc` counters) and the parent's cold state, nothing else.
/// The `tokio-util` feature adds one word to the cold state, for `to_tokio_util`'s mirror.
#[test]
#[cfg(target_pointer_width = "64")]
fn a_node_and_its_cold_state_stay_small() {
    const MIRROR: usize = if cfg!(feature = "tokio-util") { 8 } else { 0 };
    assert_eq!(std::mem::size_of::<crate::node::Node>(), 40);
    assert!(
        crate::node::cold_size() <= 248 + MIRROR,
        "{}",
        crate::node::cold_size()
    );
}

/// A token linked twice to one parent (`chain(&t, &t)`) is unlinked last entry first; the
/// entry moved into the hole must survive the vacant slot before it being popped (the model
/// test found a child list that dropped it, so the parent's trigger missed a sibling).
#[test]
fn unlinking_a_doubly_linked_token_keeps_the_entry_moved_into_its_hole() {
    let parent = CancelToken::new();
    let twice = parent.chain(&parent);
    let sibling = parent.chain(&CancelToken::new());
    drop(twice);
    assert_eq!(parent.registrations(), (1, 0));
    parent.trigger();
    assert!(sibling.is_triggered());
}

/// An `all` token registers one callback per source and removes them all when dropped; made
/// from sources already triggered, it registers nothing.
#[test]
fn an_all_token_unregisters_from_its_sources_when_dropped() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    for _ in 0..100 {
        let all = CancelToken::all([&a, &b, &a]);
        assert_eq!(a.registrations(), (0, 2));
        assert_eq!(b.registrations(), (0, 1));
        drop(all);
    }
    assert_eq!(a.registrations(), (0, 0));
    assert_eq!(b.registrations(), (0, 0));
    assert_eq!(
        a.node().registration_slots().1,
        1,
        "the slab gave its slots back"
    );

    let triggered = CancelToken::new();
    triggered.trigger();
    let born = CancelToken::all([&triggered]);
    assert!(born.is_triggered());
    assert_eq!(triggered.registrations(), (0, 0));
}

/// A sleep is one child link on its token and one timer entry; dropping it, or its ending,
/// releases both, and a token already triggered gets neither.
#[test]
fn a_sleep_releases_its_link_and_timer_entry() {
    use std::time::Duration;

    use crate::time;

    let hour = Duration::from_secs(3600);
    let token = CancelToken::new();
    let before = time::pending();
    let mut sleep = token.sleep(hour);
    poll_pending(&mut sleep);
    assert_eq!(token.registrations(), (1, 0));
    assert_eq!(time::pending(), before + 1);
    drop(sleep);
    assert_eq!(token.registrations(), (0, 0));
    assert_eq!(time::pending(), before);

    let mut forever = token.sleep(Duration::MAX);
    poll_pending(&mut forever);
    assert_eq!(
        time::pending(),
        before,
        "no timer for a duration that overflows"
    );
    token.trigger();
    drop(forever);
    assert_eq!(token.sleep(hour).token(), &token);
    assert_eq!(time::pending(), before, "nothing for a triggered token");
}

/// A deadline's reason: the message of one given as a duration is built from it as `Debug`
/// prints it, and only when the deadline fires.
#[test]
fn a_deadline_reason_says_the_duration_it_was_given() {
    use std::time::Duration;

    use crate::deadline::DeadlineReason;
    use crate::{Reason, ReasonKind};

    for (duration, text) in [
        (Duration::from_millis(300), "deadline of 300ms elapsed"),
        (Duration::from_secs(2), "deadline of 2s elapsed"),
        (Duration::from_micros(1500), "deadline of 1.5ms elapsed"),
        (Duration::ZERO, "deadline of 0ns elapsed"),
    ] {
        let reason = DeadlineReason::After(duration).into_reason();
        assert_eq!(reason.kind(), ReasonKind::Timeout);
        assert_eq!(reason.message(), Some(text));
    }
    assert_eq!(
        DeadlineReason::Plain.into_reason(),
        Reason::new(ReasonKind::Timeout)
    );
    assert!(matches!(
        DeadlineReason::custom(Reason::new(ReasonKind::Timeout)),
        DeadlineReason::Plain
    ));
    let mine = Reason::with_message(ReasonKind::Timeout, "grace period of 2s elapsed");
    assert_eq!(DeadlineReason::custom(mine.clone()).into_reason(), mine);
}
