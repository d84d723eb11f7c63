//! The synchronisation primitives the crate is built on, gathered in one place so that the loom
//! model checker can swap them (`--cfg cancel_token_loom`, see `tests/loom.rs`).
//!
//! `Arc` and `Weak` are always std's: loom's `Arc` has no `Weak`, and reference counting is not
//! what the models check. The deadline timer's own statics use std directly; the models do not
//! involve deadlines.

pub(crate) use std::sync::{Arc, Weak};

#[cfg(not(cancel_token_loom))]
pub(crate) use std::{
    sync::{
        atomic::{fence, AtomicBool, AtomicUsize, Ordering},
        Condvar, Mutex, MutexGuard, OnceLock,
    },
    thread::{current as current_thread, yield_now, ThreadId},
};

#[cfg(cancel_token_loom)]
pub(crate) use loom::{
    sync::{
        atomic::{fence, AtomicBool, AtomicUsize, Ordering},
        Condvar, Mutex, MutexGuard,
    },
    // Loom's threads share one OS thread, so identity must come from loom too.
    thread::{current as current_thread, yield_now, ThreadId},
};

#[cfg(cancel_token_loom)]
pub(crate) use self::model::OnceLock;

/// Locks `mutex`, ignoring poisoning.
///
/// The crate never runs user code while one of its locks is held, so a poisoned lock can only
/// mean an allocation failure inside the critical section; the protected data is still
/// consistent, and refusing to go on would make a token unusable forever.
#[inline]
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A `OnceLock` whose publication loom can see.
///
/// The value lives in a std `OnceLock` (loom runs one thread at a time, so that cell never
/// blocks), and a loom atomic says whether it is visible yet: loom explores every interleaving
/// around the moment a value becomes visible, which is what the crate's protocols depend on.
#[cfg(cancel_token_loom)]
mod model {
    use loom::sync::atomic::{AtomicBool, Ordering};

    pub(crate) struct OnceLock<T> {
        value: std::sync::OnceLock<T>,
        visible: AtomicBool,
    }

    impl<T> OnceLock<T> {
        pub(crate) fn new() -> Self {
            OnceLock {
                value: std::sync::OnceLock::new(),
                visible: AtomicBool::new(false),
            }
        }

        pub(crate) fn get(&self) -> Option<&T> {
            if self.visible.load(Ordering::Acquire) {
                self.value.get()
            } else {
                None
            }
        }

        pub(crate) fn set(&self, value: T) -> Result<(), T> {
            let result = self.value.set(value);
            // A refused value means another thread's value is in place: make it visible too.
            self.visible.store(true, Ordering::Release);
            result
        }

        pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
            let value = self.value.get_or_init(init);
            self.visible.store(true, Ordering::Release);
            value
        }

        pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
            self.value.get_mut()
        }
    }

    impl<T> Default for OnceLock<T> {
        fn default() -> Self {
            OnceLock::new()
        }
    }

    impl<T> From<T> for OnceLock<T> {
        fn from(value: T) -> Self {
            OnceLock {
                value: std::sync::OnceLock::from(value),
                visible: AtomicBool::new(true),
            }
        }
    }
}
