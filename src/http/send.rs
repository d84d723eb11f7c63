//! [`send`], [`SendRequest`] and the [`CancelFutureExt::with_cancel`] adapter, with their
//! owned forms for spawning ([`send_owned`], [`CancelFutureExt::with_cancel_owned`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::CancelError;
use crate::wait::{Race, TokenRef, Waiter};
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
fn poll_request<K: TokenRef, F, T, E>(
    waiter: &mut Waiter<K>,
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

/// Builds the request at the first poll, unless the token is already triggered, then races it
/// as [`poll_request`] does.
fn poll_send<K: TokenRef, M, F, T, E>(
    waiter: &mut Waiter<K>,
    make: &mut Option<M>,
    mut request: Pin<&mut Option<F>>,
    cx: &mut Context<'_>,
) -> Poll<Result<T, CancelError<E>>>
where
    M: FnOnce() -> F,
    F: Future<Output = Result<T, E>>,
{
    if let Some(make) = make.take() {
        if let Err(cancelled) = waiter.token().raise_if_triggered() {
            return Poll::Ready(Err(cancelled.into()));
        }
        request.set(Some(make()));
    }
    poll_request(waiter, request, cx)
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
///
/// To spawn the request, use [`send_owned`], which takes the token by value.
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
        let this = self.project();
        poll_send(this.waiter, this.make, this.request, cx)
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

/// [`send()`] with the token taken by value: the future is `Send + 'static` when `make` and
/// the request future are, so it can be spawned (`tokio::spawn(send_owned(token, ..))`).
///
/// Everything else is as for [`send()`]: a triggered token never builds the request, a trigger
/// drops it at once, and a client error after the trigger reads as the cancellation.
///
/// # Cancellation safety
///
/// Dropping the returned future drops the request with it.
///
/// # Examples
///
/// ```
/// use cancel_token::http::send_owned;
/// use cancel_token::CancelToken;
///
/// // A stand-in for `client.get(url).send()`, which reqwest's futures are too: `Send + 'static`.
/// async fn fetch(url: String) -> Result<String, std::io::Error> {
///     Ok(format!("body of {url}"))
/// }
///
/// let token = CancelToken::new();
/// let request = send_owned(token.clone(), || fetch("http://example.test/".to_string()));
/// // `std::thread::spawn` here; `tokio::spawn` takes it the same way.
/// let worker = std::thread::spawn(move || futures_lite::future::block_on(request));
/// assert_eq!(worker.join().unwrap().unwrap(), "body of http://example.test/");
/// ```
pub fn send_owned<M, F, T, E>(token: CancelToken, make: M) -> SendRequestOwned<M, F>
where
    M: FnOnce() -> F,
    F: Future<Output = Result<T, E>>,
{
    SendRequestOwned {
        waiter: Waiter::new(token),
        make: Some(make),
        request: None,
    }
}

pin_project! {
    /// Future for the [`send_owned()`] function.
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
    /// use cancel_token::http::{send_owned, SendRequestOwned};
    /// use cancel_token::CancelToken;
    ///
    /// fn spawnable<T: Send + 'static>(_: &T) {}
    /// let token = CancelToken::new();
    /// token.trigger_with("user left");
    /// let request: SendRequestOwned<_, _> =
    ///     send_owned(token, || async { Ok::<_, std::io::Error>(200) });
    /// spawnable(&request);
    /// let err = futures_lite::future::block_on(request).unwrap_err();
    /// assert_eq!(err.reason().unwrap().message(), Some("user left"));
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct SendRequestOwned<M, F> {
        waiter: Waiter<CancelToken>,
        make: Option<M>,
        #[pin]
        request: Option<F>,
    }
}

impl<M, F, T, E> Future for SendRequestOwned<M, F>
where
    M: FnOnce() -> F,
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, CancelError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        poll_send(this.waiter, this.make, this.request, cx)
    }
}

impl<M, F> fmt::Debug for SendRequestOwned<M, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendRequestOwned")
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

    /// Races `self` against `token`, taken by value; see [`WithCancelOwned`]. The future is
    /// `Send + 'static` when `self` is, so it can be spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::CancelFutureExt;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::named("upload");
    /// let never = futures_lite::future::pending::<Result<u16, std::io::Error>>();
    /// let request = never.with_cancel_owned(token.clone());
    /// let worker = std::thread::spawn(move || futures_lite::future::block_on(request));
    /// token.trigger_with("user left");
    /// let err = worker.join().unwrap().unwrap_err();
    /// assert_eq!(err.cancelled().unwrap().token(), &token);
    /// ```
    fn with_cancel_owned(self, token: CancelToken) -> WithCancelOwned<Self> {
        WithCancelOwned {
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

pin_project! {
    /// Future for the [`CancelFutureExt::with_cancel_owned()`] method: [`WithCancel`] with the
    /// token held by value, for spawning.
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
    /// use cancel_token::http::{CancelFutureExt, WithCancelOwned};
    /// use cancel_token::CancelToken;
    ///
    /// let request: WithCancelOwned<_> =
    ///     std::future::ready(Ok::<_, std::io::Error>(204)).with_cancel_owned(CancelToken::new());
    /// let worker = std::thread::spawn(move || futures_lite::future::block_on(request));
    /// assert_eq!(worker.join().unwrap().unwrap(), 204);
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct WithCancelOwned<F> {
        waiter: Waiter<CancelToken>,
        #[pin]
        request: Option<F>,
    }
}

impl<F, T, E> Future for WithCancelOwned<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, CancelError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        poll_request(this.waiter, this.request, cx)
    }
}

impl<F> fmt::Debug for WithCancelOwned<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithCancelOwned")
            .field("token", self.waiter.token())
            .field("in_flight", &self.request.is_some())
            .finish()
    }
}
