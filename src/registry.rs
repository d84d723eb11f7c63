//! [`CancelRegistry`]: cancel operations by key.
//!
//! Each entry is removed by whichever comes first: its [`Registration`] dropped, the registry's
//! [`cancel`](CancelRegistry::cancel), or its token triggered by anything else (a parent, a
//! direct trigger, a deadline), through a callback on the token. The callback runs with no lock
//! of the token held and takes the registry's lock only to unlink the entry; the key and the
//! token it removes are dropped after that lock is released.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use crate::callback::CallbackGuard;
use crate::reason::Reason;
use crate::sync::{lock, Arc, Mutex, Weak};
use crate::CancelToken;

/// Cancellation by key: a map from an id (a request id, a job name, a user) to the tokens of
/// the operations running under it.
///
/// [`register`](Self::register) returns a token for the operation and a [`Registration`]
/// guard; the entry is removed when the guard is dropped (the operation ended) or when the
/// operation is cancelled, by [`cancel`](Self::cancel) or by anything else that triggers its
/// token (the registry's parent, a direct [`trigger`](CancelToken::trigger), a deadline), so
/// entries never outlive their operations and [`len`](Self::len) counts only operations that
/// can still be cancelled. A registry whose parent is triggered holds nothing. Several
/// operations may run under one key; [`cancel`](Self::cancel) cancels all of them.
///
/// [`register_named`](Self::register_named) names each token after its key, so that a
/// [`Cancelled`](crate::Cancelled) error says which operation stopped.
///
/// Cloning a registry gives another handle to the same map.
///
/// # Examples
///
/// ```
/// use cancel_token::CancelRegistry;
///
/// let jobs = CancelRegistry::new();
/// let (token, registration) = jobs.register("export-42");
/// assert_eq!(jobs.len(), 1);
///
/// // Another request asks to cancel the job by its id.
/// assert_eq!(jobs.cancel("export-42", "cancelled by the user"), 1);
/// assert_eq!(token.reason().unwrap().message(), Some("cancelled by the user"));
/// assert_eq!(jobs.len(), 0);
/// drop(registration);
/// ```
pub struct CancelRegistry<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    parent: Option<CancelToken>,
    state: Mutex<State<K>>,
}

struct State<K> {
    entries: HashMap<K, Vec<(u64, CancelToken)>>,
    next_id: u64,
    len: usize,
}

impl<K: Eq + Hash> Shared<K> {
    /// Removes the operation `id` under `key`, if it is still there.
    fn remove(&self, key: &K, id: u64) {
        let mut state = lock(&self.state);
        let State { entries, len, .. } = &mut *state;
        let Some(operations) = entries.get_mut(key) else {
            return;
        };
        if let Some(index) = operations.iter().position(|(entry, _)| *entry == id) {
            let (_, token) = operations.swap_remove(index);
            *len -= 1;
            // The stored key (user code when dropped) goes after the lock is released.
            let emptied = operations.is_empty().then(|| entries.remove_entry(key));
            drop(state);
            drop((token, emptied));
        }
    }
}

impl<K: Eq + Hash + Clone> CancelRegistry<K> {
    /// An empty registry whose tokens are independent.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelRegistry;
    ///
    /// let registry: CancelRegistry<u64> = CancelRegistry::new();
    /// assert!(registry.is_empty());
    /// ```
    pub fn new() -> CancelRegistry<K> {
        CancelRegistry::build(None)
    }

    /// An empty registry whose tokens are children of `parent`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelRegistry, CancelToken};
    ///
    /// let shutdown = CancelToken::new();
    /// let registry = CancelRegistry::with_parent(&shutdown);
    /// let (token, _registration) = registry.register(7u32);
    /// shutdown.trigger();
    /// assert!(token.is_triggered());
    /// ```
    pub fn with_parent(parent: &CancelToken) -> CancelRegistry<K> {
        CancelRegistry::build(Some(parent.clone()))
    }

