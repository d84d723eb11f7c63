//! [`OperationRegistry`]: the public face of a set of operations: start, look up, list,
//! cancel, history, counts and subscriptions. The state and its locking live in `table.rs`.

use std::borrow::Cow;
use std::fmt;

use super::subscribe::Subscription;
use super::table::{trigger_all, Shared};
use super::{Filter, Operation, OperationId, OperationSnapshot, StatusCounts, StatusKind};
use crate::reason::Reason;
use crate::sync::{Arc, Ordering};
use crate::CancelToken;

/// The history bound of [`OperationRegistry::new`].
const DEFAULT_HISTORY: usize = 100;

/// A set of operations to list, watch and cancel by id: opt-in, one value per use (a service,
/// a job queue), never a global.
///
/// [`start`](Self::start) begins an [`Operation`] in the registry. While it runs it is *live*:
/// [`get`](Self::get) returns a handle, [`list`](Self::list) shows it, and
/// [`cancel`](Self::cancel), [`cancel_tree`](Self::cancel_tree) and
/// [`cancel_all`](Self::cancel_all) trigger its token. The moment it finishes (completed,
/// failed, or cancelled once its work stopped, including when its last handle is dropped
/// unfinished), it leaves the live set and its final [`OperationSnapshot`] enters the
/// [`history`](Self::history), which keeps the newest ones up to its bound.
/// [`subscribe`](Self::subscribe) streams starts, progress and finishes.
///
/// The registry never keeps an operation running or alive: it holds what it needs for
/// snapshots and cancelling, and lets go of it at the finish. Cloning gives another handle to
/// the same registry; dropping every handle while operations run is fine (they finish into a
/// registry nobody looks at).
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, Filter, OperationRegistry, StatusKind};
///
/// let shutdown = CancelToken::new();
/// let registry = OperationRegistry::new();
///
/// let export = registry.start("export", &shutdown);
/// export.set_total(100);
/// export.advance(40);
/// let import = registry.start("import", &shutdown);
///
/// let running = registry.list(&Filter::new().status(StatusKind::Running));
/// assert_eq!(running.len(), 2);
/// assert_eq!(running[0].progress.fraction(), Some(0.4));
///
/// // A request cancels the import by id; its work sees the token and stops.
/// assert!(registry.cancel(import.id(), "cancelled by the user"));
/// # futures_lite::future::block_on(async {
/// let result = import.run(std::future::pending::<()>()).await;
/// assert!(result.is_err());
/// # });
/// export.complete();
///
/// assert_eq!(registry.len(), 0);
/// let counts = registry.counts();
/// assert_eq!((counts.completed, counts.cancelled), (1, 1));
/// assert_eq!(registry.history().len(), 2);
/// ```
#[derive(Clone)]
pub struct OperationRegistry {
    shared: Arc<Shared>,
}

impl OperationRegistry {
    /// An empty registry that keeps the last 100 finished operations in its history.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::OperationRegistry;
    ///
    /// let registry = OperationRegistry::new();
    /// assert!(registry.is_empty());
    /// assert_eq!(registry.history_limit(), 100);
    /// ```
    pub fn new() -> OperationRegistry {
        OperationRegistry::with_history(DEFAULT_HISTORY)
    }

    /// An empty registry whose history keeps the last `limit` finished operations (none for
    /// 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry};
    ///
    /// let registry = OperationRegistry::with_history(2);
    /// for name in ["a", "b", "c"] {
    ///     registry.start(name, &CancelToken::new()).complete();
    /// }
    /// let names: Vec<_> = registry.history().into_iter().map(|s| s.name).collect();
    /// assert_eq!(names, ["b", "c"]);
    /// ```
    pub fn with_history(limit: usize) -> OperationRegistry {
        OperationRegistry {
            shared: Arc::new(Shared::new(limit)),
        }
    }

