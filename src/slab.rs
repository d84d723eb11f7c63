//! A minimal slab: O(1) insert and O(1) removal by key, used for the children and callbacks
//! registered on a token so that dropping a registration never scans a list.

use std::mem;

/// Above this many retained slots an empty slab gives its memory back.
const SHRINK_THRESHOLD: usize = 64;

pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    /// Head of the free list; `entries.len()` when it is empty.
    next_free: usize,
    len: usize,
}

enum Entry<T> {
    Occupied(T),
    Vacant(usize),
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Self {
        Slab {
            entries: Vec::new(),
            next_free: 0,
            len: 0,
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> usize {
        let key = self.next_free;
        if key == self.entries.len() {
            self.entries.push(Entry::Occupied(value));
            self.next_free = key + 1;
        } else {
            match mem::replace(&mut self.entries[key], Entry::Occupied(value)) {
                Entry::Vacant(next) => self.next_free = next,
                Entry::Occupied(_) => unreachable!("free list points at an occupied slot"),
            }
        }
        self.len += 1;
        key
    }

    /// Removes the value under `key`, if that slot is occupied.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let slot = self.entries.get_mut(key)?;
        if let Entry::Vacant(_) = slot {
            return None;
        }
        let Entry::Occupied(value) = std::mem::replace(slot, Entry::Vacant(self.next_free)) else {
            unreachable!()
        };
        self.next_free = key;
        self.len -= 1;
        // Keep a small allocation for the next registration; give a large one back so a burst
        // of registrations does not pin memory for the token's whole life.
        if self.len == 0 && self.entries.capacity() > SHRINK_THRESHOLD {
            self.entries = Vec::new();
            self.next_free = 0;
        }
        Some(value)
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.entries.get_mut(key)? {
            Entry::Occupied(value) => Some(value),
            Entry::Vacant(_) => None,
        }
    }

    /// The values, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().filter_map(|entry| match entry {
            Entry::Occupied(value) => Some(value),
            Entry::Vacant(_) => None,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes every value out, leaving the slab empty and without an allocation.
    pub(crate) fn take_all(&mut self) -> TakeAll<T> {
        let entries = mem::take(&mut self.entries);
        self.next_free = 0;
        self.len = 0;
        TakeAll(entries.into_iter())
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab::new()
    }
}

/// The values of a slab emptied by [`Slab::take_all`], owned so no lock needs to be held while
/// they are consumed.
pub(crate) struct TakeAll<T>(std::vec::IntoIter<Entry<T>>);

impl<T> Iterator for TakeAll<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.0.by_ref().find_map(|entry| match entry {
            Entry::Occupied(value) => Some(value),
            Entry::Vacant(_) => None,
        })
    }
}

/// A slab with its first entry inline: one registration, the common case, allocates nothing,
/// and taking it allocates and frees nothing. Key 0 is the inline entry.
pub(crate) struct InlineSlab<T> {
    first: Option<T>,
    more: Slab<T>,
}

impl<T> InlineSlab<T> {
    pub(crate) const fn new() -> Self {
        InlineSlab {
            first: None,
            more: Slab::new(),
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> usize {
        if self.first.is_none() {
            self.first = Some(value);
            return 0;
        }
        self.more.insert(value) + 1
    }

    /// Removes the value under `key`, if that slot is occupied.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        match key.checked_sub(1) {
            None => self.first.take(),
            Some(key) => self.more.remove(key),
        }
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match key.checked_sub(1) {
            None => self.first.as_mut(),
            Some(key) => self.more.get_mut(key),
        }
    }

    #[cfg(any(test, cancel_token_loom))]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_empty()
    }

    /// Takes every value out, leaving the slab empty and without an allocation; the inline
    /// entry comes first.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = T> {
        let more = (!self.more.is_empty()).then(|| self.more.take_all());
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
        assert!(slab.more.entries.capacity() > 0, "the second entry spills");
        assert_eq!(slab.get_mut(b), Some(&mut 'b'));
        assert_eq!(slab.remove(a), Some('a'));
        assert_eq!(slab.remove(a), None, "a slot is removed once");
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.insert('d'), 0, "the inline slot is taken first");
        assert_eq!(slab.take_all().collect::<Vec<_>>(), ['d', 'b', 'c']);
        assert!(slab.is_empty());
        assert_eq!(slab.more.entries.capacity(), 0);

        let mut one = InlineSlab::new();
        assert_eq!(one.insert(7), 0);
        assert_eq!(
            one.more.entries.capacity(),
            0,
            "one entry allocates nothing"
        );
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
        let mut all: Vec<char> = slab.take_all().collect();
        all.sort_unstable();
        assert_eq!(all, ['a', 'c', 'd']);
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
}
