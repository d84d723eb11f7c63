//! `CancelSlot` (latest wins) and `CancelRegistry` (cancel by key).

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use cancel_token::{CancelRegistry, CancelSlot, CancelToken, ReasonKind};

fn kind(token: &CancelToken) -> Option<ReasonKind> {
    token.reason().map(|reason| reason.kind())
}

// ----- CancelSlot -----

#[test]
fn slot_starts_empty() {
    let slot = CancelSlot::new();
    assert!(slot.current().is_none());
    assert!(!slot.cancel("nothing to cancel"));
    assert!(CancelSlot::default().current().is_none());
}

#[test]
fn replace_supersedes_the_previous_token_and_returns_a_fresh_one() {
    let slot = CancelSlot::new();
    let first = slot.replace().disarm();
    assert!(!first.is_triggered());
    assert_eq!(slot.current(), Some(first.clone()));

    let second = slot.replace().disarm();
    assert_ne!(second, first, "a fresh token each time");
    assert!(!second.is_triggered());
    assert_eq!(kind(&first), Some(ReasonKind::Superseded));
    assert_eq!(first.triggered_token(), Some(first.clone()));
    assert_eq!(slot.current(), Some(second.clone()));

    let third = slot.replace().disarm();
    assert_eq!(kind(&second), Some(ReasonKind::Superseded));
    assert!(!third.is_triggered());
    assert_eq!(slot.current(), Some(third));
}

#[test]
fn replace_runs_the_previous_tokens_callbacks_and_wakes_its_waiters() {
    let slot = CancelSlot::new();
    let first = slot.replace().disarm();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let _guard = first.on_cancel({
        let seen = Arc::clone(&seen);
        move |reason| seen.lock().unwrap().push(reason.kind())
    });
    let waiter = {
        let first = first.clone();
        thread::spawn(move || first.wait_blocking())
    };
    let _second = slot.replace().disarm();
    waiter.join().unwrap();
    assert_eq!(*seen.lock().unwrap(), [ReasonKind::Superseded]);
}

#[test]
fn cancel_triggers_the_current_token_with_the_reason_and_empties_the_slot() {
    let slot = CancelSlot::new();
    let token = slot.replace().disarm();
    assert!(slot.cancel("user closed the page"));
    assert_eq!(kind(&token), Some(ReasonKind::Manual));
    assert_eq!(
        token.reason().unwrap().message(),
        Some("user closed the page")
    );
    assert!(slot.current().is_none());
    assert!(!slot.cancel("again"), "the slot is empty now");

    let next = slot.replace().disarm();
    assert!(!next.is_triggered(), "a slot can be reused after cancel");
    assert!(slot.cancel(ReasonKind::Signal));
    assert_eq!(kind(&next), Some(ReasonKind::Signal));
}

#[test]
fn cancel_of_an_already_triggered_current_token_reports_false_and_keeps_its_reason() {
    let slot = CancelSlot::new();
    let token = slot.replace().disarm();
    token.trigger_with("finished badly");
    assert!(!slot.cancel("late"));
    assert_eq!(token.reason().unwrap().message(), Some("finished badly"));
    assert!(slot.current().is_none());
}

#[test]
fn finish_clears_only_the_current_token_and_never_triggers() {
    let slot = CancelSlot::new();
    let old = slot.replace().disarm();
    let current = slot.replace().disarm();

    assert!(!slot.finish(&old), "a superseded token is not current");
    assert_eq!(
        slot.current(),
        Some(current.clone()),
        "finish of a stale token changes nothing"
    );
    assert!(!slot.finish(&CancelToken::new()));
    assert_eq!(slot.current(), Some(current.clone()));

    assert!(slot.finish(&current));
    assert!(slot.current().is_none());
    assert!(!current.is_triggered(), "finishing is not cancelling");
    assert!(!slot.finish(&current), "already finished");

    let next = slot.replace().disarm();
    assert!(
        !current.is_triggered(),
        "a finished token is not superseded later"
    );
    assert!(!next.is_triggered());
}

#[test]
fn finish_with_a_clone_of_the_current_token_counts() {
    let slot = CancelSlot::new();
    let token = slot.replace().disarm();
    let clone = token.clone();
    assert!(slot.finish(&clone));
    assert!(slot.current().is_none());
}

