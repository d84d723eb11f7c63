//! [`TaskTracker`]: counts the tasks and threads still running, and tells whoever waits when the
//! last one of them is done after the tracker was closed.
//!
//! The count and the "closed" flag share one atomic word, so tracking a task and finishing it
//! cost one atomic add each (plus the reference count of the handle the task keeps). Waiting is
//! built on a [`CancelToken`]: the tracker's *event*, triggered by whoever sees the tracker
//! closed and empty, so async and blocking waiters, wakers and the no-lock rules all come from
//! the token. An event that fired while the tracker is no longer closed and empty (a task came
//! in, or it was reopened) is spent, and the next waiter replaces it with a fresh one.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use super::tracked::{TrackedFuture, TrackerWait, TrackerWaitOwned};
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering};
use crate::CancelToken;

/// The low bit of the state word: the tracker is closed.
const CLOSED: usize = 1;
/// One task, in the state word.
const TASK: usize = 2;

/// Tracks running tasks and threads, so that a shutdown can wait for all of them.
///
/// [`track`](Self::track) wraps a future, which counts as a task while it lives (until it
/// completes or is dropped); [`enter`](Self::enter) returns a [`TrackerGuard`] that counts while
/// it lives, for a thread or a scope. [`wait`](Self::wait) (and its [owned](Self::wait_owned)
/// and [blocking](Self::wait_blocking) forms) finishes once the tracker is
/// [closed](Self::close) **and** no task is left. Closing only says "no more waiting for new
/// tasks"; tasks can still be tracked after it (they delay the waiters).
///
/// The tracker is runtime-agnostic: it spawns nothing, and a task finishing on any thread wakes
/// waiters on any executor, or blocked threads. It is the twin of tokio-util's `TaskTracker`,
/// plus blocking waits and guards for plain threads. Cloning gives another handle to the same
/// tracker.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::TaskTracker;
///
/// let tracker = TaskTracker::new();
/// for i in 0..4 {
///     let guard = tracker.enter();
///     std::thread::spawn(move || {
///         std::thread::sleep(Duration::from_millis(10 * i));
///         drop(guard); // this thread's work is done
///     });
/// }
/// tracker.close();
/// assert!(tracker.wait_blocking_timeout(Duration::from_secs(10)));
/// assert!(tracker.is_empty());
/// ```
///
/// With futures, on any executor:
///
/// ```
/// use cancel_token::TaskTracker;
///
/// # futures_lite::future::block_on(async {
/// let tracker = TaskTracker::new();
/// let task = tracker.track(async { 1 + 1 });
/// assert_eq!(tracker.len(), 1);
///
/// tracker.close();
/// assert_eq!(task.await, 2);
/// tracker.wait().await; // closed and empty
/// # });
/// ```
#[derive(Clone)]
pub struct TaskTracker {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// `CLOSED`, plus `TASK` for each task.
    state: AtomicUsize,
    /// Triggered once the tracker is seen closed and empty; replaced when it is reopened after
    /// that.
    event: Mutex<CancelToken>,
}

impl Inner {
    pub(super) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
    }

    /// Triggers the event if the tracker is (still) closed and empty. Checked under the event's
    /// lock, where `reopen` changes both, so a reopened tracker's new event never fires for the
    /// old closing.
    fn notify(&self) {
        let event = {
            let event = lock(&self.event);
            if !self.is_done() {
                return;
            }
            event.clone()
        };
        // Waiters are woken with no lock held.
        event.trigger_with("task tracker closed and empty");
    }

    /// The event to wait on. One that fired for an earlier "closed and empty" while the
    /// tracker is no longer both (a task came in, or it was reopened) is spent: it is replaced
    /// by a fresh one, under the lock where `notify` checks the state.
    pub(super) fn event(&self) -> CancelToken {
        let (current, spent) = {
            let mut event = lock(&self.event);
            let spent =
                (event.is_triggered() && !self.is_done()).then(|| std::mem::take(&mut *event));
            (event.clone(), spent)
        };
        // The spent event is released with no lock held.
        drop(spent);
        current
    }

    /// One task fewer; the last one out of a closed tracker notifies.
    #[inline]
    fn finish_task(&self) {
        if self.state.fetch_sub(TASK, Ordering::AcqRel) == CLOSED | TASK {
            self.notify();
        }
    }
}

