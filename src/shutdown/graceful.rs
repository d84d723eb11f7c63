//! [`Shutdown`]: the phases of a graceful shutdown and the report of how it went.
//!
//! A shutdown owns two tokens and a tracker. A request triggers the *soft* token (stop taking
//! new work), closes the tracker and starts the grace period on an internal timer token; the
//! *hard* token (cancel what is still running) is triggered when that timer fires, or at once
//! on a second request. The soft token is a child of the hard one, so forcing also stops new
//! work.
//!
//! The outcome is decided once. The tracker draining first (a callback on the tracker's event)
//! means drained, unless the hard token has fired: tasks that finish *because* they were
//! cancelled do not count as drained. The hard token firing (a callback on it) means forced,
//! with the number of tasks counted just before it was triggered, since the cancelled tasks
//! start leaving while its trigger still runs. Every callback holds the shared state weakly, so
//! tokens and state never keep each other alive.

use std::fmt;
use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::phases::Inner;
use super::report::{ShutdownOutcome, ShutdownReport, ShutdownWait};
use super::tracked::TrackedFuture;
use super::tracker::TaskTracker;
use crate::reason::Reason;
use crate::sync::Arc;
#[cfg(feature = "signal")]
use crate::sync::Weak;
use crate::{CancelToken, RunOwned};

/// A graceful shutdown: a soft token, a grace period, then a hard token, with a
/// [`TaskTracker`] to know when everything is done.
///
/// - [`soft`](Self::soft) is triggered by the first [`request`](Self::request): stop accepting
///   new work (close listeners, stop taking jobs). Its reason is the request's.
/// - [`hard`](Self::hard) is triggered when the grace period after that request elapses, with
///   [`ReasonKind::Timeout`](crate::ReasonKind::Timeout) and a message naming the period (`"grace period of 2s elapsed"`),
///   or at once by a second request or by [`force`](Self::force): cancel what is still running.
/// - [`tracker`](Self::tracker) counts what is running; the request closes it.
///
/// [`wait`](Self::wait) (or [`wait_blocking`](Self::wait_blocking)) returns a
/// [`ShutdownReport`] as soon as the outcome is known: *drained* when the last tracked task
/// finished before the hard token fired, *forced* when the hard token fired first (with how
/// many tasks were left). A forced shutdown does not wait for the cancelled tasks to return;
/// wait on the tracker with a timeout if you want that too.
///
/// Everything works from plain threads and under any runtime; the grace period is enforced by
/// the crate's timer threads. A zero grace period forces at the request; `Duration::MAX` never
/// forces on its own. Cloning gives another handle to the same shutdown. With the `signal`
/// feature, `on_signals` requests it on SIGINT/SIGTERM, and a second signal forces it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::{Shutdown, ShutdownOutcome};
///
/// let shutdown = Shutdown::new(Duration::from_secs(2));
/// let worker = {
///     let soft = shutdown.soft().clone();
///     let guard = shutdown.tracker().enter();
///     std::thread::spawn(move || {
///         while !soft.is_triggered() {
///             // take a job, do it
///             std::thread::sleep(Duration::from_millis(1));
///         }
///         drop(guard); // done: nothing in flight
///     })
/// };
///
/// shutdown.request_with("deploying a new version");
/// let report = shutdown.wait_blocking();
/// assert_eq!(report.outcome(), ShutdownOutcome::Drained);
/// assert_eq!(report.reason().message(), Some("deploying a new version"));
/// worker.join().unwrap();
/// ```
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

impl Shutdown {
    /// A new shutdown, not requested yet, with the given grace period between the soft and
    /// the hard token.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(30));
    /// assert!(!shutdown.is_requested());
    /// assert_eq!(shutdown.soft().name(), Some("shutdown"));
    /// assert_eq!(shutdown.hard().name(), Some("shutdown-forced"));
    /// ```
    pub fn new(grace: Duration) -> Shutdown {
        let hard = CancelToken::named("shutdown-forced");
        let soft = hard.child_named("shutdown");
        let inner = Arc::new(Inner {
            soft,
            hard,
            tracker: TaskTracker::new(),
            grace,
            grace_timer: CancelToken::named("shutdown-grace"),
            requested: OnceLock::new(),
            begun: OnceLock::new(),
            grace_ends: OnceLock::new(),
            started: OnceLock::new(),
            forced_with: OnceLock::new(),
            report: OnceLock::new(),
            done: CancelToken::named("shutdown-done"),
        });
        let weak = Arc::downgrade(&inner);
        inner
            .hard
            .on_cancel(move |reason| {
                if let Some(inner) = weak.upgrade() {
                    // Counted before the trigger if this shutdown made it; if the hard token
                    // was triggered directly, now.
                    let remaining = match inner.forced_with.get() {
                        Some(&count) => count,
                        None => inner.tracker.len(),
                    };
                    inner.decide(ShutdownOutcome::Forced, Some(reason), remaining);
                }
            })
            .detach();
        let weak = Arc::downgrade(&inner);
        // Registered first on the soft token, so it runs before the user's callbacks: a soft
        // token triggered directly (or by the hard one) begins the shutdown too.
        inner
            .soft
            .on_cancel(move |_| {
                if let Some(inner) = weak.upgrade() {
                    inner.begin();
                }
            })
            .detach();
        let weak = Arc::downgrade(&inner);
        inner
            .grace_timer
            .on_cancel(move |reason| {
                if let Some(inner) = weak.upgrade() {
                    inner.force(reason.clone());
                }
            })
            .detach();
        Shutdown { inner }
    }

