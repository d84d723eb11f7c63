//! A deadline that crosses a service boundary in request headers: [`DeadlineHeaders`] names
//! the headers and writes a token's remaining time into an outgoing request;
//! [`DeadlinePolicy`] reads it back on the server, capped, and arms the request's token.

use std::time::{Duration, Instant};

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::timeout_header::{
    encode_grpc_timeout, encode_timeout_ms, parse_grpc_timeout, parse_timeout_ms, HeaderError,
};
use crate::{CancelToken, Reason, ReasonKind};

/// The names of the headers a remaining time travels in: a `grpc-timeout`-style value and a
/// milliseconds value, each optional.
///
/// [`new`](Self::new) uses both: `grpc-timeout` (what gRPC servers and proxies read) and
/// `connect-timeout-ms` (Connect's milliseconds header, easy to read in any language). The
/// client side writes every configured header ([`insert`](Self::insert)); the server side
/// reads every configured header and takes the earliest ([`read`](Self::read)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::http::DeadlineHeaders;
/// use cancel_token::CancelToken;
///
/// let token = CancelToken::with_timeout(Duration::from_millis(1500));
/// let headers = DeadlineHeaders::new().header_map(&token);
/// // Rounded down: the callee never gets more time than is left.
/// let millis: u64 = headers["connect-timeout-ms"].to_str().unwrap().parse().unwrap();
/// assert!(millis <= 1500 && millis > 1000);
/// assert!(headers.contains_key("grpc-timeout"));
///
/// let read = DeadlineHeaders::new().read(&headers).unwrap().unwrap();
/// assert!(read <= Duration::from_millis(1500));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadlineHeaders {
    grpc: Option<HeaderName>,
    millis: Option<HeaderName>,
    margin: Duration,
}

/// The time [`DeadlineHeaders::new`] allows a request to reach its callee.
const MARGIN: Duration = Duration::from_millis(5);

impl Default for DeadlineHeaders {
    fn default() -> Self {
        Self::new()
    }
}

impl DeadlineHeaders {
    /// Both headers, with their usual names: `grpc-timeout` and `connect-timeout-ms`, and a
    /// [`margin`](Self::margin) of 5 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::DeadlineHeaders;
    ///
    /// let headers = DeadlineHeaders::new();
    /// assert_eq!(headers.grpc_timeout_name().unwrap(), "grpc-timeout");
    /// assert_eq!(headers.millis_name().unwrap(), "connect-timeout-ms");
    /// ```
    pub fn new() -> Self {
        DeadlineHeaders {
            grpc: Some(HeaderName::from_static("grpc-timeout")),
            millis: Some(HeaderName::from_static("connect-timeout-ms")),
            margin: MARGIN,
        }
    }

    /// The time allowed for a request to reach its callee, taken off the time left before a
    /// token's deadline when it is written (5 ms unless set).
    ///
    /// The callee counts its timeout from when it reads the request, so without a margin it
    /// would end later than the caller by the time the request took to get there (connecting,
    /// writing, scheduling). With it, the callee's deadline is no later than the caller's as
    /// long as the request arrives within the margin; across a slow network, raise it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::http::DeadlineHeaders;
    /// use cancel_token::CancelToken;
    ///
    /// let headers = DeadlineHeaders::new().margin(Duration::from_millis(50));
    /// assert_eq!(headers.margin_value(), Duration::from_millis(50));
    /// let token = CancelToken::with_timeout(Duration::from_secs(1));
    /// assert!(headers.remaining(&token).unwrap() <= Duration::from_millis(950));
    /// ```
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The [`margin`](Self::margin).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::http::DeadlineHeaders;
    ///
    /// assert_eq!(DeadlineHeaders::new().margin_value(), Duration::from_millis(5));
    /// ```
    pub fn margin_value(&self) -> Duration {
        self.margin
    }

    /// The timeout to send for `token` now: the time left before its deadline less the
    /// [`margin`](Self::margin), zero if that has passed; `None` if it has no deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::http::DeadlineHeaders;
    /// use cancel_token::CancelToken;
    ///
    /// let headers = DeadlineHeaders::new();
    /// let token = CancelToken::with_timeout(Duration::from_millis(3));
    /// assert_eq!(headers.remaining(&token), Some(Duration::ZERO), "less than the margin left");
    /// assert_eq!(headers.remaining(&CancelToken::new()), None);
    /// ```
    pub fn remaining(&self, token: &CancelToken) -> Option<Duration> {
        let deadline = token.deadline()?;
        let left = deadline.saturating_duration_since(Instant::now());
        Some(left.saturating_sub(self.margin))
    }

