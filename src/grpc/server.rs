//! [`ServerLayer`]: a token per call on a tonic server, triggered by the caller's deadline
//! (`grpc-timeout`), by the caller going away, or by the server's token; and [`call_token`],
//! which hands it to the service method.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::HeaderMap;
use http_body::Body;
use tonic::{Request, Status};
use tower_layer::Layer;
use tower_service::Service;

use super::call::{ServerBody, ServerFuture};
use crate::http::{
    parse_grpc_timeout, parse_timeout_ms, DeadlineHeaders, DeadlinePolicy, HeaderError,
    ScopeResponse,
};
use crate::{CancelToken, Reason, ReasonKind};

/// The token of a call served under a [`ServerLayer`], for the service method.
///
/// `None` if the call did not come through a `ServerLayer` (or a layer that put a
/// `CancelToken` in its extensions).
///
/// # Examples
///
/// ```
/// use cancel_token::{grpc, CancelToken};
///
/// // In a service method: `let token = grpc::call_token(&request).unwrap_or_default();`
/// let mut request = tonic::Request::new("report 7");
/// assert!(grpc::call_token(&request).is_none());
/// request.extensions_mut().insert(CancelToken::named("call"));
/// assert_eq!(grpc::call_token(&request).unwrap().name(), Some("call"));
/// ```
pub fn call_token<T>(request: &Request<T>) -> Option<CancelToken> {
    request.extensions().get::<CancelToken>().cloned()
}

/// When a call's token triggers itself, and with what reason.
#[derive(Clone, Debug)]
pub(super) struct Deadline {
    pub(super) at: Instant,
    pub(super) reason: Reason,
}

/// A tower layer for a tonic server that gives every call a token of its own, reachable from
/// the service method with [`call_token`].
///
/// Each call's token (named `call`) is a child of the layer's server token, so triggering
/// the server token (a [`Shutdown`](crate::Shutdown)'s hard token, say) triggers every call in
/// flight. It is triggered
///
/// - with [`ReasonKind::Timeout`] when the caller's deadline elapses: the call's
///   `grpc-timeout`, counted from when the call arrived, capped by the server's limit if its
///   [`DeadlinePolicy`] has one ([`deadline`](ServerLayer::deadline)); the message names it,
///   e.g. `the caller's deadline of 250ms elapsed (grpc-timeout: 250m)`;
/// - with [`ReasonKind::Dropped`] when the caller goes away: the server drops the call's
///   response future before it is ready, or a streaming response's body before its end.
///   A caller that goes away at or after the call's deadline counts as the deadline.
///
/// A triggered call is also stopped: the service method's future is dropped and the call is
/// answered with the token's status (`DEADLINE_EXCEEDED` for a timeout, `CANCELLED` with the
/// reason otherwise), and a response that streams is ended with that status in its trailers.
/// A call that completes, its stream included, leaves its token alone.
///
/// A `grpc-timeout` that cannot be read (malformed, repeated) is answered with
/// `INVALID_ARGUMENT`, naming the problem, without calling the service; with
/// [`OnInvalid::Ignore`](crate::http::OnInvalid::Ignore) in the policy, the call runs as if it
/// had sent none (only the server's cap applies).
///
/// The caller's deadline reaches the server as a timeout, counted from the call's arrival.
/// This crate's clients take a margin of 5 ms off it for the trip, but tonic's channel times
/// the `grpc-timeout` it sends and resets the call when it elapses, at about the moment the
/// server's deadline falls: a server that sees that reset just before its deadline reports
/// [`ReasonKind::Dropped`]. [`deadline_offset`](Self::deadline_offset) moves the server's
/// deadline earlier, so that it comes first.
///
/// ```text
/// Server::builder()
///     .layer(ServerLayer::new(shutdown.hard().clone())
///         .deadline(ServerLayer::policy().max(Duration::from_secs(30))))
///     .add_service(ReportsServer::new(service))
///     .serve(addr)
///     .await?;
/// ```
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use tower_layer::Layer;
/// use tower_service::Service;
/// use cancel_token::grpc::ServerLayer;
/// use cancel_token::CancelToken;
///
/// # futures_lite::future::block_on(async {
/// let server = CancelToken::named("server");
/// let (tx, rx) = std::sync::mpsc::channel();
/// // A stand-in for tonic's router.
/// let router = tower::service_fn(move |request: http::Request<()>| {
///     tx.send(request.extensions().get::<CancelToken>().cloned().unwrap()).unwrap();
///     async { Ok::<_, Infallible>(http::Response::new(tonic::body::Body::empty())) }
/// });
/// let mut service = ServerLayer::new(server.clone()).layer(router);
///
/// let mut request = http::Request::new(());
/// request.headers_mut().insert("grpc-timeout", http::HeaderValue::from_static("250m"));
/// service.call(request).await.unwrap();
/// let token = rx.recv().unwrap();
/// assert_eq!(token.name(), Some("call"));
/// assert!(token.deadline().is_some());
/// assert!(!token.is_triggered(), "the call completed");
///
/// let mut request = http::Request::new(());
/// request.headers_mut().insert("grpc-timeout", http::HeaderValue::from_static("soon"));
/// let response = service.call(request).await.unwrap();
/// assert_eq!(response.headers()["grpc-status"], "3"); // INVALID_ARGUMENT
/// assert!(rx.try_recv().is_err(), "the service was not called");
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ServerLayer {
    server: CancelToken,
    policy: DeadlinePolicy,
    deadline_offset: Duration,
}

