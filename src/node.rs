//! The shared state behind every handle of a token, and the two algorithms that must never
//! recurse: propagating a trigger through the token graph, and tearing down a chain of links.
//!
//! Ownership runs one way. A handle ([`CancelToken`](crate::CancelToken)) owns its node through
//! an `Arc`; a node owns its parents through `Arc`s (so an intermediate token whose handles are
//! all gone stays linked while it has descendants); a parent knows its children only through
//! `Weak`s kept in a slab, which is how a dropped child unlinks itself in O(1) and how the graph
//! stays free of cycles. `clone` and `drop` of a handle are therefore a single reference-count
//! operation, and the strong count of a node is "handles plus children".
//!
//! A node is 48 bytes (64 with the `Arc` counters): the trigger record, the lazily allocated
//! cold state, and the link to the parent it was made from. Everything a plain token does not
//! use (name, waiters, children, callbacks, extra parents, deadline) lives in the cold state.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;
use std::time::Instant;

use crate::callback::Callback;
use crate::reason::{Reason, ReasonKind};
use crate::slab::Slab;
use crate::sync::{
    fence, lock, thread_local, yield_now, Arc, AtomicBool, AtomicUsize, Mutex, MutexGuard,
    OnceLock, Ordering, Weak,
};
use crate::time::{self, TimerKey};

/// What a triggered token records, published in one step so that nobody can observe the flag
/// without the reason. The descendants one walk reaches share one record; an origin's own
/// record may be shared by many tokens (see [`Fired::shared_origin_record`]).
pub(crate) struct Fired {
    pub(crate) reason: Reason,
    /// The token whose trigger fired, on descendants; `None` on that token itself (a node
    /// cannot hold a strong reference to itself without leaking).
    pub(crate) origin: Option<Arc<Node>>,
    /// Set once the trigger that owns this record has reached every descendant: a later trigger
    /// meeting a node with a finished record can skip its subtree. `None` on a record that
    /// many triggers share (see [`Fired::origin_record`]), which is never finished: a later
    /// trigger that meets a node holding it walks the subtree itself.
    done: Option<AtomicBool>,
}

impl Fired {
    fn new(reason: Reason, origin: Option<Arc<Node>>) -> Arc<Fired> {
        Arc::new(Fired {
            reason,
            origin,
            done: Some(AtomicBool::new(false)),
        })
    }

    /// The record a trigger with `reason` gives its own token when that token never had
    /// children. A reason without a message (what `trigger()`, a deadline and a drop guard
    /// record) then needs nothing particular to the token: the calling thread keeps one record
    /// per kind and shares it, so such a trigger allocates nothing. Per thread rather than per
    /// process, so that threads triggering at the same time do not all count references on
    /// one cache line (dropping a token still releases the record of the thread that
    /// triggered it; for deadline tokens, that is the timer thread's).
    fn shared_origin_record(reason: Reason) -> Arc<Fired> {
        if reason.message().is_some() {
            return Fired::new(reason, None);
        }
        let kind = reason.kind();
        SHARED_RECORDS
            .try_with(|records| {
                Arc::clone(records[kind_index(kind)].get_or_init(|| {
                    Arc::new(Fired {
                        reason: Reason::new(kind),
                        origin: None,
                        done: None,
                    })
                }))
            })
            // Only while the thread's locals are being destroyed.
            .unwrap_or_else(|_| Fired::new(reason, None))
    }

    fn is_done(&self) -> bool {
        self.done
            .as_ref()
            .is_some_and(|done| done.load(Ordering::Acquire))
    }

    fn mark_done(&self) {
        if let Some(done) = &self.done {
            done.store(true, Ordering::Release);
        }
    }
}

/// How many [`ReasonKind`]s there are.
const KINDS: usize = 6;