    /// The grace period between the soft and the hard token.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::Shutdown;
    ///
    /// assert_eq!(Shutdown::new(Duration::from_secs(5)).grace(), Duration::from_secs(5));
    /// ```
    pub fn grace(&self) -> Duration {
        self.inner.grace
    }

    /// When the grace period ends (or ended) and the hard token fires, once the shutdown began:
    /// the time of the request plus the grace period. `None` before a request, for a grace
    /// period too long to represent, and for a shutdown forced before any request.
    ///
    /// The hard token itself has no deadline: it is triggered by the shutdown, which counts
    /// the tasks left just before.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cancel_token::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(30));
    /// let _busy = shutdown.tracker().enter();
    /// assert_eq!(shutdown.deadline(), None);
    /// shutdown.request();
    /// assert!(shutdown.deadline().unwrap() > Instant::now());
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.grace_ends.get().copied().flatten()
    }

    /// The token triggered by the first request: stop accepting new work. Also triggered when
    /// the shutdown is forced without a request.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(30));
    /// let accepting = shutdown.soft().clone();
    /// shutdown.request_with("SIGTERM");
    /// assert_eq!(accepting.reason().unwrap().message(), Some("SIGTERM"));
    /// ```
    pub fn soft(&self) -> &CancelToken {
        &self.inner.soft
    }

    /// The token triggered when the grace period ends, or by a second request: cancel what is
    /// still running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(30));
    /// let request = shutdown.hard().child(); // per-request work is cancelled when forced
    /// shutdown.force();
    /// assert!(request.is_triggered());
    /// ```
    pub fn hard(&self) -> &CancelToken {
        &self.inner.hard
    }

    /// The tracker whose tasks the shutdown waits for; closed by the request.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(30));
    /// let _connection = shutdown.tracker().enter();
    /// shutdown.request();
    /// assert!(shutdown.tracker().is_closed());
    /// assert_eq!(shutdown.tracker().len(), 1);
    /// ```
    pub fn tracker(&self) -> &TaskTracker {
        &self.inner.tracker
    }

    /// Tracks `future` and cancels it when the hard token fires: the tracked task is counted
    /// until it completes, is cancelled or is dropped. The output is `Err(Cancelled)` if the
    /// hard token fired first.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::Shutdown;
    ///
    /// # futures_lite::future::block_on(async {
    /// let shutdown = Shutdown::new(Duration::ZERO);
    /// let stuck = shutdown.track(futures_lite::future::pending::<()>());
    /// assert_eq!(shutdown.tracker().len(), 1);
    ///
    /// shutdown.request(); // no grace: forced at once
    /// let error = stuck.await.unwrap_err();
    /// assert_eq!(error.to_string(), "cancellation requested by token shutdown-forced: grace period of 0ns elapsed");
    /// # });
    /// ```
    pub fn track<F: Future>(&self, future: F) -> TrackedFuture<RunOwned<F>> {
        self.inner
            .tracker
            .track(self.inner.hard.clone().run_owned(future))
    }

    /// Requests the shutdown (a manual request, with the message `"shutdown requested"`). See
    /// [`request_with`](Self::request_with).
    pub fn request(&self) -> bool {
        self.request_with("shutdown requested")
    }

    /// Requests the shutdown with `reason`. Returns `true` if this call was the first request
    /// (`false` for a later one, and once the shutdown was forced).
    ///
    /// The first request closes the tracker, starts the grace period, then triggers the soft
    /// token with `reason` (its callbacks run on this thread, before this returns; the grace
    /// period runs meanwhile). A later request forces the shutdown at once: the hard token
    /// fires with `reason`'s kind and the message `"shutdown requested again: <message>"`. Of
    /// two concurrent requests, one begins the shutdown and the other forces it. A soft token
    /// triggered directly also begins the shutdown (the grace period starts), but only requests
    /// count towards forcing it: the first request after that is still the first.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::{Shutdown, ShutdownOutcome};
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(3600));
    /// let _busy = shutdown.tracker().enter();
    ///
    /// assert!(shutdown.request_with("first Ctrl-C"));
    /// assert!(shutdown.soft().is_triggered());
    /// assert!(!shutdown.hard().is_triggered(), "in the grace period");
    ///
    /// assert!(!shutdown.request_with("second Ctrl-C"));
    /// let report = shutdown.wait_blocking();
    /// assert_eq!(report.outcome(), ShutdownOutcome::Forced);
    /// assert_eq!(report.remaining(), 1);
    /// assert_eq!(
    ///     report.forced_by().unwrap().message(),
    ///     Some("shutdown requested again: second Ctrl-C")
    /// );
    /// ```
    pub fn request_with(&self, reason: impl Into<Reason>) -> bool {
        let reason = reason.into();
        if self.inner.hard.is_triggered() {
            return false;
        }
        if self.inner.requested.set(reason.clone()).is_ok() {
            // The bookkeeping first: the soft token's callbacks are the user's, and whatever
            // they do (block, panic, wait for this shutdown) the grace period has started.
            self.inner.begin();
            self.inner.soft.trigger_with(reason);
            return true;
        }
        let message = match reason.message() {
            Some(message) => format!("shutdown requested again: {message}"),
            None => format!("shutdown requested again: {}", reason.kind()),
        };
        self.inner
            .force(Reason::with_message(reason.kind(), message));
        false
    }

    /// Forces the shutdown now: the hard token fires with `"shutdown forced"` (and the soft
    /// one, if no request came before). Returns `true` if this call fired the hard token.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(30));
    /// assert!(shutdown.force());
    /// assert!(shutdown.soft().is_triggered() && shutdown.hard().is_triggered());
    /// assert_eq!(shutdown.hard().reason().unwrap().message(), Some("shutdown forced"));
    /// ```
    pub fn force(&self) -> bool {
        self.force_with("shutdown forced")
    }

    /// Forces the shutdown now, with `reason`. Returns `true` if this call fired the hard
    /// token.
    pub fn force_with(&self, reason: impl Into<Reason>) -> bool {
        self.inner.force(reason.into())
    }

    /// Whether the shutdown was requested (or forced).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(30));
    /// assert!(!shutdown.is_requested());
    /// shutdown.request();
    /// assert!(shutdown.is_requested());
    /// ```
    pub fn is_requested(&self) -> bool {
        self.inner.soft.is_triggered()
    }

    /// The report, once the outcome is known.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(30));
    /// assert!(shutdown.report().is_none());
    /// shutdown.request(); // nothing tracked: drained at once
    /// assert!(shutdown.report().unwrap().is_drained());
    /// ```
    pub fn report(&self) -> Option<ShutdownReport> {
        self.inner.report.get().cloned()
    }

    /// A future that resolves to the report once the outcome is known: the tracker drained or
    /// the hard token fired. Before a request it waits for one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::{Shutdown, ShutdownOutcome};
    ///
    /// # futures_lite::future::block_on(async {
    /// let shutdown = Shutdown::new(Duration::ZERO);
    /// let _stuck = shutdown.tracker().enter();
    /// let requester = shutdown.clone();
    /// std::thread::spawn(move || requester.request());
    /// let report = shutdown.wait().await;
    /// assert_eq!(report.outcome(), ShutdownOutcome::Forced);
    /// # });
    /// ```
    pub fn wait(&self) -> ShutdownWait {
        ShutdownWait {
            inner: Arc::clone(&self.inner),
            done: self.inner.done.clone().wait_owned(),
        }
    }

    /// Blocks the current thread until the outcome is known, and returns the report.
    pub fn wait_blocking(&self) -> ShutdownReport {
        self.inner.done.wait_blocking();
        self.expect_report()
    }

    /// Blocks the current thread until the outcome is known or `timeout` has elapsed; the
    /// report, or `None` on timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(30));
    /// assert!(shutdown.wait_blocking_timeout(Duration::from_millis(5)).is_none(), "not requested");
    /// ```
    pub fn wait_blocking_timeout(&self, timeout: Duration) -> Option<ShutdownReport> {
        self.inner
            .done
            .wait_blocking_timeout(timeout)
            .then(|| self.expect_report())
    }

    /// Whether a request came (not only a direct trigger of the soft token).
    #[cfg(feature = "signal")]
    pub(super) fn was_requested(&self) -> bool {
        self.inner.requested.get().is_some()
    }

    /// A handle that does not keep the shutdown alive.
    #[cfg(feature = "signal")]
    pub(super) fn downgrade(&self) -> WeakShutdown {
        WeakShutdown(Arc::downgrade(&self.inner))
    }

    fn expect_report(&self) -> ShutdownReport {
        self.report()
            .expect("the done token fires only once the report is set")
    }
}

/// A [`Shutdown`] held weakly, by what must not keep it alive.
#[cfg(feature = "signal")]
pub(super) struct WeakShutdown(Weak<Inner>);

#[cfg(feature = "signal")]
impl WeakShutdown {
    pub(super) fn upgrade(&self) -> Option<Shutdown> {
        self.0.upgrade().map(|inner| Shutdown { inner })
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("grace", &self.inner.grace)
            .field("soft", &self.inner.soft)
            .field("hard", &self.inner.hard)
            .field("tracker", &self.inner.tracker)
            .finish()
    }
}
