//! The shared state behind every handle of a token, and the two algorithms that must never
//! recurse: propagating a trigger through the token graph, and tearing down a chain of links.
//!
//! Ownership runs one way. A handle ([`CancelToken`](crate::CancelToken)) owns its node through
//! an `Arc`; a node owns its parents through `Arc`s (so an intermediate token whose handles are
//! all gone stays linked while it has descendants); a parent knows its children only through
//! `Weak`s kept in a slab, which is how a dropped child unlinks itself in O(1) and how the graph
//! stays free of cycles. `clone` and `drop` of a handle are therefore a single reference-count
//! operation, and the strong count of a node is "handles plus children".

use std::borrow::Cow;
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use event_listener::Event;

use crate::callback::Callback;
use crate::reason::Reason;
use crate::slab::Slab;
use crate::sync::{lock, Arc, Mutex, OnceLock, Weak};
use crate::time::{self, TimerKey};

/// What a triggered token records, published in one step so that nobody can observe the flag
/// without the reason.
pub(crate) struct Fired {
    pub(crate) reason: Reason,
    /// The token whose trigger fired, on descendants; `None` on that token itself (a node
    /// cannot hold a strong reference to itself without leaking).
    pub(crate) origin: Option<Arc<Node>>,
}

pub(crate) struct Node {
    /// Set exactly once, by the winning trigger; `is_triggered` is one acquire load of it.
    fired: OnceLock<Arc<Fired>>,
    /// Waiters, async and blocking. Allocates only when the first waiter registers.
    event: Event,
    /// Cold state, allocated on first use: a plain token never pays for it.
    links: Mutex<Option<Box<Links>>>,
    name: Option<Box<Cow<'static, str>>>,
}

#[derive(Default)]
struct Links {
    children: Slab<Weak<Node>>,
    callbacks: Slab<Arc<dyn Callback>>,
    /// Most tokens have at most one parent; it is kept inline so a child costs no extra
    /// allocation for its back link.
    parent: Option<ParentLink>,
    more_parents: Vec<ParentLink>,
    /// The effective deadline: the earliest of this token's own and its sources'.
    deadline: Option<Instant>,
    /// This token's own registration with the timer thread, when its own deadline is the
    /// effective one (otherwise a source's timer fires first and propagates).
    timer: Option<TimerKey>,
}

/// A strong link to a parent, with the key of our entry in its children slab.
struct ParentLink {
    node: Arc<Node>,
    key: usize,
}

impl Links {
    fn add_parent(&mut self, link: ParentLink) {
        if self.parent.is_none() {
            self.parent = Some(link);
        } else {
            self.more_parents.push(link);
        }
    }