    fn build(parent: Option<CancelToken>) -> CancelRegistry<K> {
        CancelRegistry {
            shared: Arc::new(Shared {
                parent,
                state: Mutex::new(State {
                    entries: HashMap::new(),
                    next_id: 0,
                    len: 0,
                }),
            }),
        }
    }

    /// Registers an operation under `key` and returns its token and the guard that removes
    /// the entry when the operation ends.
    ///
    /// The token is new (a child of the registry's parent, if it has one); a trigger of it
    /// from anywhere removes the entry, as [`cancel`](Self::cancel) does. Under a triggered
    /// parent the token is born triggered and nothing is registered. `K: Send + 'static`
    /// because the entry's removal may run on the thread that triggers the token.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelRegistry;
    ///
    /// let registry = CancelRegistry::new();
    /// {
    ///     let (_token, _registration) = registry.register("upload");
    ///     assert!(registry.contains_key("upload"));
    /// }
    /// assert!(!registry.contains_key("upload"), "removed when the operation ended");
    ///
    /// let (token, _registration) = registry.register("download");
    /// token.trigger_with("the user gave up");
    /// assert!(registry.is_empty(), "removed when its token is triggered");
    /// ```
    pub fn register(&self, key: K) -> (CancelToken, Registration<K>)
    where
        K: Send + 'static,
    {
        let token = match &self.shared.parent {
            Some(parent) => parent.child(),
            None => CancelToken::new(),
        };
        self.insert(key, token)
    }

    /// Like [`register`](Self::register), and names the token after the key (its `Display`),
    /// so that the token's [`Cancelled`](crate::Cancelled) error, `Display` and `Debug` say
    /// which operation it is.
    ///
    /// The name is formatted once, here; keys that are not `Display` use
    /// [`register`](Self::register).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelRegistry;
    ///
    /// let jobs = CancelRegistry::new();
    /// let (token, _registration) = jobs.register_named(42u64);
    /// assert_eq!(token.name(), Some("42"));
    ///
    /// jobs.cancel(&42, "cancelled by the user");
    /// assert_eq!(
    ///     token.raise_if_triggered().unwrap_err().to_string(),
    ///     "cancellation requested by token 42: cancelled by the user"
    /// );
    /// ```
    pub fn register_named(&self, key: K) -> (CancelToken, Registration<K>)
    where
        K: fmt::Display + Send + 'static,
    {
        let name = key.to_string();
        let token = match &self.shared.parent {
            Some(parent) => parent.child_named(name),
            None => CancelToken::named(name),
        };
        self.insert(key, token)
    }

    /// Enters `token` under `key` and arranges for its removal when the token is triggered.
    fn insert(&self, key: K, token: CancelToken) -> (CancelToken, Registration<K>)
    where
        K: Send + 'static,
    {
        // Cloned (for the map and for the removal callback), and a key already there dropped,
        // with no lock held: both are user code.
        let stored = key.clone();
        let for_callback = key.clone();
        let mut state = lock(&self.shared.state);
        let id = state.next_id;
        state.next_id += 1;
        state.len += 1;
        let spare = match state.entries.get_mut(&stored) {
            Some(operations) => {
                operations.push((id, token.clone()));
                Some(stored)
            }
            None => {
                state.entries.insert(stored, vec![(id, token.clone())]);
                None
            }
        };
        drop(state);
        drop(spare);
        // Registered once the entry is in, with no lock held, so that the callback always finds
        // it: a trigger that came first (a token born triggered under a triggered parent) runs
        // the callback right here, a later one runs it then.
        let shared = Arc::downgrade(&self.shared);
        let removal = token.on_cancel(move |_| {
            if let Some(shared) = shared.upgrade() {
                shared.remove(&for_callback, id);
            }
        });
        let registration = Registration {
            shared: Arc::downgrade(&self.shared),
            key,
            id,
            token: token.clone(),
            _removal: removal,
        };
        (token, registration)
    }

