//! [`DropGuard`] and [`DropGuardRef`]: a token that triggers itself when a scope ends, owning
//! a handle of it or borrowing one.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::thread;

use crate::reason::Reason;
use crate::CancelToken;

/// A handle that triggers its token when dropped, unless [disarmed](DropGuard::disarm): with
/// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped) when made by
/// [`CancelToken::drop_guard`], with a reason of your choice when made by
/// [`CancelToken::drop_guard_with`].
///
/// It ties the life of background work to a scope: every early return, `?` and panic that
/// leaves the scope cancels the work.
///
/// # Panics
///
/// Dropping the guard triggers the token, and so runs its callbacks; a panicking callback's
/// panic propagates from the drop. While the thread is already unwinding from another panic,
/// such a callback panic is swallowed instead, so that it cannot abort the process.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, ReasonKind};
///
/// fn work(token: CancelToken, fail: bool) -> Result<(), &'static str> {
///     let guard = token.drop_guard();
///     if fail {
///         return Err("failed early"); // the guard triggers the token
///     }
///     guard.disarm(); // success: leave the token alone
///     Ok(())
/// }
///
/// let ok = CancelToken::new();
/// work(ok.clone(), false).unwrap();
/// assert!(!ok.is_triggered());
///
/// let failed = CancelToken::new();
/// work(failed.clone(), true).unwrap_err();
/// assert_eq!(failed.reason().unwrap().kind(), ReasonKind::Dropped);
/// ```
#[must_use = "dropping a DropGuard triggers its token at once"]
pub struct DropGuard {
    token: Option<CancelToken>,
    reason: Reason,
}

impl DropGuard {
    pub(crate) fn new(token: CancelToken, reason: Reason) -> Self {
        DropGuard {
            token: Some(token),
            reason,
        }
    }

    /// Gives the token back without triggering it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let guard = CancelToken::new().drop_guard();
    /// let token = guard.disarm();
    /// assert!(!token.is_triggered());
    /// ```
    pub fn disarm(mut self) -> CancelToken {
        self.token
            .take()
            .expect("a DropGuard holds its token until dropped or disarmed")
    }

    /// The guarded token.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let guard = CancelToken::named("job").drop_guard();
    /// assert_eq!(guard.token().name(), Some("job"));
    /// # guard.disarm();
    /// ```
    pub fn token(&self) -> &CancelToken {
        self.token
            .as_ref()
            .expect("a DropGuard holds its token until dropped or disarmed")
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            trigger_on_drop(&token, std::mem::take(&mut self.reason));
        }
    }
}

/// What dropping an armed guard does: trigger, without turning a callback's panic into a
/// second panic (an abort) while the thread is already unwinding.
fn trigger_on_drop(token: &CancelToken, reason: Reason) {
    if thread::panicking() {
        // A second panic while unwinding aborts the process; the token is triggered whether
        // or not a callback panics, so the payload can be dropped.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| token.trigger_with(reason))) {
            crate::walk::drop_payload(payload);
        }
    } else {
        token.trigger_with(reason);
    }
}

impl fmt::Debug for DropGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropGuard")
            .field("token", &self.token)
            .field("reason", &self.reason)
            .finish()
    }
}

/// A guard that borrows its token and triggers it when dropped, unless
/// [disarmed](DropGuardRef::disarm): the borrowing twin of [`DropGuard`], made by
/// [`CancelToken::drop_guard_ref`] (with [`ReasonKind::Dropped`](crate::ReasonKind::Dropped))
/// or [`CancelToken::drop_guard_ref_with`] (with a reason of your choice).
///
/// It mirrors tokio-util's `DropGuardRef` (`CancellationToken::drop_guard_ref`): use it where
/// the token is a field or a parameter you only borrow, so no handle has to be cloned.
///
/// # Panics
///
/// As for [`DropGuard`]: a panicking callback's panic propagates from the drop, except while
/// the thread is already unwinding, where it is swallowed.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, ReasonKind};
///
/// struct Job {
///     token: CancelToken,
/// }
///
/// impl Job {
///     fn step(&self, fail: bool) -> Result<(), &'static str> {
///         let guard = self.token.drop_guard_ref();
///         if fail {
///             return Err("step failed"); // the guard triggers the job's token
///         }
///         guard.disarm();
///         Ok(())
///     }
/// }
///
/// let job = Job { token: CancelToken::new() };
/// job.step(false).unwrap();
/// assert!(!job.token.is_triggered());
/// job.step(true).unwrap_err();
/// assert_eq!(job.token.reason().unwrap().kind(), ReasonKind::Dropped);
/// ```
#[must_use = "dropping a DropGuardRef triggers its token at once"]
pub struct DropGuardRef<'a> {
    token: Option<&'a CancelToken>,
    reason: Reason,
}

impl<'a> DropGuardRef<'a> {
    pub(crate) fn new(token: &'a CancelToken, reason: Reason) -> Self {
        DropGuardRef {
            token: Some(token),
            reason,
        }
    }

    /// Lets go of the token without triggering it, and gives back the borrow.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let back = token.drop_guard_ref().disarm();
    /// assert!(!back.is_triggered());
    /// ```
    pub fn disarm(mut self) -> &'a CancelToken {
        self.token
            .take()
            .expect("a DropGuardRef holds its token until dropped or disarmed")
    }

    /// The guarded token.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::named("job");
    /// let guard = token.drop_guard_ref();
    /// assert_eq!(guard.token().name(), Some("job"));
    /// # guard.disarm();
    /// ```
    pub fn token(&self) -> &'a CancelToken {
        self.token
            .expect("a DropGuardRef holds its token until dropped or disarmed")
    }
}

impl Drop for DropGuardRef<'_> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            trigger_on_drop(token, std::mem::take(&mut self.reason));
        }
    }
}

impl fmt::Debug for DropGuardRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropGuardRef")
            .field("token", &self.token)
            .field("reason", &self.reason)
            .finish()
    }
}
