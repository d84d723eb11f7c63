//! [`Operation`]: the public handle of one unit of work.

use std::borrow::Cow;
use std::fmt;
use std::time::{Instant, SystemTime};

use super::state::{Handle, State};
use super::{OperationId, OperationSnapshot, OperationStatus, Progress};
use crate::reason::Reason;
use crate::sync::Arc;
use crate::CancelToken;

/// A unit of cancellable work that reports what it is doing: a name, an id, an optional
/// parent operation, its own token, a start time, a status and a progress.
///
/// Make one standalone with [`Operation::new`], or in an
/// [`OperationRegistry`](super::OperationRegistry) with
/// [`start`](super::OperationRegistry::start) so that it can be listed, watched and cancelled
/// by id. Its [`token`](Self::token) is a new child of the token it was started under: the work
/// checks it, and cancelling the operation triggers it.
///
/// # Finishing
///
/// An operation finishes once, as [`Completed`](OperationStatus::Completed),
/// [`Failed`](OperationStatus::Failed) or [`Cancelled`](OperationStatus::Cancelled): by
/// [`complete`](Self::complete), [`fail`](Self::fail) or [`abort`](Self::abort), or by the
/// adapters [`run`](Self::run) and [`try_run`](Self::try_run), which finish it with the work.
/// The first finish wins and a status never goes back to `Running`.
///
/// A triggered token does not finish the operation by itself: it stays `Running` until its
/// work has stopped (a cancelled operation is one whose work stopped). **The last handle
/// dropped unfinished finishes it as cancelled**: with its token's reason if the token was
/// triggered, otherwise after triggering the token with a
/// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped) reason, "the operation was dropped
/// before it finished" (so work still running under the token stops too). If a callback of
/// the token panics then, the operation is finished first and the panic propagates from the
/// drop (it is dropped if the thread is already unwinding).
///
/// # Progress
///
/// [`advance`](Self::advance), [`set_done`](Self::set_done) and [`set_total`](Self::set_total)
/// are cheap enough for a hot loop: an atomic add or store and one atomic load (is anyone
/// subscribed?); with no subscription they take no lock and allocate nothing. The `tracing`
/// feature adds one relaxed load (tracing's level filter) while no subscriber wants DEBUG
/// events; its throttled progress events are described on `Operation::span`.
/// [`set_message`](Self::set_message) takes a lock.
///
/// Cloning gives another handle to the same operation; it is `Send + Sync`.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, Cancelled, Operation, OperationStatus};
///
/// fn checksum(files: &[&str], op: &Operation) -> Result<usize, Cancelled> {
///     op.set_total(files.len() as u64);
///     let mut sum = 0;
///     for file in files {
///         op.token().raise_if_triggered()?;
///         op.set_message(format!("reading {file}"));
///         sum += file.len();
///         op.advance(1);
///     }
///     Ok(sum)
/// }
///
/// let op = Operation::new("checksum", &CancelToken::new());
/// assert_eq!(checksum(&["a.txt", "b.txt"], &op), Ok(10));
/// op.complete();
/// assert_eq!(op.status(), OperationStatus::Completed);
/// assert_eq!(op.progress().fraction(), Some(1.0));
/// ```
#[derive(Clone)]
pub struct Operation {
    handle: Arc<Handle>,
}

impl Operation {
    /// A standalone operation (in no registry) named `name`, with a new token that is a child
    /// of `parent` (named after the operation).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let shutdown = CancelToken::new();
    /// let op = Operation::new("resize images", &shutdown);
    /// assert_eq!(op.name(), "resize images");
    /// assert_eq!(op.token().name(), Some("resize images"));
    /// shutdown.trigger();
    /// assert!(op.token().is_triggered());
    /// ```
    pub fn new(name: impl Into<Cow<'static, str>>, parent: &CancelToken) -> Operation {
        let name = name.into();
        let token = parent.child_named(name.clone());
        Operation::standalone(State::new(name, None, token, None))
    }

    fn standalone(state: State) -> Operation {
        Operation::from_handle(Arc::new(Handle {
            state: Arc::new(state),
        }))
    }

    pub(super) fn from_handle(handle: Arc<Handle>) -> Operation {
        Operation { handle }
    }

