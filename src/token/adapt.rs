//! Running futures and streams under a token: the entry points of the adapters in `run/`.

use std::future::Future;
use std::time::Duration;

use futures_core::Stream;

use crate::run::{
    CancelStream, CancelStreamOwned, CancellableWait, ResultCancelStream, ResultCancelStreamOwned,
    Run, RunOwned, TryCancelStream, TryCancelStreamOwned,
};
use crate::{CancelToken, Cancelled};

impl CancelToken {
    /// Runs `future` until it completes or the token is triggered, whichever comes first.
    ///
    /// The result is `Ok(output)`, or `Err(Cancelled)` once the token is triggered.
    /// Cancellation wins ties: the token is checked before every poll of `future`, a token
    /// triggered before the first poll means `future` is never polled, and `future` is dropped
    /// the moment the trigger is seen. See [`Run`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let trigger = token.clone();
    /// std::thread::spawn(move || trigger.trigger_with("user pressed stop"));
    ///
    /// // A download that would never finish on its own.
    /// let result = token.run(futures_lite::future::pending::<Vec<u8>>()).await;
    /// assert_eq!(result.unwrap_err().reason().message(), Some("user pressed stop"));
    /// # });
    /// ```
    pub fn run<F: Future>(&self, future: F) -> Run<'_, F> {
        Run::new(self, future)
    }

    /// Like [`run`](Self::run), but the returned future owns a handle of the token, so it can
    /// be spawned (`tokio::spawn(token.clone().run_owned(fut))`). See [`RunOwned`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let task = token.clone().run_owned(futures_lite::future::pending::<()>());
    /// let handle = std::thread::spawn(move || futures_lite::future::block_on(task));
    /// token.trigger();
    /// assert!(handle.join().unwrap().is_err());
    /// ```
    pub fn run_owned<F: Future>(self, future: F) -> RunOwned<F> {
        RunOwned::new(self, future)
    }

    /// Yields the items of `stream` until the token is triggered, then ends. See
    /// [`CancelStream`].
    ///
    /// The end of a cancelled stream looks like a natural one: where that matters (a download
    /// that must not look complete when it was cut), use [`try_stream`](Self::try_stream) or
    /// [`result_stream`](Self::result_stream), whose last item is the cancellation error.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let mut total = 0;
    /// let mut readings = token.stream(stream::iter(1..));
    /// while let Some(reading) = readings.next().await {
    ///     total += reading;
    ///     if total > 10 {
    ///         token.trigger_with("enough data");
    ///     }
    /// }
    /// assert_eq!(total, 15); // 1 + 2 + 3 + 4 + 5
    /// # });
    /// ```
    pub fn stream<S: Stream>(&self, stream: S) -> CancelStream<'_, S> {
        CancelStream::new(self, stream)
    }

    /// Like [`stream`](Self::stream), but the returned stream owns a handle of the token. See
    /// [`CancelStreamOwned`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let mut lines = token.clone().stream_owned(stream::iter(["a", "b"]));
    /// assert_eq!(lines.next().await, Some("a"));
    /// token.trigger();
    /// assert_eq!(lines.next().await, None);
    /// # });
    /// ```
    pub fn stream_owned<S: Stream>(self, stream: S) -> CancelStreamOwned<S> {
        CancelStreamOwned::new(self, stream)
    }

    /// Yields `Ok(item)` for each item of `stream` until the token is triggered, then one
    /// `Err(Cancelled)`, then ends. A stream that ends by itself first ends without an error,
    /// so the last item tells a cut stream from a complete one. See [`TryCancelStream`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::{CancelToken, Cancelled};
    ///
    /// async fn download(
    ///     chunks: impl futures_core::Stream<Item = Vec<u8>>,
    ///     token: &CancelToken,
    /// ) -> Result<Vec<u8>, Cancelled> {
    ///     let mut file = Vec::new();
    ///     let mut chunks = std::pin::pin!(token.try_stream(chunks));
    ///     while let Some(chunk) = chunks.next().await {
    ///         file.extend(chunk?); // a cut download is an error, never a short file
    ///     }
    ///     Ok(file)
    /// }
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let chunks = || stream::iter([vec![1, 2], vec![3]]);
    /// assert_eq!(download(chunks(), &token).await, Ok(vec![1, 2, 3]));
    /// token.trigger();
    /// assert!(download(chunks(), &token).await.is_err());
    /// # });
    /// ```
    pub fn try_stream<S: Stream>(&self, stream: S) -> TryCancelStream<'_, S> {
        TryCancelStream::new(self, stream)
    }

    /// Like [`try_stream`](Self::try_stream), but the returned stream owns a handle of the
    /// token. See [`TryCancelStreamOwned`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let mut lines = token.clone().try_stream_owned(stream::iter(["a", "b"]));
    /// assert_eq!(lines.next().await, Some(Ok("a")));
    /// token.trigger();
    /// assert!(lines.next().await.unwrap().is_err());
    /// assert_eq!(lines.next().await, None);
    /// # });
    /// ```
    pub fn try_stream_owned<S: Stream>(self, stream: S) -> TryCancelStreamOwned<S> {
        TryCancelStreamOwned::new(self, stream)
    }

    /// For a stream of `Result<T, E>` with `E: From<Cancelled>` (an HTTP body, chunks of a
    /// file): yields its items untouched until the token is triggered, then one
    /// `Err(E::from(Cancelled))`, then ends. The cancellation becomes one more error of the
    /// stream's own type, so `?` and anything that aborts on an error (a server sending a
    /// response body) handle it as they handle a failed transfer. See [`ResultCancelStream`].
    ///
    /// For an error type without `From<Cancelled>` (a client library's error), use
    /// [`try_stream`](Self::try_stream) and `chunk??`, or map the errors first.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::CancelToken;
    ///
    /// async fn copy(
    ///     reads: impl futures_core::Stream<Item = io::Result<Vec<u8>>>,
    ///     token: &CancelToken,
    /// ) -> io::Result<usize> {
    ///     let mut copied = 0;
    ///     let mut reads = std::pin::pin!(token.result_stream(reads));
    ///     while let Some(chunk) = reads.next().await {
    ///         copied += chunk?.len(); // a read error or the cancellation
    ///     }
    ///     Ok(copied)
    /// }
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let reads = || stream::iter([Ok(vec![0; 3]), Ok(vec![0; 2])]);
    /// assert_eq!(copy(reads(), &token).await.unwrap(), 5);
    /// token.trigger_with("disk quota");
    /// let err = copy(reads(), &token).await.unwrap_err();
    /// assert_eq!(err.kind(), io::ErrorKind::Other); // TimedOut for a deadline
    /// # });
    /// ```
    pub fn result_stream<S, T, E>(&self, stream: S) -> ResultCancelStream<'_, S>
    where
        S: Stream<Item = Result<T, E>>,
        E: From<Cancelled>,
    {
        ResultCancelStream::new(self, stream)
    }

    /// Like [`result_stream`](Self::result_stream), but the returned stream owns a handle of
    /// the token, so it can be handed to a server as a response body. See
    /// [`ResultCancelStreamOwned`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use futures_lite::{stream, StreamExt};
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// token.trigger();
    /// let body = token.result_stream_owned(stream::iter([io::Result::Ok(b"never sent")]));
    /// let items: Vec<io::Result<_>> = body.collect().await;
    /// assert_eq!(items.len(), 1);
    /// assert!(items[0].is_err());
    /// # });
    /// ```
    pub fn result_stream_owned<S, T, E>(self, stream: S) -> ResultCancelStreamOwned<S>
    where
        S: Stream<Item = Result<T, E>>,
        E: From<Cancelled>,
    {
        ResultCancelStreamOwned::new(self, stream)
    }

    /// Waits for the first of `futures` to complete, unless the token is triggered or
    /// `timeout` elapses first.
    ///
    /// Returns the winner's output (errors inside it untouched), `Err(WaitError::Cancelled)`
    /// or `Err(WaitError::TimedOut)`. Every other future is dropped before this returns.
    /// `timeout: None` means no timeout; the timer is checked after the futures, so even
    /// `Some(Duration::ZERO)` lets a future that is ready at once win. With no futures at all
    /// this is [`wait`](Self::wait) with a timeout. A triggered token means no future is ever
    /// polled. See [`CancellableWait`].
    ///
    /// The futures must share one type: box them (`Box::pin(fut) as Pin<Box<dyn Future<..>>>`)
    /// or use an enum to mix different ones.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let replicas = (0..3).map(|i| async move {
    ///     if i == 2 { Ok::<_, std::io::Error>(i) } else { futures_lite::future::pending().await }
    /// });
    /// let fastest = token.cancellable_wait(replicas, Some(Duration::from_secs(5))).await;
    /// assert_eq!(fastest.unwrap().unwrap(), 2);
    /// # });
    /// ```
    pub fn cancellable_wait<I>(
        &self,
        futures: I,
        timeout: Option<Duration>,
    ) -> CancellableWait<'_, I::Item>
    where
        I: IntoIterator,
        I::Item: Future,
    {
        CancellableWait::new(self, futures, timeout)
    }
}