fn kind_index(kind: ReasonKind) -> usize {
    match kind {
        ReasonKind::Manual => 0,
        ReasonKind::Timeout => 1,
        ReasonKind::Dropped => 2,
        ReasonKind::Superseded => 3,
        ReasonKind::Signal => 4,
        ReasonKind::Condition => 5,
    }
}

/// An empty slot of [`SHARED_RECORDS`]: a constant, so that the array can repeat it, and
/// each use is a fresh cell.
#[allow(clippy::declare_interior_mutable_const)]
const NO_RECORD: OnceCell<Arc<Fired>> = OnceCell::new();

std::thread_local! {
    /// One shared origin record per reason kind without a message, for this thread.
    static SHARED_RECORDS: [OnceCell<Arc<Fired>>; KINDS] = const { [NO_RECORD; KINDS] };
}

thread_local! {
    /// How many wake loops this thread is inside: a trigger made from inside a waker must not
    /// wait for wake-ups in progress, since one of them is its own caller. (Not a `const`
    /// initialiser: loom's `thread_local!`, used under its cfg, does not take one.)
    #[allow(clippy::missing_const_for_thread_local)]
    static WAKING: Cell<usize> = Cell::new(0);
}

pub(crate) struct Node {
    /// Set exactly once, by the winning trigger; `is_triggered` is one acquire load of it.
    fired: OnceLock<Arc<Fired>>,
    /// Allocated on first use: a plain token never pays for it.
    cold: OnceLock<Box<Cold>>,
    /// The parent this node was made from by `child()`. Immutable, so it lives outside the
    /// lock and a child needs no cold state of its own.
    parent: Option<ParentLink>,
}

struct Cold {
    name: Option<Cow<'static, str>>,
    links: Mutex<Links>,
    /// Set by the trigger that published this node once it has woken the waiters it took;
    /// another trigger meeting the node waits for it rather than return before the wake-ups.
    woken: AtomicBool,
    /// Set when the first child is linked, and never cleared: a hint for the trigger, which
    /// gives a token that never had children a shared record (see
    /// [`Fired::shared_origin_record`]). Only speed depends on it, never correctness.
    had_children: AtomicBool,
}

#[derive(Default)]
struct Links {
    children: Slab<Weak<Node>>,
    waiters: Slab<Waker>,
    callbacks: Slab<Arc<dyn Callback>>,
    /// Parents of a token made by `any`. The first two are inline so that a `chain` costs no
    /// extra allocation.
    parents: [Option<ParentLink>; 2],
    more_parents: Vec<ParentLink>,
    /// The effective deadline: the earliest of this token's own and its sources'.
    deadline: Option<Instant>,
    /// This token's own registration with the timer thread, when its own deadline is the
    /// effective one (otherwise a source's timer fires first and propagates).
    timer: Option<TimerKey>,
    /// Whether a trigger has woken the waiters and taken the callbacks and timer.
    published: bool,
}

/// A strong link to a parent, with the key of our entry in its children slab.
struct ParentLink {
    node: Arc<Node>,
    /// Written once, under the parent's lock, before the child is handed out; `UNLINKED` if
    /// the parent turned out to be triggered and nothing was inserted.
    key: AtomicUsize,
}

const UNLINKED: usize = usize::MAX;

impl ParentLink {
    fn new(node: Arc<Node>, key: usize) -> Self {
        ParentLink {
            node,
            key: AtomicUsize::new(key),
        }
    }

    /// Removes our entry from the parent and gives back the parent handle.
    #[inline]
    fn unlink(self) -> Arc<Node> {
        let key = self.key.into_inner();
        if key != UNLINKED {
            self.node.unlink_child(key);
        }
        self.node
    }
}

impl Links {
    fn add_parent(&mut self, link: ParentLink) {
        match self.parents.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(link),
            None => self.more_parents.push(link),
        }
    }
}

impl Cold {
    fn new(name: Option<Cow<'static, str>>, links: Links) -> Box<Cold> {
        Box::new(Cold {
            name,
            links: Mutex::new(links),
            woken: AtomicBool::new(false),
            had_children: AtomicBool::new(false),
        })
    }

