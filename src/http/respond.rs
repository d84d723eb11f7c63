//! The answering mode of [`CancelLayer`](super::CancelLayer): [`RespondLayer`] and its
//! service, future and body, which turn a cancellation into a response (axum-ready).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::tower::{Raced, Source};
use super::{CancelBody, CancelError};
use crate::Cancelled;

/// A tower layer that races every request against a token, like
/// [`CancelLayer`](super::CancelLayer), and answers a cancelled request with a status and
/// the reason instead of failing; made by
/// [`CancelLayer::responding`](super::CancelLayer::responding).
///
/// Its service's error is the inner service's, so over an infallible service (an axum
/// `Router`, a handler) it is infallible too, which is what axum's `Router::layer` requires.
///
/// # Examples
///
/// With axum (`Router::layer` takes it as it is):
///
/// ```
/// use std::convert::Infallible;
/// use http::StatusCode;
/// use tower_layer::Layer;
/// use tower_service::Service;
/// use cancel_token::http::{CancelLayer, RespondLayer};
/// use cancel_token::CancelToken;
///
/// # futures_lite::future::block_on(async {
/// let shutdown = CancelToken::named("shutdown");
/// // `Router::new().route(..).layer(CancelLayer::new(shutdown).responding(..))` in axum.
/// let layer: RespondLayer = CancelLayer::new(shutdown.clone())
///     .responding(StatusCode::SERVICE_UNAVAILABLE);
/// let handler = tower::service_fn(|_request: http::Request<()>| async {
///     Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from("ok"))))
/// });
/// let mut service = layer.layer(handler);
/// assert_eq!(service.call(http::Request::new(())).await.unwrap().status(), 200);
/// shutdown.trigger();
/// assert_eq!(service.call(http::Request::new(())).await.unwrap().status(), 503);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct RespondLayer {
    source: Source,
    status: StatusCode,
}

impl RespondLayer {
    pub(super) fn new(source: Source, status: StatusCode) -> Self {
        RespondLayer { source, status }
    }

    /// The status a cancelled request is answered with.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::CancelLayer;
    ///
    /// let layer = CancelLayer::from_extensions().responding(http::StatusCode::GATEWAY_TIMEOUT);
    /// assert_eq!(layer.status(), http::StatusCode::GATEWAY_TIMEOUT);
    /// ```
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl<S> Layer<S> for RespondLayer {
    type Service = RespondService<S>;

    fn layer(&self, inner: S) -> RespondService<S> {
        RespondService {
            inner,
            source: self.source.clone(),
            status: self.status,
        }
    }
}

/// The service made by [`RespondLayer`].
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use tower_layer::Layer;
/// use cancel_token::http::{CancelLayer, RespondService};
/// use cancel_token::CancelToken;
///
/// let handler = tower::service_fn(|_request: http::Request<()>| async {
///     Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
/// });
/// let layer = CancelLayer::new(CancelToken::new()).responding(http::StatusCode::SERVICE_UNAVAILABLE);
/// let service: RespondService<_> = layer.layer(handler);
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct RespondService<S> {
    inner: S,
    source: Source,
    status: StatusCode,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RespondService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<RespondBody<ResBody>>;
    type Error = S::Error;
    type Future = RespondFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        RespondFuture {
            raced: Raced::start(&self.source, &mut self.inner, request),
            status: self.status,
        }
    }
}

pin_project! {
    /// Future for the [`RespondService`]'s response: the inner response with its body under
    /// the token, or the answer to a cancellation.
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
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    /// use cancel_token::http::{CancelLayer, RespondFuture};
    /// use cancel_token::CancelToken;
    ///
    /// let handler = tower::service_fn(|_request: http::Request<()>| async {
    ///     Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
    /// });
    /// let token = CancelToken::new();
    /// let layer = CancelLayer::new(token.clone()).responding(http::StatusCode::SERVICE_UNAVAILABLE);
    /// let future: RespondFuture<_> = layer.layer(handler).call(http::Request::new(()));
    /// token.trigger();
    /// let response = futures_lite::future::block_on(future).unwrap();
    /// assert_eq!(response.status(), 503);
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct RespondFuture<F> {
        #[pin]
        raced: Raced<F>,
        status: StatusCode,
    }
}

impl<F, ResBody, E> Future for RespondFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<RespondBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        Poll::Ready(match std::task::ready!(this.raced.poll_raced(cx)) {
            Ok(response) => Ok(response.map(|body| RespondBody {
                kind: Kind::Streaming { body },
            })),
            Err(CancelError::Cancelled(cancelled)) => Ok(answer(*this.status, cancelled)),
            Err(CancelError::Inner(err)) => Err(err),
        })
    }
}

/// The response to a cancelled request: `status`, the reason as plain text, and the
/// cancellation in the extensions.
fn answer<B>(status: StatusCode, cancelled: Cancelled) -> http::Response<RespondBody<B>> {
    let text = format!("{cancelled}\n");
    let mut response = http::Response::new(RespondBody {
        kind: Kind::Answer { text: Some(text) },
    });
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.extensions_mut().insert(cancelled);
    response
}

impl<F> fmt::Debug for RespondFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RespondFuture")
            .field("token", self.raced.token())
            .field("in_flight", &self.raced.in_flight())
            .field("status", &self.status)
            .finish()
    }
}

pin_project! {
    /// The response body of a [`RespondService`]: the inner body under the token (a
    /// [`CancelBody`]), or the reason a cancelled request was refused.
    ///
    /// The reason is one data frame made with `B::Data: From<String>` (`bytes::Bytes`, the
    /// data of axum's and hyper's bodies).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http_body_util::BodyExt;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    /// use cancel_token::http::{CancelLayer, RespondBody};
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let handler = tower::service_fn(|_request: http::Request<()>| async {
    ///     Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from("ok"))))
    /// });
    /// let token = CancelToken::named("deadline");
    /// let layer = CancelLayer::new(token.clone()).responding(http::StatusCode::GATEWAY_TIMEOUT);
    /// token.trigger_with("300ms elapsed");
    /// let response = layer.layer(handler).call(http::Request::new(())).await.unwrap();
    /// let body: RespondBody<_> = response.into_body();
    /// let text = body.collect().await.unwrap().to_bytes();
    /// assert_eq!(text, "cancellation requested by token deadline: 300ms elapsed\n");
    /// # });
    /// ```
    #[must_use = "bodies do nothing unless polled"]
    pub struct RespondBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Streaming { #[pin] body: CancelBody<B> },
        Answer { text: Option<String> },
    }
}

impl<B> Body for RespondBody<B>
where
    B: Body,
    B::Data: From<String>,
{
    type Data = B::Data;
    type Error = CancelError<B::Error>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Streaming { body } => body.poll_frame(cx),
            KindProj::Answer { text } => {
                Poll::Ready(text.take().map(|text| Ok(Frame::data(text.into()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Streaming { body } => body.is_end_stream(),
            Kind::Answer { text } => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Streaming { body } => body.size_hint(),
            Kind::Answer { text } => {
                SizeHint::with_exact(text.as_ref().map_or(0, |text| text.len() as u64))
            }
        }
    }
}

impl<B> fmt::Debug for RespondBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Streaming { body } => f.debug_tuple("RespondBody").field(body).finish(),
            Kind::Answer { text } => f.debug_struct("RespondBody").field("answer", text).finish(),
        }
    }
}
