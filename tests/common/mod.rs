//! Helpers shared by the integration tests: a waker that counts its wake-ups, polling a future
//! exactly once, and running code on a thread with a chosen stack size or under a watchdog so
//! that a bug fails a test instead of hanging it.

// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// Generous bound for anything that waits on another thread or an executor. Tests never
/// assert timings; this only turns a hang into a failure.
pub const LIMIT: Duration = Duration::from_secs(10);

/// A waker that counts how many times it was woken.
#[derive(Debug, Default)]
pub struct CountingWaker {
    wakes: AtomicUsize,
}

impl CountingWaker {
    pub fn new() -> Arc<CountingWaker> {
        Arc::new(CountingWaker::default())
    }

    /// How many times the waker (or any clone of it) was woken so far.
    pub fn count(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }

    pub fn waker(self: &Arc<Self>) -> Waker {
        Waker::from(Arc::clone(self))
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `fut` once with the given counting waker.
pub fn poll_with<F: Future + Unpin>(fut: &mut F, waker: &Arc<CountingWaker>) -> Poll<F::Output> {
    let waker = waker.waker();
    let mut cx = Context::from_waker(&waker);
    Pin::new(fut).poll(&mut cx)
}

/// Polls `fut` once with a fresh counting waker nobody looks at.
pub fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_with(fut, &CountingWaker::new())
}

/// Runs `f` on a new thread with a stack of `stack_size` bytes and returns its result,
/// resuming its panic if it panicked.
pub fn on_thread_with_stack<T, F>(stack_size: usize, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let handle = thread::Builder::new()
        .name(format!("stack-{stack_size}"))
        .stack_size(stack_size)
        .spawn(f)
        .expect("spawn a thread");
    match handle.join() {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// Runs `f` on a new thread and fails the test if it has not returned within `limit`.
/// A panic in `f` is resumed here.
pub fn within<T, F>(limit: Duration, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name("watched".into())
        .spawn(move || {
            let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
        })
        .expect("spawn a thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => {
            handle.join().expect("the watched thread already returned");
            value
        }
        Ok(Err(payload)) => {
            let _ = handle.join();
            panic::resume_unwind(payload)
        }
        // The hung thread is left behind; the test process exits without it.
        Err(_) => panic!("did not finish within {limit:?}: something hangs"),
    }
}

/// Blocks until `cond` holds, failing the test if it does not within `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {limit:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// The message of a panic payload made by `panic!` with a literal or a format string.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}
