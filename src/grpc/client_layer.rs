//! [`ClientLayer`]: tower middleware for a tonic channel that sends each call's deadline and
//! cuts the call, response body included, when its token is triggered.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::client::{grpc_headers, write_timeout};
use super::client_body::{cut, ClientBody};
use crate::http::{BoxError, DeadlineHeaders};
use crate::wait::{Race, Waiter};
use crate::{CancelToken, Cancelled};

/// A tower layer for a tonic channel: every call carries its token's remaining time as
/// `grpc-timeout` and is cut at once when the token is triggered.
///
/// The token of a call is the `CancelToken` in its extensions (put there by
/// [`request`](super::request()); tonic hands a request's extensions down to the channel), the
/// layer's own ([`with_token`](ClientLayer::with_token)), or, when there are both, either of
/// them. A call without a token passes through untouched.
///
/// A trigger before the call is sent refuses it; while the response is awaited, drops the
/// call in flight, which resets its HTTP/2 stream so the callee sees its client go away; while
/// a server-streaming response is read, ends it. Either way the call fails with the token's
/// status: `DEADLINE_EXCEEDED` for a [`ReasonKind::Timeout`](crate::ReasonKind::Timeout),
/// `CANCELLED` otherwise, with the reason in the message. A transport error that arrives
/// after the trigger reads as the cancellation too.
///
/// The deadline is written as [`set_deadline`](super::set_deadline) writes it: the time left
/// less a margin of 5 ms for the trip, unless the call already asks for less
/// ([`headers`](ClientLayer::headers) changes that). A tonic channel fails a call with
/// `CANCELLED` (`Timeout expired`) when the `grpc-timeout` it sends elapses; under this layer
/// such a call fails when the token's own deadline fires, with the token's
/// `DEADLINE_EXCEEDED`. A shorter timeout of the channel's own (`Endpoint::timeout`) is not
/// the token's: the call fails as soon as it elapses, with the channel's `CANCELLED`, and the
/// token is left alone (the layer never triggers a token, it only watches).
///
/// ```text
/// let channel = Endpoint::from_static("http://127.0.0.1:50051").connect().await?;
/// let channel = tower::ServiceBuilder::new().layer(ClientLayer::new()).service(channel);
/// let mut client = ReportsClient::new(channel);
/// let reply = client.work(grpc::request(&token, WorkRequest { .. })).await?;
/// ```
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http_body_util::Empty;
/// use tower_layer::Layer;
/// use tower_service::Service;
/// use cancel_token::grpc::ClientLayer;
/// use cancel_token::CancelToken;
///
/// # futures_lite::future::block_on(async {
/// // A stand-in for a channel that never answers.
/// let channel = tower::service_fn(|_request: http::Request<()>| async {
///     let never = futures_lite::future::pending::<http::Response<Empty<Bytes>>>();
///     Ok::<_, Infallible>(never.await)
/// });
/// let token = CancelToken::named("request");
/// let mut service = ClientLayer::with_token(token.clone()).layer(channel);
///
/// let call = service.call(http::Request::new(()));
/// token.trigger_with("user pressed stop");
/// let err = call.await.unwrap_err();
/// let status = err.downcast_ref::<tonic::Status>().unwrap();
/// assert_eq!(status.code(), tonic::Code::Cancelled);
/// assert_eq!(status.message(), "cancellation requested by token request: user pressed stop");
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ClientLayer {
    token: Option<CancelToken>,
    propagate: DeadlineHeaders,
}

impl Default for ClientLayer {
    fn default() -> Self {
        ClientLayer::new()
    }
}

impl ClientLayer {
    /// Cuts each call with the `CancelToken` in its extensions, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::grpc::ClientLayer;
    ///
    /// assert!(ClientLayer::new().token().is_none());
    /// ```
    pub fn new() -> Self {
        ClientLayer {
            token: None,
            propagate: grpc_headers(),
        }
    }

