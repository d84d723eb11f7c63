//! Named deadline tokens and what a deadline's reason says: a deadline given as a duration
//! (`with_timeout`, `child_with_timeout`, `trigger_after`) says it ("deadline of 20ms
//! elapsed"); one given as an `Instant` (`with_deadline`, `trigger_at`) has no message; a reason
//! of the caller's (`trigger_after_with`) is kept as it is. Deadlines in the past fire before
//! the constructor returns, so most of this needs no clock.

mod common;

use std::time::{Duration, Instant};

use cancel_token::{CancelToken, Reason, ReasonKind};
use common::{within, LIMIT};

const HOUR: Duration = Duration::from_secs(3600);

fn message(token: &CancelToken) -> Option<String> {
    let reason = token.reason().expect("triggered");
    assert_eq!(reason.kind(), ReasonKind::Timeout);
    reason.message().map(str::to_owned)
}

#[test]
fn a_timeout_that_fires_says_its_duration() {
    let token = CancelToken::with_timeout(Duration::from_millis(20));
    let waiter = token.clone();
    within(LIMIT, move || waiter.wait_blocking());
    assert_eq!(message(&token).as_deref(), Some("deadline of 20ms elapsed"));
    assert_eq!(
        token.reason().unwrap().to_string(),
        "deadline of 20ms elapsed"
    );
}

#[test]
fn a_zero_timeout_fires_at_once_and_says_so() {
    let token = CancelToken::with_timeout(Duration::ZERO);
    assert_eq!(message(&token).as_deref(), Some("deadline of 0ns elapsed"));
}

#[test]
fn the_duration_is_printed_as_debug_prints_it() {
    let token = CancelToken::with_timeout(Duration::from_micros(1500));
    let waiter = token.clone();
    within(LIMIT, move || waiter.wait_blocking());
    assert_eq!(
        message(&token).as_deref(),
        Some("deadline of 1.5ms elapsed")
    );
}

#[test]
fn named_with_timeout_names_the_token_and_its_error_says_both() {
    let token = CancelToken::named_with_timeout("export", Duration::ZERO);
    assert_eq!(token.name(), Some("export"));
    assert_eq!(
        token.raise_if_triggered().unwrap_err().to_string(),
        "cancellation requested by token export: deadline of 0ns elapsed"
    );

    let pending = CancelToken::named_with_timeout("report", HOUR);
    assert_eq!(pending.name(), Some("report"));
    assert!(!pending.is_triggered());
    assert!(pending.deadline().is_some());
    assert_eq!(format!("{pending}"), "report");

    let never = CancelToken::named_with_timeout("forever", Duration::MAX);
    assert_eq!(never.deadline(), None, "Instant overflow means never");
}

#[test]
fn named_with_deadline_names_the_token_and_keeps_a_plain_timeout() {
    let past = CancelToken::named_with_deadline("batch", Instant::now());
    assert_eq!(past.name(), Some("batch"));
    assert_eq!(message(&past), None);
    assert_eq!(
        past.raise_if_triggered().unwrap_err().to_string(),
        "cancellation requested by token batch: deadline elapsed"
    );

    let deadline = Instant::now() + HOUR;
    let future = CancelToken::named_with_deadline("nightly", deadline);
    assert_eq!(future.deadline(), Some(deadline));
    assert!(!future.is_triggered());
}

#[test]
fn deadlines_given_as_instants_have_no_message() {
    assert_eq!(message(&CancelToken::with_deadline(Instant::now())), None);
    let parent = CancelToken::new();
    assert_eq!(message(&parent.child_with_deadline(Instant::now())), None);
    let token = CancelToken::new();
    assert!(token.trigger_at(Instant::now()));
    assert_eq!(message(&token), None);
}

#[test]
fn child_with_timeout_says_its_own_duration_and_inherits_an_earlier_parents() {
    let parent = CancelToken::new();
    let child = parent.child_with_timeout(Duration::ZERO);
    assert_eq!(message(&child).as_deref(), Some("deadline of 0ns elapsed"));
    assert!(!parent.is_triggered());

    // The parent's deadline comes first: the child inherits its reason and its message.
    let parent = CancelToken::with_timeout(Duration::from_millis(10));
    let child = parent.child_with_timeout(HOUR);
    let waiter = child.clone();
    within(LIMIT, move || waiter.wait_blocking());
    assert_eq!(child.triggered_token(), Some(parent));
    assert_eq!(message(&child).as_deref(), Some("deadline of 10ms elapsed"));
}

#[test]
fn trigger_after_says_its_duration_and_a_reason_of_ones_own_is_kept() {
    let token = CancelToken::named("job");
    assert!(token.trigger_after(Duration::ZERO));
    assert_eq!(message(&token).as_deref(), Some("deadline of 0ns elapsed"));

    let grace = CancelToken::new();
    let reason = Reason::with_message(ReasonKind::Timeout, "grace period of 0ns elapsed");
    assert!(grace.trigger_after_with(Duration::ZERO, reason.clone()));
    assert_eq!(grace.reason(), Some(reason));

    let plain = CancelToken::new();
    assert!(plain.trigger_after_with(Duration::ZERO, ReasonKind::Timeout));
    assert_eq!(message(&plain), None, "a plain timeout reason stays plain");
}

#[test]
fn a_manual_trigger_before_the_deadline_keeps_its_own_reason() {
    let token = CancelToken::named_with_timeout("upload", HOUR);
    token.trigger_with("user pressed stop");
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Manual);
    assert_eq!(reason.message(), Some("user pressed stop"));
}
