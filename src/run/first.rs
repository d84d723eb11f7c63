//! [`CancellableWait`]: the first of several futures, unless cancelled or timed out.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::{TimedOut, WaitError};
use crate::wait::{Race, Waiter};
use crate::CancelToken;

/// Future for the [`CancelToken::cancellable_wait()`] method.
///
/// Resolves to the output of the first wrapped future to complete, `Err(WaitError::Cancelled)`
/// once the token is triggered, or `Err(WaitError::TimedOut)` once the timeout has elapsed.
/// Errors inside a future's output are returned untouched, inside `Ok`.
///
/// # Cancellation safety
///
/// Every wrapped future that did not win is dropped before this future resolves; dropping
/// this future drops all of them. The timer registration is released in both cases.
///
/// # Fairness
///
/// Each poll checks, in order: the token (cancellation wins ties), then the futures in the
/// order they were given (the earliest ready one wins), then the timer. So a future that is
/// ready at the first poll wins even with `Some(Duration::ZERO)`, and a pre-triggered token
/// means no future is ever polled. The timeout starts at the first poll.
///
/// # Panics
///
/// Polling again after it resolved panics, like any completed `async` block.
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::time::Duration;
/// use cancel_token::CancelToken;
///
/// # futures_lite::future::block_on(async {
/// let token = CancelToken::new();
///
/// // Futures of different types are boxed into one type.
/// let slow: Pin<Box<dyn Future<Output = &str>>> = Box::pin(futures_lite::future::pending());
/// let fast: Pin<Box<dyn Future<Output = &str>>> = Box::pin(async { "fast" });
/// let first = token.cancellable_wait([slow, fast], None).await;
/// assert_eq!(first, Ok("fast"));
///
/// let never = [futures_lite::future::pending::<()>()];
/// let timed_out = token.cancellable_wait(never, Some(Duration::from_millis(10))).await;
/// assert!(timed_out.unwrap_err().is_timed_out());
/// # });
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct CancellableWait<'a, F> {
    /// Boxed so that each can be polled and dropped on its own without unsafe pinning.
    futures: Vec<Pin<Box<F>>>,
    timeout: Option<Duration>,
    timer: Timer,
    waiter: Waiter<&'a CancelToken>,
    done: bool,
}

/// The timeout of a [`CancellableWait`], armed at the first poll.
enum Timer {
    Never,
    Unarmed(Duration),
    Armed {
        deadline: Instant,
        /// A wait on a deadline token that wakes the task; `None` for a zero timeout, which
        /// needs no waking.
        timer: Option<Waiter<CancelToken>>,
    },
}

impl Timer {
    fn arm(&mut self) {
        if let Timer::Unarmed(timeout) = *self {
            *self = match Instant::now().checked_add(timeout) {
                // Too far away to represent: never.
                None => Timer::Never,
                Some(deadline) if timeout.is_zero() => Timer::Armed {
                    deadline,
                    timer: None,
                },
                Some(deadline) => Timer::Armed {
                    deadline,
                    timer: Some(Waiter::new(CancelToken::with_deadline(deadline))),
                },
            };
        }
    }

    fn elapsed(&self) -> bool {
        match self {
            Timer::Armed { deadline, timer } => {
                timer
                    .as_ref()
                    .is_some_and(|timer| timer.token().is_triggered())
                    || Instant::now() >= *deadline
            }
            _ => false,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Timer::Armed {
                timer: Some(timer), ..
            } => timer.poll(cx),
            _ => Poll::Pending,
        }
    }
}

impl<'a, F: Future> CancellableWait<'a, F> {
    pub(crate) fn new(
        token: &'a CancelToken,
        futures: impl IntoIterator<Item = F>,
        timeout: Option<Duration>,
    ) -> Self {
        CancellableWait {
            futures: futures.into_iter().map(Box::pin).collect(),
            timeout,
            timer: timeout.map_or(Timer::Never, Timer::Unarmed),
            waiter: Waiter::new(token),
            done: false,
        }
    }

    fn finish(
        &mut self,
        result: Result<F::Output, WaitError>,
    ) -> Poll<Result<F::Output, WaitError>> {
        self.futures.clear();
        self.timer = Timer::Never;
        self.waiter.release();
        self.done = true;
        Poll::Ready(result)
    }

    fn timed_out(&self) -> WaitError {
        WaitError::TimedOut(TimedOut::new(self.timeout.unwrap_or_default()))
    }
}

impl<F: Future> Future for CancellableWait<'_, F> {
    type Output = Result<F::Output, WaitError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "`CancellableWait` polled after it completed");
        this.timer.arm();
        let futures = &mut this.futures;
        let raced = this.waiter.race(cx, |cx| {
            // The first one ready, in the order given.
            futures
                .iter_mut()
                .find_map(|future| match future.as_mut().poll(cx) {
                    Poll::Ready(output) => Some(output),
                    Poll::Pending => None,
                })
                .map_or(Poll::Pending, Poll::Ready)
        });
        match raced {
            Race::Cancelled(cancelled) => return this.finish(Err(cancelled.into())),
            Race::Ready(output) => return this.finish(Ok(output)),
            Race::Pending => {}
        }
        // The timer comes after the futures: one that is ready wins even a zero timeout.
        if this.timer.elapsed() || this.timer.poll(cx).is_ready() {
            let err = this.timed_out();
            return this.finish(Err(err));
        }
        Poll::Pending
    }
}

impl<F> fmt::Debug for CancellableWait<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellableWait")
            .field("token", self.waiter.token())
            .field("futures", &self.futures.len())
            .field("timeout", &self.timeout)
            .field("done", &self.done)
            .finish()
    }
}