    /// Triggers every operation registered under `key` with `reason` and removes them.
    /// Returns how many tokens this call triggered.
    ///
    /// # Panics
    ///
    /// If a callback of a cancelled token panics, the first panic propagates from here after
    /// every token is triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelRegistry, ReasonKind};
    ///
    /// let registry = CancelRegistry::new();
    /// let (a, _ra) = registry.register("user-1".to_string());
    /// let (b, _rb) = registry.register("user-1".to_string());
    /// let (c, _rc) = registry.register("user-2".to_string());
    ///
    /// assert_eq!(registry.cancel("user-1", ReasonKind::Superseded), 2);
    /// assert!(a.is_triggered() && b.is_triggered());
    /// assert!(!c.is_triggered());
    /// assert_eq!(registry.cancel("nobody", "x"), 0);
    /// ```
    pub fn cancel<Q>(&self, key: &Q, reason: impl Into<Reason>) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let removed = {
            let mut state = lock(&self.shared.state);
            let removed = state.entries.remove_entry(key);
            state.len -= removed.as_ref().map_or(0, |(_, tokens)| tokens.len());
            removed
        };
        // The stored key is dropped here, with no lock held.
        let tokens = removed.into_iter().flat_map(|(_, tokens)| tokens);
        trigger_all(tokens.map(|(_, token)| token), reason.into())
    }

    /// Triggers every registered operation with `reason` and empties the registry. Returns
    /// how many tokens this call triggered.
    ///
    /// # Panics
    ///
    /// If a callback of a cancelled token panics, the first panic propagates from here after
    /// every token is triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelRegistry;
    ///
    /// let registry = CancelRegistry::new();
    /// let (a, _ra) = registry.register(1);
    /// let (b, _rb) = registry.register(2);
    /// assert_eq!(registry.cancel_all("shutting down"), 2);
    /// assert!(a.is_triggered() && b.is_triggered());
    /// assert!(registry.is_empty());
    /// ```
    pub fn cancel_all(&self, reason: impl Into<Reason>) -> usize {
        let removed = {
            let mut state = lock(&self.shared.state);
            state.len = 0;
            std::mem::take(&mut state.entries)
        };
        let tokens = removed.into_values().flatten().map(|(_, token)| token);
        trigger_all(tokens, reason.into())
    }

    /// The number of registered operations.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelRegistry;
    ///
    /// let registry = CancelRegistry::new();
    /// let (_t1, _r1) = registry.register('a');
    /// let (_t2, _r2) = registry.register('a');
    /// assert_eq!(registry.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        lock(&self.shared.state).len
    }

    /// Whether no operation is registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelRegistry;
    ///
    /// assert!(CancelRegistry::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an operation is registered under `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelRegistry;
    ///
    /// let registry = CancelRegistry::new();
    /// let (_token, _registration) = registry.register(String::from("job"));
    /// assert!(registry.contains_key("job"));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(&self.shared.state).entries.contains_key(key)
    }
}

/// Triggers every token, running all of them even if a callback panics, and resumes the first
/// panic afterwards.
fn trigger_all(tokens: impl Iterator<Item = CancelToken>, reason: Reason) -> usize {
    let mut triggered = 0;
    let mut first_panic = None;
    for token in tokens {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            token.trigger_with(reason.clone())
        })) {
            Ok(true) => triggered += 1,
            Ok(false) => {}
            Err(payload) => {
                triggered += 1;
                match first_panic {
                    None => first_panic = Some(payload),
                    Some(_) => crate::walk::drop_payload(payload),
                }
            }
        }
    }
    if let Some(payload) = first_panic {
        std::panic::resume_unwind(payload);
    }
    triggered
}

impl<K> Clone for CancelRegistry<K> {
    fn clone(&self) -> Self {
        CancelRegistry {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K: Eq + Hash + Clone> Default for CancelRegistry<K> {
    fn default() -> Self {
        CancelRegistry::new()
    }
}

impl<K> fmt::Debug for CancelRegistry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelRegistry")
            .field("parent", &self.shared.parent)
            .field("len", &lock(&self.shared.state).len)
            .finish()
    }
}

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
            shared.remove(&self.key, self.id);
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