impl ServerLayer {
    /// Gives every call a child of `server`, with the caller's deadline as
    /// [`ServerLayer::policy`] reads it: no cap, no offset, and unreadable `grpc-timeout`s
    /// rejected.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::grpc::ServerLayer;
    /// use cancel_token::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(5));
    /// let layer = ServerLayer::new(shutdown.hard().clone());
    /// assert_eq!(layer.server(), shutdown.hard());
    /// ```
    pub fn new(server: CancelToken) -> Self {
        ServerLayer {
            server,
            policy: ServerLayer::policy(),
            deadline_offset: Duration::ZERO,
        }
    }

    /// The policy [`new`](Self::new) starts with, to build on: it reads `grpc-timeout` only
    /// (not `connect-timeout-ms`, which [`DeadlinePolicy::new`] reads too), has no cap and
    /// rejects a header it cannot read.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::grpc::ServerLayer;
    /// use cancel_token::http::OnInvalid;
    ///
    /// let policy = ServerLayer::policy()
    ///     .max(Duration::from_secs(30))
    ///     .on_invalid(OnInvalid::Ignore);
    /// assert_eq!(policy.deadline_headers().millis_name(), None);
    /// assert_eq!(policy.max_timeout(), Some(Duration::from_secs(30)));
    /// ```
    pub fn policy() -> DeadlinePolicy {
        DeadlinePolicy::new().headers(DeadlineHeaders::new().millis(None))
    }

