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
    /// it and every descendant it can claim, then runs the callbacks it took with `reason`.
    fn propagate(this: &Arc<Node>, previous: u64, reason: &Reason) {
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
        walk.run_callbacks(reason);
    }
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
    fn run_callbacks(self, reason: &Reason) {
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
        let mut first_panic = None;
        for callback in &callbacks {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| callback.fire(reason))) {
                match first_panic {
                    None => first_panic = Some(payload),
                    Some(_) => drop_payload(payload),
                }
            }
        }
        drop(callbacks);
        if let Some(payload) = first_panic {
            // A second panic while this thread unwinds would abort the process: a trigger
            // made from a `Drop` during unwinding swallows its callbacks' panic instead.
            if std::thread::panicking() {
                drop_payload(payload);
            } else {
                panic::resume_unwind(payload);
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
