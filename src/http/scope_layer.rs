//! [`ScopeLayer`]: a token per request, a child of a server token, triggered when the client
//! goes away.

use std::task::{Context, Poll};

use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::{DeadlinePolicy, ScopeResponse, ScopedBody};
use crate::CancelToken;

/// A tower layer that gives every request a token of its own, reachable from the handler as a
/// request extension.
///
/// Each request's token (named `request`) is a child of the layer's server token (typically
/// a [`Shutdown`](crate::Shutdown)'s soft or hard token), so triggering the server token
/// triggers every request in flight. It is triggered with
/// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped) when the client goes away: when the
/// server drops the response future before it is ready, or the response body before it ends
/// (the body is a [`ScopedBody`]). A request that completes, its body included, leaves its
/// token alone; so does an error of the inner service.
///
/// The token is inserted into the request's extensions, replacing none: if an outer layer
/// already put a `CancelToken` there, the request's token is triggered by that one too. In
/// axum, a handler takes it with axum's own extractor, and nothing of axum is needed here:
///
/// ```text
/// async fn report(Extension(token): Extension<CancelToken>) -> impl IntoResponse { .. }
///
/// let app = Router::new()
///     .route("/report", get(report))
///     .layer(ScopeLayer::new(shutdown.hard().clone()));
/// ```
///
/// With [`deadline`](Self::deadline), each request's token also carries the deadline its
/// caller sent in its headers (`grpc-timeout`, `connect-timeout-ms`), capped by the server's
/// maximum.
///
/// The layer gives handlers a token; it does not stop them. To also cut a request on a
/// trigger, put [`CancelLayer::from_extensions`](super::CancelLayer::from_extensions) inside
/// it (with [`responding`](super::CancelLayer::responding) in axum): in a
/// `tower::ServiceBuilder` the first layer is the outermost, in axum's `Router::layer` the
/// last call is.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use tower_layer::Layer;
/// use tower_service::Service;
/// use cancel_token::http::ScopeLayer;
/// use cancel_token::{CancelToken, ReasonKind};
///
/// # futures_lite::future::block_on(async {
/// let server = CancelToken::named("server");
/// let (tx, rx) = std::sync::mpsc::channel();
/// let handler = tower::service_fn(move |request: http::Request<()>| {
///     let token = request.extensions().get::<CancelToken>().cloned().unwrap();
///     tx.send(token).unwrap();
///     async { Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(&b"hi"[..]))) }
/// });
/// let mut service = ScopeLayer::new(server.clone()).layer(handler);
///
/// let response = service.call(http::Request::new(())).await.unwrap();
/// let token = rx.recv().unwrap();
/// assert_eq!(token.name(), Some("request"));
/// drop(response); // the client left before the body was sent
/// assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
///
/// let in_flight = service.call(http::Request::new(()));
/// let token = rx.recv().unwrap();
/// server.trigger_with("shutting down");
/// assert_eq!(token.triggered_token(), Some(server));
/// # drop(in_flight);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ScopeLayer {
    server: CancelToken,
    deadline: Option<DeadlinePolicy>,
}

impl ScopeLayer {
    /// Gives every request a child of `server`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::http::ScopeLayer;
    /// use cancel_token::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(5));
    /// let layer = ScopeLayer::new(shutdown.hard().clone());
    /// assert_eq!(layer.server(), shutdown.hard());
    /// ```
    pub fn new(server: CancelToken) -> Self {
        ScopeLayer {
            server,
            deadline: None,
        }
    }

    /// Gives each request's token the deadline `policy` reads from the request's headers,
    /// counted from when the request reaches this layer.
    ///
    /// A header the policy rejects ([`OnInvalid::Reject`](super::OnInvalid::Reject)) leaves
    /// its [`HeaderError`](super::HeaderError) in the request's extensions, for the handler
    /// to answer `400 Bad Request` (in axum, take `Option<Extension<HeaderError>>`); the
    /// token still carries the policy's cap, so a handler that runs anyway never gets more.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::{Duration, Instant};
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    /// use cancel_token::http::{DeadlinePolicy, HeaderError, ScopeLayer};
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let handler = tower::service_fn(|request: http::Request<()>| async move {
    ///     if let Some(err) = request.extensions().get::<HeaderError>() {
    ///         return Ok::<_, Infallible>(http::Response::builder()
    ///             .status(err.status())
    ///             .body(http_body_util::Full::new(bytes::Bytes::from(err.to_string())))
    ///             .unwrap());
    ///     }
    ///     let token = request.extensions().get::<CancelToken>().unwrap();
    ///     let left = token.deadline().unwrap().saturating_duration_since(Instant::now());
    ///     Ok(http::Response::new(http_body_util::Full::new(bytes::Bytes::from(left.as_secs().to_string()))))
    /// });
    /// let policy = DeadlinePolicy::new().max(Duration::from_secs(30));
    /// let mut service = ScopeLayer::new(CancelToken::new()).deadline(policy).layer(handler);
    ///
    /// let request = http::Request::builder().header("grpc-timeout", "5S").body(()).unwrap();
    /// let response = service.call(request).await.unwrap();
    /// assert_eq!(response.status(), 200);
    ///
    /// let request = http::Request::builder().header("grpc-timeout", "5 seconds").body(()).unwrap();
    /// assert_eq!(service.call(request).await.unwrap().status(), 400);
    /// # });
    /// ```
    pub fn deadline(mut self, policy: DeadlinePolicy) -> Self {
        self.deadline = Some(policy);
        self
    }

    /// The server token every request's token is a child of.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::ScopeLayer;
    /// use cancel_token::CancelToken;
    ///
    /// let server = CancelToken::named("server");
    /// assert_eq!(ScopeLayer::new(server.clone()).server(), &server);
    /// ```
    pub fn server(&self) -> &CancelToken {
        &self.server
    }
}

impl<S> Layer<S> for ScopeLayer {
    type Service = ScopeService<S>;

    fn layer(&self, inner: S) -> ScopeService<S> {
        ScopeService {
            inner,
            server: self.server.clone(),
            deadline: self.deadline.clone(),
        }
    }
}

/// The service made by [`ScopeLayer`].
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use tower_layer::Layer;
/// use cancel_token::http::{ScopeLayer, ScopeService};
/// use cancel_token::CancelToken;
///
/// let handler = tower::service_fn(|_request: http::Request<()>| async {
///     Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<&[u8]>::new()))
/// });
/// let service: ScopeService<_> = ScopeLayer::new(CancelToken::new()).layer(handler);
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct ScopeService<S> {
    inner: S,
    server: CancelToken,
    deadline: Option<DeadlinePolicy>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ScopeService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Body,
{
    type Response = http::Response<ScopedBody<ResBody>>;
    type Error = S::Error;
    type Future = ScopeResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let token = match request.extensions().get::<CancelToken>() {
            // Named like any other request's token, and triggered by either.
            Some(outer) => CancelToken::any([&self.server, outer]).child_named("request"),
            None => self.server.child_named("request"),
        };
        if let Some(policy) = &self.deadline {
            if let Err(err) = policy.apply(request.headers(), &token) {
                request.extensions_mut().insert(err);
            }
        }
        request.extensions_mut().insert(token.clone());
        // A response to HEAD has no body, which servers drop unpolled: nothing to guard then.
        let has_body = request.method() != http::Method::HEAD;
        ScopeResponse::new(token, self.inner.call(request), has_body)
    }
}
