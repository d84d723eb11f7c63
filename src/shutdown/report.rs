//! What waiting on a [`Shutdown`](super::Shutdown) gives: the [`ShutdownWait`] future and the
//! [`ShutdownReport`] it resolves to.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::phases::Inner;
use crate::reason::Reason;
use crate::sync::Arc;
use crate::WaitOwned;

/// Resolves to the [`ShutdownReport`] once the outcome is known; from [`Shutdown::wait`](super::Shutdown::wait).
/// `Send + 'static`, cancel-safe.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::Shutdown;
///
/// let shutdown = Shutdown::new(Duration::from_secs(5));
/// let report = smol::spawn(shutdown.wait()); // spawned before the request
/// shutdown.request();
/// assert!(smol::block_on(report).is_drained());
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct ShutdownWait {
    pub(super) inner: Arc<Inner>,
    pub(super) done: WaitOwned,
}

impl Future for ShutdownWait {
    type Output = ShutdownReport;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ShutdownReport> {
        std::task::ready!(Pin::new(&mut self.done).poll(cx));
        Poll::Ready(
            self.inner
                .report()
                .expect("the done token fires only once the report is set"),
        )
    }
}

impl fmt::Debug for ShutdownWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownWait").finish_non_exhaustive()
    }
}

/// How a shutdown ended.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::{Shutdown, ShutdownOutcome};
///
/// let shutdown = Shutdown::new(Duration::ZERO);
/// let _stuck = shutdown.tracker().enter();
/// shutdown.request();
/// assert_eq!(shutdown.wait_blocking().outcome(), ShutdownOutcome::Forced);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShutdownOutcome {
    /// Every tracked task finished before the hard token fired.
    Drained,
    /// The hard token fired (grace period over, second request, or `force`) with tasks still
    /// tracked, or before any drain was seen.
    Forced,
}

/// What a [`Shutdown`](super::Shutdown) reports once its outcome is known.
///
/// Its `Display` is one line for a log: `shutdown drained in 1.2s (3 tasks in flight at the
/// request)`, or `shutdown forced after 2s with 1 task left: grace period of 2s elapsed`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::Shutdown;
///
/// let shutdown = Shutdown::new(Duration::from_millis(10));
/// let tasks = [shutdown.tracker().enter(), shutdown.tracker().enter()];
/// shutdown.request_with("SIGTERM");
/// let report = shutdown.wait_blocking();
/// assert_eq!((report.in_flight(), report.remaining()), (2, 2));
/// assert!(report.elapsed() >= Duration::from_millis(10));
/// assert!(report.to_string().ends_with("with 2 tasks left: grace period of 10ms elapsed"));
/// # drop(tasks);
/// ```
#[derive(Clone, Debug)]
pub struct ShutdownReport {
    pub(super) outcome: ShutdownOutcome,
    pub(super) reason: Reason,
    pub(super) forced_by: Option<Reason>,
    pub(super) in_flight: usize,
    pub(super) remaining: usize,
    pub(super) elapsed: Duration,
}

impl ShutdownReport {
    /// Drained or forced.
    pub fn outcome(&self) -> ShutdownOutcome {
        self.outcome
    }

    /// Whether every tracked task finished in time.
    pub fn is_drained(&self) -> bool {
        self.outcome == ShutdownOutcome::Drained
    }

    /// The reason of the request (the soft token's).
    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// The reason the hard token fired with, if the shutdown was forced.
    pub fn forced_by(&self) -> Option<&Reason> {
        self.forced_by.as_ref()
    }

    /// Tasks tracked when the shutdown began.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Tasks still tracked when the shutdown was forced (0 when drained).
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Time from the request to the outcome.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}

fn tasks(n: usize) -> String {
    match n {
        1 => "1 task".to_owned(),
        n => format!("{n} tasks"),
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.forced_by {
            None => write!(
                f,
                "shutdown drained in {:?} ({} in flight at the request)",
                self.elapsed,
                tasks(self.in_flight)
            ),
            Some(reason) => write!(
                f,
                "shutdown forced after {:?} with {} left: {reason}",
                self.elapsed,
                tasks(self.remaining)
            ),
        }
    }
}
