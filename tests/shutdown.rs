//! `Shutdown`: the soft token, the grace period, the hard token, escalation, and the report;
//! from plain threads and under runtimes.

mod common;

use std::time::{Duration, Instant};

use cancel_token::{CancelToken, ReasonKind, Shutdown, ShutdownOutcome};
use common::{within, LIMIT};

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_request_triggers_the_soft_token_and_closes_the_tracker() {
    let shutdown = Shutdown::new(HOUR);
    let _busy = shutdown.tracker().enter();
    assert!(shutdown.request());
    assert!(shutdown.is_requested());
    let reason = shutdown.soft().reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Manual);
    assert_eq!(reason.message(), Some("shutdown requested"));
    assert!(shutdown.tracker().is_closed());
    assert!(!shutdown.hard().is_triggered());
    let deadline = shutdown.deadline().expect("the grace period runs");
    assert!(deadline > Instant::now() + HOUR / 2);
    assert_eq!(shutdown.hard().deadline(), None);
    assert!(shutdown.report().is_none());
}

#[test]
fn drained_when_the_last_task_finishes_in_the_grace_period() {
    let shutdown = Shutdown::new(HOUR);
    let guards: Vec<_> = (0..3).map(|_| shutdown.tracker().enter()).collect();
    shutdown.request_with("deploy");
    assert!(shutdown
        .wait_blocking_timeout(Duration::from_millis(10))
        .is_none());
    let start = Instant::now();
    drop(guards);
    let report = shutdown.wait_blocking();
    assert_eq!(report.outcome(), ShutdownOutcome::Drained);
    assert!(report.is_drained());
    assert_eq!(report.in_flight(), 3);
    assert_eq!(report.remaining(), 0);
    assert_eq!(report.reason().message(), Some("deploy"));
    assert!(report.forced_by().is_none());
    assert!(report.elapsed() >= Duration::from_millis(10));
    assert!(report.to_string().starts_with("shutdown drained in "));
    assert!(report
        .to_string()
        .ends_with("(3 tasks in flight at the request)"));
    assert!(start.elapsed() < LIMIT);
    assert!(!shutdown.hard().is_triggered(), "nothing forced");
}

#[test]
fn an_empty_tracker_drains_at_the_request() {
    let shutdown = Shutdown::new(HOUR);
    shutdown.request();
    let report = shutdown.report().expect("decided during the request");
    assert!(report.is_drained());
    assert_eq!(report.in_flight(), 0);
}

#[test]
fn forced_when_the_grace_period_elapses_with_the_period_in_the_reason() {
    let grace = Duration::from_millis(40);
    let shutdown = Shutdown::new(grace);
    let _stuck = shutdown.tracker().enter();
    let _other = shutdown.tracker().enter();
    let start = Instant::now();
    shutdown.request();
    let waiter = shutdown.clone();
    let report = within(LIMIT, move || waiter.wait_blocking());
    assert!(
        start.elapsed() >= grace,
        "never before the grace period ends"
    );
    assert_eq!(report.outcome(), ShutdownOutcome::Forced);
    assert_eq!(report.remaining(), 2);
    let forced = report.forced_by().unwrap();
    assert_eq!(forced.kind(), ReasonKind::Timeout);
    assert_eq!(forced.message(), Some("grace period of 40ms elapsed"));
    assert_eq!(shutdown.hard().reason().as_ref(), Some(forced));
    let line = report.to_string();
    assert!(line.starts_with("shutdown forced after "), "{line}");
    assert!(
        line.ends_with(" with 2 tasks left: grace period of 40ms elapsed"),
        "{line}"
    );
}

#[test]
fn a_second_request_forces_at_once() {
    let shutdown = Shutdown::new(HOUR);
    let _stuck = shutdown.tracker().enter();
    assert!(shutdown.request_with(cancel_token::Reason::with_message(
        ReasonKind::Signal,
        "SIGTERM"
    )));
    assert!(!shutdown.hard().is_triggered());
    assert!(!shutdown.request_with(cancel_token::Reason::with_message(
        ReasonKind::Signal,
        "SIGINT"
    )));
    let hard = shutdown.hard().reason().unwrap();
    assert_eq!(hard.kind(), ReasonKind::Signal);
    assert_eq!(hard.message(), Some("shutdown requested again: SIGINT"));
    let report = shutdown.report().expect("decided by the second request");
    assert_eq!(report.outcome(), ShutdownOutcome::Forced);
    assert_eq!(report.reason().message(), Some("SIGTERM"));
    assert_eq!(report.remaining(), 1);
}

