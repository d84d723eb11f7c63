//! The adapters of an [`Operation`]: futures that finish it with their outcome
//! ([`run`](Operation::run), [`try_run`](Operation::try_run)) and streams that count their
//! items into its progress ([`track_stream`](Operation::track_stream)), each with an owned
//! twin.

use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;

use futures_core::Stream;

use super::run::{OperationRun, OperationRunOwned};
use super::stream::{TrackStream, TrackStreamOwned};
use super::Operation;

impl Operation {
    /// Runs `future` under the operation's token and finishes the operation with it:
    /// `Ok(output)` completes it, a trigger of the token cancels it with the token's reason
    /// (`Err(Cancelled)`), with [`CancelToken::run`](crate::CancelToken::run)'s tie rule (cancellation wins).
    ///
    /// Dropping the future before it finishes leaves the operation running.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation, OperationStatus};
    ///
    /// # futures_lite::future::block_on(async {
    /// let op = Operation::new("fetch", &CancelToken::new());
    /// assert_eq!(op.run(async { 7 }).await, Ok(7));
    /// assert_eq!(op.status(), OperationStatus::Completed);
    ///
    /// let op = Operation::new("fetch", &CancelToken::new());
    /// op.token().trigger_with("timed out by the user");
    /// assert!(op.run(std::future::pending::<()>()).await.is_err());
    /// assert_eq!(op.status(), OperationStatus::Cancelled("timed out by the user".into()));
    /// # });
    /// ```
    pub fn run<F: Future>(&self, future: F) -> OperationRun<'_, F> {
        OperationRun::new(self, future, |_| None)
    }

    /// Like [`run`](Self::run), owning a handle of the operation, so that the future is
    /// `'static` (and `Send` when `future` is): for spawning. If it is the last handle,
    /// dropping the future unfinished cancels the operation.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation, OperationStatus};
    ///
    /// let op = Operation::new("fetch", &CancelToken::new());
    /// let task = op.clone().run_owned(async { "body" });
    /// let handle = std::thread::spawn(move || futures_lite::future::block_on(task));
    /// assert_eq!(handle.join().unwrap(), Ok("body"));
    /// assert_eq!(op.status(), OperationStatus::Completed);
    /// ```
    pub fn run_owned<F: Future>(self, future: F) -> OperationRunOwned<F> {
        OperationRunOwned::new(self, future, |_| None)
    }

    /// Like [`run`](Self::run), for a future that can fail: its `Err(e)` fails the operation
    /// with `e.to_string()`, its `Ok` completes it. The output is the future's, inside the
    /// `Result` for the cancellation.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation, OperationStatus};
    ///
    /// # futures_lite::future::block_on(async {
    /// let op = Operation::new("parse", &CancelToken::new());
    /// let output = op.try_run(async { "x".parse::<u32>() }).await;
    /// assert!(matches!(output, Ok(Err(_))));
    /// assert_eq!(op.status(), OperationStatus::Failed("invalid digit found in string".into()));
    /// # });
    /// ```
    pub fn try_run<F, T, E>(&self, future: F) -> OperationRun<'_, F>
    where
        F: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        OperationRun::new(self, future, failure::<T, E>)
    }

    /// Like [`try_run`](Self::try_run), owning a handle of the operation, as
    /// [`run_owned`](Self::run_owned).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation, StatusKind};
    ///
    /// let op = Operation::new("parse", &CancelToken::new());
    /// let task = op.clone().try_run_owned(async { "12".parse::<u32>() });
    /// assert_eq!(futures_lite::future::block_on(task), Ok(Ok(12)));
    /// assert_eq!(op.status().kind(), StatusKind::Completed);
    /// ```
    pub fn try_run_owned<F, T, E>(self, future: F) -> OperationRunOwned<F>
    where
        F: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        OperationRunOwned::new(self, future, failure::<T, E>)
    }

    /// Yields `stream`'s items, advancing the progress by `every` each time `every` more items
    /// have passed and by the rest when the stream ends, is cut or is dropped; ends when the
    /// operation's token is triggered (as [`CancelToken::stream`](crate::CancelToken::stream)). It does not finish the
    /// operation.
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
    /// let every = NonZeroU64::new(100).unwrap();
    /// let rows: Vec<u32> = op.track_stream(stream::iter(0..250), every).collect().await;
    /// assert_eq!(rows.len(), 250);
    /// assert_eq!(op.progress().done, 250);
    /// # });
    /// ```
    pub fn track_stream<S: Stream>(&self, stream: S, every: NonZeroU64) -> TrackStream<'_, S> {
        TrackStream::new(self, stream, every)
    }

    /// Like [`track_stream`](Self::track_stream), owning a handle of the operation, so that
    /// the stream is `'static` (and `Send` when `stream` is).
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
    /// let tracked = op.clone().track_stream_owned(stream::iter(0..3), NonZeroU64::MIN);
    /// assert_eq!(tracked.count().await, 3);
    /// assert_eq!(op.progress().done, 3);
    /// # });
    /// ```
    pub fn track_stream_owned<S: Stream>(
        self,
        stream: S,
        every: NonZeroU64,
    ) -> TrackStreamOwned<S> {
        TrackStreamOwned::new(self, stream, every)
    }
}

/// The failure message of a `Result` output, for `try_run`.
fn failure<T, E: fmt::Display>(output: &Result<T, E>) -> Option<String> {
    output.as_ref().err().map(ToString::to_string)
}
