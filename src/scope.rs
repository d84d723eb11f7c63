//! [`scope()`]: a token for a piece of work that triggers when the work's future is dropped
//! before it completes (a request handler whose client went away).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::guard::DropGuard;
use crate::{CancelToken, Reason, ReasonKind};

/// The reason a [`scope()`] token carries when its future is dropped before it completes.
pub(crate) fn dropped_reason() -> Reason {
    Reason::with_message(
        ReasonKind::Dropped,
        "the request handler was dropped before it finished (client gone)",
    )
}

/// Runs `handler` with a token of its own that is triggered, with
/// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped), if the handler's future is dropped
/// before it completes.
///
/// HTTP servers (hyper, axum, and everything built on them) drop a request's handler future
/// when the client disconnects; so do `select!`s, timeouts and aborted tasks. Code inside the
/// handler cannot see that drop, but work it started elsewhere (a spawned task, a database
/// query on a worker thread, a chained downstream request) can hold the token and stop. The
/// token is a child of `parent`, so a server-wide shutdown token cancels every scope too.
/// When the handler completes normally the token is left untriggered.
///
/// Nothing here is HTTP-specific, so it needs no feature; `cancel_token::http::scope` is the
/// same function. The token covers the handler's future only: for an HTTP response whose body
/// streams after the handler returned, `http::scope_response` (feature `http-body`) and
/// `http::ScopeLayer` (feature `tower`) keep it armed until the body ends.
///
/// # Cancellation safety
///
/// Dropping the future is the point: it triggers the handler's token.
///
/// # Examples
///
/// ```
/// use cancel_token::{scope, CancelToken, ReasonKind};
///
/// let shutdown = CancelToken::named("shutdown");
/// let (tx, rx) = std::sync::mpsc::channel();
///
/// // The server drops the handler future when the client goes away.
/// let handler = scope(&shutdown, move |token| async move {
///     tx.send(token).unwrap(); // hand the token to background work
///     futures_lite::future::pending::<()>().await // a slow response
/// });
/// futures_lite::future::block_on(futures_lite::future::poll_once(handler));
///
/// let token = rx.recv().unwrap();
/// assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
/// assert!(!shutdown.is_triggered());
/// ```
pub fn scope<H, F>(parent: &CancelToken, handler: H) -> Scope<F>
where
    H: FnOnce(CancelToken) -> F,
    F: Future,
{
    let token = parent.child();
    let handler = handler(token.clone());
    Scope::new(token, handler)
}

pin_project! {
    /// Future for the [`scope()`] function.
    ///
    /// # Cancellation safety
    ///
    /// Dropping it before it completes triggers the handler's token with
    /// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{scope, CancelToken, Scope};
    ///
    /// let token_out = std::sync::Mutex::new(None);
    /// let handler: Scope<_> = scope(&CancelToken::new(), |token| {
    ///     *token_out.lock().unwrap() = Some(token);
    ///     async { "response" }
    /// });
    /// assert_eq!(futures_lite::future::block_on(handler), "response");
    /// let token = token_out.lock().unwrap().take().unwrap();
    /// assert!(!token.is_triggered(), "a completed handler leaves its token alone");
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Scope<F> {
        guard: Option<DropGuard>,
        #[pin]
        handler: F,
    }
}

impl<F> Scope<F> {
    /// Guards `token` while `handler` runs.
    pub(crate) fn new(token: CancelToken, handler: F) -> Self {
        Scope {
            guard: Some(token.drop_guard_with(dropped_reason())),
            handler,
        }
    }
}

impl<F: Future> Scope<F> {
    /// Polls the handler; when it completes, hands over the guard, still armed, so that the
    /// caller can extend the token's life (over a response body) or disarm it. `None` only if
    /// the handler completes twice.
    pub(crate) fn poll_guarded(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<(F::Output, Option<DropGuard>)> {
        let this = self.project();
        let output = std::task::ready!(this.handler.poll(cx));
        Poll::Ready((output, this.guard.take()))
    }
}

impl<F: Future> Future for Scope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let (output, guard) = std::task::ready!(self.poll_guarded(cx));
        if let Some(guard) = guard {
            guard.disarm();
        }
        Poll::Ready(output)
    }
}

impl<F> fmt::Debug for Scope<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("token", &self.guard.as_ref().map(DropGuard::token))
            .finish()
    }
}
