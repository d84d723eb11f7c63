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
//! A node is 40 bytes (56 with the `Arc` counters): the state word, the lazily allocated cold
//! state, and the link to the parent it was made from. Everything a plain token does not use
//! (name, waiters, children, callbacks, the parents of an `any` token, a reason with a message,
//! deadline) lives in the cold state.
//!
//! The state word is set once, by a compare-and-swap. A token triggered directly keeps its
//! reason's kind in the word, or (for a reason with a message) in its cold state. A token
//! triggered by a walk from an ancestor names, in the word, the parent the walk came through
//! and the walk's number: its reason and origin are that parent's, found by following such
//! names upwards (see [`Node::resolve`]). So a walk claims each descendant with one
//! compare-and-swap and copies nothing into it, and a descendant always carries what its
//! parent carries, whichever walk reached it first.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;
use std::time::Instant;

use crate::callback::Callback;
use crate::reason::{Reason, ReasonKind};
use crate::slab::{InlineSlab, Slab};
use crate::sync::{
    fence, lock, thread_local, yield_now, Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex,
    MutexGuard, OnceLock, Ordering, Weak,
};
use crate::time::{self, TimerKey};

/// The state word of a token that is not triggered.
const UNTRIGGERED: u64 = 0;
/// The low two bits of a state word: how the token was triggered.
const TAG_MASK: u64 = 0b11;
/// Triggered directly with a reason without a message; the kind's index is the word's field.
const OWN_KIND: u64 = 1;
/// Triggered directly with a message; the reason is the cold state's `record`.
const OWN_RECORD: u64 = 2;
/// Triggered by a walk from an ancestor; the field is the index of the parent the walk came
/// through, and the high bits are the walk's number.
const INHERITED: u64 = 3;
const FIELD_SHIFT: u32 = 2;
const FIELD_BITS: u32 = 22;
const WALK_SHIFT: u32 = FIELD_SHIFT + FIELD_BITS;
/// How many parents a state word can tell apart; [`Node::any`] groups more than this.
pub(crate) const MAX_PARENTS: usize = 1 << FIELD_BITS;

/// The reasons without a message, in the order of their kind's index in a state word: a token
/// triggered with one of them stores only the index, and lends out the reason from here.
static KIND_REASONS: [Reason; 6] = [
    Reason::new(ReasonKind::Manual),
    Reason::new(ReasonKind::Timeout),
    Reason::new(ReasonKind::Dropped),
    Reason::new(ReasonKind::Superseded),
    Reason::new(ReasonKind::Signal),
    Reason::new(ReasonKind::Condition),
];

fn own_kind(kind: ReasonKind) -> u64 {
    let index: u64 = match kind {
        ReasonKind::Manual => 0,
        ReasonKind::Timeout => 1,
        ReasonKind::Dropped => 2,
        ReasonKind::Superseded => 3,
        ReasonKind::Signal => 4,
        ReasonKind::Condition => 5,
    };
    OWN_KIND | index << FIELD_SHIFT
}

fn inherited(parent: usize, walk: u64) -> u64 {
    INHERITED | (parent as u64) << FIELD_SHIFT | walk << WALK_SHIFT
}

fn field(state: u64) -> usize {
    ((state >> FIELD_SHIFT) & ((1 << FIELD_BITS) - 1)) as usize
}

/// The number of the walk that set an inherited state word; 0 (no walk's number) otherwise.
fn walk_of(state: u64) -> u64 {
    if state & TAG_MASK == INHERITED {
        state >> WALK_SHIFT
    } else {
        0
    }
}

/// Hands out blocks of walk numbers to threads. A plain std counter under loom too: it only
/// has to hand out distinct numbers, and nothing synchronises through it.
static NEXT_WALK_BLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many walk numbers a thread takes at a time, so that threads triggering at the same
/// moment do not all write to one shared cache line.
const WALK_BLOCK: u64 = 1024;