    /// Records that a child was linked (called under the links lock).
    fn note_child(&self) {
        if !self.had_children.load(Ordering::Relaxed) {
            self.had_children.store(true, Ordering::Relaxed);
        }
    }
}

/// The earlier of two optional deadlines, `None` meaning "never".
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Node {
    #[inline]
    pub(crate) fn new(name: Option<Cow<'static, str>>) -> Node {
        let cold = match name {
            Some(name) => OnceLock::from(Cold::new(Some(name), Links::default())),
            None => OnceLock::new(),
        };
        Node {
            fired: OnceLock::new(),
            cold,
            parent: None,
        }
    }

    fn born_triggered(fired: Arc<Fired>, name: Option<Cow<'static, str>>) -> Node {
        let node = Node::new(name);
        // A fresh cell: this cannot fail.
        let _ = node.fired.set(fired);
        node
    }

    /// The cold state, allocated if needed.
    ///
    /// Whoever allocates it then fences, and a trigger fences between setting the flag and
    /// looking for the cold state: of the two threads, at least one sees the other's write,
    /// so a registration racing the first trigger is never lost.
    #[inline]
    fn cold(&self) -> &Cold {
        if let Some(cold) = self.cold.get() {
            return cold;
        }
        let cold = self.cold.get_or_init(|| Cold::new(None, Links::default()));
        fence(Ordering::SeqCst);
        cold
    }

    #[inline]
    fn links(&self) -> MutexGuard<'_, Links> {
        lock(&self.cold().links)
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.cold.get()?.name.as_deref()
    }

    #[inline]
    pub(crate) fn is_triggered(&self) -> bool {
        self.fired.get().is_some()
    }

    #[inline]
    pub(crate) fn fired(&self) -> Option<&Arc<Fired>> {
        self.fired.get()
    }

    /// Triggers `this` with `reason` and every descendant. Returns `false` if the token was
    /// already triggered.
    ///
    /// When this returns `true`, every descendant reports triggered, even one that another
    /// thread was triggering at the same moment: such a subtree is walked again rather than
    /// trusted to the other thread, and no trigger ever waits for another. Callbacks run last,
    /// in registration order, with no lock held; the first callback panic is resumed after all
    /// have run.
    pub(crate) fn trigger(this: &Arc<Node>, reason: Reason) -> bool {
        if this.is_triggered() {
            // Spares the losers of a race (and repeated triggers) an allocation.
            return false;
        }
        // A walk can skip the subtree of a record only once that record is marked finished,
        // which a shared one never is: a token that has (or had) children gets its own. (A
        // child linked at this very moment is still triggered, only not skipped later.)
        let had_children = this
            .cold
            .get()
            .is_some_and(|cold| cold.had_children.load(Ordering::Relaxed));
        let record = if !had_children {
            Fired::shared_origin_record(reason)
        } else {
            Fired::new(reason, None)
        };
        if this.fired.set(record).is_err() {
            return false;
        }
        let fired = this.fired.get().expect("the cell holds the value just set");
        let mut walk = Walk::new(this, fired);
        walk.expand(this);
        walk.run();
        walk.finish();
        walk.run_callbacks(&fired.reason);
        true
    }

    /// A new token triggered when `this` is: born triggered if `this` already is.
    #[inline]
    pub(crate) fn child(this: &Arc<Node>, name: Option<Cow<'static, str>>) -> Arc<Node> {
        if let Some(fired) = this.fired.get() {
            return Arc::new(Node::born_triggered(inherit(this, fired), name));
        }
        // Everything is allocated before the parent's lock is taken, so the critical section
        // that other threads may wait on is only "check the flag, insert".
        let cold = match name {
            Some(name) => OnceLock::from(Cold::new(Some(name), Links::default())),
            None => OnceLock::new(),
        };
        let child = Arc::new(Node {
            fired: OnceLock::new(),
            cold,
            parent: Some(ParentLink::new(Arc::clone(this), UNLINKED)),
        });
        let weak = Arc::downgrade(&child);
        let mut links = this.links();
        if let Some(fired) = this.fired.get() {
            // Triggered since the check above. Nothing else can see the child yet.
            let record = inherit(this, fired);
            drop(links);
            let _ = child.fired.set(record);
            return child;
        }
        let key = links.children.insert(weak);
        this.cold().note_child();
        let deadline = links.deadline;
        if let Some(link) = &child.parent {
            link.key.store(key, Ordering::Relaxed);
        }
        drop(links);
        if deadline.is_some() {
            // Inherited, for `deadline()`; the parent's timer is the one that fires.
            child.links().deadline = deadline;
        }
        child
    }

    /// A new token triggered when any of `parents` is: born triggered, with the reason of the
    /// first triggered parent in iteration order, if one already is.
    pub(crate) fn any(parents: &[&Arc<Node>], name: Option<Cow<'static, str>>) -> Arc<Node> {
        if let Some((parent, fired)) = parents
            .iter()
            .find_map(|parent| parent.fired().map(|fired| (parent, fired)))
        {
            return Arc::new(Node::born_triggered(inherit(parent, fired), name));
        }
        let node = Arc::new(Node {
            fired: OnceLock::new(),
            cold: OnceLock::from(Cold::new(name, Links::default())),
            parent: None,
        });
        for parent in parents {
            let (key, deadline) = {
                let mut links = parent.links();
                if let Some(fired) = parent.fired.get() {
                    let inherited = inherit(parent, fired);
                    drop(links);
                    // Only parents linked so far can see the node; if one of them triggered
                    // it first, its reason stands. Nothing is registered on it yet.
                    let _ = node.fired.set(inherited);
                    break;
                }
                parent.cold().note_child();
                (links.children.insert(Arc::downgrade(&node)), links.deadline)
            };
            let mut links = node.links();
            links.deadline = earliest(links.deadline, deadline);
            links.add_parent(ParentLink::new(Arc::clone(parent), key));
        }
        node
    }

    /// Gives `this` its own deadline. The effective deadline becomes the earlier of this one
    /// and the inherited one; a timer is registered only if this one is earlier. A deadline
    /// that has passed triggers at once.
    pub(crate) fn set_deadline(this: &Arc<Node>, deadline: Instant) {
        if deadline <= Instant::now() {
            Node::trigger(this, Reason::new(ReasonKind::Timeout));
            return;
        }
        {
            let mut links = this.links();
            if this.is_triggered() || links.deadline.is_some_and(|current| current <= deadline) {
                return;
            }
            links.deadline = Some(deadline);
        }
        // Registered outside the node's lock: the timer thread locks nodes (to trigger them)
        // after releasing its own lock, never the other way round.
        let key = time::register(deadline, Arc::downgrade(this));
        let mut links = this.links();
        let stale = if links.published {
            // Triggered meanwhile (possibly by this very timer): nothing to keep.
            Some(key)
        } else {
            links.timer.replace(key)
        };
        drop(links);
        if let Some(stale) = stale {
            time::cancel(stale);
        }
    }

    /// The effective deadline, if any.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let cold = self.cold.get()?;
        lock(&cold.links).deadline
    }

    /// The node whose trigger fired `this`, if `this` is triggered.
    pub(crate) fn origin(this: &Arc<Node>) -> Option<Arc<Node>> {
        let fired = this.fired.get()?;
        Some(Arc::clone(fired.origin.as_ref().unwrap_or(this)))
    }

    /// Registers or refreshes a waiter's waker. `None` if the token is triggered (the waiter is
    /// done and holds no registration any more).
    pub(crate) fn register_waiter(&self, key: Option<usize>, waker: &Waker) -> Option<usize> {
        let mut links = self.links();
        if self.is_triggered() {
            return None;
        }
        match key.and_then(|key| links.waiters.get_mut(key).map(|slot| (key, slot))) {
            Some((key, slot)) => {
                if !slot.will_wake(waker) {
                    slot.clone_from(waker);
                }
                Some(key)
            }
            None => Some(links.waiters.insert(waker.clone())),
        }
    }

    pub(crate) fn unregister_waiter(&self, key: usize) {
        // Once triggered, the trigger owns (or has consumed) the registrations.
        if !self.is_triggered() {
            self.remove(|links| links.waiters.remove(key));
        }
    }

    /// Registers a callback; `None` if the token is already triggered (the caller runs it).
    pub(crate) fn register_callback(&self, callback: &Arc<dyn Callback>) -> Option<usize> {
        let mut links = self.links();
        if self.is_triggered() {
            return None;
        }
        Some(links.callbacks.insert(Arc::clone(callback)))
    }

    pub(crate) fn unregister_callback(&self, key: usize) {
        if !self.is_triggered() {
            self.remove(|links| links.callbacks.remove(key));
        }
    }

    #[inline]
    fn unlink_child(&self, key: usize) {
        // Children stay linked after a trigger (a concurrent walk may still need them), so
        // this removes the entry whether or not the token is triggered.
        self.remove(|links| links.children.remove(key));
    }

    /// Removes one registration under the lock and drops it after the lock is released (a
    /// callback's closure or a waker may run code when dropped).
    #[inline]
    fn remove<T>(&self, take: impl FnOnce(&mut Links) -> Option<T>) {
        let Some(cold) = self.cold.get() else {
            return;
        };
        let removed = take(&mut lock(&cold.links));
        drop(removed);
    }

    /// Takes the parent links of a node that is being dropped, releasing its timer entry.
    /// The first link is returned, the others pushed on `more`.
    fn detach(&mut self, more: &mut Vec<ParentLink>) -> Option<ParentLink> {
        let mut first = self.parent.take();
        if let Some(cold) = self.cold.get_mut() {
            let links = cold
                .links
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(key) = links.timer.take() {
                time::cancel(key);
            }
            let inline = links.parents.iter_mut().filter_map(Option::take);
            for link in inline.chain(links.more_parents.drain(..)) {
                match first {
                    None => first = Some(link),
                    Some(_) => more.push(link),
                }
            }
        }
        first
    }

    /// Number of registered waiters, for tests of the no-leak rules.
    #[cfg(any(test, cancel_token_loom))]
    pub(crate) fn waiters(&self) -> usize {
        self.cold
            .get()
            .map_or(0, |cold| lock(&cold.links).waiters.len())
    }

    /// Number of live child links and callbacks, for tests of the no-leak rules.
    #[cfg(any(test, cancel_token_loom))]
    pub(crate) fn registrations(&self) -> (usize, usize) {
        self.cold.get().map_or((0, 0), |cold| {
            let links = lock(&cold.links);
            (links.children.len(), links.callbacks.len())
        })
    }
}

