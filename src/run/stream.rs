//! [`CancelStream`] and [`CancelStreamOwned`]: a stream that ends when a token is triggered,
//! and the race between a stream and a token that every stream adapter is built on.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::error::Cancelled;
use crate::wait::{Race, TokenRef, Waiter};
use crate::CancelToken;

pin_project! {
    /// The state of every stream adapter: [`CancelStream`], and the `try_stream` and
    /// `result_stream` families, which differ only in what they make of the cancellation.
    pub(super) struct GuardedStream<T: TokenRef, S> {
        waiter: Waiter<T>,
        #[pin]
        stream: Option<S>,
    }
}

impl<T: TokenRef, S: Stream> GuardedStream<T, S> {
    pub(super) fn new(token: T, stream: S) -> Self {
        GuardedStream {
            waiter: Waiter::new(token),
            stream: Some(stream),
        }
    }

    /// The next item, or `Some(Err(Cancelled))` at the one poll that sees the trigger (the
    /// wrapped stream is dropped then), or `None` once the wrapped stream has ended or was
    /// dropped.
    pub(super) fn poll_guarded(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<S::Item, Cancelled>>> {
        let mut this = self.project();
        let Some(stream) = this.stream.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        // The registration is kept between items: a stream that is polled again soon need not
        // register again.
        match this.waiter.race(cx, |cx| stream.poll_next(cx)) {
            Race::Pending => Poll::Pending,
            Race::Ready(Some(item)) => Poll::Ready(Some(Ok(item))),
            Race::Ready(None) => {
                this.stream.set(None);
                this.waiter.release();
                Poll::Ready(None)
            }
            Race::Cancelled(cancelled) => {
                this.stream.set(None);
                Poll::Ready(Some(Err(cancelled)))
            }
        }
    }

    /// The bounds of the wrapped stream's, with `extra` more items at most after it (the
    /// error an adapter reports a cancellation with).
    pub(super) fn size_hint(&self, extra: usize) -> (usize, Option<usize>) {
        match &self.stream {
            // It may end early, at any point.
            Some(stream) => (
                0,
                stream
                    .size_hint()
                    .1
                    .and_then(|upper| upper.checked_add(extra)),
            ),
            None => (0, Some(0)),
        }
    }
}

impl<T: TokenRef, S> GuardedStream<T, S> {
    /// Whether the wrapped stream has ended or was dropped: nothing more will come.
    pub(super) fn is_ended(&self) -> bool {
        self.stream.is_none()
    }

    pub(super) fn token(&self) -> &CancelToken {
        self.waiter.token()
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
        end_on_cancel(self.project().inner.poll_guarded(cx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint(0)
    }
}

impl<S: Stream> FusedStream for CancelStream<'_, S> {
    fn is_terminated(&self) -> bool {
        self.inner.is_ended()
    }
}

impl<S> fmt::Debug for CancelStream<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelStream")
            .field("token", self.inner.token())
            .field("ended", &self.inner.is_ended())
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
        self.inner.token()
    }
}

impl<S: Stream> Stream for CancelStreamOwned<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        end_on_cancel(self.project().inner.poll_guarded(cx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint(0)
    }
}

impl<S: Stream> FusedStream for CancelStreamOwned<S> {
    fn is_terminated(&self) -> bool {
        self.inner.is_ended()
    }
}

impl<S> fmt::Debug for CancelStreamOwned<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelStreamOwned")
            .field("token", self.inner.token())
            .field("ended", &self.inner.is_ended())
            .finish()
    }
}

/// What [`CancelStream`] makes of a cancellation: the end of the stream.
fn end_on_cancel<I>(next: Poll<Option<Result<I, Cancelled>>>) -> Poll<Option<I>> {
    next.map(|item| item.and_then(Result::ok))
}
