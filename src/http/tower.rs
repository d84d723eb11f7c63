//! [`CancelLayer`]: tower middleware that cancels requests and their response bodies.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::send::late_error;
use super::{CancelBody, CancelError, RespondLayer};
use crate::wait::{Race, Waiter};
use crate::{CancelToken, Cancelled};

/// The boxed error of [`CancelService`], as tower's own middleware returns it: downcast it to
/// [`Cancelled`] to tell a cancellation from the inner service's error.
///
/// # Examples
///
/// ```
/// use cancel_token::http::BoxError;
/// use cancel_token::{CancelToken, Cancelled};
///
/// let token = CancelToken::new();
/// token.trigger();
/// let err: BoxError = Box::new(token.raise_if_triggered().unwrap_err());
/// assert!(err.downcast_ref::<Cancelled>().is_some());
/// ```
pub type BoxError = Box<dyn Error + Send + Sync>;

/// Where a [`CancelService`] finds the token of a request.
#[derive(Clone, Debug)]
pub(super) enum Source {
    Fixed(CancelToken),
    Extension,
}

impl Source {
    fn token_for<R>(&self, request: &http::Request<R>) -> CancelToken {
        // No token: the request runs as if its token were never triggered.
        self.find(request).unwrap_or_default()
    }

    /// The request's token, if it has one.
    pub(super) fn find<R>(&self, request: &http::Request<R>) -> Option<CancelToken> {
        match self {
            Source::Fixed(token) => Some(token.clone()),
            Source::Extension => request.extensions().get::<CancelToken>().cloned(),
        }
    }
}

/// A tower layer that races every request against a token and wraps the response body in a
/// [`CancelBody`].
///
/// The token is either fixed ([`CancelLayer::new`]: typically a shutdown token) or taken from
/// the request's extensions ([`CancelLayer::from_extensions`]: a `CancelToken` inserted by the
/// caller or an outer layer; a request without one runs uncancelled). A triggered token means
/// the inner service is never called; a trigger while the response is awaited drops the
/// inner future at once; a trigger while the body streams ends it with one cancellation
/// error frame. The service's error is [`BoxError`], holding either the inner service's error
/// or a [`Cancelled`].
///
/// In axum, or wherever the service must be infallible, use
/// [`responding`](CancelLayer::responding): a cancelled request is answered with a status and
/// the reason instead of failing.
///
/// A request refused because its token is triggered does not call the inner service, even
/// though `poll_ready` reserved capacity in it; services that hold a permit from `poll_ready`
/// until `call` (a concurrency limit, a buffer) release it when the `CancelService` is
/// dropped or polled ready again, as tower's contract allows.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use http_body_util::Full;
/// use tower_service::Service;
/// use cancel_token::http::CancelLayer;
/// use cancel_token::{CancelToken, Cancelled};
/// use tower_layer::Layer;
///
/// # futures_lite::future::block_on(async {
/// let shutdown = CancelToken::named("shutdown");
/// let handler = tower::service_fn(|_request: http::Request<()>| async {
///     Ok::<_, Infallible>(http::Response::new(Full::new(&b"hello"[..])))
/// });
/// let mut service = CancelLayer::new(shutdown.clone()).layer(handler);
///
/// let response = service.call(http::Request::new(())).await.unwrap();
/// assert_eq!(response.status(), 200);
///
/// shutdown.trigger_with("server stopping");
/// let err = service.call(http::Request::new(())).await.unwrap_err();
/// let cancelled = err.downcast_ref::<Cancelled>().unwrap();
/// assert_eq!(cancelled.reason().message(), Some("server stopping"));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct CancelLayer {
    source: Source,
}

impl CancelLayer {
    /// Cancels every request with `token`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::CancelLayer;
    /// use cancel_token::CancelToken;
    ///
    /// let layer = CancelLayer::new(CancelToken::named("shutdown"));
    /// # drop(layer);
    /// ```
    pub fn new(token: CancelToken) -> Self {
        CancelLayer {
            source: Source::Fixed(token),
        }
    }

    /// Cancels each request with the `CancelToken` in its extensions, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::CancelLayer;
    /// use cancel_token::CancelToken;
    ///
    /// let layer = CancelLayer::from_extensions();
    /// let mut request = http::Request::new(());
    /// request.extensions_mut().insert(CancelToken::named("request 7"));
    /// # drop((layer, request));
    /// ```
    pub fn from_extensions() -> Self {
        CancelLayer {
            source: Source::Extension,
        }
    }

