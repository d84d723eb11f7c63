//! Adapters that race work against a token: [`Run`] for futures, [`CancelStream`] for streams,
//! and [`CancellableWait`] for "the first of these futures, unless cancelled or timed out".
//!
//! All of them follow one tie rule: the token is checked before the wrapped work is polled,
//! and once the token is seen triggered the wrapped work is dropped and never polled again.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::error::{Cancelled, TimedOut, WaitError};
use crate::wait::{Race, TokenRef, Waiter};
use crate::CancelToken;

pin_project! {
    /// The state of [`Run`] and [`RunOwned`].
    struct Guarded<T: TokenRef, F> {
        waiter: Waiter<T>,
        #[pin]
        future: Option<F>,
    }
}

impl<T: TokenRef, F: Future> Guarded<T, F> {
    fn new(token: T, future: F) -> Self {
        Guarded {
            waiter: Waiter::new(token),
            future: Some(future),
        }
    }

    fn poll_guarded(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<F::Output, Cancelled>> {
        let mut this = self.project();
        // `race` registers only after the future was polled, so a future that completes at
        // once costs no allocation.
        let future = &mut this.future;
        match this.waiter.race(cx, |cx| {
            let future = future.as_mut().as_pin_mut();
            future.expect("`Run` polled after it completed").poll(cx)
        }) {
            Race::Pending => Poll::Pending,
            Race::Cancelled(cancelled) => {
                this.future.set(None);
                Poll::Ready(Err(cancelled))
            }
            Race::Ready(output) => {
                this.future.set(None);
                this.waiter.release();
                Poll::Ready(Ok(output))
            }
        }
    }
}

pin_project! {
    /// Future for the [`CancelToken::run()`] method.
    ///
    /// Resolves to `Ok(output)` if the wrapped future completes first, or `Err(Cancelled)` once
    /// the token is triggered.
    ///
    /// # Cancellation safety
    ///
    /// The wrapped future is dropped the moment the trigger is seen, not when this adapter is
    /// dropped, so resources it holds (a socket, a lock) are released at once. Whether that is
    /// safe for the work in progress is up to the wrapped future. Dropping the adapter drops the
    /// wrapped future and removes its registration on the token.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties: the token is checked before the wrapped future at every poll.
    /// A token triggered before the first poll means the wrapped future is never polled, and
    /// once the trigger is seen it is never polled again.
    ///
    /// # Panics
    ///
    /// Polling again after it returned `Ok` panics, like any completed `async` block.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// assert_eq!(token.run(async { 42 }).await, Ok(42));
    ///
    /// token.trigger_with("stop");
    /// let err = token.run(async { unreachable!("never polled") }).await.unwrap_err();
    /// assert_eq!(err.reason().message(), Some("stop"));
    /// # });
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Run<'a, F> {
        #[pin]
        inner: Guarded<&'a CancelToken, F>,
    }
}

impl<'a, F: Future> Run<'a, F> {
    pub(crate) fn new(token: &'a CancelToken, future: F) -> Self {
        Run {
            inner: Guarded::new(token, future),
        }
    }
}

impl<F: Future> Future for Run<'_, F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll_guarded(cx)
    }
}

impl<F> fmt::Debug for Run<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("token", self.inner.waiter.token())
            .field("running", &self.inner.future.is_some())
            .finish()
    }
}

pin_project! {
    /// Future for the [`CancelToken::run_owned()`] method.
    ///
    /// Like [`Run`], but it owns a handle of the token, so it is `'static` (and `Send` when the
    /// wrapped future is) and can be spawned.
    ///
    /// # Cancellation safety
    ///
    /// The wrapped future is dropped the moment the trigger is seen. Dropping the adapter drops
    /// the wrapped future and removes its registration on the token.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties, as for [`Run`].
    ///
    /// # Panics
    ///
    /// Polling again after it returned `Ok` panics, like any completed `async` block.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let job = token.clone().run_owned(async { "finished" });
    /// let handle = std::thread::spawn(move || futures_lite::future::block_on(job));
    /// assert_eq!(handle.join().unwrap(), Ok("finished"));
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct RunOwned<F> {
        #[pin]
        inner: Guarded<CancelToken, F>,
    }
}

impl<F: Future> RunOwned<F> {
    pub(crate) fn new(token: CancelToken, future: F) -> Self {
        RunOwned {
            inner: Guarded::new(token, future),
        }
    }

    /// The token this future is raced against.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let job = token.clone().run_owned(async {});
    /// assert_eq!(job.token(), &token);
    /// ```
    pub fn token(&self) -> &CancelToken {
        self.inner.waiter.token()
    }
}

impl<F: Future> Future for RunOwned<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll_guarded(cx)
    }
}

