//! A `CancelRegistry` entry leaves the registry when its token is triggered by anything (the
//! registry's parent, a direct trigger, a deadline), not only through the registry's own
//! `cancel`; and `register_named` names each token after its key.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use cancel_token::{CancelRegistry, CancelToken, ReasonKind};
use common::{wait_until, within, LIMIT};

#[test]
fn a_triggered_parent_leaves_the_registry_empty() {
    let shutdown = CancelToken::named("shutdown");
    let registry = CancelRegistry::with_parent(&shutdown);
    let registrations: Vec<_> = (0..10).map(|i| registry.register(i % 3)).collect();
    assert_eq!(registry.len(), 10);

    shutdown.trigger_with("maintenance");
    assert_eq!(
        registry.len(),
        0,
        "len counts no entry after the parent fired"
    );
    assert!(registry.is_empty());
    for key in 0..3 {
        assert!(!registry.contains_key(&key));
    }
    assert_eq!(registry.cancel(&1, "late"), 0);
    for (token, _) in &registrations {
        assert_eq!(token.triggered_token(), Some(shutdown.clone()));
    }
    drop(registrations);
    assert!(registry.is_empty());
}

#[test]
fn registering_under_a_triggered_parent_registers_nothing() {
    let shutdown = CancelToken::new();
    shutdown.trigger();
    let registry = CancelRegistry::with_parent(&shutdown);
    let (token, registration) = registry.register("late");
    assert!(token.is_triggered(), "born triggered");
    assert!(registry.is_empty());
    assert!(!registry.contains_key("late"));
    drop(registration);
    assert!(registry.is_empty());
}

#[test]
fn a_token_triggered_directly_leaves_and_its_siblings_stay() {
    let registry = CancelRegistry::new();
    let (a, _ra) = registry.register("job");
    let (b, _rb) = registry.register("job");
    assert!(a.trigger_with("failed on its own"));
    assert_eq!(registry.len(), 1);
    assert!(
        registry.contains_key("job"),
        "the other operation is still there"
    );

    b.trigger();
    assert_eq!(registry.len(), 0);
    assert!(!registry.contains_key("job"), "an emptied key is removed");
    assert_eq!(registry.cancel("job", "too late"), 0);
    assert_eq!(a.reason().unwrap().message(), Some("failed on its own"));
}

#[test]
fn a_deadline_on_a_registered_token_removes_its_entry() {
    let registry = CancelRegistry::new();
    let (token, _registration) = registry.register(7u32);
    assert!(token.trigger_after(Duration::from_millis(5)));
    wait_until("the deadline removed the entry", LIMIT, || {
        registry.is_empty()
    });
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Timeout);
}

#[test]
fn cancel_and_a_later_direct_trigger_count_each_entry_once() {
    let registry = CancelRegistry::new();
    let (a, ra) = registry.register(1u8);
    assert_eq!(registry.cancel(&1, "by key"), 1);
    assert!(a.is_triggered());
    let (_b, _rb) = registry.register(1u8);
    drop(ra);
    assert_eq!(
        registry.len(),
        1,
        "the stale guard leaves the newer entry alone"
    );
}

#[test]
fn a_registration_is_removed_once_whichever_comes_first() {
    let registry = CancelRegistry::new();
    let (token, registration) = registry.register("x");
    token.trigger();
    assert!(registry.is_empty());
    drop(registration);
    assert!(registry.is_empty());
    let (_again, _r) = registry.register("x");
    assert_eq!(registry.len(), 1);
}

#[test]
fn register_named_names_the_token_after_its_key() {
    let jobs = CancelRegistry::new();
    let (token, registration) = jobs.register_named(String::from("export-42"));
    assert_eq!(token.name(), Some("export-42"));
    assert_eq!(registration.key(), "export-42");
    assert_eq!(jobs.cancel("export-42", "cancelled by the user"), 1);
    assert_eq!(
        token.cancelled().unwrap().to_string(),
        "cancellation requested by token export-42: cancelled by the user"
    );
    assert!(jobs.is_empty());

    let shutdown = CancelToken::named("shutdown");
    let numbered = CancelRegistry::with_parent(&shutdown);
    let (child, _r) = numbered.register_named(7u64);
    assert_eq!(child.name(), Some("7"));
    shutdown.trigger();
    assert_eq!(child.triggered_token(), Some(shutdown));
    assert!(numbered.is_empty());
}

#[test]
fn concurrent_direct_triggers_registrations_and_drops_leave_nothing_behind() {
    const THREADS: usize = 4;
    let registry: CancelRegistry<u32> = CancelRegistry::new();
    let per_thread = common::scaled(2_000).max(200) as u32;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS as u32)
        .map(|t| {
            let registry = registry.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let mut kept = Vec::new();
                for i in 0..per_thread {
                    let (token, registration) = registry.register(i % 8);
                    match (i + t) % 3 {
                        0 => drop(registration),
                        1 => {
                            token.trigger();
                            kept.push(registration);
                        }
                        _ => {
                            registry.cancel(&(i % 8), "churn");
                            kept.push(registration);
                        }
                    }
                }
                kept
            })
        })
        .collect();
    let kept: Vec<_> = within(LIMIT, move || {
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    // Every operation was triggered or ended; the registrations still held count for nothing.
    assert!(!kept.is_empty());
    assert_eq!(registry.len(), 0);
    for key in 0..8 {
        assert!(!registry.contains_key(&key));
    }
    drop(kept);
    assert!(registry.is_empty());
}
