//! Stream adapters whose last item says the stream was cut: [`TryCancelStream`] yields
//! `Result<Item, Cancelled>` for any stream, [`ResultCancelStream`] merges the cancellation into
//! the error type of a stream of `Result`s (an HTTP body, a file read in chunks). Either way a
//! consumer cannot mistake a cancelled stream for a complete one, as it can with
//! [`CancelStream`](crate::CancelStream), which simply ends.
//!
//! Both share [`CancelStream`]'s core, and so its tie rule: the token is checked before each
//! poll of the wrapped stream, which is dropped the moment the trigger is seen and never
//! polled again.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::stream::GuardedStream;
use crate::error::Cancelled;
use crate::CancelToken;

pin_project! {
    /// Stream for the [`CancelToken::try_stream()`] method.
    ///
    /// Yields `Ok(item)` for each item of the wrapped stream until the token is triggered,
    /// then one `Err(Cancelled)`, then ends. A stream that ends on its own before the trigger
    /// ends with no error, so the last item tells a cut stream from a complete one.
    ///
    /// # Cancellation safety
    ///
    /// Once the trigger is seen the wrapped stream is dropped at once, the adapter yields
    /// `Err(Cancelled)` at that poll and `None` from then on. Items already yielded are the
    /// caller's; nothing is lost in between.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties: the token is checked before each poll of the wrapped stream, so
    /// no item is taken from it after the trigger is seen, and a token triggered before the
    /// first poll means the wrapped stream is never polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let mut chunks = token.try_stream(stream::iter(["a", "b", "c"]));
    /// assert_eq!(chunks.next().await, Some(Ok("a")));
    /// token.trigger_with("user cancelled the download");
    /// let err = chunks.next().await.unwrap().unwrap_err();
    /// assert_eq!(err.reason().message(), Some("user cancelled the download"));
    /// assert_eq!(chunks.next().await, None);
    /// # });
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct TryCancelStream<'a, S> {
        #[pin]
        inner: GuardedStream<&'a CancelToken, S>,
    }
}

impl<'a, S: Stream> TryCancelStream<'a, S> {
    pub(crate) fn new(token: &'a CancelToken, stream: S) -> Self {
        TryCancelStream {
            inner: GuardedStream::new(token, stream),
        }
    }
}

impl<S: Stream> Stream for TryCancelStream<'_, S> {
    type Item = Result<S::Item, Cancelled>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project().inner.poll_guarded(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint(1)
    }
}

impl<S: Stream> FusedStream for TryCancelStream<'_, S> {
    fn is_terminated(&self) -> bool {
        self.inner.is_ended()
    }
}

impl<S> fmt::Debug for TryCancelStream<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug(f, "TryCancelStream", &self.inner)
    }
}

pin_project! {
    /// Stream for the [`CancelToken::try_stream_owned()`] method.
    ///
    /// Like [`TryCancelStream`], but it owns a handle of the token, so it is `'static` (and
    /// `Send` when the wrapped stream is).
    ///
    /// # Cancellation safety
    ///
    /// Once the trigger is seen the wrapped stream is dropped at once, the adapter yields
    /// `Err(Cancelled)` at that poll and `None` from then on.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties, as for [`TryCancelStream`].
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
    /// let items: Vec<_> = token.clone().try_stream_owned(stream::iter(1..)).collect().await;
    /// assert_eq!(items.len(), 1);
    /// assert!(items[0].is_err(), "nothing but the cancellation");
    /// # });
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct TryCancelStreamOwned<S> {
        #[pin]
        inner: GuardedStream<CancelToken, S>,
    }
}

impl<S: Stream> TryCancelStreamOwned<S> {
    pub(crate) fn new(token: CancelToken, stream: S) -> Self {
        TryCancelStreamOwned {
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
    /// let s = token.clone().try_stream_owned(stream::empty::<()>());
    /// assert_eq!(s.token(), &token);
    /// ```
    pub fn token(&self) -> &CancelToken {
        self.inner.token()
    }
}

impl<S: Stream> Stream for TryCancelStreamOwned<S> {
    type Item = Result<S::Item, Cancelled>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project().inner.poll_guarded(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint(1)
    }
}

impl<S: Stream> FusedStream for TryCancelStreamOwned<S> {
    fn is_terminated(&self) -> bool {
        self.inner.is_ended()
    }
}

impl<S> fmt::Debug for TryCancelStreamOwned<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug(f, "TryCancelStreamOwned", &self.inner)
    }
}

