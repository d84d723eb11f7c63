//! [`ServerLayer`]: a token per call on a tonic server, triggered by the caller's deadline
//! (`grpc-timeout`), by the caller going away, or by the server's token; and [`call_token`],
//! which hands it to the service method.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::{Request, Status};
use tower_layer::Layer;
use tower_service::Service;

use super::client::GRPC_TIMEOUT;
use super::wire::parse_grpc_timeout;
use crate::http::{ScopeResponse, ScopedBody};
use crate::wait::{Race, Waiter};
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
struct Deadline {
    at: Instant,
    reason: Reason,
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
/// use cancel_token::{CancelToken, ReasonKind};
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
        ServerFuture {
            watch: Some(Watch {
                waiter: Waiter::new(token),
                deadline,
            }),
            answer: None,
            call: Some(call),
        }
    }
}

/// A call's token and deadline, watched while the call runs and while its response streams.
struct Watch {
    waiter: Waiter<CancelToken>,
    deadline: Option<Deadline>,
}

impl Watch {
    /// The call is being dropped before its end. If its deadline is due, that is why (the
    /// caller's, tonic's and our own deadline timers race, and ours may not have fired yet):
    /// the token gets the deadline's reason, before the drop guard gives it `Dropped`.
    fn expire_if_due(&self) {
        if let Some(deadline) = &self.deadline {
            if Instant::now() >= deadline.at {
                self.waiter.token().trigger_with(deadline.reason.clone());
            }
        }
    }
}

/// The response to a call answered by the layer: `status` and no body.
fn answer<B: Default>(status: Status) -> http::Response<ServerBody<B>> {
    status.into_http::<B>().map(ServerBody::plain)
}

pin_project! {
    /// Future for the [`ServerService`]'s response.
    ///
    /// # Cancellation safety
    ///
    /// Dropping it before it completes triggers the call's token with
    /// [`ReasonKind::Dropped`] (with the deadline's reason if the deadline is due). On a
    /// trigger, the service's future is dropped at once and the call answered with the
    /// token's status.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties: the token is checked before every poll of the service's future.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    /// use cancel_token::grpc::{ServerFuture, ServerLayer};
    /// use cancel_token::CancelToken;
    ///
    /// let router = tower::service_fn(|_request: http::Request<()>| async {
    ///     Ok::<_, Infallible>(http::Response::new(tonic::body::Body::empty()))
    /// });
    /// let server = CancelToken::named("server");
    /// let mut service = ServerLayer::new(server.clone()).layer(router);
    /// server.trigger_with("shutting down");
    /// let future: ServerFuture<_> = service.call(http::Request::new(()));
    /// let response = futures_lite::future::block_on(future).unwrap();
    /// assert_eq!(response.headers()["grpc-status"], "1"); // CANCELLED
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ServerFuture<F> {
        // `None` for a call answered by the layer, and once the response is out.
        watch: Option<Watch>,
        answer: Option<Status>,
        #[pin]
        call: Option<ScopeResponse<F>>,
    }

    impl<F> PinnedDrop for ServerFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let (Some(watch), Some(_)) = (this.watch.as_ref(), this.call.as_ref().as_pin_ref()) {
                watch.expire_if_due();
            }
        }
    }
}

impl<F> ServerFuture<F> {
    fn answer(status: Status) -> Self {
        ServerFuture {
            watch: None,
            answer: Some(status),
            call: None,
        }
    }
}

impl<F, B, E> Future for ServerFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Body + Default,
{
    type Output = Result<http::Response<ServerBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(status) = this.answer.take() {
            return Poll::Ready(Ok(answer(status)));
        }
        let watch = this
            .watch
            .as_mut()
            .expect("`ServerFuture` polled after it completed");
        let call = &mut this.call;
        let raced = watch.waiter.race(cx, |cx| match call.as_mut().as_pin_mut() {
            Some(call) => call.poll(cx),
            None => Poll::Pending,
        });
        let result = match raced {
            Race::Pending => return Poll::Pending,
            Race::Cancelled(cancelled) => Ok(answer(cancelled.into())),
            Race::Ready(Ok(response)) => {
                let watch = this.watch.take();
                Ok(response.map(|body| ServerBody::watched(watch, body)))
            }
            Race::Ready(Err(err)) => Err(err),
        };
        // In this order: with the call gone, the watch has nothing to expire.
        this.call.set(None);
        *this.watch = None;
        Poll::Ready(result)
    }
}

