//! Children, chains and `any`: push-based propagation of a trigger, the origin's reason and
//! identity through any depth, isolation of parents and siblings, and chains a million deep.

mod common;

use cancel_token::{CancelToken, ReasonKind};

/// Depth of the deep-chain tests: the design promises this depth on a 2 MiB stack. Scaled down
/// only under valgrind (see `common::scaled`).
fn depth() -> usize {
    common::scaled(1_000_000)
}
const SMALL_STACK: usize = 2 << 20;

fn assert_fired_by(token: &CancelToken, origin: &CancelToken, message: &str) {
    assert!(token.is_triggered(), "{token:?} should be triggered");
    let reason = token.reason().expect("a triggered token has a reason");
    assert_eq!(reason.message(), Some(message));
    assert_eq!(token.triggered_token().as_ref(), Some(origin));
    assert_eq!(token.raise_if_triggered().unwrap_err().token(), origin);
}

// ---------------------------------------------------------------------------------------------
// Following the source

#[test]
fn a_child_is_triggered_when_its_parent_is() {
    let parent = CancelToken::named("parent");
    let child = parent.child();
    assert!(!child.is_triggered());
    assert!(parent.trigger_with("shutdown"));
    assert_fired_by(&child, &parent, "shutdown");
    assert!(
        !child.trigger(),
        "the child was already triggered by propagation"
    );
}

#[test]
fn a_chain_is_triggered_when_either_source_is() {
    let a = CancelToken::named("a");
    let b = CancelToken::named("b");
    let first = a.chain(&b);
    let second = a.chain(&b);
    a.trigger_with("a stopped");
    assert_fired_by(&first, &a, "a stopped");
    assert_fired_by(&second, &a, "a stopped");
    assert!(!b.is_triggered());

    let c = CancelToken::named("c");
    let d = CancelToken::named("d");
    let cd = c.chain(&d);
    d.trigger_with("d stopped");
    assert_fired_by(&cd, &d, "d stopped");
    assert!(!c.is_triggered());
}

#[test]
fn any_of_three_is_triggered_by_the_third() {
    let tokens = [
        CancelToken::named("user"),
        CancelToken::named("shutdown"),
        CancelToken::named("quota"),
    ];
    let any = CancelToken::any(&tokens);
    assert_eq!(any.name(), Some("user:shutdown:quota"));
    assert!(!any.is_triggered());
    tokens[2].trigger_with("over budget");
    assert_fired_by(&any, &tokens[2], "over budget");
    assert!(!tokens[0].is_triggered());
    assert!(!tokens[1].is_triggered());
}

#[test]
fn any_of_no_tokens_is_a_plain_token() {
    let any = CancelToken::any(std::iter::empty());
    assert!(!any.is_triggered());
    assert_eq!(any.name(), None);
    let child = any.child();
    assert!(any.trigger_with("direct"));
    assert_fired_by(&any, &any, "direct");
    assert_fired_by(&child, &any, "direct");
}

#[test]
fn any_of_one_token_follows_it() {
    let only = CancelToken::named("only");
    let any = CancelToken::any([&only]);
    assert_eq!(any.name(), Some("only"));
    assert_ne!(any, only, "any always makes a new token");
    only.trigger_with("gone");
    assert_fired_by(&any, &only, "gone");
}

// ---------------------------------------------------------------------------------------------
// Born triggered

#[test]
fn a_child_of_a_triggered_token_is_born_triggered() {
    let parent = CancelToken::named("parent");
    parent.trigger_with(ReasonKind::Superseded);
    let child = parent.child();
    assert!(child.is_triggered());
    assert_eq!(child.reason().unwrap().kind(), ReasonKind::Superseded);
    assert_eq!(child.triggered_token(), Some(parent.clone()));
    assert!(
        !child.trigger(),
        "born triggered: its own trigger is a no-op"
    );
    assert_eq!(parent.child_named("late").triggered_token(), Some(parent));
}

#[test]
fn a_chain_from_a_triggered_token_is_born_triggered() {
    let a = CancelToken::named("a");
    let b = CancelToken::named("b");
    b.trigger_with("b first");
    assert_fired_by(&a.chain(&b), &b, "b first");
    assert_fired_by(&b.chain(&a), &b, "b first");
    assert!(!a.is_triggered());
}