#[test]
fn a_zero_grace_forces_at_the_request_unless_nothing_runs() {
    let shutdown = Shutdown::new(Duration::ZERO);
    let _stuck = shutdown.tracker().enter();
    shutdown.request();
    assert!(shutdown.hard().is_triggered());
    assert_eq!(
        shutdown.report().unwrap().outcome(),
        ShutdownOutcome::Forced
    );

    let idle = Shutdown::new(Duration::ZERO);
    idle.request();
    assert!(
        idle.report().unwrap().is_drained(),
        "the drain is seen first"
    );
}

#[test]
fn a_grace_of_duration_max_never_forces_on_its_own() {
    let shutdown = Shutdown::new(Duration::MAX);
    let stuck = shutdown.tracker().enter();
    shutdown.request();
    assert_eq!(shutdown.hard().deadline(), None);
    assert!(shutdown
        .wait_blocking_timeout(Duration::from_millis(30))
        .is_none());
    assert!(!shutdown.hard().is_triggered());
    drop(stuck);
    assert!(shutdown.wait_blocking().is_drained());
}

#[test]
fn forcing_without_a_request_triggers_both_tokens() {
    let shutdown = Shutdown::new(HOUR);
    let _stuck = shutdown.tracker().enter();
    assert!(shutdown.force_with("operator pulled the plug"));
    assert!(shutdown.is_requested());
    assert_eq!(
        shutdown.soft().triggered_token().as_ref(),
        Some(shutdown.hard())
    );
    let report = shutdown.wait_blocking();
    assert_eq!(report.outcome(), ShutdownOutcome::Forced);
    assert_eq!(report.reason().message(), Some("operator pulled the plug"));
    assert!(!shutdown.force(), "already forced");
    assert!(
        !shutdown.request(),
        "a request after forcing only forces again"
    );
}

#[test]
fn the_hard_token_still_fires_at_the_end_of_the_grace_period_after_a_drain() {
    let shutdown = Shutdown::new(Duration::from_millis(20));
    shutdown.request();
    assert!(shutdown.report().unwrap().is_drained());
    let hard = shutdown.hard().clone();
    within(LIMIT, move || hard.wait_blocking());
    assert!(
        shutdown.report().unwrap().is_drained(),
        "the outcome is decided once"
    );
}

#[test]
fn concurrent_requests_begin_once_and_force_once() {
    for _ in 0..common::scaled(200) {
        let shutdown = Shutdown::new(HOUR);
        let _stuck = shutdown.tracker().enter();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let shutdown = shutdown.clone();
                std::thread::spawn(move || shutdown.request())
            })
            .collect();
        let began: Vec<bool> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(began.iter().filter(|began| **began).count(), 1);
        assert!(
            shutdown.hard().is_triggered(),
            "the other request forced it"
        );
        assert_eq!(
            shutdown.report().unwrap().outcome(),
            ShutdownOutcome::Forced
        );
    }
}

#[test]
fn tracked_futures_are_cancelled_by_the_hard_token() {
    let runtime = common::multi_thread_runtime();
    let shutdown = Shutdown::new(Duration::from_millis(30));
    runtime.block_on(async {
        let quick = tokio::spawn(shutdown.track(async { "done" }));
        let stuck = tokio::spawn(shutdown.track(std::future::pending::<()>()));
        let wait = tokio::spawn(shutdown.wait());
        shutdown.request();
        assert_eq!(quick.await.unwrap().unwrap(), "done");
        let error = stuck.await.unwrap().unwrap_err();
        assert_eq!(
            error.reason().message(),
            Some("grace period of 30ms elapsed")
        );
        assert_eq!(error.token(), shutdown.hard());
        let report = tokio::time::timeout(LIMIT, wait).await.unwrap().unwrap();
        assert_eq!(report.outcome(), ShutdownOutcome::Forced);
        assert_eq!(
            report.remaining(),
            1,
            "counted before the cancelled task could leave"
        );
        tokio::time::timeout(LIMIT, shutdown.tracker().wait())
            .await
            .unwrap();
    });
}

#[test]
fn waiting_before_the_request_waits_for_it_under_smol() {
    let shutdown = Shutdown::new(HOUR);
    let wait = smol::spawn(shutdown.wait());
    let requester = shutdown.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        requester.request_with("later");
    });
    let report = smol::block_on(wait);
    assert_eq!(report.reason().message(), Some("later"));
}

