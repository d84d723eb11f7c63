//! [`CancelToken`], the public face of the crate: a thin handle over a shared node.

use std::borrow::Cow;
use std::fmt;

use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use crate::callback::{self, CallbackGuard};
use crate::error::Cancelled;
use crate::guard::DropGuard;
use crate::node::Node;
use crate::reason::Reason;
use crate::sync::Arc;
use crate::wait::{self, Wait, WaitOwned};

/// A cancellation token: cheap to clone, triggered once, observed from anywhere.
///
/// A token is a handle to shared state. [`Clone`] gives another handle to the *same* token;
/// equality and hashing compare that identity. Any handle can [`trigger`](Self::trigger) the
/// token, with a [`Reason`]; every handle then reports it triggered, async
/// [`wait`](Self::wait)ers and [blocking](Self::wait_blocking) waiters wake up, and
/// [callbacks](Self::on_cancel) run. Tokens derived with [`child`](Self::child),
/// [`chain`](Self::chain) or [`any`](Self::any) trigger with their sources and keep the
/// origin's reason and identity ([`triggered_token`](Self::triggered_token)).
///
/// The handle is one pointer. `is_triggered` is one atomic load; `clone` and `drop` are one
/// reference-count operation each. Nothing depends on an async runtime: a token triggered
/// from a plain thread wakes tasks on any executor.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, ReasonKind};
///
/// let token = CancelToken::named("download");
/// let worker = token.clone();
///
/// let handle = std::thread::spawn(move || {
///     worker.wait_blocking();
///     worker.reason().unwrap()
/// });
///
/// assert!(token.trigger_with("user clicked stop"));
/// let reason = handle.join().unwrap();
/// assert_eq!(reason.kind(), ReasonKind::Manual);
/// assert_eq!(reason.message(), Some("user clicked stop"));
/// ```
#[derive(Clone)]
pub struct CancelToken {
    node: Arc<Node>,
}

impl CancelToken {
    /// A new, untriggered, unnamed token.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// assert!(!token.is_triggered());
    /// assert_eq!(token.name(), None);
    /// ```
    pub fn new() -> CancelToken {
        CancelToken::from_node(Node::new(None))
    }

    /// A new, untriggered token with a name, shown by `Display`, `Debug` and in
    /// [`Cancelled`]'s message.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::named("request 42");
    /// assert_eq!(token.name(), Some("request 42"));
    /// assert_eq!(token.to_string(), "request 42");
    /// ```
    pub fn named(name: impl Into<Cow<'static, str>>) -> CancelToken {
        CancelToken::from_node(Node::new(Some(name.into())))
    }

