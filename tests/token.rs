//! The trigger, the reason, `Cancelled`, names and the identity of a single token.

mod common;

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use cancel_token::{
    CallbackGuard, CancelToken, Cancelled, DropGuard, Reason, ReasonKind, Wait, WaitOwned,
};

const ALL_KINDS: [ReasonKind; 6] = [
    ReasonKind::Manual,
    ReasonKind::Timeout,
    ReasonKind::Dropped,
    ReasonKind::Superseded,
    ReasonKind::Signal,
    ReasonKind::Condition,
];

fn hash_of(token: &CancelToken) -> u64 {
    let mut hasher = DefaultHasher::new();
    token.hash(&mut hasher);
    hasher.finish()
}

// ---------------------------------------------------------------------------------------------
// Trigger

#[test]
fn a_new_token_is_not_triggered() {
    let token = CancelToken::new();
    assert!(!token.is_triggered());
    assert_eq!(token.reason(), None);
    assert_eq!(token.triggered_token(), None);
    assert!(token.raise_if_triggered().is_ok());
}

#[test]
fn trigger_is_idempotent() {
    let token = CancelToken::new();
    assert!(token.trigger(), "the first trigger triggers");
    assert!(token.is_triggered());
    assert!(!token.trigger(), "a second trigger changes nothing");
    assert!(!token.trigger_with("again"));
    assert!(!token.trigger_with(ReasonKind::Timeout));
    assert!(token.is_triggered());
    assert_eq!(token.reason(), Some(Reason::new(ReasonKind::Manual)));
}

#[test]
fn exactly_one_of_many_concurrent_triggers_wins_and_everyone_sees_its_reason() {
    const THREADS: usize = 16;
    for _round in 0..50 {
        let token = CancelToken::named("contended");
        let start = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|i| {
                let token = token.clone();
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    let won = token.trigger_with(format!("thread {i}"));
                    // Whether it won or lost, the token is triggered once the call returns.
                    let seen = token
                        .reason()
                        .expect("triggered after trigger_with returned");
                    let origin = token.triggered_token().expect("triggered");
                    (i, won, seen, origin)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();

        let winners: Vec<usize> = results.iter().filter(|r| r.1).map(|r| r.0).collect();
        assert_eq!(
            winners.len(),
            1,
            "exactly one trigger returns true: {winners:?}"
        );
        let expected = format!("thread {}", winners[0]);
        for (i, _, seen, origin) in &results {
            assert_eq!(
                seen.message(),
                Some(expected.as_str()),
                "thread {i} saw another reason"
            );
            assert_eq!(seen.kind(), ReasonKind::Manual);
            assert_eq!(origin, &token);
        }
        assert_eq!(token.reason().unwrap().message(), Some(expected.as_str()));
    }
}

#[test]
fn the_first_reason_wins() {
    let token = CancelToken::new();
    assert!(token.trigger_with("first"));
    assert!(!token.trigger_with("second"));
    assert!(!token.trigger_with(ReasonKind::Timeout));
    assert!(!token.trigger());
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Manual);
    assert_eq!(reason.message(), Some("first"));
}

#[test]
fn trigger_without_a_reason_records_manual_without_a_message() {
    let token = CancelToken::new();
    token.trigger();
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Manual);
    assert_eq!(reason.message(), None);
    assert_eq!(reason, Reason::default());
}

#[test]
fn trigger_with_accepts_str_string_kind_and_reason() {
    let from_str = CancelToken::new();
    from_str.trigger_with("a str");
    assert_eq!(from_str.reason().unwrap().message(), Some("a str"));

    let from_string = CancelToken::new();
    from_string.trigger_with(String::from("a string"));
    assert_eq!(from_string.reason().unwrap().message(), Some("a string"));

    let from_kind = CancelToken::new();
    from_kind.trigger_with(ReasonKind::Superseded);
    assert_eq!(
        from_kind.reason(),
        Some(Reason::new(ReasonKind::Superseded))
    );

    let from_reason = CancelToken::new();
    from_reason.trigger_with(Reason::with_message(ReasonKind::Signal, "SIGTERM"));
    let reason = from_reason.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Signal);
    assert_eq!(reason.message(), Some("SIGTERM"));
}