/// The record for a token born triggered from `from`: `from`'s own record if it already names
/// an origin, otherwise a copy naming `from`. A token born triggered is never linked below its
/// source, so it has no subtree for a walk to finish.
fn inherit(from: &Arc<Node>, fired: &Arc<Fired>) -> Arc<Fired> {
    if fired.origin.is_some() {
        Arc::clone(fired)
    } else {
        let record = Fired::new(fired.reason.clone(), Some(Arc::clone(from)));
        record.mark_done();
        record
    }
}

/// A node compared and hashed by address. Holding the `Arc` keeps the address from being
/// reused by another node while the set exists.
struct ByAddress(Arc<Node>);

impl PartialEq for ByAddress {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ByAddress {}

impl std::hash::Hash for ByAddress {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

/// One trigger's walk over the descendants of its origin.
///
/// Every record this walk writes into a descendant is its own: the one it gives the origin's
/// descendants, and a copy for each subtree it walks again because another trigger reached it
/// first and has not finished. Another walk therefore never mistakes a node this walk set for
/// one it set itself, and a node below a subtree another trigger reached first inherits that
/// trigger's reason and origin, whoever gets to the node first. (The origin's own record may be
/// shared with other triggers; a walk tells its origin by the node.)
struct Walk<'a> {
    origin: &'a Arc<Node>,
    /// The origin's own record.
    record: &'a Arc<Fired>,
    /// The record this walk gives to the origin's descendants, made on the first one.
    inherited: Option<Arc<Fired>>,
    /// For each foreign record whose subtree this walk walks again: its own copy of it.
    copies: Vec<(Arc<Fired>, Arc<Fired>)>,
    /// Nodes whose children are still to visit, each with the record to give it.
    work: Vec<(Arc<Node>, Arc<Fired>)>,
    /// Nodes triggered by another, unfinished trigger that this walk already expanded; made
    /// when the first is met.
    foreign: Option<HashSet<ByAddress>>,
    callbacks: Vec<Taken>,
}

/// A callback a walk took, with the record of its token when that record's reason may differ
/// from the origin's (`None`: the origin's reason).
type Taken = (Arc<dyn Callback>, Option<Arc<Fired>>);

impl<'a> Walk<'a> {
    fn new(origin: &'a Arc<Node>, record: &'a Arc<Fired>) -> Self {
        Walk {
            origin,
            record,
            inherited: None,
            copies: Vec::new(),
            work: Vec::new(),
            foreign: None,
            callbacks: Vec::new(),
        }
    }