pin_project! {
    /// Stream for the [`CancelToken::result_stream()`] method.
    ///
    /// For a stream of `Result<T, E>` whose error type can hold a cancellation
    /// (`E: From<Cancelled>`: [`std::io::Error`], `Box<dyn Error + Send + Sync>`, your own
    /// error enum). Yields the wrapped stream's items, errors included, untouched, until the
    /// token is triggered, then one `Err(E::from(Cancelled))`, then ends. So a stream that is
    /// cut ends with an error of its own type, as if the transfer had failed, and code that
    /// propagates errors with `?`, or a server that turns an error into an aborted response
    /// body, handles a cancellation with nothing added.
    ///
    /// # Cancellation safety
    ///
    /// Once the trigger is seen the wrapped stream is dropped at once, the adapter yields the
    /// cancellation error at that poll and `None` from then on.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties, as for [`TryCancelStream`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::{CancelToken, Cancelled};
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let reads = stream::iter([Ok::<_, io::Error>(vec![1, 2]), Ok(vec![3])]);
    /// let mut body = token.result_stream(reads);
    /// assert_eq!(body.next().await.unwrap().unwrap(), [1, 2]);
    ///
    /// token.trigger_with("client went away");
    /// let err: io::Error = body.next().await.unwrap().unwrap_err();
    /// assert_eq!(Cancelled::from_io_error(&err).unwrap().reason().message(), Some("client went away"));
    /// assert!(body.next().await.is_none());
    /// # });
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct ResultCancelStream<'a, S> {
        #[pin]
        inner: GuardedStream<&'a CancelToken, S>,
    }
}

impl<'a, S: Stream> ResultCancelStream<'a, S> {
    pub(crate) fn new(token: &'a CancelToken, stream: S) -> Self {
        ResultCancelStream {
            inner: GuardedStream::new(token, stream),
        }
    }
}

impl<S, T, E> Stream for ResultCancelStream<'_, S>
where
    S: Stream<Item = Result<T, E>>,
    E: From<Cancelled>,
{
    type Item = Result<T, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T, E>>> {
        merge(self.project().inner.poll_guarded(cx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint(1)
    }
}

impl<S, T, E> FusedStream for ResultCancelStream<'_, S>
where
    S: Stream<Item = Result<T, E>>,
    E: From<Cancelled>,
{
    fn is_terminated(&self) -> bool {
        self.inner.is_ended()
    }
}

impl<S> fmt::Debug for ResultCancelStream<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug(f, "ResultCancelStream", &self.inner)
    }
}

pin_project! {
    /// Stream for the [`CancelToken::result_stream_owned()`] method.
    ///
    /// Like [`ResultCancelStream`], but it owns a handle of the token, so it is `'static` (and
    /// `Send` when the wrapped stream is): what a server hands to its framework as a response
    /// body.
    ///
    /// # Cancellation safety
    ///
    /// Once the trigger is seen the wrapped stream is dropped at once, the adapter yields the
    /// cancellation error at that poll and `None` from then on.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties, as for [`TryCancelStream`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::CancelToken;
    ///
    /// type BoxError = Box<dyn std::error::Error + Send + Sync>;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::named("response");
    /// let chunks = stream::iter([Ok::<_, BoxError>("hello ")]).chain(stream::pending());
    /// let mut body = token.clone().result_stream_owned(chunks);
    /// assert_eq!(body.next().await.unwrap().unwrap(), "hello ");
    ///
    /// std::thread::spawn(move || token.trigger_with("shutting down"));
    /// let err = body.next().await.unwrap().unwrap_err();
    /// assert_eq!(err.to_string(), "cancellation requested by token response: shutting down");
    /// # });
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct ResultCancelStreamOwned<S> {
        #[pin]
        inner: GuardedStream<CancelToken, S>,
    }
}

impl<S: Stream> ResultCancelStreamOwned<S> {
    pub(crate) fn new(token: CancelToken, stream: S) -> Self {
        ResultCancelStreamOwned {
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
    /// let s = token.clone().result_stream_owned(stream::empty::<std::io::Result<()>>());
    /// assert_eq!(s.token(), &token);
    /// ```
    pub fn token(&self) -> &CancelToken {
        self.inner.token()
    }
}

impl<S, T, E> Stream for ResultCancelStreamOwned<S>
where
    S: Stream<Item = Result<T, E>>,
    E: From<Cancelled>,
{
    type Item = Result<T, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T, E>>> {
        merge(self.project().inner.poll_guarded(cx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint(1)
    }
}

impl<S, T, E> FusedStream for ResultCancelStreamOwned<S>
where
    S: Stream<Item = Result<T, E>>,
    E: From<Cancelled>,
{
    fn is_terminated(&self) -> bool {
        self.inner.is_ended()
    }
}

impl<S> fmt::Debug for ResultCancelStreamOwned<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug(f, "ResultCancelStreamOwned", &self.inner)
    }
}

/// What [`ResultCancelStream`] makes of a cancellation: one more error of the stream's type.
fn merge<T, E: From<Cancelled>>(
    next: Poll<Option<Result<Result<T, E>, Cancelled>>>,
) -> Poll<Option<Result<T, E>>> {
    next.map(|item| item.map(|item| item.unwrap_or_else(|cancelled| Err(E::from(cancelled)))))
}

/// The `Debug` of every adapter here: the token, and whether the stream is over.
fn debug<T: crate::wait::TokenRef, S>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    inner: &GuardedStream<T, S>,
) -> fmt::Result {
    f.debug_struct(name)
        .field("token", inner.token())
        .field("ended", &inner.is_ended())
        .finish()
}