#[test]
fn the_reason_is_never_missing_when_the_flag_is_seen() {
    const OBSERVERS: usize = 3;
    for round in 0..200 {
        let token = CancelToken::new();
        let child = token.child();
        let start = Arc::new(Barrier::new(OBSERVERS + 1));
        let observers: Vec<_> = (0..OBSERVERS)
            .map(|i| {
                let start = Arc::clone(&start);
                // Half the observers watch the token, half a descendant reached by propagation.
                let watched = if i % 2 == 0 {
                    token.clone()
                } else {
                    child.clone()
                };
                thread::spawn(move || {
                    start.wait();
                    while !watched.is_triggered() {
                        std::hint::spin_loop();
                    }
                    let reason = watched.reason();
                    let origin = watched.triggered_token();
                    let raised = watched.raise_if_triggered();
                    (reason, origin, raised)
                })
            })
            .collect();
        start.wait();
        token.trigger_with(format!("round {round}"));
        for observer in observers {
            let (reason, origin, raised) = common::within(common::LIMIT, move || {
                observer.join().expect("observer panicked")
            });
            let reason = reason.expect("triggered without a reason");
            assert_eq!(reason.message(), Some(format!("round {round}").as_str()));
            assert_eq!(origin.expect("triggered without an origin"), token);
            assert_eq!(raised.unwrap_err().reason(), &reason);
        }
    }
}

#[test]
fn raise_if_triggered_is_ok_until_triggered_then_err() {
    let token = CancelToken::named("job");
    assert_eq!(token.raise_if_triggered(), Ok(()));
    token.trigger_with("stop");
    let err = token.raise_if_triggered().unwrap_err();
    assert_eq!(err.reason().message(), Some("stop"));
    assert_eq!(err.kind(), ReasonKind::Manual);
    assert_eq!(err.token(), &token);
    assert_eq!(
        token.raise_if_triggered(),
        Err(err),
        "raised again, the same error"
    );
}

// ---------------------------------------------------------------------------------------------
// Cancelled

#[test]
fn cancelled_display_names_the_token_that_fired_and_the_message() {
    let a = CancelToken::named("a");
    let b = CancelToken::named("b");
    let request = a.chain(&b);
    b.trigger_with("user clicked stop");
    let err = request.raise_if_triggered().unwrap_err();
    assert_eq!(
        err.to_string(),
        "cancellation requested by token b: user clicked stop"
    );
    assert_eq!(err.token(), &b);
}

#[test]
fn cancelled_display_for_unnamed_tokens() {
    let with_message = CancelToken::new();
    with_message.trigger_with("user clicked stop");
    assert_eq!(
        with_message.raise_if_triggered().unwrap_err().to_string(),
        "cancellation requested: user clicked stop"
    );

    let plain = CancelToken::new();
    plain.trigger();
    assert_eq!(
        plain.raise_if_triggered().unwrap_err().to_string(),
        "cancellation requested"
    );
}

#[test]
fn cancelled_display_for_a_kind_without_a_message() {
    let named = CancelToken::named("fetch");
    named.trigger_with(ReasonKind::Timeout);
    assert_eq!(
        named.raise_if_triggered().unwrap_err().to_string(),
        "cancellation requested by token fetch: deadline elapsed"
    );

    let manual = CancelToken::named("fetch");
    manual.trigger();
    assert_eq!(
        manual.raise_if_triggered().unwrap_err().to_string(),
        "cancellation requested by token fetch"
    );

    for kind in ALL_KINDS {
        let token = CancelToken::new();
        token.trigger_with(kind);
        let text = token.raise_if_triggered().unwrap_err().to_string();
        assert!(
            text.starts_with("cancellation requested"),
            "{kind:?}: {text}"
        );
        assert!(
            !text.ends_with('.'),
            "lowercase, no trailing period: {text}"
        );
        if kind != ReasonKind::Manual {
            assert_eq!(
                text,
                format!("cancellation requested: {}", Reason::new(kind))
            );
        }
    }
}

#[test]
fn cancelled_token_is_the_origin_of_the_trigger() {
    let root = CancelToken::named("root");
    let other = CancelToken::named("other");
    let leaf = root.child().chain(&other).child();
    root.trigger_with("root stopped");
    let err = leaf.raise_if_triggered().unwrap_err();
    assert_eq!(err.token(), &root);
    assert_ne!(err.token(), &leaf);
    assert_eq!(err.reason().message(), Some("root stopped"));
    assert_eq!(
        err.to_string(),
        "cancellation requested by token root: root stopped"
    );
}

