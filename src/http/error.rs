//! [`CancelError`] and [`find_cancelled`].

use std::error::Error;
use std::fmt;
use std::io;

use crate::{Cancelled, Reason};

/// The error of an HTTP operation run under a token: either the token was triggered, or the
/// client failed on its own, with its error untouched.
///
/// # Examples
///
/// ```
/// use cancel_token::http::CancelError;
/// use cancel_token::CancelToken;
///
/// let token = CancelToken::named("request");
/// token.trigger_with("user navigated away");
/// let err: CancelError<std::io::Error> = token.raise_if_triggered().unwrap_err().into();
/// assert!(err.is_cancelled());
/// assert_eq!(err.reason().unwrap().message(), Some("user navigated away"));
///
/// let refused = CancelError::Inner(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
/// assert!(!refused.is_cancelled());
/// assert_eq!(refused.into_inner().unwrap().kind(), std::io::ErrorKind::ConnectionRefused);
/// ```
///
/// The two variants are complete by design (an operation under a token either was cancelled
/// or failed on its own), so a `match` on both needs no catch-all arm:
///
/// ```
/// use cancel_token::http::CancelError;
///
/// fn describe(err: &CancelError<std::io::Error>) -> String {
///     match err {
///         CancelError::Cancelled(cancelled) => format!("stopped: {}", cancelled.reason()),
///         CancelError::Inner(err) => format!("failed: {err}"),
///     }
/// }
/// let err = CancelError::Inner(std::io::Error::other("connection reset"));
/// assert_eq!(describe(&err), "failed: connection reset");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum CancelError<E> {
    /// The token was triggered; the request was not sent, or was dropped mid-flight.
    Cancelled(Cancelled),
    /// The client's own error, untouched.
    Inner(E),
}

impl<E> CancelError<E> {
    /// Whether the token was triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::CancelError;
    ///
    /// assert!(!CancelError::Inner("timeout").is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, CancelError::Cancelled(_))
    }

    /// The cancellation, if the token was triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::CancelError;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::named("upload");
    /// token.trigger();
    /// let err = CancelError::<()>::from(token.raise_if_triggered().unwrap_err());
    /// assert_eq!(err.cancelled().unwrap().token(), &token);
    /// ```
    pub fn cancelled(&self) -> Option<&Cancelled> {
        match self {
            CancelError::Cancelled(cancelled) => Some(cancelled),
            CancelError::Inner(_) => None,
        }
    }

    /// The reason the token was triggered, if it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::CancelError;
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let token = CancelToken::new();
    /// token.trigger_with(ReasonKind::Superseded);
    /// let err = CancelError::<()>::from(token.raise_if_triggered().unwrap_err());
    /// assert_eq!(err.reason().unwrap().kind(), ReasonKind::Superseded);
    /// ```
    pub fn reason(&self) -> Option<&Reason> {
        self.cancelled().map(Cancelled::reason)
    }

    /// The client's own error, if that is what happened.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::CancelError;
    ///
    /// assert_eq!(CancelError::Inner(404).inner(), Some(&404));
    /// ```
    pub fn inner(&self) -> Option<&E> {
        match self {
            CancelError::Inner(inner) => Some(inner),
            CancelError::Cancelled(_) => None,
        }
    }

    /// The client's own error, by value; `None` if the token was triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::CancelError;
    ///
    /// assert_eq!(CancelError::Inner(503).into_inner(), Some(503));
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            CancelError::Inner(inner) => Some(inner),
            CancelError::Cancelled(_) => None,
        }
    }

    /// Maps the client's error, leaving a cancellation as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::CancelError;
    ///
    /// let err = CancelError::Inner(500).map_inner(|status| format!("status {status}"));
    /// assert_eq!(err.into_inner().unwrap(), "status 500");
    /// ```
    pub fn map_inner<F>(self, f: impl FnOnce(E) -> F) -> CancelError<F> {
        match self {
            CancelError::Cancelled(cancelled) => CancelError::Cancelled(cancelled),
            CancelError::Inner(inner) => CancelError::Inner(f(inner)),
        }
    }
}

impl<E> From<Cancelled> for CancelError<E> {
    fn from(cancelled: Cancelled) -> Self {
        CancelError::Cancelled(cancelled)
    }
}

impl<E: fmt::Display> fmt::Display for CancelError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelError::Cancelled(cancelled) => fmt::Display::fmt(cancelled, f),
            CancelError::Inner(inner) => fmt::Display::fmt(inner, f),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for CancelError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelError::Cancelled(cancelled) => {
                f.debug_tuple("Cancelled").field(cancelled).finish()
            }
            CancelError::Inner(inner) => f.debug_tuple("Inner").field(inner).finish(),
        }
    }
}

impl<E: Error + 'static> Error for CancelError<E> {
    /// The [`Cancelled`], or the client's error: either way the chain leads to the cause.
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CancelError::Cancelled(cancelled) => Some(cancelled),
            CancelError::Inner(inner) => Some(inner),
        }
    }
}

impl<E: Into<io::Error>> From<CancelError<E>> for io::Error {
    /// The `io::Error` of the cancellation (see `From<Cancelled> for io::Error`) or of the
    /// client's error.
    fn from(err: CancelError<E>) -> io::Error {
        match err {
            CancelError::Cancelled(cancelled) => cancelled.into(),
            CancelError::Inner(inner) => inner.into(),
        }
    }
}

/// Finds a [`Cancelled`] anywhere in an error's chain of sources, including inside
/// [`io::Error`]s (which hide what they wrap from `source()`), so code that only sees a
/// client's wrapped error can still tell a cancellation from a failure.
///
/// # Examples
///
/// ```
/// use std::io;
/// use cancel_token::http::{find_cancelled, CancelError};
/// use cancel_token::CancelToken;
///
/// let token = CancelToken::named("download");
/// token.trigger_with("disk full");
/// let cancelled = token.raise_if_triggered().unwrap_err();
///
/// // Wrapped twice: in an io::Error, then in a CancelError of a client.
/// let wrapped: CancelError<io::Error> = CancelError::Inner(cancelled.into());
/// let found = find_cancelled(&wrapped).unwrap();
/// assert_eq!(found.reason().message(), Some("disk full"));
///
/// assert!(find_cancelled(&io::Error::other("unrelated")).is_none());
/// ```
pub fn find_cancelled<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a Cancelled> {
    // A worklist rather than recursion: a chain can be arbitrarily long.
    let mut pending: Vec<&'a (dyn Error + 'static)> = vec![err];
    while let Some(err) = pending.pop() {
        if let Some(cancelled) = err.downcast_ref::<Cancelled>() {
            return Some(cancelled);
        }
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            pending.push(inner);
        }
        if let Some(source) = err.source() {
            pending.push(source);
        }
    }
    None
}
