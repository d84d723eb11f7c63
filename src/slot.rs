//! [`CancelSlot`]: latest wins, the "cancel the previous request" pattern.

use std::fmt;

use crate::reason::{Reason, ReasonKind};
use crate::sync::{lock, Mutex};
use crate::CancelToken;

/// Holds the token of the current operation; starting a new one cancels the previous one.
///
/// This is the pattern of search-as-you-type boxes, autosave, and web handlers where a newer
/// request from the same client makes the older one pointless: [`replace`](Self::replace)
/// triggers the previous token with [`ReasonKind::Superseded`] and returns a fresh one.
///
/// A slot made [`with_parent`](Self::with_parent) hands out children of that parent, so a
/// shutdown cancels whatever operation is current.
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
/// assert_eq!(first.reason().unwrap().kind(), ReasonKind::Superseded);
/// assert!(!second.is_triggered());
/// assert_eq!(searches.current(), Some(second));
/// ```
pub struct CancelSlot {
    parent: Option<CancelToken>,
    current: Mutex<Option<CancelToken>>,
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
        CancelSlot {
            parent: None,
            current: Mutex::new(None),
        }
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
    /// assert_eq!(request.triggered_token(), Some(shutdown));
    /// ```
    pub fn with_parent(parent: &CancelToken) -> CancelSlot {
        CancelSlot {
            parent: Some(parent.clone()),
            current: Mutex::new(None),
        }
    }

    /// Triggers the current token, if any, with [`ReasonKind::Superseded`], and installs and
    /// returns a fresh one.
    ///
    /// Concurrent calls are serialised: each returns its own token and every token but the
    /// last one installed ends up superseded. The previous token is triggered (and its
    /// callbacks run) after the new one is installed, with no lock held.
    ///
    /// # Panics
    ///
    /// If a callback of the previous token panics, the panic propagates from here, after the
    /// new token is installed.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// let a = slot.replace();
    /// let b = slot.replace();
    /// assert!(a.is_triggered());
    /// assert!(!b.is_triggered());
    /// ```
    pub fn replace(&self) -> CancelToken {
        let fresh = match &self.parent {
            Some(parent) => parent.child(),
            None => CancelToken::new(),
        };
        let previous = lock(&self.current).replace(fresh.clone());
        if let Some(previous) = previous {
            previous.trigger_with(Reason::new(ReasonKind::Superseded));
        }
        fresh
    }

    /// The current token, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// let token = slot.replace();
    /// assert_eq!(slot.current(), Some(token));
    /// ```
    pub fn current(&self) -> Option<CancelToken> {
        lock(&self.current).clone()
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
    /// let token = slot.replace();
    /// assert!(slot.cancel("user closed the page"));
    /// assert_eq!(token.reason().unwrap().message(), Some("user closed the page"));
    /// assert!(!slot.cancel("again"), "the slot is empty now");
    /// ```
    pub fn cancel(&self, reason: impl Into<Reason>) -> bool {
        let current = lock(&self.current).take();
        current.is_some_and(|token| token.trigger_with(reason))
    }

    /// Marks the operation of `token` finished: if it is still the current one, the slot is
    /// emptied without triggering it. Returns whether it was the current one.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelSlot;
    ///
    /// let slot = CancelSlot::new();
    /// let token = slot.replace();
    /// // ... the operation completes ...
    /// assert!(slot.finish(&token));
    /// assert!(slot.current().is_none());
    /// assert!(!token.is_triggered());
    /// ```
    pub fn finish(&self, token: &CancelToken) -> bool {
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

impl Default for CancelSlot {
    fn default() -> CancelSlot {
        CancelSlot::new()
    }
}

impl fmt::Debug for CancelSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelSlot")
            .field("parent", &self.parent)
            .field("current", &*lock(&self.current))
            .finish()
    }
}