#[test]
fn cancelled_is_a_cloneable_std_error() {
    let token = CancelToken::named("job");
    token.trigger_with("stop");
    let err = token.raise_if_triggered().unwrap_err();
    let copy = err.clone();
    assert_eq!(copy, err);
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    assert_eq!(
        boxed.to_string(),
        "cancellation requested by token job: stop"
    );
    assert!(boxed.source().is_none());
    let debug = format!("{copy:?}");
    assert!(debug.contains("job") && debug.contains("stop"), "{debug}");
}

#[test]
fn cancelled_into_io_error_is_never_interrupted_and_round_trips() {
    for kind in ALL_KINDS {
        let token = CancelToken::named("io");
        token.trigger_with(kind);
        let cancelled = token.raise_if_triggered().unwrap_err();
        let err: io::Error = cancelled.clone().into();
        assert_ne!(err.kind(), io::ErrorKind::Interrupted, "{kind:?}");
        let expected = if kind == ReasonKind::Timeout {
            io::ErrorKind::TimedOut
        } else {
            io::ErrorKind::Other
        };
        assert_eq!(err.kind(), expected, "{kind:?}");
        assert_eq!(Cancelled::from_io_error(&err), Some(&cancelled));
        assert_eq!(err.to_string(), cancelled.to_string());
    }
}

#[test]
fn cancelled_from_io_error_ignores_other_errors() {
    assert!(Cancelled::from_io_error(&io::Error::other("disk full")).is_none());
    assert!(Cancelled::from_io_error(&io::Error::from(io::ErrorKind::TimedOut)).is_none());
}

#[test]
fn cancelled_converts_with_the_question_mark_operator() {
    fn read(token: &CancelToken) -> io::Result<u32> {
        token.raise_if_triggered()?;
        Ok(1)
    }
    let token = CancelToken::new();
    assert_eq!(read(&token).unwrap(), 1);
    token.trigger_with(ReasonKind::Timeout);
    let err = read(&token).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(Cancelled::from_io_error(&err).unwrap().token(), &token);
}

// ---------------------------------------------------------------------------------------------
// Reason

#[test]
fn reason_from_str_and_string_is_manual_with_that_message() {
    let from_str = Reason::from("stop");
    assert_eq!(from_str.kind(), ReasonKind::Manual);
    assert_eq!(from_str.message(), Some("stop"));

    let from_string = Reason::from(String::from("stop"));
    assert_eq!(from_string, from_str);
}

#[test]
fn reason_from_kind_has_no_message() {
    for kind in ALL_KINDS {
        let reason = Reason::from(kind);
        assert_eq!(reason.kind(), kind);
        assert_eq!(reason.message(), None);
        assert_eq!(reason, Reason::new(kind));
    }
}

#[test]
fn reason_display_is_the_message_or_a_description_of_the_kind() {
    assert_eq!(
        Reason::from("user clicked stop").to_string(),
        "user clicked stop"
    );
    assert_eq!(
        Reason::with_message(ReasonKind::Timeout, "slow").to_string(),
        "slow"
    );
    assert_eq!(
        Reason::new(ReasonKind::Timeout).to_string(),
        "deadline elapsed"
    );
    let mut descriptions = HashSet::new();
    for kind in ALL_KINDS {
        let text = Reason::new(kind).to_string();
        assert!(!text.is_empty());
        assert!(!text.ends_with('.'), "{text}");
        assert!(
            descriptions.insert(text),
            "every kind has its own description"
        );
    }
}

#[test]
fn reason_kind_display_is_a_short_lowercase_name() {
    assert_eq!(ReasonKind::Manual.to_string(), "manual");
    assert_eq!(ReasonKind::Timeout.to_string(), "timeout");
    assert_eq!(ReasonKind::Dropped.as_str(), "dropped");
    for kind in ALL_KINDS {
        assert_eq!(kind.to_string(), kind.as_str());
        assert_eq!(kind.as_str(), kind.as_str().to_lowercase());
    }
}

