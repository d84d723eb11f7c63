//! [`retry`]: attempts with a back-off that the token can cut short.

use std::future::Future;
use std::time::Duration;

use super::{send, CancelError};
use crate::CancelToken;

/// What to do with the outcome of an attempt; returned by the `classify` function of
/// [`retry`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::http::Retry;
///
/// fn classify(status: &Result<u16, std::io::Error>) -> Retry {
///     match status {
///         Ok(503) => Retry::After(Duration::from_secs(1)), // the server's Retry-After
///         Ok(status) if *status >= 500 => Retry::Retry,
///         Ok(_) => Retry::Done,
///         Err(_) => Retry::Retry,
///     }
/// }
/// assert_eq!(classify(&Ok(200)), Retry::Done);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retry {
    /// Return this outcome.
    Done,
    /// Try again after the next back-off delay (or return this outcome if the back-off is
    /// exhausted).
    Retry,
    /// Try again after this delay instead of the back-off's, still using up one of its
    /// steps (for a server's `Retry-After`).
    After(Duration),
}

/// Runs `make` until `classify` says [`Retry::Done`] or the back-off runs out, under `token`.
///
/// - The token is checked before every attempt, so a trigger that lands exactly as a back-off
///   ends sends nothing more.
/// - Each attempt is raced against the token as by [`send`]: triggered mid-flight, the request
///   is dropped at once and the result is [`CancelError::Cancelled`].
/// - A failed outcome is dropped before sleeping (a response holds its connection).
/// - The sleep ([`CancelToken::sleep`]) ends the instant the token triggers. It uses the
///   crate's own timer, so it needs no runtime.
/// - A cancellation is never retried.
///
/// `backoff` is any iterator of delays: one retry per item (`[100ms, 200ms, 400ms]`, or an
/// exponential-back-off iterator from another crate). When it is exhausted the last outcome
/// is returned as it is, `Ok` or [`CancelError::Inner`].
///
/// # Errors
///
/// [`CancelError::Cancelled`] once the token is triggered; otherwise the last attempt's error
/// as [`CancelError::Inner`] when `classify` returns [`Retry::Done`] for it or the back-off is
/// exhausted.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::time::Duration;
/// use cancel_token::http::{retry, Retry};
/// use cancel_token::CancelToken;
///
/// # futures_lite::future::block_on(async {
/// let token = CancelToken::new();
/// let attempts = AtomicUsize::new(0);
/// let status = retry(
///     &token,
///     [Duration::from_millis(1), Duration::from_millis(2)],
///     |outcome: &Result<u16, std::io::Error>| match outcome {
///         Ok(503) => Retry::Retry,
///         _ => Retry::Done,
///     },
///     || {
///         // A stand-in for `client.get(url).send()`: 503 first, then 200.
///         let attempt = attempts.fetch_add(1, Ordering::SeqCst);
///         async move { Ok(if attempt == 0 { 503 } else { 200 }) }
///     },
/// )
/// .await;
/// assert_eq!(status.unwrap(), 200);
/// assert_eq!(attempts.load(Ordering::SeqCst), 2);
/// # });
/// ```
pub async fn retry<B, C, M, F, T, E>(
    token: &CancelToken,
    backoff: B,
    mut classify: C,
    mut make: M,
) -> Result<T, CancelError<E>>
where
    B: IntoIterator<Item = Duration>,
    C: FnMut(&Result<T, E>) -> Retry,
    M: FnMut() -> F,
    F: Future<Output = Result<T, E>>,
{
    let mut delays = backoff.into_iter();
    loop {
        token.raise_if_triggered()?;
        let outcome = match send(token, &mut make).await {
            Ok(value) => Ok(value),
            Err(CancelError::Inner(err)) => Err(err),
            Err(cancelled) => return Err(cancelled),
        };
        let delay = match classify(&outcome) {
            Retry::Done => None,
            Retry::Retry => delays.next(),
            Retry::After(delay) => delays.next().map(|_| delay),
        };
        let Some(delay) = delay else {
            return outcome.map_err(CancelError::Inner);
        };
        drop(outcome);
        token.sleep(delay).await?;
    }
}
