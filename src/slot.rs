//! [`CancelSlot`]: latest wins, the "cancel the previous request" pattern, and the
//! [`SlotGuard`] that finishes an operation when it ends.

use std::fmt;

use crate::reason::{Reason, ReasonKind};
use crate::sync::{lock, Arc, Mutex, Weak};
use crate::CancelToken;

/// Holds the token of the current operation; starting a new one cancels the previous one.
///
/// This is the pattern of search-as-you-type boxes, autosave, and web handlers where a newer
/// request from the same client makes the older one pointless: [`replace`](Self::replace)
/// triggers the previous token with [`ReasonKind::Superseded`] and returns a [`SlotGuard`]
/// holding a fresh one. When the guard is dropped (the operation ended, one way or another),
/// the operation is finished: if it is still current, the slot is emptied, so a completed
/// request is never left as the current one.
///
/// A slot made [`with_parent`](Self::with_parent) hands out children of that parent, so a
/// shutdown cancels whatever operation is current.
///
/// Cloning a slot gives another handle to the same slot, to share it between tasks without an
/// `Arc`.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelSlot, ReasonKind};
///
/// let searches = CancelSlot::new();
/// let first = searches.replace(); // user typed "ru"
/// let second = searches.replace(); // user typed "rus": "ru" is pointless now
///
/// assert_eq!(first.token().reason().unwrap().kind(), ReasonKind::Superseded);
/// assert!(!second.token().is_triggered());
/// assert_eq!(searches.current().as_ref(), Some(second.token()));
///
/// drop(second); // the search for "rus" ended
/// assert_eq!(searches.current(), None);
/// ```
#[derive(Clone)]
pub struct CancelSlot {
    shared: Arc<Shared>,
}

struct Shared {
    parent: Option<CancelToken>,
    current: Mutex<Option<CancelToken>>,
}

impl Shared {
    /// Empties the slot if `token` is current, without triggering it.
    fn finish(&self, token: &CancelToken) -> bool {
        let mut current = lock(&self.current);
        if current.as_ref() == Some(token) {
            let finished = current.take();
            drop(current);
            drop(finished);
            true
        } else {
            false
        }
    }
}

impl CancelSlot {
    /// An empty slot whose tokens are independent.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// assert!(slot.current().is_none());
    /// ```
    pub fn new() -> CancelSlot {
        CancelSlot::build(None)
    }

    /// An empty slot whose tokens are children of `parent`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelSlot, CancelToken};
    ///
    /// let shutdown = CancelToken::named("shutdown");
    /// let slot = CancelSlot::with_parent(&shutdown);
    /// let request = slot.replace();
    /// shutdown.trigger();
    /// assert_eq!(request.token().triggered_token(), Some(shutdown));
    /// ```
    pub fn with_parent(parent: &CancelToken) -> CancelSlot {
        CancelSlot::build(Some(parent.clone()))
    }

    fn build(parent: Option<CancelToken>) -> CancelSlot {
        CancelSlot {
            shared: Arc::new(Shared {
                parent,
                current: Mutex::new(None),
            }),
        }
    }

    /// Triggers the current token, if any, with [`ReasonKind::Superseded`], and installs a
    /// fresh one, returned in a [`SlotGuard`] that finishes the operation when dropped.
    ///
    /// Keep the guard for as long as the operation runs (move it into the task that runs it):
    /// dropping it finishes the operation, so the slot forgets a token whose work is over. A
    /// guard dropped at once (`let _ = slot.replace()`, or `slot.replace().token().clone()`)
    /// leaves nothing current to supersede. [`SlotGuard::disarm`] gives the token back and
    /// leaves it current, as a slot without guards would.
    ///
    /// Concurrent calls are serialised: each returns its own token and every token but the
    /// last one installed ends up superseded. The previous token is triggered (and its
    /// callbacks run) after the new one is installed, with no lock held.
    ///
    /// # Panics
    ///
    /// If a callback of the previous token panics, the panic propagates from here, after the
    /// new token is installed (and its guard dropped, which finishes it).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// let a = slot.replace();
    /// let b = slot.replace();
    /// assert!(a.token().is_triggered());
    /// assert!(!b.token().is_triggered());
    /// ```
    pub fn replace(&self) -> SlotGuard {
        let fresh = match &self.shared.parent {
            Some(parent) => parent.child(),
            None => CancelToken::new(),
        };
        let previous = lock(&self.shared.current).replace(fresh.clone());
        let guard = SlotGuard {
            slot: Arc::downgrade(&self.shared),
            token: fresh,
        };
        if let Some(previous) = previous {
            previous.trigger_with(Reason::new(ReasonKind::Superseded));
        }
        guard
    }

