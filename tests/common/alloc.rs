//! A counting global allocator: `System`, plus a count of the bytes currently allocated, for
//! the tests that check memory stays flat.
//!
//! Only the binaries that measure memory include this file, each with its own
//! `#[global_allocator]` static (an allocator is one per binary, so it is never declared here):
//!
//! ```ignore
//! #[path = "common/alloc.rs"]
//! mod alloc;
//!
//! #[global_allocator]
//! static ALLOCATOR: alloc::Counting = alloc::Counting::ALL_THREADS;
//! ```
//!
//! [`Counting::ALL_THREADS`] counts every allocation of the process, so a binary that uses it
//! must keep its measurements from overlapping (one test, or a lock). With
//! [`Counting::OPTED_IN_THREADS`] only threads that called [`count_this_thread`] are counted,
//! so other threads (a test server, other tests running in parallel) do not disturb a
//! measurement.

// Each binary that includes this file uses a different part of it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// `System`, counting the bytes currently allocated (by every thread, or by the threads that
/// opted in).
pub struct Counting {
    opted_in_only: bool,
}

impl Counting {
    /// Counts the allocations of every thread.
    pub const ALL_THREADS: Counting = Counting {
        opted_in_only: false,
    };
    /// Counts only the allocations of the threads that called [`count_this_thread`]`(true)`.
    pub const OPTED_IN_THREADS: Counting = Counting {
        opted_in_only: true,
    };

    fn counts(&self) -> bool {
        !self.opted_in_only || COUNTED.try_with(Cell::get).unwrap_or(false)
    }
}

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Allocations (and reallocations) counted so far.
pub fn allocations() -> isize {
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// Live bytes counted so far: allocated minus freed.
pub fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// Starts (`true`) or stops (`false`) counting the current thread's allocations under
/// [`Counting::OPTED_IN_THREADS`].
pub fn count_this_thread(on: bool) {
    COUNTED.with(|counted| counted.set(on));
}

// SAFETY: every call is forwarded unchanged to `System`; only a counter is updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() && self.counts() {
            LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() && self.counts() {
            LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        if self.counts() {
            LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() && self.counts() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::SeqCst);
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        new
    }
}
