//! The synchronisation primitives the crate is built on, gathered in one place so that a model
//! checker can later swap them without touching the logic that uses them.

pub(crate) use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

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
