//! [`OperationRegistry`]: the live operations, a bounded history of finished ones, counts, and
//! the subscribers to their changes.
//!
//! Two locks, never held together with user code: the table (live set, history, counts) and
//! the subscribers' list (taken, with each subscriber's queue inside it, to publish an event).
//! Tokens are triggered, and operation states and evicted snapshots dropped, after the table's
//! lock is released; wakers are woken after both are released.
//!
//! The live set also keeps the operation tree for [`cancel_tree`](OperationRegistry::cancel_tree):
//! each entry's live parent and live children. When an operation finishes, its children move
//! up to its own live parent, so a grandchild stays reachable from its grandparent after the
//! operation between them finished.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use super::state::State;
use super::subscribe::{Subscribers, Subscription};
use super::{Operation, OperationEvent, OperationId, OperationSnapshot, StatusKind};
use crate::reason::Reason;
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering};
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

pub(super) struct Shared {
    /// How many subscriptions are open: the one thing a progress update reads.
    pub(super) watched: AtomicUsize,
    table: Mutex<Table>,
    pub(super) subscribers: Mutex<Subscribers>,
}

struct Table {
    live: BTreeMap<OperationId, Entry>,
    history: VecDeque<OperationSnapshot>,
    limit: usize,
    completed: u64,
    failed: u64,
    cancelled: u64,
}

struct Entry {
    state: Arc<State>,
    /// The nearest live ancestor.
    up: Option<OperationId>,
    /// The live operations whose nearest live ancestor this is.
    down: BTreeSet<OperationId>,
}

impl Table {
    /// Unlinks `id` from the live set and the tree; its children move up to its parent.
    fn unlink(&mut self, id: OperationId) -> Option<Arc<State>> {
        let entry = self.live.remove(&id)?;
        if let Some(up) = entry.up.and_then(|up| self.live.get_mut(&up)) {
            up.down.remove(&id);
            up.down.extend(entry.down.iter().copied());
        }
        for child in &entry.down {
            if let Some(child) = self.live.get_mut(child) {
                child.up = entry.up;
            }
        }
        Some(entry.state)
    }

    /// `root` and its live descendants, root first.
    fn subtree(&self, root: OperationId) -> Vec<CancelToken> {
        let mut tokens = Vec::new();
        let mut pending = vec![root];
        while let Some(id) = pending.pop() {
            if let Some(entry) = self.live.get(&id) {
                tokens.push(entry.state.token.clone());
                pending.extend(entry.down.iter().copied());
            }
        }
        tokens
    }
}

impl Shared {
    /// Enters a new operation in the live set and tells the subscribers.
    pub(super) fn start(
        self: &Arc<Shared>,
        name: Cow<'static, str>,
        parent: Option<OperationId>,
        token: CancelToken,
    ) -> Arc<State> {
        let state = Arc::new(State::new(name, parent, token, Some(Arc::clone(self))));
        {
            let mut table = lock(&self.table);
            let up = parent.filter(|parent| table.live.contains_key(parent));
            if let Some(entry) = up.and_then(|up| table.live.get_mut(&up)) {
                entry.down.insert(state.id);
            }
            table.live.insert(
                state.id,
                Entry {
                    state: Arc::clone(&state),
                    up,
                    down: BTreeSet::new(),
                },
            );
        }
        self.publish(|| OperationEvent::Started(state.snapshot()));
        state
    }

    /// Moves a finished operation from the live set to the history, and tells the
    /// subscribers. Called once per operation, by the call that set its final status.
    pub(super) fn finished(&self, state: &Arc<State>) {
        let snapshot = state.snapshot();
        let (removed, evicted) = {
            let mut table = lock(&self.table);
            let removed = table.unlink(state.id);
            match snapshot.status {
                StatusKind::Completed => table.completed += 1,
                StatusKind::Failed => table.failed += 1,
                _ => table.cancelled += 1,
            }
            table.history.push_back(snapshot.clone());
            let excess = table.history.len().saturating_sub(table.limit);
            let evicted: Vec<_> = table.history.drain(..excess).collect();
            (removed, evicted)
        };
        // The state holds the token, whose last handle may drop user callbacks: not under the
        // lock.
        drop(removed);
        drop(evicted);
        self.publish(|| OperationEvent::Finished(snapshot));
    }

