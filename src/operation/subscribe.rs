//! [`Subscription`]: a registry's starts, progress updates and finishes, as a stream or for a
//! blocked thread.
//!
//! Each subscription has its own queue. Start and finish events are queued in full, in order,
//! up to the subscription's capacity. Progress is coalesced: an update that finds the
//! operation's `dirty` flag clear sets it and queues the operation once (under the
//! subscribers' lock, in each queue that does not hold it already); later updates find the
//! flag set and queue nothing. The subscriber clears the flag *before* it reads the progress,
//! so an update it does not see is one whose swap came after the clear, which queues the
//! operation again: the final value is never missed. The finish event carries the final
//! progress, so it replaces a progress entry still queued for its operation; and no progress
//! entry is queued after it (the finish is flagged before its event is queued, and a progress
//! entry is queued only while that flag is clear, under the same queue lock). So a queue
//! holds at most one progress entry per *live* operation.
//!
//! Wakers and the states of operations read for progress are dropped, and wakers woken, with
//! no lock held.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_core::Stream;

use super::state::State;
use super::table::Shared;
use super::{OperationId, OperationSnapshot, Progress};
use crate::sync::{lock, Arc, Condvar, Mutex, MutexGuard, Ordering, Weak};

/// The start and finish events a subscription holds by default before it lags.
pub(super) const DEFAULT_CAPACITY: usize = 1024;

/// What a [`Subscription`] reports.
///
/// `#[non_exhaustive]`: more kinds of events may come.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, OperationEvent, OperationRegistry};
///
/// let registry = OperationRegistry::new();
/// let events = registry.subscribe();
/// registry.start("job", &CancelToken::new()).complete();
/// while let Some(event) = events.try_next() {
///     match event {
///         OperationEvent::Started(op) => println!("{} started", op.name),
///         OperationEvent::Progress { id, progress } => println!("{id}: {progress}"),
///         OperationEvent::Finished(op) => println!("{} {}", op.name, op.status),
///         OperationEvent::Lagged(missed) => println!("missed {missed} events"),
///         _ => {}
///     }
/// }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum OperationEvent {
    /// An operation started.
    Started(OperationSnapshot),
    /// An operation's progress changed; this is its latest progress when the event was taken
    /// (updates in between are coalesced).
    Progress {
        /// The operation.
        id: OperationId,
        /// Its progress.
        progress: Progress,
    },
    /// An operation finished; the snapshot has its final status and progress.
    Finished(OperationSnapshot),
    /// The subscription's queue was full: this many start and finish events, the oldest,
    /// were dropped. The events after it are complete again.
    Lagged(u64),
}

impl fmt::Debug for OperationEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperationEvent::Started(op) => f.debug_tuple("Started").field(op).finish(),
            OperationEvent::Progress { id, progress } => f
                .debug_struct("Progress")
                .field("id", id)
                .field("progress", progress)
                .finish(),
            OperationEvent::Finished(op) => f.debug_tuple("Finished").field(op).finish(),
            OperationEvent::Lagged(missed) => f.debug_tuple("Lagged").field(missed).finish(),
        }
    }
}

/// The open subscriptions of a registry.
#[derive(Default)]
pub(super) struct Subscribers {
    queues: Vec<(u64, Arc<Queue>)>,
    next_key: u64,
}

pub(super) struct Queue {
    state: Mutex<Pending>,
    /// Blocked `next_blocking` callers.
    ready: Condvar,
}

struct Pending {
    entries: VecDeque<Entry>,
    /// The operations with a progress entry in `entries`.
    progress: HashSet<OperationId>,
    /// Start and finish entries in `entries`, at most `capacity`.
    statuses: usize,
    capacity: usize,
    lagged: u64,
    waker: Option<Waker>,
}

enum Entry {
    Status(OperationEvent),
    /// Weak: a queue must not keep a finished operation's state (and its token) alive.
    Progress(OperationId, Weak<State>),
}