#[test]
fn a_chain_of_two_triggered_tokens_takes_self_first() {
    let a = CancelToken::named("a");
    let b = CancelToken::named("b");
    b.trigger_with("b");
    a.trigger_with("a");
    assert_fired_by(&a.chain(&b), &a, "a");
    assert_fired_by(&b.chain(&a), &b, "b");
}

#[test]
fn any_with_a_triggered_source_is_born_triggered_with_its_reason() {
    let a = CancelToken::named("a");
    let b = CancelToken::named("b");
    let c = CancelToken::named("c");
    c.trigger_with(ReasonKind::Signal);
    let any = CancelToken::any([&a, &b, &c]);
    assert!(any.is_triggered());
    assert_eq!(any.reason().unwrap().kind(), ReasonKind::Signal);
    assert_eq!(any.triggered_token(), Some(c));
    assert!(!a.is_triggered() && !b.is_triggered());
}

#[test]
fn a_descendant_born_from_a_triggered_descendant_names_the_origin() {
    let root = CancelToken::named("root");
    let middle = root.child();
    root.trigger_with("root");
    let late_child = middle.child();
    let late_chain = middle.chain(&CancelToken::new());
    assert_fired_by(&late_child, &root, "root");
    assert_fired_by(&late_chain, &root, "root");
}

// ---------------------------------------------------------------------------------------------
// Inheritance through depth

#[test]
fn descendants_inherit_the_origins_reason_through_several_levels() {
    let root = CancelToken::named("root");
    let other = CancelToken::named("other");
    let third = CancelToken::named("third");
    let l1 = root.child();
    let l2 = l1.chain(&other);
    let l3 = l2.child();
    let l4 = CancelToken::any([&third, &l3]);
    let l5 = l4.child().chain(&CancelToken::new()).child();
    root.trigger_with("deep reason");
    for token in [&l1, &l2, &l3, &l4, &l5] {
        assert_fired_by(token, &root, "deep reason");
    }
    assert!(!other.is_triggered());
    assert!(!third.is_triggered());
}

#[test]
fn a_trigger_in_the_middle_names_the_middle_as_origin() {
    let root = CancelToken::named("root");
    let middle = root.child_named("middle");
    let leaf = middle.child().child();
    middle.trigger_with("middle");
    assert_fired_by(&leaf, &middle, "middle");
    assert!(!root.is_triggered());

    // A later trigger of the root does not rewrite what the subtree recorded.
    root.trigger_with("root");
    assert_fired_by(&leaf, &middle, "middle");
    assert_fired_by(&middle, &middle, "middle");
}

// ---------------------------------------------------------------------------------------------
// Isolation

#[test]
fn triggering_a_child_never_affects_its_parent_or_siblings() {
    let parent = CancelToken::new();
    let child = parent.child();
    let sibling = parent.child();
    let nephew = sibling.child();
    let grandchild = child.child();
    child.trigger();
    assert!(grandchild.is_triggered());
    assert!(!parent.is_triggered());
    assert!(!sibling.is_triggered());
    assert!(!nephew.is_triggered());
}

#[test]
fn triggering_a_chain_never_affects_its_sources_or_siblings() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    let ab = a.chain(&b);
    let sibling = a.chain(&b);
    let a_child = a.child();
    ab.trigger();
    assert!(!a.is_triggered());
    assert!(!b.is_triggered());
    assert!(!sibling.is_triggered());
    assert!(!a_child.is_triggered());

    let any = CancelToken::any([&a, &b]);
    any.trigger();
    assert!(!a.is_triggered() && !b.is_triggered() && !sibling.is_triggered());
}

#[test]
fn a_parent_still_propagates_after_a_child_triggered_itself() {
    let parent = CancelToken::named("parent");
    let early = parent.child();
    let late = parent.child();
    early.trigger_with("early");
    parent.trigger_with("parent");
    assert_fired_by(&early, &early, "early");
    assert_fired_by(&late, &parent, "parent");
}

// ---------------------------------------------------------------------------------------------
// Names

#[test]
fn chain_names_join_the_named_sources() {
    let a = CancelToken::named("a");
    let b = CancelToken::named("b");
    let unnamed = CancelToken::new();
    assert_eq!(a.chain(&b).name(), Some("a:b"));
    assert_eq!(b.chain(&a).name(), Some("b:a"));
    assert_eq!(a.chain(&unnamed).name(), Some("a"));
    assert_eq!(unnamed.chain(&b).name(), Some("b"));
    assert_eq!(unnamed.chain(&CancelToken::new()).name(), None);
    assert_eq!(
        a.chain(&b).chain(&CancelToken::named("c")).name(),
        Some("a:b:c")
    );
}