    /// Starts an operation named `name` in this registry, with a new token that is a child
    /// of `parent` (named after the operation).
    ///
    /// Under a triggered `parent` the operation starts all the same, with a triggered token:
    /// its work will see it and stop.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry};
    ///
    /// let shutdown = CancelToken::new();
    /// let registry = OperationRegistry::new();
    /// let op = registry.start("backup", &shutdown);
    /// assert_eq!(registry.get(op.id()).unwrap().name(), "backup");
    /// shutdown.trigger();
    /// assert!(op.token().is_triggered());
    /// ```
    pub fn start(&self, name: impl Into<Cow<'static, str>>, parent: &CancelToken) -> Operation {
        let name = name.into();
        let token = parent.child_named(name.clone());
        Operation::from_handle(self.shared.start(name, None, token))
    }

    /// A handle to the live operation `id`, or `None` if it finished or is not in this
    /// registry.
    ///
    /// The handle counts as any other: while it lives, the operation is not finished by the
    /// drop of the others. An operation whose last handle is being dropped is already gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let op = registry.start("job", &CancelToken::new());
    /// let id = op.id();
    /// registry.get(id).unwrap().advance(5);
    /// assert_eq!(op.progress().done, 5);
    /// op.complete();
    /// assert!(registry.get(id).is_none());
    /// ```
    pub fn get(&self, id: OperationId) -> Option<Operation> {
        // Fails once the last handle is going: an operation is never revived. The handle is
        // returned, never dropped here, so no finish runs under the lock.
        let handle = self.shared.table().live.get(&id)?.handle.upgrade()?;
        Some(Operation::from_handle(handle))
    }

    /// A snapshot of operation `id`: live, or finished and still in the history.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry, OperationId, StatusKind};
    ///
    /// let registry = OperationRegistry::new();
    /// let op = registry.start("job", &CancelToken::new());
    /// assert_eq!(registry.snapshot(op.id()).unwrap().status, StatusKind::Running);
    /// op.complete();
    /// assert_eq!(registry.snapshot(op.id()).unwrap().status, StatusKind::Completed);
    /// assert!(registry.snapshot(OperationId::from_u64(u64::MAX)).is_none());
    /// ```
    pub fn snapshot(&self, id: OperationId) -> Option<OperationSnapshot> {
        let live = {
            let table = self.shared.table();
            match table.live.get(&id) {
                Some(entry) => Arc::clone(&entry.state),
                None => {
                    return table
                        .history
                        .iter()
                        .rev()
                        .find(|snapshot| snapshot.id == id)
                        .cloned()
                }
            }
        };
        // Read with no table lock held; the state is dropped with none either.
        Some(live.snapshot())
    }

