//! Subscriptions to an operation registry: order of events, coalescing of progress, the
//! watched flag, lagging, async and blocking subscribers, and no user code under a lock (a
//! waker or a token callback that re-enters the registry does not deadlock).

mod common;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use cancel_token::{
    CancelToken, Filter, OperationEvent, OperationRegistry, StatusKind, Subscription,
};
use common::{within, LIMIT};
use futures_core::Stream;
use futures_lite::StreamExt;

/// Takes every queued event.
fn drain(events: &Subscription) -> Vec<OperationEvent> {
    std::iter::from_fn(|| events.try_next()).collect()
}

fn progress_values(events: &[OperationEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|event| match event {
            OperationEvent::Progress { progress, .. } => Some(progress.done),
            _ => None,
        })
        .collect()
}

#[test]
fn one_operation_reports_started_progress_and_finished_in_order() {
    let registry = OperationRegistry::new();
    let events = registry.subscribe();
    let op = registry.start("job", &CancelToken::new());
    op.set_total(2);
    let first = drain(&events);
    assert!(
        matches!(&first[..], [OperationEvent::Started(s), OperationEvent::Progress { id, progress }]
        if s.id == op.id() && *id == op.id() && progress.total == Some(2))
    );
    op.advance(1);
    op.set_message("half");
    op.advance(1);
    match &drain(&events)[..] {
        [OperationEvent::Progress { progress, .. }] => {
            assert_eq!(progress.done, 2, "coalesced: the latest value when taken");
            assert_eq!(progress.message.as_deref(), Some("half"));
        }
        other => panic!("unexpected events {other:?}"),
    }
    op.advance(1);
    op.complete();
    // The progress entry not taken before the finish is replaced by it.
    match &drain(&events)[..] {
        [OperationEvent::Finished(done)] => {
            assert_eq!(done.status, StatusKind::Completed);
            assert_eq!(done.progress.done, 3);
        }
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn a_million_updates_queue_one_progress_event_with_the_final_value() {
    let registry = OperationRegistry::new();
    let events = registry.subscribe();
    let op = registry.start("hot loop", &CancelToken::new());
    for _ in 0..1_000_000 {
        op.advance(1);
    }
    let taken = drain(&events);
    assert_eq!(progress_values(&taken), [1_000_000]);
    assert_eq!(taken.len(), 2, "Started and one Progress");
}

#[test]
fn a_concurrent_subscriber_sees_few_events_and_the_final_value() {
    within(LIMIT, || {
        let registry = OperationRegistry::new();
        let events = registry.subscribe();
        let op = registry.start("hot loop", &CancelToken::new());
        let id = op.id();
        let reader = thread::spawn(move || {
            let mut seen = Vec::new();
            loop {
                match events.next_blocking() {
                    OperationEvent::Progress { progress, .. } => seen.push(progress.done),
                    OperationEvent::Finished(s) if s.id == id => return (seen, s),
                    _ => {}
                }
            }
        });
        for _ in 0..1_000_000 {
            op.advance(1);
        }
        // The subscriber may have taken the last update already, or will take it now.
        let last_update = Duration::from_millis(50);
        thread::sleep(last_update);
        op.complete();
        let (seen, finished) = reader.join().unwrap();
        assert!(
            seen.len() < 1_000_000 / 2,
            "coalesced: {} events",
            seen.len()
        );
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "never backwards");
        assert_eq!(finished.progress.done, 1_000_000);
    });
}

#[test]
fn the_last_progress_before_an_idle_period_is_always_reported() {
    within(LIMIT, || {
        let registry = OperationRegistry::new();
        let events = registry.subscribe();
        let op = registry.start("job", &CancelToken::new());
        let writer = {
            let op = op.clone();
            thread::spawn(move || {
                for _ in 0..100_000 {
                    op.advance(1);
                }
            })
        };
        let mut last = 0;
        while last != 100_000 {
            if let OperationEvent::Progress { progress, .. } = events.next_blocking() {
                last = progress.done;
            }
        }
        writer.join().unwrap();
    });
}

#[test]
fn dropping_the_subscription_makes_updates_unwatched_again() {
    let registry = OperationRegistry::new();
    assert!(!registry.is_watched());
    let a = registry.subscribe();
    let b = registry.subscribe();
    assert!(registry.is_watched());
    let op = registry.start("job", &CancelToken::new());
    op.advance(1); // queued in both, the operation marked as queued
    drop(a);
    assert!(registry.is_watched());
    drop(b);
    assert!(!registry.is_watched());
    // The entries dropped with the subscriptions do not leave the operation marked: a new
    // subscriber hears of its next update.
    let c = registry.subscribe();
    op.advance(1);
    assert_eq!(progress_values(&drain(&c)), [2]);
}

#[test]
fn a_full_subscription_says_how_many_events_it_lost() {
    let registry = OperationRegistry::new();
    let events = registry.subscribe_with_capacity(3);
    for _ in 0..5 {
        registry.start("job", &CancelToken::new()).complete();
    }
    assert_eq!(events.queued(), 3);
    let taken = drain(&events);
    assert!(matches!(taken[0], OperationEvent::Lagged(7)), "{taken:?}");
    assert_eq!(taken.len(), 4);
    registry.start("later", &CancelToken::new());
    assert!(matches!(
        events.try_next(),
        Some(OperationEvent::Started(_))
    ));
}

#[test]
fn progress_never_comes_after_the_finish() {
    let registry = OperationRegistry::new();
    let events = registry.subscribe();
    let op = registry.start("job", &CancelToken::new());
    op.complete();
    op.advance(5);
    let taken = drain(&events);
    assert!(
        matches!(taken.last(), Some(OperationEvent::Finished(_))),
        "{taken:?}"
    );
    assert!(progress_values(&taken).is_empty());
}

#[test]
fn an_async_subscriber_on_tokio_follows_a_worker_thread() {
    within(LIMIT, || {
        let runtime = common::multi_thread_runtime();
        let registry = OperationRegistry::new();
        let mut events = registry.subscribe();
        let worker = {
            let registry = registry.clone();
            thread::spawn(move || {
                let op = registry.start("copy", &CancelToken::new());
                op.set_total(1000);
                for _ in 0..1000 {
                    op.advance(1);
                }
                op.complete();
            })
        };
        let finished = runtime.block_on(async {
            tokio::spawn(async move {
                while let Some(event) = events.next().await {
                    if let OperationEvent::Finished(snapshot) = event {
                        return snapshot;
                    }
                }
                unreachable!("a subscription's stream does not end")
            })
            .await
            .unwrap()
        });
        worker.join().unwrap();
        assert_eq!(finished.progress.done, 1000);
        assert_eq!(finished.status, StatusKind::Completed);
    });
}

#[test]
fn a_blocking_subscriber_waits_and_times_out() {
    within(LIMIT, || {
        let registry = OperationRegistry::new();
        let events = registry.subscribe();
        assert!(events
            .next_blocking_timeout(Duration::from_millis(5))
            .is_none());
        let starter = {
            let registry = registry.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                registry.start("late", &CancelToken::new()).fail("boom");
            })
        };
        assert!(matches!(events.next_blocking(), OperationEvent::Started(_)));
        let finished = events.next_blocking_timeout(LIMIT).unwrap();
        assert!(matches!(finished, OperationEvent::Finished(s) if s.status == StatusKind::Failed));
        starter.join().unwrap();
    });
}