std::thread_local! {
    /// The rest of this thread's block of walk numbers: the next one and the end.
    static WALK_NUMBERS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A number for a new walk, never 0. (0 is the number in the word of a token born triggered,
/// which no walk can reach, or of one `any` found a parent triggered for while linking it,
/// which walks from the parents linked before may reach: they treat it as another trigger's,
/// and walk below it once.) The 40 bits wrap after a trillion walks; two walks could only be
/// confused if one were still running while a trillion others started.
fn new_walk_number() -> u64 {
    let take_block = || NEXT_WALK_BLOCK.fetch_add(WALK_BLOCK, std::sync::atomic::Ordering::Relaxed);
    let raw = WALK_NUMBERS
        .try_with(|numbers| {
            let (mut next, mut end) = numbers.get();
            if next == end {
                next = take_block();
                end = next + WALK_BLOCK;
            }
            numbers.set((next + 1, end));
            next
        })
        // Only while the thread's locals are being destroyed.
        .unwrap_or_else(|_| take_block());
    raw % ((1 << (64 - WALK_SHIFT)) - 1) + 1
}

#[cfg(test)]
std::thread_local! {
    /// Parent-list entries [`Node::index_of`] looked at on this thread, for the test that
    /// triggering the parents of a large `any` one by one stays linear.
    pub(crate) static INDEX_STEPS: Cell<usize> = const { Cell::new(0) };

    /// Nodes walks on this thread expanded, for the test that triggering a chain bottom-up
    /// stays linear.
    pub(crate) static EXPANSIONS: Cell<usize> = const { Cell::new(0) };
}

thread_local! {
    /// How many wake loops this thread is inside: a trigger made from inside a waker must not
    /// wait for wake-ups in progress, since one of them is its own caller. (Not a `const`
    /// initialiser: loom's `thread_local!`, used under its cfg, does not take one.)
    #[allow(clippy::missing_const_for_thread_local)]
    static WAKING: Cell<usize> = Cell::new(0);
}

pub(crate) struct Node {
    /// How (and whether) the token was triggered; see [`UNTRIGGERED`] and the tags after it.
    /// Set exactly once, by a compare-and-swap; `is_triggered` is one acquire load of it.
    state: AtomicU64,
    /// Allocated on first use: a plain token never pays for it.
    cold: OnceLock<Box<Cold>>,
    /// The parent this node was made from by `child()`. Immutable, so it lives outside the
    /// lock and a child needs no cold state of its own.
    parent: Option<ParentLink>,
}

struct Cold {
    name: Option<Cow<'static, str>>,
    links: Mutex<Links>,
    /// The parents of a token made by `any`, fixed when it is made, so that a state word can
    /// name one by its index and a reader can follow it without a lock. The first two are
    /// inline so that a `chain` costs no extra allocation.
    parents: [Option<ParentLink>; 2],
    more_parents: Vec<ParentLink>,
    /// The reason of a direct trigger with a message, set before the state word names it.
    record: OnceLock<Reason>,
    /// Set by the trigger that published this node once it has woken the waiters it took;
    /// another trigger meeting the node waits for it rather than return before the wake-ups.
    woken: AtomicBool,
    /// Set when a walk that expanded this node has finished, so that every descendant is
    /// triggered: a later walk meeting the node skips its subtree.
    done: AtomicBool,
}

#[derive(Default)]
struct Links {
    children: Slab<Weak<Node>>,
    /// The first waiter inline: a token with one waiter allocates nothing for it.
    waiters: InlineSlab<Waker>,
    callbacks: Slab<Arc<dyn Callback>>,
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
    /// nothing was inserted: the token was born triggered (the link then only keeps the
    /// origin alive), or `any` found this parent, or an earlier one, triggered while linking.
    key: AtomicUsize,
}

const UNLINKED: usize = usize::MAX;

impl ParentLink {
    fn new(node: &Arc<Node>) -> Self {
        ParentLink {
            node: Arc::clone(node),
            key: AtomicUsize::new(UNLINKED),
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

impl Cold {
    fn new(name: Option<Cow<'static, str>>) -> Box<Cold> {
        Cold::with_parents(name, [None, None], Vec::new())
    }

    fn with_parents(
        name: Option<Cow<'static, str>>,
        parents: [Option<ParentLink>; 2],
        more_parents: Vec<ParentLink>,
    ) -> Box<Cold> {
        Box::new(Cold {
            name,
            links: Mutex::new(Links::default()),
            parents,
            more_parents,
            record: OnceLock::new(),
            woken: AtomicBool::new(false),
            done: AtomicBool::new(false),
        })
    }

    fn parent(&self, index: usize) -> Option<&ParentLink> {
        match index {
            0 | 1 => self.parents[index].as_ref(),
            _ => self.more_parents.get(index - 2),
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
        Node {
            state: AtomicU64::new(UNTRIGGERED),
            cold: Node::cold_for(name),
            parent: None,
        }
    }

    /// A token born triggered from `source`: it inherits the reason and origin of `source`,
    /// and keeps only that origin alive (as its one, unlinked, parent), since nothing can
    /// reach it through a link.
    fn born_triggered(source: &Arc<Node>, cold: OnceLock<Box<Cold>>) -> Node {
        let origin = Node::resolve(source).unwrap_or(source);
        Node {
            state: AtomicU64::new(inherited(0, 0)),
            cold,
            parent: Some(ParentLink::new(origin)),
        }
    }

    /// Cold state for a new node: only a name needs it from the start.
    #[inline]
    fn cold_for(name: Option<Cow<'static, str>>) -> OnceLock<Box<Cold>> {
        match name {
            Some(name) => OnceLock::from(Cold::new(Some(name))),
            None => OnceLock::new(),
        }
    }

    /// The cold state, allocated if needed.
    ///
    /// Whoever allocates it then fences, and a trigger fences between setting the state word
    /// and looking for the cold state: of the two threads, at least one sees the other's
    /// write, so a registration racing the first trigger is never lost.
    #[inline]
    fn cold(&self) -> &Cold {
        if let Some(cold) = self.cold.get() {
            return cold;
        }
        let cold = self.cold.get_or_init(|| Cold::new(None));
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
        self.state.load(Ordering::Acquire) != UNTRIGGERED
    }

    /// Sets the state word if the token is not triggered yet.
    #[inline]
    fn claim(&self, state: u64) -> Result<(), u64> {
        self.state
            .compare_exchange(UNTRIGGERED, state, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
    }

    /// The parent a state word names by `index`.
    fn parent_at(&self, index: usize) -> Option<&Arc<Node>> {
        match &self.parent {
            Some(link) => (index == 0).then_some(&link.node),
            None => Some(&self.cold.get()?.parent(index)?.node),
        }
    }

    /// The index of `parent` among this node's parents, for the state word a walk coming from
    /// `parent` writes. Below [`MAX_PARENTS`], so it fits a `u32`.
    fn index_of(&self, parent: &Arc<Node>) -> u32 {
        if self.parent.is_some() {
            return 0;
        }
        let Some(cold) = self.cold.get() else {
            return 0;
        };
        let index = cold
            .parents
            .iter()
            .flatten()
            .chain(&cold.more_parents)
            .position(|link| Arc::ptr_eq(&link.node, parent));
        #[cfg(test)]
        INDEX_STEPS.with(|steps| steps.set(steps.get() + index.map_or(0, |index| index + 1)));
        index.map_or(0, |index| index as u32)
    }

    /// The token whose trigger fired `this`, if `this` is triggered: the node that was
    /// triggered directly, which holds the reason (see [`Node::own_reason`]).
    ///
    /// A node triggered by a walk names the parent the walk came through, which was triggered
    /// before it; this follows such names up to the node that was triggered directly, one
    /// load per level.
    pub(crate) fn resolve(this: &Arc<Node>) -> Option<&Arc<Node>> {
        let mut node = this;
        loop {
            let state = node.state.load(Ordering::Acquire);
            match state & TAG_MASK {
                OWN_KIND | OWN_RECORD => return Some(node),
                INHERITED => node = node.parent_at(field(state))?,
                _ => return None,
            }
        }
    }

    /// The reason of a node that was triggered directly; `None` for any other node.
    pub(crate) fn own_reason(&self) -> Option<&Reason> {
        let state = self.state.load(Ordering::Acquire);
        match state & TAG_MASK {
            OWN_KIND => KIND_REASONS.get(field(state)),
            OWN_RECORD => self.cold.get()?.record.get(),
            _ => None,
        }
    }

    /// The reason of a node that was triggered directly (an origin, as [`Node::resolve`]
    /// gives): where its state word says it is. (Manual for any other node, which callers
    /// never pass.)
    pub(crate) fn origin_reason(&self) -> &Reason {
        self.own_reason().unwrap_or(&KIND_REASONS[0])
    }

    /// The reason `this` was triggered with, if it is triggered.
    pub(crate) fn reason(this: &Arc<Node>) -> Option<Reason> {
        Node::resolve(this)?.own_reason().cloned()
    }

    /// The node whose trigger fired `this`, if `this` is triggered.
    pub(crate) fn origin(this: &Arc<Node>) -> Option<Arc<Node>> {
        Node::resolve(this).map(Arc::clone)
    }

    /// Triggers `this` with `reason` and every descendant. Returns `false` if the token was
    /// already triggered.
    ///
    /// When this returns `true`, every descendant reports triggered, even one that another
    /// thread was triggering at the same moment: such a subtree is walked again rather than
    /// trusted to the other thread, and no trigger waits for another's walk (only, briefly,
    /// for wake-ups another trigger has started on a node both reach). Callbacks run last,
    /// in registration order, with no lock held; the first callback panic is resumed after all
    /// have run.
    pub(crate) fn trigger(this: &Arc<Node>, reason: Reason) -> bool {
        if this.is_triggered() {
            return false;
        }
        let won = if reason.message().is_none() {
            // Everything such a reason says fits in the state word: nothing to allocate.
            this.claim(own_kind(reason.kind())).is_ok()
        } else {
            // The record goes in first, so a state word never names a missing one. Of two such
            // triggers, the one whose record is in the cell is the trigger, whichever of them
            // stores the word (the other returns `false`, but only after the word is stored).
            let ours = this.cold().record.set(reason).is_ok();
            match this.claim(OWN_RECORD) {
                Ok(()) => ours,
                Err(state) => ours && state == OWN_RECORD,
            }
        };
        if !won {
            return false;
        }
        let mut walk = Walk::new(this, this.origin_reason());
        walk.expand(this, ORIGIN_REASON);
        walk.run();
        walk.finish();
        walk.run_callbacks();
        true
    }

    /// A new token triggered when `this` is: born triggered if `this` already is.
    #[inline]
    pub(crate) fn child(this: &Arc<Node>, name: Option<Cow<'static, str>>) -> Arc<Node> {
        let cold = Node::cold_for(name);
        if this.is_triggered() {
            return Arc::new(Node::born_triggered(this, cold));
        }
        // Everything is allocated before the parent's lock is taken, so the critical section
        // that other threads may wait on is only "check the state word, insert".
        let mut child = Arc::new(Node {
            state: AtomicU64::new(UNTRIGGERED),
            cold,
            parent: Some(ParentLink::new(this)),
        });
        let weak = Arc::downgrade(&child);
        let mut links = this.links();
        if this.is_triggered() {
            // Triggered since the check above. Nothing else can see the child yet, so it
            // becomes a token born triggered, keeping only the origin alive like any other.
            drop(links);
            drop(weak);
            match Arc::get_mut(&mut child) {
                Some(node) => {
                    let cold = std::mem::take(&mut node.cold);
                    *node = Node::born_triggered(this, cold);
                }
                // Unreachable (the `Weak` is gone and nobody else has the `Arc`).
                None => child.state.store(inherited(0, 0), Ordering::Release),
            }
            return child;
        }
        let key = links.children.insert(weak);
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
        Node::any_grouped(parents, name, MAX_PARENTS)
    }

    /// [`Node::any`], with `limit` parents at most per node: more are grouped under
    /// intermediate nodes, since a state word names a parent by an index of limited width.
    pub(crate) fn any_grouped(
        parents: &[&Arc<Node>],
        name: Option<Cow<'static, str>>,
        limit: usize,
    ) -> Arc<Node> {
        debug_assert!(limit >= 2, "groups of one would never shrink");
        if let Some(parent) = parents.iter().find(|parent| parent.is_triggered()) {
            return Arc::new(Node::born_triggered(parent, Node::cold_for(name)));
        }
        if parents.len() > limit {
            let groups: Vec<Arc<Node>> = parents
                .chunks(limit)
                .map(|group| Node::any_grouped(group, None, limit))
                .collect();
            let groups: Vec<&Arc<Node>> = groups.iter().collect();
            return Node::any_grouped(&groups, name, limit);
        }
        let mut links = parents.iter().map(|parent| ParentLink::new(parent));
        let inline = [links.next(), links.next()];
        let cold = Cold::with_parents(name, inline, links.collect());
        let node = Arc::new(Node {
            state: AtomicU64::new(UNTRIGGERED),
            cold: OnceLock::from(cold),
            parent: None,
        });
        let Some(cold) = node.cold.get() else {
            return node;
        };
        for (index, (parent, link)) in parents
            .iter()
            .zip(cold.parents.iter().flatten().chain(&cold.more_parents))
            .enumerate()
        {
            let deadline = {
                let mut links = parent.links();
                if parent.is_triggered() {
                    drop(links);
                    // Only parents linked so far can see the node; if one of them triggered
                    // it first, its reason stands. Nothing is registered on it yet.
                    let _ = node.claim(inherited(index, 0));
                    break;
                }
                let key = links.children.insert(Arc::downgrade(&node));
                link.key.store(key, Ordering::Relaxed);
                links.deadline
            };
            if deadline.is_some() {
                let mut links = node.links();
                links.deadline = earliest(links.deadline, deadline);
            }
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
        let key = time::register(deadline, Arc::downgrade(this) as Weak<dyn time::Expire>);
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
            let inline = cold.parents.iter_mut().filter_map(Option::take);
            for link in inline.chain(cold.more_parents.drain(..)) {
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

impl time::Expire for Node {
    fn expire(self: Arc<Self>) {
        Node::trigger(&self, Reason::new(ReasonKind::Timeout));
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

/// The index of the origin's reason among a walk's reasons.
const ORIGIN_REASON: u32 = 0;

/// The parent index of a [`Pending`] node that was triggered already when it was reached: it
/// is never claimed (a state word is never reset), so the index is not looked up.
const UNKNOWN_PARENT: u32 = u32::MAX;

/// A node a walk has reached and is still to visit. (Two `u32`s keep it at 16 bytes: a walk
/// of 10,000 children queues 10,000 of these.)
struct Pending {
    node: Arc<Node>,
    /// The index, among the node's parents, of the parent it was reached from (below
    /// [`MAX_PARENTS`]), or [`UNKNOWN_PARENT`].
    parent: u32,
    /// The index of the reason its callbacks receive (see [`Walk::reason`]).
    reason: u32,
}

/// One trigger's walk over the descendants of its origin.
///
/// The walk claims each descendant with one compare-and-swap of its state word, which names
/// the parent the walk came through (so the node carries that parent's reason and origin) and
/// the walk's number (so the walk can tell the nodes it claimed from those another trigger
/// reached first). Below a node another trigger reached first and has not finished, the walk
/// goes on by itself: the nodes it claims there name their parents like any other, and so
/// carry the other trigger's reason, whoever gets to them first.
struct Walk<'a> {
    origin: &'a Arc<Node>,
    /// This walk's number, drawn when it visits its first descendant; 0 until then.
    number: u64,
    /// The origin's reason: the reason of every node below it, unless another trigger's
    /// origin lies between.
    reason: &'a Reason,
    /// The reasons of the nodes another, unfinished trigger reached first and this walk went
    /// below, for the callbacks in their subtrees.
    foreign_reasons: Vec<Reason>,
    /// Nodes claimed at the level being visited next.
    work: Vec<Pending>,
    /// Nodes with cold state this walk expanded (apart from its origin), marked done when it
    /// finishes.
    expanded: Vec<Arc<Node>>,
    /// Nodes another, unfinished trigger reached first that this walk expanded; made when
    /// the first is met.
    foreign: Option<HashSet<ByAddress>>,
    /// The callbacks this walk took, each with the index of its reason.
    callbacks: Vec<(Arc<dyn Callback>, u32)>,
}

impl<'a> Walk<'a> {
    fn new(origin: &'a Arc<Node>, reason: &'a Reason) -> Self {
        Walk {
            origin,
            number: 0,
            reason,
            foreign_reasons: Vec::new(),
            work: Vec::new(),
            expanded: Vec::new(),
            foreign: None,
            callbacks: Vec::new(),
        }
    }

    fn number(&mut self) -> u64 {
        if self.number == 0 {
            self.number = new_walk_number();
        }
        self.number
    }

    /// The reason with index `index`: the origin's, or one of a foreign subtree.
    fn reason(&self, index: u32) -> &Reason {
        match (index as usize).checked_sub(1) {
            None => self.reason,
            Some(foreign) => self.foreign_reasons.get(foreign).unwrap_or(self.reason),
        }
    }

    /// Visits the queued nodes level by level until none is left. The state words of a level
    /// are set first and share one fence before their cold state is looked at: the fence that
    /// pairs with a first registration's (see [`visible_cold`]) is needed only for nodes whose
    /// cold state is not visible yet, and one serves them all, so triggering 10,000 plain
    /// children costs one fence, not 10,000.
    fn run(&mut self) {
        let mut level = Vec::new();
        let mut unfenced = Vec::new();
        while !self.work.is_empty() {
            std::mem::swap(&mut level, &mut self.work);
            for pending in level.drain(..) {
                if self.visit(&pending) {
                    match pending.node.cold.get() {
                        Some(cold) => self.expand_cold(&pending.node, cold, pending.reason),
                        None => {
                            unfenced.push(pending);
                            continue;
                        }
                    }
                    self.expanded.push(pending.node);
                }
            }
            if !unfenced.is_empty() {
                fence(Ordering::SeqCst);
                for pending in unfenced.drain(..) {
                    if let Some(cold) = pending.node.cold.get() {
                        self.expand_cold(&pending.node, cold, pending.reason);
                        self.expanded.push(pending.node);
                    }
                }
            }
        }
    }

    /// Claims a reached node unless it is triggered already. Returns `true` if this walk
    /// claimed it and must expand it; a node another, unfinished trigger reached first is
    /// expanded here (once per walk), and one this walk claimed or a finished walk expanded is
    /// left alone.
    fn visit(&mut self, pending: &Pending) -> bool {
        let number = self.number();
        let Err(state) = pending
            .node
            .claim(inherited(pending.parent as usize, number))
        else {
            return true;
        };
        if walk_of(state) != number {
            self.meet_foreign(pending, state);
        }
        false
    }

    /// Goes below a node that another trigger reached first, unless that trigger's walk (or
    /// a later one through the node) has finished. A node without cold state has nothing to
    /// expand: no children, waiters or callbacks.
    fn meet_foreign(&mut self, pending: &Pending, state: u64) {
        let node = &pending.node;
        let Some(cold) = visible_cold(node) else {
            return;
        };
        if cold.done.load(Ordering::Acquire) {
            return;
        }
        let first = self
            .foreign
            .get_or_insert_with(HashSet::new)
            .insert(ByAddress(Arc::clone(node)));
        if !first {
            return;
        }
        // A node claimed through the parent this walk came from has that parent's reason,
        // which this walk already carries: no need to look it up (a walk trailing another
        // down a deep chain would otherwise pay the whole depth at every level).
        let same_parent = state & TAG_MASK == INHERITED && field(state) == pending.parent as usize;
        let reason = if same_parent {
            pending.reason
        } else if let Some(reason) = Node::reason(node) {
            self.foreign_reasons.push(reason);
            // A walk would need more than 4 billion foreign subtrees (terabytes of tokens) to
            // run out of indexes.
            u32::try_from(self.foreign_reasons.len()).unwrap_or(u32::MAX)
        } else {
            // Unreachable (a triggered node always has an origin); walk below it anyway.
            pending.reason
        };
        self.expand_cold(node, cold, reason);
        self.expanded.push(Arc::clone(node));
    }

    /// Marks every node this walk expanded as done: a later trigger meeting one of them can
    /// skip its subtree.
    fn finish(&self) {
        for node in std::iter::once(self.origin).chain(&self.expanded) {
            if let Some(cold) = node.cold.get() {
                cold.done.store(true, Ordering::Release);
            }
        }
    }

    /// Publishes a triggered node (wakes its waiters, takes its callbacks and timer) unless
    /// that is done, and queues its children.
    fn expand(&mut self, node: &Arc<Node>, reason: u32) {
        if let Some(cold) = visible_cold(node) {
            self.expand_cold(node, cold, reason);
        }
    }

    /// [`Walk::expand`] for a node whose cold state the caller found after its state word was
    /// set (and, if the first look found none, after a fence).
    fn expand_cold(&mut self, node: &Arc<Node>, cold: &Cold, reason: u32) {
        #[cfg(test)]
        EXPANSIONS.with(|expansions| expansions.set(expansions.get() + 1));
        let mut links = lock(&cold.links);
        let mut wakers = None;
        let mut timer = None;
        let published_by_us = !links.published;
        if published_by_us {
            links.published = true;
            if !links.waiters.is_empty() {
                wakers = Some(links.waiters.take_all());
            }
            let callbacks = links.callbacks.take_all();
            self.callbacks
                .extend(callbacks.map(|callback| (callback, reason)));
            timer = links.timer.take();
        }
        // Children stay linked: a concurrent trigger that meets this node before this walk
        // is done must be able to walk them too.
        self.work.reserve(links.children.len());
        for child in links.children.iter().filter_map(Weak::upgrade) {
            // A child already triggered will not be claimed, so its parent index is not
            // needed: looking it up only for the others keeps triggering the parents of a
            // large `any` one after another linear.
            let parent = if child.is_triggered() {
                UNKNOWN_PARENT
            } else {
                child.index_of(node)
            };
            self.work.push(Pending {
                node: child,
                parent,
                reason,
            });
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

    /// Runs the callbacks this walk took, in registration order, each with the reason of its
    /// own token (the origin's, unless the token lies below another trigger's origin).
    fn run_callbacks(mut self) {
        if self.callbacks.is_empty() {
            return;
        }
        // Nodes are released before user code runs.
        drop(std::mem::take(&mut self.work));
        drop(std::mem::take(&mut self.foreign));
        drop(std::mem::take(&mut self.expanded));
        let mut callbacks = std::mem::take(&mut self.callbacks);
        callbacks.sort_by_key(|(callback, _)| callback.seq());
        let mut first_panic = None;
        for (callback, reason) in &callbacks {
            let reason = self.reason(*reason);
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| callback.fire(reason))) {
                first_panic.get_or_insert(payload);
            }
        }
        drop(callbacks);
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
    }
}

/// The cold state of a triggered `node`, if it has any. Cold state that is already visible is
/// locked by the caller, and the lock orders the walk with any registration. Only its absence
/// needs the fence that pairs with the one in `Node::cold`: a registration that made it
/// concurrently either is seen after the fence, or sees the state word itself.
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
