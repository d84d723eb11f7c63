//! Callbacks run when a token triggers ([`CancelToken::on_cancel`]) and the guard that
//! unregisters them.

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
// Registration order is a plain counter, outside what the loom models check.
use std::sync::atomic::{AtomicU64, Ordering};

use crate::reason::Reason;
use crate::sync::{current_thread, lock, Arc, Condvar, Mutex, ThreadId};
use crate::walk::FollowUp;
use crate::CancelToken;

/// Registration order across all tokens, so that callbacks collected from a whole tree run in
/// the order they were registered.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

/// A registered callback, as the node sees it. Unwind safe because the user's closure sits
/// behind a mutex that is only held while the state changes, never while the closure runs.
pub(crate) trait Callback: Send + Sync + UnwindSafe + RefUnwindSafe {
    /// Registration order.
    fn seq(&self) -> u64;
    /// Runs the callback unless it already ran or was cancelled. An internal callback may hand
    /// back a trigger for the walk that runs it to make (see [`FollowUp`]).
    fn fire(&self, reason: &Reason) -> Option<FollowUp>;
    /// Makes sure the callback never runs after this returns (except on the thread that is
    /// running it right now, which is the callback itself dropping its own guard).
    fn cancel(&self);
}

struct Entry<F> {
    seq: u64,
    state: Mutex<State<F>>,
    /// Signalled when a running callback finishes, for a guard dropped on another thread.
    finished: Condvar,
}

enum State<F> {
    Pending(F),
    Running(ThreadId),
    Finished,
}

/// The next number in registration order.
pub(crate) fn next_seq() -> u64 {
    NEXT_SEQ.fetch_add(1, Ordering::Relaxed)
}

impl<F> Entry<F> {
    fn new(f: F) -> Self {
        Entry {
            seq: next_seq(),
            state: Mutex::new(State::Pending(f)),
            finished: Condvar::new(),
        }
    }
}

impl<F: FnOnce(&Reason) + Send> Callback for Entry<F> {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn fire(&self, reason: &Reason) -> Option<FollowUp> {
        let f = {
            let mut state = lock(&self.state);
            match std::mem::replace(&mut *state, State::Running(current_thread().id())) {
                State::Pending(f) => f,
                other => {
                    *state = other;
                    return None;
                }
            }
        };
        // Marks the entry finished even if `f` panics, so a guard waiting on another thread
        // is released.
        struct Finish<'a, F>(&'a Entry<F>);
        impl<F> Drop for Finish<'_, F> {
            fn drop(&mut self) {
                *lock(&self.0.state) = State::Finished;
                self.0.finished.notify_all();
            }
        }
        let _finish = Finish(self);
        f(reason);
        None
    }

    fn cancel(&self) {
        let mut state = lock(&self.state);
        match std::mem::replace(&mut *state, State::Finished) {
            State::Pending(f) => {
                drop(state);
                // The user's closure is dropped outside the lock: its captures may run code.
                drop(f);
            }
            State::Running(thread) => {
                *state = State::Running(thread);
                if thread == current_thread().id() {
                    return;
                }
                while !matches!(*state, State::Finished) {
                    state = self
                        .finished
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
            State::Finished => {}
        }
    }
}

/// Wraps `f` for registration.
pub(crate) fn entry<F>(f: F) -> Arc<dyn Callback>
where
    F: FnOnce(&Reason) + Send + 'static,
{
    Arc::new(Entry::new(f))
}

/// Guard for a callback registered with [`CancelToken::on_cancel`]: dropping it unregisters
/// the callback.
///
/// If the guard is dropped before the token triggers, the callback never runs and is dropped
/// at once. If the callback is running on another thread at that moment, the drop waits for it
/// to return, so once the drop has returned the callback is either finished or will never run.
/// To keep the callback for the token's whole life instead, call
/// [`detach`](CallbackGuard::detach).
///
/// The guard holds a handle of its token, so a registered callback keeps its token (and the
/// token's links to its parents) alive.
///
/// # Blocking
///
/// Dropping the guard blocks while the callback is running on another thread. A callback that
/// drops its own guard does not wait for itself, but two callbacks on two threads that drop each
/// other's guards deadlock; don't do that.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use cancel_token::CancelToken;
///
/// let token = CancelToken::new();
/// let log = Arc::new(Mutex::new(Vec::new()));
///
/// let kept = token.on_cancel({
///     let log = log.clone();
///     move |reason| log.lock().unwrap().push(format!("kept: {reason}"))
/// });
/// let dropped = token.on_cancel({
///     let log = log.clone();
///     move |_| log.lock().unwrap().push("dropped".to_string())
/// });
/// drop(dropped); // unregistered: never runs
///
/// token.trigger_with("shutting down");
/// assert_eq!(*log.lock().unwrap(), ["kept: shutting down"]);
/// drop(kept);
/// ```
#[must_use = "dropping a CallbackGuard unregisters the callback at once; call `detach()` to keep it"]
pub struct CallbackGuard {
    token: CancelToken,
    registration: Option<(usize, Arc<dyn Callback>)>,
}

impl CallbackGuard {
    pub(crate) fn new(
        token: CancelToken,
        registration: Option<(usize, Arc<dyn Callback>)>,
    ) -> Self {
        CallbackGuard {
            token,
            registration,
        }
    }

    /// Keeps the callback registered for the rest of the token's life and lets go of the
    /// guard.
    ///
    /// The callback then runs when the token triggers, or is dropped unrun when the token's
    /// node is freed (its last handle gone and no descendant left to keep it linked).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let flag = ran.clone();
    /// token.on_cancel(move |_| flag.store(true, Ordering::SeqCst)).detach();
    ///
    /// token.trigger();
    /// assert!(ran.load(Ordering::SeqCst));
    /// ```
    pub fn detach(mut self) {
        self.registration = None;
    }

    /// The token this callback is registered on.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let guard = token.on_cancel(|_| {});
    /// assert_eq!(guard.token(), &token);
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// Whether the callback is still registered: not yet run, not detached.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let guard = token.on_cancel(|_| {});
    /// assert!(guard.is_pending());
    /// token.trigger();
    /// assert!(!guard.is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        self.registration.is_some() && !self.token.is_triggered()
    }
}

impl Drop for CallbackGuard {
    fn drop(&mut self) {
        if let Some((key, callback)) = self.registration.take() {
            callback.cancel();
            self.token.node().unregister_callback(key);
        }
    }
}

impl fmt::Debug for CallbackGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackGuard")
            .field("token", &self.token)
            .field("pending", &self.is_pending())
            .finish()
    }
}
