//! Loom models of operations (`src/operation/`): progress coalescing, finishing, lookups and
//! the subscriptions' queues.
//!
//! Run with `RUSTFLAGS="--cfg cancel_token_loom" LOOM_MAX_PREEMPTIONS=6 cargo test --release
//! --test loom_operations` (`.ci/run` does, in the loom stage). A lost wake-up shows as a
//! deadlock; every model asserts its property after joining its threads. `docs/reliability.md`
//! lists what each proves and the broken builds each was seen failing against.
#![cfg(cancel_token_loom)]

mod support_loom;

use cancel_token::CancelToken;
use loom::future::block_on;
use loom::thread;
use support_loom::model;

/// The progress events `events` holds now, in order.
fn progress_seen(events: &cancel_token::Subscription) -> Vec<u64> {
    let mut seen = Vec::new();
    while let Some(event) = events.try_next() {
        if let cancel_token::OperationEvent::Progress { progress, .. } = event {
            seen.push(progress.done);
        }
    }
    seen
}

/// Operations: a progress update racing the subscriber that takes the operation's queued
/// entry. The subscriber clears the operation's "queued" flag before it reads the progress, so
/// an update it misses finds the flag clear and queues the operation again: the final value
/// always reaches it.
#[test]
fn the_final_progress_of_an_operation_always_reaches_its_subscriber() {
    use cancel_token::{OperationEvent, OperationRegistry};

    fn last_progress(events: &cancel_token::Subscription, last: &mut u64) {
        while let Some(event) = events.try_next() {
            if let OperationEvent::Progress { progress, .. } = event {
                *last = progress.done;
            }
        }
    }

    model(|| {
        let registry = OperationRegistry::new();
        let events = registry.subscribe();
        let op = registry.start("job", &CancelToken::new());
        let writer = op.clone();
        let t = thread::spawn(move || {
            writer.advance(1);
            writer.advance(1);
        });
        let mut last = 0;
        // Races the updates: may take the entry the first update queued.
        last_progress(&events, &mut last);
        t.join().unwrap();
        last_progress(&events, &mut last);
        assert_eq!(last, 2, "the final progress was never reported");
        op.complete();
    });
}

/// Operations: a finish racing another finish (and the drop of the last handle) sets one
/// final status and moves the operation from the live set to the history exactly once.
#[test]
fn an_operation_finished_twice_at_once_finishes_and_leaves_the_live_set_once() {
    use cancel_token::{OperationRegistry, StatusKind};

    model(|| {
        let registry = OperationRegistry::new();
        let op = registry.start("job", &CancelToken::new());
        let other = op.clone();
        let t = thread::spawn(move || other.complete());
        let aborted = op.abort("stop");
        drop(op);
        let completed = t.join().unwrap();
        assert!(completed ^ aborted, "exactly one finish wins");
        let counts = registry.counts();
        assert_eq!(
            (counts.running, counts.completed + counts.cancelled),
            (0, 1)
        );
        let history = registry.history();
        assert_eq!(history.len(), 1, "removed exactly once");
        let winner = if completed {
            StatusKind::Completed
        } else {
            StatusKind::Cancelled
        };
        assert_eq!(history[0].status, winner);
    });
}

/// Operations: a subscription awaited on one thread while another starts an operation: the
/// waker stored under the queue's lock is never lost.
#[test]
fn a_subscriber_awaiting_an_event_is_woken() {
    use cancel_token::{OperationEvent, OperationRegistry};
    use futures_lite::StreamExt;

    model(|| {
        let registry = OperationRegistry::new();
        let mut events = registry.subscribe();
        let starter = registry.clone();
        // One event only: a second one's wake-up could rescue a lost first.
        let t = thread::spawn(move || starter.start("job", &CancelToken::new()));
        // Deadlocks (and fails the model) if the wake-up is lost.
        let first = block_on(events.next());
        assert!(matches!(first, Some(OperationEvent::Started(_))));
        t.join().unwrap().complete();
    });
}

