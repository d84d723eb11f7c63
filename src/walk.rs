//! Propagating a trigger: one iterative walk over the descendants a trigger claims.
//!
//! The rule is the one tokio-util and .NET give: a walk claims each descendant with one
//! compare-and-swap of its state word, and a descendant that something else triggered first
//! (another walk, or a direct trigger) belongs, with everything below it, to that trigger,
//! which finishes it. So every node is published (its waiters woken, its callbacks taken, its
//! children queued) by exactly one walk, the one that claimed it, and no trigger ever waits for
//! another. Every node a walk claims carries the walk's origin's reason, so the callbacks it
//! takes all run with that reason.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use crate::callback::Callback;
use crate::link::ChildEntry;
use crate::node::{inherited, own_kind, Node, HAS_COLD, OWN_RECORD, TAG_MASK};
use crate::reason::Reason;
use crate::sync::{lock, Arc, Ordering};
use crate::time;

impl Node {
    /// Triggers `this` with `reason` and every descendant nothing else triggered first.
    /// Returns `false` if the token was already triggered.
    ///
    /// When this returns `true`, every descendant it claimed reports triggered and has had its
    /// waiters woken and its callbacks run; the subtree below a descendant that another
    /// trigger reached first is that trigger's to finish. Callbacks run last, in registration
    /// order, with no lock held; the first callback panic is resumed after all have run.
    pub(crate) fn trigger(this: &Arc<Node>, reason: Reason) -> bool {
        let state = this.state.load(Ordering::Acquire);
        if state & TAG_MASK != 0 {
            return false;
        }
        let previous = if reason.message().is_none() {
            // Everything such a reason says fits in the state word: nothing to allocate.
            match this.claim(own_kind(reason.kind()), state) {
                Ok(previous) => previous,
                Err(_) => return false,
            }
        } else {
            // The record goes in first, so a state word never names a missing one. Of two such
            // triggers, the one whose record is in the cell is the trigger, whichever of them
            // stores the word (the other returns `false`, but only after the word is stored).
            let ours = this.record().set(Box::new(reason)).is_ok();
            match this.claim(OWN_RECORD, state | HAS_COLD) {
                Ok(previous) if ours => previous,
                Err(found) if ours && found & TAG_MASK == OWN_RECORD => found,
                _ => return false,
            }
        };
        Node::propagate(this, previous, this.origin_reason());
        true
    }

    /// Triggers `this` as if a walk had come through its parent link `parent` (which must be
    /// triggered): for `all`, whose sources are not linked to it as children. Returns `false`
    /// if the token was already triggered.
    pub(crate) fn trigger_from_parent(this: &Arc<Node>, parent: usize) -> bool {
        let state = this.state.load(Ordering::Acquire);
        let Ok(previous) = this.claim(inherited(parent), state & !TAG_MASK) else {
            return false;
        };
        let origin = Node::resolve(this).unwrap_or(this);
        Node::propagate(this, previous, origin.origin_reason());
        true
    }

    /// The walk of a trigger that claimed `this`, replacing the state word `previous`: publishes
    /// it and every descendant it can claim, then runs the callbacks it took with `reason`;
    /// then the same for each trigger a callback handed back (an `all` token whose last source
    /// this was), in a loop, so nested `all` tokens use no stack per level. The first callback
    /// panic is resumed once all of it is done.
    fn propagate(this: &Arc<Node>, previous: u64, reason: &Reason) {
        let mut after = After::default();
        Node::walk(this, previous, reason, &mut after);
        while let Some(FollowUp { node, parent }) = after.follow_ups.pop() {
            let state = node.state.load(Ordering::Acquire);
            if let Ok(previous) = node.claim(inherited(parent), state & !TAG_MASK) {
                // Its parent was published by one of these walks, so it has their origin,
                // and their reason: no need to look it up (a level at a time, in a tower).
                Node::walk(&node, previous, reason, &mut after);
            }
        }
        if let Some(payload) = after.first_panic {
            // A second panic while this thread unwinds would abort the process: a trigger
            // made from a `Drop` during unwinding swallows its callbacks' panic instead.
            if std::thread::panicking() {
                drop_payload(payload);
            } else {
                panic::resume_unwind(payload);
            }
        }
    }