impl TaskTracker {
    /// A new, open, empty tracker.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// assert!(!tracker.is_closed());
    /// assert!(tracker.is_empty());
    /// ```
    pub fn new() -> TaskTracker {
        TaskTracker {
            inner: Arc::new(Inner {
                state: AtomicUsize::new(0),
                event: Mutex::new(CancelToken::new()),
            }),
        }
    }

    /// Wraps `future` so that it counts as a task of this tracker until it completes or is
    /// dropped. The count starts now, not at the first poll.
    ///
    /// Spawn the result on any executor (it is `Send` and `'static` when `future` is), or
    /// await it in place.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// let task = tracker.track(async { "done" });
    /// assert_eq!(tracker.len(), 1);
    /// assert_eq!(futures_lite::future::block_on(task), "done");
    /// assert_eq!(tracker.len(), 0);
    /// ```
    pub fn track<F: Future>(&self, future: F) -> TrackedFuture<F> {
        TrackedFuture {
            future,
            guard: Some(self.enter()),
        }
    }

    /// A guard that counts as a task of this tracker while it lives: for a thread, a blocking
    /// job, or any scope that is not a future.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// let guard = tracker.enter();
    /// let worker = std::thread::spawn(move || {
    ///     let _guard = guard; // counted until this thread returns
    /// });
    /// tracker.close();
    /// tracker.wait_blocking();
    /// worker.join().unwrap();
    /// ```
    pub fn enter(&self) -> TrackerGuard {
        self.inner.state.fetch_add(TASK, Ordering::Relaxed);
        TrackerGuard {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Closes the tracker: from now on, waiters finish as soon as no task is left. Returns
    /// `true` if this call closed it (`false` if it was closed already).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// assert!(tracker.close());
    /// assert!(!tracker.close());
    /// assert!(tracker.is_closed());
    /// ```
    pub fn close(&self) -> bool {
        let previous = self.inner.state.fetch_or(CLOSED, Ordering::AcqRel);
        if previous == 0 {
            self.inner.notify();
        }
        previous & CLOSED == 0
    }

    /// Reopens a closed tracker: waiters wait again until it is closed (again) and empty.
    /// Waits that already finished stay finished. Returns `true` if this call reopened it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// tracker.close();
    /// assert!(tracker.reopen());
    /// assert!(!tracker.is_closed());
    /// assert!(!tracker.reopen());
    /// ```
    pub fn reopen(&self) -> bool {
        // Under the event's lock, so that a `notify` checking the state sees it open.
        let _event = lock(&self.inner.event);
        self.inner.state.fetch_and(!CLOSED, Ordering::AcqRel) & CLOSED != 0
    }

    /// Whether the tracker is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// assert!(!tracker.is_closed());
    /// tracker.close();
    /// assert!(tracker.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// The number of tasks (tracked futures and guards) alive now.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// let a = tracker.enter();
    /// let b = tracker.track(async {});
    /// assert_eq!(tracker.len(), 2);
    /// drop((a, b));
    /// assert!(tracker.is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.inner.state.load(Ordering::Acquire) / TASK
    }

    /// Whether no task is alive now.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// let guard = tracker.enter();
    /// assert!(!tracker.is_empty());
    /// drop(guard);
    /// assert!(tracker.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A future that finishes once the tracker is closed and empty; at its first poll if it
    /// already is. Cancel-safe: drop it at any time.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// # futures_lite::future::block_on(async {
    /// let tracker = TaskTracker::new();
    /// let guard = tracker.enter();
    /// tracker.close();
    /// std::thread::spawn(move || drop(guard));
    /// tracker.wait().await;
    /// assert!(tracker.is_empty());
    /// # });
    /// ```
    pub fn wait(&self) -> TrackerWait<'_> {
        TrackerWait {
            tracker: self,
            event: None,
        }
    }

