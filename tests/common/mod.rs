//! Helpers shared by the integration tests: a waker that counts its wake-ups, polling helpers,
//! instrumented futures and streams that count their polls and report when they are dropped,
//! and running code on a thread with a chosen stack size or under a watchdog so that a bug
//! fails a test instead of hanging it.

// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use futures_core::Stream;

/// Generous bound for anything that waits on another thread, an executor or the timer.
/// It only turns a hang into a failure; no test asserts an upper bound tighter than this.
pub const LIMIT: Duration = Duration::from_secs(60);

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
pub fn poll_with<F: Future + Unpin + ?Sized>(
    fut: &mut F,
    waker: &Arc<CountingWaker>,
) -> Poll<F::Output> {
    let waker = waker.waker();
    let mut cx = Context::from_waker(&waker);
    Pin::new(fut).poll(&mut cx)
}

/// Polls `fut` once with a fresh counting waker nobody looks at.
pub fn poll_once<F: Future + Unpin + ?Sized>(fut: &mut F) -> Poll<F::Output> {
    poll_with(fut, &CountingWaker::new())
}

/// Polls `stream` for its next item once with the given counting waker.
pub fn poll_next_with<S: Stream + Unpin + ?Sized>(
    stream: &mut S,
    waker: &Arc<CountingWaker>,
) -> Poll<Option<S::Item>> {
    let waker = waker.waker();
    let mut cx = Context::from_waker(&waker);
    Pin::new(stream).poll_next(&mut cx)
}

/// Polls `stream` for its next item once with a fresh counting waker.
pub fn poll_next_once<S: Stream + Unpin + ?Sized>(stream: &mut S) -> Poll<Option<S::Item>> {
    poll_next_with(stream, &CountingWaker::new())
}

/// A flag set when the [`DropFlag`] made from it is dropped.
#[derive(Clone, Debug, Default)]
pub struct Dropped(Arc<AtomicBool>);

impl Dropped {
    pub fn new() -> Dropped {
        Dropped::default()
    }

    /// A guard that sets this flag when dropped.
    pub fn guard(&self) -> DropFlag {
        DropFlag(Arc::clone(&self.0))
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Sets its [`Dropped`] flag when dropped.
#[derive(Debug)]
pub struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A shared poll counter.
#[derive(Clone, Debug, Default)]
pub struct Polls(Arc<AtomicUsize>);

impl Polls {
    pub fn new() -> Polls {
        Polls::default()
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    pub fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A future that counts its polls, sets a flag when dropped, and is ready with `output` from
/// poll number `ready_at` (1-based; `usize::MAX` means never). It never wakes its waker itself.
#[derive(Debug)]
pub struct Probe<T> {
    polls: Polls,
    ready_at: usize,
    output: Option<T>,
    _flag: DropFlag,
}

impl<T> Probe<T> {
    pub fn new(polls: &Polls, dropped: &Dropped, ready_at: usize, output: T) -> Probe<T> {
        Probe {
            polls: polls.clone(),
            ready_at,
            output: Some(output),
            _flag: dropped.guard(),
        }
    }
}

impl Probe<()> {
    /// A probe that is always pending.
    pub fn pending(polls: &Polls, dropped: &Dropped) -> Probe<()> {
        Probe::new(polls, dropped, usize::MAX, ())
    }
}

impl<T> Unpin for Probe<T> {}

impl<T> Future for Probe<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        self.polls.hit();
        if self.polls.get() >= self.ready_at {
            Poll::Ready(self.output.take().expect("Probe polled after it completed"))
        } else {
            Poll::Pending
        }
    }
}

/// A stream that counts its polls, sets a flag when dropped, and yields the items of its
/// script in order: `Some(item)` is yielded, `None` in the script means one `Pending` poll;
/// after the script it either ends or stays pending forever.
#[derive(Debug)]
pub struct ProbeStream<T> {
    polls: Polls,
    script: std::collections::VecDeque<Option<T>>,
    ends: bool,
    _flag: DropFlag,
}

impl<T> ProbeStream<T> {
    pub fn new(
        polls: &Polls,
        dropped: &Dropped,
        script: impl IntoIterator<Item = Option<T>>,
        ends: bool,
    ) -> ProbeStream<T> {
        ProbeStream {
            polls: polls.clone(),
            script: script.into_iter().collect(),
            ends,
            _flag: dropped.guard(),
        }
    }
}

impl<T> Unpin for ProbeStream<T> {}

impl<T> Stream for ProbeStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.polls.hit();
        match self.script.pop_front() {
            Some(Some(item)) => Poll::Ready(Some(item)),
            Some(None) => Poll::Pending,
            None if self.ends => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
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

/// A tokio runtime with two worker threads and every driver (time, I/O) enabled.
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A current-thread tokio runtime with every driver (time, I/O) enabled.
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Compile-time check that a value is `Send + 'static`.
pub fn assert_send_static<T: Send + 'static>(value: T) -> T {
    value
}

/// Blocks until `cond` holds, failing the test if it does not within `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
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

/// `n` divided by `CANCEL_TOKEN_TEST_DIVISOR` (default 1, never below 1): the heavy loops of
/// the churn and deep-chain tests shrink under valgrind, which runs them about fifty times
/// slower.
pub fn scaled(n: usize) -> usize {
    let divisor = std::env::var("CANCEL_TOKEN_TEST_DIVISOR")
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    (n / divisor).max(1)
}

/// A panic payload that panics again when dropped.
pub struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("second");
    }
}

/// Disposes of a payload caught by a test without running a [`Bomb`]'s `Drop`.
pub fn defuse(payload: Box<dyn std::any::Any + Send>) {
    match payload.downcast::<Bomb>() {
        Ok(bomb) => std::mem::forget(bomb),
        Err(other) => drop(other),
    }
}

/// The path of an example binary built by this `cargo test` run (cargo builds the examples
/// beside the test binaries: `target/<profile>/examples/<name>`).
pub fn example(name: &str) -> std::path::PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary
        .parent()
        .and_then(std::path::Path::parent)
        .expect("a test binary lives in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "example {name} not built at {}",
        path.display()
    );
    path
}

/// Builds example `name` with `cargo build --example`, with this test's features and profile,
/// and returns [`example`]'s path to it.
///
/// `cargo test` builds the examples only when no target is named: a run such as
/// `cargo test --test three_hops` builds none, and [`example`] alone would find no binary, or
/// an old one. The build is a no-op when the binary is up to date.
pub fn build_example(name: &str) -> std::path::PathBuf {
    let features: Vec<&str> = [
        ("http", cfg!(feature = "http")),
        ("http-body", cfg!(feature = "http-body")),
        ("tower", cfg!(feature = "tower")),
        ("signal", cfg!(feature = "signal")),
        ("tokio-util", cfg!(feature = "tokio-util")),
        ("grpc", cfg!(feature = "grpc")),
        ("tracing", cfg!(feature = "tracing")),
        ("serde", cfg!(feature = "serde")),
        ("redis", cfg!(feature = "redis")),
    ]
    .into_iter()
    .filter_map(|(feature, on)| on.then_some(feature))
    .collect();
    let test_binary = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary>
    let profile = test_binary
        .parent()
        .and_then(std::path::Path::parent)
        .and_then(std::path::Path::file_name)
        .and_then(std::ffi::OsStr::to_str)
        .expect("a test binary lives in target/<profile>/deps");
    let profile = match profile {
        "debug" => "dev",
        other => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let status = std::process::Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--profile", profile, "--example", name])
        .args(["--features", &features.join(",")])
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build --example {name}: {status}");
    example(name)
}
