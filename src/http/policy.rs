//! The server side of a deadline in request headers: [`DeadlinePolicy`] reads a request's
//! [`DeadlineHeaders`], caps them, decides what a bad header means ([`OnInvalid`]) and arms the
//! request's token.

use std::time::{Duration, Instant};

use http::header::HeaderMap;

use super::{DeadlineHeaders, HeaderError};
use crate::{CancelToken, Reason, ReasonKind};

/// What a server does with a deadline header it cannot read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnInvalid {
    /// The request is refused: [`DeadlinePolicy::apply`] returns the [`HeaderError`], which a
    /// handler answers with `400 Bad Request` ([`HeaderError::status`]).
    Reject,
    /// The header is ignored, as if it were absent: the request runs under the other
    /// header, if it can be read, and the server's cap.
    Ignore,
}

/// How a server turns a request's deadline headers into its token's deadline: which headers
/// to read, the most time any request may take (the cap), and what to do with a header it
/// cannot read.
///
/// The deadline is the earliest of the headers' timeouts and the cap, counted from when the
/// request is read; the token is triggered then with [`ReasonKind::Timeout`] and a message
/// that says which limit it was. A header can only shorten a request, never lengthen it past
/// the cap; with no cap, a request without a header has no deadline. Bad input (malformed,
/// negative, overlong, repeated) never panics and never grants more than the cap: with
/// [`OnInvalid::Reject`] (the default) it is a typed error, with [`OnInvalid::Ignore`] it is
/// skipped.
///
/// Use it in a handler run by [`scope`](super::scope), or give it to
/// [`ScopeLayer::deadline`](super::ScopeLayer::deadline) (feature `tower`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::http::{DeadlinePolicy, HeaderErrorKind};
/// use cancel_token::CancelToken;
///
/// let policy = DeadlinePolicy::new().max(Duration::from_secs(10));
/// let mut headers = http::HeaderMap::new();
/// headers.insert("grpc-timeout", "1H".parse().unwrap());
///
/// // The caller asks an hour: the server grants ten seconds.
/// let token = CancelToken::new();
/// let deadline = policy.apply(&headers, &token).unwrap().unwrap();
/// assert_eq!(token.deadline(), Some(deadline));
/// assert!(deadline <= std::time::Instant::now() + Duration::from_secs(10));
///
/// headers.insert("grpc-timeout", "-1S".parse().unwrap());
/// let token = CancelToken::new();
/// let err = policy.apply(&headers, &token).unwrap_err();
/// assert_eq!(err.kind(), HeaderErrorKind::Negative);
/// assert!(token.deadline().is_some(), "the cap holds even for a rejected request");
/// ```
#[derive(Clone, Debug)]
pub struct DeadlinePolicy {
    headers: DeadlineHeaders,
    max: Option<Duration>,
    on_invalid: OnInvalid,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl DeadlinePolicy {
    /// Reads [`DeadlineHeaders::new`]'s headers, with no cap, rejecting invalid ones.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::{DeadlinePolicy, OnInvalid};
    ///
    /// let policy = DeadlinePolicy::new();
    /// assert_eq!(policy.max_timeout(), None);
    /// assert_eq!(policy.invalid(), OnInvalid::Reject);
    /// ```
    pub fn new() -> Self {
        DeadlinePolicy {
            headers: DeadlineHeaders::new(),
            max: None,
            on_invalid: OnInvalid::Reject,
        }
    }

    /// Reads these headers instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::{DeadlineHeaders, DeadlinePolicy};
    ///
    /// let grpc_only = DeadlinePolicy::new().headers(DeadlineHeaders::new().millis(None));
    /// assert_eq!(grpc_only.deadline_headers().millis_name(), None);
    /// ```
    pub fn headers(mut self, headers: DeadlineHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// No request gets more than `max`, whatever its headers say or if it has none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::http::DeadlinePolicy;
    ///
    /// let policy = DeadlinePolicy::new().max(Duration::from_secs(30));
    /// assert_eq!(policy.timeout(&http::HeaderMap::new()), Ok(Some(Duration::from_secs(30))));
    /// ```
    pub fn max(mut self, max: Duration) -> Self {
        self.max = Some(max);
        self
    }

    /// What to do with a header that cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::{DeadlinePolicy, OnInvalid};
    ///
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("connect-timeout-ms", "soon".parse().unwrap());
    /// let lenient = DeadlinePolicy::new().on_invalid(OnInvalid::Ignore);
    /// assert_eq!(lenient.timeout(&headers), Ok(None));
    /// assert!(DeadlinePolicy::new().timeout(&headers).is_err());
    /// ```
    pub fn on_invalid(mut self, on_invalid: OnInvalid) -> Self {
        self.on_invalid = on_invalid;
        self
    }

    /// The headers read.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::{DeadlineHeaders, DeadlinePolicy};
    ///
    /// assert_eq!(DeadlinePolicy::new().deadline_headers(), &DeadlineHeaders::new());
    /// ```
    pub fn deadline_headers(&self) -> &DeadlineHeaders {
        &self.headers
    }

    /// The cap, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::http::DeadlinePolicy;
    ///
    /// let policy = DeadlinePolicy::new().max(Duration::from_secs(5));
    /// assert_eq!(policy.max_timeout(), Some(Duration::from_secs(5)));
    /// ```
    pub fn max_timeout(&self) -> Option<Duration> {
        self.max
    }

    /// What is done with a header that cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::{DeadlinePolicy, OnInvalid};
    ///
    /// let policy = DeadlinePolicy::new().on_invalid(OnInvalid::Ignore);
    /// assert_eq!(policy.invalid(), OnInvalid::Ignore);
    /// ```
    pub fn invalid(&self) -> OnInvalid {
        self.on_invalid
    }

    /// The time a request with these headers may take: the shortest of its headers and the
    /// cap, `None` for no limit.
    ///
    /// # Errors
    ///
    /// With [`OnInvalid::Reject`], the [`HeaderError`] of a header that cannot be read. With
    /// [`OnInvalid::Ignore`], never.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::http::DeadlinePolicy;
    ///
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("connect-timeout-ms", "250".parse().unwrap());
    /// let policy = DeadlinePolicy::new().max(Duration::from_secs(1));
    /// assert_eq!(policy.timeout(&headers), Ok(Some(Duration::from_millis(250))));
    /// ```
    pub fn timeout(&self, headers: &HeaderMap) -> Result<Option<Duration>, HeaderError> {
        self.limit(headers, Duration::ZERO)
            .map(|limit| limit.map(|limit| limit.timeout))
    }

    /// The time a request with these headers may take and which side set it, `None` for no
    /// limit: the caller's timeout less `offset` (down to zero), or the cap if that is
    /// shorter. The offset moves only the caller's deadline, never the cap (a gRPC server
    /// takes it off so that its deadline comes before the caller's own cut).
    ///
    /// # Errors
    ///
    /// As [`timeout`](Self::timeout).
    pub(crate) fn limit(
        &self,
        headers: &HeaderMap,
        offset: Duration,
    ) -> Result<Option<Limit>, HeaderError> {
        let asked = match self.on_invalid {
            OnInvalid::Reject => self.headers.read(headers)?,
            OnInvalid::Ignore => self.headers.read_valid(headers),
        };
        Ok(match (asked, self.max) {
            (Some(asked), Some(max)) if max < asked.saturating_sub(offset) => Some(Limit::cap(max)),
            (Some(asked), _) => Some(Limit {
                timeout: asked.saturating_sub(offset),
                set_by: SetBy::Caller { asked, offset },
            }),
            (None, Some(max)) => Some(Limit::cap(max)),
            (None, None) => None,
        })
    }

    /// Arms `token` with the deadline these headers and the cap give, counted from now, and
    /// returns the token's deadline after that (`None`: no limit).
    ///
    /// The token triggers with [`ReasonKind::Timeout`] and the message
    /// `"the caller's deadline of 250ms elapsed"` or `"the server's limit of 30s elapsed"`.
    /// As with [`CancelToken::trigger_at`], an earlier deadline the token already has is
    /// kept; a timeout too large for the clock is "never".
    ///
    /// # Errors
    ///
    /// With [`OnInvalid::Reject`], the [`HeaderError`] of a header that cannot be read; the
    /// token is still armed with the cap, so a request that runs anyway never gets more.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::DeadlinePolicy;
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("grpc-timeout", "20m".parse().unwrap());
    /// let token = CancelToken::named("request");
    /// DeadlinePolicy::new().apply(&headers, &token).unwrap();
    ///
    /// token.wait_blocking();
    /// let reason = token.reason().unwrap();
    /// assert_eq!(reason.kind(), ReasonKind::Timeout);
    /// assert_eq!(reason.message(), Some("the caller's deadline of 20ms elapsed"));
    /// ```
    pub fn apply(
        &self,
        headers: &HeaderMap,
        token: &CancelToken,
    ) -> Result<Option<Instant>, HeaderError> {
        let now = Instant::now();
        let limit = self.limit(headers, Duration::ZERO);
        // A rejected request is still armed with the cap.
        let armed = match &limit {
            Ok(limit) => *limit,
            Err(_) => self.max.map(Limit::cap),
        };
        if let Some(armed) = armed {
            // Too far off for the clock: never.
            if let Some(deadline) = now.checked_add(armed.timeout) {
                token.trigger_at_with(deadline, armed.reason());
            }
        }
        limit.map(|_| token.deadline())
    }
}

/// The time a request may take, counted from its arrival, and which side set it: what
/// [`DeadlinePolicy::limit`] decides.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    pub(crate) timeout: Duration,
    pub(crate) set_by: SetBy,
}

/// Which side set a request's [`Limit`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum SetBy {
    /// The caller's headers asked for `asked`; the server took `offset` off it.
    Caller { asked: Duration, offset: Duration },
    /// The server's cap.
    Cap,
}

impl Limit {
    fn cap(max: Duration) -> Limit {
        Limit {
            timeout: max,
            set_by: SetBy::Cap,
        }
    }

    /// What a token stopped by this limit says: `the caller's deadline of 250ms elapsed`,
    /// `the server's limit of 30s elapsed`.
    pub(crate) fn message(&self) -> String {
        match self.set_by {
            SetBy::Caller { asked, offset } if offset.is_zero() => {
                format!("the caller's deadline of {asked:?} elapsed")
            }
            SetBy::Caller { asked, offset } => format!(
                "the caller's deadline of {asked:?}, less the server's offset of {offset:?}, \
                 elapsed"
            ),
            SetBy::Cap => format!("the server's limit of {:?} elapsed", self.timeout),
        }
    }

    /// The reason a token stopped by this limit is triggered with.
    fn reason(&self) -> Reason {
        Reason::with_message(ReasonKind::Timeout, self.message())
    }
}