    /// Cuts every call with `token` (and with the token in a call's extensions, if it has
    /// one): a client that belongs to one job or one shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::grpc::ClientLayer;
    /// use cancel_token::CancelToken;
    ///
    /// let shutdown = CancelToken::named("shutdown");
    /// assert_eq!(ClientLayer::with_token(shutdown.clone()).token(), Some(&shutdown));
    /// ```
    pub fn with_token(token: CancelToken) -> Self {
        ClientLayer {
            token: Some(token),
            propagate: grpc_headers(),
        }
    }

    /// Writes each call's deadline as `propagate` says instead: another margin, or
    /// `connect-timeout-ms` too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::grpc::ClientLayer;
    /// use cancel_token::http::DeadlineHeaders;
    ///
    /// // Calls that cross a slow link: leave them 50 ms to arrive.
    /// let layer = ClientLayer::new()
    ///     .headers(DeadlineHeaders::new().millis(None).margin(Duration::from_millis(50)));
    /// # drop(layer);
    /// ```
    pub fn headers(mut self, propagate: DeadlineHeaders) -> Self {
        self.propagate = propagate;
        self
    }

    /// The layer's own token, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::grpc::ClientLayer;
    ///
    /// assert_eq!(ClientLayer::default().token(), None);
    /// ```
    pub fn token(&self) -> Option<&CancelToken> {
        self.token.as_ref()
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> ClientService<S> {
        ClientService {
            inner,
            token: self.token.clone(),
            propagate: self.propagate.clone(),
        }
    }
}

/// The service made by [`ClientLayer`]: wraps a tonic channel (or any HTTP service).
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use tower_layer::Layer;
/// use cancel_token::grpc::{ClientLayer, ClientService};
///
/// let channel = tower::service_fn(|_request: http::Request<()>| async {
///     Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
/// });
/// let service: ClientService<_> = ClientLayer::new().layer(channel);
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
    token: Option<CancelToken>,
    propagate: DeadlineHeaders,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ClientService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<ClientBody<ResBody>>;
    type Error = BoxError;
    type Future = ClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let token = match (&self.token, request.extensions().get::<CancelToken>()) {
            (Some(own), Some(call)) if own != call => Some(CancelToken::any([own, call])),
            (Some(token), _) | (None, Some(token)) => Some(token.clone()),
            (None, None) => None,
        };
        let Some(token) = token else {
            return ClientFuture {
                waiter: None,
                refused: None,
                due_within: None,
                expired: None,
                future: Some(self.inner.call(request)),
            };
        };
        if let Err(cancelled) = token.raise_if_triggered() {
            // Refused unsent; `poll_ready`'s reservation is released as tower allows.
            return ClientFuture {
                waiter: None,
                refused: Some(cancelled),
                due_within: None,
                expired: None,
                future: None,
            };
        }
        let written = write_timeout(&self.propagate, &token, request.headers_mut());
        // How far off the token's deadline may be when the channel's timer for the header we
        // wrote fires: the margin, plus the header's rounding (at most one unit of the finest
        // unit that fits eight digits: under a ten-millionth of the timeout), plus slack for
        // the timer itself.
        let due_within = match written.timeout {
            Some(timeout) if written.from_token => Some(
                self.propagate.margin_value() + timeout / 10_000_000 + Duration::from_millis(10),
            ),
            _ => None,
        };
        ClientFuture {
            future: Some(self.inner.call(request)),
            waiter: Some(Waiter::new(token)),
            refused: None,
            due_within,
            expired: None,
        }
    }
}

pin_project! {
    /// Future for the [`ClientService`]'s response.
    ///
    /// # Cancellation safety
    ///
    /// The call in flight is dropped the moment the trigger is seen.
    ///
    /// # Fairness
    ///
    /// Cancellation wins ties: the token is checked before every poll of the call.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    /// use cancel_token::grpc::{ClientFuture, ClientLayer};
    ///
    /// let channel = tower::service_fn(|_request: http::Request<()>| async {
    ///     Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
    /// });
    /// let mut service = ClientLayer::new().layer(channel);
    /// let future: ClientFuture<_> = service.call(http::Request::new(()));
    /// assert!(futures_lite::future::block_on(future).is_ok());
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ClientFuture<F> {
        // `None` for a call without a token.
        waiter: Option<Waiter<CancelToken>>,
        refused: Option<Cancelled>,
        // The call's `grpc-timeout` is the token's remaining time: how close the token's own
        // deadline must then be for a channel timeout to be taken as that deadline.
        due_within: Option<Duration>,
        // The channel's timer for that timeout fired first, with this error: waiting for the
        // token's own.
        expired: Option<BoxError>,
        #[pin]
        future: Option<F>,
    }
}

