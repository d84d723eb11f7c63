//! [`ScopeLayer`]: a token per request, a child of a server token, triggered when the client
//! goes away.

use std::task::{Context, Poll};

use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::{ScopeResponse, ScopedBody};
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
        ScopeLayer { server }
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
        request.extensions_mut().insert(token.clone());
        // A response to HEAD has no body, which servers drop unpolled: nothing to guard then.
        let has_body = request.method() != http::Method::HEAD;
        ScopeResponse::new(token, self.inner.call(request), has_body)
    }
}