impl<F> fmt::Debug for ServerFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerFuture")
            .field(
                "token",
                &self.watch.as_ref().map(|watch| watch.waiter.token()),
            )
            .field("in_flight", &self.call.is_some())
            .field("answer", &self.answer)
            .finish()
    }
}

pin_project! {
    /// The response body of a [`ServerService`]: the service's body, which triggers the
    /// call's token with [`ReasonKind::Dropped`] if it is dropped before its end (a
    /// [`ScopedBody`]), and which ends with the token's status in its trailers when the
    /// token is triggered while it streams.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    /// use cancel_token::grpc::{ServerBody, ServerLayer};
    /// use cancel_token::CancelToken;
    ///
    /// let router = tower::service_fn(|_request: http::Request<()>| async {
    ///     Ok::<_, Infallible>(http::Response::new(tonic::body::Body::empty()))
    /// });
    /// let mut service = ServerLayer::new(CancelToken::new()).layer(router);
    /// let response = futures_lite::future::block_on(service.call(http::Request::new(()))).unwrap();
    /// let body: ServerBody<tonic::body::Body> = response.into_body();
    /// assert!(http_body::Body::is_end_stream(&body));
    /// ```
    #[must_use = "bodies do nothing unless polled"]
    pub struct ServerBody<B> {
        // `None` for an answer, once the body has ended, and once it has been cut.
        watch: Option<Watch>,
        // The token's status has been sent as the trailers: the body has ended.
        cut: bool,
        #[pin]
        body: ScopedBody<B>,
    }

    impl<B> PinnedDrop for ServerBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Still guarded: the body has not ended.
            if let (Some(watch), Some(_)) = (this.watch.as_ref(), this.body.token()) {
                watch.expire_if_due();
            }
        }
    }
}

impl<B: Body> ServerBody<B> {
    fn plain(body: B) -> Self {
        ServerBody {
            watch: None,
            cut: false,
            body: ScopedBody::unguarded(body),
        }
    }

    fn watched(watch: Option<Watch>, body: ScopedBody<B>) -> Self {
        ServerBody {
            // A body that has already ended has nothing left to cut or guard.
            watch: watch.filter(|_| body.token().is_some()),
            cut: false,
            body,
        }
    }
}

/// A status as trailers, `grpc-status` at least.
fn status_trailers(status: &Status) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    if status.add_header(&mut trailers).is_err() || !trailers.contains_key("grpc-status") {
        trailers.insert("grpc-status", HeaderValue::from(i32::from(status.code())));
    }
    trailers
}

impl<B: Body> Body for ServerBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        if *this.cut {
            return Poll::Ready(None);
        }
        let body = &mut this.body;
        let Some(watch) = this.watch.as_mut() else {
            return body.as_mut().poll_frame(cx);
        };
        match watch.waiter.race(cx, |cx| body.as_mut().poll_frame(cx)) {
            Race::Pending => Poll::Pending,
            Race::Cancelled(cancelled) => {
                *this.watch = None;
                *this.cut = true;
                let trailers = status_trailers(&cancelled.into());
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            Race::Ready(frame) => {
                if this.body.token().is_none() {
                    // The body has ended.
                    *this.watch = None;
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.cut || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.cut {
            SizeHint::with_exact(0)
        } else {
            self.body.size_hint()
        }
    }
}

impl<B> fmt::Debug for ServerBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBody")
            .field(
                "token",
                &self.watch.as_ref().map(|watch| watch.waiter.token()),
            )
            .field("cut", &self.cut)
            .finish()
    }
}