    /// Names the header in `grpc-timeout` format (digits and a unit), or, with `None`, does
    /// without it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::DeadlineHeaders;
    ///
    /// let headers = DeadlineHeaders::new().grpc_timeout(None);
    /// assert_eq!(headers.grpc_timeout_name(), None);
    /// ```
    pub fn grpc_timeout(mut self, name: Option<HeaderName>) -> Self {
        self.grpc = name;
        self
    }

    /// Names the header in milliseconds (e.g. `x-request-timeout-ms`), or, with `None`, does
    /// without it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::DeadlineHeaders;
    /// use http::HeaderName;
    ///
    /// let headers = DeadlineHeaders::new().millis(Some(HeaderName::from_static("x-timeout-ms")));
    /// assert_eq!(headers.millis_name().unwrap(), "x-timeout-ms");
    /// ```
    pub fn millis(mut self, name: Option<HeaderName>) -> Self {
        self.millis = name;
        self
    }

    /// The name of the `grpc-timeout`-format header, if one is used.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::DeadlineHeaders;
    ///
    /// assert_eq!(DeadlineHeaders::new().grpc_timeout_name().unwrap(), "grpc-timeout");
    /// ```
    pub fn grpc_timeout_name(&self) -> Option<&HeaderName> {
        self.grpc.as_ref()
    }

    /// The name of the milliseconds header, if one is used.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::DeadlineHeaders;
    ///
    /// assert_eq!(DeadlineHeaders::new().millis(None).millis_name(), None);
    /// ```
    pub fn millis_name(&self) -> Option<&HeaderName> {
        self.millis.as_ref()
    }

    /// Writes the time left before `token`'s deadline, less the [`margin`](Self::margin),
    /// into `headers` and returns it; a token with no deadline writes nothing and returns
    /// `None`.
    ///
    /// The time is measured now and rounded down, so call this as late as possible: when the
    /// request is built (a [`send`](super::send) closure runs at the first poll) or sent
    /// ([`PropagateDeadlineLayer`](super::PropagateDeadlineLayer)). A header already in
    /// `headers` that asks for less time is kept: the earliest deadline wins, as it does
    /// between tokens. A deadline that has passed writes zero.
    ///
    /// # Examples
    ///
    /// With reqwest: `send(&token, || client.get(url).headers(propagate.header_map(&token)).send())`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::http::DeadlineHeaders;
    /// use cancel_token::CancelToken;
    ///
    /// let mut request = http::Request::new(());
    /// let token = CancelToken::with_timeout(Duration::from_secs(30));
    /// let left = DeadlineHeaders::new().insert(&token, request.headers_mut()).unwrap();
    /// assert!(left <= Duration::from_secs(30));
    ///
    /// assert_eq!(DeadlineHeaders::new().insert(&CancelToken::new(), request.headers_mut()), None);
    /// ```
    pub fn insert(&self, token: &CancelToken, headers: &mut HeaderMap) -> Option<Duration> {
        let left = self.remaining(token)?;
        Some(self.insert_timeout(left, headers))
    }

    /// Writes `timeout` into `headers` as it is (no margin is taken off), unless a header
    /// already there asks for less; returns the timeout the headers now carry.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::http::DeadlineHeaders;
    ///
    /// let mut headers = http::HeaderMap::new();
    /// let propagate = DeadlineHeaders::new();
    /// propagate.insert_timeout(Duration::from_millis(300), &mut headers);
    /// assert_eq!(headers["grpc-timeout"], "300000u");
    /// assert_eq!(headers["connect-timeout-ms"], "300");
    ///
    /// // More time than is already asked for changes nothing.
    /// assert_eq!(propagate.insert_timeout(Duration::from_secs(5), &mut headers), Duration::from_millis(300));
    /// assert_eq!(headers["connect-timeout-ms"], "300");
    /// ```
    pub fn insert_timeout(&self, timeout: Duration, headers: &mut HeaderMap) -> Duration {
        // Invalid headers already present are replaced, not honoured.
        let timeout = match self.read(headers) {
            Ok(Some(asked)) => asked.min(timeout),
            _ => timeout,
        };
        if let Some(name) = &self.grpc {
            headers.insert(name.clone(), encode_grpc_timeout(timeout));
        }
        if let Some(name) = &self.millis {
            headers.insert(name.clone(), encode_timeout_ms(timeout));
        }
        timeout
    }

