//! A cancellation as a gRPC status and back: `From<Cancelled> for tonic::Status`,
//! `From<CancelError<E>> for tonic::Status`, and [`reason_from_status`].

use std::sync::Arc;

use tonic::{Code, Status};

use crate::http::CancelError;
use crate::{Cancelled, Reason, ReasonKind};

impl From<Cancelled> for Status {
    /// `DEADLINE_EXCEEDED` for a [`ReasonKind::Timeout`], `CANCELLED` for any other reason,
    /// with the cancellation's `Display` as the message and the [`Cancelled`] as the source
    /// (so [`find_cancelled`](crate::http::find_cancelled) finds it in the status, in this
    /// process).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    /// use tonic::{Code, Status};
    ///
    /// let call = CancelToken::named("call");
    /// call.trigger_with("user pressed stop");
    /// let status = Status::from(call.raise_if_triggered().unwrap_err());
    /// assert_eq!(status.code(), Code::Cancelled);
    /// assert_eq!(status.message(), "cancellation requested by token call: user pressed stop");
    ///
    /// let deadline = CancelToken::named_with_timeout("deadline", Duration::ZERO);
    /// let status = Status::from(deadline.raise_if_triggered().unwrap_err());
    /// assert_eq!(status.code(), Code::DeadlineExceeded);
    /// ```
    fn from(cancelled: Cancelled) -> Status {
        let code = match cancelled.kind() {
            ReasonKind::Timeout => Code::DeadlineExceeded,
            _ => Code::Cancelled,
        };
        let mut status = Status::new(code, cancelled.to_string());
        status.set_source(Arc::new(cancelled));
        status
    }
}

impl<E: Into<Status>> From<CancelError<E>> for Status {
    /// The status of the cancellation (see `From<Cancelled> for Status`), or the inner error's
    /// own conversion.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::CancelError;
    /// use cancel_token::CancelToken;
    /// use tonic::{Code, Status};
    ///
    /// let token = CancelToken::new();
    /// token.trigger();
    /// let err: CancelError<Status> = token.raise_if_triggered().unwrap_err().into();
    /// assert_eq!(Status::from(err).code(), Code::Cancelled);
    ///
    /// let err = CancelError::Inner(Status::not_found("no such report"));
    /// assert_eq!(Status::from(err).code(), Code::NotFound);
    /// ```
    fn from(err: CancelError<E>) -> Status {
        match err {
            CancelError::Cancelled(cancelled) => cancelled.into(),
            CancelError::Inner(inner) => inner.into(),
        }
    }
}

/// The reason a callee's status gives for stopping, so that a caller can trigger its own
/// token with it: `None` unless the status says the call was cancelled or ran out of time.
///
/// - `DEADLINE_EXCEEDED` gives a [`ReasonKind::Timeout`].
/// - `CANCELLED` gives a [`ReasonKind::Manual`]: the code does not say what stopped the callee
///   (its caller, a shutdown, an operator), so the kind is the one that claims least; the
///   message usually does say (a status made by this crate carries the callee's `Cancelled`
///   text, e.g. `"cancellation requested by token server: shutting down"`).
///
/// The message is the status's message, or none if it is empty.
///
/// # Examples
///
/// ```
/// use cancel_token::grpc::reason_from_status;
/// use cancel_token::{CancelToken, ReasonKind};
/// use tonic::Status;
///
/// let status = Status::deadline_exceeded("the caller's deadline elapsed (grpc-timeout: 250m)");
/// let reason = reason_from_status(&status).unwrap();
/// assert_eq!(reason.kind(), ReasonKind::Timeout);
/// assert_eq!(reason.message(), Some(status.message()));
///
/// // Stop the rest of this request's work with the callee's reason.
/// let request = CancelToken::named("request");
/// request.trigger_with(reason);
/// assert_eq!(request.reason().unwrap().kind(), ReasonKind::Timeout);
///
/// assert_eq!(reason_from_status(&Status::cancelled("")).unwrap().kind(), ReasonKind::Manual);
/// assert!(reason_from_status(&Status::not_found("no such report")).is_none());
/// ```
pub fn reason_from_status(status: &Status) -> Option<Reason> {
    let kind = match status.code() {
        Code::DeadlineExceeded => ReasonKind::Timeout,
        Code::Cancelled => ReasonKind::Manual,
        _ => return None,
    };
    Some(match status.message() {
        "" => Reason::new(kind),
        message => Reason::with_message(kind, message.to_owned()),
    })
}