#[test]
fn slot_with_parent_hands_out_children_that_the_parent_cancels() {
    let shutdown = CancelToken::named("shutdown");
    let slot = CancelSlot::with_parent(&shutdown);
    let old = slot.replace().disarm();
    let current = slot.replace().disarm();
    assert_eq!(kind(&old), Some(ReasonKind::Superseded));
    assert!(
        !shutdown.is_triggered(),
        "superseding a child never touches the parent"
    );

    shutdown.trigger_with("maintenance");
    assert!(current.is_triggered());
    assert_eq!(current.triggered_token(), Some(shutdown.clone()));
    assert_eq!(current.reason().unwrap().message(), Some("maintenance"));
    assert_eq!(
        kind(&old),
        Some(ReasonKind::Superseded),
        "first reason wins"
    );

    let after = slot.replace().disarm();
    assert!(
        after.is_triggered(),
        "a child of a triggered parent is born triggered"
    );
    assert_eq!(after.triggered_token(), Some(shutdown));
}

#[test]
fn concurrent_replace_leaves_exactly_the_current_token_untriggered() {
    const THREADS: usize = 8;
    // Scaled down only under valgrind, which runs the threads one at a time.
    let iterations = common::scaled(1000);
    let slot = CancelSlot::new();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let slot = slot.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                (0..iterations)
                    .map(|_| slot.replace().disarm())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let tokens: Vec<CancelToken> = common::within(common::LIMIT, move || {
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    assert_eq!(tokens.len(), THREADS * iterations);
    // Hashing a token hashes its identity, which interior mutability never changes.
    #[allow(clippy::mutable_key_type)]
    let distinct: HashSet<&CancelToken> = tokens.iter().collect();
    assert_eq!(
        distinct.len(),
        tokens.len(),
        "every replace returns its own token"
    );

    let current = slot.current().expect("the slot holds the last token");
    let untriggered: Vec<&CancelToken> = tokens.iter().filter(|t| !t.is_triggered()).collect();
    assert_eq!(
        untriggered,
        [&current],
        "exactly the current token is untriggered"
    );
    let not_superseded = tokens
        .iter()
        .filter(|t| **t != current)
        .filter(|t| kind(t) != Some(ReasonKind::Superseded))
        .count();
    assert_eq!(not_superseded, 0, "every other token is Superseded");
}

#[test]
fn slot_debug_does_not_deadlock() {
    let slot = CancelSlot::new();
    let _token = slot.replace().disarm();
    let text = format!("{slot:?}");
    assert!(text.contains("CancelSlot"), "{text}");
}

// ----- CancelRegistry -----

#[test]
fn register_len_and_contains_key() {
    let registry = CancelRegistry::new();
    assert!(registry.is_empty());
    let (a, _ra) = registry.register("a".to_string());
    let (b, _rb) = registry.register("a".to_string());
    let (c, rc) = registry.register("c".to_string());
    assert_eq!(registry.len(), 3);
    assert!(!registry.is_empty());
    assert!(registry.contains_key("a"));
    assert!(registry.contains_key("c"));
    assert!(!registry.contains_key("zzz"));
    assert_ne!(a, b, "each operation gets its own token");
    assert_eq!(rc.key(), "c");
    assert_eq!(rc.token(), &c);
    assert!(!a.is_triggered() && !b.is_triggered() && !c.is_triggered());
}

#[test]
fn dropping_a_registration_removes_its_entry_without_triggering() {
    let registry = CancelRegistry::new();
    let (first, first_reg) = registry.register(1u32);
    let (second, second_reg) = registry.register(1u32);
    drop(first_reg);
    assert_eq!(registry.len(), 1);
    assert!(
        registry.contains_key(&1),
        "the other operation under the key remains"
    );
    assert!(!first.is_triggered());

    drop(second_reg);
    assert_eq!(registry.len(), 0);
    assert!(!registry.contains_key(&1), "an empty key is removed");
    assert!(!second.is_triggered());
    assert_eq!(registry.cancel(&1, "late"), 0, "nothing left to cancel");
    assert!(!first.is_triggered() && !second.is_triggered());
}

#[test]
fn cancel_triggers_every_operation_under_the_key_and_removes_them() {
    let registry = CancelRegistry::new();
    let (a, _ra) = registry.register("user-1");
    let (b, _rb) = registry.register("user-1");
    let (c, _rc) = registry.register("user-2");

    assert_eq!(registry.cancel("user-1", "cancelled by the user"), 2);
    for token in [&a, &b] {
        assert_eq!(
            token.reason().unwrap().message(),
            Some("cancelled by the user")
        );
        assert_eq!(token.triggered_token(), Some(token.clone()));
    }
    assert!(!c.is_triggered());
    assert_eq!(registry.len(), 1);
    assert!(!registry.contains_key("user-1"));
    assert!(registry.contains_key("user-2"));
    assert_eq!(registry.cancel("user-1", "again"), 0);
    assert_eq!(registry.cancel("nobody", "x"), 0);
}

#[test]
fn cancel_counts_only_tokens_it_triggered_but_removes_all() {
    let registry = CancelRegistry::new();
    let (a, _ra) = registry.register(5u8);
    let (_b, _rb) = registry.register(5u8);
    a.trigger_with("on its own");
    assert_eq!(registry.cancel(&5, ReasonKind::Superseded), 1);
    assert_eq!(a.reason().unwrap().message(), Some("on its own"));
    assert!(registry.is_empty());
}

#[test]
fn a_stale_registration_does_not_remove_a_newer_one_under_the_same_key() {
    let registry = CancelRegistry::new();
    let (old, old_reg) = registry.register("job");
    assert_eq!(registry.cancel("job", "restart"), 1);
    assert!(old.is_triggered());

    let (new, new_reg) = registry.register("job");
    drop(old_reg);
    assert_eq!(
        registry.len(),
        1,
        "the stale guard removed the newer registration"
    );
    assert!(registry.contains_key("job"));
    assert!(!new.is_triggered());

    assert_eq!(registry.cancel("job", "now"), 1);
    assert!(new.is_triggered());
    drop(new_reg);
    assert!(registry.is_empty());
}

#[test]
fn cancel_all_triggers_everything_and_empties_the_registry() {
    let registry = CancelRegistry::new();
    let (a, _ra) = registry.register(1);
    let (b, _rb) = registry.register(2);
    let (c, _rc) = registry.register(2);
    assert_eq!(registry.cancel_all("shutting down"), 3);
    for token in [&a, &b, &c] {
        assert_eq!(token.reason().unwrap().message(), Some("shutting down"));
    }
    assert!(registry.is_empty());
    assert!(!registry.contains_key(&2));
    assert_eq!(registry.cancel_all("again"), 0);

    let (d, rd) = registry.register(3);
    assert_eq!(registry.len(), 1, "usable after cancel_all");
    drop(rd);
    assert!(registry.is_empty());
    assert!(!d.is_triggered());
}

#[test]
fn registry_with_parent_hands_out_children() {
    let shutdown = CancelToken::named("shutdown");
    let registry = CancelRegistry::with_parent(&shutdown);
    let (a, _ra) = registry.register('a');
    let (b, _rb) = registry.register('b');
    assert_eq!(registry.cancel(&'a', "just a"), 1);
    assert!(
        !shutdown.is_triggered(),
        "cancelling by key never touches the parent"
    );
    assert!(!b.is_triggered());

    shutdown.trigger_with("maintenance");
    assert_eq!(b.triggered_token(), Some(shutdown.clone()));
    assert_eq!(a.reason().unwrap().message(), Some("just a"));
    let (late, _rl) = registry.register('c');
    assert!(
        late.is_triggered(),
        "born triggered under a triggered parent"
    );
}

#[test]
fn register_and_drop_churn_leaves_the_registry_empty() {
    let registry = CancelRegistry::new();
    let cycles = common::scaled(100_000).max(1_000) as u32;
    for i in 0..cycles {
        let (token, registration) = registry.register(i % 64);
        assert_eq!(registration.token(), &token);
        drop(registration);
    }
    assert_eq!(registry.len(), 0);
    assert!(registry.is_empty());
    for key in 0..64 {
        assert!(!registry.contains_key(&key));
    }
}

#[test]
fn clones_share_the_map() {
    let registry = CancelRegistry::new();
    let other = registry.clone();
    let (token, registration) = registry.register("shared");
    assert_eq!(other.len(), 1);
    assert!(other.contains_key("shared"));
    assert_eq!(other.cancel("shared", "via the clone"), 1);
    assert_eq!(token.reason().unwrap().message(), Some("via the clone"));
    assert!(registry.is_empty());
    drop(registration);

    let (_t, r) = other.register("back");
    assert!(registry.contains_key("back"));
    drop(r);
    assert!(registry.is_empty());
}

#[test]
fn a_registration_outliving_its_registry_is_harmless() {
    let registry = CancelRegistry::new();
    let (token, registration) = registry.register(1u64);
    drop(registry);
    drop(registration);
    assert!(!token.is_triggered());
}

#[test]
fn concurrent_register_cancel_and_drop_keep_len_consistent() {
    let registry: CancelRegistry<u32> = CancelRegistry::new();
    let per_thread = common::scaled(2_000).max(200) as u32;
    let handles: Vec<_> = (0..4u32)
        .map(|t| {
            let registry = registry.clone();
            thread::spawn(move || {
                for i in 0..per_thread {
                    let (_token, registration) = registry.register(i % 8);
                    if i % 3 == t % 3 {
                        registry.cancel(&(i % 8), "churn");
                    }
                    drop(registration);
                }
            })
        })
        .collect();
    common::within(common::LIMIT, move || {
        for handle in handles {
            handle.join().unwrap();
        }
    });
    assert_eq!(registry.len(), 0);
    for key in 0..8 {
        assert!(!registry.contains_key(&key));
    }
}
