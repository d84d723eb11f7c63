//! [`CancelToken`], the public face of the crate: a thin handle over a shared node.
//!
//! The methods are grouped by what they do: making tokens from tokens (`combine.rs`), waiting
//! (`waiting.rs`), deadlines (`time.rs`), running futures and streams (`adapt.rs`) and drop
//! guards (`guards.rs`).

mod adapt;
mod combine;
mod guards;
mod time;
mod waiting;

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};

use crate::callback::{self, CallbackGuard};
use crate::error::Cancelled;
use crate::node::Node;
use crate::reason::Reason;
use crate::sync::Arc;

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
    #[inline]
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
    /// resumed here after every callback has run, unless this thread is already unwinding (a
    /// trigger from a `Drop`), where a second panic would abort: then it is swallowed. The
    /// token and its descendants are triggered regardless.
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
    #[doc(alias = "cancel")]
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
    /// depth is fine.
    ///
    /// The one exception is a descendant that another trigger reached first (a concurrent
    /// trigger of that descendant or of another of its sources): it and everything below it
    /// belong to that trigger, which gives them its reason, wakes their waiters and runs their
    /// callbacks on its own thread. This call skips such a subtree and never waits for another
    /// trigger, the promise tokio-util's `CancellationToken` and .NET's `CancellationToken`
    /// give too. A call that returns `false` promises only that this token reports triggered.
    ///
    /// # Panics
    ///
    /// If a callback panics, the first panic is resumed here after every callback has run,
    /// unless this thread is already unwinding, where it is swallowed instead (a second panic
    /// would abort the process). The token and its descendants are triggered regardless.
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
    #[doc(alias = "is_cancelled")]
    #[inline]
    pub fn is_triggered(&self) -> bool {
        self.node.is_triggered()
    }

    /// Why the token was triggered, or `None` if it is not triggered.
    ///
    /// A descendant reports the reason of the token whose trigger reached it. A descendant
    /// stores only which parent the trigger came through, so this reads one parent per level
    /// between this token and the one that was triggered (an untriggered token: one load).
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
        Node::reason(&self.node)
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
    #[inline]
    pub fn raise_if_triggered(&self) -> Result<(), Cancelled> {
        if self.is_triggered() {
            Err(self.cancelled_error())
        } else {
            Ok(())
        }
    }

    /// The [`Cancelled`] error of a triggered token, or `None` if it is not triggered: the
    /// error [`raise_if_triggered`](Self::raise_if_triggered) returns, as an `Option`.
    ///
    /// For code that reports a cancellation rather than returning it with `?`. (tokio-util's
    /// `cancelled()` is a future; here that is [`wait`](Self::wait).)
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let token = CancelToken::named("upload");
    /// assert!(token.cancelled().is_none());
    ///
    /// token.trigger_with(ReasonKind::Superseded);
    /// let cancelled = token.cancelled().unwrap();
    /// assert_eq!(cancelled.reason().kind(), ReasonKind::Superseded);
    /// assert_eq!(cancelled.token(), &token);
    /// ```
    #[inline]
    pub fn cancelled(&self) -> Option<Cancelled> {
        self.raise_if_triggered().err()
    }

    /// The error for a triggered token, out of line so that `raise_if_triggered` stays one
    /// load on the path where the token is not triggered.
    #[cold]
    #[inline(never)]
    fn cancelled_error(&self) -> Cancelled {
        // A state word is never cleared, so a token seen triggered always has an origin.
        Cancelled::new(Node::resolve(&self.node).unwrap_or(&self.node))
    }

    /// Registers `f` to run once when the token is triggered, and returns the guard that keeps
    /// it registered. **`let _ = token.on_cancel(..)` drops the guard at once, and the callback
    /// never runs**: bind it (`let _guard = token.on_cancel(..)`), or call
    /// [`detach`](CallbackGuard::detach) to keep the callback for the token's whole life.
    /// (Neither rustc nor clippy's default lints warn about `let _ =`; clippy's
    /// `let_underscore_must_use` does, if you enable it.)
    ///
    /// Callbacks run on the thread of the trigger that reached the token, in registration
    /// order, after every token that trigger reached reports triggered, and with no lock held:
    /// a callback may register callbacks, trigger other tokens or drop its own guard. A
    /// panicking callback does not stop the others; the trigger resumes the first panic after
    /// all have run.
    ///
    /// If the token is already triggered, `f` runs at once, on this thread, before `on_cancel`
    /// returns, and the returned guard is inert.
    ///
    /// A callback is also how a token reaches a thread blocked in something that knows nothing
    /// of tokens, such as `std::sync::mpsc::Receiver::recv`: see
    /// [`wait_blocking`](Self::wait_blocking), section *A worker blocked in a channel*.
    ///
    /// A detached callback lives as long as its token. If it captures a strong handle to that
    /// token or to one derived from it (a child, a chain), the two keep each other alive and
    /// are never freed; capture a [`WeakCancelToken`](crate::WeakCancelToken) from
    /// [`downgrade`](Self::downgrade) instead.
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
        if let Some(reason) = Node::reason(&self.node) {
            f(&reason);
            return CallbackGuard::new(self.clone(), None);
        }
        let entry = callback::entry(f);
        match self.node.register_callback(&entry) {
            Some(key) => CallbackGuard::new(self.clone(), Some((key, entry))),
            None => {
                // Triggered between the check above and the registration.
                if let Some(reason) = Node::reason(&self.node) {
                    // A user's callback hands nothing back.
                    let _ = entry.fire(&reason);
                }
                CallbackGuard::new(self.clone(), None)
            }
        }
    }

    /// The error for a token known to be triggered (a waiter on it resolved).
    pub(crate) fn expect_cancelled(&self) -> Cancelled {
        self.raise_if_triggered()
            .expect_err("a waiter resolves only once its token is triggered")
    }

    #[inline]
    fn from_node(node: Node) -> CancelToken {
        CancelToken::from_arc(Arc::new(node))
    }

    #[inline]
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

    /// Live child links, callbacks and waiters registered on this token. Exists only in the
    /// loom build, for the models' no-leak checks.
    #[cfg(cancel_token_loom)]
    #[doc(hidden)]
    pub fn __loom_registrations(&self) -> (usize, usize, usize) {
        let (children, callbacks) = self.node.registrations();
        (children, callbacks, self.node.waiters())
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
        if let Some(reason) = Node::reason(&self.node) {
            s.field("reason", &reason);
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
