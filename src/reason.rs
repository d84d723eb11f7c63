//! Why a token was triggered: [`Reason`] and its [`ReasonKind`].

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// What kind of event triggered a token.
///
/// The kind lets code react to *why* work stopped without parsing messages: a timeout is
/// usually reported differently from a user pressing "stop".
///
/// New kinds may be added in minor releases, so matches need a wildcard arm.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, ReasonKind};
///
/// let token = CancelToken::new();
/// token.trigger_with(ReasonKind::Signal);
/// assert_eq!(token.reason().unwrap().kind(), ReasonKind::Signal);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
// The names of `as_str` (feature `serde`).
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum ReasonKind {
    /// Somebody called [`trigger`](crate::CancelToken::trigger) or
    /// [`trigger_with`](crate::CancelToken::trigger_with).
    Manual,
    /// A timeout or deadline elapsed.
    Timeout,
    /// A [`DropGuard`](crate::DropGuard) was dropped without being disarmed.
    Dropped,
    /// A newer operation replaced this one ("latest wins").
    Superseded,
    /// The process received a signal such as `SIGINT` or `SIGTERM`.
    Signal,
    /// A watched condition became true.
    Condition,
}

impl ReasonKind {
    /// A short lowercase name for the kind: `"manual"`, `"timeout"`, and so on.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::ReasonKind;
    ///
    /// assert_eq!(ReasonKind::Timeout.as_str(), "timeout");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            ReasonKind::Manual => "manual",
            ReasonKind::Timeout => "timeout",
            ReasonKind::Dropped => "dropped",
            ReasonKind::Superseded => "superseded",
            ReasonKind::Signal => "signal",
            ReasonKind::Condition => "condition",
        }
    }

    /// The sentence used when a reason of this kind carries no message.
    const fn description(self) -> &'static str {
        match self {
            ReasonKind::Manual => "triggered manually",
            ReasonKind::Timeout => "deadline elapsed",
            ReasonKind::Dropped => "drop guard dropped",
            ReasonKind::Superseded => "superseded by a newer operation",
            ReasonKind::Signal => "signal received",
            ReasonKind::Condition => "condition met",
        }
    }
}

impl fmt::Display for ReasonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token was triggered: a [`ReasonKind`] and an optional message.
///
/// A reason is recorded by the first trigger of a token and inherited by every descendant that
/// trigger reaches, so whoever observes the cancellation can tell what caused it. Cloning is cheap: the message is
/// shared, never copied.
///
/// `Display` prints the message, or a short description of the kind when there is none.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, Reason, ReasonKind};
///
/// let token = CancelToken::new();
/// token.trigger_with("user clicked stop");
///
/// let reason: Reason = token.reason().unwrap();
/// assert_eq!(reason.kind(), ReasonKind::Manual);
/// assert_eq!(reason.message(), Some("user clicked stop"));
/// assert_eq!(reason.to_string(), "user clicked stop");
///
/// let timeout = Reason::new(ReasonKind::Timeout);
/// assert_eq!(timeout.message(), None);
/// assert_eq!(timeout.to_string(), "deadline elapsed");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reason {
    kind: ReasonKind,
    message: Option<Arc<str>>,
}

impl Reason {
    /// A reason of the given kind with no message.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{Reason, ReasonKind};
    ///
    /// let reason = Reason::new(ReasonKind::Superseded);
    /// assert_eq!(reason.kind(), ReasonKind::Superseded);
    /// assert!(reason.message().is_none());
    /// ```
    pub const fn new(kind: ReasonKind) -> Reason {
        Reason {
            kind,
            message: None,
        }
    }

    /// A reason of the given kind with a message.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{Reason, ReasonKind};
    ///
    /// let reason = Reason::with_message(ReasonKind::Signal, "SIGTERM");
    /// assert_eq!(reason.kind(), ReasonKind::Signal);
    /// assert_eq!(reason.message(), Some("SIGTERM"));
    /// ```
    pub fn with_message(kind: ReasonKind, message: impl Into<Cow<'static, str>>) -> Reason {
        let message: Arc<str> = match message.into() {
            Cow::Borrowed(text) => Arc::from(text),
            Cow::Owned(text) => Arc::from(text),
        };
        Reason {
            kind,
            message: Some(message),
        }
    }

    /// What kind of event this was.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{Reason, ReasonKind};
    ///
    /// assert_eq!(Reason::from("stop").kind(), ReasonKind::Manual);
    /// ```
    pub fn kind(&self) -> ReasonKind {
        self.kind
    }

    /// The message given with the trigger, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{Reason, ReasonKind};
    ///
    /// assert_eq!(Reason::from("stop").message(), Some("stop"));
    /// assert_eq!(Reason::new(ReasonKind::Manual).message(), None);
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl Default for Reason {
    /// A manual trigger without a message: what [`CancelToken::trigger`](crate::CancelToken::trigger)
    /// records.
    fn default() -> Reason {
        Reason::new(ReasonKind::Manual)
    }
}

impl From<ReasonKind> for Reason {
    fn from(kind: ReasonKind) -> Reason {
        Reason::new(kind)
    }
}

impl From<&str> for Reason {
    /// A manual reason with this message.
    fn from(message: &str) -> Reason {
        Reason {
            kind: ReasonKind::Manual,
            message: Some(Arc::from(message)),
        }
    }
}

impl From<String> for Reason {
    /// A manual reason with this message.
    fn from(message: String) -> Reason {
        Reason {
            kind: ReasonKind::Manual,
            message: Some(Arc::from(message)),
        }
    }
}

impl From<Cow<'static, str>> for Reason {
    /// A manual reason with this message.
    fn from(message: Cow<'static, str>) -> Reason {
        Reason::with_message(ReasonKind::Manual, message)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) => f.write_str(message),
            None => f.write_str(self.kind.description()),
        }
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Reason");
        s.field("kind", &self.kind);
        if let Some(message) = &self.message {
            s.field("message", &&**message);
        }
        s.finish()
    }
}
