//! [`CancelBody`]: an `http_body::Body` that stops when a token is triggered.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::send::late_error;
use super::CancelError;
use crate::wait::{Race, Waiter};
use crate::CancelToken;

pin_project! {
    /// A request or response body that stops when its token is triggered.
    ///
    /// Frames pass through untouched until the trigger. Then the wrapped body is dropped at
    /// once (releasing its connection), and the body yields exactly one error frame,
    /// [`CancelError::Cancelled`], and ends. It never ends cleanly after a trigger: a
    /// truncated upload or download must not look complete to whoever reads it. An error of
    /// the wrapped body that arrives once the token is triggered also reads as the
    /// cancellation.
    ///
    /// # Cancellation safety
    ///
    /// Dropping the body drops the wrapped body and its registration on the token.
    ///
    /// # Fairness
    ///
    /// The token is checked before every poll of the wrapped body, so no frame is taken from
    /// it after the trigger is seen.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_body_util::{BodyExt, Full};
    /// use cancel_token::http::CancelBody;
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::named("download");
    /// let body = CancelBody::new(token.clone(), Full::new(&b"hello"[..]));
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), &b"hello"[..]);
    ///
    /// token.trigger_with("user left");
    /// let mut cut = CancelBody::new(token, Full::new(&b"never read"[..]));
    /// let err = cut.frame().await.unwrap().unwrap_err();
    /// assert_eq!(err.reason().unwrap().message(), Some("user left"));
    /// assert!(cut.frame().await.is_none(), "then it ends");
    /// # });
    /// ```
    #[must_use = "bodies do nothing unless polled"]
    pub struct CancelBody<B> {
        waiter: Waiter<CancelToken>,
        #[pin]
        body: Option<B>,
        state: State,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Streaming,
    /// The wrapped body ended on its own.
    Finished,
    /// The cancellation frame was yielded.
    Cancelled,
}

impl<B> CancelBody<B> {
    /// Wraps `body` so that it stops when `token` is triggered.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_body_util::Empty;
    /// use cancel_token::http::CancelBody;
    /// use cancel_token::CancelToken;
    ///
    /// let body = CancelBody::new(CancelToken::new(), Empty::<&[u8]>::new());
    /// assert!(!body.token().is_triggered());
    /// ```
    pub fn new(token: CancelToken, body: B) -> Self {
        CancelBody {
            waiter: Waiter::new(token),
            body: Some(body),
            state: State::Streaming,
        }
    }

    /// The token this body stops on.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_body_util::Empty;
    /// use cancel_token::http::CancelBody;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let body = CancelBody::new(token.clone(), Empty::<&[u8]>::new());
    /// assert_eq!(body.token(), &token);
    /// ```
    pub fn token(&self) -> &CancelToken {
        self.waiter.token()
    }
}

impl<B: Body> Body for CancelBody<B> {
    type Data = B::Data;
    type Error = CancelError<B::Error>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        if *this.state != State::Streaming {
            return Poll::Ready(None);
        }
        let Some(body) = this.body.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        match this.waiter.race(cx, |cx| body.poll_frame(cx)) {
            Race::Pending => Poll::Pending,
            Race::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Race::Ready(Some(Err(err))) => {
                this.body.set(None);
                this.waiter.release();
                *this.state = State::Cancelled;
                Poll::Ready(Some(Err(late_error(this.waiter.token(), err))))
            }
            Race::Ready(None) => {
                this.body.set(None);
                this.waiter.release();
                *this.state = State::Finished;
                Poll::Ready(None)
            }
            Race::Cancelled(cancelled) => {
                this.body.set(None);
                *this.state = State::Cancelled;
                Poll::Ready(Some(Err(cancelled.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.state {
            State::Streaming => {
                // A pending cancellation frame is still to come.
                !self.waiter.token().is_triggered()
                    && self.body.as_ref().is_some_and(Body::is_end_stream)
            }
            State::Finished | State::Cancelled => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Some(body) => body.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

impl<B> fmt::Debug for CancelBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelBody")
            .field("token", self.waiter.token())
            .field("state", &self.state)
            .finish()
    }
}