    /// Whether this walk made `fired` for descendants. (The origin's own record may be one
    /// that other triggers share, and a walk never reaches its own origin again.)
    fn is_ours(&self, fired: &Arc<Fired>) -> bool {
        self.inherited
            .as_ref()
            .is_some_and(|inherited| Arc::ptr_eq(fired, inherited))
            || self.copies.iter().any(|(_, ours)| Arc::ptr_eq(fired, ours))
    }

    /// The record for the children of `node`, which holds `fired`: the same reason and origin
    /// as `node`'s, in a record this walk owns.
    fn record_below(&mut self, node: &Arc<Node>, fired: &Arc<Fired>) -> Arc<Fired> {
        if Arc::ptr_eq(node, self.origin) {
            let origin = self.origin;
            let record = self.record;
            return Arc::clone(self.inherited.get_or_insert_with(|| {
                Fired::new(record.reason.clone(), Some(Arc::clone(origin)))
            }));
        }
        if self.is_ours(fired) {
            // Made by this walk for descendants, so it already names their origin.
            return Arc::clone(fired);
        }
        // Another trigger's record. One that names no origin sits on that trigger's own token
        // (and may be shared by many), so the copy is per token.
        let origin = fired.origin.as_ref().unwrap_or(node);
        if let Some((_, ours)) = self.copies.iter().find(|(theirs, ours)| {
            Arc::ptr_eq(theirs, fired)
                && ours
                    .origin
                    .as_ref()
                    .is_some_and(|named| Arc::ptr_eq(named, origin))
        }) {
            return Arc::clone(ours);
        }
        let ours = Fired::new(fired.reason.clone(), Some(Arc::clone(origin)));
        self.copies.push((Arc::clone(fired), Arc::clone(&ours)));
        ours
    }