    /// Snapshots of the operations `filter` selects, sorted by id (by start): the live ones,
    /// and the finished ones still in the history when the filter asks for a finished status.
    ///
    /// [`Filter::new`] alone selects the live operations only: a dashboard's "what runs now".
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Filter, OperationRegistry, StatusKind};
    ///
    /// let registry = OperationRegistry::new();
    /// let parent = registry.start("batch", &CancelToken::new());
    /// let child = parent.child("item");
    /// registry.start("other", &CancelToken::new()).fail("disk full");
    ///
    /// assert_eq!(registry.list(&Filter::new()).len(), 2);
    /// assert_eq!(registry.list(&Filter::new().parent(parent.id()))[0].id, child.id());
    /// assert_eq!(registry.list(&Filter::new().name("item")).len(), 1);
    /// let failed = registry.list(&Filter::new().status(StatusKind::Failed));
    /// assert_eq!(failed[0].message.as_deref(), Some("disk full"));
    /// ```
    pub fn list(&self, filter: &Filter) -> Vec<OperationSnapshot> {
        let live = self
            .shared
            .live_states(|state| filter.selects(state.parent, &state.name));
        let mut snapshots: Vec<OperationSnapshot> = live
            .iter()
            .map(|state| state.snapshot())
            .filter(|snapshot| filter.status.is_none_or(|status| snapshot.status == status))
            .collect();
        drop(live);
        if filter.status.is_some_and(StatusKind::is_finished) {
            let table = self.shared.table();
            snapshots.extend(
                table
                    .history
                    .iter()
                    .filter(|snapshot| {
                        Some(snapshot.status) == filter.status
                            && filter.selects(snapshot.parent, &snapshot.name)
                    })
                    .cloned(),
            );
        }
        // A live operation may have finished since: keep one snapshot per id.
        snapshots.sort_by_key(|snapshot| snapshot.id);
        snapshots.dedup_by_key(|snapshot| snapshot.id);
        snapshots
    }

    /// Triggers the token of the live operation `id` with `reason`. Returns `true` if this
    /// call triggered it (`false` if the operation is not live here, or its token was
    /// triggered already).
    ///
    /// This asks the work to stop; the operation stays
    /// [`Running`](super::OperationStatus::Running) until it has (its
    /// [`run`](Operation::run) adapter sees the trigger, or it is
    /// [`abort`](Operation::abort)ed, or its last handle is dropped), and then finishes as
    /// cancelled with this reason.
    ///
    /// # Panics
    ///
    /// If a callback of the token panics, the panic propagates from here.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry, OperationStatus};
    ///
    /// let registry = OperationRegistry::new();
    /// let op = registry.start("job", &CancelToken::new());
    /// assert!(registry.cancel(op.id(), "not needed any more"));
    /// assert!(!registry.cancel(op.id(), "again"), "triggered already");
    /// assert!(op.token().is_triggered());
    /// assert_eq!(op.status(), OperationStatus::Running, "until its work stops");
    /// ```
    pub fn cancel(&self, id: OperationId, reason: impl Into<Reason>) -> bool {
        let token = self
            .shared
            .table()
            .live
            .get(&id)
            .map(|entry| entry.state.token.clone());
        token.is_some_and(|token| token.trigger_with(reason))
    }

    /// Triggers the tokens of the live operation `id` and of all its live descendant
    /// operations (children, grandchildren, ..., by their parent ids, whether or not their
    /// tokens descend from its token) with `reason`. Returns how many of those tokens were
    /// not triggered before this call (0 if `id` is not live here).
    ///
    /// Descendants started while this runs may be missed; siblings and ancestors are never
    /// touched. A descendant whose parent already finished is still reached, through the
    /// parent's nearest live ancestor; but one *started* under a parent that had already
    /// finished is a root of its own here (its token still descends from the parent's if
    /// [`child`](Operation::child) made it).
    ///
    /// # Panics
    ///
    /// If a callback of a token panics, the first panic propagates from here after every
    /// token is triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let batch = registry.start("batch", &CancelToken::new());
    /// let item = batch.child("item");
    /// let part = item.child_under("upload", &CancelToken::new()); // its own token tree
    /// let other = registry.start("other", &CancelToken::new());
    ///
    /// assert_eq!(registry.cancel_tree(batch.id(), "batch cancelled"), 3);
    /// assert!(part.token().is_triggered());
    /// assert!(!other.token().is_triggered());
    /// ```
    pub fn cancel_tree(&self, id: OperationId, reason: impl Into<Reason>) -> usize {
        let tokens = self.shared.table().subtree(id);
        trigger_all(tokens, reason.into())
    }

    /// Triggers the tokens of every live operation with `reason`. Returns how many were not
    /// triggered before this call.
    ///
    /// # Panics
    ///
    /// If a callback of a token panics, the first panic propagates from here after every
    /// token is triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let a = registry.start("a", &CancelToken::new());
    /// let b = registry.start("b", &CancelToken::new());
    /// assert_eq!(registry.cancel_all("shutting down"), 2);
    /// assert!(a.token().is_triggered() && b.token().is_triggered());
    /// ```
    pub fn cancel_all(&self, reason: impl Into<Reason>) -> usize {
        let tokens = self
            .shared
            .table()
            .live
            .values()
            .map(|entry| entry.state.token.clone())
            .collect();
        trigger_all(tokens, reason.into())
    }

    /// Snapshots of the finished operations the history holds, oldest first, newest last: at
    /// most [`history_limit`](Self::history_limit) of them.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry, StatusKind};
    ///
    /// let registry = OperationRegistry::new();
    /// registry.start("first", &CancelToken::new()).complete();
    /// registry.start("second", &CancelToken::new()).fail("boom");
    /// let history = registry.history();
    /// assert_eq!(history[1].name, "second");
    /// assert_eq!(history[1].status, StatusKind::Failed);
    /// ```
    pub fn history(&self) -> Vec<OperationSnapshot> {
        self.shared.table().history.iter().cloned().collect()
    }

    /// How many finished operations the history keeps.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::OperationRegistry;
    ///
    /// assert_eq!(OperationRegistry::with_history(5).history_limit(), 5);
    /// ```
    pub fn history_limit(&self) -> usize {
        self.shared.table().limit
    }

    /// The operations by status: `running` counts the live ones; the others count every
    /// operation that finished so since the registry was made, not only those the history
    /// still holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry};
    ///
    /// let registry = OperationRegistry::with_history(1);
    /// let _running = registry.start("a", &CancelToken::new());
    /// registry.start("b", &CancelToken::new()).complete();
    /// registry.start("c", &CancelToken::new()).complete();
    /// drop(registry.start("d", &CancelToken::new())); // dropped unfinished: cancelled
    ///
    /// let counts = registry.counts();
    /// assert_eq!((counts.running, counts.completed, counts.cancelled), (1, 2, 1));
    /// assert_eq!(counts.total(), 4);
    /// assert_eq!(registry.history().len(), 1);
    /// ```
    pub fn counts(&self) -> StatusCounts {
        let table = self.shared.table();
        StatusCounts {
            running: table.live.len() as u64,
            completed: table.completed,
            failed: table.failed,
            cancelled: table.cancelled,
        }
    }

    /// The number of live (running) operations.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let op = registry.start("job", &CancelToken::new());
    /// assert_eq!(registry.len(), 1);
    /// drop(op);
    /// assert_eq!(registry.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.shared.table().live.len()
    }

    /// Whether no operation is running.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::OperationRegistry;
    ///
    /// assert!(OperationRegistry::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Subscribes to the registry's events: every start, progress update and finish from
    /// now on (see [`Subscription`] for ordering, coalescing and the bound).
    ///
    /// An operation's progress is watched, and so costs more than atomics, only while some
    /// subscription is open.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationEvent, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let events = registry.subscribe();
    /// let op = registry.start("job", &CancelToken::new());
    /// op.advance(3);
    /// assert!(matches!(events.try_next(), Some(OperationEvent::Started(s)) if s.name == "job"));
    /// assert!(matches!(events.try_next(), Some(OperationEvent::Progress { progress, .. }) if progress.done == 3));
    /// op.complete();
    /// assert!(matches!(events.try_next(), Some(OperationEvent::Finished(_))));
    /// assert!(events.try_next().is_none());
    /// ```
    pub fn subscribe(&self) -> Subscription {
        Subscription::new(&self.shared, super::subscribe::DEFAULT_CAPACITY)
    }

    /// Like [`subscribe`](Self::subscribe), with room for `capacity` start and finish events
    /// not yet taken (at least 1) instead of 1024. Beyond it, the oldest are dropped and
    /// counted in an [`OperationEvent::Lagged`](super::OperationEvent::Lagged).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationEvent, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let events = registry.subscribe_with_capacity(2);
    /// for _ in 0..3 {
    ///     registry.start("job", &CancelToken::new()).complete();
    /// }
    /// assert!(matches!(events.try_next(), Some(OperationEvent::Lagged(4))));
    /// assert!(matches!(events.try_next(), Some(OperationEvent::Started(_))));
    /// assert!(matches!(events.try_next(), Some(OperationEvent::Finished(_))));
    /// ```
    pub fn subscribe_with_capacity(&self, capacity: usize) -> Subscription {
        Subscription::new(&self.shared, capacity.max(1))
    }

    /// Whether a subscription is open: progress updates are lock-free and queue nothing
    /// while this is `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::OperationRegistry;
    ///
    /// let registry = OperationRegistry::new();
    /// let events = registry.subscribe();
    /// assert!(registry.is_watched());
    /// drop(events);
    /// assert!(!registry.is_watched());
    /// ```
    pub fn is_watched(&self) -> bool {
        self.shared.watched.load(Ordering::Relaxed) != 0
    }
}

impl Default for OperationRegistry {
    fn default() -> OperationRegistry {
        OperationRegistry::new()
    }
}

impl fmt::Debug for OperationRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.shared.table();
        f.debug_struct("OperationRegistry")
            .field("running", &table.live.len())
            .field("history", &table.history.len())
            .field("history_limit", &table.limit)
            .field(
                "subscriptions",
                &self.shared.watched.load(Ordering::Relaxed),
            )
            .finish()
    }
}
