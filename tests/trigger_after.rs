//! `trigger_after` / `trigger_at` (and their `_with` forms): a deadline given to an existing
//! token. The earliest deadline wins, the return value says whether this one was set, and a
//! manual trigger keeps its own reason.

mod common;

use std::time::{Duration, Instant};

use cancel_token::{CancelToken, Reason, ReasonKind};
use common::{within, LIMIT};

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn fires_with_a_timeout_after_the_delay() {
    let token = CancelToken::named("job");
    let start = Instant::now();
    assert!(token.trigger_after(Duration::from_millis(30)));
    assert!(!token.is_triggered());
    let waiter = token.clone();
    within(LIMIT, move || waiter.wait_blocking());
    assert!(start.elapsed() >= Duration::from_millis(30), "never early");
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Timeout);
    assert_eq!(token.triggered_token(), Some(token.clone()));
}

#[test]
fn the_earliest_deadline_wins() {
    let token = CancelToken::new();
    assert!(token.trigger_after(2 * HOUR));
    let first = token.deadline().unwrap();
    assert!(token.trigger_after(HOUR));
    let second = token.deadline().unwrap();
    assert!(second < first);
    assert!(!token.trigger_after(3 * HOUR));
    assert!(!token.trigger_at(first));
    assert_eq!(token.deadline(), Some(second));
    assert!(token.trigger_at(second - Duration::from_secs(1)));
}

#[test]
fn a_parent_s_earlier_deadline_applies_to_the_child_already() {
    let parent = CancelToken::new();
    parent.trigger_after(HOUR);
    let child = parent.child();
    assert!(
        !child.trigger_after(2 * HOUR),
        "the parent's deadline comes first"
    );
    assert_eq!(child.deadline(), parent.deadline());
    assert!(child.trigger_after(HOUR / 2));
    assert!(child.deadline() < parent.deadline());
}

#[test]
fn a_triggered_token_takes_no_deadline() {
    let token = CancelToken::new();
    token.trigger();
    assert!(!token.trigger_after(HOUR));
    assert!(!token.trigger_after(Duration::ZERO));
    assert_eq!(token.deadline(), None);
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Manual);
}

#[test]
fn a_zero_delay_or_a_past_instant_fires_at_once() {
    let token = CancelToken::new();
    assert!(token.trigger_after(Duration::ZERO));
    assert!(token.is_triggered());
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Timeout);

    let past = CancelToken::new();
    let earlier = Instant::now();
    assert!(past.trigger_at(earlier));
    assert!(past.is_triggered());
}

#[test]
fn an_unrepresentable_delay_is_never() {
    let token = CancelToken::new();
    assert!(!token.trigger_after(Duration::MAX));
    assert_eq!(token.deadline(), None);
    assert!(!token.is_triggered());
    assert!(
        token.trigger_after(HOUR),
        "a real deadline can still be set"
    );
}

#[test]
fn a_manual_trigger_before_the_deadline_keeps_its_reason() {
    let token = CancelToken::new();
    token.trigger_after(Duration::from_millis(20));
    assert!(token.trigger_with("user"));
    std::thread::sleep(Duration::from_millis(60));
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Manual);
    assert_eq!(reason.message(), Some("user"));
}

#[test]
fn with_a_reason_the_deadline_triggers_with_it() {
    let token = CancelToken::new();
    let grace = Reason::with_message(ReasonKind::Timeout, "grace period of 20ms elapsed");
    assert!(token.trigger_after_with(Duration::from_millis(20), grace.clone()));
    let waiter = token.clone();
    within(LIMIT, move || waiter.wait_blocking());
    assert_eq!(token.reason(), Some(grace));
}

#[test]
fn an_earlier_plain_deadline_replaces_the_reason_too() {
    let token = CancelToken::new();
    token.trigger_after_with(HOUR, Reason::with_message(ReasonKind::Timeout, "late"));
    assert!(token.trigger_after(Duration::from_millis(10)));
    let waiter = token.clone();
    within(LIMIT, move || waiter.wait_blocking());
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Timeout);
    assert_eq!(reason.message(), Some("deadline of 10ms elapsed"));
}

#[test]
fn a_later_deadline_with_a_reason_changes_nothing() {
    let token = CancelToken::new();
    token.trigger_after(Duration::from_millis(10));
    assert!(!token.trigger_after_with(HOUR, "ignored"));
    let waiter = token.clone();
    within(LIMIT, move || waiter.wait_blocking());
    assert_eq!(
        token.reason().unwrap().message(),
        Some("deadline of 10ms elapsed")
    );
}

#[test]
fn any_reason_kind_may_be_given() {
    let token = CancelToken::new();
    assert!(token.trigger_at_with(
        Instant::now(),
        Reason::with_message(ReasonKind::Superseded, "newer")
    ));
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Superseded);
}

#[test]
fn it_propagates_to_children_like_any_trigger() {
    let token = CancelToken::new();
    let child = token.child();
    token.trigger_after(Duration::from_millis(10));
    let waiter = child.clone();
    within(LIMIT, move || waiter.wait_blocking());
    assert_eq!(child.triggered_token(), Some(token));
}
