//! Memory: a token's registration lists give their memory back after a burst even while one
//! old registration lives, and deriving a token allocates no more than it must.
//!
//! This binary has its own counting global allocator. It counts only the allocations of the
//! threads that opted in (the measuring thread, for the length of a measurement), so the
//! timer thread and the test harness do not disturb the numbers; the tests still take one
//! lock so that no two measurements run at once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::time::Duration;

use cancel_token::{CallbackGuard, CancelToken, Wait};

mod common;

use common::{poll_with, CountingWaker};

/// What the first child of a plain token may cost, in bytes, at most: the child itself and
/// what its parent needs to know it. (Today: 432 bytes in 3 allocations.)
const FIRST_CHILD_BYTES: usize = 320;

/// How far above its baseline a token's memory may stay after a burst of registrations.
const SLACK_BYTES: isize = 4 * 1024;

/// The size of a burst: enough that a retained list is hundreds of kilobytes.
const BURST: usize = 100_000;

/// `System`, counting the allocations and the live bytes of the threads that opted in.
struct Counting;

std::thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

fn record(allocated: usize, live: isize) {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + usize::from(allocated > 0)));
    let _ = ALLOCATED.try_with(|n| n.set(n.get() + allocated));
    let _ = LIVE.try_with(|n| n.set(n.get() + live));
}

