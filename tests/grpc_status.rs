//! `Cancelled` and `CancelError` as a `tonic::Status`, and a status back as a `Reason`.
#![cfg(feature = "grpc")]

use std::time::Duration;

use cancel_token::grpc::reason_from_status;
use cancel_token::http::{find_cancelled, CancelError};
use cancel_token::{CancelToken, Cancelled, Reason, ReasonKind};
use tonic::{Code, Status};

fn cancelled_with(name: &'static str, reason: impl Into<Reason>) -> Cancelled {
    let token = CancelToken::named(name);
    token.trigger_with(reason);
    token.raise_if_triggered().unwrap_err()
}

#[test]
fn a_timeout_is_deadline_exceeded() {
    let token = CancelToken::named_with_timeout("deadline", Duration::ZERO);
    let cancelled = token.raise_if_triggered().unwrap_err();
    let text = cancelled.to_string();
    let status = Status::from(cancelled);
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(status.message(), text);
    assert_eq!(
        text,
        "cancellation requested by token deadline: deadline of 0ns elapsed"
    );
    // The cancellation is the status's source, in this process.
    let found = find_cancelled(&status).expect("the source");
    assert_eq!(found.token(), &token);

    let custom = cancelled_with(
        "call",
        Reason::with_message(ReasonKind::Timeout, "the caller's deadline elapsed"),
    );
    assert_eq!(Status::from(custom).code(), Code::DeadlineExceeded);
}

#[test]
fn every_other_kind_is_cancelled() {
    let manual = Status::from(cancelled_with("user", "user pressed stop"));
    assert_eq!(manual.code(), Code::Cancelled);
    assert_eq!(
        manual.message(),
        "cancellation requested by token user: user pressed stop"
    );
    for kind in [
        ReasonKind::Manual,
        ReasonKind::Dropped,
        ReasonKind::Superseded,
        ReasonKind::Signal,
        ReasonKind::Condition,
    ] {
        let status = Status::from(cancelled_with("t", kind));
        assert_eq!(status.code(), Code::Cancelled, "{kind}");
    }
}

#[test]
fn a_cancel_error_maps_either_side() {
    let err: CancelError<Status> = cancelled_with("t", ReasonKind::Timeout).into();
    assert_eq!(Status::from(err).code(), Code::DeadlineExceeded);
    let err = CancelError::Inner(Status::unavailable("down"));
    let status = Status::from(err);
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unavailable, "down")
    );
    // Any error tonic converts, e.g. an io::Error.
    let err: CancelError<std::io::Error> =
        CancelError::Inner(std::io::ErrorKind::BrokenPipe.into());
    assert_ne!(Status::from(err).code(), Code::Ok);
}

#[test]
fn statuses_back_to_reasons() {
    let reason = reason_from_status(&Status::deadline_exceeded("too slow")).unwrap();
    assert_eq!(
        (reason.kind(), reason.message()),
        (ReasonKind::Timeout, Some("too slow"))
    );
    let reason = reason_from_status(&Status::cancelled("shutting down")).unwrap();
    assert_eq!(
        (reason.kind(), reason.message()),
        (ReasonKind::Manual, Some("shutting down"))
    );
    let reason = reason_from_status(&Status::cancelled("")).unwrap();
    assert_eq!(reason.message(), None);
    for code in (0..=16).map(Code::from) {
        if !matches!(code, Code::Cancelled | Code::DeadlineExceeded) {
            assert!(
                reason_from_status(&Status::new(code, "x")).is_none(),
                "{code:?}"
            );
        }
    }
}

#[test]
fn a_round_trip_keeps_the_kind_and_the_text() {
    let cancelled = cancelled_with("call", Reason::with_message(ReasonKind::Timeout, "250ms"));
    let text = cancelled.to_string();
    let reason = reason_from_status(&Status::from(cancelled)).unwrap();
    assert_eq!(reason.kind(), ReasonKind::Timeout);
    assert_eq!(reason.message(), Some(text.as_str()));

    // A caller stops the rest of its work for the callee's reason.
    let request = CancelToken::named("request");
    request.trigger_with(reason);
    let err = request.raise_if_triggered().unwrap_err();
    assert_eq!(Status::from(err).code(), Code::DeadlineExceeded);
}
