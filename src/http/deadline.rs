//! The client side of a deadline that crosses a service boundary in request headers:
//! [`DeadlineHeaders`] names the headers, writes a token's remaining time into an outgoing
//! request, and reads it back ([`DeadlinePolicy`](super::DeadlinePolicy), in `policy.rs`,
//! decides what a server does with it).

use std::time::{Duration, Instant};

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::timeout_header::{
    encode_grpc_timeout, encode_timeout_ms, parse_grpc_timeout, parse_timeout_ms, HeaderError,
};
use crate::CancelToken;

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
    /// [`DeadlinePolicy`](super::DeadlinePolicy) decides whether a server rejects or ignores it.
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
    pub(super) fn read_valid(&self, headers: &HeaderMap) -> Option<Duration> {
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