#[test]
fn dropping_the_last_handle_frees_everything() {
    let shutdown = Shutdown::new(Duration::from_millis(5));
    let soft = shutdown.soft().downgrade();
    let hard = shutdown.hard().downgrade();
    let _stuck = shutdown.tracker().enter();
    shutdown.request();
    drop(shutdown);
    std::thread::sleep(Duration::from_millis(30));
    assert!(
        soft.upgrade().is_none() && hard.upgrade().is_none(),
        "no cycle keeps them"
    );

    let never = Shutdown::new(HOUR);
    let weak = never.hard().downgrade();
    drop(never);
    assert!(weak.upgrade().is_none());
}

#[test]
fn it_composes_with_other_tokens() {
    let shutdown = Shutdown::new(HOUR);
    let request_token = CancelToken::new();
    let per_request = shutdown.hard().chain(&request_token);
    shutdown.force();
    assert_eq!(
        per_request.triggered_token().as_ref(),
        Some(shutdown.hard())
    );
    assert_eq!(
        format!("{:?}", Shutdown::new(Duration::from_secs(2)))
            .split(',')
            .next(),
        Some("Shutdown { grace: 2s")
    );
}

/// The bookkeeping of a request happens before the soft token's callbacks run: a callback that
/// panics, blocks or waits for the shutdown itself cannot stall the grace period.
#[test]
fn a_panicking_soft_callback_does_not_stall_the_shutdown() {
    let shutdown = Shutdown::new(Duration::from_millis(30));
    shutdown
        .soft()
        .on_cancel(|_| panic!("a user's callback"))
        .detach();
    let _stuck = shutdown.tracker().enter();
    let requester = shutdown.clone();
    let outcome = std::panic::catch_unwind(move || requester.request());
    assert!(
        outcome.is_err(),
        "the callback's panic comes out of request()"
    );
    assert!(shutdown.tracker().is_closed());
    assert!(shutdown.deadline().is_some());
    let waiter = shutdown.clone();
    let report = within(LIMIT, move || waiter.wait_blocking());
    assert_eq!(report.outcome(), ShutdownOutcome::Forced);
}

#[test]
fn the_grace_period_runs_from_the_request_even_while_soft_callbacks_block() {
    let grace = Duration::from_millis(100);
    let shutdown = Shutdown::new(grace);
    shutdown
        .soft()
        .on_cancel(|_| std::thread::sleep(Duration::from_millis(600)))
        .detach();
    let _stuck = shutdown.tracker().enter();
    let start = Instant::now();
    let requester = shutdown.clone();
    let request = std::thread::spawn(move || requester.request());
    let hard = shutdown.hard().clone();
    within(LIMIT, move || hard.wait_blocking());
    let fired = start.elapsed();
    assert!(fired >= grace);
    assert!(
        fired < Duration::from_millis(500),
        "hard fired {fired:?} after the request"
    );
    assert!(request.join().unwrap());
}

#[test]
fn a_soft_callback_waiting_for_the_report_does_not_hang_the_request() {
    let shutdown = Shutdown::new(HOUR);
    let inside = shutdown.clone();
    shutdown
        .soft()
        .on_cancel(move |_| {
            // Nothing is tracked: the drain was decided before this callback runs.
            assert!(inside
                .wait_blocking_timeout(Duration::from_secs(5))
                .is_some());
        })
        .detach();
    let requester = shutdown.clone();
    within(LIMIT, move || requester.request());
    assert!(shutdown.report().unwrap().is_drained());
}

#[test]
fn a_soft_token_triggered_directly_begins_the_shutdown_and_the_next_request_is_the_first() {
    let shutdown = Shutdown::new(HOUR);
    let _stuck = shutdown.tracker().enter();
    drop(shutdown.soft().clone().drop_guard());
    assert!(
        shutdown.tracker().is_closed(),
        "begun: the tracker is closed"
    );
    assert!(shutdown.deadline().is_some(), "and the grace period runs");
    assert!(
        shutdown.request(),
        "the first request is not taken for a second one"
    );
    assert!(!shutdown.hard().is_triggered());
    assert!(!shutdown.request(), "the second request forces");
    assert!(shutdown.hard().is_triggered());
}

#[test]
fn a_zero_grace_still_reports_when_the_grace_period_ended() {
    let shutdown = Shutdown::new(Duration::ZERO);
    let _stuck = shutdown.tracker().enter();
    let before = Instant::now();
    shutdown.request();
    let deadline = shutdown
        .deadline()
        .expect("the request's time plus nothing");
    assert!(deadline >= before && deadline <= Instant::now());
}
