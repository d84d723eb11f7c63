//! What is registered on a token: its waiters' wakers and its callbacks, added and removed
//! under the token's lock, and the counts the no-leak tests read. The node, its state word
//! and the handshake that makes a registration meet the first trigger are `node.rs`.

use std::task::Waker;

use crate::callback::Callback;
use crate::node::Node;
use crate::sync::{lock, Arc};

impl Node {
    /// Registers or refreshes a waiter's waker. `None` if the token is triggered (the waiter is
    /// done and holds no registration any more).
    pub(crate) fn register_waiter(&self, key: Option<usize>, waker: &Waker) -> Option<usize> {
        // A re-poll with the waker already registered (the common case) clones nothing.
        if let Some(key) = key {
            let mut links = self.links();
            if self.is_triggered() {
                return None;
            }
            if links
                .waiters
                .get_mut(key)
                .is_some_and(|slot| slot.will_wake(waker))
            {
                return Some(key);
            }
        }
        // Cloned, and a replaced waker dropped, with no lock held: both run executor code.
        let mut spare = Some(waker.clone());
        let key = {
            let mut links = self.links();
            if self.is_triggered() {
                None
            } else {
                match key.and_then(|key| links.waiters.get_mut(key).map(|slot| (key, slot))) {
                    Some((key, slot)) => {
                        if !slot.will_wake(waker) {
                            if let Some(new) = &mut spare {
                                std::mem::swap(slot, new);
                            }
                        }
                        Some(key)
                    }
                    None => spare.take().map(|new| links.waiters.insert(new)),
                }
            }
        };
        drop(spare);
        key
    }

    pub(crate) fn unregister_waiter(&self, key: usize) {
        // Once triggered, the trigger owns (or has consumed) the registrations.
        if !self.is_triggered() {
            if let Some(links) = self.links_if_any() {
                let removed = lock(links).waiters.remove(key);
                drop(removed);
            }
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
            if let Some(links) = self.links_if_any() {
                let removed = lock(links).callbacks.remove(key);
                drop(removed);
            }
        }
    }

    /// Number of registered waiters, for tests of the no-leak rules.
    #[cfg(any(test, cancel_token_loom))]
    pub(crate) fn waiters(&self) -> usize {
        self.links_if_any()
            .map_or(0, |links| lock(links).waiters.len())
    }

    /// Slots of the child list, for the test that it stays dense.
    #[cfg(test)]
    pub(crate) fn child_slots(&self) -> usize {
        self.links_if_any()
            .map_or(0, |links| lock(links).children.slots())
    }

    /// Slots of the waiter and callback slabs, for the tests that they give memory back.
    #[cfg(test)]
    pub(crate) fn registration_slots(&self) -> (usize, usize) {
        self.links_if_any().map_or((0, 0), |links| {
            let links = lock(links);
            (links.waiters.slots(), links.callbacks.slots())
        })
    }

    /// Number of live child links and callbacks, for tests of the no-leak rules.
    #[cfg(any(test, cancel_token_loom))]
    pub(crate) fn registrations(&self) -> (usize, usize) {
        self.links_if_any().map_or((0, 0), |links| {
            let links = lock(links);
            (links.children.len(), links.callbacks.len())
        })
    }
}
