//! [`WeakCancelToken`]: a handle that does not keep its token alive, for callbacks that must
//! name a related token without making a cycle.

use std::fmt;

use crate::node::Node;
use crate::sync::{Arc, Weak};
use crate::CancelToken;

/// A handle to a [`CancelToken`] that does not keep it alive, made by
/// [`CancelToken::downgrade`]. [`upgrade`](Self::upgrade) gives a [`CancelToken`] back while
/// the token lives.
///
/// A token lives while any handle to it does, or any token derived from it (a child keeps
/// its parents alive). A callback registered with [`CancelToken::on_cancel`] and
/// [detached](crate::CallbackGuard::detach) lives as long as its token: if it holds a strong
/// handle to its own token, or to one derived from it, the two keep each other alive for
/// ever, as `Rc` cycles do. Capture a `WeakCancelToken` instead.
///
/// # Examples
///
/// ```
/// use cancel_token::CancelToken;
///
/// let parent = CancelToken::new();
/// let child = parent.child();
/// let weak_child = child.downgrade();
/// parent
///     .on_cancel(move |reason| {
///         if let Some(child) = weak_child.upgrade() {
///             println!("{child} cancelled: {reason}");
///         }
///     })
///     .detach();
///
/// assert_eq!(child.downgrade().upgrade(), Some(child.clone()));
/// drop(child);
/// // Nothing holds the child any more: no cycle through the callback keeps it.
/// parent.trigger();
/// ```
#[derive(Clone)]
pub struct WeakCancelToken {
    node: Weak<Node>,
}

impl WeakCancelToken {
    /// A handle to the token, if it still lives.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let weak = token.downgrade();
    /// assert!(weak.upgrade().is_some());
    /// drop(token);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn upgrade(&self) -> Option<CancelToken> {
        self.node.upgrade().map(CancelToken::from_arc)
    }

    /// Whether both refer to the same token (`true` also for two handles of tokens that are
    /// both gone only if they were the same token).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// assert!(token.downgrade().ptr_eq(&token.downgrade()));
    /// assert!(!token.downgrade().ptr_eq(&CancelToken::new().downgrade()));
    /// ```
    pub fn ptr_eq(&self, other: &WeakCancelToken) -> bool {
        Weak::ptr_eq(&self.node, &other.node)
    }
}

impl CancelToken {
    /// A [`WeakCancelToken`] for this token: it does not keep the token alive.
    ///
    /// Use it in a callback ([`on_cancel`](Self::on_cancel)) that must name its own token or
    /// one derived from it: a strong handle there is a cycle that is never freed.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::named("job");
    /// let weak = token.downgrade();
    /// token.trigger_with("done");
    /// let again = weak.upgrade().unwrap();
    /// assert_eq!(again.reason().unwrap().message(), Some("done"));
    /// ```
    pub fn downgrade(&self) -> WeakCancelToken {
        WeakCancelToken {
            node: Arc::downgrade(self.node()),
        }
    }
}

impl fmt::Debug for WeakCancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.upgrade() {
            Some(token) => f.debug_tuple("WeakCancelToken").field(&token).finish(),
            None => f.write_str("WeakCancelToken(<dropped>)"),
        }
    }
}
