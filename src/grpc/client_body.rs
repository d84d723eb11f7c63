//! [`ClientBody`]: a call's response body on the client side, ended with the token's status
//! when the token is triggered while the response streams.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Status;

use crate::http::BoxError;
use crate::wait::{Race, Waiter};
use crate::{CancelToken, Cancelled};

/// The error a cut call fails with: a boxed [`Status`], which is what tonic looks for in a
/// transport's error, so the caller gets `DEADLINE_EXCEEDED` or `CANCELLED` and the reason.
pub(super) fn cut(cancelled: Cancelled) -> BoxError {
    Box::new(Status::from(cancelled))
}

pin_project! {
    /// The response body of a [`ClientService`](super::ClientService): the channel's body,
    /// ended with the token's status (a boxed [`Status`] as the error) when the token is
    /// triggered while it streams.
    ///
    /// On a trigger the channel's body is dropped at once, which resets the call's stream, so
    /// the callee sees its client go away.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http_body_util::BodyExt;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    /// use cancel_token::grpc::{ClientBody, ClientLayer};
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let channel = tower::service_fn(|_request: http::Request<()>| async {
    ///     let body = http_body_util::Full::new(bytes::Bytes::from("ab"));
    ///     Ok::<_, Infallible>(http::Response::new(body))
    /// });
    /// let token = CancelToken::new();
    /// let mut service = ClientLayer::with_token(token.clone()).layer(channel);
    /// let response = service.call(http::Request::new(())).await.unwrap();
    /// token.trigger_with(cancel_token::ReasonKind::Timeout);
    /// let body: ClientBody<_> = response.into_body();
    /// let err = body.collect().await.unwrap_err();
    /// let status = err.downcast_ref::<tonic::Status>().unwrap();
    /// assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    /// # });
    /// ```
    #[must_use = "bodies do nothing unless polled"]
    pub struct ClientBody<B> {
        // `None` for a call without a token, and once the body has ended or been cut.
        waiter: Option<Waiter<CancelToken>>,
        // `None` once cut: dropping it resets the stream.
        #[pin]
        body: Option<B>,
    }
}

impl<B> ClientBody<B> {
    pub(super) fn plain(body: B) -> Self {
        ClientBody {
            waiter: None,
            body: Some(body),
        }
    }

    pub(super) fn watched(token: CancelToken, body: B) -> Self {
        ClientBody {
            waiter: Some(Waiter::new(token)),
            body: Some(body),
        }
    }
}

impl<B> Body for ClientBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let mut this = self.project();
        let body = &mut this.body;
        let mut poll_body = |cx: &mut Context<'_>| match body.as_mut().as_pin_mut() {
            Some(body) => body.poll_frame(cx),
            None => Poll::Ready(None),
        };
        let Some(waiter) = this.waiter.as_mut() else {
            return poll_body(cx).map(|frame| frame.map(|frame| frame.map_err(Into::into)));
        };
        match waiter.race(cx, poll_body) {
            Race::Pending => Poll::Pending,
            Race::Cancelled(cancelled) => {
                *this.waiter = None;
                this.body.set(None);
                Poll::Ready(Some(Err(cut(cancelled))))
            }
            Race::Ready(frame) => {
                let ended = match &frame {
                    Some(Ok(frame)) => frame.is_trailers(),
                    Some(Err(_)) | None => true,
                };
                let frame = frame.map(|frame| {
                    frame.map_err(|err| match waiter.token().raise_if_triggered() {
                        Err(cancelled) => cut(cancelled),
                        Ok(()) => err.into(),
                    })
                });
                if ended {
                    *this.waiter = None;
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl<B> fmt::Debug for ClientBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBody")
            .field("token", &self.waiter.as_ref().map(Waiter::token))
            .field("cut", &self.body.is_none())
            .finish()
    }
}
