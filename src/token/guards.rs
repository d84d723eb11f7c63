//! Drop guards: a token that triggers itself when a scope ends, owning a handle of the token
//! ([`DropGuard`]) or borrowing one ([`DropGuardRef`]).

use crate::guard::{DropGuard, DropGuardRef};
use crate::reason::{Reason, ReasonKind};
use crate::CancelToken;

impl CancelToken {
    /// Turns this handle into a guard that triggers the token, with
    /// [`ReasonKind::Dropped`](crate::ReasonKind::Dropped), when dropped, unless
    /// [disarmed](DropGuard::disarm). See [`DropGuard`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let token = CancelToken::new();
    /// {
    ///     let _guard = token.clone().drop_guard();
    ///     // ... work that may return early or panic ...
    /// }
    /// assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
    /// ```
    pub fn drop_guard(self) -> DropGuard {
        DropGuard::new(self, Reason::new(ReasonKind::Dropped))
    }

    /// Like [`drop_guard`](Self::drop_guard), triggering with `reason` instead: say what
    /// dropping the guard means ("client disconnected", "job aborted").
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Reason, ReasonKind};
    ///
    /// let token = CancelToken::named("upload");
    /// drop(token.clone().drop_guard_with(Reason::with_message(
    ///     ReasonKind::Dropped,
    ///     "client disconnected",
    /// )));
    /// let err = token.raise_if_triggered().unwrap_err();
    /// assert_eq!(err.to_string(), "cancellation requested by token upload: client disconnected");
    /// ```
    pub fn drop_guard_with(self, reason: impl Into<Reason>) -> DropGuard {
        DropGuard::new(self, reason.into())
    }

    /// A guard that borrows this token and triggers it, with
    /// [`ReasonKind::Dropped`], when dropped, unless [disarmed](DropGuardRef::disarm). See
    /// [`DropGuardRef`].
    ///
    /// The counterpart of tokio-util's `CancellationToken::drop_guard_ref`. Unlike
    /// [`drop_guard`](Self::drop_guard) it needs no handle of its own, so it suits a token kept
    /// in a field or passed by reference.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// fn upload(token: &CancelToken, chunks: &[&str]) -> Result<usize, String> {
    ///     let guard = token.drop_guard_ref(); // any early return cancels the rest
    ///     let mut sent = 0;
    ///     for chunk in chunks {
    ///         if chunk.is_empty() {
    ///             return Err("empty chunk".into());
    ///         }
    ///         sent += chunk.len();
    ///     }
    ///     guard.disarm();
    ///     Ok(sent)
    /// }
    ///
    /// let token = CancelToken::new();
    /// assert_eq!(upload(&token, &["ab", "c"]), Ok(3));
    /// assert!(!token.is_triggered());
    /// assert!(upload(&token, &["ab", ""]).is_err());
    /// assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
    /// ```
    pub fn drop_guard_ref(&self) -> DropGuardRef<'_> {
        DropGuardRef::new(self, Reason::new(ReasonKind::Dropped))
    }

    /// Like [`drop_guard_ref`](Self::drop_guard_ref), triggering with `reason` instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::named("session");
    /// drop(token.drop_guard_ref_with("handler returned early"));
    /// let err = token.raise_if_triggered().unwrap_err();
    /// assert_eq!(err.to_string(), "cancellation requested by token session: handler returned early");
    /// ```
    pub fn drop_guard_ref_with(&self, reason: impl Into<Reason>) -> DropGuardRef<'_> {
        DropGuardRef::new(self, reason.into())
    }
}
