//! `CancelToken::run` and `run_owned`: racing a future against a token.
//!
//! Most tests drive the adapter by hand with a counting waker, so the tie rule ("cancellation
//! wins"), the moment the wrapped future is dropped and the wake-up on trigger are observed
//! exactly, with no sleeps.

mod common;

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use cancel_token::{CancelToken, Cancelled, ReasonKind, RunOwned};
use common::{
    assert_send_static, poll_once, poll_with, within, CountingWaker, Dropped, Polls, Probe, LIMIT,
};

#[test]
fn ok_with_the_output_when_the_future_completes() {
    let token = CancelToken::new();
    let output = futures_lite::future::block_on(token.run(async { 42 }));
    assert_eq!(output, Ok(42));
    assert!(!token.is_triggered(), "running never triggers the token");
}

#[test]
fn ok_after_some_pending_polls() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut run = token.run(Probe::new(&polls, &dropped, 3, "done"));
    assert!(poll_once(&mut run).is_pending());
    assert!(poll_once(&mut run).is_pending());
    assert_eq!(poll_once(&mut run), Poll::Ready(Ok("done")));
    assert_eq!(polls.get(), 3);
    assert!(
        dropped.get(),
        "the completed future is dropped at completion, before the adapter"
    );
}

#[test]
fn a_later_trigger_does_not_change_a_completed_result() {
    let token = CancelToken::new();
    let output = futures_lite::future::block_on(token.run(async { "finished" }));
    token.trigger();
    assert_eq!(output, Ok("finished"));
}

#[test]
fn pre_triggered_token_never_polls_the_future() {
    let token = CancelToken::named("job");
    token.trigger_with("stop now");
    let polled = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&polled);
    let mut run = pin!(token.run(async move {
        flag.store(true, Ordering::SeqCst);
        7
    }));
    let result = poll_once(&mut run);
    let Poll::Ready(Err(cancelled)) = result else {
        panic!("expected Err(Cancelled) at the first poll, got {result:?}");
    };
    assert!(
        !polled.load(Ordering::SeqCst),
        "the wrapped future was polled"
    );
    assert_eq!(cancelled.reason().message(), Some("stop now"));
    assert_eq!(cancelled.kind(), ReasonKind::Manual);
    assert_eq!(cancelled.token(), &token);
    assert_eq!(
        cancelled.to_string(),
        "cancellation requested by token job: stop now"
    );
}

#[test]
fn pre_triggered_token_with_a_probe_polls_nothing_and_drops_it_at_once() {
    let token = CancelToken::new();
    token.trigger_with(ReasonKind::Signal);
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut run = token.run(Probe::new(&polls, &dropped, 1, ()));
    assert!(!dropped.get(), "nothing happens before the first poll");
    let result = poll_once(&mut run);
    assert!(matches!(&result, Poll::Ready(Err(c)) if c.kind() == ReasonKind::Signal));
    assert_eq!(polls.get(), 0, "a pre-triggered token means no poll at all");
    assert!(dropped.get(), "dropped when cancellation is seen");
    drop(run);
}

#[test]
fn tie_rule_ready_future_loses_to_an_already_triggered_token() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    // Pending at its first poll, ready at its second.
    let mut run = token.run(Probe::new(&polls, &dropped, 2, "would have won"));
    assert!(poll_once(&mut run).is_pending());
    assert_eq!(polls.get(), 1);

    token.trigger_with("tie");
    let result = poll_once(&mut run);
    match result {
        Poll::Ready(Err(cancelled)) => assert_eq!(cancelled.reason().message(), Some("tie")),
        other => panic!("cancellation must win the tie, got {other:?}"),
    }
    assert_eq!(
        polls.get(),
        1,
        "the ready future was polled although the token was triggered"
    );
}

#[test]
fn nothing_is_polled_again_once_the_trigger_is_seen() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut run = token.run(Probe::pending(&polls, &dropped));
    for _ in 0..3 {
        assert!(poll_once(&mut run).is_pending());
    }
    assert_eq!(polls.get(), 3);

    token.trigger();
    assert!(matches!(poll_once(&mut run), Poll::Ready(Err(_))));
    // Polling a completed future is a caller bug; whatever the adapter does then (return the
    // error again or panic), it must not touch the wrapped future.
    for _ in 0..3 {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| poll_once(&mut run)));
    }
    assert_eq!(
        polls.get(),
        3,
        "the wrapped future was polled after the trigger"
    );
}

#[test]
fn wrapped_future_is_dropped_when_cancellation_is_seen_not_when_the_adapter_is() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut run = token.run(Probe::pending(&polls, &dropped));
    assert!(poll_once(&mut run).is_pending());
    token.trigger();
    assert!(matches!(poll_once(&mut run), Poll::Ready(Err(_))));
    assert!(
        dropped.get(),
        "the wrapped future must be dropped by the poll that returns Err, while the adapter lives"
    );
    drop(run);
}