    /// One walk: `this` and every descendant it can claim, then their callbacks.
    fn walk(this: &Arc<Node>, previous: u64, reason: &Reason, after: &mut After) {
        let mut walk = Walk::default();
        walk.publish(this, previous);
        while let Some(entry) = walk.work.pop() {
            let Some(ChildEntry { node, parent }) = entry else {
                continue;
            };
            let Some(child) = node.upgrade() else {
                continue;
            };
            // A child without cold state is the common case, so that is the first guess.
            if let Ok(previous) = child.claim(inherited(parent), 0) {
                walk.publish(&child, previous);
            }
        }
        walk.run_callbacks(reason, after);
    }
}

/// A trigger that a callback hands back to the walk that ran it instead of making it itself:
/// `node` is to be triggered as if a walk had come through its parent link `parent`.
pub(crate) struct FollowUp {
    pub(crate) node: Arc<Node>,
    pub(crate) parent: usize,
}

/// What the walks of one trigger leave for after them.
#[derive(Default)]
struct After {
    follow_ups: Vec<FollowUp>,
    first_panic: Option<Box<dyn Any + Send>>,
}

/// One trigger's walk: the entries still to visit and the callbacks it took.
#[derive(Default)]
struct Walk {
    /// Child entries reached and not visited yet; the order does not matter.
    work: Vec<Option<ChildEntry>>,
    callbacks: Vec<Arc<dyn Callback>>,
}

impl Walk {
    /// Publishes a node this walk claimed, given the state word its claim replaced: takes its
    /// waiters, callbacks, timer and children under its lock, then wakes the waiters with no
    /// lock held. A node whose word did not announce cold state has nothing registered.
    fn publish(&mut self, node: &Node, previous: u64) {
        if previous & HAS_COLD == 0 {
            return;
        }
        let Some(links) = node.links_if_any() else {
            return;
        };
        let mut links = lock(links);
        let wakers = (!links.waiters.is_empty()).then(|| links.waiters.take_slots());
        if !links.callbacks.is_empty() {
            self.callbacks.extend(links.callbacks.take_all());
        }
        // The key stays, to report the deadline; the node's drop does not cancel it again.
        let timer = links.timer;
        let (first, more) = links.children.take_all();
        drop(links);
        // A large list is taken over as the worklist rather than copied; a small one is
        // copied, so that the worklist keeps its allocation from level to level.
        if more.capacity() > self.work.capacity() && self.work.is_empty() {
            self.work = more;
        } else {
            self.work.extend(more);
        }
        if first.is_some() {
            self.work.push(first);
        }
        if let Some(key) = timer {
            time::cancel(key);
        }
        if let Some((first, more)) = wakers {
            if let Some(waker) = first {
                wake(waker);
            }
            for waker in more.into_iter().flatten() {
                wake(waker);
            }
        }
    }

    /// Runs the callbacks this walk took, in registration order, with the origin's reason.
    /// The triggers they hand back and the first panic go to `after`.
    fn run_callbacks(self, reason: &Reason, after: &mut After) {
        let Walk {
            work,
            mut callbacks,
        } = self;
        // Nodes are released before user code runs.
        drop(work);
        if callbacks.is_empty() {
            return;
        }
        callbacks.sort_by_key(|callback| callback.seq());
        for callback in &callbacks {
            match panic::catch_unwind(AssertUnwindSafe(|| callback.fire(reason))) {
                Ok(None) => {}
                Ok(Some(follow_up)) => after.follow_ups.push(follow_up),
                Err(payload) => match after.first_panic {
                    None => after.first_panic = Some(payload),
                    Some(_) => drop_payload(payload),
                },
            }
        }
    }
}

/// Wakes a waiter. A panicking waker (an executor bug) must not cut the propagation short.
#[inline]
fn wake(waker: std::task::Waker) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| waker.wake())) {
        drop_payload(payload);
    }
}

/// Drops a caught panic's payload where a panic from its own `Drop` cannot escape: such a
/// payload is leaked instead (a second panic in its `Drop` would too).
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}
