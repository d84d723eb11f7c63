//! The slabs that hold a token's waiters and callbacks: O(1) insert and O(1) removal by a key
//! the registrant keeps, so dropping a registration never scans a list.
//!
//! Keys are handed out to code the slab cannot reach (a `Wait` future, a `CallbackGuard`), so
//! an entry never moves. What a slab can do is give memory back: removing the last entry pops
//! every vacant slot before it, and a vector far larger than what it holds is shrunk. After a
//! burst of registrations, the memory comes back even while an older entry lives; only entries
//! registered during the burst and still alive keep their slots (see `docs/architecture.md`).

use std::mem;

/// Below this capacity a slab keeps its allocation for the next registrations.
const SHRINK_THRESHOLD: usize = 64;

pub(crate) struct Slab<T> {
    /// Never ends with a vacant slot, so it is empty exactly when no entry lives.
    entries: Vec<Option<T>>,
    /// Vacant keys to reuse. It may hold keys that were popped off the end since, or twice the
    /// same key: [`Slab::insert`] checks each before use, and [`Slab::remove`] rebuilds the
    /// list when most of it is stale.
    free: Vec<usize>,
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> usize {
        while let Some(key) = self.free.pop() {
            if let Some(slot @ None) = self.entries.get_mut(key) {
                *slot = Some(value);
                return key;
            }
        }
        self.entries.push(Some(value));
        self.entries.len() - 1
    }

    /// Removes the value under `key`, if that slot is occupied.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let value = self.entries.get_mut(key)?.take()?;
        if key + 1 == self.entries.len() {
            while let Some(None) = self.entries.last() {
                self.entries.pop();
            }
            self.compact();
        } else {
            self.free.push(key);
        }
        Some(value)
    }

    /// Gives back what the trailing slots popped by [`Slab::remove`] no longer need.
    fn compact(&mut self) {
        if self.entries.is_empty() {
            // Keep a small allocation for the next registration; give a large one back.
            if self.entries.capacity() > SHRINK_THRESHOLD {
                self.entries = Vec::new();
            }
            self.free = Vec::new();
            return;
        }
        // A bound on the vacant slots, without counting them: every one is on the list.
        let slots = self.entries.len();
        if self.free.len() > 2 * slots + SHRINK_THRESHOLD {
            self.free.clear();
            self.free.extend(
                self.entries
                    .iter()
                    .enumerate()
                    .filter_map(|(key, slot)| slot.is_none().then_some(key)),
            );
            self.free.shrink_to_fit();
        }
        let capacity = self.entries.capacity();
        if capacity > SHRINK_THRESHOLD && self.entries.len() * 4 < capacity {
            self.entries.shrink_to(self.entries.len() * 2);
        }
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.entries.get_mut(key)?.as_mut()
    }

    #[cfg(any(test, cancel_token_loom))]
    pub(crate) fn len(&self) -> usize {
        self.entries.iter().flatten().count()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many slots the slab holds, occupied or not: what a trigger walks through.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.entries.len()
    }

    /// Takes every value out, in key order, leaving the slab empty and without an allocation.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = T> {
        self.free = Vec::new();
        mem::take(&mut self.entries).into_iter().flatten()
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab::new()
    }
}

/// A slab with its first entry inline: one registration, the common case, allocates nothing,
/// and taking it allocates and frees nothing. Key 0 is the inline entry. The others live in a
/// boxed [`Slab`], made for the second entry and freed when it empties, which keeps a token's
/// cold state small.
pub(crate) struct InlineSlab<T> {
    first: Option<T>,
    more: Option<Box<Slab<T>>>,
}

impl<T> InlineSlab<T> {
    pub(crate) const fn new() -> Self {
        InlineSlab {
            first: None,
            more: None,
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> usize {
        if self.first.is_none() {
            self.first = Some(value);
            return 0;
        }
        self.more.get_or_insert_with(Box::default).insert(value) + 1
    }

    /// Removes the value under `key`, if that slot is occupied.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let Some(key) = key.checked_sub(1) else {
            return self.first.take();
        };
        let more = self.more.as_mut()?;
        let value = more.remove(key);
        if more.is_empty() {
            self.more = None;
        }
        value
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match key.checked_sub(1) {
            None => self.first.as_mut(),
            Some(key) => self.more.as_mut()?.get_mut(key),
        }
    }

