//! `all`: a token triggered once every one of its sources is.
//!
//! Such a token is not a child of its sources (a walk from one source must not trigger it), so
//! it is linked to them through callbacks instead: one per source, which counts the source
//! off. The callback that counts the last one triggers the token as if a walk had come from
//! that source, so it inherits that source's reason and origin. A trigger of a source costs
//! one atomic decrement, whatever the number of sources. The token keeps its registrations and
//! removes them when it is dropped; its sources keep nothing of it but a weak reference.

use std::borrow::Cow;

use crate::callback::{self, Callback};
use crate::node::{Keep, Node};
use crate::reason::{Reason, ReasonKind};
use crate::sync::{Arc, AtomicUsize, OnceLock, Ordering, Weak};
use crate::walk::FollowUp;

/// The count shared by the callbacks of one `all` token.
struct Join {
    /// Sources not seen triggered yet, plus one while the token is being made.
    remaining: AtomicUsize,
    /// The index of the latest source seen triggered: the origin when the maker's own count
    /// is the last (every source fired before the token was complete).
    latest: AtomicUsize,
    target: Weak<Node>,
}

impl Join {
    /// Counts one off. Whoever counts the last gets the trigger to make: the token, through
    /// source `index`.
    fn count_off(&self, index: usize) -> Option<FollowUp> {
        self.latest.store(index, Ordering::Relaxed);
        // AcqRel: the last decrement sees every earlier one, and the `latest` stored before it.
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.follow_up(index)
        } else {
            None
        }
    }

    fn follow_up(&self, index: usize) -> Option<FollowUp> {
        Some(FollowUp {
            node: self.target.upgrade()?,
            parent: index,
        })
    }
}

/// The callback registered on source `index`.
struct Arrival {
    join: Arc<Join>,
    index: usize,
    seq: u64,
}

impl Callback for Arrival {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn fire(&self, _: &Reason) -> Option<FollowUp> {
        // Handed back rather than made here: the walk running this callback makes it, so a
        // tower of `all` tokens triggers in a loop, not in nested calls.
        self.join.count_off(self.index)
    }

    fn cancel(&self) {
        // Nothing of the user's: firing after the token is gone finds nothing to trigger.
    }
}

/// An `all` token's registrations on its sources, removed when the token is dropped.
pub(crate) struct Registrations {
    entries: OnceLock<Vec<(Weak<Node>, usize)>>,
}

impl Registrations {
    fn new() -> Registrations {
        Registrations {
            entries: OnceLock::new(),
        }
    }
}

impl Drop for Registrations {
    fn drop(&mut self) {
        let Some(entries) = self.entries.get_mut() else {
            return;
        };
        for (source, key) in entries.drain(..) {
            // A source already gone took its callbacks with it.
            if let Some(source) = source.upgrade() {
                source.unregister_callback(key);
            }
        }
    }
}

impl Node {
    /// A new token triggered once every one of `sources` is, with the reason and origin of the
    /// last one to fire. Sources already triggered count as fired, in iteration order; with no
    /// sources (or all already triggered) the token is born triggered.
    pub(crate) fn all(sources: &[&Arc<Node>], name: Option<Cow<'static, str>>) -> Arc<Node> {
        let Some(last) = sources.last() else {
            let node = Arc::new(Node::new(name));
            let reason = Reason::with_message(ReasonKind::Manual, "all() of no tokens");
            Node::trigger(&node, reason);
            return node;
        };
        if sources.iter().all(|source| source.is_triggered()) {
            return Arc::new(Node::born_triggered(last, name));
        }
        let node = Arc::new(Node::keeping(
            name,
            sources,
            Keep::All(Registrations::new()),
        ));
        let join = Arc::new(Join {
            remaining: AtomicUsize::new(sources.len() + 1),
            latest: AtomicUsize::new(0),
            target: Arc::downgrade(&node),
        });
        let mut entries = Vec::with_capacity(sources.len());
        for (index, source) in sources.iter().enumerate() {
            let arrival: Arc<dyn Callback> = Arc::new(Arrival {
                join: Arc::clone(&join),
                index,
                seq: callback::next_seq(),
            });
            match source.register_callback(&arrival) {
                Some(key) => entries.push((Arc::downgrade(source), key)),
                // Cannot be the last count: the maker's own is still in.
                None => drop(join.count_off(index)),
            }
        }
        if let Some(Keep::All(registrations)) =
            node.cold.get().and_then(|cold| cold.keep.as_deref())
        {
            let _ = registrations.entries.set(entries);
        }
        // The maker's own count: the last one only if every source fired meanwhile.
        if join.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(FollowUp { node, parent }) =
                join.follow_up(join.latest.load(Ordering::Relaxed))
            {
                Node::trigger_from_parent(&node, parent);
            }
        }
        node
    }
}
