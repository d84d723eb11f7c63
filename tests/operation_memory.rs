//! Operations leak nothing: 100,000 operations started and finished (completed, failed,
//! dropped, run, with and without a subscriber) leave an empty live set, a bounded history
//! and flat memory; a registry dropped while its operations run is freed once they finish; a
//! progress update that nobody watches allocates nothing.
//!
//! This binary has its own counting global allocator, counting only the measuring thread; the
//! tests take one lock so that no two measurements overlap.

#[path = "common/alloc.rs"]
mod alloc;

use std::sync::Mutex;

use cancel_token::{CancelToken, Filter, OperationRegistry};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting::OPTED_IN_THREADS;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Live bytes allocated by `f` on this thread and not freed when it returns.
fn retained(f: impl FnOnce()) -> isize {
    alloc::count_this_thread(true);
    let before = alloc::live();
    f();
    let after = alloc::live();
    alloc::count_this_thread(false);
    after - before
}

/// How far memory may stay above its baseline after a burst (allocator noise, a hash set's
/// spare capacity): far below what 100,000 retained operations would take.
const SLACK_BYTES: isize = 64 * 1024;

fn churn(registry: &OperationRegistry, parent: &CancelToken, n: usize) {
    for i in 0..n {
        let op = registry.start(format!("job {i}"), parent);
        op.advance(1);
        match i % 4 {
            0 => {
                op.complete();
            }
            1 => {
                op.fail("boom");
            }
            2 => drop(op.child("child")),
            _ => {
                let _ = futures_lite::future::block_on(op.run(async {}));
            }
        }
    }
}

#[test]
fn a_hundred_thousand_operations_leave_an_empty_live_set_and_a_bounded_history() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let parent = CancelToken::new();
    let registry = OperationRegistry::with_history(50);
    let events = registry.subscribe();
    // Warm up: the history fills to its bound, the maps reach their working size.
    churn(&registry, &parent, 1_000);
    while events.try_next().is_some() {}
    let grew = retained(|| {
        for _ in 0..100 {
            churn(&registry, &parent, 1_000);
            while events.try_next().is_some() {}
        }
    });
    assert_eq!(registry.len(), 0);
    assert_eq!(registry.history().len(), 50);
    let counts = registry.counts();
    assert_eq!(counts.total(), 101_000 + 25_250, "every child counted too");
    assert!(
        grew < SLACK_BYTES,
        "retained {grew} bytes after 100,000 operations"
    );
    assert!(registry.list(&Filter::new()).is_empty());
    // The parent token keeps no link to any of them.
    drop(events);
}

#[test]
fn an_unread_subscription_stays_within_its_capacity() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let registry = OperationRegistry::with_history(10);
    let events = registry.subscribe_with_capacity(100);
    let parent = CancelToken::new();
    churn(&registry, &parent, 1_000);
    let grew = retained(|| churn(&registry, &parent, 20_000));
    assert_eq!(events.queued(), 100);
    assert!(grew < SLACK_BYTES, "retained {grew} bytes");
}

#[test]
fn a_registry_dropped_while_operations_run_is_freed_when_they_finish() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let grew = retained(|| {
        let parent = CancelToken::new();
        let registry = OperationRegistry::new();
        let events = registry.subscribe();
        let ops: Vec<_> = (0..1_000)
            .map(|i| registry.start(format!("job {i}"), &parent))
            .collect();
        drop(registry);
        drop(events);
        for (i, op) in ops.into_iter().enumerate() {
            if i % 2 == 0 {
                op.complete();
            }
        }
    });
    assert!(grew < 1024, "retained {grew} bytes");
}

#[test]
fn an_unwatched_progress_update_allocates_nothing() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let registry = OperationRegistry::new();
    let op = registry.start("hot", &CancelToken::new());
    alloc::count_this_thread(true);
    let before = alloc::allocations();
    for _ in 0..100_000 {
        op.advance(1);
        op.set_done(7);
        op.set_total(9);
    }
    let after = alloc::allocations();
    alloc::count_this_thread(false);
    assert_eq!(after, before, "no allocation");
    assert_eq!(op.progress().done, 7);
}