/// A waker that runs an action on every wake and another when its last clone is dropped.
struct Reentrant {
    on_wake: Box<dyn Fn() + Send + Sync>,
    on_drop: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Wake for Reentrant {
    fn wake(self: Arc<Self>) {
        (self.on_wake)();
    }
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        if let Some(action) = self.on_drop.get_mut().unwrap().take() {
            action();
        }
    }
}

fn poll_with(events: &mut Subscription, waker: Waker) -> Poll<Option<OperationEvent>> {
    Pin::new(events).poll_next(&mut Context::from_waker(&waker))
}

#[test]
fn a_waker_that_reenters_the_registry_when_woken_does_not_deadlock() {
    within(LIMIT, || {
        let registry = OperationRegistry::new();
        let mut events = registry.subscribe();
        let woken = Arc::new(Mutex::new(0));
        let waker = Waker::from(Arc::new(Reentrant {
            on_wake: Box::new({
                let registry = registry.clone();
                let woken = Arc::clone(&woken);
                move || {
                    // Every registry entry point, from inside the publisher's wake.
                    let _ = registry.list(&Filter::new());
                    let _ = registry.counts();
                    let _ = registry.subscribe();
                    registry.cancel_all("from a waker");
                    *woken.lock().unwrap() += 1;
                }
            }),
            on_drop: Mutex::new(None),
        }));
        assert!(poll_with(&mut events, waker).is_pending());
        let op = registry.start("job", &CancelToken::new());
        assert_eq!(*woken.lock().unwrap(), 1);
        assert!(op.token().is_triggered(), "the waker's cancel_all ran");
    });
}