    pub(super) fn state(&self) -> &Arc<State> {
        &self.handle.state
    }

    /// A child operation named `name`: its parent is this operation, its token a child of
    /// this operation's token, and it is in the same registry, if any.
    ///
    /// The child is an operation of its own: it finishes on its own, and finishing this one
    /// does not finish it (though an [`abort`](Self::abort) or a drop of this one triggers its
    /// token).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let batch = Operation::new("batch", &CancelToken::new());
    /// let item = batch.child("item 1");
    /// assert_eq!(item.parent(), Some(batch.id()));
    /// batch.token().trigger();
    /// assert!(item.token().is_triggered());
    /// ```
    pub fn child(&self, name: impl Into<Cow<'static, str>>) -> Operation {
        let token = self.state().token.clone();
        self.child_under(name, &token)
    }

    /// A child operation named `name` whose token is a child of `token` rather than of this
    /// operation's: for work done on this operation's behalf but stopped by something else
    /// (a service's own shutdown). Its parent is still this operation, so a registry's
    /// [`cancel_tree`](super::OperationRegistry::cancel_tree) reaches it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let request = Operation::new("request", &CancelToken::new());
    /// let cache = CancelToken::new();
    /// let refill = request.child_under("refill cache", &cache);
    /// assert_eq!(refill.parent(), Some(request.id()));
    /// request.token().trigger();
    /// assert!(!refill.token().is_triggered(), "its token does not descend from the request's");
    /// ```
    pub fn child_under(
        &self,
        name: impl Into<Cow<'static, str>>,
        token: &CancelToken,
    ) -> Operation {
        let name = name.into();
        let token = token.child_named(name.clone());
        let parent = Some(&**self.state());
        match &self.state().registry {
            Some(registry) => Operation::from_handle(registry.start(name, parent, token)),
            None => Operation::standalone(State::new(name, parent, token, None)),
        }
    }

    /// The operation's id, unique in the process.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// assert_eq!(op.clone().id(), op.id());
    /// ```
    pub fn id(&self) -> OperationId {
        self.state().id
    }

    /// The operation's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// assert_eq!(Operation::new("job", &CancelToken::new()).name(), "job");
    /// ```
    pub fn name(&self) -> &str {
        &self.state().name
    }

    /// The id of the operation this one was started under by [`child`](Self::child), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// assert_eq!(Operation::new("job", &CancelToken::new()).parent(), None);
    /// ```
    pub fn parent(&self) -> Option<OperationId> {
        self.state().parent
    }

