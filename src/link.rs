//! The links between nodes, and taking them apart: a child's strong [`ParentLink`] to each
//! parent, a parent's [`ChildList`] of weak entries, and the teardown that unlinks a dropped
//! node (and every ancestor that this leaves unowned) in a loop.
//!
//! A child's entry in its parent's list is found by a key the child keeps in its
//! [`ParentLink`]. The list keeps its live entries dense: removing one moves the last entry
//! into the hole and rewrites that child's key, under the parent's lock, where the child reads
//! it too. So a trigger walks only live entries, and a burst of children comes back to memory
//! even while an older child lives.

use crate::node::Node;
use crate::sync::{lock, Arc, AtomicUsize, Ordering, Weak};
use crate::time;

/// The key of a link that was never inserted in a child list.
pub(crate) const UNLINKED: usize = usize::MAX;

/// Below this capacity a child list keeps its allocation for the next children.
const SHRINK_THRESHOLD: usize = 64;

/// A strong link to a parent, with the key of our entry in its children list.
pub(crate) struct ParentLink {
    pub(crate) node: Arc<Node>,
    /// Written under the parent's lock: when the entry is inserted, and when the list moves
    /// it. [`UNLINKED`] if nothing was inserted: the token was born triggered (the link then
    /// only keeps the origin alive), or `any` found this parent, or an earlier one, triggered
    /// while linking.
    pub(crate) key: AtomicUsize,
}

impl ParentLink {
    pub(crate) fn new(node: &Arc<Node>) -> Self {
        ParentLink {
            node: Arc::clone(node),
            key: AtomicUsize::new(UNLINKED),
        }
    }

    /// Removes our entry from the parent and gives back the parent handle.
    #[inline]
    fn unlink(self) -> Arc<Node> {
        if self.key.load(Ordering::Relaxed) != UNLINKED {
            self.node.unlink_child(&self.key);
        }
        self.node
    }
}

/// A parent's entry for one child: the child, and which of its parents the parent is (the
/// index a walk coming from the parent writes in the child's state word).
pub(crate) struct ChildEntry {
    pub(crate) node: Weak<Node>,
    pub(crate) parent: usize,
}

/// The children of a node. Key 0 is an inline slot, so a first child costs no allocation of
/// its own; key `k > 0` is slot `k - 1` of a boxed [`Spill`], made for the second child and
/// freed when it empties, which keeps a token's cold state small.
#[derive(Default)]
pub(crate) struct ChildList {
    first: Option<ChildEntry>,
    more: Option<Box<Spill>>,
}

#[derive(Default)]
struct Spill {
    /// Never ends with a vacant slot.
    entries: Vec<Option<ChildEntry>>,
    /// Holes left when the last entry could not be moved (its child was being dropped, so its
    /// key could not be rewritten); reused first. Keys here may be stale: each is checked.
    holes: Vec<usize>,
}

impl ChildList {
    #[cfg(any(test, cancel_token_loom))]
    pub(crate) fn len(&self) -> usize {
        let more = self.more.as_ref();
        usize::from(self.first.is_some())
            + more.map_or(0, |more| more.entries.iter().flatten().count())
    }