    /// Reads each call's deadline as `policy` says: its cap (`max`), what it does with a
    /// header it cannot read (`on_invalid`), and the headers it reads.
    ///
    /// A call stopped by the cap is triggered with [`ReasonKind::Timeout`] and a message that
    /// names the cap (`the server's limit of 30s elapsed`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::grpc::ServerLayer;
    /// use cancel_token::CancelToken;
    ///
    /// let layer = ServerLayer::new(CancelToken::new())
    ///     .deadline(ServerLayer::policy().max(Duration::from_secs(30)));
    /// assert_eq!(layer.deadline_policy().max_timeout(), Some(Duration::from_secs(30)));
    /// ```
    pub fn deadline(mut self, policy: DeadlinePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The policy calls' deadlines are read with.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::grpc::ServerLayer;
    /// use cancel_token::http::OnInvalid;
    /// use cancel_token::CancelToken;
    ///
    /// let layer = ServerLayer::new(CancelToken::new());
    /// assert_eq!(layer.deadline_policy().invalid(), OnInvalid::Reject);
    /// ```
    pub fn deadline_policy(&self) -> &DeadlinePolicy {
        &self.policy
    }

    /// Takes `offset` off every caller's timeout (down to zero), so that the server's
    /// deadline comes before the caller's own cut (tonic's channel resets a call when the
    /// `grpc-timeout` it sent elapses): the call then ends as a timeout on both sides. The
    /// server's cap is not affected.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::grpc::ServerLayer;
    /// use cancel_token::CancelToken;
    ///
    /// let layer = ServerLayer::new(CancelToken::new()).deadline_offset(Duration::from_millis(5));
    /// # drop(layer);
    /// ```
    pub fn deadline_offset(mut self, offset: Duration) -> Self {
        self.deadline_offset = offset;
        self
    }

    /// The server token every call's token is a child of.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::grpc::ServerLayer;
    /// use cancel_token::CancelToken;
    ///
    /// let server = CancelToken::named("server");
    /// assert_eq!(ServerLayer::new(server.clone()).server(), &server);
    /// ```
    pub fn server(&self) -> &CancelToken {
        &self.server
    }

    /// The deadline of a call that arrived at `now` with `headers`, or the error to answer
    /// it with.
    fn call_deadline(
        &self,
        headers: &HeaderMap,
        now: Instant,
    ) -> Result<Option<Deadline>, HeaderError> {
        let Some(limit) = self.policy.limit(headers, self.deadline_offset)? else {
            return Ok(None);
        };
        let mut message = limit.message();
        let configured = self.policy.deadline_headers();
        // The headers as they came, for whoever reads the reason: only values that parse
        // (short by their format), never a bad one the policy ignored, whose bytes go back to
        // the caller in the status message.
        type Parse = fn(&http::HeaderValue) -> Result<Duration, HeaderError>;
        let formats: [(Option<&http::HeaderName>, Parse); 2] = [
            (configured.grpc_timeout_name(), parse_grpc_timeout),
            (configured.millis_name(), parse_timeout_ms),
        ];
        let shown: Vec<String> = formats
            .into_iter()
            .filter_map(|(name, parse)| {
                let name = name?;
                let value = headers.get(name)?;
                parse(value).ok()?;
                Some(format!("{name}: {}", value.to_str().ok()?))
            })
            .collect();
        if !shown.is_empty() {
            message = format!("{message} ({})", shown.join(", "));
        }
        // A timeout too far off for the clock: never.
        Ok(now.checked_add(limit.timeout).map(|at| Deadline {
            at,
            reason: Reason::with_message(ReasonKind::Timeout, message),
        }))
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> ServerService<S> {
        ServerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`ServerLayer`]: wraps a tonic router (or any gRPC service).
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use tower_layer::Layer;
/// use cancel_token::grpc::{ServerLayer, ServerService};
/// use cancel_token::CancelToken;
///
/// let router = tower::service_fn(|_request: http::Request<()>| async {
///     Ok::<_, Infallible>(http::Response::new(tonic::body::Body::empty()))
/// });
/// let service: ServerService<_> = ServerLayer::new(CancelToken::new()).layer(router);
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct ServerService<S> {
    inner: S,
    layer: ServerLayer,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ServerService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Body + Default,
{
    type Response = http::Response<ServerBody<ResBody>>;
    type Error = S::Error;
    type Future = ServerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let deadline = match self.layer.call_deadline(request.headers(), Instant::now()) {
            Ok(deadline) => deadline,
            // Answered unserved; `poll_ready`'s reservation is released as tower allows.
            Err(err) => return ServerFuture::answer(Status::invalid_argument(err.to_string())),
        };
        let token = match request.extensions().get::<CancelToken>() {
            // Named like any other call's token, and triggered by either.
            Some(outer) => CancelToken::any([&self.layer.server, outer]).child_named("call"),
            None => self.layer.server.child_named("call"),
        };
        if let Some(deadline) = &deadline {
            token.trigger_at_with(deadline.at, deadline.reason.clone());
        }
        if let Err(cancelled) = token.raise_if_triggered() {
            return ServerFuture::answer(cancelled.into());
        }
        request.extensions_mut().insert(token.clone());
        let call = ScopeResponse::new(token.clone(), self.inner.call(request), true);
        ServerFuture::running(token, deadline, call)
    }
}