/// A future that triggers the token from inside its own poll and stays pending: the adapter
/// sees the trigger through its registration in that same poll.
struct TriggerWhilePolled {
    token: CancelToken,
    polls: Polls,
    _flag: common::DropFlag,
}

impl Future for TriggerWhilePolled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.polls.hit();
        this.token.trigger_with("from inside");
        Poll::Pending
    }
}

#[test]
fn a_trigger_during_the_inner_poll_is_seen_in_the_same_poll() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut run = token.run(TriggerWhilePolled {
        token: token.clone(),
        polls: polls.clone(),
        _flag: dropped.guard(),
    });
    let result = poll_once(&mut run);
    assert!(
        matches!(&result, Poll::Ready(Err(c)) if c.reason().message() == Some("from inside")),
        "got {result:?}"
    );
    assert_eq!(polls.get(), 1);
    assert!(dropped.get());
}

#[test]
fn dropping_a_pending_run_drops_the_inner_future() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut run = token.run(Probe::pending(&polls, &dropped));
    assert!(poll_once(&mut run).is_pending());
    assert!(!dropped.get());
    drop(run);
    assert!(dropped.get());
    assert!(!token.is_triggered(), "dropping the adapter never triggers");
}

#[test]
fn dropping_an_unpolled_run_drops_the_inner_future() {
    let token = CancelToken::new();
    let dropped = Dropped::new();
    let run = token.run(Probe::pending(&Polls::new(), &dropped));
    drop(run);
    assert!(dropped.get());
}

#[test]
fn a_trigger_while_pending_wakes_the_task() {
    let token = CancelToken::new();
    let waker = CountingWaker::new();
    let mut run = pin!(token.run(futures_lite::future::pending::<()>()));
    assert!(poll_with(&mut run, &waker).is_pending());
    assert_eq!(waker.count(), 0);

    token.trigger_with("wake up");
    assert!(waker.count() >= 1, "the trigger did not wake the task");
    match poll_with(&mut run, &waker) {
        Poll::Ready(Err(cancelled)) => assert_eq!(cancelled.reason().message(), Some("wake up")),
        other => panic!("expected Err after the wake-up, got {other:?}"),
    }
}

#[test]
fn a_trigger_from_another_thread_wakes_the_latest_waker() {
    let token = CancelToken::new();
    let first = CountingWaker::new();
    let second = CountingWaker::new();
    let mut run = pin!(token.run(futures_lite::future::pending::<()>()));
    assert!(poll_with(&mut run, &first).is_pending());
    // The task moved: the next poll comes with another waker.
    assert!(poll_with(&mut run, &second).is_pending());

    let trigger = token.clone();
    thread::spawn(move || trigger.trigger()).join().unwrap();
    assert!(second.count() >= 1, "the current waker was not woken");
    assert!(matches!(poll_with(&mut run, &second), Poll::Ready(Err(_))));
}

#[test]
fn cancelled_from_a_child_names_the_origin_token() {
    let parent = CancelToken::named("parent");
    let child = parent.child_named("child");
    let mut run = pin!(child.run(futures_lite::future::pending::<()>()));
    assert!(poll_once(&mut run).is_pending());

    parent.trigger_with("shutdown");
    let Poll::Ready(Err(cancelled)) = poll_once(&mut run) else {
        panic!("expected Err(Cancelled)");
    };
    assert_eq!(cancelled.token(), &parent);
    assert_eq!(cancelled.reason().message(), Some("shutdown"));
    assert_eq!(
        cancelled.to_string(),
        "cancellation requested by token parent: shutdown"
    );
}

#[test]
fn cancelled_from_a_pre_triggered_chain_names_the_origin_token() {
    let user = CancelToken::named("user");
    let shutdown = CancelToken::named("shutdown");
    shutdown.trigger_with("maintenance");
    let request = user.chain(&shutdown).child();
    let err = futures_lite::future::block_on(request.run(async { unreachable!() })).unwrap_err();
    assert_eq!(err.token(), &shutdown);
    assert_eq!(err.reason().message(), Some("maintenance"));
}

// ----- run_owned -----

fn _run_owned_is_send_and_static() {
    fn assert_send_static<T: Send + 'static>() {}
    assert_send_static::<RunOwned<std::future::Pending<()>>>();
    assert_send_static::<RunOwned<std::future::Ready<String>>>();
}

#[test]
fn run_owned_is_send_static_for_a_send_future() {
    let token = CancelToken::new();
    let job = assert_send_static(token.clone().run_owned(async {
        let shared = Arc::new(5);
        *shared + 1
    }));
    assert_eq!(job.token(), &token);
    assert_eq!(futures_lite::future::block_on(job), Ok(6));
}

