//! The node behind every handle of a token: its state word, its cold state (where waiters,
//! callbacks and a deadline are registered), and how it is made (plain, child, `any`).
//! Adding and removing waiters and callbacks is `registrations.rs`; propagating a trigger is
//! `walk.rs`; links between nodes and teardown are `link.rs`; deadlines are `deadline.rs`.
//!
//! Ownership runs one way. A handle ([`CancelToken`](crate::CancelToken)) owns its node through
//! an `Arc`; a node owns its parents through `Arc`s (so an intermediate token whose handles are
//! all gone stays linked while it has descendants); a parent knows its children only through
//! `Weak`s, which is how a dropped child unlinks itself in O(1) and how the graph stays free of
//! cycles.
//!
//! The state word is the one location every race on a node goes through. It says whether and
//! how the token was triggered, and whether the node has cold state ([`HAS_COLD`]): a thread
//! that allocates the cold state to register something sets that bit, and a trigger learns from
//! the very compare-and-swap that triggers the node whether it has cold state to publish.
//! Modifications of one location are totally ordered, so either the trigger sees the bit (and
//! locks the cold state, where it meets the registration), or the registration sees the
//! trigger (and does not register). No fence is needed.

use std::borrow::Cow;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::task::Waker;

use crate::callback::Callback;
use crate::deadline::DeadlineReason;
use crate::link::{ChildEntry, ChildList, ParentLink};
use crate::reason::{Reason, ReasonKind};
use crate::slab::InlineSlab;
use crate::sync::{lock, Arc, AtomicU64, Mutex, MutexGuard, OnceLock, Ordering};
use crate::time::TimerKey;

/// The low two bits of a state word: whether and how the token was triggered.
pub(crate) const TAG_MASK: u64 = 0b11;
/// Not triggered.
const UNTRIGGERED: u64 = 0;
/// Triggered directly with a reason without a message; the kind's index is the word's field.
pub(crate) const OWN_KIND: u64 = 1;
/// Triggered directly with a message; the reason is the cold state's `record`.
pub(crate) const OWN_RECORD: u64 = 2;
/// Triggered by a walk from an ancestor; the field is the index of the parent it came through.
pub(crate) const INHERITED: u64 = 3;
/// Set once the cold state exists, before anything is registered in it.
pub(crate) const HAS_COLD: u64 = 0b100;
const FIELD_SHIFT: u32 = 3;

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

