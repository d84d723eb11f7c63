//! [`CancelRegistry`]: cancel operations by key.
//!
//! Each entry is removed by whichever comes first: its [`Registration`] dropped, the registry's
//! [`cancel`](CancelRegistry::cancel), or its token triggered by anything else (a parent, a
//! direct trigger, a deadline), through a callback on the token. The callback runs with no lock
//! of the token held and takes the registry's lock only to unlink the entry; the key and the
//! token it removes are dropped after that lock is released.
//!
//! No code of the key's runs under the lock either: operations are stored by a numeric id,
//! with the key's hash (taken before locking) as the index and the key behind an `Arc`. A
//! lookup takes the ids and keys under the hash out under the lock, compares the keys with no
//! lock held, and takes the lock again to remove the ones that matched; a removal by id needs
//! neither `Hash` nor `Eq`.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::hash::Hash;

use crate::reason::Reason;
use crate::sync::{lock, Arc, Mutex};
use crate::CancelToken;

mod registration;

pub use registration::Registration;

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

pub(super) struct Shared<K> {
    parent: Option<CancelToken>,
    /// Hashes keys, with no lock held.
    hasher: RandomState,
    state: Mutex<State<K>>,
}

struct State<K> {
    /// Every operation, by its id.
    operations: HashMap<u64, Operation<K>>,
    /// The ids of the operations whose keys have each hash.
    by_hash: HashMap<u64, Vec<u64>>,
    next_id: u64,
}

struct Operation<K> {
    hash: u64,
    key: Arc<K>,
    token: CancelToken,
}

impl<K> State<K> {
    /// Unlinks operation `id`; the caller drops what comes back once the lock is released.
    fn take(&mut self, id: u64) -> Option<Operation<K>> {
        let operation = self.operations.remove(&id)?;
        if let Some(ids) = self.by_hash.get_mut(&operation.hash) {
            ids.retain(|&other| other != id);
            if ids.is_empty() {
                self.by_hash.remove(&operation.hash);
            }
        }
        Some(operation)
    }
}

impl<K> Shared<K> {
    /// Removes operation `id`, if it is still there.
    pub(super) fn remove(&self, id: u64) {
        let removed = lock(&self.state).take(id);
        // The key and the token (user code when dropped) go after the lock is released.
        drop(removed);
    }

    /// The ids of the operations under `key`: candidates by hash under the lock, compared
    /// with no lock held.
    fn find<Q>(&self, key: &Q) -> Vec<u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let candidates: Vec<(u64, Arc<K>)> = {
            let state = lock(&self.state);
            let ids = state
                .by_hash
                .get(&hash)
                .map(Vec::as_slice)
                .unwrap_or_default();
            ids.iter()
                .filter_map(|id| Some((*id, Arc::clone(&state.operations.get(id)?.key))))
                .collect()
        };
        candidates
            .into_iter()
            .filter(|(_, candidate)| (**candidate).borrow() == key)
            .map(|(id, _)| id)
            .collect()
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
                hasher: RandomState::new(),
                state: Mutex::new(State {
                    operations: HashMap::new(),
                    by_hash: HashMap::new(),
                    next_id: 0,
                }),
            }),
        }
    }

    /// Registers an operation under `key` and returns its token and the guard that removes
    /// the entry when the operation ends.
    ///
    /// The token is new (a child of the registry's parent, if it has one); a trigger of it
    /// from anywhere removes the entry, as [`cancel`](Self::cancel) does. Under a triggered
    /// parent the token is born triggered and nothing is registered. `K: Send + Sync +
    /// 'static` because the entry's removal may run on the thread that triggers the token,
    /// and lookups share the stored key (compared with no lock held) across threads.
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
        K: Send + Sync + 'static,
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
        K: fmt::Display + Send + Sync + 'static,
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
        K: Send + Sync + 'static,
    {
        // Hashed and cloned with no lock held: both are user code.
        let hash = self.shared.hasher.hash_one(&key);
        let stored = Arc::new(key.clone());
        let id = {
            let mut state = lock(&self.shared.state);
            let id = state.next_id;
            state.next_id += 1;
            state.operations.insert(
                id,
                Operation {
                    hash,
                    key: stored,
                    token: token.clone(),
                },
            );
            state.by_hash.entry(hash).or_default().push(id);
            id
        };
        // Registered once the entry is in, with no lock held, so that the callback always finds
        // it: a trigger that came first (a token born triggered under a triggered parent) runs
        // the callback right here, a later one runs it then.
        let shared = Arc::downgrade(&self.shared);
        let removal = token.on_cancel(move |_| {
            if let Some(shared) = shared.upgrade() {
                shared.remove(id);
            }
        });
        let registration =
            Registration::new(Arc::downgrade(&self.shared), key, id, &token, removal);
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
        let ids = self.shared.find(key);
        let removed: Vec<Operation<K>> = {
            let mut state = lock(&self.shared.state);
            ids.into_iter().filter_map(|id| state.take(id)).collect()
        };
        // Keys and tokens are dropped, and the tokens triggered, with no lock held.
        trigger_all(
            removed.into_iter().map(|operation| operation.token),
            reason.into(),
        )
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
            state.by_hash.clear();
            std::mem::take(&mut state.operations)
        };
        trigger_all(
            removed.into_values().map(|operation| operation.token),
            reason.into(),
        )
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
        lock(&self.shared.state).operations.len()
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
        !self.shared.find(key).is_empty()
    }

    /// The tokens of the operations registered under `key` now.
    #[cfg(feature = "redis")]
    pub(crate) fn tokens_of<Q>(&self, key: &Q) -> Vec<CancelToken>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let ids = self.shared.find(key);
        if ids.is_empty() {
            return Vec::new();
        }
        let state = lock(&self.shared.state);
        ids.iter()
            .filter_map(|id| Some(state.operations.get(id)?.token.clone()))
            .collect()
    }

    /// The key of every operation registered now, once per operation; cloned with no lock
    /// held.
    #[cfg(feature = "redis")]
    pub(crate) fn keys(&self) -> Vec<K> {
        let keys: Vec<Arc<K>> = lock(&self.shared.state)
            .operations
            .values()
            .map(|operation| Arc::clone(&operation.key))
            .collect();
        keys.iter().map(|key| K::clone(key)).collect()
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
            .field("len", &lock(&self.shared.state).operations.len())
            .finish()
    }
}
