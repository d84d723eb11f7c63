//! [`Run`] and [`RunOwned`]: a future raced against a token.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::error::Cancelled;
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