#[test]
fn reason_clone_eq_debug_and_default() {
    let reason = Reason::with_message(ReasonKind::Signal, "SIGINT");
    assert_eq!(reason.clone(), reason);
    assert_ne!(reason, Reason::new(ReasonKind::Signal));
    assert_ne!(reason, Reason::with_message(ReasonKind::Manual, "SIGINT"));
    let debug = format!("{reason:?}");
    assert!(
        debug.contains("Signal") && debug.contains("SIGINT"),
        "{debug}"
    );
    assert_eq!(Reason::default().kind(), ReasonKind::Manual);
    assert_eq!(Reason::default().message(), None);
}

// ---------------------------------------------------------------------------------------------
// Names, Display, Debug

#[test]
fn names() {
    assert_eq!(CancelToken::new().name(), None);
    assert_eq!(CancelToken::default().name(), None);
    assert_eq!(CancelToken::named("static").name(), Some("static"));
    assert_eq!(
        CancelToken::named(String::from("owned")).name(),
        Some("owned")
    );
    let parent = CancelToken::named("parent");
    assert_eq!(parent.child_named("child").name(), Some("child"));
    assert_eq!(
        parent.child().name(),
        None,
        "a child does not take its parent's name"
    );
}

#[test]
fn display_of_a_token_is_its_name() {
    assert_eq!(CancelToken::named("request 42").to_string(), "request 42");
    assert_eq!(CancelToken::new().to_string(), "<unnamed>");
}

#[test]
fn debug_shows_the_name_and_the_triggered_state() {
    let token = CancelToken::named("download");
    let before = format!("{token:?}");
    assert!(before.contains("download"), "{before}");
    assert!(before.contains("triggered: false"), "{before}");

    token.trigger_with("user clicked stop");
    let after = format!("{token:?}");
    assert!(after.contains("download"), "{after}");
    assert!(after.contains("triggered: true"), "{after}");
    assert!(after.contains("user clicked stop"), "{after}");

    let unnamed = format!("{:?}", CancelToken::new());
    assert!(unnamed.contains("triggered: false"), "{unnamed}");
}

#[test]
fn debug_of_every_public_type_shows_its_token() {
    let token = CancelToken::named("shown");
    let guard = token.on_cancel(|_| {});
    assert!(format!("{guard:?}").contains("shown"));
    let wait = token.wait();
    assert!(format!("{wait:?}").contains("shown"));
    drop(wait);
    let owned = token.clone().wait_owned();
    assert!(format!("{owned:?}").contains("shown"));
    drop(owned);
    let drop_guard = token.clone().drop_guard();
    assert!(format!("{drop_guard:?}").contains("shown"));
    drop(drop_guard.disarm());
    drop(guard);
}

// ---------------------------------------------------------------------------------------------
// Identity

#[test]
fn clone_shares_the_token() {
    let token = CancelToken::new();
    let clone = token.clone();
    assert!(clone.trigger_with("via the clone"));
    assert!(token.is_triggered());
    assert_eq!(token.reason().unwrap().message(), Some("via the clone"));
    assert!(!token.trigger(), "the original sees the clone's trigger");
    assert_eq!(token.triggered_token(), Some(clone));
}

#[test]
fn eq_and_hash_compare_identity() {
    let a = CancelToken::named("same");
    let b = CancelToken::named("same");
    assert_ne!(a, b, "two tokens with the same name are different tokens");
    let a2 = a.clone();
    assert_eq!(a, a2);
    assert_eq!(hash_of(&a), hash_of(&a2));

    a.trigger();
    b.trigger();
    assert_ne!(a, b, "two triggered tokens are still different tokens");
    assert_eq!(a, a2);
    assert_ne!(a, a.child());
}

#[test]
// The lint sees the token's interior state; `Hash` and `Eq` only use its identity.
#[allow(clippy::mutable_key_type)]
fn a_hash_set_dedups_clones() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    let set: HashSet<CancelToken> = [a.clone(), b.clone(), a.clone(), b.clone(), a.clone()]
        .into_iter()
        .collect();
    assert_eq!(set.len(), 2);
    assert!(set.contains(&a));
    assert!(set.contains(&b));
    assert!(!set.contains(&CancelToken::new()));
}

#[test]
fn default_is_a_new_untriggered_token() {
    let token = CancelToken::default();
    assert!(!token.is_triggered());
    assert_ne!(token, CancelToken::default());
    assert!(token.trigger());
}

