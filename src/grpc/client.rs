//! The caller's side of a deadline: [`request`] and [`set_deadline`] write a token's remaining
//! time into a call's `grpc-timeout`, and [`DeadlineInterceptor`] does it for every call of a
//! tonic client. (The tower layer that also cuts calls on a trigger is in `client_layer.rs`.)

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use super::wire::{encode_grpc_timeout, parse_grpc_timeout};
use crate::CancelToken;

/// The header gRPC carries a call's timeout in.
pub(super) const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// What [`write_timeout`] left in the headers.
#[derive(Clone, Copy, Debug)]
pub(super) struct Written {
    /// The timeout the headers carry (as the callee will read it: the encoding rounds down).
    pub(super) timeout: Option<Duration>,
    /// Whether that is the token's: `false` when the headers already had a shorter one.
    pub(super) from_token: bool,
}

/// Writes `token`'s remaining time into `headers` as `grpc-timeout`, unless a valid header
/// that is no longer is already there.
pub(super) fn write_timeout(token: &CancelToken, headers: &mut HeaderMap) -> Written {
    let existing = headers
        .get(GRPC_TIMEOUT)
        .and_then(|value| parse_grpc_timeout(value).ok());
    let Some(deadline) = token.deadline() else {
        return Written {
            timeout: existing,
            from_token: false,
        };
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let value = encode_grpc_timeout(remaining);
    let sent = parse_grpc_timeout(&value).unwrap_or(remaining);
    match existing {
        Some(existing) if existing <= sent => Written {
            timeout: Some(existing),
            from_token: false,
        },
        _ => {
            headers.insert(GRPC_TIMEOUT, value);
            Written {
                timeout: Some(sent),
                from_token: true,
            }
        }
    }
}

/// A tonic request for `message` that carries `token`'s deadline and the token itself.
///
/// The request's `grpc-timeout` is the token's remaining time ([`CancelToken::deadline`]
/// minus now, rounded down to what the header can say), so the callee stops when the caller
/// would give up; a token without a deadline sends no header. A clone of the token goes into
/// the request's extensions, where [`ClientLayer`](super::ClientLayer) finds it to cut the
/// call when the token is triggered for any other reason (extensions never leave the
/// process).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::{grpc, CancelToken};
///
/// let token = CancelToken::with_timeout(Duration::from_millis(300));
/// let request = grpc::request(&token, "report 7");
/// let timeout = request.metadata().get("grpc-timeout").unwrap();
/// assert!(timeout.to_str().unwrap().ends_with('u'), "{timeout:?}"); // e.g. 299987u
/// assert_eq!(request.extensions().get::<CancelToken>(), Some(&token));
///
/// let no_deadline = grpc::request(&CancelToken::new(), ());
/// assert!(no_deadline.metadata().get("grpc-timeout").is_none());
/// ```
pub fn request<T>(token: &CancelToken, message: T) -> Request<T> {
    let mut request = Request::new(message);
    set_deadline(token, &mut request);
    request.extensions_mut().insert(token.clone());
    request
}

/// Writes `token`'s remaining time into `request`'s `grpc-timeout`, and returns the timeout
/// the request now carries.
///
/// A valid `grpc-timeout` already in the request that is not longer than the token's is kept
/// (the earlier deadline wins); an invalid one is replaced. A token without a deadline leaves
/// the request as it is. The timeout is rounded down to what the header can say (eight
/// digits and a unit), so the callee never waits longer than the caller. `None` means the
/// request carries no valid timeout.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::{grpc, CancelToken};
///
/// let token = CancelToken::with_timeout(Duration::from_secs(10));
/// let mut request = tonic::Request::new(());
/// request.set_timeout(Duration::from_millis(50)); // tonic's own setter: shorter, kept
/// assert_eq!(grpc::set_deadline(&token, &mut request), Some(Duration::from_millis(50)));
///
/// let mut request = tonic::Request::new(());
/// let sent = grpc::set_deadline(&token, &mut request).unwrap();
/// assert!(sent <= Duration::from_secs(10) && sent > Duration::from_secs(9));
///
/// assert_eq!(grpc::set_deadline(&CancelToken::new(), &mut tonic::Request::new(())), None);
/// ```
pub fn set_deadline<T>(token: &CancelToken, request: &mut Request<T>) -> Option<Duration> {
    write_timeout(token, request.metadata_mut().as_mut()).timeout
}

/// A tonic [`Interceptor`] that sends a token's remaining time as every call's `grpc-timeout`.
///
/// Each call gets the earlier of its token's deadline and that of a `CancelToken` in the
/// call's extensions (put there by [`request`]), as [`set_deadline`] writes it. A call made
/// when either token is already triggered is refused with the token's status
/// (`DEADLINE_EXCEEDED` after a timeout, `CANCELLED` otherwise) and never sent.
///
/// An interceptor only sees a call before it is sent, so a trigger while the call is in
/// flight does not cut it (the callee still stops at the deadline it was sent). To cut calls
/// in flight as well, wrap the channel in a [`ClientLayer`](super::ClientLayer) instead.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::grpc::DeadlineInterceptor;
/// use cancel_token::CancelToken;
/// use tonic::service::Interceptor;
///
/// let batch = CancelToken::with_timeout(Duration::from_secs(30));
/// // With a generated client: `ReportsClient::with_interceptor(channel, interceptor)`.
/// let mut interceptor = DeadlineInterceptor::new(batch.clone());
/// let request = interceptor.call(tonic::Request::new(())).unwrap();
/// assert!(request.metadata().get("grpc-timeout").is_some());
///
/// batch.trigger_with("batch aborted");
/// let status = interceptor.call(tonic::Request::new(())).unwrap_err();
/// assert_eq!(status.code(), tonic::Code::Cancelled);
/// assert_eq!(status.message(), "cancellation requested: batch aborted");
/// ```
#[derive(Clone, Debug)]
pub struct DeadlineInterceptor {
    token: CancelToken,
}

impl DeadlineInterceptor {
    /// Sends `token`'s remaining time with every call.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::grpc::DeadlineInterceptor;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::named("batch");
    /// assert_eq!(DeadlineInterceptor::new(token.clone()).token(), &token);
    /// ```
    pub fn new(token: CancelToken) -> Self {
        DeadlineInterceptor { token }
    }

    /// The token whose deadline every call carries.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::grpc::DeadlineInterceptor;
    /// use cancel_token::CancelToken;
    ///
    /// let interceptor = DeadlineInterceptor::new(CancelToken::new());
    /// assert!(!interceptor.token().is_triggered());
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.token
    }
}

impl Interceptor for DeadlineInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        self.token.raise_if_triggered()?;
        let extension = request.extensions().get::<CancelToken>().cloned();
        if let Some(extension) = &extension {
            extension.raise_if_triggered()?;
        }
        let headers = request.metadata_mut().as_mut();
        write_timeout(&self.token, headers);
        if let Some(extension) = &extension {
            write_timeout(extension, headers);
        }
        Ok(request)
    }
}
