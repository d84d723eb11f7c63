//! The shared state behind an [`OperationRegistry`](super::OperationRegistry): the table
//! (live set, operation tree, history, counts) and the subscribers.
//!
//! Two locks, never held together with user code: the table's and the subscribers' list's
//! (taken, with each subscriber's queue inside it, to publish an event). When both are held
//! (a start announcing itself, a new subscription), the table's is taken first. Tokens are
//! triggered, and operation states and evicted snapshots dropped, after the table's lock is
//! released; wakers are woken after both are released.
//!
//! The live set also keeps the operation tree for `cancel_tree`: each entry's nearest live
//! ancestor and the live operations below it. When an operation finishes, the operations
//! below it move up to its own nearest live ancestor, so a grandchild stays reachable from its
//! grandparent after the operation between them finished.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::state::{Handle, State};
use super::subscribe::Subscribers;
use super::{OperationEvent, OperationId, OperationSnapshot, StatusKind};
use crate::reason::Reason;
use crate::sync::{lock, Arc, AtomicUsize, Mutex, MutexGuard, Weak};
use crate::CancelToken;

pub(super) struct Shared {
    /// How many subscriptions are open: the one thing a progress update reads.
    pub(super) watched: AtomicUsize,
    table: Mutex<Table>,
    pub(super) subscribers: Mutex<Subscribers>,
}

pub(super) struct Table {
    pub(super) live: BTreeMap<OperationId, Entry>,
    pub(super) history: VecDeque<OperationSnapshot>,
    pub(super) limit: usize,
    pub(super) completed: u64,
    pub(super) failed: u64,
    pub(super) cancelled: u64,
}

pub(super) struct Entry {
    pub(super) state: Arc<State>,
    /// What handles share, for `get`: weak, so the registry never counts as a handle.
    pub(super) handle: Weak<Handle>,
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
    pub(super) fn subtree(&self, root: OperationId) -> Vec<CancelToken> {
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
        parent: Option<&State>,
        token: CancelToken,
    ) -> Arc<Handle> {
        let state = Arc::new(State::new(name, parent, token, Some(Arc::clone(self))));
        let parent = state.parent;
        let handle = Arc::new(Handle {
            state: Arc::clone(&state),
        });
        let wakers = {
            let mut table = lock(&self.table);
            let up = parent.filter(|parent| table.live.contains_key(parent));
            if let Some(entry) = up.and_then(|up| table.live.get_mut(&up)) {
                entry.down.insert(state.id);
            }
            table.live.insert(
                state.id,
                Entry {
                    state: Arc::clone(&state),
                    handle: Arc::downgrade(&handle),
                    up,
                    down: BTreeSet::new(),
                },
            );
            // Queued before the table's lock is released: whoever finds the operation in the
            // table and finishes it queues `Finished` after this. Woken after the lock.
            self.enqueue(|| OperationEvent::Started(state.snapshot()))
        };
        wakers.into_iter().for_each(std::task::Waker::wake);
        handle
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

    /// Runs `f` with the table locked (for a subscription that must see the live operations
    /// and join the subscribers in one step; the order is the table's lock, then the
    /// subscribers').
    pub(super) fn with_table<R>(&self, f: impl FnOnce(&Table) -> R) -> R {
        f(&lock(&self.table))
    }

    pub(super) fn live_states(&self, mut keep: impl FnMut(&State) -> bool) -> Vec<Arc<State>> {
        let table = lock(&self.table);
        table
            .live
            .values()
            .filter(|entry| keep(&entry.state))
            .map(|entry| Arc::clone(&entry.state))
            .collect()
    }

    pub(super) fn new(limit: usize) -> Shared {
        Shared {
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
        }
    }

    pub(super) fn table(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }
}

/// Triggers every token (the first panic of a callback is resumed after all of them), and
/// returns how many were not triggered before.
pub(super) fn trigger_all(tokens: Vec<CancelToken>, reason: Reason) -> usize {
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