/// Operations: a thread blocked in `next_blocking` while another starts an operation: the
/// event is queued under the queue's lock before the condvar is notified, so the blocked
/// thread never sleeps through it.
#[test]
fn a_subscriber_blocked_waiting_for_an_event_is_woken() {
    use cancel_token::{OperationEvent, OperationRegistry};

    model(|| {
        let registry = OperationRegistry::new();
        let events = registry.subscribe();
        let starter = registry.clone();
        // One event only: a second one's notification could rescue a lost first.
        let t = thread::spawn(move || starter.start("job", &CancelToken::new()));
        // Deadlocks (and fails the model) if the notification is lost.
        assert!(matches!(events.next_blocking(), OperationEvent::Started(_)));
        t.join().unwrap().complete();
    });
}

/// Operations: a registry lookup racing the drop of the last handle. The lookup either gets
/// a handle that counts (so the drop is not the last, and the completion through that handle
/// wins) or nothing; an operation is never revived, never finished twice, and leaves the live
/// set once.
#[test]
fn a_lookup_racing_the_last_drop_never_revives_the_operation() {
    use cancel_token::{OperationRegistry, StatusKind};

    model(|| {
        let registry = OperationRegistry::new();
        let op = registry.start("job", &CancelToken::new());
        let id = op.id();
        let lookup = registry.clone();
        let t = thread::spawn(move || lookup.get(id).map(|found| found.complete()));
        drop(op);
        let found = t.join().unwrap();
        let history = registry.history();
        assert_eq!(history.len(), 1, "removed exactly once");
        assert_eq!(registry.len(), 0);
        // A handle found counts: the drop was not the last, and the completion won.
        let expected = match found {
            Some(completed) => {
                assert!(
                    completed,
                    "a found operation was finished behind its handle"
                );
                StatusKind::Completed
            }
            None => StatusKind::Cancelled,
        };
        assert_eq!(history[0].status, expected);
    });
}

/// Operations: a subscription opened while an older one holds an operation's progress entry
/// (its `dirty` flag set), racing the older one taking that entry. Later updates queue
/// nothing while the flag is set, so the new subscription gets an entry of its own when it
/// opens (if it sees the flag set) or the next update queues one (if the older one cleared
/// it first): either way it hears the update made after it opened.
#[test]
fn a_new_subscription_hears_an_update_while_an_older_one_holds_the_entry() {
    use cancel_token::OperationRegistry;

    model(|| {
        let registry = OperationRegistry::new();
        let older = registry.subscribe();
        let op = registry.start("job", &CancelToken::new());
        op.advance(1);
        let reader = thread::spawn(move || {
            let seen = progress_seen(&older);
            (older, seen)
        });
        let newer = registry.subscribe();
        op.advance(1);
        let (older, _) = reader.join().unwrap();
        assert_eq!(
            progress_seen(&newer).last(),
            Some(&2),
            "the update after it opened never reached the new subscription"
        );
        drop(older);
        op.complete();
    });
}

/// Operations: a start racing a finish by another thread that finds the operation in the
/// registry. `Started` is queued before the table's lock is released, so whoever finds the
/// operation queues `Finished` after it: every subscription sees them in order.
#[test]
fn a_finish_racing_the_start_never_reaches_a_subscriber_first() {
    use cancel_token::{Filter, OperationEvent, OperationRegistry};

    model(|| {
        let registry = OperationRegistry::new();
        let events = registry.subscribe();
        let finder = registry.clone();
        let t = thread::spawn(move || {
            let found = finder
                .list(&Filter::new())
                .first()
                .map(|snapshot| snapshot.id);
            found.and_then(|id| finder.get(id)).map(|op| op.complete())
        });
        let op = registry.start("job", &CancelToken::new());
        let found = t.join().unwrap();
        op.complete();
        let mut kinds = Vec::new();
        while let Some(event) = events.try_next() {
            kinds.push(match event {
                OperationEvent::Started(_) => "started",
                OperationEvent::Finished(_) => "finished",
                _ => "other",
            });
        }
        assert_eq!(
            kinds,
            ["started", "finished"],
            "found by the other thread: {found:?}"
        );
    });
}