    /// The current token, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// let search = slot.replace();
    /// assert_eq!(slot.current().as_ref(), Some(search.token()));
    /// ```
    pub fn current(&self) -> Option<CancelToken> {
        lock(&self.shared.current).clone()
    }

    /// Triggers the current token with `reason` and empties the slot. Returns whether the
    /// call triggered a token.
    ///
    /// # Panics
    ///
    /// If a callback of the token panics, the panic propagates from here.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// let search = slot.replace();
    /// assert!(slot.cancel("user closed the page"));
    /// assert_eq!(search.token().reason().unwrap().message(), Some("user closed the page"));
    /// assert!(!slot.cancel("again"), "the slot is empty now");
    /// ```
    pub fn cancel(&self, reason: impl Into<Reason>) -> bool {
        let current = lock(&self.shared.current).take();
        current.is_some_and(|token| token.trigger_with(reason))
    }

    /// Marks the operation of `token` finished: if it is still the current one, the slot is
    /// emptied without triggering it. Returns whether it was the current one.
    ///
    /// Dropping the operation's [`SlotGuard`] does this; call it for a token whose guard was
    /// [disarmed](SlotGuard::disarm).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// let token = slot.replace().disarm();
    /// // ... the operation completes ...
    /// assert!(slot.finish(&token));
    /// assert!(slot.current().is_none());
    /// assert!(!token.is_triggered());
    /// ```
    pub fn finish(&self, token: &CancelToken) -> bool {
        self.shared.finish(token)
    }
}

impl Default for CancelSlot {
    fn default() -> CancelSlot {
        CancelSlot::new()
    }
}

impl fmt::Debug for CancelSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelSlot")
            .field("parent", &self.shared.parent)
            .field("current", &*lock(&self.shared.current))
            .finish()
    }
}

/// The operation started by [`CancelSlot::replace`]: its token, and the promise to finish it.
///
/// Dropping the guard finishes the operation, as [`CancelSlot::finish`] does: if its token is
/// still the slot's current one, the slot is emptied, without triggering the token. A token
/// that was superseded or cancelled meanwhile is left alone, and so is a slot that is gone.
/// So the slot never holds the token of an operation that has ended, even one that ended by a
/// panic or an early return.
///
/// # Examples
///
/// ```
/// use cancel_token::CancelSlot;
///
/// let slot = CancelSlot::new();
/// {
///     let search = slot.replace();
///     assert!(search.is_current());
///     // ... run the search under `search.token()` ...
/// }
/// assert!(slot.current().is_none(), "finished when the guard was dropped");
/// ```
#[must_use = "dropping a SlotGuard finishes its operation at once: the slot forgets its token"]
pub struct SlotGuard {
    /// Empty once the guard has finished or been disarmed.
    slot: Weak<Shared>,
    token: CancelToken,
}

impl SlotGuard {
    /// The operation's token.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// let search = slot.replace();
    /// assert_eq!(slot.current().as_ref(), Some(search.token()));
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// Whether this operation is still the slot's current one: not superseded, cancelled
    /// through the slot, or finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// let first = slot.replace();
    /// assert!(first.is_current());
    /// let _second = slot.replace();
    /// assert!(!first.is_current());
    /// ```
    pub fn is_current(&self) -> bool {
        self.slot
            .upgrade()
            .is_some_and(|shared| lock(&shared.current).as_ref() == Some(&self.token))
    }

    /// Finishes the operation now; what dropping the guard does. Returns whether it was
    /// still the current one.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// let first = slot.replace();
    /// let second = slot.replace();
    /// assert!(!first.finish(), "superseded: not current any more");
    /// assert!(second.finish());
    /// assert!(slot.current().is_none());
    /// ```
    pub fn finish(mut self) -> bool {
        self.finish_now()
    }

    /// Gives the token back without finishing the operation: it stays current until it is
    /// superseded, cancelled, or finished with [`CancelSlot::finish`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// let token = slot.replace().disarm();
    /// assert_eq!(slot.current(), Some(token.clone()));
    /// assert!(slot.finish(&token));
    /// ```
    pub fn disarm(mut self) -> CancelToken {
        self.slot = Weak::new();
        self.token.clone()
    }

    fn finish_now(&mut self) -> bool {
        let slot = std::mem::take(&mut self.slot);
        slot.upgrade()
            .is_some_and(|shared| shared.finish(&self.token))
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.finish_now();
    }
}

impl fmt::Debug for SlotGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotGuard")
            .field("token", &self.token)
            .field("current", &self.is_current())
            .finish()
    }
}
