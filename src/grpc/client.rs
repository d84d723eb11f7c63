//! The caller's side of a deadline: [`request`] and [`set_deadline`] write a token's remaining
//! time into a call's `grpc-timeout`, and [`DeadlineInterceptor`] does it for every call of a
//! tonic client. (The tower layer that also cuts calls on a trigger is in `client_layer.rs`.)

use std::time::Duration;

use http::HeaderMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::http::DeadlineHeaders;
use crate::CancelToken;

/// The headers a gRPC call's deadline travels in: `grpc-timeout` only, less
/// [`DeadlineHeaders`]' margin of 5 ms for the call's trip to the callee.
pub(super) fn grpc_headers() -> DeadlineHeaders {
    DeadlineHeaders::new().millis(None)
}

/// What [`write_timeout`] left in the headers.
#[derive(Clone, Copy, Debug)]
pub(super) struct Written {
    /// The timeout the headers carry.
    pub(super) timeout: Option<Duration>,
    /// Whether that is the token's: `false` when the headers already had a shorter one, or
    /// the token has no deadline.
    pub(super) from_token: bool,
}

/// Writes `token`'s remaining time, less the margin, into `headers` as `propagate` says,
/// unless a valid header there already asks for less.
pub(super) fn write_timeout(
    propagate: &DeadlineHeaders,
    token: &CancelToken,
    headers: &mut HeaderMap,
) -> Written {
    let Some(own) = propagate.remaining(token) else {
        return Written {
            timeout: propagate.read(headers).ok().flatten(),
            from_token: false,
        };
    };
    let timeout = propagate.insert_timeout(own, headers);
    Written {
        timeout: Some(timeout),
        from_token: timeout == own,
    }
}

/// A tonic request for `message` that carries `token`'s deadline and the token itself.
///
/// The request's `grpc-timeout` is the token's remaining time ([`CancelToken::deadline`]
/// minus now), less a margin of 5 ms for the trip to the callee and rounded down, so the
/// callee's deadline falls before the caller's (as [`DeadlineHeaders::new`] does for HTTP);
/// a token without a deadline sends no header. A clone of the token goes into the request's
/// extensions, where [`ClientLayer`](super::ClientLayer) finds it to cut the call when the
/// token is triggered for any other reason (extensions never leave the process).
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
/// assert!(timeout.to_str().unwrap().ends_with('u'), "{timeout:?}"); // e.g. 294987u
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
/// The timeout is the time left before the token's deadline less a margin of 5 ms for the
/// trip (see [`request`]), rounded down to what the header can say. A valid `grpc-timeout`
/// already in the request that asks for less is kept (the earlier deadline wins); an invalid
/// one is replaced. A token without a deadline leaves the request as it is. `None` means the
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
/// assert!(sent < Duration::from_secs(10) && sent > Duration::from_secs(9));
///
/// assert_eq!(grpc::set_deadline(&CancelToken::new(), &mut tonic::Request::new(())), None);
/// ```
pub fn set_deadline<T>(token: &CancelToken, request: &mut Request<T>) -> Option<Duration> {
    write_timeout(&grpc_headers(), token, request.metadata_mut().as_mut()).timeout
}

/// A tonic [`Interceptor`] that sends a token's remaining time as every call's `grpc-timeout`.
///
/// Each call gets the earlier of its token's deadline and that of a `CancelToken` in the
/// call's extensions (put there by [`request`]), as [`set_deadline`] writes it, or as the
/// [`headers`](DeadlineInterceptor::headers) given say. A call made
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
    propagate: DeadlineHeaders,
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
        DeadlineInterceptor {
            token,
            propagate: grpc_headers(),
        }
    }

    /// Writes the deadline as `propagate` says instead: another margin, or
    /// `connect-timeout-ms` too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::grpc::DeadlineInterceptor;
    /// use cancel_token::http::DeadlineHeaders;
    /// use cancel_token::CancelToken;
    /// use tonic::service::Interceptor;
    ///
    /// let token = CancelToken::with_timeout(Duration::from_secs(1));
    /// let far = DeadlineHeaders::new().millis(None).margin(Duration::from_millis(100));
    /// let mut interceptor = DeadlineInterceptor::new(token).headers(far);
    /// let request = interceptor.call(tonic::Request::new(())).unwrap();
    /// let value = request.metadata().get("grpc-timeout").unwrap().to_str().unwrap();
    /// let micros: u64 = value.strip_suffix('u').unwrap().parse().unwrap();
    /// assert!(micros <= 900_000, "{value}");
    /// ```
    pub fn headers(mut self, propagate: DeadlineHeaders) -> Self {
        self.propagate = propagate;
        self
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
        write_timeout(&self.propagate, &self.token, headers);
        if let Some(extension) = &extension {
            write_timeout(&self.propagate, extension, headers);
        }
        Ok(request)
    }
}