impl Pending {
    /// Queues an entry; returns the waker to wake once the lock is released.
    fn push(&mut self, entry: Entry) -> Option<Waker> {
        if let Entry::Status(OperationEvent::Finished(snapshot)) = &entry {
            // The finish carries the final progress: a progress entry still queued for the
            // operation is redundant, and would hold the finished state's memory (a `Weak`)
            // for as long as this subscription is not read.
            if self.progress.remove(&snapshot.id) {
                let id = snapshot.id;
                self.entries
                    .retain(|queued| !matches!(queued, Entry::Progress(of, _) if *of == id));
            }
        }
        if let Entry::Status(_) = entry {
            if self.statuses == self.capacity {
                let oldest = self
                    .entries
                    .iter()
                    .position(|entry| matches!(entry, Entry::Status(_)));
                if let Some(oldest) = oldest {
                    // Plain data: nothing of the user's is dropped here.
                    self.entries.remove(oldest);
                    self.statuses -= 1;
                    self.lagged += 1;
                }
            }
            self.statuses += 1;
        }
        self.entries.push_back(entry);
        self.waker.take()
    }

    /// The next event, and the operation state it was read from (which the caller drops
    /// after releasing the lock).
    fn take(&mut self) -> Option<(OperationEvent, Option<Arc<State>>)> {
        if self.lagged != 0 {
            return Some((
                OperationEvent::Lagged(std::mem::take(&mut self.lagged)),
                None,
            ));
        }
        loop {
            match self.entries.pop_front()? {
                Entry::Status(event) => {
                    self.statuses -= 1;
                    return Some((event, None));
                }
                Entry::Progress(id, state) => {
                    self.progress.remove(&id);
                    // Gone: finished, and its finish event, which comes later in this
                    // queue, has the final progress.
                    let Some(state) = state.upgrade() else {
                        continue;
                    };
                    // Cleared before the read: an update this read misses sets the flag
                    // again and queues the operation again.
                    state.dirty.swap(false, Ordering::AcqRel);
                    let progress = state.progress();
                    return Some((OperationEvent::Progress { id, progress }, Some(state)));
                }
            }
        }
    }
}

impl Shared {
    /// Queues `make()`'s event in every subscription; nothing is built when there is none.
    pub(super) fn publish(&self, make: impl FnOnce() -> OperationEvent) {
        self.enqueue(make).into_iter().for_each(Waker::wake);
    }

    /// Queues `make()`'s event in every subscription and returns the wakers to wake once the
    /// caller holds no lock.
    pub(super) fn enqueue(&self, make: impl FnOnce() -> OperationEvent) -> Vec<Waker> {
        let subscribers = lock(&self.subscribers);
        if subscribers.queues.is_empty() {
            return Vec::new();
        }
        let event = make();
        subscribers
            .queues
            .iter()
            .filter_map(|(_, queue)| {
                let waker = lock(&queue.state).push(Entry::Status(event.clone()));
                queue.ready.notify_all();
                waker
            })
            .collect()
    }