    /// Answers a cancelled request with `status` instead of failing: the layer for axum, whose
    /// services must be infallible (`Router::layer` rejects the plain `CancelLayer`, whose
    /// error is [`BoxError`]).
    ///
    /// A request whose token is triggered before or while the inner service runs gets a
    /// response with `status`, a `text/plain` body that gives the reason
    /// (`cancellation requested by token shutdown: server stopping`), and the [`Cancelled`]
    /// in its extensions for outer layers (logging, metrics). The inner service's own errors
    /// pass through untouched, so over an infallible service the layer is infallible too. A
    /// trigger while the response body streams still cuts the body with an error frame (the
    /// status has been sent by then), as with the plain layer.
    ///
    /// `503 Service Unavailable` suits a shutdown or an overload (the client may retry
    /// elsewhere), `504 Gateway Timeout` a deadline; when the *client* went away nobody reads
    /// the answer.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http_body_util::{BodyExt, Full};
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    /// use cancel_token::http::CancelLayer;
    /// use cancel_token::{CancelToken, Cancelled};
    ///
    /// # futures_lite::future::block_on(async {
    /// let shutdown = CancelToken::named("shutdown");
    /// let handler = tower::service_fn(|_request: http::Request<()>| async {
    ///     Ok::<_, Infallible>(http::Response::new(Full::new(bytes::Bytes::from("hello"))))
    /// });
    /// let layer = CancelLayer::new(shutdown.clone()).responding(http::StatusCode::SERVICE_UNAVAILABLE);
    /// let mut service = layer.layer(handler);
    ///
    /// shutdown.trigger_with("server stopping");
    /// let response: Result<_, Infallible> = service.call(http::Request::new(())).await;
    /// let response = response.unwrap();
    /// assert_eq!(response.status(), 503);
    /// assert!(response.extensions().get::<Cancelled>().is_some());
    /// let text = response.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(text, "cancellation requested by token shutdown: server stopping\n");
    /// # });
    /// ```
    pub fn responding(self, status: http::StatusCode) -> RespondLayer {
        RespondLayer::new(self.source, status)
    }
}

impl<S> Layer<S> for CancelLayer {
    type Service = CancelService<S>;

    fn layer(&self, inner: S) -> CancelService<S> {
        CancelService {
            inner,
            source: self.source.clone(),
        }
    }
}

/// The service made by [`CancelLayer`].
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use cancel_token::http::{CancelLayer, CancelService};
/// use cancel_token::CancelToken;
/// use tower_layer::Layer;
///
/// let handler = tower::service_fn(|_request: http::Request<()>| async {
///     Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<&[u8]>::new()))
/// });
/// let service: CancelService<_> = CancelLayer::new(CancelToken::new()).layer(handler);
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct CancelService<S> {
    inner: S,
    source: Source,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for CancelService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<CancelBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            raced: Raced::start(&self.source, &mut self.inner, request),
        }
    }
}

pin_project! {
    /// Future for the [`CancelService`]'s response.
    ///
    /// # Cancellation safety
    ///
    /// The inner service's future is dropped the moment the trigger is seen.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties: the token is checked before every poll of the inner future.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use cancel_token::http::{CancelLayer, ResponseFuture};
    /// use cancel_token::CancelToken;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// let handler = tower::service_fn(|_request: http::Request<()>| async {
    ///     Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<&[u8]>::new()))
    /// });
    /// let mut service = CancelLayer::new(CancelToken::new()).layer(handler);
    /// let response: ResponseFuture<_> = service.call(http::Request::new(()));
    /// assert!(futures_lite::future::block_on(response).is_ok());
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F> {
        #[pin]
        raced: Raced<F>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<http::Response<CancelBody<ResBody>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let raced = std::task::ready!(self.project().raced.poll_raced(cx));
        Poll::Ready(raced.map_err(|err| match err {
            CancelError::Cancelled(cancelled) => Box::new(cancelled) as BoxError,
            CancelError::Inner(err) => err.into(),
        }))
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("token", self.raced.token())
            .field("in_flight", &self.raced.in_flight())
            .finish()
    }
}

pin_project! {
    /// The inner service's response future raced against the request's token: what both
    /// modes of the layer share.
    pub(super) struct Raced<F> {
        waiter: Waiter<CancelToken>,
        refused: Option<Cancelled>,
        #[pin]
        future: Option<F>,
    }
}

impl<F> Raced<F> {
    /// Calls `inner` with `request`, unless the request's token is already triggered.
    pub(super) fn start<S, R>(source: &Source, inner: &mut S, request: http::Request<R>) -> Self
    where
        S: Service<http::Request<R>, Future = F>,
    {
        let token = source.token_for(&request);
        let refused = token.raise_if_triggered().err();
        Raced {
            future: refused.is_none().then(|| inner.call(request)),
            waiter: Waiter::new(token),
            refused,
        }
    }

    pub(super) fn token(&self) -> &CancelToken {
        self.waiter.token()
    }

    pub(super) fn in_flight(&self) -> bool {
        self.future.is_some()
    }
}

impl<F, ResBody, E> Raced<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    /// The response with its body under the token, the cancellation, or the inner error.
    pub(super) fn poll_raced(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<http::Response<CancelBody<ResBody>>, CancelError<E>>> {
        let mut this = self.project();
        if let Some(cancelled) = this.refused.take() {
            return Poll::Ready(Err(cancelled.into()));
        }
        let future = &mut this.future;
        let raced = this.waiter.race(cx, |cx| {
            let future = future.as_mut().as_pin_mut();
            future
                .expect("`ResponseFuture` polled after it completed")
                .poll(cx)
        });
        match raced {
            Race::Pending => Poll::Pending,
            Race::Cancelled(cancelled) => {
                this.future.set(None);
                Poll::Ready(Err(cancelled.into()))
            }
            Race::Ready(result) => {
                this.future.set(None);
                this.waiter.release();
                let token = this.waiter.token();
                Poll::Ready(match result {
                    Ok(response) => {
                        let token = token.clone();
                        Ok(response.map(|body| CancelBody::new(token, body)))
                    }
                    Err(err) => Err(late_error(token, err)),
                })
            }
        }
    }
}