    fn live_states(&self, mut keep: impl FnMut(&State) -> bool) -> Vec<Arc<State>> {
        let table = lock(&self.table);
        table
            .live
            .values()
            .filter(|entry| keep(&entry.state))
            .map(|entry| Arc::clone(&entry.state))
            .collect()
    }
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
            shared: Arc::new(Shared {
                watched: AtomicUsize::new(0),
                table: Mutex::new(Table {
                    live: BTreeMap::new(),
                    history: VecDeque::new(),
                    limit,
                    completed: 0,
                    failed: 0,
                    cancelled: 0,
                }),
                subscribers: Mutex::new(Subscribers::default()),
            }),
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
        Operation::from_state(self.shared.start(name, None, token))
    }

    /// A handle to the live operation `id`, or `None` if it finished or is not in this
    /// registry.
    ///
    /// The handle counts as any other: while it lives, the operation is not finished by the
    /// drop of the others.
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
        let state = lock(&self.shared.table)
            .live
            .get(&id)
            .map(|entry| Arc::clone(&entry.state))?;
        // Between the lookup and here the last other handle may have gone: an operation is
        // never revived once finished.
        if state.is_finished() {
            return None;
        }
        Some(Operation::from_state(state))
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
            let table = lock(&self.shared.table);
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
        let live = self.shared.live_states(|state| filter.selects(state.parent, &state.name));
        let mut snapshots: Vec<OperationSnapshot> = live
            .iter()
            .map(|state| state.snapshot())
            .filter(|snapshot| filter.status.is_none_or(|status| snapshot.status == status))
            .collect();
        drop(live);
        if filter.status.is_some_and(StatusKind::is_finished) {
            let table = lock(&self.shared.table);
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
        let token = lock(&self.shared.table)
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
    /// parent's nearest live ancestor.
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
        let tokens = lock(&self.shared.table).subtree(id);
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
        let tokens = lock(&self.shared.table)
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
        lock(&self.shared.table).history.iter().cloned().collect()
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
        lock(&self.shared.table).limit
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
        let table = lock(&self.shared.table);
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
        lock(&self.shared.table).live.len()
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
    /// op.complete();
    /// assert!(matches!(events.try_next(), Some(OperationEvent::Started(s)) if s.name == "job"));
    /// assert!(matches!(events.try_next(), Some(OperationEvent::Progress { progress, .. }) if progress.done == 3));
    /// assert!(matches!(events.try_next(), Some(OperationEvent::Finished(_))));
    /// assert!(events.try_next().is_none());
    /// ```
    pub fn subscribe(&self) -> Subscription {
        Subscription::new(&self.shared, super::subscribe::DEFAULT_CAPACITY)
    }

    /// Like [`subscribe`](Self::subscribe), with room for `capacity` start and finish events
    /// not yet taken (at least 1) instead of 1024. Beyond it, the oldest are dropped and
    /// counted in an [`OperationEvent::Lagged`].
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
        let table = lock(&self.shared.table);
        f.debug_struct("OperationRegistry")
            .field("running", &table.live.len())
            .field("history", &table.history.len())
            .field("history_limit", &table.limit)
            .field("subscriptions", &self.shared.watched.load(Ordering::Relaxed))
            .finish()
    }
}

/// Triggers every token (the first panic of a callback is resumed after all of them), and
/// returns how many were not triggered before.
fn trigger_all(tokens: Vec<CancelToken>, reason: Reason) -> usize {
    // Counted before any trigger: triggering a parent first triggers its child tokens too.
    let fresh = tokens.iter().filter(|token| !token.is_triggered()).count();
    let mut first_panic = None;
    for token in tokens {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            token.trigger_with(reason.clone())
        }));
        if let Err(payload) = outcome {
            match first_panic {
                None => first_panic = Some(payload),
                Some(_) => crate::walk::drop_payload(payload),
            }
        }
    }
    if let Some(payload) = first_panic {
        std::panic::resume_unwind(payload);
    }
    fresh
}

