//! [`Cancelled`], the error returned once a token is triggered.

use std::error::Error;
use std::fmt;
use std::io;

use crate::node::{Fired, Node};
use crate::reason::{Reason, ReasonKind};
use crate::sync::Arc;
use crate::CancelToken;

/// The error returned when work stops because a token was triggered.
///
/// It carries the [`Reason`] and the token whose trigger fired (which, for a descendant, is
/// the ancestor that was triggered). `Display` names that token and the reason:
/// `cancellation requested by token b: user clicked stop`.
///
/// Cloning is cheap: two reference-count increments.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, ReasonKind};
///
/// let stop = CancelToken::named("b");
/// let request = CancelToken::named("a").chain(&stop);
/// stop.trigger_with("user clicked stop");
///
/// let err = request.raise_if_triggered().unwrap_err();
/// assert_eq!(err.token(), &stop);
/// assert_eq!(err.reason().kind(), ReasonKind::Manual);
/// assert_eq!(err.to_string(), "cancellation requested by token b: user clicked stop");
/// ```
#[derive(Clone)]
pub struct Cancelled {
    fired: Arc<Fired>,
    token: CancelToken,
}

impl Cancelled {
    /// The error for `fired`, read from `node`: the token is the origin of the trigger.
    pub(crate) fn new(fired: Arc<Fired>, node: &Arc<Node>) -> Cancelled {
        let origin = Arc::clone(fired.origin.as_ref().unwrap_or(node));
        Cancelled {
            fired,
            token: CancelToken::from_arc(origin),
        }
    }

    /// Why the token was triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let token = CancelToken::new();
    /// token.trigger_with(ReasonKind::Superseded);
    /// let err = token.raise_if_triggered().unwrap_err();
    /// assert_eq!(err.reason().kind(), ReasonKind::Superseded);
    /// ```
    pub fn reason(&self) -> &Reason {
        &self.fired.reason
    }

    /// Shorthand for `self.reason().kind()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let token = CancelToken::new();
    /// token.trigger();
    /// assert_eq!(token.raise_if_triggered().unwrap_err().kind(), ReasonKind::Manual);
    /// ```
    pub fn kind(&self) -> ReasonKind {
        self.fired.reason.kind()
    }

    /// The token whose trigger fired: the token that was triggered directly, even when the
    /// error was raised by one of its descendants.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let parent = CancelToken::named("parent");
    /// let child = parent.child();
    /// parent.trigger();
    /// assert_eq!(child.raise_if_triggered().unwrap_err().token(), &parent);
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// The `Cancelled` inside an [`io::Error`] made by `From<Cancelled>`, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use cancel_token::{CancelToken, Cancelled};
    ///
    /// let token = CancelToken::new();
    /// token.trigger_with("stop reading");
    /// let err: io::Error = token.raise_if_triggered().unwrap_err().into();
    ///
    /// let cancelled = Cancelled::from_io_error(&err).unwrap();
    /// assert_eq!(cancelled.reason().message(), Some("stop reading"));
    /// assert!(Cancelled::from_io_error(&io::Error::other("disk")).is_none());
    /// ```
    pub fn from_io_error(err: &io::Error) -> Option<&Cancelled> {
        err.get_ref()?.downcast_ref::<Cancelled>()
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cancellation requested")?;
        if let Some(name) = self.token.name() {
            write!(f, " by token {name}")?;
        }
        let reason = &self.fired.reason;
        if reason.message().is_some() || reason.kind() != ReasonKind::Manual {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancelled")
            .field("token", &self.token.name())
            .field("reason", &self.fired.reason)
            .finish()
    }
}

impl PartialEq for Cancelled {
    /// Equal when raised by the same trigger: same origin token, same reason.
    fn eq(&self, other: &Cancelled) -> bool {
        self.token == other.token && self.fired.reason == other.fired.reason
    }
}

impl Eq for Cancelled {}

impl Error for Cancelled {}

impl From<Cancelled> for io::Error {
    /// An `io::Error` wrapping the cancellation, recoverable with
    /// [`Cancelled::from_io_error`].
    ///
    /// The kind is [`io::ErrorKind::TimedOut`] for a [`ReasonKind::Timeout`] and
    /// [`io::ErrorKind::Other`] otherwise; never `Interrupted`, which read and write loops
    /// retry silently.
    fn from(cancelled: Cancelled) -> io::Error {
        let kind = match cancelled.kind() {
            ReasonKind::Timeout => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, cancelled)
    }
}