// ---------------------------------------------------------------------------------------------
// Lifetimes of links

#[test]
fn dropping_an_intermediate_handle_never_cuts_a_chain() {
    let root = CancelToken::named("root");
    let middle = root.child();
    let leaf = middle.child();
    drop(middle);
    root.trigger_with("through a dropped middle");
    assert_fired_by(&leaf, &root, "through a dropped middle");
}

#[test]
fn dropping_intermediate_chain_handles_never_cuts_the_link() {
    let a = CancelToken::named("a");
    let b = CancelToken::named("b");
    let ab = a.chain(&b);
    let leaf = ab.child().chain(&CancelToken::new());
    drop(ab);
    b.trigger_with("b");
    assert_fired_by(&leaf, &b, "b");
}

#[test]
fn dropping_a_source_handle_keeps_the_remaining_descendant_usable() {
    let root = CancelToken::named("root");
    let leaf = root.child().child();
    drop(root);
    assert!(!leaf.is_triggered());
    assert!(leaf.trigger_with("leaf"));
    assert_fired_by(&leaf, &leaf, "leaf");
}

// ---------------------------------------------------------------------------------------------
// A whole tree at once

#[test]
fn once_trigger_returns_every_descendant_reports_triggered() {
    const NODES: usize = 1000;
    let root = CancelToken::named("root");
    let unrelated = CancelToken::new();
    let mut nodes = vec![root.clone()];
    for i in 1..NODES {
        // A mix of children, chains with an untriggered token and multi-parent `any`.
        let parent = &nodes[(i - 1) / 3];
        let node = match i % 4 {
            0 => parent.chain(&unrelated),
            1 => CancelToken::any([&unrelated, parent, &nodes[i / 2]]),
            _ => parent.child(),
        };
        nodes.push(node);
    }
    assert!(nodes.iter().all(|node| !node.is_triggered()));
    assert!(root.trigger_with("tree"));
    for node in &nodes {
        assert_fired_by(node, &root, "tree");
    }
    assert!(!unrelated.is_triggered());
}

