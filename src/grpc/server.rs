//! [`ServerLayer`]: a token per call on a tonic server, triggered by the caller's deadline
//! (`grpc-timeout`), by the caller going away, or by the server's token; and [`call_token`],
//! which hands it to the service method.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::HeaderValue;
use http_body::Body;
use tonic::{Request, Status};
use tower_layer::Layer;
use tower_service::Service;

use super::call::{ServerBody, ServerFuture};
use super::client::GRPC_TIMEOUT;
use super::wire::parse_grpc_timeout;
use crate::http::ScopeResponse;
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
///   `grpc-timeout`, counted from when the call arrived, capped by the server's
///   [`max_timeout`](ServerLayer::max_timeout); the message names it, e.g. `the caller's
///   deadline elapsed (grpc-timeout: 250m)`;
/// - with [`ReasonKind::Dropped`] when the caller goes away: the server drops the call's
///   response future before it is ready, or a streaming response's body before its end.
///   A caller that goes away at or after the call's deadline counts as the deadline.
///
/// A triggered call is also stopped: the service method's future is dropped and the call is
/// answered with the token's status (`DEADLINE_EXCEEDED` for a timeout, `CANCELLED` with the
/// reason otherwise), and a response that streams is ended with that status in its trailers.
/// A call that completes, its stream included, leaves its token alone.
///
/// A `grpc-timeout` that does not parse is answered with `INVALID_ARGUMENT`, naming the
/// problem, without calling the service; with [`reject_invalid(false)`](Self::reject_invalid)
/// the call runs as if it had sent none (only the server's cap applies).
///
/// The caller's deadline reaches the server as a timeout, so the server's deadline is later
/// than the caller's by the time the call took to arrive; a caller that enforces its own
/// deadline (a [`ClientLayer`](super::ClientLayer)) may then go away first, which the server
/// sees as [`ReasonKind::Dropped`] if it happens just before its own deadline.
/// [`deadline_offset`](Self::deadline_offset) moves the server's deadline earlier to keep
/// it first.
///
/// ```text
/// Server::builder()
///     .layer(ServerLayer::new(shutdown.hard().clone()).max_timeout(Duration::from_secs(30)))
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
    max_timeout: Option<Duration>,
    reject_invalid: bool,
    deadline_offset: Duration,
}

impl ServerLayer {
    /// Gives every call a child of `server`, with the caller's deadline, no cap, no offset,
    /// and invalid `grpc-timeout`s rejected.
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
            max_timeout: None,
            reject_invalid: true,
            deadline_offset: Duration::ZERO,
        }
    }

    /// Caps every call's time at `max`, whatever its caller asked (or when it asked
    /// nothing); a call stopped by the cap is triggered with [`ReasonKind::Timeout`] and a
    /// message that names the cap.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::grpc::ServerLayer;
    /// use cancel_token::CancelToken;
    ///
    /// let layer = ServerLayer::new(CancelToken::new()).max_timeout(Duration::from_secs(30));
    /// assert_eq!(layer.get_max_timeout(), Some(Duration::from_secs(30)));
    /// ```
    pub fn max_timeout(mut self, max: Duration) -> Self {
        self.max_timeout = Some(max);
        self
    }

    /// The cap set by [`max_timeout`](Self::max_timeout), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::grpc::ServerLayer;
    /// use cancel_token::CancelToken;
    ///
    /// assert_eq!(ServerLayer::new(CancelToken::new()).get_max_timeout(), None);
    /// ```
    pub fn get_max_timeout(&self) -> Option<Duration> {
        self.max_timeout
    }

    /// Whether a call whose `grpc-timeout` does not parse is answered with
    /// `INVALID_ARGUMENT` without calling the service (`true`, the default), or runs as if it
    /// had sent no timeout (`false`).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::grpc::ServerLayer;
    /// use cancel_token::CancelToken;
    ///
    /// let lenient = ServerLayer::new(CancelToken::new()).reject_invalid(false);
    /// # drop(lenient);
    /// ```
    pub fn reject_invalid(mut self, reject: bool) -> Self {
        self.reject_invalid = reject;
        self
    }

    /// Takes `offset` off every caller's timeout (down to zero), so that the server's
    /// deadline comes before the caller's, however long the call took to arrive: the call
    /// then ends as a timeout on both sides rather than racing the caller's own cut. The
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

    /// The deadline of a call that arrived at `now` with `caller`'s timeout (and the header
    /// that said so): the earlier of the caller's and the cap.
    fn deadline(&self, caller: Option<(Duration, &HeaderValue)>, now: Instant) -> Option<Deadline> {
        let caller = caller.and_then(|(timeout, value)| {
            let at = now.checked_add(timeout.saturating_sub(self.deadline_offset))?;
            let value = String::from_utf8_lossy(value.as_bytes());
            let message = if self.deadline_offset.is_zero() {
                format!("the caller's deadline elapsed (grpc-timeout: {value})")
            } else {
                format!(
                    "the caller's deadline, less the server's offset of {:?}, elapsed \
                     (grpc-timeout: {value})",
                    self.deadline_offset
                )
            };
            Some(Deadline {
                at,
                reason: Reason::with_message(ReasonKind::Timeout, message),
            })
        });
        let cap = self.max_timeout.and_then(|max| {
            let at = now.checked_add(max)?;
            let message = format!("the server's limit of {max:?} per call elapsed");
            Some(Deadline {
                at,
                reason: Reason::with_message(ReasonKind::Timeout, message),
            })
        });
        match (caller, cap) {
            (Some(caller), Some(cap)) if cap.at < caller.at => Some(cap),
            (Some(caller), _) => Some(caller),
            (None, cap) => cap,
        }
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
        let now = Instant::now();
        let caller = match request.headers().get(GRPC_TIMEOUT) {
            None => None,
            Some(value) => match parse_grpc_timeout(value) {
                Ok(timeout) => Some((timeout, value)),
                Err(err) if self.layer.reject_invalid => {
                    // Answered unserved; `poll_ready`'s reservation is released as tower allows.
                    let message = format!("invalid grpc-timeout {value:?}: {err}");
                    return ServerFuture::answer(Status::invalid_argument(message));
                }
                Err(_) => None,
            },
        };
        let deadline = self.layer.deadline(caller, now);
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