    /// Visits the queued nodes level by level until none is left. The flags of a level are
    /// set first and share one fence before their cold state is looked at: the fence that
    /// pairs with a first registration's (see [`visible_cold`]) is needed only for nodes whose
    /// cold state is not visible yet, and one serves them all, so triggering 10,000 plain
    /// children costs one fence, not 10,000.
    fn run(&mut self) {
        let mut level = Vec::new();
        let mut unfenced = Vec::new();
        while !self.work.is_empty() {
            std::mem::swap(&mut level, &mut self.work);
            for (node, record) in level.drain(..) {
                if self.visit(&node, record) {
                    match node.cold.get() {
                        Some(cold) => self.expand_cold(&node, cold),
                        None => unfenced.push(node),
                    }
                }
            }
            if !unfenced.is_empty() {
                fence(Ordering::SeqCst);
                for node in unfenced.drain(..) {
                    if let Some(cold) = node.cold.get() {
                        self.expand_cold(&node, cold);
                    }
                }
            }
        }
    }

    /// Triggers `node` (reached as a child) with `record` unless it already is. Returns `true`
    /// if this walk set the flag and must expand the node; a node another, unfinished trigger
    /// reached first is expanded here (once per walk), and one this walk or a finished
    /// trigger reached is left alone.
    fn visit(&mut self, node: &Arc<Node>, record: Arc<Fired>) -> bool {
        let Err(record) = node.fired.set(record) else {
            return true;
        };
        let fired = node
            .fired
            .get()
            .expect("a cell that refused a value holds one");
        if Arc::ptr_eq(fired, &record) || fired.is_done() || self.is_ours(fired) {
            return false;
        }
        // Another trigger's unfinished (or shared, never finished) record. A node without cold
        // state has nothing to expand: no children, waiters or callbacks.
        if let Some(cold) = visible_cold(node) {
            let first = self
                .foreign
                .get_or_insert_with(HashSet::new)
                .insert(ByAddress(Arc::clone(node)));
            if first {
                self.expand_cold(node, cold);
            }
        }
        false
    }

