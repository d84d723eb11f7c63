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
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Condvar, Mutex, MutexGuard, OnceLock,
    },
    thread::{current as current_thread, ThreadId},
};

#[cfg(cancel_token_loom)]
pub(crate) use loom::{
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Condvar, Mutex, MutexGuard,
    },
    // Loom's threads share one OS thread, so identity must come from loom too.
    thread::{current as current_thread, ThreadId},
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

/// A `OnceLock` whose race loom can see.
///
/// The value lives in a std `OnceLock`, and a loom atomic holds the cell's state: empty, being
/// set by one thread, or set. Which thread wins is decided by a compare-and-swap on that atomic,
/// and a value becomes visible with a store to it, so loom explores every interleaving around
/// both moments, which is what the crate's protocols depend on. A thread that loses the race
/// while the winner is still writing yields until the value is there, as a std `OnceLock` blocks.
#[cfg(cancel_token_loom)]
mod model {
    use loom::sync::atomic::{AtomicUsize, Ordering};

    const EMPTY: usize = 0;
    const SETTING: usize = 1;
    const SET: usize = 2;

    pub(crate) struct OnceLock<T> {
        value: std::sync::OnceLock<T>,
        state: AtomicUsize,
    }

    impl<T> OnceLock<T> {
        pub(crate) fn new() -> Self {
            OnceLock {
                value: std::sync::OnceLock::new(),
                state: AtomicUsize::new(EMPTY),
            }
        }

        pub(crate) fn get(&self) -> Option<&T> {
            if self.state.load(Ordering::Acquire) == SET {
                self.value.get()
            } else {
                None
            }
        }

        /// Claims the cell: `true` if this thread must write the value; `false` once another
        /// thread's value is visible.
        fn claim(&self) -> bool {
            loop {
                match self.state.compare_exchange(
                    EMPTY,
                    SETTING,
                    Ordering::Acquire,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return true,
                    Err(SET) => return false,
                    Err(_) => loom::thread::yield_now(),
                }
            }
        }

        fn publish(&self) {
            self.state.store(SET, Ordering::Release);
        }

        pub(crate) fn set(&self, value: T) -> Result<(), T> {
            if !self.claim() {
                return Err(value);
            }
            let result = self.value.set(value);
            self.publish();
            result
        }

        pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
            if self.claim() {
                let _ = self.value.set(init());
                self.publish();
            }
            self.value.get().expect("a published cell holds a value")
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
                state: AtomicUsize::new(SET),
            }
        }
    }
}
