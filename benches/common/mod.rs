//! What the `peers` and `ratios` benchmarks share: the waker they poll with, and the inputs of
//! the operations both measure (tokens with polled waiters, chains, parents with children), so
//! that both measure exactly the same thing.
//!
//! Each benchmark binary compiles this module and uses a part of it.
#![allow(dead_code)]

pub mod pairs;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use cancel_token::{CancelToken, WaitOwned};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A waker like an executor's: cloning it is a reference-count increment.
struct TaskWaker;

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {}
    fn wake_by_ref(self: &Arc<Self>) {}
}

pub fn waker() -> Waker {
    Waker::from(Arc::new(TaskWaker))
}

pub fn poll<F: Future + Unpin>(future: &mut F, cx: &mut Context<'_>) -> Poll<F::Output> {
    Pin::new(future).poll(cx)
}

/// A token with `waiters` owned waits, each polled once (pending).
pub fn ours_waiting(waiters: usize, waker: &Waker) -> (CancelToken, Vec<WaitOwned>) {
    let token = CancelToken::new();
    let mut waits: Vec<_> = (0..waiters).map(|_| token.clone().wait_owned()).collect();
    for wait in &mut waits {
        assert!(poll(wait, &mut Context::from_waker(waker)).is_pending());
    }
    (token, waits)
}

/// tokio-util's [`ours_waiting`]; its owned future is `!Unpin`, so each is boxed.
pub fn tokio_waiting(
    waiters: usize,
    waker: &Waker,
) -> (
    CancellationToken,
    Vec<Pin<Box<WaitForCancellationFutureOwned>>>,
) {
    let token = CancellationToken::new();
    let mut waits: Vec<_> = (0..waiters)
        .map(|_| Box::pin(token.clone().cancelled_owned()))
        .collect();
    for wait in &mut waits {
        assert!(wait
            .as_mut()
            .poll(&mut Context::from_waker(waker))
            .is_pending());
    }
    (token, waits)
}

/// A root and `depth` tokens below it, each the child of the one before.
pub fn ours_chain(depth: usize) -> Vec<CancelToken> {
    let mut chain = vec![CancelToken::new()];
    for _ in 0..depth {
        let next = chain.last().expect("a root").child();
        chain.push(next);
    }
    chain
}

/// tokio-util's [`ours_chain`].
pub fn tokio_chain(depth: usize) -> Vec<CancellationToken> {
    let mut chain = vec![CancellationToken::new()];
    for _ in 0..depth {
        let next = chain.last().expect("a root").child_token();
        chain.push(next);
    }
    chain
}

/// A root and `children` direct children of it.
pub fn ours_children(children: usize) -> (CancelToken, Vec<CancelToken>) {
    let root = CancelToken::new();
    let children = (0..children).map(|_| root.child()).collect();
    (root, children)
}

/// tokio-util's [`ours_children`].
pub fn tokio_children(children: usize) -> (CancellationToken, Vec<CancellationToken>) {
    let root = CancellationToken::new();
    let children = (0..children).map(|_| root.child_token()).collect();
    (root, children)
}

/// Two threads hammering one parent with `work`, `iters` times each. Returns the wall time for
/// both to finish.
pub fn two_threads<T: Sync>(iters: u64, parent: &T, work: impl Fn(&T) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            barrier.wait();
            for _ in 0..iters {
                work(parent);
            }
        });
        barrier.wait();
        let start = Instant::now();
        for _ in 0..iters {
            work(parent);
        }
        worker.join().expect("worker");
        start.elapsed()
    })
}