#[test]
fn a_waker_that_reenters_the_registry_when_dropped_does_not_deadlock() {
    within(LIMIT, || {
        let registry = OperationRegistry::new();
        let mut events = registry.subscribe();
        let dropped = Arc::new(Mutex::new(false));
        let first = Waker::from(Arc::new(Reentrant {
            on_wake: Box::new(|| {}),
            on_drop: Mutex::new(Some(Box::new({
                let registry = registry.clone();
                let dropped = Arc::clone(&dropped);
                move || {
                    registry
                        .start("from a waker's drop", &CancelToken::new())
                        .complete();
                    *dropped.lock().unwrap() = true;
                }
            }))),
        }));
        assert!(poll_with(&mut events, first).is_pending());
        // Polling with another waker replaces (drops) the first, the subscription's last
        // clone of it; so does dropping the subscription, the second time.
        let second = Waker::from(Arc::new(Reentrant {
            on_wake: Box::new(|| {}),
            on_drop: Mutex::new(None),
        }));
        assert!(poll_with(&mut events, second).is_pending());
        assert!(*dropped.lock().unwrap());
        assert!(matches!(
            events.try_next(),
            Some(OperationEvent::Started(_))
        ));
    });
}

#[test]
fn a_token_callback_that_reenters_the_registry_during_a_cancel_does_not_deadlock() {
    within(LIMIT, || {
        let registry = OperationRegistry::new();
        let _events = registry.subscribe();
        let op = registry.start("job", &CancelToken::new());
        let _guard = op.token().on_cancel({
            let registry = registry.clone();
            let op = op.clone();
            move |reason| {
                let _ = registry.list(&Filter::new());
                op.abort(reason.clone()); // finishes: the table's lock, again
                registry.cancel_tree(op.id(), "again");
            }
        });
        assert!(registry.cancel(op.id(), "stop"));
        assert_eq!(registry.len(), 0);
        assert_eq!(registry.counts().cancelled, 1);
    });
}

#[test]
fn a_subscription_drop_releases_a_reentrant_waker_outside_the_lock() {
    within(LIMIT, || {
        let registry = OperationRegistry::new();
        let mut events = registry.subscribe();
        let waker = Waker::from(Arc::new(Reentrant {
            on_wake: Box::new(|| {}),
            on_drop: Mutex::new(Some(Box::new({
                let registry = registry.clone();
                move || {
                    let _ = registry.subscribe();
                    let _ = registry.is_watched();
                }
            }))),
        }));
        assert!(poll_with(&mut events, waker).is_pending());
        drop(events);
        assert!(!registry.is_watched());
    });
}