    /// The token's name, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// assert_eq!(CancelToken::named("a").name(), Some("a"));
    /// assert_eq!(CancelToken::new().name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.node.name()
    }

    /// Triggers the token with [`ReasonKind::Manual`](crate::ReasonKind::Manual) and no message.
    ///
    /// Returns `true` only for the call that triggered the token; later calls (and the losers
    /// of concurrent calls) return `false` and change nothing. See
    /// [`trigger_with`](Self::trigger_with) for what happens before this returns.
    ///
    /// # Panics
    ///
    /// If a callback registered with [`on_cancel`](Self::on_cancel) panics, the first panic is
    /// resumed here after every callback has run. The token and its descendants are triggered
    /// regardless.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let token = CancelToken::new();
    /// assert!(token.trigger());
    /// assert!(!token.trigger(), "only the first trigger counts");
    /// assert_eq!(token.reason().unwrap().kind(), ReasonKind::Manual);
    /// ```
    pub fn trigger(&self) -> bool {
        self.trigger_with(Reason::default())
    }

    /// Triggers the token with a reason: a message (`&str`, `String`), a
    /// [`ReasonKind`](crate::ReasonKind) or a [`Reason`].
    ///
    /// Returns `true` only for the call that triggered the token. The first reason wins:
    /// later calls return `false` and leave it unchanged.
    ///
    /// When the call that triggered returns, the token and every descendant
    /// ([`child`](Self::child), [`chain`](Self::chain), [`any`](Self::any)) report triggered with
    /// this reason, their waiters have been woken, and their callbacks have run, in
    /// registration order, on this thread. Propagation uses a worklist, not recursion, so any
    /// depth is fine. A descendant that another thread triggers at the same moment keeps that
    /// other trigger's reason, and that thread finishes its subtree.
    ///
    /// # Panics
    ///
    /// If a callback panics, the first panic is resumed here after every callback has run.
    /// The token and its descendants are triggered regardless.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Reason, ReasonKind};
    ///
    /// let token = CancelToken::new();
    /// assert!(token.trigger_with("user clicked stop"));
    /// assert!(!token.trigger_with(ReasonKind::Timeout), "the first reason wins");
    /// assert_eq!(token.reason().unwrap().message(), Some("user clicked stop"));
    ///
    /// let other = CancelToken::new();
    /// other.trigger_with(Reason::with_message(ReasonKind::Signal, "SIGTERM"));
    /// assert_eq!(other.reason().unwrap().kind(), ReasonKind::Signal);
    /// ```
    pub fn trigger_with(&self, reason: impl Into<Reason>) -> bool {
        Node::trigger(&self.node, reason.into())
    }

    /// Whether the token has been triggered. One atomic load, no lock.
    ///
    /// A token that reports `true` always has its [`reason`](Self::reason) available.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// assert!(!token.is_triggered());
    /// token.trigger();
    /// assert!(token.is_triggered());
    /// ```
    #[inline]
    pub fn is_triggered(&self) -> bool {
        self.node.is_triggered()
    }

    /// Why the token was triggered, or `None` if it is not triggered.
    ///
    /// A descendant reports the reason of the token whose trigger reached it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let parent = CancelToken::new();
    /// let child = parent.child();
    /// assert!(child.reason().is_none());
    ///
    /// parent.trigger_with("shutdown");
    /// assert_eq!(child.reason().unwrap().message(), Some("shutdown"));
    /// ```
    pub fn reason(&self) -> Option<Reason> {
        self.node.fired().map(|fired| fired.reason.clone())
    }

    /// The token whose trigger fired this one, or `None` if it is not triggered.
    ///
    /// That is this token itself if it was triggered directly, otherwise the ancestor (through
    /// any number of [`child`](Self::child), [`chain`](Self::chain) and [`any`](Self::any)
    /// links) that was.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let user = CancelToken::named("user");
    /// let shutdown = CancelToken::named("shutdown");
    /// let request = user.chain(&shutdown).child();
    ///
    /// shutdown.trigger();
    /// assert_eq!(request.triggered_token(), Some(shutdown.clone()));
    /// assert_eq!(shutdown.triggered_token(), Some(shutdown));
    /// assert_eq!(user.triggered_token(), None);
    /// ```
    pub fn triggered_token(&self) -> Option<CancelToken> {
        Node::origin(&self.node).map(CancelToken::from_arc)
    }

    /// `Err(Cancelled)` if the token is triggered, for use with `?`.
    ///
    /// # Errors
    ///
    /// Returns [`Cancelled`], carrying the reason and the token that fired, once the token is
    /// triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Cancelled};
    ///
    /// fn process(items: &[u32], token: &CancelToken) -> Result<u32, Cancelled> {
    ///     let mut sum = 0;
    ///     for item in items {
    ///         token.raise_if_triggered()?;
    ///         sum += item;
    ///     }
    ///     Ok(sum)
    /// }
    ///
    /// let token = CancelToken::named("batch");
    /// assert_eq!(process(&[1, 2, 3], &token), Ok(6));
    ///
    /// token.trigger_with("operator abort");
    /// let err = process(&[1, 2, 3], &token).unwrap_err();
    /// assert_eq!(err.to_string(), "cancellation requested by token batch: operator abort");
    /// ```
    pub fn raise_if_triggered(&self) -> Result<(), Cancelled> {
        match self.node.fired() {
            None => Ok(()),
            Some(fired) => Err(Cancelled::new(Arc::clone(fired), &self.node)),
        }
    }

    /// A future that resolves once the token is triggered.
    ///
    /// It resolves at its first poll if the token is already triggered. Any number of
    /// futures can wait on one token; a trigger wakes all of them. See [`Wait`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let trigger = token.clone();
    /// std::thread::spawn(move || trigger.trigger_with("done"));
    ///
    /// token.wait().await;
    /// assert_eq!(token.reason().unwrap().message(), Some("done"));
    /// # });
    /// ```
    pub fn wait(&self) -> Wait<'_> {
        Wait::new(self)
    }

    /// Like [`wait`](Self::wait), but the future owns a handle of the token, so it is
    /// `Send + 'static` and can be spawned or stored. See [`WaitOwned`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let waiting = token.clone().wait_owned();
    /// token.trigger();
    /// waiting.await;
    /// # });
    /// ```
    pub fn wait_owned(self) -> WaitOwned {
        WaitOwned::new(self)
    }

    /// Blocks the current thread until the token is triggered.
    ///
    /// Returns at once if it already is.
    ///
    /// # Blocking
    ///
    /// This parks the calling thread. Don't call it from an async task: use
    /// [`wait`](Self::wait) there.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let trigger = token.clone();
    /// std::thread::spawn(move || trigger.trigger());
    ///
    /// token.wait_blocking();
    /// assert!(token.is_triggered());
    /// ```
    pub fn wait_blocking(&self) {
        wait::block(&self.node, None);
    }

    /// Blocks the current thread until the token is triggered or `timeout` has passed.
    ///
    /// Returns `true` if the token is triggered. A timeout too large to represent as an
    /// [`Instant`] means "no timeout".
    ///
    /// # Blocking
    ///
    /// This parks the calling thread. Don't call it from an async task.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// assert!(!token.wait_blocking_timeout(Duration::from_millis(10)));
    /// token.trigger();
    /// assert!(token.wait_blocking_timeout(Duration::from_secs(60)));
    /// ```
    pub fn wait_blocking_timeout(&self, timeout: Duration) -> bool {
        wait::block(&self.node, Instant::now().checked_add(timeout))
    }

    /// Blocks the current thread until the token is triggered or `deadline` is reached.
    ///
    /// Returns `true` if the token is triggered.
    ///
    /// # Blocking
    ///
    /// This parks the calling thread. Don't call it from an async task.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// assert!(!token.wait_blocking_deadline(deadline));
    /// ```
    pub fn wait_blocking_deadline(&self, deadline: Instant) -> bool {
        wait::block(&self.node, Some(deadline))
    }

    /// A new token that is triggered when this one is, with this one's reason.
    ///
    /// Triggering the child does not affect this token or its other children. A child of a
    /// triggered token is born triggered. The link lives as long as the child (or one of its
    /// own descendants) does; dropping the child's last handle unlinks it in O(1).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let parent = CancelToken::new();
    /// let child = parent.child();
    ///
    /// child.trigger();
    /// assert!(!parent.is_triggered(), "children never trigger their parent");
    ///
    /// let other = parent.child();
    /// parent.trigger_with("shutdown");
    /// assert_eq!(other.triggered_token(), Some(parent.clone()));
    /// assert!(parent.child().is_triggered(), "born triggered");
    /// ```
    pub fn child(&self) -> CancelToken {
        CancelToken::from_arc(Node::child(&self.node, None))
    }

    /// Like [`child`](Self::child), with a name.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let server = CancelToken::named("server");
    /// let request = server.child_named("request 7");
    /// assert_eq!(request.name(), Some("request 7"));
    /// ```
    pub fn child_named(&self, name: impl Into<Cow<'static, str>>) -> CancelToken {
        CancelToken::from_arc(Node::child(&self.node, Some(name.into())))
    }

    /// A new token that is triggered when this one **or** `other` is.
    ///
    /// Neither source is affected by triggering the new token. If both sources are named, the
    /// new token is named `"self:other"`; if one is, it takes that name. If a source is already
    /// triggered, the new token is born triggered with its reason (this token's first).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let a = CancelToken::named("a");
    /// let b = CancelToken::named("b");
    /// let both = a.chain(&b);
    /// assert_eq!(both.name(), Some("a:b"));
    ///
    /// b.trigger_with("b gave up");
    /// assert!(both.is_triggered());
    /// assert_eq!(both.triggered_token(), Some(b));
    /// assert!(!a.is_triggered());
    /// ```
    pub fn chain(&self, other: &CancelToken) -> CancelToken {
        CancelToken::any([self, other])
    }

    /// A new token that is triggered when any of `tokens` is (JavaScript's `AbortSignal.any`).
    ///
    /// The new token is named after the named sources, joined by `:`. If a source is already
    /// triggered, the new token is born triggered with the reason of the first such source.
    /// With no sources at all the new token is only ever triggered directly.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let user = CancelToken::named("user");
    /// let shutdown = CancelToken::named("shutdown");
    /// let quota = CancelToken::named("quota");
    ///
    /// let any = CancelToken::any([&user, &shutdown, &quota]);
    /// assert_eq!(any.name(), Some("user:shutdown:quota"));
    ///
    /// quota.trigger_with("over budget");
    /// assert_eq!(any.reason().unwrap().message(), Some("over budget"));
    /// assert_eq!(any.triggered_token(), Some(quota));
    /// ```
    pub fn any<'a>(tokens: impl IntoIterator<Item = &'a CancelToken>) -> CancelToken {
        let tokens: Vec<&CancelToken> = tokens.into_iter().collect();
        let mut names = tokens.iter().filter_map(|token| token.name());
        let name = match (names.next(), names.next()) {
            (None, _) => None,
            (Some(only), None) => Some(Cow::Owned(only.to_owned())),
            (Some(first), Some(second)) => {
                let mut joined = format!("{first}:{second}");
                for name in names {
                    joined.push(':');
                    joined.push_str(name);
                }
                Some(Cow::Owned(joined))
            }
        };
        let parents: Vec<&Arc<Node>> = tokens.iter().map(|token| &token.node).collect();
        CancelToken::from_arc(Node::any(&parents, name))
    }

    /// Registers `f` to run once when the token is triggered, and returns a guard that
    /// unregisters it when dropped.
    ///
    /// Callbacks run on the thread that triggers the token, in registration order, after the
    /// flag and reason of the whole tree are visible and with no lock held: a callback may
    /// register callbacks, trigger other tokens or drop its own guard. A panicking callback
    /// does not stop the others; the trigger resumes the first panic after all have run.
    ///
    /// If the token is already triggered, `f` runs at once, on this thread, before `on_cancel`
    /// returns, and the returned guard is inert. Use [`CallbackGuard::detach`] to keep the
    /// callback for the token's whole life without holding the guard.
    ///
    /// # Panics
    ///
    /// If the token is already triggered and `f` panics, the panic propagates from here.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::named("job");
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let guard = token.on_cancel({
    ///     let log = log.clone();
    ///     move |reason| log.lock().unwrap().push(reason.to_string())
    /// });
    ///
    /// token.trigger_with("disk full");
    /// assert_eq!(*log.lock().unwrap(), ["disk full"]);
    /// drop(guard);
    /// ```
    pub fn on_cancel<F>(&self, f: F) -> CallbackGuard
    where
        F: FnOnce(&Reason) + Send + 'static,
    {
        if let Some(fired) = self.node.fired() {
            f(&fired.reason);
            return CallbackGuard::new(self.clone(), None);
        }
        let entry = callback::entry(f);
        match self.node.register_callback(&entry) {
            Some(key) => CallbackGuard::new(self.clone(), Some((key, entry))),
            None => {
                // Triggered between the check above and the registration.
                if let Some(fired) = self.node.fired() {
                    entry.fire(&fired.reason);
                }
                CallbackGuard::new(self.clone(), None)
            }
        }
    }

    /// Turns this handle into a guard that triggers the token, with
    /// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped), when dropped, unless
    /// [disarmed](DropGuard::disarm). See [`DropGuard`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let token = CancelToken::new();
    /// {
    ///     let _guard = token.clone().drop_guard();
    ///     // ... work that may return early or panic ...
    /// }
    /// assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
    /// ```
    pub fn drop_guard(self) -> DropGuard {
        DropGuard::new(self)
    }

    fn from_node(node: Node) -> CancelToken {
        CancelToken::from_arc(Arc::new(node))
    }

    pub(crate) fn from_arc(node: Arc<Node>) -> CancelToken {
        CancelToken { node }
    }

    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Live child links and callbacks registered on this token, for the no-leak tests.
    #[cfg(test)]
    pub(crate) fn registrations(&self) -> (usize, usize) {
        self.node.registrations()
    }
}

impl Default for CancelToken {
    /// Same as [`CancelToken::new`].
    fn default() -> CancelToken {
        CancelToken::new()
    }
}

impl PartialEq for CancelToken {
    /// Two handles are equal when they refer to the same token.
    fn eq(&self, other: &CancelToken) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

impl Eq for CancelToken {}

impl Hash for CancelToken {
    /// Hashes the token's identity, consistent with `Eq`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.node).hash(state);
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("CancelToken");
        if let Some(name) = self.name() {
            s.field("name", &name);
        }
        s.field("triggered", &self.is_triggered());
        if let Some(fired) = self.node.fired() {
            s.field("reason", &fired.reason);
        }
        s.finish()
    }
}

impl fmt::Display for CancelToken {
    /// The token's name, or `<unnamed>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name().unwrap_or("<unnamed>"))
    }
}