    /// Like [`wait`](Self::wait), owning a handle of the tracker: `Send + 'static`, for
    /// spawning.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// let waiter = std::thread::spawn({
    ///     let wait = tracker.clone().wait_owned();
    ///     move || futures_lite::future::block_on(wait)
    /// });
    /// tracker.close();
    /// waiter.join().unwrap();
    /// ```
    pub fn wait_owned(self) -> TrackerWaitOwned {
        TrackerWaitOwned {
            inner: self.inner,
            event: None,
        }
    }

    /// Blocks the current thread until the tracker is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// let guard = tracker.enter();
    /// std::thread::spawn(move || drop(guard));
    /// tracker.close();
    /// tracker.wait_blocking();
    /// assert!(tracker.is_empty());
    /// ```
    pub fn wait_blocking(&self) {
        while !self.inner.is_done() {
            self.inner.event().wait_blocking();
        }
    }

    /// Blocks the current thread until the tracker is closed and empty, or `timeout` has
    /// elapsed. Returns `true` if it is closed and empty (a timeout too large to represent
    /// waits without one).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// let _guard = tracker.enter();
    /// tracker.close();
    /// assert!(!tracker.wait_blocking_timeout(Duration::from_millis(10)), "a task is left");
    /// ```
    pub fn wait_blocking_timeout(&self, timeout: Duration) -> bool {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_blocking_deadline(deadline),
            None => {
                self.wait_blocking();
                true
            }
        }
    }

    /// Blocks the current thread until the tracker is closed and empty, or `deadline` is
    /// reached. Returns `true` if it is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// tracker.close();
    /// assert!(tracker.wait_blocking_deadline(Instant::now() + Duration::from_secs(1)));
    /// ```
    pub fn wait_blocking_deadline(&self, deadline: Instant) -> bool {
        loop {
            if self.inner.is_done() {
                return true;
            }
            if !self.inner.event().wait_blocking_deadline(deadline) {
                return self.inner.is_done();
            }
        }
    }

    pub(super) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The token triggered once the tracker is closed and empty (until it is reopened), for
    /// `Shutdown`.
    pub(crate) fn event(&self) -> CancelToken {
        self.inner.event()
    }
}

impl Default for TaskTracker {
    /// Same as [`TaskTracker::new`].
    fn default() -> TaskTracker {
        TaskTracker::new()
    }
}

impl fmt::Debug for TaskTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskTracker")
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Counts as one task of a [`TaskTracker`] while it lives; from [`TaskTracker::enter`].
///
/// # Examples
///
/// ```
/// use cancel_token::TaskTracker;
///
/// let tracker = TaskTracker::new();
/// let workers: Vec<_> = (0..3)
///     .map(|_| {
///         let guard = tracker.enter();
///         std::thread::spawn(move || drop(guard))
///     })
///     .collect();
/// tracker.close();
/// tracker.wait_blocking();
/// # for worker in workers { worker.join().unwrap(); }
/// ```
#[must_use = "the task counts only while the guard lives"]
pub struct TrackerGuard {
    inner: Arc<Inner>,
}

impl TrackerGuard {
    /// The tracker this guard counts in.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// let guard = tracker.enter();
    /// assert_eq!(guard.tracker().len(), 1);
    /// ```
    pub fn tracker(&self) -> TaskTracker {
        TaskTracker {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl Drop for TrackerGuard {
    #[inline]
    fn drop(&mut self) {
        self.inner.finish_task();
    }
}

impl fmt::Debug for TrackerGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackerGuard").finish_non_exhaustive()
    }
}
