//! No leaks: a long-lived token keeps flat memory while a million short-lived children,
//! chains, callbacks and waits come and go (ten million children and chains in the ignored soak
//! tests, which `.ci/run` runs in release). Live heap bytes are counted by a wrapping global
//! allocator, so this file is its own test binary, and its tests run one at a time.

#[path = "common/alloc.rs"]
mod alloc;
mod common;

use std::hint::black_box;
use std::sync::{Mutex, PoisonError};

use alloc::live;
use cancel_token::CancelToken;
use common::{poll_with, CountingWaker};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting::ALL_THREADS;

/// The harness runs tests concurrently; a measurement must not see another test's heap.
static SERIAL: Mutex<()> = Mutex::new(());

/// Scaled down only under valgrind (see `common::scaled`).
fn cycles() -> usize {
    common::scaled(1_000_000)
}
/// Cycles run before the baseline is taken, so one-time allocations (a slab's first
/// capacity, the event's listener list) are not counted as growth.
const WARM_UP: usize = 1_000;
/// Slack above the baseline for the harness's own allocations. A leak of 16 bytes per
/// cycle would be 16 MB.
const BOUND: isize = 64 << 10;

/// Runs `cycle` a million times after a warm-up and asserts live memory stays within
/// [`BOUND`] of the baseline at every sample and at the end.
fn assert_flat(what: &str, cycle: impl FnMut()) {
    assert_flat_over(what, cycles(), cycle);
}

/// [`assert_flat`] over `cycles` cycles.
fn assert_flat_over(what: &str, cycles: usize, mut cycle: impl FnMut()) {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    for _ in 0..WARM_UP {
        cycle();
    }
    let sample_every = (cycles / 10).max(1);
    let mut samples: Vec<isize> = Vec::with_capacity(11);
    let baseline = live();
    for i in 1..=cycles {
        cycle();
        if i % sample_every == 0 {
            samples.push(live() - baseline);
        }
    }
    let end = live() - baseline;
    assert!(
        samples.iter().all(|&growth| growth <= BOUND) && end <= BOUND,
        "{what}: live bytes grew above the baseline: samples {samples:?}, end {end}"
    );
}

#[test]
fn children_created_and_dropped_keep_memory_flat() {
    let parent = CancelToken::new();
    assert_flat("child", || drop(black_box(parent.child())));
    assert!(!parent.is_triggered());
}

/// The rule of DESIGN.md at its full size: a parent that lives throughout while ten million
/// children are created and dropped. Ignored in the debug suite; `.ci/run` runs it in release.
#[test]
#[ignore = "soak: run in release with --ignored"]
fn ten_million_children_created_and_dropped_keep_memory_flat() {
    let parent = CancelToken::new();
    assert_flat_over("child", common::scaled(10_000_000), || {
        drop(black_box(parent.child()))
    });
    assert!(!parent.is_triggered());
}

/// The same for chains, whose sources both live throughout.
/// `any` names the parent a trigger came through by an index of 22 bits: one more parent than
/// that still works (the parents are grouped), and the last one, past the index's range, is
/// named when it fires.
#[test]
#[ignore = "soak: run in release with --ignored"]
fn any_over_more_parents_than_a_state_word_indexes() {
    // Hundreds of megabytes: the other tests here must not count them.
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    const PARENTS: usize = (1 << 22) + 1;
    let parents: Vec<CancelToken> = (0..PARENTS).map(|_| CancelToken::new()).collect();
    let any = CancelToken::any(&parents);
    assert!(!any.is_triggered());
    parents[PARENTS - 1].trigger_with("the last one");
    assert!(any.is_triggered());
    assert_eq!(any.triggered_token().as_ref(), Some(&parents[PARENTS - 1]));
    assert_eq!(any.reason().unwrap().message(), Some("the last one"));
}

#[test]
#[ignore = "soak: run in release with --ignored"]
fn ten_million_chains_created_and_dropped_keep_memory_flat() {
    let parent = CancelToken::new();
    let other = CancelToken::new();
    assert_flat_over("chain", common::scaled(10_000_000), || {
        drop(black_box(parent.chain(&other)))
    });
}

#[test]
fn chains_created_and_dropped_keep_memory_flat() {
    let parent = CancelToken::new();
    let other = CancelToken::new();
    assert_flat("chain", || drop(black_box(parent.chain(&other))));
}

#[test]
fn any_tokens_created_and_dropped_keep_memory_flat() {
    let parent = CancelToken::new();
    let b = CancelToken::new();
    let c = CancelToken::new();
    assert_flat("any", || {
        drop(black_box(CancelToken::any([&parent, &b, &c])))
    });
}

#[test]
fn callback_guards_created_and_dropped_keep_memory_flat() {
    let parent = CancelToken::new();
    let captured = std::sync::Arc::new(0u64);
    assert_flat("on_cancel", || {
        let captured = std::sync::Arc::clone(&captured);
        drop(black_box(parent.on_cancel(move |_| drop(captured))));
    });
    assert_eq!(
        std::sync::Arc::strong_count(&captured),
        1,
        "every closure was dropped"
    );
}

#[test]
fn registered_waits_dropped_keep_memory_flat() {
    let parent = CancelToken::new();
    let waker = CountingWaker::new();
    assert_flat("wait", || {
        let mut wait = parent.wait();
        assert!(poll_with(&mut wait, &waker).is_pending());
        drop(black_box(wait));
    });
    assert_eq!(waker.count(), 0);
}

#[test]
fn registered_owned_waits_dropped_keep_memory_flat() {
    let parent = CancelToken::new();
    let waker = CountingWaker::new();
    assert_flat("wait_owned", || {
        let mut wait = parent.clone().wait_owned();
        assert!(poll_with(&mut wait, &waker).is_pending());
        drop(black_box(wait));
    });
    assert_eq!(waker.count(), 0);
}

#[test]
fn disarmed_drop_guards_keep_memory_flat() {
    let parent = CancelToken::new();
    assert_flat("drop_guard disarm", || {
        let child = parent.child().drop_guard().disarm();
        drop(black_box(child));
    });
    assert!(!parent.is_triggered());
}

#[test]
fn children_triggered_individually_and_dropped_keep_memory_flat() {
    let parent = CancelToken::new();
    assert_flat("triggered child", || {
        let child = parent.child();
        assert!(child.trigger());
        drop(black_box(child));
    });
    assert!(!parent.is_triggered());
}

#[test]
fn dropping_ten_thousand_live_children_returns_memory_to_the_baseline() {
    const CHILDREN: usize = 10_000;
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let parent = CancelToken::new();
    drop(parent.child());
    let mut children: Vec<CancelToken> = Vec::with_capacity(CHILDREN);
    let baseline = live();
    for round in 0..10 {
        children.extend((0..CHILDREN).map(|_| parent.child()));
        let peak = live() - baseline;
        assert!(
            peak >= (CHILDREN * std::mem::size_of::<usize>()) as isize,
            "the allocator counts: {peak} bytes for {CHILDREN} children"
        );
        children.clear();
        let end = live() - baseline;
        assert!(
            end <= BOUND,
            "round {round}: {end} bytes left after dropping every child"
        );
    }
}