#[test]
fn a_diamond_is_triggered_once_with_the_first_reason() {
    let root = CancelToken::named("root");
    let left = root.child();
    let right = root.child();
    let bottom = left.chain(&right);
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&count);
    let _guard = bottom.on_cancel(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    root.trigger_with("diamond");
    assert_fired_by(&bottom, &root, "diamond");
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// A million deep, on a 2 MiB stack

fn deep_chain_of_children(root: &CancelToken) -> CancelToken {
    let mut leaf = root.child();
    for _ in 1..depth() {
        leaf = leaf.child();
    }
    leaf
}

fn deep_chain_of_chains(root: &CancelToken) -> CancelToken {
    let mut leaf = root.chain(&CancelToken::new());
    for _ in 1..depth() {
        leaf = leaf.chain(&CancelToken::new());
    }
    leaf
}

#[test]
fn a_million_deep_chain_of_children_triggers_and_drops_on_a_2_mib_stack() {
    common::on_thread_with_stack(SMALL_STACK, || {
        let root = CancelToken::named("root");
        let leaf = deep_chain_of_children(&root);
        assert!(!leaf.is_triggered());
        assert!(root.trigger_with("from the top"));
        assert_fired_by(&leaf, &root, "from the top");
        // The root goes first: the leaf's drop then frees the whole chain, root last.
        drop(root);
        drop(leaf);
    });
}

#[test]
fn a_million_deep_chain_of_chains_triggers_and_drops_on_a_2_mib_stack() {
    common::on_thread_with_stack(SMALL_STACK, || {
        let root = CancelToken::named("root");
        let leaf = deep_chain_of_chains(&root);
        assert!(!leaf.is_triggered());
        assert!(root.trigger_with("from the top"));
        assert_fired_by(&leaf, &root, "from the top");
        drop(leaf);
        drop(root);
    });
}

#[test]
fn an_untriggered_million_deep_chain_of_children_drops_on_a_2_mib_stack() {
    common::on_thread_with_stack(SMALL_STACK, || {
        let leaf = deep_chain_of_children(&CancelToken::new());
        assert!(!leaf.is_triggered());
        drop(leaf);
    });
}

#[test]
fn an_untriggered_million_deep_chain_of_chains_drops_on_a_2_mib_stack() {
    common::on_thread_with_stack(SMALL_STACK, || {
        let leaf = deep_chain_of_chains(&CancelToken::new());
        assert!(!leaf.is_triggered());
        drop(leaf);
    });
}

// ---------------------------------------------------------------------------------------------
// Races with the trigger

#[test]
fn children_created_while_the_parent_triggers_are_all_triggered() {
    const THREADS: usize = 4;
    let per_thread = common::scaled(2_000).max(200);
    for _round in 0..10 {
        let parent = CancelToken::named("parent");
        let other = CancelToken::new();
        let start = std::sync::Arc::new(std::sync::Barrier::new(THREADS + 1));
        let makers: Vec<_> = (0..THREADS)
            .map(|t| {
                let parent = parent.clone();
                let other = other.clone();
                let start = std::sync::Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    (0..per_thread)
                        .map(|i| match (t + i) % 3 {
                            0 => parent.child(),
                            1 => parent.chain(&other),
                            _ => CancelToken::any([&other, &parent]),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        start.wait();
        parent.trigger_with("raced");
        let made = common::within(common::LIMIT, move || {
            makers
                .into_iter()
                .flat_map(|m| m.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert_eq!(made.len(), THREADS * per_thread);
        for token in &made {
            assert_fired_by(token, &parent, "raced");
        }
        assert!(!other.is_triggered());
    }
}

#[test]
fn descendants_dropped_while_the_parent_triggers_do_not_disturb_it() {
    for _round in 0..10 {
        let parent = CancelToken::new();
        let kept: Vec<CancelToken> = (0..1_000).map(|_| parent.child()).collect();
        let dropped: Vec<CancelToken> = (0..1_000).map(|_| parent.child().child()).collect();
        let dropper = std::thread::spawn(move || drop(dropped));
        parent.trigger();
        common::within(common::LIMIT, move || dropper.join().unwrap());
        assert!(kept.iter().all(CancelToken::is_triggered));
    }
}

/// The root is triggered while another thread is still walking the deep subtree of a middle
/// node it triggered. The middle's subtree belongs to the trigger that reached the middle
/// first (the rule tokio-util and .NET give): the root's walk skips it and returns without
/// waiting, and once the middle's `trigger()` returns, every node below it reports triggered,
/// carrying the middle's reason and naming the middle.
#[test]
fn a_subtree_another_trigger_reached_first_is_finished_by_that_trigger() {
    // Deep, so that the other thread is usually still walking when the root triggers.
    let below = common::scaled(200_000).max(2_000);
    common::on_thread_with_stack(SMALL_STACK, move || {
        let root = CancelToken::named("root");
        let middle = root.child_named("middle");
        let sibling = root.child();
        let mut leaf = middle.child();
        for _ in 1..below {
            leaf = leaf.child();
        }
        let other = middle.clone();
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let go = std::sync::Arc::clone(&start);
        let other_thread = std::thread::spawn(move || {
            go.wait();
            other.trigger_with("middle")
        });
        start.wait();
        while !middle.is_triggered() {
            std::hint::spin_loop();
        }
        assert!(
            root.trigger_with("root"),
            "the root itself was not triggered yet"
        );
        assert!(sibling.is_triggered(), "what the root claimed is done");
        assert_eq!(sibling.triggered_token().as_ref(), Some(&root));
        assert!(other_thread.join().unwrap(), "the middle's own trigger won");
        assert!(
            leaf.is_triggered(),
            "the middle's trigger finished its subtree"
        );
        assert_eq!(leaf.triggered_token(), Some(middle));
        assert_eq!(leaf.reason().unwrap().message(), Some("middle"));
    });
}

#[test]
fn any_with_the_same_token_twice_triggers_once() {
    let a = CancelToken::named("a");
    let twice = CancelToken::any([&a, &a]);
    assert_eq!(twice.name(), Some("a:a"));
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&count);
    let _guard = twice.on_cancel(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    a.trigger_with("a");
    assert_fired_by(&twice, &a, "a");
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    drop(twice);
}
