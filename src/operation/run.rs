//! [`OperationRun`] and [`OperationRunOwned`]: a future run under an operation's token that
//! finishes the operation with its outcome.
//!
//! The race itself is [`CancelToken::run`](crate::CancelToken::run)'s, so the tie rule is the
//! crate's; these only turn the outcome into the operation's final status.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::Operation;
use crate::error::Cancelled;
use crate::run::{Run, RunOwned};

/// Finishes `op` with a run's outcome: completed, failed with `failure`'s message, or
/// cancelled with the token's reason.
fn finish<O>(op: &Operation, outcome: &Result<O, Cancelled>, failure: fn(&O) -> Option<String>) {
    match outcome {
        Ok(output) => op.finish_with(failure(output)),
        Err(cancelled) => {
            // The token is triggered already: this records its reason, no callback runs.
            op.abort(cancelled.reason().clone());
        }
    }
}

pin_project! {
    /// Future for the [`Operation::run()`] and [`Operation::try_run()`] methods.
    ///
    /// Resolves to `Ok(output)` if the wrapped future completes first (the operation
    /// completes, or for `try_run` fails on an `Err` output), or `Err(Cancelled)` once the
    /// operation's token is triggered (the operation is cancelled with the token's reason).
    ///
    /// # Cancellation safety
    ///
    /// As [`Run`]: the wrapped future is dropped the moment the trigger is seen. Dropping this
    /// future before it resolves leaves the operation running (it finishes when its last
    /// handle goes, at the latest).
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties: the token is checked before the wrapped future at every poll.
    ///
    /// # Panics
    ///
    /// Polling again after it resolved panics, like any completed `async` block.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation, StatusKind};
    ///
    /// # futures_lite::future::block_on(async {
    /// let op = Operation::new("job", &CancelToken::new());
    /// let run = op.run(async { 1 });
    /// assert_eq!(run.await, Ok(1));
    /// assert_eq!(op.status().kind(), StatusKind::Completed);
    /// # });
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct OperationRun<'a, F: Future> {
        #[pin]
        run: Run<'a, F>,
        op: &'a Operation,
        failure: fn(&F::Output) -> Option<String>,
    }
}

impl<'a, F: Future> OperationRun<'a, F> {
    pub(super) fn new(
        op: &'a Operation,
        future: F,
        failure: fn(&F::Output) -> Option<String>,
    ) -> Self {
        OperationRun {
            run: op.token().run(future),
            op,
            failure,
        }
    }
}

impl<F: Future> Future for OperationRun<'_, F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = ready!(this.run.poll(cx));
        finish(this.op, &outcome, *this.failure);
        Poll::Ready(outcome)
    }
}

impl<F: Future> fmt::Debug for OperationRun<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationRun")
            .field("operation", &self.op)
            .finish()
    }
}

pin_project! {
    /// Future for the [`Operation::run_owned()`] and [`Operation::try_run_owned()`] methods.
    ///
    /// Like [`OperationRun`], but it owns a handle of the operation, so it is `'static` (and
    /// `Send` when the wrapped future is) and can be spawned.
    ///
    /// # Cancellation safety
    ///
    /// As [`OperationRun`]; and if this future holds the operation's last handle, dropping it
    /// unfinished cancels the operation (see [`Operation`]).
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties, as for [`OperationRun`].
    ///
    /// # Panics
    ///
    /// Polling again after it resolved panics, like any completed `async` block.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation, StatusKind};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// let task = op.clone().run_owned(std::future::pending::<()>());
    /// drop(task); // never polled, but `op` is still a handle: the operation runs on
    /// assert_eq!(op.status().kind(), StatusKind::Running);
    /// let task = op.run_owned(std::future::pending::<()>());
    /// assert_eq!(task.operation().status().kind(), StatusKind::Running);
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct OperationRunOwned<F: Future> {
        #[pin]
        run: RunOwned<F>,
        op: Operation,
        failure: fn(&F::Output) -> Option<String>,
    }
}

impl<F: Future> OperationRunOwned<F> {
    pub(super) fn new(op: Operation, future: F, failure: fn(&F::Output) -> Option<String>) -> Self {
        OperationRunOwned {
            run: op.token().clone().run_owned(future),
            op,
            failure,
        }
    }

    /// The operation this future runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// let task = op.clone().run_owned(async {});
    /// assert_eq!(task.operation(), &op);
    /// ```
    pub fn operation(&self) -> &Operation {
        &self.op
    }
}

impl<F: Future> Future for OperationRunOwned<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = ready!(this.run.poll(cx));
        finish(this.op, &outcome, *this.failure);
        Poll::Ready(outcome)
    }
}

impl<F: Future> fmt::Debug for OperationRunOwned<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationRunOwned")
            .field("operation", &self.op)
            .finish()
    }
}