    /// Releases the timer registration and hands back the parent links; everything else
    /// (unrun callbacks, dead child links) is dropped here.
    fn dismantle(self) -> impl Iterator<Item = ParentLink> {
        if let Some(key) = self.timer {
            time::cancel(key);
        }
        self.parent.into_iter().chain(self.more_parents)
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
    pub(crate) fn new(name: Option<Cow<'static, str>>) -> Node {
        Node::with_links(name, None)
    }

    fn with_links(name: Option<Cow<'static, str>>, links: Option<Box<Links>>) -> Node {
        Node {
            fired: OnceLock::new(),
            event: Event::new(),
            links: Mutex::new(links),
            name: name.map(Box::new),
        }
    }

    fn born_triggered(fired: Arc<Fired>, name: Option<Cow<'static, str>>) -> Node {
        let node = Node::new(name);
        // A fresh cell: this cannot fail.
        let _ = node.fired.set(fired);
        node
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref().map(|name| &**name)
    }

    #[inline]
    pub(crate) fn is_triggered(&self) -> bool {
        self.fired.get().is_some()
    }

    #[inline]
    pub(crate) fn fired(&self) -> Option<&Arc<Fired>> {
        self.fired.get()
    }

    pub(crate) fn event(&self) -> &Event {
        &self.event
    }

    /// Triggers `this` with `reason` and, through an explicit worklist, every descendant that
    /// is not triggered yet. Returns `false` if the token was already triggered.
    ///
    /// Order of effects: flag and reason of every descendant are published and its waiters
    /// woken first; the callbacks of the whole tree run afterwards, in registration order,
    /// with no lock held. A callback panic is resumed once all callbacks have run.
    pub(crate) fn trigger(this: &Arc<Node>, reason: Reason) -> bool {
        if this.is_triggered() {
            // Spares the losers of a race (and repeated triggers) an allocation.
            return false;
        }
        let fired = Arc::new(Fired {
            reason,
            origin: None,
        });
        if this.fired.set(Arc::clone(&fired)).is_err() {
            return false;
        }
        let mut propagation = Propagation::default();
        propagation.publish(this);
        if !propagation.work.is_empty() {
            let inherited = inherit(this, &fired);
            while let Some(node) = propagation.work.pop() {
                // A descendant already triggered (by its own trigger, or through another
                // parent) keeps its first reason; whoever triggered it walks its subtree.
                if node.fired.set(Arc::clone(&inherited)).is_ok() {
                    propagation.publish(&node);
                }
            }
        }
        propagation.run_callbacks(&fired.reason);
        true
    }

    /// A new token triggered when `this` is: born triggered if `this` already is.
    pub(crate) fn child(this: &Arc<Node>, name: Option<Cow<'static, str>>) -> Arc<Node> {
        let mut guard = lock(&this.links);
        if let Some(fired) = this.fired.get() {
            drop(guard);
            return Arc::new(Node::born_triggered(inherit(this, fired), name));
        }
        // The child is built under the parent's lock so that its back link (with the slab
        // key) is in place before anyone can see it: one lock, no lock on the child.
        let links = guard.get_or_insert_with(Default::default);
        let key = links.children.next_key();
        let back_link = Links {
            parent: Some(ParentLink {
                node: Arc::clone(this),
                key,
            }),
            deadline: links.deadline,
            ..Links::default()
        };
        let child = Arc::new(Node::with_links(name, Some(Box::new(back_link))));
        let inserted = links.children.insert(Arc::downgrade(&child));
        debug_assert_eq!(inserted, key);
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
        let node = Arc::new(Node::new(name));
        for parent in parents {
            let key = {
                let mut guard = lock(&parent.links);
                if let Some(fired) = parent.fired.get() {
                    let inherited = inherit(parent, fired);
                    drop(guard);
                    // Only parents linked so far can see the node; if one of them triggered
                    // it first, its reason stands.
                    if node.fired.set(inherited).is_ok() {
                        Propagation::default().publish(&node);
                    }
                    break;
                }
                let links = guard.get_or_insert_with(Default::default);
                (links.children.insert(Arc::downgrade(&node)), links.deadline)
            };
            let (key, deadline) = key;
            let mut guard = lock(&node.links);
            let links = guard.get_or_insert_with(Default::default);
            links.deadline = earliest(links.deadline, deadline);
            links.add_parent(ParentLink {
                node: Arc::clone(parent),
                key,
            });
        }
        node
    }

    /// Gives `this` its own deadline. The effective deadline becomes the earlier of this one
    /// and the inherited one; a timer is registered only if this one is earlier. A deadline
    /// that has passed triggers at once.
    pub(crate) fn set_deadline(this: &Arc<Node>, deadline: Instant) {
        if deadline <= Instant::now() {
            Node::trigger(this, Reason::new(crate::ReasonKind::Timeout));
            return;
        }
        {
            let mut guard = lock(&this.links);
            if this.is_triggered() {
                return;
            }
            let links = guard.get_or_insert_with(Default::default);
            if links
                .deadline
                .is_some_and(|inherited| inherited <= deadline)
            {
                return;
            }
            links.deadline = Some(deadline);
        }
        // Registered outside the node's lock: the timer thread locks nodes (to trigger them)
        // after its own lock, never the other way round.
        let key = time::register(deadline, Arc::downgrade(this));
        let mut guard = lock(&this.links);
        let stale = match guard.as_mut() {
            Some(links) if !this.is_triggered() => links.timer.replace(key),
            // Triggered meanwhile (possibly by this very timer): nothing to keep.
            _ => Some(key),
        };
        drop(guard);
        if let Some(stale) = stale {
            time::cancel(stale);
        }
    }

    /// The effective deadline, if any.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        lock(&self.links).as_ref().and_then(|links| links.deadline)
    }

