//! Memory probe: allocations and bytes per token, per child, per pending waiter and per
//! callback, and the size of the handle and of each future, for cancel-token and tokio-util,
//! measured with a counting allocator. Prints a Markdown table; `docs/benchmarks.md` quotes it.
//!
//! Run: `cargo bench --bench memory`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::{ready, Future};
use std::mem::size_of;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use cancel_token::CancelToken;
use tokio_util::sync::CancellationToken;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size.saturating_sub(layout.size()), Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct TaskWaker;

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {}
}

/// Allocations and bytes per item when `f` is run `n` times, keeping every result alive so
/// amortised growth (slabs, vectors) is included.
fn per_item<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, f64) {
    let mut kept = Vec::with_capacity(n);
    let (a0, b0) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    for _ in 0..n {
        kept.push(f());
    }
    let (a1, b1) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    drop(kept);
    ((a1 - a0) as f64 / n as f64, (b1 - b0) as f64 / n as f64)
}

fn row(what: &str, ours: (f64, f64), tokio: Option<(f64, f64)>) {
    let fmt = |(allocs, bytes): (f64, f64)| format!("{allocs:.2} allocs, {bytes:.0} B");
    let theirs = tokio.map_or_else(|| "n/a".to_string(), fmt);
    println!("| {what} | {} | {theirs} |", fmt(ours));
}

fn main() {
    // `cargo bench` passes `--bench`; this probe takes no options.
    const N: usize = 10_000;
    let waker = Waker::from(Arc::new(TaskWaker));
    let mut cx = Context::from_waker(&waker);

    println!("| per item (kept alive, {N} items) | cancel-token | tokio-util |");
    println!("|---|---|---|");
    row(
        "new token",
        per_item(N, CancelToken::new),
        Some(per_item(N, CancellationToken::new)),
    );
    row(
        "named token",
        per_item(N, || CancelToken::named("request")),
        None,
    );
    let ours = CancelToken::new();
    let tokio = CancellationToken::new();
    row(
        "child of a live parent",
        per_item(N, || ours.child()),
        Some(per_item(N, || tokio.child_token())),
    );
    let other = CancelToken::new();
    row(
        "chain of two live tokens",
        per_item(N, || ours.chain(&other)),
        None,
    );
    // tokio-util's futures are `!Unpin`, so keeping them alive needs a `Box` that is not
    // theirs: one allocation of the future's own size is subtracted.
    let tokio_waiter = per_item(N, || {
        let mut wait = Box::pin(tokio.clone().cancelled_owned());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        wait
    });
    let boxed = size_of::<tokio_util::sync::WaitForCancellationFutureOwned>() as f64;
    row(
        "pending waiter (polled once)",
        per_item(N, || {
            let mut wait = ours.clone().wait_owned();
            assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
            wait
        }),
        Some((tokio_waiter.0 - 1.0, tokio_waiter.1 - boxed)),
    );
    row(
        "callback (`on_cancel`)",
        per_item(N, || ours.on_cancel(|_| {})),
        None,
    );
    row(
        "`run` around a ready future",
        per_item(N, || {
            let mut run = std::pin::pin!(ours.run(ready(1u8)));
            assert!(run.as_mut().poll(&mut cx).is_ready());
        }),
        Some(per_item(N, || {
            let mut run = std::pin::pin!(tokio.run_until_cancelled(ready(1u8)));
            assert!(run.as_mut().poll(&mut cx).is_ready());
        })),
    );
    // What a trigger itself allocates, on tokens made beforehand.
    let plain: Vec<CancelToken> = (0..N).map(|_| CancelToken::new()).collect();
    let tokio_plain: Vec<CancellationToken> = (0..N).map(|_| CancellationToken::new()).collect();
    let (mut ours_next, mut tokio_next) = (plain.iter(), tokio_plain.iter());
    row(
        "`trigger()`",
        per_item(N, || ours_next.next().map(CancelToken::trigger)),
        Some(per_item(N, || {
            tokio_next.next().map(CancellationToken::cancel)
        })),
    );
    let messaged: Vec<CancelToken> = (0..N).map(|_| CancelToken::new()).collect();
    let mut ours_next = messaged.iter();
    row(
        "`trigger_with(\"stop\")` (a message)",
        per_item(N, || {
            ours_next.next().map(|token| token.trigger_with("stop"))
        }),
        None,
    );

    let triggered = CancelToken::new();
    triggered.trigger();
    let tokio_triggered = CancellationToken::new();
    tokio_triggered.cancel();
    println!();
    println!("| on an already-triggered token | cancel-token | tokio-util |");
    println!("|---|---|---|");
    row(
        "`wait()` polled to completion",
        per_item(N, || {
            let mut wait = triggered.wait();
            assert!(Pin::new(&mut wait).poll(&mut cx).is_ready());
        }),
        Some(per_item(N, || {
            let mut wait = std::pin::pin!(tokio_triggered.cancelled());
            assert!(wait.as_mut().poll(&mut cx).is_ready());
        })),
    );
    row(
        "`raise_if_triggered()`",
        per_item(N, || triggered.raise_if_triggered().is_err()),
        None,
    );
    row(
        "`run` (future never polled)",
        per_item(N, || {
            let mut run = std::pin::pin!(triggered.run(ready(1u8)));
            assert!(run.as_mut().poll(&mut cx).is_ready());
        }),
        Some(per_item(N, || {
            let mut run = std::pin::pin!(tokio_triggered.run_until_cancelled(ready(1u8)));
            assert!(run.as_mut().poll(&mut cx).is_ready());
        })),
    );
    row(
        "`on_cancel` (runs at once)",
        per_item(N, || triggered.on_cancel(|_| {})),
        None,
    );

    println!();
    println!("| type | cancel-token | tokio-util |");
    println!("|---|---|---|");
    println!(
        "| handle | `CancelToken`: {} B | `CancellationToken`: {} B |",
        size_of::<CancelToken>(),
        size_of::<CancellationToken>()
    );
    println!(
        "| borrowed wait future | `Wait`: {} B | `WaitForCancellationFuture`: {} B |",
        size_of::<cancel_token::Wait<'static>>(),
        size_of::<tokio_util::sync::WaitForCancellationFuture<'static>>()
    );
    println!(
        "| owned wait future | `WaitOwned`: {} B | `WaitForCancellationFutureOwned`: {} B |",
        size_of::<cancel_token::WaitOwned>(),
        size_of::<tokio_util::sync::WaitForCancellationFutureOwned>()
    );
    println!(
        "| `run` adapter around `Ready<u64>` | `Run`: {} B | `run_until_cancelled`: {} B |",
        size_of::<cancel_token::Run<'static, std::future::Ready<u64>>>(),
        size_of_val(&tokio.run_until_cancelled(ready(1u64)))
    );
    println!(
        "| `Cancelled` error | {} B | n/a |",
        size_of::<cancel_token::Cancelled>()
    );
}