    /// Marks every record this walk made as finished: a later trigger meeting one of its nodes
    /// can skip the subtree. (A shared origin record is never marked; its token had no
    /// children when it was triggered.)
    fn finish(&self) {
        self.record.mark_done();
        let copies = self.copies.iter().map(|(_, ours)| ours);
        for record in self.inherited.iter().chain(copies) {
            record.mark_done();
        }
    }

    /// Publishes a triggered node (wakes its waiters, takes its callbacks and timer) unless
    /// that is done, and queues its children.
    fn expand(&mut self, node: &Arc<Node>) {
        if let Some(cold) = visible_cold(node) {
            self.expand_cold(node, cold);
        }
    }

    /// [`Walk::expand`] for a node whose cold state the caller found after its flag was set
    /// (and, if the first look found none, after a fence).
    fn expand_cold(&mut self, node: &Arc<Node>, cold: &Cold) {
        let mut links = lock(&cold.links);
        let mut wakers = None;
        let mut timer = None;
        let published_by_us = !links.published;
        if published_by_us {
            links.published = true;
            if !links.waiters.is_empty() {
                wakers = Some(links.waiters.take_all());
            }
            let mut callbacks = links.callbacks.take_all().peekable();
            if callbacks.peek().is_some() {
                let record = self.reason_record(node);
                self.callbacks
                    .extend(callbacks.map(|callback| (callback, record.clone())));
            }
            timer = links.timer.take();
        }
        // Children stay linked: a concurrent trigger that meets this node before this walk
        // is done must be able to walk them too.
        {
            let mut children = links.children.iter().filter_map(Weak::upgrade);
            if let Some(first) = children.next() {
                let fired = node
                    .fired
                    .get()
                    .expect("a node is triggered before it is expanded");
                let record = self.record_below(node, fired);
                for child in children {
                    self.work.push((child, Arc::clone(&record)));
                }
                self.work.push((first, record));
            }
        }
        drop(links);
        if let Some(key) = timer {
            time::cancel(key);
        }
        // Woken with no lock held, since a waker runs executor code; a panicking waker (an
        // executor bug) must not cut the propagation short.
        if let Some(wakers) = wakers {
            WAKING.with(|depth| depth.set(depth.get() + 1));
            for waker in wakers {
                let _ = panic::catch_unwind(AssertUnwindSafe(|| waker.wake()));
            }
            WAKING.with(|depth| depth.set(depth.get() - 1));
        }
        if published_by_us {
            cold.woken.store(true, Ordering::Release);
        } else {
            // Another trigger took this node's waiters and is waking them: a wake is a short
            // call into an executor that never waits on this crate, so yielding until it is
            // done is bounded, and it keeps "waiters are woken when trigger returns" true even
            // for descendants another trigger reached first. (Callbacks are user code and are
            // not waited for.) The exception is a trigger made by a waker on the thread that
            // is waking: the wake-ups in progress include its caller, so it cannot wait.
            while !cold.woken.load(Ordering::Acquire) && WAKING.with(Cell::get) == 0 {
                yield_now();
            }
        }
    }

