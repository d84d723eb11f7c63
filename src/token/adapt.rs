//! Running futures and streams under a token: the entry points of `run.rs`'s adapters.

use std::future::Future;
use std::time::Duration;

use futures_core::Stream;

use crate::run::{CancelStream, CancelStreamOwned, CancellableWait, Run, RunOwned};
use crate::CancelToken;

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