    /// The headers [`insert`](Self::insert) would write, as a map of their own: for clients
    /// that take extra headers as a map (reqwest's `RequestBuilder::headers`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::http::DeadlineHeaders;
    /// use cancel_token::CancelToken;
    ///
    /// let headers = DeadlineHeaders::new().header_map(&CancelToken::with_timeout(Duration::from_secs(2)));
    /// assert_eq!(headers.len(), 2);
    /// assert!(DeadlineHeaders::new().header_map(&CancelToken::new()).is_empty());
    /// ```
    pub fn header_map(&self, token: &CancelToken) -> HeaderMap {
        let mut headers = HeaderMap::new();
        self.insert(token, &mut headers);
        headers
    }

    /// Reads the timeout `headers` carry: the shortest of the configured headers present,
    /// `None` if none is.
    ///
    /// # Errors
    ///
    /// A [`HeaderError`] for the first configured header that is malformed or repeated;
    /// [`DeadlinePolicy`] decides whether a server rejects or ignores it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::http::{DeadlineHeaders, HeaderErrorKind};
    ///
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("grpc-timeout", "2S".parse().unwrap());
    /// headers.insert("connect-timeout-ms", "500".parse().unwrap());
    /// assert_eq!(DeadlineHeaders::new().read(&headers), Ok(Some(Duration::from_millis(500))));
    ///
    /// headers.insert("connect-timeout-ms", "half a second".parse().unwrap());
    /// let err = DeadlineHeaders::new().read(&headers).unwrap_err();
    /// assert_eq!(err.kind(), HeaderErrorKind::NotADigit);
    /// assert_eq!(err.header(), "connect-timeout-ms");
    /// ```
    pub fn read(&self, headers: &HeaderMap) -> Result<Option<Duration>, HeaderError> {
        let mut shortest: Option<Duration> = None;
        for reading in self.readings(headers) {
            let timeout = reading?;
            shortest = Some(shortest.map_or(timeout, |before| before.min(timeout)));
        }
        Ok(shortest)
    }

    /// The shortest timeout of the configured headers that can be read, skipping the others.
    fn read_valid(&self, headers: &HeaderMap) -> Option<Duration> {
        self.readings(headers).filter_map(Result::ok).min()
    }

    /// One reading per configured header present in `headers`.
    fn readings<'a>(
        &'a self,
        headers: &'a HeaderMap,
    ) -> impl Iterator<Item = Result<Duration, HeaderError>> + 'a {
        let grpc = self
            .grpc
            .as_ref()
            .map(|name| (name, parse_grpc_timeout as Parse));
        let millis = self
            .millis
            .as_ref()
            .map(|name| (name, parse_timeout_ms as Parse));
        grpc.into_iter()
            .chain(millis)
            .filter_map(|(name, parse)| read_one(headers, name, parse))
    }
}

type Parse = fn(&HeaderValue) -> Result<Duration, HeaderError>;

fn read_one(
    headers: &HeaderMap,
    name: &HeaderName,
    parse: Parse,
) -> Option<Result<Duration, HeaderError>> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    Some(match values.next() {
        Some(second) => Err(HeaderError::repeated(name, second)),
        None => parse(value).map_err(|err| err.named(name)),
    })
}

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
        self.limit(headers)
            .map(|limit| limit.map(|(timeout, _)| timeout))
    }

    /// The timeout and which limit it is, or the error to reject with.
    fn limit(&self, headers: &HeaderMap) -> Result<Option<(Duration, Limit)>, HeaderError> {
        let asked = match self.on_invalid {
            OnInvalid::Reject => self.headers.read(headers)?,
            OnInvalid::Ignore => self.headers.read_valid(headers),
        };
        Ok(match (asked, self.max) {
            (Some(asked), Some(max)) if max < asked => Some((max, Limit::Cap)),
            (Some(asked), _) => Some((asked, Limit::Caller)),
            (None, Some(max)) => Some((max, Limit::Cap)),
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
        match self.limit(headers) {
            Ok(limit) => {
                if let Some((timeout, limit)) = limit {
                    arm(token, now, timeout, limit);
                }
                Ok(token.deadline())
            }
            Err(err) => {
                if let Some(max) = self.max {
                    arm(token, now, max, Limit::Cap);
                }
                Err(err)
            }
        }
    }
}

/// Which limit a request's deadline comes from, for its reason.
#[derive(Clone, Copy)]
enum Limit {
    Caller,
    Cap,
}

fn arm(token: &CancelToken, now: Instant, timeout: Duration, limit: Limit) {
    // Too far off for the clock: never.
    let Some(deadline) = now.checked_add(timeout) else {
        return;
    };
    let message = match limit {
        Limit::Caller => format!("the caller's deadline of {timeout:?} elapsed"),
        Limit::Cap => format!("the server's limit of {timeout:?} elapsed"),
    };
    token.trigger_at_with(deadline, Reason::with_message(ReasonKind::Timeout, message));
}