#[test]
fn auto_traits() {
    fn all<T: Send + Sync + Unpin + UnwindSafe + RefUnwindSafe + 'static>() {}
    fn send_sync_unpin<T: Send + Sync + Unpin + 'static>() {}
    fn send_static_unpin<T: Send + Unpin + 'static>() {}
    fn borrowed<T: Send + Sync + Unpin + UnwindSafe + RefUnwindSafe>() {}

    all::<CancelToken>();
    all::<Cancelled>();
    all::<Reason>();
    all::<ReasonKind>();
    all::<WaitOwned>();
    all::<DropGuard>();
    // Not `UnwindSafe`: the guard holds an `Arc<dyn Callback>` whose trait object does not
    // promise `RefUnwindSafe` (see the report; asserting it here would not compile).
    send_sync_unpin::<CallbackGuard>();
    send_static_unpin::<WaitOwned>();
    borrowed::<Wait<'_>>();
}

/// Whether `T: UnwindSafe + RefUnwindSafe`, answered at run time so that a missing impl fails
/// one test instead of the whole file's compilation (inherent methods win over trait methods
/// when their bounds hold).
struct UnwindProbe<T>(std::marker::PhantomData<T>);

trait NotUnwindSafe {
    fn is_unwind_safe(&self) -> bool {
        false
    }
}

impl<T> NotUnwindSafe for UnwindProbe<T> {}

impl<T: UnwindSafe + RefUnwindSafe> UnwindProbe<T> {
    fn is_unwind_safe(&self) -> bool {
        true
    }
}

#[test]
fn callback_guard_is_unwind_safe() {
    assert!(
        UnwindProbe::<CancelToken>(std::marker::PhantomData).is_unwind_safe(),
        "the probe itself works"
    );
    assert!(
        !UnwindProbe::<std::cell::Cell<u8>>(std::marker::PhantomData).is_unwind_safe(),
        "the probe itself works"
    );
    assert!(
        UnwindProbe::<CallbackGuard>(std::marker::PhantomData).is_unwind_safe(),
        "CallbackGuard is not UnwindSafe + RefUnwindSafe: it holds an Arc<dyn Callback> and the \
         Callback trait does not require RefUnwindSafe"
    );
}

#[test]
fn a_token_is_one_pointer() {
    assert_eq!(
        std::mem::size_of::<CancelToken>(),
        std::mem::size_of::<usize>()
    );
    assert_eq!(
        std::mem::size_of::<Option<CancelToken>>(),
        std::mem::size_of::<usize>()
    );
}

#[test]
fn a_flag_set_from_another_handle_is_seen_without_locking() {
    // A cheap smoke test of the lock-free read: many readers spin on clones while one writer
    // triggers, and every reader terminates.
    let token = CancelToken::new();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let token = token.clone();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                while !token.is_triggered() && !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
                token.is_triggered()
            })
        })
        .collect();
    token.trigger();
    let seen = common::within(common::LIMIT, move || {
        readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .collect::<Vec<_>>()
    });
    stop.store(true, Ordering::Relaxed);
    assert!(seen.into_iter().all(|s| s));
}

/// Every kind of reason without a message survives the trip through the token's state word,
/// on the token itself, on its descendants, in the error, and in its callbacks.
#[test]
fn every_reason_kind_without_a_message_reaches_the_token_its_descendants_and_callbacks() {
    for kind in ALL_KINDS {
        let token = CancelToken::new();
        let child = token.child();
        let grandchild = child.child();
        let chained = CancelToken::new().chain(&grandchild);
        let heard = Arc::new(std::sync::Mutex::new(None));
        let log = Arc::clone(&heard);
        let _guard = chained.on_cancel(move |reason| *log.lock().unwrap() = Some(reason.clone()));
        assert!(token.trigger_with(kind));
        for tok in [&token, &child, &grandchild, &chained] {
            assert_eq!(tok.reason(), Some(Reason::new(kind)), "{kind}");
            let err = tok.raise_if_triggered().unwrap_err();
            assert_eq!(err.kind(), kind);
            assert_eq!(err.token(), &token);
        }
        assert_eq!(heard.lock().unwrap().clone(), Some(Reason::new(kind)));
        // Born triggered below it: the same reason and origin.
        assert_eq!(chained.child().reason(), Some(Reason::new(kind)));
        assert_eq!(chained.child().triggered_token().as_ref(), Some(&token));
    }
}