/// Whether `err` is, or was caused by, tonic's `TimeoutExpired`: a tonic channel enforces a
/// call's `grpc-timeout` with a timer of its own, and fails the call with that error.
fn is_timeout_expired(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if err.is::<tonic::TimeoutExpired>() {
            return true;
        }
        next = err.source();
    }
    false
}

impl<F, ResBody, E> Future for ClientFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<http::Response<ClientBody<ResBody>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(cancelled) = this.refused.take() {
            return Poll::Ready(Err(cut(cancelled)));
        }
        if let Some(err) = this.expired.take() {
            if let Some(waiter) = this.waiter.as_mut() {
                if waiter.poll(cx).is_pending() {
                    *this.expired = Some(err);
                    return Poll::Pending;
                }
            }
            let waiter = this.waiter.take();
            let cancelled = waiter.and_then(|waiter| waiter.token().raise_if_triggered().err());
            return Poll::Ready(Err(cancelled.map_or(err, cut)));
        }
        let future = &mut this.future;
        let mut poll_call = |cx: &mut Context<'_>| {
            future
                .as_mut()
                .as_pin_mut()
                .expect("`ClientFuture` polled after it completed")
                .poll(cx)
        };
        let Some(waiter) = this.waiter.as_mut() else {
            let result = std::task::ready!(poll_call(cx));
            this.future.set(None);
            return Poll::Ready(match result {
                Ok(response) => Ok(response.map(ClientBody::plain)),
                Err(err) => Err(err.into()),
            });
        };
        match waiter.race(cx, poll_call) {
            Race::Pending => Poll::Pending,
            Race::Cancelled(cancelled) => {
                this.future.set(None);
                Poll::Ready(Err(cut(cancelled)))
            }
            Race::Ready(result) => {
                this.future.set(None);
                let token = waiter.token().clone();
                let err = match result {
                    Ok(response) => {
                        waiter.release();
                        return Poll::Ready(Ok(
                            response.map(|body| ClientBody::watched(token, body))
                        ));
                    }
                    Err(err) => err.into(),
                };
                if let Err(cancelled) = token.raise_if_triggered() {
                    // The transport failed because the trigger closed it, most likely.
                    waiter.release();
                    return Poll::Ready(Err(cut(cancelled)));
                }
                let token_due = this.due_within.is_some_and(|within| {
                    token.deadline().is_some_and(|deadline| {
                        deadline.saturating_duration_since(Instant::now()) <= within
                    })
                });
                // A channel timeout (`Endpoint::timeout`) shorter than the header's is the
                // channel's own error, returned as it is.
                if token_due && is_timeout_expired(&*err) {
                    // The channel timed the deadline we sent, which is the token's less the
                    // margin (and rounded down by at most one unit of the header): the
                    // token's own deadline is due within that margin. Its status
                    // (`DEADLINE_EXCEEDED`, its reason) is the right answer, so the call
                    // fails when the token fires rather than with the channel's `CANCELLED`.
                    if waiter.poll(cx).is_pending() {
                        *this.expired = Some(err);
                        return Poll::Pending;
                    }
                    if let Err(cancelled) = token.raise_if_triggered() {
                        return Poll::Ready(Err(cut(cancelled)));
                    }
                }
                waiter.release();
                Poll::Ready(Err(err))
            }
        }
    }
}

impl<F> fmt::Debug for ClientFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientFuture")
            .field("token", &self.waiter.as_ref().map(Waiter::token))
            .field("in_flight", &self.future.is_some())
            .finish()
    }
}
