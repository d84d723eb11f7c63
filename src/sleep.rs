//! [`Sleep`] and [`SleepOwned`]: a pause that the token cuts short.
//!
//! A sleep is a [`child`](CancelToken::child) of the token that also triggers itself after the
//! duration, on the crate's own timer threads, and one registration on that child: it wakes the
//! task for either event with no runtime timer anywhere. When it wakes, the token is looked at
//! first, so a trigger that lands as the duration ends is a cancellation.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::deadline::DeadlineReason;
use crate::error::Cancelled;
use crate::wait::{TokenRef, Waiter};
use crate::CancelToken;

/// The state of [`Sleep`] and [`SleepOwned`]: the token, and a wait on a child of it that
/// triggers itself when the duration is over.
struct Sleeper<T: TokenRef> {
    token: T,
    timer: Waiter<CancelToken>,
}

impl<T: TokenRef> Sleeper<T> {
    fn new(token: T, duration: Duration) -> Self {
        let timer = token.token().child();
        // A plain timeout: the timer's reason is never shown, so nothing is formatted for it.
        // A duration that overflows an `Instant` sets none, and only the token ends the sleep.
        timer.set_deadline_after(duration, DeadlineReason::Plain);
        Sleeper {
            token,
            timer: Waiter::new(timer),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Cancelled>> {
        // Cancellation wins ties: the token is checked before the timer, and again after it
        // (the child wakes for either).
        self.token.token().raise_if_triggered()?;
        match self.timer.poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.token.token().raise_if_triggered()),
            Poll::Pending => Poll::Pending,
        }
    }

    fn fmt(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("token", self.token.token())
            .field("deadline", &self.timer.token().deadline())
            .finish()
    }
}

/// Future for the [`CancelToken::sleep()`] method.
///
/// Resolves to `Ok(())` once the duration has passed, or to `Err(Cancelled)` as soon as the
/// token is triggered, whichever comes first. The duration counts from the call to `sleep`,
/// not from the first poll. It needs no runtime: the crate's timer threads wake it.
///
/// # Cancellation safety
///
/// Dropping the future has no effect on the token; it removes its timer entry and its
/// registration at once.
///
/// # Fairness
///
/// Cancellation wins ties: the token is checked before the timer at every poll. A token
/// triggered before the first poll gives `Err` at that poll, even for `Duration::ZERO`; an
/// untriggered token and `Duration::ZERO` give `Ok(())` at the first poll.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::CancelToken;
///
/// # futures_lite::future::block_on(async {
/// let token = CancelToken::new();
/// let sleep = token.sleep(Duration::from_millis(5));
/// assert_eq!(sleep.token(), &token);
/// assert_eq!(sleep.await, Ok(()));
/// # });
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Sleep<'a> {
    sleeper: Sleeper<&'a CancelToken>,
}

impl<'a> Sleep<'a> {
    pub(crate) fn new(token: &'a CancelToken, duration: Duration) -> Self {
        Sleep {
            sleeper: Sleeper::new(token, duration),
        }
    }

    /// The token that cuts this sleep short.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let sleep = token.sleep(Duration::from_secs(1));
    /// assert_eq!(sleep.token(), &token);
    /// ```
    pub fn token(&self) -> &'a CancelToken {
        self.sleeper.token
    }
}

impl Future for Sleep<'_> {
    type Output = Result<(), Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().sleeper.poll(cx)
    }
}

impl fmt::Debug for Sleep<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.sleeper.fmt("Sleep", f)
    }
}

/// Future for the [`CancelToken::sleep_owned()`] method.
///
/// Like [`Sleep`], but it owns a handle of the token, so it is `Send + 'static` and can be
/// spawned or stored.
///
/// # Cancellation safety
///
/// Dropping the future has no effect on the token; it removes its timer entry and its
/// registration at once.
///
/// # Fairness
///
/// Cancellation wins ties, as for [`Sleep`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::CancelToken;
///
/// let token = CancelToken::new();
/// let sleep = token.clone().sleep_owned(Duration::from_secs(3600));
/// let task = std::thread::spawn(move || futures_lite::future::block_on(sleep));
/// token.trigger_with("stop");
/// let err = task.join().unwrap().unwrap_err();
/// assert_eq!(err.reason().message(), Some("stop"));
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct SleepOwned {
    sleeper: Sleeper<CancelToken>,
}

impl SleepOwned {
    pub(crate) fn new(token: CancelToken, duration: Duration) -> Self {
        SleepOwned {
            sleeper: Sleeper::new(token, duration),
        }
    }

    /// The token that cuts this sleep short.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let sleep = token.clone().sleep_owned(Duration::from_secs(1));
    /// assert_eq!(sleep.token(), &token);
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.sleeper.token
    }
}

impl Future for SleepOwned {
    type Output = Result<(), Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().sleeper.poll(cx)
    }
}

impl fmt::Debug for SleepOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.sleeper.fmt("SleepOwned", f)
    }
}
