//! A token's deadline: tokens that trigger themselves at a deadline, and giving one to an
//! existing token.

use std::time::{Duration, Instant};

use crate::node::Node;
use crate::CancelToken;

impl CancelToken {
    /// A new token that triggers itself with [`ReasonKind::Timeout`](crate::ReasonKind::Timeout)
    /// once `timeout` has elapsed.
    ///
    /// The deadline is enforced by the crate's own timer threads, so it fires with no async
    /// runtime anywhere in the process: async and blocking waiters wake and callbacks run at
    /// the deadline. A manual trigger before the deadline keeps its own reason and releases
    /// the timer entry; so does dropping every handle. A timeout too large to represent as an
    /// [`Instant`] means "never".
    ///
    /// # Precision
    ///
    /// The token triggers at or after the deadline, usually within a millisecond. Callbacks run
    /// on one of the timer's threads; one that blocks delays the other deadlines by about 2 ms
    /// at most, and deadlines close together may run their callbacks in either order.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let token = CancelToken::with_timeout(Duration::from_millis(20));
    /// assert!(!token.is_triggered());
    /// token.wait_blocking();
    /// assert_eq!(token.reason().unwrap().kind(), ReasonKind::Timeout);
    /// ```
    pub fn with_timeout(timeout: Duration) -> CancelToken {
        let token = CancelToken::new();
        if let Some(deadline) = Instant::now().checked_add(timeout) {
            Node::set_deadline(&token.node, deadline);
        }
        token
    }

    /// A new token that triggers itself with [`ReasonKind::Timeout`](crate::ReasonKind::Timeout)
    /// at `deadline`; at once if the deadline has passed. See [`with_timeout`](Self::with_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let deadline = Instant::now() + Duration::from_secs(3600);
    /// let token = CancelToken::with_deadline(deadline);
    /// assert_eq!(token.deadline(), Some(deadline));
    ///
    /// let past = CancelToken::with_deadline(Instant::now());
    /// assert_eq!(past.reason().unwrap().kind(), ReasonKind::Timeout);
    /// ```
    pub fn with_deadline(deadline: Instant) -> CancelToken {
        let token = CancelToken::new();
        Node::set_deadline(&token.node, deadline);
        token
    }

    /// A [`child`](Self::child) that also triggers itself with
    /// [`ReasonKind::Timeout`](crate::ReasonKind::Timeout) after `timeout`.
    ///
    /// Its effective deadline is the earlier of its own and this token's: a child cannot
    /// outlive its parent's deadline. A timeout too large to represent means "no deadline of
    /// its own".
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let request = CancelToken::with_timeout(Duration::from_secs(30));
    /// let query = request.child_with_timeout(Duration::from_millis(10));
    /// assert!(query.deadline() < request.deadline());
    ///
    /// query.wait_blocking();
    /// assert_eq!(query.reason().unwrap().kind(), ReasonKind::Timeout);
    /// assert!(!request.is_triggered(), "the child's timeout is its own");
    ///
    /// let long = request.child_with_timeout(Duration::from_secs(3600));
    /// assert_eq!(long.deadline(), request.deadline(), "capped by the parent");
    /// ```
    pub fn child_with_timeout(&self, timeout: Duration) -> CancelToken {
        let child = self.child();
        if let Some(deadline) = Instant::now().checked_add(timeout) {
            Node::set_deadline(&child.node, deadline);
        }
        child
    }

    /// A [`child`](Self::child) that also triggers itself at `deadline`. See
    /// [`child_with_timeout`](Self::child_with_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cancel_token::CancelToken;
    ///
    /// let parent = CancelToken::new();
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// let child = parent.child_with_deadline(deadline);
    /// assert_eq!(child.deadline(), Some(deadline));
    /// assert_eq!(parent.deadline(), None);
    /// ```
    pub fn child_with_deadline(&self, deadline: Instant) -> CancelToken {
        let child = self.child();
        Node::set_deadline(&child.node, deadline);
        child
    }

    /// The effective deadline: when this token will trigger itself, or be triggered by a
    /// source's deadline, at the latest. `None` if no deadline applies.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// let parent = CancelToken::with_timeout(Duration::from_secs(5));
    /// assert_eq!(parent.child().deadline(), parent.deadline());
    /// assert_eq!(CancelToken::new().deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline()
    }
}