impl<F> fmt::Debug for RunOwned<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOwned")
            .field("token", self.inner.waiter.token())
            .field("running", &self.inner.future.is_some())
            .finish()
    }
}

pin_project! {
    /// The state of [`CancelStream`] and [`CancelStreamOwned`].
    struct GuardedStream<T: TokenRef, S> {
        waiter: Waiter<T>,
        #[pin]
        stream: Option<S>,
    }
}

impl<T: TokenRef, S: Stream> GuardedStream<T, S> {
    fn new(token: T, stream: S) -> Self {
        GuardedStream {
            waiter: Waiter::new(token),
            stream: Some(stream),
        }
    }

    fn poll_guarded(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let mut this = self.project();
        let Some(stream) = this.stream.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        // The registration is kept between items: a stream that is polled again soon need not
        // register again.
        match this.waiter.race(cx, |cx| stream.poll_next(cx)) {
            Race::Pending => Poll::Pending,
            Race::Ready(Some(item)) => Poll::Ready(Some(item)),
            Race::Ready(None) => {
                this.stream.set(None);
                this.waiter.release();
                Poll::Ready(None)
            }
            Race::Cancelled(_) => {
                this.stream.set(None);
                Poll::Ready(None)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.stream {
            // It may end early, at any point.
            Some(stream) => (0, stream.size_hint().1),
            None => (0, Some(0)),
        }
    }
}

pin_project! {
    /// Stream for the [`CancelToken::stream()`] method.
    ///
    /// Yields the wrapped stream's items until the token is triggered, then ends.
    ///
    /// # Cancellation safety
    ///
    /// Once the trigger is seen the wrapped stream is dropped at once and the adapter yields
    /// `None` from then on. Items already yielded are the caller's; nothing is lost in between.
    /// Use [`CancelToken::is_triggered`] to tell a cancelled end from a natural one.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties: the token is checked before each poll of the wrapped stream, so
    /// no item is taken from it after the trigger is seen.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let mut numbers = token.stream(stream::iter(1..));
    /// assert_eq!(numbers.next().await, Some(1));
    /// assert_eq!(numbers.next().await, Some(2));
    /// token.trigger();
    /// assert_eq!(numbers.next().await, None);
    /// # });
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct CancelStream<'a, S> {
        #[pin]
        inner: GuardedStream<&'a CancelToken, S>,
    }
}

impl<'a, S: Stream> CancelStream<'a, S> {
    pub(crate) fn new(token: &'a CancelToken, stream: S) -> Self {
        CancelStream {
            inner: GuardedStream::new(token, stream),
        }
    }
}

impl<S: Stream> Stream for CancelStream<'_, S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.project().inner.poll_guarded(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<S: Stream> FusedStream for CancelStream<'_, S> {
    fn is_terminated(&self) -> bool {
        self.inner.stream.is_none()
    }
}

impl<S> fmt::Debug for CancelStream<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelStream")
            .field("token", self.inner.waiter.token())
            .field("ended", &self.inner.stream.is_none())
            .finish()
    }
}

pin_project! {
    /// Stream for the [`CancelToken::stream_owned()`] method.
    ///
    /// Like [`CancelStream`], but it owns a handle of the token, so it is `'static` (and `Send`
    /// when the wrapped stream is).
    ///
    /// # Cancellation safety
    ///
    /// Once the trigger is seen the wrapped stream is dropped at once and the adapter yields
    /// `None` from then on.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties, as for [`CancelStream`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// token.trigger();
    /// let items: Vec<i32> = token.clone().stream_owned(stream::iter(1..)).collect().await;
    /// assert!(items.is_empty());
    /// # });
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct CancelStreamOwned<S> {
        #[pin]
        inner: GuardedStream<CancelToken, S>,
    }
}

impl<S: Stream> CancelStreamOwned<S> {
    pub(crate) fn new(token: CancelToken, stream: S) -> Self {
        CancelStreamOwned {
            inner: GuardedStream::new(token, stream),
        }
    }

    /// The token this stream is raced against.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::stream;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let s = token.clone().stream_owned(stream::empty::<()>());
    /// assert_eq!(s.token(), &token);
    /// ```
    pub fn token(&self) -> &CancelToken {
        self.inner.waiter.token()
    }
}

impl<S: Stream> Stream for CancelStreamOwned<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.project().inner.poll_guarded(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<S: Stream> FusedStream for CancelStreamOwned<S> {
    fn is_terminated(&self) -> bool {
        self.inner.stream.is_none()
    }
}

impl<S> fmt::Debug for CancelStreamOwned<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelStreamOwned")
            .field("token", self.inner.waiter.token())
            .field("ended", &self.inner.stream.is_none())
            .finish()
    }
}

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
