//! [`TrackStream`] and [`TrackStreamOwned`]: a stream whose items advance an operation's
//! progress, in batches, and which ends when the operation's token is triggered.
//!
//! The ending is [`CancelToken::stream`](crate::CancelToken::stream)'s (tie rule included);
//! the counting is a plain field of the adapter, so an item costs one add and one compare, and
//! the operation sees one update per batch.

use std::fmt;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::Operation;
use crate::run::{CancelStream, CancelStreamOwned};

/// Items passed and not yet reported, and where they are reported; reports the rest when
/// dropped, so progress counts every item handed out even if the consumer stops early.
struct Counter<O: OperationRef> {
    op: O,
    every: NonZeroU64,
    pending: u64,
}

impl<O: OperationRef> Counter<O> {
    #[inline]
    fn item(&mut self) {
        self.pending += 1;
        if self.pending == self.every.get() {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.pending != 0 {
            self.op
                .operation()
                .advance(std::mem::take(&mut self.pending));
        }
    }
}

impl<O: OperationRef> Drop for Counter<O> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A borrowed or owned handle: what the two adapters' counters report to.
trait OperationRef {
    fn operation(&self) -> &Operation;
}

impl OperationRef for &Operation {
    fn operation(&self) -> &Operation {
        self
    }
}

impl OperationRef for Operation {
    fn operation(&self) -> &Operation {
        self
    }
}

/// Counts `next` into `counter`: an item, or the end, which reports the rest.
fn count<T, O: OperationRef>(counter: &mut Counter<O>, next: &Poll<Option<T>>) {
    match next {
        Poll::Ready(Some(_)) => counter.item(),
        Poll::Ready(None) => counter.flush(),
        Poll::Pending => {}
    }
}

pin_project! {
    /// Stream for the [`Operation::track_stream()`] method.
    ///
    /// Yields the wrapped stream's items and advances the operation's progress by `every`
    /// after each `every` items, and by the rest when the stream ends, is cut by the token,
    /// or this adapter is dropped. It does not finish the operation.
    ///
    /// # Cancellation safety
    ///
    /// As [`CancelStream`]: once the trigger is seen, the wrapped stream is dropped and this
    /// one ends.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties: the token is checked before each poll of the wrapped stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU64;
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// # futures_lite::future::block_on(async {
    /// let op = Operation::new("lines", &CancelToken::new());
    /// let mut lines = op.track_stream(stream::iter(0..10), NonZeroU64::new(4).unwrap());
    /// for _ in 0..5 {
    ///     lines.next().await;
    /// }
    /// assert_eq!(op.progress().done, 4, "reported every 4 items");
    /// op.token().trigger();
    /// assert_eq!(lines.next().await, None);
    /// assert_eq!(op.progress().done, 5, "the rest at the end");
    /// # });
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct TrackStream<'a, S> {
        #[pin]
        inner: CancelStream<'a, S>,
        counter: Counter<&'a Operation>,
    }
}

impl<'a, S: Stream> TrackStream<'a, S> {
    pub(super) fn new(op: &'a Operation, stream: S, every: NonZeroU64) -> Self {
        TrackStream {
            inner: op.token().stream(stream),
            counter: Counter {
                op,
                every,
                pending: 0,
            },
        }
    }
}

impl<S: Stream> Stream for TrackStream<'_, S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let next = this.inner.poll_next(cx);
        count(this.counter, &next);
        next
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<S: Stream> FusedStream for TrackStream<'_, S> {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl<S> fmt::Debug for TrackStream<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackStream")
            .field("operation", self.counter.op)
            .field("every", &self.counter.every)
            .field("unreported", &self.counter.pending)
            .finish()
    }
}

pin_project! {
    /// Stream for the [`Operation::track_stream_owned()`] method.
    ///
    /// Like [`TrackStream`], but it owns a handle of the operation, so it is `'static` (and
    /// `Send` when the wrapped stream is). If it holds the last handle, dropping it cancels
    /// the operation (see [`Operation`]).
    ///
    /// # Cancellation safety
    ///
    /// As [`CancelStreamOwned`].
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties, as for [`TrackStream`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU64;
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// # futures_lite::future::block_on(async {
    /// let op = Operation::new("rows", &CancelToken::new());
    /// let every = NonZeroU64::new(2).unwrap();
    /// let mut rows = op.clone().track_stream_owned(stream::iter(["a", "b", "c"]), every);
    /// assert_eq!(rows.operation(), &op);
    /// while rows.next().await.is_some() {}
    /// assert_eq!(op.progress().done, 3);
    /// # });
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct TrackStreamOwned<S> {
        #[pin]
        inner: CancelStreamOwned<S>,
        counter: Counter<Operation>,
    }
}

impl<S: Stream> TrackStreamOwned<S> {
    pub(super) fn new(op: Operation, stream: S, every: NonZeroU64) -> Self {
        TrackStreamOwned {
            inner: op.token().clone().stream_owned(stream),
            counter: Counter {
                op,
                every,
                pending: 0,
            },
        }
    }

    /// The operation whose progress this stream advances.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU64;
    /// use futures_lite::stream;
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("rows", &CancelToken::new());
    /// let rows = op.clone().track_stream_owned(stream::empty::<()>(), NonZeroU64::MIN);
    /// assert_eq!(rows.operation().id(), op.id());
    /// ```
    pub fn operation(&self) -> &Operation {
        &self.counter.op
    }
}

impl<S: Stream> Stream for TrackStreamOwned<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let next = this.inner.poll_next(cx);
        count(this.counter, &next);
        next
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<S: Stream> FusedStream for TrackStreamOwned<S> {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl<S> fmt::Debug for TrackStreamOwned<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackStreamOwned")
            .field("operation", &self.counter.op)
            .field("every", &self.counter.every)
            .field("unreported", &self.counter.pending)
            .finish()
    }
}
