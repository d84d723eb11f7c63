//! Request tokens that outlive the handler: [`ScopedBody`], [`scope_response`] and
//! [`ScopeResponse`], which keep a request's token armed until its response body ends.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::guard::DropGuard;
use crate::{CancelToken, Reason, ReasonKind, Scope};

/// The reason a [`ScopedBody`] dropped before its end triggers its token with.
fn body_dropped_reason() -> Reason {
    Reason::with_message(
        ReasonKind::Dropped,
        "the response body was dropped before it ended (client gone)",
    )
}

pin_project! {
    /// A response body that keeps a request's token armed while it streams: dropped before it
    /// ended, it triggers the token with [`ReasonKind::Dropped`](crate::ReasonKind::Dropped).
    ///
    /// HTTP servers drop a response body when its client disconnects mid-body, so work that
    /// produces the body (a producer task feeding a channel, a query streaming rows) can hold
    /// the token and stop when nobody is reading any more. The body has ended, and the token
    /// is left alone, once it yielded its end of stream or an error, or reported
    /// [`is_end_stream`](Body::is_end_stream) after a frame or when it was wrapped (servers
    /// stop polling a body that says it has ended).
    ///
    /// Frames, errors and size hints pass through untouched: this body does not stop when
    /// the token is triggered by someone else (wrap the inner body in a
    /// [`CancelBody`](super::CancelBody) for that).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_body_util::{BodyExt, Full};
    /// use cancel_token::http::ScopedBody;
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// # futures_lite::future::block_on(async {
    /// // Read to the end: the token is left alone.
    /// let token = CancelToken::named("request");
    /// let body = ScopedBody::new(token.clone(), Full::new(&b"report"[..]));
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), &b"report"[..]);
    /// assert!(!token.is_triggered());
    ///
    /// // Dropped unread (the client went away): the token fires.
    /// let token = CancelToken::named("request");
    /// drop(ScopedBody::new(token.clone(), Full::new(&b"report"[..])));
    /// assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
    /// # });
    /// ```
    #[must_use = "dropping a ScopedBody before it ends triggers its token"]
    pub struct ScopedBody<B> {
        guard: Option<DropGuard>,
        // Data bytes still to come when the length is known (a `Content-Length` header or an
        // exact size hint): servers stop polling a body once that much was written.
        remaining: Option<u64>,
        #[pin]
        body: B,
    }
}

impl<B: Body> ScopedBody<B> {
    /// Wraps `body` so that dropping it before it ends triggers `token` with
    /// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped). A body that has already ended
    /// ([`is_end_stream`](Body::is_end_stream)) leaves the token alone.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_body_util::Empty;
    /// use cancel_token::http::ScopedBody;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// drop(ScopedBody::new(token.clone(), Empty::<&[u8]>::new()));
    /// assert!(!token.is_triggered(), "an empty body has nothing left to send");
    /// ```
    pub fn new(token: CancelToken, body: B) -> Self {
        Self::guarded(
            Some(token.drop_guard_with(body_dropped_reason())),
            body,
            None,
        )
    }

    /// A body that guards no token: for responses that share a type with guarded ones.
    #[cfg(feature = "grpc")]
    pub(crate) fn unguarded(body: B) -> Self {
        Self::guarded(None, body, None)
    }

    /// Takes over a scope's guard (re-armed with the body's reason), if there is one.
    /// `length` is the response's `Content-Length`, if it has one.
    fn guarded(guard: Option<DropGuard>, body: B, length: Option<u64>) -> Self {
        let guard = guard.map(|guard| guard.disarm().drop_guard_with(body_dropped_reason()));
        let remaining = length.or_else(|| body.size_hint().exact());
        let mut scoped = ScopedBody {
            guard,
            remaining,
            body,
        };
        if scoped.body.is_end_stream() || scoped.remaining == Some(0) {
            disarm(&mut scoped.guard);
        }
        scoped
    }
}

impl<B> ScopedBody<B> {
    /// The token this body guards, until the body has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_body_util::Full;
    /// use cancel_token::http::ScopedBody;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let body = ScopedBody::new(token.clone(), Full::new(&b"x"[..]));
    /// assert_eq!(body.token(), Some(&token));
    /// # futures_lite::future::block_on(http_body_util::BodyExt::collect(body)).unwrap();
    /// ```
    pub fn token(&self) -> Option<&CancelToken> {
        self.guard.as_ref().map(DropGuard::token)
    }
}

fn disarm(guard: &mut Option<DropGuard>) {
    if let Some(guard) = guard.take() {
        guard.disarm();
    }
}

impl<B: Body> Body for ScopedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let frame = std::task::ready!(this.body.as_mut().poll_frame(cx));
        let ended = match &frame {
            // Trailers are always the last frame: servers stop polling after them.
            Some(Ok(frame)) if frame.is_trailers() => true,
            Some(Ok(frame)) => {
                if let (Some(remaining), Some(data)) = (this.remaining.as_mut(), frame.data_ref()) {
                    let len = u64::try_from(data.remaining()).unwrap_or(u64::MAX);
                    *remaining = remaining.saturating_sub(len);
                }
                *this.remaining == Some(0) || this.body.is_end_stream()
            }
            Some(Err(_)) | None => true,
        };
        if ended {
            disarm(this.guard);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> fmt::Debug for ScopedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedBody")
            .field("token", &self.token())
            .finish()
    }
}