    /// The record whose reason the callbacks of `node` receive: `None` when it is the
    /// origin's reason (the origin's record or the one this walk gave its descendants).
    fn reason_record(&self, node: &Node) -> Option<Arc<Fired>> {
        let fired = node
            .fired
            .get()
            .expect("a node is triggered before it is expanded");
        let origins = Arc::ptr_eq(fired, self.record)
            || self
                .inherited
                .as_ref()
                .is_some_and(|inherited| Arc::ptr_eq(fired, inherited));
        (!origins).then(|| Arc::clone(fired))
    }

    /// Runs the callbacks this walk took, in registration order, each with the reason of its
    /// own token (`reason`, the origin's, unless the token lies below another trigger's
    /// origin).
    fn run_callbacks(mut self, reason: &Reason) {
        if self.callbacks.is_empty() {
            return;
        }
        // Nodes and records are released before user code runs.
        drop(std::mem::take(&mut self.work));
        drop(std::mem::take(&mut self.foreign));
        drop(std::mem::take(&mut self.copies));
        drop(self.inherited.take());
        self.callbacks.sort_by_key(|(callback, _)| callback.seq());
        let mut first_panic = None;
        for (callback, record) in &self.callbacks {
            let reason = record.as_ref().map_or(reason, |record| &record.reason);
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| callback.fire(reason))) {
                first_panic.get_or_insert(payload);
            }
        }
        drop(self.callbacks);
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
    }
}

/// The cold state of a triggered `node`, if it has any. Cold state that is already visible is
/// locked by the caller, and the lock orders the walk with any registration. Only its absence
/// needs the fence that pairs with the one in `Node::cold`: a registration that made it
/// concurrently either is seen after the fence, or sees the flag itself.
fn visible_cold(node: &Node) -> Option<&Cold> {
    let cold = node.cold.get().or_else(|| {
        fence(Ordering::SeqCst);
        node.cold.get()
    });
    cold.map(|cold| &**cold)
}

impl Drop for Node {
    /// Unlinks this node from its parents, and any parent this leaves without handles or
    /// children from its own parents, in a loop: dropping the last handle of a chain a million
    /// links deep uses constant stack, and a plain child allocates nothing to do it.
    fn drop(&mut self) {
        // The common cases first: a token with no links at all, and a plain child.
        let cold = self.cold.get_mut().is_some();
        if !cold {
            let Some(link) = self.parent.take() else {
                return;
            };
            if let Some(mut parent) = Arc::into_inner(link.unlink()) {
                unlink_all(&mut parent);
            }
            return;
        }
        unlink_all(self);
    }
}

/// Unlinks `node` from its parents, and each parent this leaves without handles or children
/// from its own parents, in a loop rather than by recursion.
fn unlink_all(node: &mut Node) {
    let mut more = Vec::new();
    let mut next = node.detach(&mut more);
    while let Some(link) = next.take().or_else(|| more.pop()) {
        if let Some(mut parent) = Arc::into_inner(link.unlink()) {
            next = parent.detach(&mut more);
            // `parent` drops here with no links left, so its own `drop` does nothing more.
        }
    }
}
