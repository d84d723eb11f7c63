//! One call on a tonic server under a [`ServerLayer`](super::ServerLayer): [`ServerFuture`],
//! which races the service method against the call's token, and [`ServerBody`], which keeps
//! the token armed while the response streams and ends the stream with the token's status.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Status;

use super::server::Deadline;
use crate::http::{ScopeResponse, ScopedBody};
use crate::wait::{Race, Waiter};
use crate::CancelToken;

/// A call's token and deadline, watched while the call runs and while its response streams.
struct Watch {
    waiter: Waiter<CancelToken>,
    deadline: Option<Deadline>,
}

impl Watch {
    /// Triggers the token with the deadline's reason if the deadline is due, whether or not
    /// its timer has fired yet. The deadline timers of the caller, of tonic and our own race:
    /// a call dropped (or polled) at or after its deadline ended because of it, and the
    /// token must say so rather than `Dropped`.
    fn expire_if_due(&self) {
        if let Some(deadline) = &self.deadline {
            if Instant::now() >= deadline.at {
                self.waiter.token().trigger_with(deadline.reason.clone());
            }
        }
    }
}

/// The response to a call answered by the layer: `status` and no body.
fn answer<B: Body + Default>(status: Status) -> http::Response<ServerBody<B>> {
    status.into_http::<B>().map(ServerBody::plain)
}

pin_project! {
    /// Future for the [`ServerService`](super::ServerService)'s response.
    ///
    /// # Cancellation safety
    ///
    /// Dropping it before it completes triggers the call's token with
    /// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped) (with the deadline's reason if the
    /// deadline is due). On a trigger, the service's future is dropped at once and the call
    /// answered with the token's status.
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
            let in_flight = this.call.as_ref().as_pin_ref().is_some();
            if let (Some(watch), true) = (this.watch.as_ref(), in_flight) {
                watch.expire_if_due();
            }
        }
    }
}

impl<F> ServerFuture<F> {
    /// A call the service runs, watched by `token` (with its `deadline`).
    pub(super) fn running(
        token: CancelToken,
        deadline: Option<Deadline>,
        call: ScopeResponse<F>,
    ) -> Self {
        ServerFuture {
            watch: Some(Watch {
                waiter: Waiter::new(token),
                deadline,
            }),
            answer: None,
            call: Some(call),
        }
    }

    /// A call the layer answers with `status`, without the service.
    pub(super) fn answer(status: Status) -> Self {
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
        // tonic's server times the call's `grpc-timeout` too, from a moment after ours began,
        // and answers `CANCELLED` when its timer fires. It polls this future first: when its
        // timer has fired, ours is due, and the call is answered as a timeout.
        watch.expire_if_due();
        let call = &mut this.call;
        let raced = watch
            .waiter
            .race(cx, |cx| match call.as_mut().as_pin_mut() {
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
    /// The response body of a [`ServerService`](super::ServerService): the service's body,
    /// which triggers the call's token with
    /// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped) if it is dropped before its end (a
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
    /// let call = service.call(http::Request::new(()));
    /// let response = futures_lite::future::block_on(call).unwrap();
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