    /// The operation's token: the work checks it, and cancelling the operation triggers it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// assert!(op.token().raise_if_triggered().is_ok());
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.state().token
    }

    /// When the operation started, by the monotonic clock (for durations).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// assert!(op.started() <= Instant::now());
    /// ```
    pub fn started(&self) -> Instant {
        self.state().started
    }

    /// When the operation started, by the wall clock (for display).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// assert!(op.started_at() <= SystemTime::now());
    /// ```
    pub fn started_at(&self) -> SystemTime {
        self.state().started_at
    }

    /// Sets the total units of work. A total of `u64::MAX` reads as unknown (`None`).
    ///
    /// One atomic store and one atomic load; a lock only when a subscription is open and no
    /// update of this operation is waiting for it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// assert_eq!(op.progress().total, None);
    /// op.set_total(8);
    /// assert_eq!(op.progress().total, Some(8));
    /// ```
    #[inline]
    pub fn set_total(&self, total: u64) {
        self.state().set_total(total);
    }

    /// Adds `n` units of work done. The count wraps around at `u64::MAX`, as atomics do.
    ///
    /// One atomic add and one atomic load, as [`set_total`](Self::set_total).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// for _ in 0..1000 {
    ///     op.advance(1);
    /// }
    /// assert_eq!(op.progress().done, 1000);
    /// ```
    #[inline]
    pub fn advance(&self, n: u64) {
        self.state().advance(n);
    }

    /// Sets the units of work done.
    ///
    /// One atomic store and one atomic load, as [`set_total`](Self::set_total).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// op.set_done(42);
    /// assert_eq!(op.progress().done, 42);
    /// ```
    #[inline]
    pub fn set_done(&self, done: u64) {
        self.state().set_done(done);
    }

    /// Sets what the work is doing now, shown with the progress.
    ///
    /// Not for a hot loop: it takes a lock (and a `String` is an allocation the caller
    /// made); a `&'static str` is not copied.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// op.set_message("connecting");
    /// op.set_message(format!("page {} of {}", 1, 3));
    /// assert_eq!(op.progress().message.as_deref(), Some("page 1 of 3"));
    /// ```
    pub fn set_message(&self, message: impl Into<Cow<'static, str>>) {
        self.state().set_message(Some(message.into()));
    }

    /// Removes the progress message.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// op.set_message("connecting");
    /// op.clear_message();
    /// assert_eq!(op.progress().message, None);
    /// ```
    pub fn clear_message(&self) {
        self.state().set_message(None);
    }

    /// The progress now: done, total, message.
    ///
    /// Done and total are read one after the other, not as one atomic pair.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// op.set_total(4);
    /// op.advance(1);
    /// assert_eq!(op.progress().fraction(), Some(0.25));
    /// ```
    pub fn progress(&self) -> Progress {
        self.state().progress()
    }

    /// The status now.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation, OperationStatus};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// op.token().trigger();
    /// assert_eq!(op.status(), OperationStatus::Running, "the work has not stopped yet");
    /// ```
    pub fn status(&self) -> OperationStatus {
        self.state().status()
    }

    /// Whether the operation has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// assert!(!op.is_finished());
    /// op.complete();
    /// assert!(op.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.state().is_finished()
    }

    /// A snapshot of the operation: plain data, as a registry lists it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation, StatusKind};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// op.advance(2);
    /// let snapshot = op.snapshot();
    /// assert_eq!((snapshot.status, snapshot.progress.done), (StatusKind::Running, 2));
    /// ```
    pub fn snapshot(&self) -> OperationSnapshot {
        self.state().snapshot()
    }

    /// Finishes the operation as completed. Returns `true` if this call finished it (`false`
    /// if it had finished already: the first finish wins).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation, OperationStatus};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// assert!(op.complete());
    /// assert!(!op.fail("too late"));
    /// assert_eq!(op.status(), OperationStatus::Completed);
    /// ```
    pub fn complete(&self) -> bool {
        self.state().finish(OperationStatus::Completed)
    }

    /// Finishes the operation as failed with `message`. Returns `true` if this call finished
    /// it.
    ///
    /// Failing does not trigger the token: work started under it (child operations) goes on
    /// unless something triggers it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation, OperationStatus};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// assert!(op.fail(format!("exit code {}", 2)));
    /// assert_eq!(op.status(), OperationStatus::Failed("exit code 2".into()));
    /// ```
    pub fn fail(&self, message: impl Into<Cow<'static, str>>) -> bool {
        self.state().finish(OperationStatus::Failed(message.into()))
    }

    /// Finishes the operation as cancelled, from the work's side ("I stopped"): triggers the
    /// token with `reason` unless something triggered it already, and records the token's
    /// reason (the first one). Returns `true` if this call finished the operation.
    ///
    /// A registry's [`cancel`](super::OperationRegistry::cancel) only asks the work to stop;
    /// this says it has.
    ///
    /// # Panics
    ///
    /// If a callback of the token panics, the panic propagates from here, after the operation
    /// has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation, OperationStatus};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// op.token().trigger_with("user clicked stop");
    /// assert!(op.abort("never mind")); // the first reason wins
    /// assert_eq!(op.status(), OperationStatus::Cancelled("user clicked stop".into()));
    /// ```
    pub fn abort(&self, reason: impl Into<Reason>) -> bool {
        self.state().finish_cancelled(reason.into())
    }

    /// Finishes with `output` (what the adapters do): complete, or fail with `failure`.
    pub(super) fn finish_with(&self, failure: Option<String>) {
        match failure {
            Some(message) => self.fail(message),
            None => self.complete(),
        };
    }
}

impl PartialEq for Operation {
    /// Two handles are equal when they are handles of the same operation.
    fn eq(&self, other: &Operation) -> bool {
        Arc::ptr_eq(self.state(), other.state())
    }
}

impl Eq for Operation {}

impl std::hash::Hash for Operation {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("parent", &self.parent())
            .field("status", &self.status())
            .field("progress", &self.progress())
            .finish()
    }
}