    /// The node whose trigger fired `this`, if `this` is triggered.
    pub(crate) fn origin(this: &Arc<Node>) -> Option<Arc<Node>> {
        let fired = this.fired.get()?;
        Some(Arc::clone(fired.origin.as_ref().unwrap_or(this)))
    }

    /// Registers a callback; `None` if the token is already triggered (the caller runs it).
    pub(crate) fn register_callback(&self, callback: &Arc<dyn Callback>) -> Option<usize> {
        let mut guard = lock(&self.links);
        if self.is_triggered() {
            return None;
        }
        let links = guard.get_or_insert_with(Default::default);
        Some(links.callbacks.insert(Arc::clone(callback)))
    }

    pub(crate) fn unregister_callback(&self, key: usize) {
        let mut guard = lock(&self.links);
        // Once triggered, the trigger owns (or has consumed) the registrations.
        if self.is_triggered() {
            return;
        }
        let removed = guard.as_mut().and_then(|links| links.callbacks.remove(key));
        drop(guard);
        drop(removed);
    }

    fn unlink_child(&self, key: usize) {
        let mut guard = lock(&self.links);
        if self.is_triggered() {
            return;
        }
        let removed = guard.as_mut().and_then(|links| links.children.remove(key));
        drop(guard);
        drop(removed);
    }

    /// Number of registered waiters, for tests of the no-leak rules.
    #[cfg(test)]
    pub(crate) fn waiters(&self) -> usize {
        self.event.total_listeners()
    }

    /// Number of live child links and callbacks, for tests of the no-leak rules.
    #[cfg(test)]
    pub(crate) fn registrations(&self) -> (usize, usize) {
        lock(&self.links).as_ref().map_or((0, 0), |links| {
            (links.children.len(), links.callbacks.len())
        })
    }
}

/// The `Fired` record descendants of `from` share: `from`'s own record if it already names an
/// origin, otherwise a copy naming `from`.
fn inherit(from: &Arc<Node>, fired: &Arc<Fired>) -> Arc<Fired> {
    if fired.origin.is_some() {
        Arc::clone(fired)
    } else {
        Arc::new(Fired {
            reason: fired.reason.clone(),
            origin: Some(Arc::clone(from)),
        })
    }
}

/// The worklist of one trigger: nodes whose flag is published but whose children are not yet
/// visited, and the callbacks collected on the way.
#[derive(Default)]
struct Propagation {
    work: Vec<Arc<Node>>,
    callbacks: Vec<Arc<dyn Callback>>,
}

impl Propagation {
    /// Wakes the waiters of a node whose flag was just set and takes its registrations.
    fn publish(&mut self, node: &Node) {
        node.event.notify(usize::MAX);
        let mut guard = lock(&node.links);
        let Some(links) = guard.as_mut() else {
            return;
        };
        let children = links.children.take_all();
        let callbacks = links.callbacks.take_all();
        let timer = links.timer.take();
        drop(guard);
        if let Some(key) = timer {
            time::cancel(key);
        }
        // A child that fails to upgrade is being dropped; it has nothing left to notify.
        self.work
            .extend(children.filter_map(|child| child.upgrade()));
        self.callbacks.extend(callbacks);
    }

    fn run_callbacks(mut self, reason: &Reason) {
        if self.callbacks.is_empty() {
            return;
        }
        self.callbacks.sort_by_key(|callback| callback.seq());
        let mut first_panic = None;
        for callback in &self.callbacks {
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

impl Drop for Node {
    /// Unlinks this node from its parents, and any parent this leaves without handles or
    /// children from its own parents, in a loop: dropping the last handle of a chain a million
    /// links deep uses constant stack.
    fn drop(&mut self) {
        let links = self
            .links
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(links) = links else {
            return;
        };
        let mut pending: Vec<ParentLink> = (*links).dismantle().collect();
        while let Some(ParentLink { node, key }) = pending.pop() {
            node.unlink_child(key);
            if let Some(mut parent) = Arc::into_inner(node) {
                let links = parent
                    .links
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                if let Some(links) = links {
                    pending.extend((*links).dismantle());
                }
                // `parent` drops here with no links left, so its own `drop` returns at once.
            }
        }
    }
}
