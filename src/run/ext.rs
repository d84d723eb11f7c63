//! [`TokenFutureExt`]: [`CancelToken::run`] and [`CancelToken::run_owned`] written from the
//! future's side, for fluent call chains (the counterpart of tokio-util's `FutureExt`).

use std::future::Future;

use super::future::{Run, RunOwned};
use crate::CancelToken;

/// Runs a future under a token, written from the future's side: `fut.with_token(&token)` is
/// `token.run(fut)`.
///
/// (The `http` feature's `http::CancelFutureExt` is the one for request futures: its
/// `with_cancel` turns the cancellation into the request's error type.)
///
/// The counterpart of tokio-util's `FutureExt::with_cancellation_token` and
/// `with_cancellation_token_owned`, with this crate's output and tie rule: the result is
/// `Result<T, Cancelled>` (tokio-util: `Option<T>`; `.ok()` turns one into the other), and
/// cancellation wins a tie with a ready future (tokio-util lets the future win). See
/// [`Run`].
///
/// Implemented for every future; import it to use it.
///
/// # Examples
///
/// ```
/// use cancel_token::{TokenFutureExt, CancelToken};
///
/// # futures_lite::future::block_on(async {
/// let token = CancelToken::new();
/// let answer = async { 42 }.with_token(&token).await;
/// assert_eq!(answer, Ok(42));
///
/// token.trigger();
/// assert!(std::future::pending::<()>().with_token(&token).await.is_err());
/// # });
/// ```
#[doc(alias = "FutureExt")]
pub trait TokenFutureExt: Future {
    /// Runs this future until it completes or `token` is triggered, whichever comes first:
    /// the same as [`token.run(self)`](CancelToken::run).
    ///
    /// Mirrors tokio-util's `FutureExt::with_cancellation_token`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{TokenFutureExt, CancelToken};
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let stopper = token.clone();
    /// std::thread::spawn(move || stopper.trigger_with("user pressed stop"));
    ///
    /// let result = futures_lite::future::pending::<()>().with_token(&token).await;
    /// assert_eq!(result.unwrap_err().reason().message(), Some("user pressed stop"));
    /// # });
    /// ```
    #[doc(alias = "with_cancellation_token")]
    fn with_token(self, token: &CancelToken) -> Run<'_, Self>
    where
        Self: Sized,
    {
        token.run(self)
    }

    /// Like [`with_token`](Self::with_token), but the returned future owns the token handle,
    /// so it can be spawned: the same as [`token.run_owned(self)`](CancelToken::run_owned).
    ///
    /// Mirrors tokio-util's `FutureExt::with_cancellation_token_owned`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{TokenFutureExt, CancelToken};
    ///
    /// let token = CancelToken::new();
    /// let task = futures_lite::future::pending::<()>().with_token_owned(token.clone());
    /// let handle = std::thread::spawn(move || futures_lite::future::block_on(task));
    /// token.trigger();
    /// assert!(handle.join().unwrap().is_err());
    /// ```
    #[doc(alias = "with_cancellation_token_owned")]
    fn with_token_owned(self, token: CancelToken) -> RunOwned<Self>
    where
        Self: Sized,
    {
        token.run_owned(self)
    }
}

impl<F: Future + ?Sized> TokenFutureExt for F {}
