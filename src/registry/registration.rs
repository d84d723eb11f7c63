//! [`Registration`]: an operation's entry in a [`CancelRegistry`], removed when it is dropped.

use std::fmt;
use std::hash::Hash;

#[cfg(doc)]
use super::CancelRegistry;
use super::Shared;
use crate::callback::CallbackGuard;
use crate::sync::Weak;
use crate::CancelToken;

/// The entry of one operation in a [`CancelRegistry`]; dropping it removes the entry.
///
/// Dropping it does not trigger the token: the operation ended on its own.
///
/// # Examples
///
/// ```
/// use cancel_token::CancelRegistry;
///
/// let registry = CancelRegistry::new();
/// let (token, registration) = registry.register(1u32);
/// assert_eq!(registration.key(), &1);
/// assert_eq!(registration.token(), &token);
/// drop(registration);
/// assert!(registry.is_empty());
/// assert!(!token.is_triggered());
/// ```
#[must_use = "dropping a Registration removes the operation from its registry at once"]
pub struct Registration<K: Eq + Hash> {
    shared: Weak<Shared<K>>,
    key: K,
    id: u64,
    token: CancelToken,
    /// The callback that removes the entry when the token is triggered; dropped (after the
    /// entry is removed, with no lock held) with the registration.
    _removal: CallbackGuard,
}

impl<K: Eq + Hash> Registration<K> {
    pub(super) fn new(
        shared: Weak<Shared<K>>,
        key: K,
        id: u64,
        token: &CancelToken,
        removal: CallbackGuard,
    ) -> Registration<K> {
        Registration {
            shared,
            key,
            id,
            token: token.clone(),
            _removal: removal,
        }
    }

    /// The key the operation is registered under.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelRegistry;
    ///
    /// let registry = CancelRegistry::new();
    /// let (_token, registration) = registry.register("key");
    /// assert_eq!(*registration.key(), "key");
    /// ```
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The operation's token.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelRegistry;
    ///
    /// let registry = CancelRegistry::new();
    /// let (token, registration) = registry.register(());
    /// assert_eq!(registration.token(), &token);
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.token
    }
}

impl<K: Eq + Hash> Drop for Registration<K> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.remove(self.id);
        }
    }
}

impl<K: Eq + Hash + fmt::Debug> fmt::Debug for Registration<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("key", &self.key)
            .field("token", &self.token)
            .finish()
    }
}