    #[cfg(any(test, cancel_token_loom))]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.as_ref().map_or(0, |more| more.len())
    }

    /// How many slots a trigger walks through, for the tests that slots are given back.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        1 + self.more.as_ref().map_or(0, |more| more.slots())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_none()
    }

    /// Takes every value out as the inline entry and the slots of the others (vacant ones
    /// included), leaving the slab empty and without an allocation. Waking 10,000 waiters
    /// through these two runs 16 instructions per waiter, where a chain of iterator adapters
    /// over both ran 32 (counted with callgrind).
    pub(crate) fn take_slots(&mut self) -> (Option<T>, Vec<Option<T>>) {
        let more = self.more.take().map(|mut more| {
            more.free = Vec::new();
            std::mem::take(&mut more.entries)
        });
        (self.first.take(), more.unwrap_or_default())
    }

    /// Takes every value out, leaving the slab empty and without an allocation; the inline
    /// entry comes first.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = T> {
        let more = self.more.take().map(|mut more| more.take_all());
        self.first
            .take()
            .into_iter()
            .chain(more.into_iter().flatten())
    }
}

impl<T> Default for InlineSlab<T> {
    fn default() -> Self {
        InlineSlab::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{InlineSlab, Slab};

    #[test]
    fn the_inline_entry_is_key_zero_and_is_reused_first() {
        let mut slab = InlineSlab::new();
        assert!(slab.is_empty());
        let (a, b, c) = (slab.insert('a'), slab.insert('b'), slab.insert('c'));
        assert_eq!((a, b, c), (0, 1, 2));
        assert!(slab.more.is_some(), "the second entry spills");
        assert_eq!(slab.get_mut(b), Some(&mut 'b'));
        assert_eq!(slab.remove(a), Some('a'));
        assert_eq!(slab.remove(a), None, "a slot is removed once");
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.insert('d'), 0, "the inline slot is taken first");
        assert_eq!(slab.take_all().collect::<Vec<_>>(), ['d', 'b', 'c']);
        assert!(slab.is_empty());
        assert!(slab.more.is_none());

        let mut one = InlineSlab::new();
        assert_eq!(one.insert(7), 0);
        assert!(one.more.is_none(), "one entry allocates nothing");
        assert_eq!(one.take_all().collect::<Vec<_>>(), [7]);
    }

    #[test]
    fn keys_are_reused_and_removal_is_exact() {
        let mut slab = Slab::new();
        let a = slab.insert('a');
        let b = slab.insert('b');
        let c = slab.insert('c');
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(slab.remove(b), Some('b'));
        assert_eq!(slab.remove(b), None, "a slot is removed once");
        assert_eq!(slab.insert('d'), b);
        assert_eq!(slab.len(), 3);
        assert_eq!(slab.take_all().collect::<Vec<_>>(), ['a', 'd', 'c']);
        assert_eq!(slab.len(), 0);
        assert_eq!(slab.remove(0), None);
    }

    #[test]
    fn an_emptied_large_slab_releases_its_memory() {
        let mut slab = Slab::new();
        let keys: Vec<usize> = (0..1000).map(|i| slab.insert(i)).collect();
        for key in keys {
            assert!(slab.remove(key).is_some());
        }
        assert_eq!(slab.entries.capacity(), 0);
        assert_eq!(slab.insert(7), 0);
    }

    #[test]
    fn a_burst_gives_its_slots_back_while_an_older_entry_lives() {
        let mut slab = Slab::new();
        let old = slab.insert(usize::MAX);
        let mut expected = usize::MAX;
        let mut keys: Vec<usize> = (0..100_000).map(|i| slab.insert(i)).collect();
        // Removed in an order that is neither first-in nor last-in first.
        let mut rng = 0x9e37_79b9_u64;
        for i in (1..keys.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            keys.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for key in keys {
            assert!(slab.remove(key).is_some());
        }
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.slots(), 1, "the vacant tail is popped");
        assert!(slab.entries.capacity() <= 64, "and its memory given back");
        assert!(slab.free.capacity() <= 64 + 2, "the free list too");
        assert_eq!(slab.get_mut(old), Some(&mut expected));
        assert_eq!(slab.insert(1), 1);
    }

    #[test]
    fn stale_free_keys_are_never_handed_out_twice() {
        let mut slab = Slab::new();
        let keys: Vec<usize> = (0..4).map(|i| slab.insert(i)).collect();
        // Key 1 goes on the free list, then the tail is popped past it.
        assert_eq!(slab.remove(keys[1]), Some(1));
        assert_eq!(slab.remove(keys[3]), Some(3));
        assert_eq!(slab.remove(keys[2]), Some(2));
        assert_eq!(slab.slots(), 1);
        let (x, y) = (slab.insert(10), slab.insert(11));
        assert_ne!(x, y, "two live entries never share a key");
        assert_eq!(slab.get_mut(x), Some(&mut 10));
        assert_eq!(slab.get_mut(y), Some(&mut 11));
    }
}
