//! Regression (found in review): a subscription opened while another one still held an
//! operation's progress entry never heard of that operation's progress, however often it
//! changed, until the other one read. A new subscription now gets an entry for every such
//! operation.
use cancel_token::{CancelToken, OperationEvent, OperationRegistry};

#[test]
fn a_new_subscription_hears_progress_while_an_old_one_is_slow() {
    let registry = OperationRegistry::new();
    let slow = registry.subscribe(); // never read in this test
    let op = registry.start("job", &CancelToken::new());
    op.advance(1); // sets the op's `dirty` flag and queues it in `slow`

    let fresh = registry.subscribe();
    for _ in 0..1000 {
        op.advance(1);
    }
    op.set_message("working");
    let mut seen = Vec::new();
    while let Some(event) = fresh.try_next() {
        seen.push(event);
    }
    println!("fresh saw: {seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, OperationEvent::Progress { .. })),
        "1001 progress updates after subscribing, none delivered to the new subscription"
    );
    drop(slow);
}

#[test]
fn after_the_old_one_reads_the_new_one_still_missed_the_earlier_updates_until_next_change() {
    let registry = OperationRegistry::new();
    let slow = registry.subscribe();
    let op = registry.start("job", &CancelToken::new());
    op.advance(1);
    let fresh = registry.subscribe();
    op.advance(41); // done = 42, only `slow` hears
    while slow.try_next().is_some() {} // clears the flag
    let mut seen = Vec::new();
    while let Some(event) = fresh.try_next() {
        seen.push(event);
    }
    println!("fresh saw: {seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, OperationEvent::Progress { progress, .. } if progress.done == 42)),
        "the final progress (42) was never delivered to `fresh`"
    );
}
