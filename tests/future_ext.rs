//! `TokenFutureExt`: `fut.with_token(&token)` and `fut.with_token_owned(token)`, tokio-util's
//! `with_cancellation_token[_owned]` with this crate's tie rule. They are `run` and `run_owned`
//! written from the future's side, so these tests check that they are exactly that: same
//! types, same tie rule, same drop and wake-up behaviour.

mod common;

use std::future::Future;
use std::task::Poll;
use std::thread;

use cancel_token::{CancelToken, Run, RunOwned, TokenFutureExt};
use common::{
    assert_send_static, poll_once, poll_with, within, CountingWaker, Dropped, Polls, Probe, LIMIT,
};

#[test]
fn with_token_is_run_the_same_type_and_output() {
    let token = CancelToken::new();
    let run: Run<'_, _> = async { 42 }.with_token(&token);
    assert_eq!(futures_lite::future::block_on(run), Ok(42));
    let owned: RunOwned<_> = async { "done" }.with_token_owned(token.clone());
    assert_eq!(owned.token(), &token);
    assert_eq!(futures_lite::future::block_on(owned), Ok("done"));
    assert!(!token.is_triggered());
}

#[test]
fn cancellation_wins_a_tie_with_a_ready_future_unlike_tokio_util() {
    // tokio-util's `with_cancellation_token` polls the future first on every poll after the
    // first; here the token is checked first at every poll.
    let token = CancelToken::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut run = Probe::new(&polls, &dropped, 2, 7).with_token(&token);
    assert!(poll_once(&mut run).is_pending());
    token.trigger_with("stop");
    let Poll::Ready(Err(err)) = poll_once(&mut run) else {
        panic!("the future would be ready at this poll, but cancellation wins");
    };
    assert_eq!(err.reason().message(), Some("stop"));
    assert_eq!(polls.get(), 1, "not polled once the trigger is seen");
    assert!(dropped.get(), "dropped when the trigger is seen");
}

#[test]
fn a_pre_triggered_token_never_polls_the_future() {
    let token = CancelToken::new();
    token.trigger();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut run = Probe::new(&polls, &dropped, 1, ()).with_token_owned(token);
    assert!(matches!(poll_once(&mut run), Poll::Ready(Err(_))));
    assert_eq!(polls.get(), 0);
    assert!(dropped.get());
}

#[test]
fn a_trigger_from_another_thread_wakes_the_task_once() {
    let token = CancelToken::new();
    let waker = CountingWaker::new();
    let polls = Polls::new();
    let dropped = Dropped::new();
    let mut run = Probe::pending(&polls, &dropped).with_token(&token);
    assert!(poll_with(&mut run, &waker).is_pending());
    assert!(poll_with(&mut run, &waker).is_pending());
    let trigger = token.clone();
    thread::spawn(move || trigger.trigger()).join().unwrap();
    assert_eq!(waker.count(), 1);
    assert!(matches!(poll_with(&mut run, &waker), Poll::Ready(Err(_))));
}

#[test]
fn with_token_owned_is_send_and_static_and_runs_on_tokio() {
    let token = CancelToken::new();
    let rt = common::multi_thread_runtime();
    let result = rt.block_on(async {
        let task = assert_send_static(std::future::pending::<()>().with_token_owned(token.clone()));
        let handle = tokio::spawn(task);
        let trigger = token.clone();
        thread::spawn(move || trigger.trigger_with("shutdown"));
        tokio::time::timeout(LIMIT, handle)
            .await
            .expect("the task did not end on the trigger")
            .unwrap()
    });
    assert_eq!(result.unwrap_err().reason().message(), Some("shutdown"));
}

#[test]
fn works_on_a_boxed_trait_object() {
    let token = CancelToken::new();
    let boxed: std::pin::Pin<Box<dyn Future<Output = u8> + Send>> = Box::pin(async { 5 });
    let output = within(LIMIT, move || {
        futures_lite::future::block_on(boxed.with_token_owned(token))
    });
    assert_eq!(output, Ok(5));
}