/// [`scope()`](crate::scope()) for a handler that answers with an HTTP response: the
/// handler's token stays armed until the response body ends, so a client that disconnects
/// while the body streams triggers it too.
///
/// The token is a child of `parent`, handed to `handler`, and triggered with
/// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped) if the handler's future is dropped
/// before it completes (the client left while the handler ran) or the response body is
/// dropped before it ends (the client left mid-body). A handler that returns an error, and a
/// body that ends or fails on its own, leave it alone.
///
/// A response without a body leaves the token alone once the handler returned: 1xx, 204 and
/// 304 are recognised by their status. A response to `HEAD` is not (the request is yours,
/// not this function's): servers drop its body unpolled, which would read as "client gone",
/// so answer `HEAD` outside `scope_response`, or use [`ScopeLayer`](super::ScopeLayer), which
/// sees the method.
///
/// The shape fits `hyper::service::service_fn`: the handler returns
/// `Result<http::Response<B>, E>`, and so does the returned future, with the body wrapped in
/// a [`ScopedBody`]. With tower or axum, [`ScopeLayer`](super::ScopeLayer) does the same for
/// every request.
///
/// # Cancellation safety
///
/// Dropping the future before it completes triggers the handler's token.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use http_body_util::Full;
/// use cancel_token::http::scope_response;
/// use cancel_token::{CancelToken, ReasonKind};
///
/// # futures_lite::future::block_on(async {
/// let server = CancelToken::named("server");
/// let (tx, rx) = std::sync::mpsc::channel();
/// // In hyper: `service_fn(move |request| scope_response(&server, |token| handler(request, token)))`.
/// let response = scope_response(&server, |token| async move {
///     tx.send(token).unwrap(); // for the work that produces the body
///     Ok::<_, Infallible>(http::Response::new(Full::new(&b"a long report"[..])))
/// })
/// .await
/// .unwrap();
/// let token = rx.recv().unwrap();
/// assert!(!token.is_triggered(), "the handler returned, the body still streams");
///
/// drop(response); // the client went away before the body was sent
/// assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
/// assert!(!server.is_triggered());
/// # });
/// ```
pub fn scope_response<H, F, B, E>(parent: &CancelToken, handler: H) -> ScopeResponse<F>
where
    H: FnOnce(CancelToken) -> F,
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Body,
{
    ScopeResponse {
        scope: crate::scope(parent, handler),
        has_body: true,
    }
}

pin_project! {
    /// Future for the [`scope_response()`] function, and the response future of
    /// [`ScopeService`](super::ScopeService).
    ///
    /// # Cancellation safety
    ///
    /// Dropping it before it completes triggers the request's token with
    /// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped); once it completes, the response's
    /// [`ScopedBody`] guards the token.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::{scope_response, ScopeResponse};
    /// use cancel_token::CancelToken;
    ///
    /// let future: ScopeResponse<_> = scope_response(&CancelToken::new(), |_token| async {
    ///     Ok::<_, std::io::Error>(http::Response::new(http_body_util::Empty::<&[u8]>::new()))
    /// });
    /// let response = futures_lite::future::block_on(future).unwrap();
    /// assert_eq!(response.status(), 200);
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ScopeResponse<F> {
        #[pin]
        scope: Scope<F>,
        // `false` for a response that has no body (a response to HEAD).
        has_body: bool,
    }
}

impl<F> ScopeResponse<F> {
    /// Guards `token` while `future` runs and then while its response body streams.
    #[cfg(feature = "tower")]
    pub(crate) fn new(token: CancelToken, future: F, has_body: bool) -> Self {
        ScopeResponse {
            scope: Scope::new(token, future),
            has_body,
        }
    }
}

impl<F, B, E> Future for ScopeResponse<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Body,
{
    type Output = Result<http::Response<ScopedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let has_body = *this.has_body;
        let (result, mut guard) = std::task::ready!(this.scope.poll_guarded(cx));
        Poll::Ready(match result {
            Ok(response) => {
                if !has_body || !may_have_body(response.status()) {
                    // Servers send no body for these, and drop it unpolled.
                    disarm(&mut guard);
                }
                let length = content_length(response.headers());
                Ok(response.map(|body| ScopedBody::guarded(guard, body, length)))
            }
            Err(err) => {
                disarm(&mut guard);
                Err(err)
            }
        })
    }
}

/// Whether a response with `status` carries a body at all (RFC 9110: 1xx, 204 and 304 do not).
fn may_have_body(status: http::StatusCode) -> bool {
    !(status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED)
}

/// The `Content-Length` of a response, if it has one that parses.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl<F> fmt::Debug for ScopeResponse<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeResponse")
            .field("scope", &self.scope)
            .finish()
    }
}
