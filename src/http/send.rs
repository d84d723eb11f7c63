//! [`send`], [`SendRequest`] and the [`CancelFutureExt::with_cancel`] adapter.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::CancelError;
use crate::wait::{Race, Waiter};
use crate::CancelToken;

/// The error of wrapped work that failed: the cancellation if the token is triggered by now
/// (the work failed because the trigger closed its connection), the work's own error
/// otherwise.
pub(super) fn late_error<E>(token: &CancelToken, err: E) -> CancelError<E> {
    match token.raise_if_triggered() {
        Err(cancelled) => cancelled.into(),
        Ok(()) => CancelError::Inner(err),
    }
}

/// Polls a request future under a token: the token first (cancellation wins ties), then the
/// request; a trigger drops the request at once, and an error that arrives once the token is
/// triggered reads as the cancellation (the transport failed because we closed it).
fn poll_request<F, T, E>(
    waiter: &mut Waiter<&CancelToken>,
    mut request: Pin<&mut Option<F>>,
    cx: &mut Context<'_>,
) -> Poll<Result<T, CancelError<E>>>
where
    F: Future<Output = Result<T, E>>,
{
    let raced = waiter.race(cx, |cx| {
        let future = request.as_mut().as_pin_mut();
        future
            .expect("a cancellable request polled after it completed")
            .poll(cx)
    });
    match raced {
        Race::Pending => Poll::Pending,
        Race::Cancelled(cancelled) => {
            request.set(None);
            Poll::Ready(Err(cancelled.into()))
        }
        Race::Ready(result) => {
            request.set(None);
            waiter.release();
            Poll::Ready(result.map_err(|err| late_error(waiter.token(), err)))
        }
    }
}

/// Sends a request under `token`: `make` builds the client's request future, which is then
/// raced against the token.
///
/// - A token already triggered means `make` is never called: nothing is built or sent.
/// - The token is checked before the request at every poll; once it is triggered the request
///   future is dropped at once, which is how every Rust HTTP client aborts a request (the
///   connection is closed now, not when this future is dropped).
/// - A client error that arrives after the trigger reads as [`CancelError::Cancelled`]; any
///   other error is returned untouched as [`CancelError::Inner`].
///
/// # Cancellation safety
///
/// Dropping the returned future drops the request with it, exactly like dropping the client's
/// future.
///
/// # Examples
///
/// With any client whose requests are futures (reqwest: `|| client.get(url).send()`):
///
/// ```
/// use cancel_token::http::send;
/// use cancel_token::CancelToken;
///
/// // A stand-in for `client.get(url).send()`.
/// async fn fetch(url: &str) -> Result<String, std::io::Error> {
///     Ok(format!("body of {url}"))
/// }
///
/// # futures_lite::future::block_on(async {
/// let token = CancelToken::new();
/// let body = send(&token, || fetch("http://example.test/")).await.unwrap();
/// assert_eq!(body, "body of http://example.test/");
///
/// token.trigger_with("page closed");
/// // A triggered token never builds the request.
/// let err = send(&token, || fetch("http://never.test/")).await.unwrap_err();
/// assert!(err.is_cancelled());
/// # });
/// ```
pub fn send<M, F, T, E>(token: &CancelToken, make: M) -> SendRequest<'_, M, F>
where
    M: FnOnce() -> F,
    F: Future<Output = Result<T, E>>,
{
    SendRequest {
        waiter: Waiter::new(token),
        make: Some(make),
        request: None,
    }
}

pin_project! {
    /// Future for the [`send()`] function.
    ///
    /// # Cancellation safety
    ///
    /// The request future is dropped the moment the trigger is seen; dropping this future
    /// drops it too.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties: the token is checked before the request is built and before
    /// every poll of it.
    ///
    /// # Panics
    ///
    /// Polling again after it completed panics, like any completed `async` block.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::{send, SendRequest};
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let request: SendRequest<'_, _, _> = send(&token, || async { Ok::<_, std::io::Error>(200) });
    /// assert_eq!(futures_lite::future::block_on(request).unwrap(), 200);
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct SendRequest<'a, M, F> {
        waiter: Waiter<&'a CancelToken>,
        make: Option<M>,
        #[pin]
        request: Option<F>,
    }
}

impl<M, F, T, E> Future for SendRequest<'_, M, F>
where
    M: FnOnce() -> F,
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, CancelError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(make) = this.make.take() {
            if let Err(cancelled) = this.waiter.token().raise_if_triggered() {
                return Poll::Ready(Err(cancelled.into()));
            }
            this.request.set(Some(make()));
        }
        poll_request(this.waiter, this.request, cx)
    }
}

impl<M, F> fmt::Debug for SendRequest<'_, M, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendRequest")
            .field("token", self.waiter.token())
            .field("built", &self.make.is_none())
            .field("in_flight", &self.request.is_some())
            .finish()
    }
}

/// Races a request future (any future of a `Result`) against a token: the storable form of
/// [`send()`] for a request that is already built.
///
/// # Examples
///
/// ```
/// use cancel_token::http::CancelFutureExt;
/// use cancel_token::CancelToken;
///
/// # futures_lite::future::block_on(async {
/// let token = CancelToken::new();
/// let never = futures_lite::future::pending::<Result<u16, std::io::Error>>();
/// let request = never.with_cancel(&token);
/// token.trigger_with("stop");
/// assert!(request.await.unwrap_err().is_cancelled());
/// # });
/// ```
pub trait CancelFutureExt: Future + Sized {
    /// Races `self` against `token`; see [`WithCancel`].
    fn with_cancel(self, token: &CancelToken) -> WithCancel<'_, Self> {
        WithCancel {
            waiter: Waiter::new(token),
            request: Some(self),
        }
    }
}

impl<F: Future> CancelFutureExt for F {}

pin_project! {
    /// Future for the [`CancelFutureExt::with_cancel()`] method.
    ///
    /// Resolves to the request's `Ok` value, [`CancelError::Inner`] with its error, or
    /// [`CancelError::Cancelled`] once the token is triggered (including when the request
    /// fails after the trigger).
    ///
    /// # Cancellation safety
    ///
    /// The request future is dropped the moment the trigger is seen; dropping this future
    /// drops it too.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties: the token is checked before every poll of the request, and a
    /// token triggered before the first poll means the request is never polled.
    ///
    /// # Panics
    ///
    /// Polling again after it completed panics, like any completed `async` block.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::{CancelFutureExt, WithCancel};
    /// use cancel_token::CancelToken;
    ///
    /// struct Pending<'a> {
    ///     request: WithCancel<'a, std::future::Ready<Result<u16, std::io::Error>>>,
    /// }
    /// let token = CancelToken::new();
    /// let stored = Pending { request: std::future::ready(Ok(204)).with_cancel(&token) };
    /// assert_eq!(futures_lite::future::block_on(stored.request).unwrap(), 204);
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct WithCancel<'a, F> {
        waiter: Waiter<&'a CancelToken>,
        #[pin]
        request: Option<F>,
    }
}

impl<F, T, E> Future for WithCancel<'_, F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, CancelError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        poll_request(this.waiter, this.request, cx)
    }
}

impl<F> fmt::Debug for WithCancel<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithCancel")
            .field("token", self.waiter.token())
            .field("in_flight", &self.request.is_some())
            .finish()
    }
}
