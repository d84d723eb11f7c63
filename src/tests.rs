//! Tests of internal bookkeeping that the public API cannot observe: registrations are
//! removed, not just ignored.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};

use crate::node::{Node, EXPANSIONS, INDEX_STEPS};
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
fn a_trigger_consumes_callbacks_and_waiters_and_keeps_children_until_dropped() {
    let token = CancelToken::new();
    let child = token.child();
    let guard = token.on_cancel(|_| {});
    let mut wait = token.wait();
    poll_pending(&mut wait);
    token.trigger();
    assert_eq!(token.registrations(), (1, 0), "callbacks are consumed");
    assert_eq!(token.node().waiters(), 0, "waiters are consumed");
    // Children stay linked so that a concurrent trigger can still walk them.
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

/// The only unit test that touches the global timer, so the counts below are exact.
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
}

/// More parents than a state word can index are grouped under intermediate tokens (at most
/// `limit` per node; the real limit is 4,194,304): the result still fires on any of them,
/// names the parent that fired, and unlinks from all of them when dropped.
#[test]
fn any_over_more_parents_than_a_state_word_indexes_groups_them() {
    let parents: Vec<CancelToken> = (0..10).map(|_| CancelToken::new()).collect();
    let nodes: Vec<_> = parents.iter().map(CancelToken::node).collect();
    let any = CancelToken::from_arc(Node::any_grouped(&nodes, None, 3));
    for parent in &parents {
        assert_eq!(parent.registrations(), (1, 0), "each parent is linked once");
    }
    assert!(!any.is_triggered());
    parents[7].trigger_with("seven");
    assert!(any.is_triggered());
    assert_eq!(any.triggered_token().as_ref(), Some(&parents[7]));
    assert_eq!(any.reason().unwrap().message(), Some("seven"));
    drop(any);
    for parent in &parents {
        assert_eq!(
            parent.registrations(),
            (0, 0),
            "the groups go with the token"
        );
    }

    // A parent already triggered makes the token born triggered, naming it.
    let fresh: Vec<CancelToken> = (0..10).map(|_| CancelToken::new()).collect();
    fresh[8].trigger_with("eight");
    let nodes: Vec<_> = fresh.iter().map(CancelToken::node).collect();
    let any = CancelToken::from_arc(Node::any_grouped(&nodes, None, 3));
    assert_eq!(any.triggered_token().as_ref(), Some(&fresh[8]));
    assert_eq!(any.reason().unwrap().message(), Some("eight"));
}

/// Triggering the parents of one large `any` one after another: only the first trigger looks
/// up the token's index among its parents; the others find it triggered.
#[test]
fn triggering_the_parents_of_a_large_any_one_by_one_stays_linear() {
    const PARENTS: usize = 2_000;
    let parents: Vec<CancelToken> = (0..PARENTS).map(|_| CancelToken::new()).collect();
    let any = CancelToken::any(&parents);
    INDEX_STEPS.with(|steps| steps.set(0));
    for parent in parents.iter().rev() {
        parent.trigger();
    }
    assert_eq!(any.triggered_token().as_ref(), parents.last());
    let steps = INDEX_STEPS.with(std::cell::Cell::get);
    assert!(
        steps <= PARENTS,
        "{steps} parent-list steps for {PARENTS} triggers"
    );
}

/// Triggering a chain from the leaf up: each trigger finds the one below it finished and
/// skips its subtree, so every node is expanded once, not once per trigger above it.
#[test]
fn triggering_a_chain_bottom_up_expands_each_node_once() {
    const DEPTH: usize = 1_000;
    let mut chain = vec![CancelToken::new()];
    for _ in 0..DEPTH {
        let next = chain.last().unwrap().child();
        chain.push(next);
    }
    EXPANSIONS.with(|expansions| expansions.set(0));
    for token in chain.iter().rev() {
        assert!(token.trigger());
    }
    let expansions = EXPANSIONS.with(std::cell::Cell::get);
    assert!(
        expansions <= 2 * (DEPTH + 1),
        "{expansions} expansions for a chain of {}",
        DEPTH + 1
    );
    for token in &chain {
        assert_eq!(token.triggered_token().as_ref(), Some(token));
    }
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