// SAFETY: every call is forwarded unchanged to `System`; only thread-local counters (const
// initialised, without destructors, so they never allocate) are updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() && counting() {
            record(layout.size(), layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() && counting() {
            record(layout.size(), layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        if counting() {
            record(0, -(layout.size() as isize));
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() && counting() {
            // A move to a new block counts as an allocation of the new size.
            record(new_size, new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One measurement at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// What the current thread allocated while `f` ran.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Allocations made (a `realloc` counts as one).
    allocations: usize,
    /// Bytes requested by those allocations.
    bytes: usize,
    /// Bytes still allocated at the end minus at the start.
    live: isize,
}

/// Runs `f` on this thread, counting what it allocates and frees.
fn measure<T>(f: impl FnOnce() -> T) -> (T, Measured) {
    let start = (
        ALLOCATIONS.with(Cell::get),
        ALLOCATED.with(Cell::get),
        LIVE.with(Cell::get),
    );
    COUNTING.with(|on| on.set(true));
    let value = f();
    COUNTING.with(|on| on.set(false));
    let measured = Measured {
        allocations: ALLOCATIONS.with(Cell::get) - start.0,
        bytes: ALLOCATED.with(Cell::get) - start.1,
        live: LIVE.with(Cell::get) - start.2,
    };
    (value, measured)
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn burst() -> usize {
    common::scaled(BURST)
}

/// Guards "after a burst its memory comes back even while one old child lives": a parent with
/// one long-lived child gets `BURST` more children at once, which are then dropped; the bytes
/// still allocated afterwards are back within [`SLACK_BYTES`] of those after the long-lived
/// child was made. Today the children slab only shrinks once it is empty, so the one old
/// child pins the whole burst's slab.
#[test]
fn the_children_list_gives_its_memory_back_while_one_old_child_lives() {
    let _serial = serial();
    let ((parent, old), made) = measure(|| {
        let parent = CancelToken::new();
        let old = parent.child();
        (parent, old)
    });
    let (_, after) = measure(|| {
        let children: Vec<CancelToken> = (0..burst()).map(|_| parent.child()).collect();
        drop(children);
    });
    assert!(
        after.live <= SLACK_BYTES,
        "after {} children came and went, {} bytes more are held than after the first \
         child was made ({} bytes then)",
        burst(),
        after.live,
        made.live
    );
    assert!(!old.is_triggered());
    parent.trigger();
    assert!(old.is_triggered(), "the old child is still linked");
}

/// Registers and polls pending `count` new waiters of `token`.
fn pending_waits<'a>(
    token: &'a CancelToken,
    waker: &std::sync::Arc<CountingWaker>,
    count: usize,
) -> Vec<Wait<'a>> {
    (0..count)
        .map(|_| {
            let mut wait = token.wait();
            assert!(poll_with(&mut wait, waker).is_pending());
            wait
        })
        .collect()
}

/// Guards "the same holds for dropped `Wait` futures": `BURST` waiters registered at once
/// and dropped while an old waiter stays registered give their memory back. Checked with the
/// old waiter as the token's first registration and as its second one (the first dropped
/// early), since the first may be stored apart. Today the spill slab of waiters only shrinks
/// once it is empty.
#[test]
fn the_waiter_list_gives_its_memory_back_while_one_old_wait_lives() {
    let _serial = serial();
    let waker = CountingWaker::new();
    for old_is_first in [true, false] {
        let token = CancelToken::new();
        let (old, made) = measure(|| {
            let mut waits = pending_waits(&token, &waker, if old_is_first { 1 } else { 2 });
            waits.pop().expect("one wait")
        });
        let (_, after) = measure(|| drop(pending_waits(&token, &waker, burst())));
        assert!(
            after.live <= SLACK_BYTES,
            "(old waiter first: {old_is_first}) after {} waiters came and went, {} bytes \
             more are held than with the old one registered ({} bytes then)",
            burst(),
            after.live,
            made.live
        );
        let before = waker.count();
        token.trigger();
        assert_eq!(
            waker.count(),
            before + 1,
            "only the old waiter is left to wake"
        );
        drop(old);
    }
}

/// Guards "the same holds for callback guards": `BURST` callbacks registered at once and
/// unregistered by dropping their guards, while an old callback stays registered, give their
/// memory back. Today the callback slab only shrinks once it is empty.
#[test]
fn the_callback_list_gives_its_memory_back_while_one_old_guard_lives() {
    let _serial = serial();
    let token = CancelToken::new();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (old, made) = measure(|| {
        let ran = std::sync::Arc::clone(&ran);
        token.on_cancel(move |_| {
            ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
    });
    let (_, after) = measure(|| {
        let guards: Vec<CallbackGuard> = (0..burst()).map(|_| token.on_cancel(|_| {})).collect();
        drop(guards);
    });
    assert!(
        after.live <= SLACK_BYTES,
        "after {} callbacks came and went, {} bytes more are held than with the old one \
         registered ({} bytes then)",
        burst(),
        after.live,
        made.live
    );
    token.trigger();
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
    drop(old);
}

/// Guards the cost of a child of a deadline token: it inherits the deadline without a state
/// of its own (the parent's timer is the one that fires), so making it is exactly one
/// allocation, the child's node. Measured on the parent's third child, so that the blocks of
/// the parent's child list (the first child is inline, the second makes a spill) are not
/// counted. The core this guards against allocated the child's cold state to store the
/// inherited deadline: two allocations.
#[test]
fn a_child_of_a_deadline_token_is_one_allocation() {
    let _serial = serial();
    let parent = CancelToken::with_timeout(Duration::from_secs(3600));
    // The parent's first two children pay for the parent's child list; measure the third.
    let first = parent.child();
    let second = parent.child();
    let (child, measured) = measure(|| parent.child());
    assert_eq!(
        measured.allocations, 1,
        "a child of a deadline token: {measured:?}"
    );
    assert_eq!(
        child.deadline(),
        parent.deadline(),
        "the deadline is inherited"
    );
    drop((first, second, child));
}

/// Guards the cost of the first child of a plain token: at most two allocations (the child,
/// and the parent's state for its children) and at most [`FIRST_CHILD_BYTES`] bytes. Today it
/// is three (the child's node, the parent's cold state, the children slab's first block).
#[test]
fn the_first_child_of_a_plain_token_is_at_most_two_allocations() {
    let _serial = serial();
    let parent = CancelToken::new();
    let (child, measured) = measure(|| parent.child());
    assert!(
        measured.allocations <= 2 && measured.bytes <= FIRST_CHILD_BYTES,
        "the first child of a plain token: {} allocations, {} bytes (at most 2 and \
         {FIRST_CHILD_BYTES} expected)",
        measured.allocations,
        measured.bytes
    );
    parent.trigger();
    assert!(child.is_triggered());
}
