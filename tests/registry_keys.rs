//! A registry's keys are user values: cloning and dropping them runs user code, which must
//! not run under the registry's lock.

use cancel_token::CancelRegistry;
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

static REGISTRY: OnceLock<CancelRegistry<Key>> = OnceLock::new();

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key(u32);

impl Drop for Key {
    fn drop(&mut self) {
        // User code in a key's Drop that looks at the registry.
        if let Some(registry) = REGISTRY.get() {
            let _ = registry.len();
        }
    }
}

/// A key's `Drop` is user code: the registry drops a stored key only after releasing its
/// lock, so a key whose `Drop` looks at the registry does not deadlock.
#[test]
fn a_keys_drop_runs_under_the_registry_lock() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let registry = REGISTRY.get_or_init(CancelRegistry::new);
        let (_token, registration) = registry.register(Key(1));
        drop(registration); // removes the last operation under Key(1): drops the stored key
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(5)).is_ok(),
        "Registration::drop deadlocked: the stored key was dropped under the registry lock"
    );
}

/// A registry whose key type looks at the registry when cloned and when dropped, for the
/// removals that a token's trigger makes (through a callback on the token).
static WATCHED: OnceLock<CancelRegistry<Watched>> = OnceLock::new();

#[derive(PartialEq, Eq, Hash)]
struct Watched(u32);

impl Clone for Watched {
    fn clone(&self) -> Self {
        if let Some(registry) = WATCHED.get() {
            let _ = registry.len();
        }
        Watched(self.0)
    }
}

impl std::fmt::Display for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "watched-{}", self.0)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(registry) = WATCHED.get() {
            let _ = registry.len();
        }
    }
}

/// A trigger removes the entry from the triggering thread: the stored key and the callback's
/// copy of it are dropped after the registry's lock is released, by a direct trigger and by a
/// parent's alike, and `register_named` clones keys outside the lock too.
#[test]
fn keys_removed_by_a_trigger_are_dropped_outside_the_registry_lock() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let parent = cancel_token::CancelToken::new();
        let registry = WATCHED.get_or_init(|| CancelRegistry::with_parent(&parent));
        let (direct, _r1) = registry.register(Watched(1));
        let (_by_parent, _r2) = registry.register(Watched(2));
        let (named, _r3) = registry.register_named(Watched(3));
        assert_eq!(named.name(), Some("watched-3"));
        direct.trigger(); // removes Watched(1) through the callback
        parent.trigger(); // removes the others
        let _ = tx.send(registry.len());
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).ok(),
        Some(0),
        "a removal by trigger deadlocked: a key was cloned or dropped under the registry lock"
    );
}

mod hash_and_eq_of_keys {
    //! A key's `Hash` and `Eq` are user code too: they run with no registry lock held, so a
    //! key that looks at the registry from them (logging its size, say) cannot deadlock, and
    //! one that panics leaves the registry as it was.
    use std::cell::Cell;
    use std::hash::{Hash, Hasher};

    use cancel_token::CancelRegistry;

    thread_local! {
        /// The registry a key's `Hash` and `Eq` look at, on this thread.
        static WATCHED: std::cell::RefCell<Option<CancelRegistry<Key>>> =
            const { std::cell::RefCell::new(None) };
        static PANIC: Cell<bool> = const { Cell::new(false) };
    }

    #[derive(Clone, Debug)]
    struct Key(u32);

    fn look() {
        WATCHED.with(|watched| {
            if let Some(registry) = watched.borrow().as_ref() {
                let _ = registry.len();
                let _ = registry.is_empty();
            }
        });
        if PANIC.with(Cell::get) {
            panic!("a key's Hash panicked");
        }
    }

    impl Hash for Key {
        fn hash<H: Hasher>(&self, state: &mut H) {
            look();
            self.0.hash(state);
        }
    }

    impl PartialEq for Key {
        fn eq(&self, other: &Key) -> bool {
            look();
            self.0 == other.0
        }
    }

    impl Eq for Key {}

    #[test]
    fn hash_and_eq_that_use_the_registry_do_not_deadlock() {
        // Bounded: a deadlock fails the test instead of hanging it.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let registry = CancelRegistry::new();
            WATCHED.with(|watched| *watched.borrow_mut() = Some(registry.clone()));
            let (a, registration) = registry.register(Key(1));
            let (_b, _kept) = registry.register(Key(2));
            assert!(registry.contains_key(&Key(1)));
            assert_eq!(registry.cancel(&Key(1), "by key"), 1);
            assert!(a.is_triggered());
            drop(registration);
            assert_eq!(registry.len(), 1);
            WATCHED.with(|watched| *watched.borrow_mut() = None);
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a key's Hash or Eq ran under the registry's lock: deadlock");
    }

    #[test]
    fn a_panicking_hash_leaves_the_registry_as_it_was() {
        let registry = CancelRegistry::new();
        let (_kept, _registration) = registry.register(Key(1));
        PANIC.with(|panic| panic.set(true));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(registry.register(Key(2)));
        }));
        let cancel = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            registry.cancel(&Key(1), "x")
        }));
        PANIC.with(|panic| panic.set(false));
        assert!(outcome.is_err() && cancel.is_err());
        assert_eq!(registry.len(), 1, "nothing half-registered, nothing lost");
        assert!(registry.contains_key(&Key(1)));
        assert!(!registry.contains_key(&Key(2)));
    }
}