    /// How many slots a trigger walks through, for the tests that the list stays dense.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        1 + self.more.as_ref().map_or(0, |more| more.entries.len())
    }

    fn slot(&mut self, key: usize) -> Option<&mut Option<ChildEntry>> {
        match key.checked_sub(1) {
            None => Some(&mut self.first),
            Some(index) => self.more.as_mut()?.entries.get_mut(index),
        }
    }

    pub(crate) fn insert(&mut self, entry: ChildEntry) -> usize {
        if let Some(more) = &mut self.more {
            while let Some(key) = more.holes.pop() {
                let slot = match key.checked_sub(1) {
                    None => &mut self.first,
                    Some(index) => match more.entries.get_mut(index) {
                        Some(slot) => slot,
                        None => continue,
                    },
                };
                if slot.is_none() {
                    *slot = Some(entry);
                    return key;
                }
            }
        } else if self.first.is_none() {
            self.first = Some(entry);
            return 0;
        }
        let more = self.more.get_or_insert_with(Box::default);
        more.entries.push(Some(entry));
        more.entries.len()
    }

    /// Removes the entry under `key` and fills its slot with the last entry, rewriting that
    /// child's key. Returns the removed entry and the moved child: the caller drops both after
    /// releasing the lock, since dropping the moved child's handle may drop the child.
    pub(crate) fn remove(&mut self, key: usize) -> (Option<ChildEntry>, Option<Arc<Node>>) {
        let Some(removed) = self.slot(key).and_then(Option::take) else {
            return (None, None);
        };
        let Some(more) = &mut self.more else {
            return (Some(removed), None);
        };
        pop_vacant(&mut more.entries);
        let mut moved = None;
        // `key` is below the number of slots (inline one included) exactly when it is not last.
        if key < more.entries.len() {
            let last = more.entries.last().and_then(Option::as_ref);
            match last.and_then(|entry| entry.node.upgrade()) {
                Some(child) => {
                    let entry = more.entries.pop().flatten();
                    pop_vacant(&mut more.entries);
                    if let Some(entry) = &entry {
                        if let Some(link) = child.parent_link(entry.parent) {
                            link.key.store(key, Ordering::Relaxed);
                        }
                    }
                    if let Some(slot) = self.slot(key) {
                        *slot = entry;
                    }
                    moved = Some(child);
                }
                // The last child is being dropped and will come to remove itself by its key,
                // which cannot be rewritten now: leave a hole.
                None => more.holes.push(key),
            }
        }
        self.shrink();
        (Some(removed), moved)
    }

    /// Frees the spill once empty, and most of its capacity once mostly unused.
    fn shrink(&mut self) {
        let Some(more) = &mut self.more else {
            return;
        };
        if more.entries.is_empty() {
            // Holes can only be in the spill or the inline slot, and inserting fills the
            // inline slot first once the spill is gone.
            self.more = None;
            return;
        }
        let capacity = more.entries.capacity();
        if capacity > SHRINK_THRESHOLD && more.entries.len() * 4 < capacity {
            more.entries.shrink_to(more.entries.len() * 2);
        }
    }

    /// Every entry, for a trigger: the list is left empty.
    pub(crate) fn take_all(&mut self) -> (Option<ChildEntry>, Vec<Option<ChildEntry>>) {
        let more = self.more.take().map(|more| more.entries);
        (self.first.take(), more.unwrap_or_default())
    }
}

fn pop_vacant(entries: &mut Vec<Option<ChildEntry>>) {
    while let Some(None) = entries.last() {
        entries.pop();
    }
}

impl Node {
    /// Removes the entry that `key` (a [`ParentLink`]'s) names from this node's children.
    #[inline]
    fn unlink_child(&self, key: &AtomicUsize) {
        // Once triggered, the trigger takes the whole list: nothing to remove.
        if self.is_triggered() {
            return;
        }
        let Some(links) = self.links_if_any() else {
            return;
        };
        let removed = lock(links).children.remove(key.load(Ordering::Relaxed));
        drop(removed);
    }
}

impl Drop for Node {
    /// Unlinks this node from its parents, and any parent this leaves without handles or
    /// children from its own parents, in a loop: dropping the last handle of a chain a million
    /// links deep uses constant stack, and a plain child allocates nothing to do it.
    fn drop(&mut self) {
        // The common cases first: a token with no links at all, and a plain child.
        if !self.has_cold_mut() {
            let Some(link) = self.take_parent() else {
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
    let mut next = detach(node, &mut more);
    while let Some(link) = next.take().or_else(|| more.pop()) {
        if let Some(mut parent) = Arc::into_inner(link.unlink()) {
            next = detach(&mut parent, &mut more);
            // `parent` drops here with no links left, so its own `drop` does nothing more.
        }
    }
}

/// Takes the parent links of a node that is being dropped, releasing its timer entry. The
/// first link is returned, the others pushed on `more`.
fn detach(node: &mut Node, more: &mut Vec<ParentLink>) -> Option<ParentLink> {
    let (mut first, timer) = node.take_links(more);
    if let Some(key) = timer {
        time::cancel(key);
    }
    if first.is_none() {
        first = more.pop();
    }
    first
}
