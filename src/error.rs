//! [`Cancelled`], the error returned once a token is triggered.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use crate::node::Node;
use crate::reason::{Reason, ReasonKind};
use crate::sync::Arc;
use crate::CancelToken;

/// The error returned when work stops because a token was triggered.
///
/// It carries the [`Reason`] and the token whose trigger fired (which, for a descendant, is
/// the ancestor that was triggered). `Display` names that token and the reason:
/// `cancellation requested by token b: user clicked stop`.
///
/// Cloning is cheap: one reference-count increment.
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
    /// The token that was triggered directly: it holds the reason.
    token: CancelToken,
}

impl Cancelled {
    /// The error for a trigger of `origin`, the token that was triggered directly.
    pub(crate) fn new(origin: &Arc<Node>) -> Cancelled {
        Cancelled {
            token: CancelToken::from_arc(Arc::clone(origin)),
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
        self.token.node().origin_reason()
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
        self.reason().kind()
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
        let reason = self.reason();
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
            .field("reason", self.reason())
            .finish()
    }
}

impl PartialEq for Cancelled {
    /// Equal when raised by the same trigger: the same origin token (and so the same reason).
    fn eq(&self, other: &Cancelled) -> bool {
        self.token == other.token
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

/// The timeout of a [`CancelToken::cancellable_wait`](crate::CancelToken::cancellable_wait)
/// elapsed before any of its futures completed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::CancelToken;
///
/// # futures_lite::future::block_on(async {
/// let token = CancelToken::new();
/// let never = [futures_lite::future::pending::<()>()];
/// let err = token.cancellable_wait(never, Some(Duration::from_millis(5))).await.unwrap_err();
/// let timed_out = err.timed_out().unwrap();
/// assert_eq!(timed_out.timeout(), Duration::from_millis(5));
/// assert_eq!(timed_out.to_string(), "timed out after 5ms");
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut {
    timeout: Duration,
}

impl TimedOut {
    pub(crate) fn new(timeout: Duration) -> TimedOut {
        TimedOut { timeout }
    }

    /// The timeout that elapsed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let none: [std::future::Pending<()>; 0] = [];
    /// let err = CancelToken::new().cancellable_wait(none, Some(Duration::ZERO)).await.unwrap_err();
    /// assert_eq!(err.timed_out().unwrap().timeout(), Duration::ZERO);
    /// # });
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.timeout)
    }
}

impl Error for TimedOut {}

impl From<TimedOut> for io::Error {
    /// An [`io::ErrorKind::TimedOut`] error wrapping the timeout.
    fn from(timed_out: TimedOut) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, timed_out)
    }
}

/// Why a [`CancelToken::cancellable_wait`](crate::CancelToken::cancellable_wait) returned
/// without an output.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, WaitError};
///
/// # futures_lite::future::block_on(async {
/// let token = CancelToken::named("job");
/// token.trigger_with("shutdown");
/// let never = [futures_lite::future::pending::<()>()];
/// match token.cancellable_wait(never, None).await {
///     Err(WaitError::Cancelled(cancelled)) => {
///         assert_eq!(cancelled.to_string(), "cancellation requested by token job: shutdown")
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The token was triggered.
    Cancelled(Cancelled),
    /// The timeout elapsed first.
    TimedOut(TimedOut),
}

impl WaitError {
    /// Whether the token was triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, WaitError};
    ///
    /// let token = CancelToken::new();
    /// token.trigger();
    /// let err = WaitError::from(token.raise_if_triggered().unwrap_err());
    /// assert!(err.is_cancelled());
    /// assert!(!err.is_timed_out());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, WaitError::Cancelled(_))
    }

    /// Whether the timeout elapsed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let never = [futures_lite::future::pending::<()>()];
    /// let err = CancelToken::new()
    ///     .cancellable_wait(never, Some(Duration::from_millis(1)))
    ///     .await
    ///     .unwrap_err();
    /// assert!(err.is_timed_out());
    /// # });
    /// ```
    pub fn is_timed_out(&self) -> bool {
        matches!(self, WaitError::TimedOut(_))
    }

    /// The cancellation, if the token was triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, ReasonKind, WaitError};
    ///
    /// let token = CancelToken::new();
    /// token.trigger_with(ReasonKind::Signal);
    /// let err = WaitError::from(token.raise_if_triggered().unwrap_err());
    /// assert_eq!(err.cancelled().unwrap().kind(), ReasonKind::Signal);
    /// ```
    pub fn cancelled(&self) -> Option<&Cancelled> {
        match self {
            WaitError::Cancelled(cancelled) => Some(cancelled),
            WaitError::TimedOut(_) => None,
        }
    }

    /// The timeout, if it elapsed.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, WaitError};
    ///
    /// let token = CancelToken::new();
    /// token.trigger();
    /// assert!(WaitError::from(token.raise_if_triggered().unwrap_err()).timed_out().is_none());
    /// ```
    pub fn timed_out(&self) -> Option<&TimedOut> {
        match self {
            WaitError::TimedOut(timed_out) => Some(timed_out),
            WaitError::Cancelled(_) => None,
        }
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Cancelled(cancelled) => fmt::Display::fmt(cancelled, f),
            WaitError::TimedOut(timed_out) => fmt::Display::fmt(timed_out, f),
        }
    }
}

impl Error for WaitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            WaitError::Cancelled(cancelled) => Some(cancelled),
            WaitError::TimedOut(timed_out) => Some(timed_out),
        }
    }
}

impl From<Cancelled> for WaitError {
    fn from(cancelled: Cancelled) -> WaitError {
        WaitError::Cancelled(cancelled)
    }
}

impl From<TimedOut> for WaitError {
    fn from(timed_out: TimedOut) -> WaitError {
        WaitError::TimedOut(timed_out)
    }
}

impl From<WaitError> for io::Error {
    /// The `io::Error` of the inner [`Cancelled`] or [`TimedOut`].
    fn from(err: WaitError) -> io::Error {
        match err {
            WaitError::Cancelled(cancelled) => cancelled.into(),
            WaitError::TimedOut(timed_out) => timed_out.into(),
        }
    }
}