/// Which operations [`OperationRegistry::list`] returns: every condition set must hold.
///
/// # Examples
///
/// ```
/// use cancel_token::{Filter, OperationId, StatusKind};
///
/// let filter = Filter::new()
///     .status(StatusKind::Running)
///     .name("upload")
///     .parent(OperationId::from_u64(1));
/// assert_eq!(format!("{filter:?}"), r#"Filter { status: Some(Running), name: Some("upload"), parent: Some(OperationId(1)) }"#);
/// ```
#[derive(Clone, Default)]
pub struct Filter {
    status: Option<StatusKind>,
    name: Option<Cow<'static, str>>,
    parent: Option<OperationId>,
}

impl Filter {
    /// Selects the live operations (any status they have at the moment).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Filter, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let _op = registry.start("job", &CancelToken::new());
    /// assert_eq!(registry.list(&Filter::new()).len(), 1);
    /// ```
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Only operations with this status; a finished status selects from the history too.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Filter, OperationRegistry, StatusKind};
    ///
    /// let registry = OperationRegistry::new();
    /// registry.start("job", &CancelToken::new()).complete();
    /// assert_eq!(registry.list(&Filter::new().status(StatusKind::Completed)).len(), 1);
    /// assert!(registry.list(&Filter::new().status(StatusKind::Running)).is_empty());
    /// ```
    pub fn status(mut self, status: StatusKind) -> Filter {
        self.status = Some(status);
        self
    }

    /// Only operations with exactly this name.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Filter, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let _a = registry.start("a", &CancelToken::new());
    /// let _b = registry.start("b", &CancelToken::new());
    /// assert_eq!(registry.list(&Filter::new().name("b"))[0].name, "b");
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Filter {
        self.name = Some(name.into());
        self
    }

    /// Only the direct children of operation `parent`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Filter, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let parent = registry.start("parent", &CancelToken::new());
    /// let child = parent.child("child");
    /// let _grandchild = child.child("grandchild");
    /// let children = registry.list(&Filter::new().parent(parent.id()));
    /// assert_eq!(children.len(), 1);
    /// assert_eq!(children[0].id, child.id());
    /// ```
    pub fn parent(mut self, parent: OperationId) -> Filter {
        self.parent = Some(parent);
        self
    }

    fn selects(&self, parent: Option<OperationId>, name: &str) -> bool {
        self.parent.is_none_or(|wanted| parent == Some(wanted))
            && self.name.as_deref().is_none_or(|wanted| wanted == name)
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("status", &self.status)
            .field("name", &self.name.as_deref())
            .field("parent", &self.parent)
            .finish()
    }
}

/// How many operations of a registry are in each status, from
/// [`OperationRegistry::counts`].
///
/// `running` is the live set now; the finished counts are totals since the registry was made.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, OperationRegistry};
///
/// let registry = OperationRegistry::new();
/// registry.start("job", &CancelToken::new()).fail("no space left");
/// let counts = registry.counts();
/// assert_eq!(counts.failed, 1);
/// assert_eq!(format!("{counts:?}"), "StatusCounts { running: 0, completed: 0, failed: 1, cancelled: 0 }");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Operations running now.
    pub running: u64,
    /// Operations that completed, in all.
    pub completed: u64,
    /// Operations that failed, in all.
    pub failed: u64,
    /// Operations that were cancelled, in all.
    pub cancelled: u64,
}

impl StatusCounts {
    /// Every operation started in the registry: running plus finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::StatusCounts;
    ///
    /// assert_eq!(StatusCounts::default().total(), 0);
    /// ```
    pub fn total(&self) -> u64 {
        self.running + self.completed + self.failed + self.cancelled
    }
}

impl fmt::Debug for StatusCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusCounts")
            .field("running", &self.running)
            .field("completed", &self.completed)
            .field("failed", &self.failed)
            .field("cancelled", &self.cancelled)
            .finish()
    }
}
