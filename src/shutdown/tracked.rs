//! The futures of a [`TaskTracker`](super::TaskTracker): a tracked future, and the waits for
//! "closed and empty".

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::tracker::{Inner, TaskTracker, TrackerGuard};
use crate::sync::Arc;
use crate::WaitOwned;

pin_project! {
    /// A future tracked by a [`TaskTracker`]: counted as a task until it completes or is
    /// dropped. From [`TaskTracker::track`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::TaskTracker;
    ///
    /// let tracker = TaskTracker::new();
    /// let task = tracker.track(async { 40 + 2 });
    /// assert_eq!(tracker.len(), 1);
    /// assert_eq!(futures_lite::future::block_on(task), 42);
    /// assert!(tracker.is_empty());
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct TrackedFuture<F> {
        #[pin]
        pub(super) future: F,
        pub(super) guard: Option<TrackerGuard>,
    }
}

impl<F: Future> Future for TrackedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let output = std::task::ready!(this.future.poll(cx));
        // Done: no longer counted, even if the caller keeps the future.
        this.guard.take();
        Poll::Ready(output)
    }
}

impl<F> fmt::Debug for TrackedFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedFuture")
            .field("finished", &self.guard.is_none())
            .finish_non_exhaustive()
    }
}

/// Polls a wait on the tracker in `inner`, fetching the event on the first poll that needs it.
fn poll_wait(inner: &Inner, event: &mut Option<WaitOwned>, cx: &mut Context<'_>) -> Poll<()> {
    loop {
        if inner.is_done() {
            *event = None;
            return Poll::Ready(());
        }
        let wait = event.get_or_insert_with(|| inner.event().wait_owned());
        std::task::ready!(Pin::new(wait).poll(cx));
        // The event fired, but a task came in (or the tracker was reopened) since: wait on a
        // fresh one.
        *event = None;
    }
}

/// Finishes once a [`TaskTracker`] is closed and empty; from [`TaskTracker::wait`].
///
/// # Examples
///
/// ```
/// use cancel_token::TaskTracker;
///
/// let tracker = TaskTracker::new();
/// tracker.close();
/// futures_lite::future::block_on(tracker.wait()); // closed and empty: ready at once
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct TrackerWait<'a> {
    pub(super) tracker: &'a TaskTracker,
    pub(super) event: Option<WaitOwned>,
}

impl Future for TrackerWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        poll_wait(this.tracker.inner(), &mut this.event, cx)
    }
}

impl fmt::Debug for TrackerWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackerWait")
            .field("tracker", self.tracker)
            .finish()
    }
}

/// Finishes once a [`TaskTracker`] is closed and empty; from [`TaskTracker::wait_owned`].
///
/// # Examples
///
/// ```
/// use cancel_token::TaskTracker;
///
/// # futures_lite::future::block_on(async {
/// let tracker = TaskTracker::new();
/// let waiting = smol::spawn(tracker.clone().wait_owned()); // Send + 'static
/// tracker.close();
/// waiting.await;
/// # });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct TrackerWaitOwned {
    pub(super) inner: Arc<Inner>,
    pub(super) event: Option<WaitOwned>,
}

impl Future for TrackerWaitOwned {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        poll_wait(&this.inner, &mut this.event, cx)
    }
}

impl fmt::Debug for TrackerWaitOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackerWaitOwned").finish_non_exhaustive()
    }
}
