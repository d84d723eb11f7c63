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
/// its own; key `k > 0` is `more[k - 1]`.
#[derive(Default)]
pub(crate) struct ChildList {
    first: Option<ChildEntry>,
    /// Never ends with a vacant slot.
    more: Vec<Option<ChildEntry>>,
    /// Holes left when the last entry could not be moved (its child was being dropped, so its
    /// key could not be rewritten); reused first. Keys here may be stale: each is checked.
    holes: Vec<usize>,
}

impl ChildList {
    #[cfg(any(test, cancel_token_loom))]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.iter().flatten().count()
    }

    /// How many slots a trigger walks through, for the tests that the list stays dense.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        1 + self.more.len()
    }

    fn slot(&mut self, key: usize) -> Option<&mut Option<ChildEntry>> {
        match key.checked_sub(1) {
            None => Some(&mut self.first),
            Some(index) => self.more.get_mut(index),
        }
    }

    pub(crate) fn insert(&mut self, entry: ChildEntry) -> usize {
        while let Some(key) = self.holes.pop() {
            if let Some(slot @ None) = self.slot(key) {
                *slot = Some(entry);
                return key;
            }
        }
        if self.first.is_none() && self.more.is_empty() {
            self.first = Some(entry);
            return 0;
        }
        self.more.push(Some(entry));
        self.more.len()
    }

    /// Removes the entry under `key` and fills its slot with the last entry, rewriting that
    /// child's key. Returns the moved child: the caller drops it after releasing the lock,
    /// since dropping that handle may drop the child, which locks this list's node. (The
    /// removed entry is a `Weak`, whose drop runs no code of anyone's.)
    #[inline]
    pub(crate) fn remove(&mut self, key: usize) -> Option<Arc<Node>> {
        // The common case: the newest child goes first. Nothing moves.
        if key != 0 && key == self.more.len() {
            self.more.pop();
            pop_vacant(&mut self.more);
            self.shrink();
            return None;
        }
        self.remove_and_fill(key)
    }

    fn remove_and_fill(&mut self, key: usize) -> Option<Arc<Node>> {
        self.slot(key).and_then(Option::take)?;
        pop_vacant(&mut self.more);
        let mut moved = None;
        // `key` is below the number of slots (inline one included) exactly when it is not last.
        if key < self.more.len() {
            let last = self.more.last().and_then(Option::as_ref);
            match last.and_then(|entry| entry.node.upgrade()) {
                Some(child) => {
                    // `key` names a slot before the last, so it is still there after the pop;
                    // vacant slots before the last are popped only once it is filled.
                    let entry = self.more.pop().flatten();
                    if let Some(entry) = &entry {
                        if let Some(link) = child.parent_link(entry.parent) {
                            link.key.store(key, Ordering::Relaxed);
                        }
                    }
                    if let Some(slot) = self.slot(key) {
                        *slot = entry;
                    }
                    pop_vacant(&mut self.more);
                    moved = Some(child);
                }
                // The last child is being dropped and will come to remove itself by its key,
                // which cannot be rewritten now: leave a hole.
                None => self.holes.push(key),
            }
        }
        self.shrink();
        moved
    }

    /// Gives back most of the capacity once mostly unused; keeps a small allocation for the
    /// next children. Two checks inline; the work, rarely needed, out of line.
    #[inline]
    fn shrink(&mut self) {
        if !self.holes.is_empty() {
            self.shrink_holes();
        }
        let capacity = self.more.capacity();
        if capacity > SHRINK_THRESHOLD && self.more.len() * 4 < capacity {
            self.shrink_more();
        }
    }

    #[cold]
    fn shrink_more(&mut self) {
        self.more.shrink_to(self.more.len() * 2);
    }

    #[cold]
    fn shrink_holes(&mut self) {
        if self.more.is_empty() {
            // Holes can only be in the inline slot now, and inserting fills it first.
            self.holes = Vec::new();
        } else if self.holes.len() > self.more.len() + SHRINK_THRESHOLD {
            // Most recorded holes were popped off the end since: keep the ones still there.
            let more = &self.more;
            let first_vacant = self.first.is_none();
            self.holes.retain(|&key| match key.checked_sub(1) {
                None => first_vacant,
                Some(index) => matches!(more.get(index), Some(None)),
            });
            self.holes.sort_unstable();
            self.holes.dedup();
            self.holes.shrink_to_fit();
        }
    }

    /// Every entry, for a trigger: the list is left empty.
    pub(crate) fn take_all(&mut self) -> (Option<ChildEntry>, Vec<Option<ChildEntry>>) {
        self.holes = Vec::new();
        (self.first.take(), std::mem::take(&mut self.more))
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
        let mut links = lock(links);
        // The key is read under the lock: that is where the list rewrites it.
        let moved = links.children.remove(key.load(Ordering::Relaxed));
        drop(links);
        drop(moved);
    }
}

impl Drop for Node {
    /// Unlinks this node from its parents, and any parent this leaves without handles or
    /// children from its own parents, in a loop: dropping the last handle of a chain a million
    /// links deep uses constant stack, and a plain child allocates nothing to do it.
    #[inline]
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
    // A trigger cancelled the registration already.
    if let Some(key) = timer.filter(|_| !node.is_triggered()) {
        time::cancel(key);
    }
    if first.is_none() {
        first = more.pop();
    }
    first
}