    /// Queues `state`'s progress in every subscription that does not hold it yet. Called
    /// by the update that set the operation's `dirty` flag.
    pub(super) fn queue_progress(&self, state: &Arc<State>) {
        let wakers: Vec<Waker> = {
            let subscribers = lock(&self.subscribers);
            if subscribers.queues.is_empty() {
                // The last subscription went after the update saw it: clear the flag under
                // the lock a new subscription takes, so the next one hears of this operation.
                state.dirty.store(false, Ordering::Release);
                return;
            }
            subscribers
                .queues
                .iter()
                .filter_map(|(_, queue)| {
                    let mut pending = lock(&queue.state);
                    // After the finish event, a progress event would come out of order.
                    if state.is_finished() || !pending.progress.insert(state.id) {
                        return None;
                    }
                    let waker = pending.push(Entry::Progress(state.id, Arc::downgrade(state)));
                    drop(pending);
                    queue.ready.notify_all();
                    waker
                })
                .collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// A subscription to an [`OperationRegistry`](super::OperationRegistry)'s events, from
/// [`subscribe`](super::OperationRegistry::subscribe).
///
/// Take events with [`try_next`](Self::try_next), as a [`Stream`] on any executor, or on a
/// plain thread with [`next_blocking`](Self::next_blocking). The stream never ends by itself:
/// it waits for the next event as long as the subscription lives. Dropping it unsubscribes;
/// once no subscription is open, progress updates are lock-free again.
///
/// # Ordering and coalescing
///
/// Each operation's events come in order: `Started`, `Progress` events, `Finished`. Start and
/// finish events are never coalesced. A `Progress` event carries the operation's latest
/// progress when it is taken, and an operation has at most one queued at a time, so a hot
/// loop of updates yields a few events, not one per update. A `Progress` event not yet taken
/// when its operation finishes is dropped: `Finished` carries the final progress.
/// Operations started before the subscription are not announced: call
/// [`list`](super::OperationRegistry::list) after subscribing for those.
///
/// # Capacity
///
/// A subscription holds at most its capacity (1024 by default) of start and finish events not
/// yet taken. When one more comes, the oldest is dropped, and the next event taken is
/// [`OperationEvent::Lagged`] with the number dropped: nothing is lost silently. Progress
/// entries are not counted: there is at most one per live operation.
///
/// # Examples
///
/// ```
/// use futures_lite::StreamExt;
/// use cancel_token::{CancelToken, OperationEvent, OperationRegistry};
///
/// # futures_lite::future::block_on(async {
/// let registry = OperationRegistry::new();
/// let mut events = registry.subscribe();
/// let op = registry.start("job", &CancelToken::new());
/// op.complete();
/// assert!(matches!(events.next().await, Some(OperationEvent::Started(_))));
/// assert!(matches!(events.next().await, Some(OperationEvent::Finished(s)) if s.id == op.id()));
/// # });
/// ```
#[must_use = "a subscription queues events until it is dropped"]
pub struct Subscription {
    queue: Arc<Queue>,
    registry: Arc<Shared>,
    key: u64,
}

impl Subscription {
    pub(super) fn new(registry: &Arc<Shared>, capacity: usize) -> Subscription {
        let queue = Arc::new(Queue {
            state: Mutex::new(Pending {
                entries: VecDeque::new(),
                progress: HashSet::new(),
                statuses: 0,
                capacity,
                lagged: 0,
                waker: None,
            }),
            ready: Condvar::new(),
        });
        let key = registry.with_table(|table| {
            let mut subscribers = lock(&registry.subscribers);
            let key = subscribers.next_key;
            subscribers.next_key += 1;
            subscribers.queues.push((key, Arc::clone(&queue)));
            registry.watched.fetch_add(1, Ordering::Relaxed);
            // An operation whose `dirty` flag is set has an update waiting in an older
            // subscription, and queues nothing more until that one is taken: this one gets
            // an entry of its own now, or it would not hear of the operation until then.
            // Under the subscribers' lock, as `queue_progress` queues.
            let mut pending = lock(&queue.state);
            for entry in table.live.values() {
                let state = &entry.state;
                if state.dirty.load(Ordering::Acquire)
                    && !state.is_finished()
                    && pending.progress.insert(state.id)
                {
                    // A new queue has no waker to return.
                    let _ = pending.push(Entry::Progress(state.id, Arc::downgrade(state)));
                }
            }
            key
        });
        Subscription {
            queue,
            registry: Arc::clone(registry),
            key,
        }
    }

    /// The next event if one is queued, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::OperationRegistry;
    ///
    /// let events = OperationRegistry::new().subscribe();
    /// assert!(events.try_next().is_none());
    /// ```
    pub fn try_next(&self) -> Option<OperationEvent> {
        let (event, state) = lock(&self.queue.state).take()?;
        drop(state);
        Some(event)
    }

    /// Waits for the next event, blocking this thread.
    ///
    /// # Blocking
    ///
    /// Blocks until an event comes: forever if nothing happens in the registry. Use it on a
    /// plain thread, not inside async code (use the [`Stream`] there), or
    /// [`next_blocking_timeout`](Self::next_blocking_timeout) to give up after a while.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationEvent, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let events = registry.subscribe();
    /// let worker = std::thread::spawn(move || {
    ///     registry.start("job", &CancelToken::new()).complete();
    /// });
    /// assert!(matches!(events.next_blocking(), OperationEvent::Started(_)));
    /// assert!(matches!(events.next_blocking(), OperationEvent::Finished(_)));
    /// worker.join().unwrap();
    /// ```
    pub fn next_blocking(&self) -> OperationEvent {
        loop {
            // Without a deadline it returns only with an event; the loop satisfies the types
            // without a panic path.
            if let Some(event) = self.next_blocking_until(None) {
                return event;
            }
        }
    }

    /// Waits at most `timeout` for the next event, blocking this thread; `None` if none came.
    ///
    /// # Blocking
    ///
    /// Blocks for up to `timeout` (a timeout too large for an `Instant` waits without a
    /// bound, like [`next_blocking`](Self::next_blocking)). Use it on a plain thread, not
    /// inside async code.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::OperationRegistry;
    ///
    /// let events = OperationRegistry::new().subscribe();
    /// assert!(events.next_blocking_timeout(Duration::from_millis(1)).is_none());
    /// ```
    pub fn next_blocking_timeout(&self, timeout: Duration) -> Option<OperationEvent> {
        // An overflowing deadline is "never", as for the crate's other timeouts.
        self.next_blocking_until(Instant::now().checked_add(timeout))
    }

    /// Blocks until an event comes (`Some`) or `deadline` passes (`None`).
    fn next_blocking_until(&self, deadline: Option<Instant>) -> Option<OperationEvent> {
        let mut pending: MutexGuard<'_, Pending> = lock(&self.queue.state);
        loop {
            if let Some((event, state)) = pending.take() {
                drop(pending);
                drop(state);
                return Some(event);
            }
            pending = match deadline {
                None => self
                    .queue
                    .ready
                    .wait(pending)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.checked_duration_since(Instant::now())?;
                    self.queue
                        .ready
                        .wait_timeout(pending, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Start and finish events queued and not taken yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let events = registry.subscribe();
    /// let _op = registry.start("job", &CancelToken::new());
    /// assert_eq!(events.queued(), 1);
    /// ```
    pub fn queued(&self) -> usize {
        lock(&self.queue.state).statuses
    }
}

impl Stream for Subscription {
    type Item = OperationEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<OperationEvent>> {
        let replaced = {
            let mut pending = lock(&self.queue.state);
            if let Some((event, state)) = pending.take() {
                drop(pending);
                drop(state);
                return Poll::Ready(Some(event));
            }
            match &mut pending.waker {
                Some(waker) if waker.will_wake(cx.waker()) => None,
                slot => slot.replace(cx.waker().clone()),
            }
        };
        // The waker this one replaced is dropped (user code) with no lock held.
        drop(replaced);
        Poll::Pending
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let removed = {
            let mut subscribers = lock(&self.registry.subscribers);
            let removed = subscribers
                .queues
                .iter()
                .position(|(key, _)| *key == self.key)
                .map(|at| subscribers.queues.swap_remove(at));
            self.registry.watched.fetch_sub(1, Ordering::Relaxed);
            removed
        };
        drop(removed);
        // No event can be queued here any more. The operations whose progress waits here
        // would keep their `dirty` flag set and never be queued again: clear it (a spurious
        // clear only queues an operation once more for the other subscriptions).
        let (entries, waker) = {
            let mut pending = lock(&self.queue.state);
            (std::mem::take(&mut pending.entries), pending.waker.take())
        };
        for entry in entries {
            if let Entry::Progress(_, state) = entry {
                if let Some(state) = state.upgrade() {
                    state.dirty.store(false, Ordering::Release);
                }
            }
        }
        drop(waker);
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = lock(&self.queue.state);
        f.debug_struct("Subscription")
            .field("queued", &pending.statuses)
            .field("progress_queued", &pending.progress.len())
            .field("lagged", &pending.lagged)
            .finish()
    }
}