pub(crate) fn own_kind(kind: ReasonKind) -> u64 {
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

pub(crate) fn inherited(parent: usize) -> u64 {
    INHERITED | (parent as u64) << FIELD_SHIFT
}

fn field(state: u64) -> usize {
    (state >> FIELD_SHIFT) as usize
}

pub(crate) struct Node {
    /// See the module docs and the constants above. The tag is set exactly once, by a
    /// compare-and-swap; `is_triggered` is one acquire load.
    pub(crate) state: AtomicU64,
    /// Allocated on first use: a plain token never pays for it.
    pub(crate) cold: OnceLock<Box<Cold>>,
    /// The parent this node was made from by `child()`. Immutable, so it lives outside the
    /// lock and a child needs no cold state of its own.
    pub(crate) parent: Option<ParentLink>,
}

pub(crate) struct Cold {
    name: Option<Cow<'static, str>>,
    pub(crate) links: Mutex<Links>,
    /// The parents of a token made by `any`, fixed when it is made, so that a state word can
    /// name one by its index and a reader can follow it without a lock. The first two are
    /// inline so that a `chain` costs no extra allocation; the rest are boxed twice so that
    /// they take one word here, not two (a token with three or more parents pays one more
    /// allocation, and every cold state stays within 248 bytes).
    parents: [Option<ParentLink>; 2],
    more_parents: Option<Box<Box<[ParentLink]>>>,
    /// The reason of a direct trigger with a message, set before the state word names it.
    pub(crate) record: OnceLock<Box<Reason>>,
    /// What a token made by `all` or `when` keeps for its life, dropped with it.
    pub(crate) keep: Option<Box<Keep>>,
}

/// What a token made by `all` or `when` owns besides its links.
pub(crate) enum Keep {
    /// Made by `all`: its parents are its sources, linked to it only through callbacks (a
    /// walk from one source must not trigger it), which this holds and unregisters when
    /// dropped.
    All(crate::all::Registrations),
    /// Anything else the token must keep alive, such as the poller of a `when` condition:
    /// held only to be dropped with the token.
    Other { _owned: Box<dyn Kept> },
}

/// What a token may keep: a token is `Send`, `Sync` and unwind safe, so this is too.
pub(crate) trait Kept: Send + Sync + UnwindSafe + RefUnwindSafe {}

impl<T: Send + Sync + UnwindSafe + RefUnwindSafe> Kept for T {}

/// What is registered on a token. A trigger takes all of it under the lock and uses it after.
#[derive(Default)]
pub(crate) struct Links {
    pub(crate) children: ChildList,
    /// The first waiter inline: a token with one waiter allocates nothing for it.
    pub(crate) waiters: InlineSlab<Waker>,
    pub(crate) callbacks: InlineSlab<Arc<dyn Callback>>,
    /// This token's own deadline, if it is earlier than every ancestor's, as registered with
    /// the timer. Kept after a trigger, which cancels the registration, to report it.
    pub(crate) timer: Option<TimerKey>,
    /// The reason that deadline triggers the token with.
    pub(crate) deadline_reason: DeadlineReason,
    /// The tokio-util token that mirrors this one (`bridge.rs`): made by the first
    /// `to_tokio_util`, cancelled by a callback registered with it, and the parent of every
    /// token `to_tokio_util` returns, so that they cost this token one registration in all.
    #[cfg(feature = "tokio-util")]
    pub(crate) mirror: Option<tokio_util::sync::CancellationToken>,
}

impl Cold {
    fn new(name: Option<Cow<'static, str>>) -> Box<Cold> {
        Cold::with_parents(name, &[], None)
    }

    /// Cold state with unlinked links to `parents` (the caller links them if it should).
    fn with_parents(
        name: Option<Cow<'static, str>>,
        parents: &[&Arc<Node>],
        keep: Option<Box<Keep>>,
    ) -> Box<Cold> {
        let mut links = parents.iter().map(|parent| ParentLink::new(parent));
        Box::new(Cold {
            name,
            links: Mutex::new(Links::default()),
            parents: [links.next(), links.next()],
            more_parents: {
                let more: Box<[ParentLink]> = links.collect();
                (!more.is_empty()).then(|| Box::new(more))
            },
            record: OnceLock::new(),
            keep,
        })
    }

    /// Whether this is the cold state of a token made by `all`.
    pub(crate) fn is_all(&self) -> bool {
        matches!(self.keep.as_deref(), Some(Keep::All(_)))
    }

    fn parent(&self, index: usize) -> Option<&ParentLink> {
        match index {
            0 | 1 => self.parents[index].as_ref(),
            _ => self.more_parents.as_ref()?.get(index - 2),
        }
    }

    pub(crate) fn parents(&self) -> impl Iterator<Item = &ParentLink> {
        self.parents
            .iter()
            .flatten()
            .chain(self.more_parents.iter().flat_map(|more| more.iter()))
    }
}

impl Node {
    #[inline]
    pub(crate) fn new(name: Option<Cow<'static, str>>) -> Node {
        let (state, cold) = Node::cold_for(name);
        Node {
            state: AtomicU64::new(state),
            cold,
            parent: None,
        }
    }

    /// A token born triggered from `source`: it inherits the reason and origin of `source`,
    /// and keeps only that origin alive (as its one, unlinked, parent), since nothing can
    /// reach it through a link.
    pub(crate) fn born_triggered(source: &Arc<Node>, name: Option<Cow<'static, str>>) -> Node {
        let origin = Node::resolve(source).unwrap_or(source);
        let (state, cold) = Node::cold_for(name);
        Node {
            state: AtomicU64::new(state | inherited(0)),
            cold,
            parent: Some(ParentLink::new(origin)),
        }
    }

    /// The state and cold state of a new node: only a name needs cold state from the start.
    #[inline]
    fn cold_for(name: Option<Cow<'static, str>>) -> (u64, OnceLock<Box<Cold>>) {
        match name {
            Some(name) => (HAS_COLD, OnceLock::from(Cold::new(Some(name)))),
            None => (UNTRIGGERED, OnceLock::new()),
        }
    }

    /// The cold state, allocated if needed. It is announced in the state word before it is
    /// returned, so whatever the caller registers in it is seen by the first trigger, or the
    /// caller sees that trigger under the lock.
    #[inline]
    fn cold(&self) -> &Cold {
        if self.state.load(Ordering::Acquire) & HAS_COLD != 0 {
            if let Some(cold) = self.cold.get() {
                return cold;
            }
        }
        self.announce_cold()
    }

    #[cold]
    fn announce_cold(&self) -> &Cold {
        let cold = self.cold.get_or_init(|| Cold::new(None));
        self.state.fetch_or(HAS_COLD, Ordering::AcqRel);
        cold
    }

    #[inline]
    pub(crate) fn links(&self) -> MutexGuard<'_, Links> {
        lock(&self.cold().links)
    }

    /// The lock of the cold state if there is one: for removing something registered before.
    #[inline]
    pub(crate) fn links_if_any(&self) -> Option<&Mutex<Links>> {
        self.cold.get().map(|cold| &cold.links)
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.cold.get()?.name.as_deref()
    }

    #[inline]
    pub(crate) fn is_triggered(&self) -> bool {
        self.state.load(Ordering::Acquire) & TAG_MASK != UNTRIGGERED
    }

    /// Sets the tag of the state word to `tag` if the token is not triggered yet, keeping the
    /// cold-state bit. Returns the word it replaced, or the triggered word it found.
    /// `guess` is the untriggered word the caller expects (a wrong guess costs a retry).
    #[inline]
    pub(crate) fn claim(&self, tag: u64, guess: u64) -> Result<u64, u64> {
        let mut current = guess;
        loop {
            match self.state.compare_exchange(
                current,
                current | tag,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(previous) => return Ok(previous),
                Err(actual) if actual & TAG_MASK != UNTRIGGERED => return Err(actual),
                Err(actual) => current = actual,
            }
        }
    }

    /// The parent link a state word or a child entry names by `index`.
    pub(crate) fn parent_link(&self, index: usize) -> Option<&ParentLink> {
        match &self.parent {
            Some(link) => (index == 0).then_some(link),
            None => self.cold.get()?.parent(index),
        }
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
                INHERITED => node = &node.parent_link(field(state))?.node,
                _ => return None,
            }
        }
    }

    /// The reason of a node that was triggered directly; `None` for any other node.
    pub(crate) fn own_reason(&self) -> Option<&Reason> {
        let state = self.state.load(Ordering::Acquire);
        match state & TAG_MASK {
            OWN_KIND => KIND_REASONS.get(field(state)),
            OWN_RECORD => self.cold.get()?.record.get().map(|reason| &**reason),
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

    /// The record cell for a reason with a message, allocating the cold state if needed.
    pub(crate) fn record(&self) -> &OnceLock<Box<Reason>> {
        &self.cold().record
    }

    /// A new token triggered when `this` is: born triggered if `this` already is.
    #[inline]
    pub(crate) fn child(this: &Arc<Node>, name: Option<Cow<'static, str>>) -> Arc<Node> {
        if this.is_triggered() {
            return Arc::new(Node::born_triggered(this, name));
        }
        // Everything is allocated before the parent's lock is taken, so the critical section
        // that other threads may wait on is only "check the state word, insert".
        let (state, cold) = Node::cold_for(name);
        let mut child = Arc::new(Node {
            state: AtomicU64::new(state),
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
            if let Some(node) = Arc::get_mut(&mut child) {
                let name = node.cold.get_mut().and_then(|cold| cold.name.take());
                *node = Node::born_triggered(this, name);
            }
            return child;
        }
        let key = links.children.insert(ChildEntry {
            node: weak,
            parent: 0,
        });
        if let Some(link) = &child.parent {
            link.key.store(key, Ordering::Relaxed);
        }
        drop(links);
        child
    }

    /// A new token triggered when any of `parents` is: born triggered, with the reason of the
    /// first triggered parent in iteration order, if one already is.
    pub(crate) fn any(parents: &[&Arc<Node>], name: Option<Cow<'static, str>>) -> Arc<Node> {
        if let Some(parent) = parents.iter().find(|parent| parent.is_triggered()) {
            return Arc::new(Node::born_triggered(parent, name));
        }
        let cold = Cold::with_parents(name, parents, None);
        let node = Arc::new(Node {
            state: AtomicU64::new(HAS_COLD),
            cold: OnceLock::from(cold),
            parent: None,
        });
        let Some(cold) = node.cold.get() else {
            return node;
        };
        for (index, (parent, link)) in parents.iter().zip(cold.parents()).enumerate() {
            let mut links = parent.links();
            if parent.is_triggered() {
                drop(links);
                // Only parents linked so far can see the node; if one of them triggered it
                // first, its reason stands. Nothing is registered on it yet.
                let _ = node.claim(inherited(index), HAS_COLD);
                break;
            }
            let key = links.children.insert(ChildEntry {
                node: Arc::downgrade(&node),
                parent: index,
            });
            link.key.store(key, Ordering::Relaxed);
        }
        node
    }

    /// A new token with cold state from the start: its name, unlinked links to `parents` (which
    /// a state word may name by their index) and `keep`. For `all` and `when`, which link
    /// themselves to their sources in their own way.
    pub(crate) fn keeping(
        name: Option<Cow<'static, str>>,
        parents: &[&Arc<Node>],
        keep: Keep,
    ) -> Node {
        Node {
            state: AtomicU64::new(HAS_COLD),
            cold: OnceLock::from(Cold::with_parents(name, parents, Some(Box::new(keep)))),
            parent: None,
        }
    }

    /// Whether the node has cold state, for a node being dropped.
    #[inline]
    pub(crate) fn has_cold_mut(&mut self) -> bool {
        self.cold.get_mut().is_some()
    }

    #[inline]
    pub(crate) fn take_parent(&mut self) -> Option<ParentLink> {
        self.parent.take()
    }

    /// Takes the parent links and the timer registration of a node that is being dropped.
    /// The `child()` parent is returned, `any` parents pushed on `more`.
    pub(crate) fn take_links(
        &mut self,
        more: &mut Vec<ParentLink>,
    ) -> (Option<ParentLink>, Option<TimerKey>) {
        let first = self.parent.take();
        let mut timer = None;
        if let Some(cold) = self.cold.get_mut() {
            let links = cold
                .links
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            timer = links.timer.take();
            more.extend(cold.parents.iter_mut().filter_map(Option::take));
            if let Some(rest) = cold.more_parents.take() {
                more.extend(rest.into_vec());
            }
        }
        (first, timer)
    }
}

#[cfg(test)]
pub(crate) fn cold_size() -> usize {
    std::mem::size_of::<Cold>()
}