#[test]
fn run_owned_pre_triggered_never_polls() {
    let token = CancelToken::new();
    token.trigger();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut job = token.clone().run_owned(Probe::new(&polls, &dropped, 1, ()));
    assert!(matches!(poll_once(&mut job), Poll::Ready(Err(_))));
    assert_eq!(polls.get(), 0);
    assert!(dropped.get());
}

#[test]
fn run_owned_tie_rule_and_drop_on_cancellation() {
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let waker = CountingWaker::new();
    let mut job = token.clone().run_owned(Probe::new(&polls, &dropped, 2, 1));
    assert!(poll_with(&mut job, &waker).is_pending());
    token.trigger();
    assert!(waker.count() >= 1);
    assert!(matches!(poll_with(&mut job, &waker), Poll::Ready(Err(_))));
    assert_eq!(polls.get(), 1);
    assert!(dropped.get(), "dropped while the adapter still exists");
    drop(job);
}

#[test]
fn dropping_a_pending_run_owned_drops_the_inner_future() {
    let token = CancelToken::new();
    let dropped = Dropped::new();
    let mut job = token.run_owned(Probe::pending(&Polls::new(), &dropped));
    assert!(poll_once(&mut job).is_pending());
    drop(job);
    assert!(dropped.get());
}

#[test]
fn run_owned_under_tokio_spawn_cancelled_from_a_plain_thread() {
    let rt = common::multi_thread_runtime();
    let token = CancelToken::named("server");
    let result: Result<(), Cancelled> = rt.block_on(async {
        let dropped = Dropped::new();
        let guard = dropped.guard();
        let handle = tokio::spawn(token.clone().run_owned(async move {
            let _guard = guard;
            futures_lite::future::pending::<()>().await
        }));
        let trigger = token.clone();
        let triggerer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            trigger.trigger_with("from a plain thread")
        });
        let result = tokio::time::timeout(LIMIT, handle)
            .await
            .expect("the spawned task was not woken by the trigger")
            .expect("the task panicked");
        assert!(triggerer.join().unwrap());
        assert!(dropped.get(), "the wrapped future was not dropped");
        result
    });
    let err = result.unwrap_err();
    assert_eq!(err.reason().message(), Some("from a plain thread"));
    assert_eq!(err.token(), &token);
}

#[test]
fn run_owned_under_tokio_spawn_completes() {
    let rt = common::multi_thread_runtime();
    let token = CancelToken::new();
    let result = rt.block_on(async {
        tokio::spawn(token.clone().run_owned(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            "done"
        }))
        .await
        .unwrap()
    });
    assert_eq!(result, Ok("done"));
}

#[test]
fn run_under_tokio_current_thread_with_a_timer_future() {
    let rt = common::current_thread_runtime();
    let token = CancelToken::new();
    let trigger = token.clone();
    let result = rt.block_on(async {
        let triggerer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            trigger.trigger()
        });
        let result = token
            .run(tokio::time::sleep(Duration::from_secs(3600)))
            .await;
        triggerer.join().unwrap();
        result
    });
    assert_eq!(result.unwrap_err().kind(), ReasonKind::Manual);
}

#[test]
fn run_owned_on_a_plain_thread_cancelled_from_another_thread() {
    let token = CancelToken::new();
    let job = token
        .clone()
        .run_owned(futures_lite::future::pending::<u8>());
    let result = within(LIMIT, move || {
        let worker = thread::spawn(move || futures_lite::future::block_on(job));
        thread::sleep(Duration::from_millis(10));
        token.trigger_with("bye");
        worker.join().unwrap()
    });
    assert_eq!(result.unwrap_err().reason().message(), Some("bye"));
}

#[test]
fn run_under_smol_and_async_std() {
    let token = CancelToken::new();
    assert_eq!(smol::block_on(token.run(async { 1 })), Ok(1));
    assert_eq!(
        async_std::task::block_on(token.clone().run_owned(async { 2 })),
        Ok(2)
    );

    let trigger = token.clone();
    let result = within(LIMIT, move || {
        let triggerer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            trigger.trigger()
        });
        let task = smol::spawn(
            token
                .clone()
                .run_owned(futures_lite::future::pending::<()>()),
        );
        let result = smol::block_on(task);
        triggerer.join().unwrap();
        result
    });
    assert!(result.is_err());
}

#[test]
#[should_panic(expected = "polled after it completed")]
fn polling_again_after_ok_panics_as_documented() {
    let token = CancelToken::new();
    let mut run = token.run(std::future::ready(1));
    assert_eq!(poll_once(&mut run), Poll::Ready(Ok(1)));
    let _ = poll_once(&mut run);
}

#[test]
fn run_debug_shows_whether_the_future_is_still_running() {
    let token = CancelToken::named("dbg");
    let mut run = token.run(futures_lite::future::pending::<()>());
    assert!(format!("{run:?}").contains("running: true"), "{run:?}");
    token.trigger();
    assert!(poll_once(&mut run).is_ready());
    assert!(format!("{run:?}").contains("running: false"), "{run:?}");
}
